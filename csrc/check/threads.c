/* A multi-threaded stress run of the native engine, for ThreadSanitizer:
 * tests/test_c_sanitizers.py builds it with -fsanitize=thread and expects "ok".
 *
 * THREADS threads share two keys (so the worker pools are contended: workers taken, copied
 * from the template, given back and dropped when a pool is full) while a further thread makes
 * and frees keys of its own. Each thread seals and opens single requests and batches that mix
 * both keys, encrypts and decrypts with and without AAD, and draws random bytes through its own
 * cache; every result is checked, and every IV drawn by any thread is kept and must be unique. */
#include "vpseal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define ROUNDS 300
#define BATCH 6
#define PT_MAX 7000 /* several base64 chunks (3072 bytes of plaintext each) */

static vp_key *shared[2];
static unsigned char pt[PT_MAX];
static unsigned char ivs[THREADS * ROUNDS][12];

#define FAIL(...)                                                                              \
    do {                                                                                       \
        printf(__VA_ARGS__);                                                                   \
        printf("\n");                                                                          \
        exit(1);                                                                               \
    } while (0)

static size_t headers_of(const char *meta, char *headers, size_t *tl)
{
    size_t t = 20;
    while (t > 0 && meta[98 + t - 1] == ' ')
        t--;
    memcpy(headers, meta + 98, t);
    memcpy(headers + t, meta, 32);
    memcpy(headers + t + 32, meta + 33, 64);
    *tl = t;
    return t + 96;
}

/* The IV of a sealed body: base64 characters 15..31. */
static void iv_of(const char *body, unsigned char *iv)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (unsigned)(strchr(alphabet, body[15 + i]) - alphabet);
    for (int g = 0; g < 4; g++) {
        unsigned x = v[4 * g] << 18 | v[4 * g + 1] << 12 | v[4 * g + 2] << 6 | v[4 * g + 3];
        iv[3 * g] = (unsigned char)(x >> 16);
        iv[3 * g + 1] = (unsigned char)(x >> 8);
        iv[3 * g + 2] = (unsigned char)x;
    }
}

static void *work(void *arg)
{
    int id = (int)(size_t)arg;
    static _Thread_local char body[8 * PT_MAX];
    static _Thread_local unsigned char back[PT_MAX + 16], ct[PT_MAX + 16];
    for (int r = 0; r < ROUNDS; r++) {
        vp_key *k = shared[(id + r) & 1];
        int scheme = r & 1;
        size_t n = 1 + (size_t)(id * 977 + r * 131) % (r % 10 == 0 ? PT_MAX : 300);
        size_t bl = vp_body_len(n), hl, tl;
        char meta[VP_META_LEN], headers[200];
        if (vp_seal(k, scheme, "agent", 5, pt, n, body, bl, meta, VP_META_LEN))
            FAIL("seal");
        iv_of(body, ivs[id * ROUNDS + r]);
        hl = headers_of(meta, headers, &tl);
        if (vp_open(k, scheme, "agent", 5, headers, hl, tl, 32, body, bl, back, n) ||
            memcmp(back, pt, n))
            FAIL("open");
        if (vp_open(shared[((id + r) & 1) ^ 1], scheme, "agent", 5, headers, hl, tl, 32, body,
                    bl, back, n) != VP_BAD_TAG)
            FAIL("open with the other key");

        unsigned char iv[12];
        if (vp_random(iv, sizeof(iv)))
            FAIL("random");
        size_t aad_len = (size_t)r % 40;
        if (vp_encrypt(k, iv, 12, pt, aad_len, pt, n, ct, n + 16) ||
            vp_decrypt(k, iv, 12, pt, aad_len, ct, n + 16, back, n) || memcmp(back, pt, n))
            FAIL("aead");

        if (r % 20 == 0) { /* a batch: seal_many with one key, open_many mixing both */
            size_t lens[BATCH], pts_len = 0, bodies_len = 0;
            for (int i = 0; i < BATCH; i++) {
                lens[i] = 1 + (size_t)(i * 1031 + r) % (i == 2 ? PT_MAX : 200);
                pts_len += lens[i];
                bodies_len += vp_body_len(lens[i]);
            }
            unsigned char *pts = malloc(pts_len);
            char *bodies = malloc(bodies_len), metas[BATCH * VP_META_LEN];
            char *fields = malloc(bodies_len + BATCH * 200);
            unsigned char *out = malloc(bodies_len);
            if (pts == NULL || bodies == NULL || fields == NULL || out == NULL)
                FAIL("malloc");
            for (size_t i = 0, off = 0; i < BATCH; off += lens[i], i++)
                memcpy(pts + off, pt, lens[i]);
            if (vp_seal_many(k, 0, "agent", 5, BATCH, pts, pts_len, lens, bodies, bodies_len,
                             metas, sizeof(metas)))
                FAIL("seal_many");
            vp_key *keys[BATCH];
            int schemes[BATCH], statuses[BATCH];
            size_t field_lens[5 * BATCH], pt_lens[BATCH], fields_len = 0;
            const char *bp = bodies;
            for (int i = 0; i < BATCH; i++) {
                size_t b = vp_body_len(lens[i]), t;
                size_t h = headers_of(metas + i * VP_META_LEN, headers, &t);
                keys[i] = i % 3 == 2 ? shared[((id + r) & 1) ^ 1] : k; /* the other key fails */
                schemes[i] = 0;
                memcpy(fields + fields_len, "agent", 5);
                memcpy(fields + fields_len + 5, headers, h);
                memcpy(fields + fields_len + 5 + h, bp, b);
                fields_len += 5 + h + b;
                size_t fl[5] = {5, h, t, 32, b};
                memcpy(field_lens + 5 * i, fl, sizeof(fl));
                bp += b;
            }
            if (vp_open_many(keys, schemes, BATCH, fields, fields_len, field_lens, out,
                             bodies_len, pt_lens, statuses))
                FAIL("open_many");
            size_t off = 0;
            for (int i = 0; i < BATCH; i++) {
                int want = i % 3 == 2 ? VP_BAD_TAG : VP_OK;
                if (statuses[i] != want ||
                    (want == VP_OK && (pt_lens[i] != lens[i] || memcmp(out + off, pt, lens[i]))))
                    FAIL("open_many item %d: %d", i, statuses[i]);
                off += field_lens[5 * i + 4];
            }
            free(out);
            free(fields);
            free(bodies);
            free(pts);
        }
    }
    return NULL;
}

/* Keys made and freed while the others work: their pools fill and drain on their own. */
static void *churn(void *arg)
{
    (void)arg;
    unsigned char key[32] = {7}, iv[12] = {0}, out[64 + 16], back[64];
    for (int r = 0; r < ROUNDS; r++) {
        vp_key *k = vp_key_new(key, 32);
        if (k == NULL)
            FAIL("key");
        if (vp_encrypt(k, iv, 12, NULL, 0, pt, 64, out, sizeof(out)) ||
            vp_decrypt(k, iv, 12, NULL, 0, out, sizeof(out), back, 64))
            FAIL("churn aead");
        vp_key_free(k);
    }
    return NULL;
}

static int cmp_iv(const void *a, const void *b)
{
    return memcmp(a, b, 12);
}

int main(void)
{
    unsigned char k0[32] = {1}, k1[32] = {2};
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (unsigned char)(i * 13 + 1);
    shared[0] = vp_key_new(k0, 32);
    shared[1] = vp_key_new(k1, 32);
    if (shared[0] == NULL || shared[1] == NULL)
        FAIL("keys");
    pthread_t threads[THREADS + 1];
    for (size_t i = 0; i < THREADS; i++)
        if (pthread_create(&threads[i], NULL, work, (void *)i))
            FAIL("pthread_create");
    if (pthread_create(&threads[THREADS], NULL, churn, NULL))
        FAIL("pthread_create");
    for (int i = 0; i <= THREADS; i++)
        pthread_join(threads[i], NULL);
    qsort(ivs, THREADS * ROUNDS, 12, cmp_iv);
    for (size_t i = 1; i < THREADS * ROUNDS; i++)
        if (memcmp(ivs[i - 1], ivs[i], 12) == 0)
            FAIL("an IV repeated across threads");
    vp_key_free(shared[0]);
    vp_key_free(shared[1]);
    puts("ok");
    return 0;
}
