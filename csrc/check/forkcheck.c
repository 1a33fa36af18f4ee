/* Random bytes (IVs, nonces) never repeat between processes split without libc's fork():
 * a raw clone() system call runs no pthread_atfork handlers, so only the engine's own guard
 * (MADV_WIPEONFORK on its cache page, or the per-draw pid check where that is refused, forced
 * here with -DVP_RANDOM_PID_CHECK) stands between a child and its parent's cached bytes.
 *
 * The parent warms its cache, then splits twice (a child, which splits again: a grandchild),
 * and each of the three processes draws nonces and IVs through vp_random and vp_seal; every
 * record must be unique. tests/test_c_sanitizers.py builds and runs it in both modes ("ok"). */
#define _GNU_SOURCE
#include "vpseal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DRAWS 8
#define RECORD 28

static int out_fd;

#define FAIL(...)                                                                              \
    do {                                                                                       \
        printf(__VA_ARGS__);                                                                   \
        printf("\n");                                                                          \
        fflush(stdout);                                                                        \
        _exit(1);                                                                              \
    } while (0)

/* A process copy made by the kernel alone: no libc fork handlers, no atfork callbacks. */
static pid_t raw_clone(void)
{
    return (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
}

static void draw_and_send(vp_key *k)
{
    unsigned char rec[RECORD], pt[8] = "{\"a\":1}";
    char body[128], meta[VP_META_LEN];
    for (int i = 0; i < DRAWS; i++) {
        if (vp_random(rec, RECORD))
            FAIL("random");
        if (write(out_fd, rec, RECORD) != RECORD)
            FAIL("write");
        /* a sealed request's nonce (hex in meta) and IV (base64 in the body), as sent */
        if (vp_seal(k, 0, "agent", 5, pt, 7, body, vp_body_len(7), meta, VP_META_LEN))
            FAIL("seal");
        memset(rec, 0, RECORD);
        memcpy(rec, meta, 16);          /* the first half of the nonce's hex */
        memcpy(rec + 16, body + 15, 12); /* the first 12 base64 characters of the IV */
        rec[RECORD - 1] = 0xff;          /* never equal to a vp_random record by accident */
        if (write(out_fd, rec, RECORD) != RECORD)
            FAIL("write");
    }
}

static void reap(pid_t pid)
{
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("child %d failed", (int)pid);
}

static int cmp(const void *a, const void *b)
{
    return memcmp(a, b, RECORD);
}

int main(void)
{
    int fds[2];
    unsigned char key[32] = {3}, warm[16];
    if (pipe(fds))
        FAIL("pipe");
    out_fd = fds[1];
    vp_key *k = vp_key_new(key, 32);
    if (k == NULL || vp_random(warm, sizeof(warm))) /* the parent's cache is now full */
        FAIL("setup");

    pid_t child = raw_clone();
    if (child < 0)
        FAIL("clone");
    if (child == 0) {
        pid_t grandchild = raw_clone();
        if (grandchild < 0)
            FAIL("clone");
        draw_and_send(k);
        if (grandchild == 0)
            _exit(0);
        reap(grandchild);
        _exit(0);
    }
    draw_and_send(k);
    reap(child);
    close(fds[1]);

    enum { TOTAL = 3 * 2 * DRAWS };
    unsigned char records[TOTAL][RECORD];
    size_t got = 0;
    ssize_t r;
    while ((r = read(fds[0], (unsigned char *)records + got, sizeof(records) - got)) > 0)
        got += (size_t)r;
    if (got != sizeof(records))
        FAIL("read %zu of %zu bytes", got, sizeof(records));
    qsort(records, TOTAL, RECORD, cmp);
    for (int i = 1; i < TOTAL; i++)
        if (memcmp(records[i - 1], records[i], RECORD) == 0)
            FAIL("random bytes repeated across processes");
    vp_key_free(k);
    puts("ok");
    return 0;
}
