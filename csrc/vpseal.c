/* vpseal native engine over OpenSSL libcrypto (3.0 or later).
 *
 * Design, in short:
 * - A vp_key keeps one keyed EVP_CIPHER_CTX as a template. Per call a worker context is taken
 *   from a small lock-free pool (or copied from the template when the pool is empty), so the key
 *   schedule and the algorithm lookup happen once per key and one key is safe across threads.
 * - Random bytes are drawn from RAND_bytes in blocks into a per-thread cache on a page of its
 *   own. A child must never hand out bytes its parent also hands out, however it was created
 *   (libc fork(), glibc _Fork() or a raw clone(), which run no pthread_atfork handlers): the
 *   page is marked MADV_WIPEONFORK, so any child sees it zeroed and refills; where the kernel
 *   refuses that, every draw compares getpid() with the pid that filled the cache. A fork
 *   generation counter bumped by a pthread_atfork handler is kept as a third guard.
 * - seal/open do the whole request in one call: IV, nonce, GCM, base64, JSON body, SHA-256.
 *   Ciphertext is streamed through a stack buffer, so the only output memory is the caller's.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MADV_WIPEONFORK */
#include "vpseal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "vpseal needs OpenSSL 3.0 or later"
#endif

#define KEY_LEN 32
#define IV_LEN 12
#define TAG_LEN 16
#define NONCE_RAW_LEN 16
#define NONCE_HEX_LEN 32
#define SIG_HEX_LEN 64
#define IV_B64_LEN 16
#define TAG_B64_LEN 24
#define POOL_SIZE 16
#define CHUNK 3072 /* multiple of 3 (base64 groups) and of 16 */
#define MAX_UPDATE (1 << 30)
/* NIST SP 800-38D: a GCM plaintext is at most 2^39 - 256 bits. */
#define GCM_MAX_BYTES ((((uint64_t)1) << 36) - 32)

static const char BODY_PREFIX[] = "{\"cipherText\":\"";
static const char BODY_SUFFIX[] = "\"}";
#define PREFIX_LEN (sizeof(BODY_PREFIX) - 1)
#define SUFFIX_LEN (sizeof(BODY_SUFFIX) - 1)

static EVP_CIPHER *aes256gcm;
static EVP_MD *sha256;

/* ---------------------------------------------------------------- per-call worker */

typedef struct {
    EVP_CIPHER_CTX *cipher;
    EVP_MD_CTX *md;
} worker;

struct vp_key {
    EVP_CIPHER_CTX *tmpl;
    _Atomic(worker *) pool[POOL_SIZE];
};

static void worker_free(worker *w)
{
    if (w == NULL)
        return;
    EVP_CIPHER_CTX_free(w->cipher); /* cleanses the key schedule */
    EVP_MD_CTX_free(w->md);
    OPENSSL_free(w);
}

static worker *worker_take(vp_key *k)
{
    for (int i = 0; i < POOL_SIZE; i++) {
        worker *w = atomic_exchange_explicit(&k->pool[i], NULL, memory_order_acquire);
        if (w != NULL)
            return w;
    }
    worker *w = OPENSSL_zalloc(sizeof(*w));
    if (w == NULL)
        return NULL;
    w->cipher = EVP_CIPHER_CTX_new();
    w->md = EVP_MD_CTX_new();
    if (w->cipher == NULL || w->md == NULL || !EVP_CIPHER_CTX_copy(w->cipher, k->tmpl)) {
        worker_free(w);
        return NULL;
    }
    return w;
}

static void worker_give_back(vp_key *k, worker *w)
{
    for (int i = 0; i < POOL_SIZE; i++) {
        worker *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(&k->pool[i], &expected, w,
                                                    memory_order_release,
                                                    memory_order_relaxed))
            return;
    }
    worker_free(w);
}

/* ---------------------------------------------------------------- init */

/* Never 0: a wiped (zeroed) random cache page never matches it. */
static atomic_ulong fork_generation = 1;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_generation, 1);
}

static void b64_table_init(void);
static void rand_cache_destroy(void *cache);

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ok;
static pthread_key_t rand_cache_key;
static size_t page_size;

static void init_impl(void)
{
    long page = sysconf(_SC_PAGESIZE);
    page_size = page >= 1024 ? (size_t)page : 4096;
    aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (aes256gcm == NULL || sha256 == NULL)
        return;
    if (pthread_atfork(NULL, NULL, on_fork_child) != 0)
        return;
    if (pthread_key_create(&rand_cache_key, rand_cache_destroy) != 0)
        return;
    b64_table_init();
    init_ok = 1;
}

int vp_init(void)
{
    if (pthread_once(&init_once, init_impl) != 0)
        return VP_ERR_OPENSSL;
    return init_ok ? VP_OK : VP_ERR_OPENSSL;
}

const char *vp_openssl_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

/* ---------------------------------------------------------------- keys */

vp_key *vp_key_new(const unsigned char *key, size_t key_len)
{
    if (key == NULL || key_len != KEY_LEN || vp_init() != VP_OK)
        return NULL;
    vp_key *k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL)
        return NULL;
    k->tmpl = EVP_CIPHER_CTX_new();
    if (k->tmpl == NULL || !EVP_EncryptInit_ex2(k->tmpl, aes256gcm, key, NULL, NULL)) {
        EVP_CIPHER_CTX_free(k->tmpl);
        OPENSSL_free(k);
        return NULL;
    }
    return k;
}

void vp_key_free(vp_key *k)
{
    if (k == NULL)
        return;
    for (int i = 0; i < POOL_SIZE; i++)
        worker_free(atomic_exchange(&k->pool[i], NULL));
    EVP_CIPHER_CTX_free(k->tmpl);
    OPENSSL_free(k);
}

/* ---------------------------------------------------------------- randomness */

/* One thread's cache: a page of its own, so that MADV_WIPEONFORK covers exactly it. A child
 * created by any means other than vfork (which shares the page and must only exec) sees the
 * page zeroed: generation 0 never matches fork_generation, so the child refills before its
 * first draw. pid_check is set where the kernel refused MADV_WIPEONFORK (or VP_RANDOM_PID_CHECK
 * is defined, to test that path); then every draw compares getpid() with pid. */
typedef struct {
    unsigned long generation; /* fork_generation when filled; 0: empty or wiped */
    pid_t pid;                /* the filler, compared per draw when pid_check is set */
    int pid_check;            /* 1 when the page is not wiped on fork */
    size_t cap;               /* bytes of buf: page_size - offsetof(rand_cache, buf) */
    size_t used;              /* bytes already handed out; buf[used..cap] is fresh */
    unsigned char buf[];
} rand_cache;

static _Thread_local rand_cache *tl_cache;

static void rand_cache_destroy(void *cache)
{
    rand_cache *c = cache;
    if (c == NULL)
        return;
    OPENSSL_cleanse(c->buf, c->cap);
    munmap(c, page_size);
    if (tl_cache == c)
        tl_cache = NULL;
}

/* The calling thread's cache, made on first use; NULL when no page could be had (the caller
 * then reads RAND_bytes directly). */
static rand_cache *rand_cache_get(void)
{
    rand_cache *c = tl_cache;
    if (c != NULL)
        return c;
    void *page = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return NULL;
    c = page; /* zero-filled: generation 0, nothing cached yet */
    c->cap = page_size - offsetof(rand_cache, buf);
    c->used = c->cap;
    c->pid_check = 1;
#if defined(MADV_WIPEONFORK) && !defined(VP_RANDOM_PID_CHECK)
    if (madvise(page, page_size, MADV_WIPEONFORK) == 0)
        c->pid_check = 0;
#endif
    if (pthread_setspecific(rand_cache_key, c) != 0) {
        munmap(page, page_size);
        return NULL;
    }
    tl_cache = c;
    return c;
}

int vp_random(unsigned char *out, size_t n)
{
    if (out == NULL && n != 0)
        return VP_ERR_ARG;
    if (vp_init() != VP_OK)
        return VP_ERR_OPENSSL;
    if (n == 0)
        return VP_OK;
    rand_cache *c = n <= 1024 ? rand_cache_get() : NULL; /* large draws go straight through */
    if (c == NULL)
        return (n <= INT_MAX && RAND_bytes(out, (int)n) == 1) ? VP_OK : VP_ERR_OPENSSL;
    /* After a wipe the page is all zeros again: cap 0 < n, and generation 0 is stale. */
    unsigned long gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    if (c->generation != gen || c->cap - c->used < n || c->cap == 0 ||
        (c->pid_check && c->pid != getpid())) {
        if (c->cap == 0) { /* wiped in this child: set the page up again */
            c->cap = page_size - offsetof(rand_cache, buf);
            c->pid_check = 0; /* the wipe itself shows MADV_WIPEONFORK holds here */
        }
        c->generation = 0;
        c->used = c->cap;
        if (RAND_bytes(c->buf, (int)c->cap) != 1)
            return VP_ERR_OPENSSL;
        c->used = 0;
        c->generation = gen;
        if (c->pid_check)
            c->pid = getpid();
    }
    memcpy(out, c->buf + c->used, n);
    OPENSSL_cleanse(c->buf + c->used, n);
    c->used += n;
    return VP_OK;
}

/* ---------------------------------------------------------------- encodings */

static const char HEX[] = "0123456789abcdef";
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
}

static size_t b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Encodes n bytes; pads when n is not a multiple of 3 (callers stream in multiples of 3). */
static char *b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = B64[(v >> 6) & 63];
        *out++ = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = B64[(v >> 6) & 63];
        *out++ = '=';
    }
    return out;
}

/* 0..63 for an alphabet character, 64 for '=', 255 for anything else. */
static unsigned char b64_value[256];

static void b64_table_init(void)
{
    memset(b64_value, 255, sizeof(b64_value));
    for (int i = 0; i < 64; i++)
        b64_value[(unsigned char)B64[i]] = (unsigned char)i;
    b64_value['='] = 64;
}

/* Strict decode of a padded standard base64 string of length len (a multiple of 4).
 * Returns the decoded length, or -1 for a bad alphabet, misplaced padding or non-zero
 * trailing bits (so that every byte string has exactly one accepted encoding). */
static long b64_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned char a = b64_value[(unsigned char)in[i]];
        unsigned char b = b64_value[(unsigned char)in[i + 1]];
        unsigned char c = b64_value[(unsigned char)in[i + 2]];
        unsigned char d = b64_value[(unsigned char)in[i + 3]];
        if ((a | b | c | d) < 64) {
            uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
            out[o++] = (unsigned char)(v >> 16);
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
            continue;
        }
        if (i + 4 != len || a >= 64 || b >= 64)
            return -1;
        if (c == 64 && d == 64) { /* xx== */
            if (b & 15)
                return -1;
            out[o++] = (unsigned char)(a << 2 | b >> 4);
        } else if (c < 64 && d == 64) { /* xxx= */
            if (c & 3)
                return -1;
            out[o++] = (unsigned char)(a << 2 | b >> 4);
            out[o++] = (unsigned char)(b << 4 | c >> 2);
        } else {
            return -1;
        }
    }
    return (long)o;
}

/* ---------------------------------------------------------------- hashing */

static int sha256_parts(EVP_MD_CTX *md, const void *const *parts, const size_t *lens, int n,
                        char *hex_out)
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!EVP_DigestInit_ex2(md, sha256, NULL))
        return VP_ERR_OPENSSL;
    for (int i = 0; i < n; i++)
        if (lens[i] != 0 && !EVP_DigestUpdate(md, parts[i], lens[i]))
            return VP_ERR_OPENSSL;
    if (!EVP_DigestFinal_ex(md, digest, &dlen) || dlen != sizeof(digest))
        return VP_ERR_OPENSSL;
    hex_encode(digest, sizeof(digest), hex_out);
    return VP_OK;
}

int vp_sha256_hex(const unsigned char *in, size_t in_len, char *hex_out, size_t hex_len)
{
    if ((in == NULL && in_len != 0) || hex_out == NULL || hex_len != SIG_HEX_LEN)
        return VP_ERR_ARG;
    if (vp_init() != VP_OK)
        return VP_ERR_OPENSSL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return VP_ERR_OPENSSL;
    const void *parts[1] = {in};
    int rc = sha256_parts(md, parts, &in_len, 1, hex_out);
    EVP_MD_CTX_free(md);
    return rc;
}

/* The signature string of either scheme; body is the whole body, wire lies inside it. */
static int sign_request(EVP_MD_CTX *md, int scheme, const char *agent, size_t agent_len,
                        const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                        const char *body, size_t body_len, char *hex_out)
{
    if (scheme == VP_SCHEME_TRANSFER) {
        const void *parts[4] = {agent, ts, nonce, body};
        size_t lens[4] = {agent_len, ts_len, nonce_len, body_len};
        return sha256_parts(md, parts, lens, 4, hex_out);
    }
    const void *parts[7] = {agent, "|", ts, "|", nonce, "|", body + PREFIX_LEN};
    size_t lens[7] = {agent_len, 1, ts_len, 1, nonce_len, 1, body_len - PREFIX_LEN - SUFFIX_LEN};
    return sha256_parts(md, parts, lens, 7, hex_out);
}

/* ---------------------------------------------------------------- GCM */

static int gcm_start(EVP_CIPHER_CTX *c, int enc, const unsigned char *iv,
                     const unsigned char *aad, size_t aad_len)
{
    int outl = 0;
    if (!EVP_CipherInit_ex2(c, NULL, NULL, iv, enc, NULL))
        return 0;
    while (aad_len > 0) {
        int step = aad_len > MAX_UPDATE ? MAX_UPDATE : (int)aad_len;
        if (!EVP_CipherUpdate(c, NULL, &outl, aad, step))
            return 0;
        aad += step;
        aad_len -= (size_t)step;
    }
    return 1;
}

/* Streams n bytes through the cipher; GCM writes exactly as many bytes as it reads. */
static int gcm_update(EVP_CIPHER_CTX *c, const unsigned char *in, size_t n, unsigned char *out)
{
    while (n > 0) {
        int step = n > MAX_UPDATE ? MAX_UPDATE : (int)n;
        int outl = 0;
        if (!EVP_CipherUpdate(c, out, &outl, in, step) || outl != step)
            return 0;
        in += step;
        out += step;
        n -= (size_t)step;
    }
    return 1;
}

static int gcm_finish_encrypt(EVP_CIPHER_CTX *c, unsigned char *tag)
{
    unsigned char tail[16];
    int outl = 0;
    if (!EVP_CipherFinal_ex(c, tail, &outl) || outl != 0)
        return 0;
    return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) > 0;
}

/* 1 when the tag verifies, 0 when it does not. */
static int gcm_finish_decrypt(EVP_CIPHER_CTX *c, const unsigned char *tag)
{
    unsigned char tail[16];
    int outl = 0;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)tag) <= 0)
        return 0;
    return EVP_CipherFinal_ex(c, tail, &outl) > 0 && outl == 0;
}

int vp_encrypt(vp_key *k, const unsigned char *iv, size_t iv_len,
               const unsigned char *aad, size_t aad_len,
               const unsigned char *in, size_t in_len,
               unsigned char *out, size_t out_len)
{
    if (k == NULL || iv == NULL || iv_len != IV_LEN || (aad == NULL && aad_len != 0) ||
        (in == NULL && in_len != 0) || out == NULL || (uint64_t)in_len > GCM_MAX_BYTES ||
        out_len != in_len + TAG_LEN)
        return VP_ERR_ARG;
    worker *w = worker_take(k);
    if (w == NULL)
        return VP_ERR_OPENSSL;
    int ok = gcm_start(w->cipher, 1, iv, aad, aad_len) &&
             gcm_update(w->cipher, in, in_len, out) &&
             gcm_finish_encrypt(w->cipher, out + in_len);
    worker_give_back(k, w);
    if (!ok) {
        OPENSSL_cleanse(out, out_len);
        return VP_ERR_OPENSSL;
    }
    return VP_OK;
}

int vp_decrypt(vp_key *k, const unsigned char *iv, size_t iv_len,
               const unsigned char *aad, size_t aad_len,
               const unsigned char *in, size_t in_len,
               unsigned char *out, size_t out_len)
{
    if (k == NULL || iv == NULL || iv_len != IV_LEN || (aad == NULL && aad_len != 0) ||
        in == NULL || in_len < TAG_LEN || (out == NULL && in_len != TAG_LEN) ||
        out_len != in_len - TAG_LEN || (uint64_t)out_len > GCM_MAX_BYTES)
        return VP_ERR_ARG;
    worker *w = worker_take(k);
    if (w == NULL)
        return VP_ERR_OPENSSL;
    int rc = VP_ERR_OPENSSL;
    if (gcm_start(w->cipher, 0, iv, aad, aad_len) &&
        gcm_update(w->cipher, in, out_len, out))
        rc = gcm_finish_decrypt(w->cipher, in + out_len) ? VP_OK : VP_BAD_TAG;
    worker_give_back(k, w);
    if (rc != VP_OK && out_len != 0)
        OPENSSL_cleanse(out, out_len); /* never release unauthenticated plaintext */
    return rc;
}

int vp_encrypt_noaad(vp_key *k, const unsigned char *iv, size_t iv_len,
                     const unsigned char *in, size_t in_len, unsigned char *out, size_t out_len)
{
    return vp_encrypt(k, iv, iv_len, NULL, 0, in, in_len, out, out_len);
}

int vp_decrypt_noaad(vp_key *k, const unsigned char *iv, size_t iv_len,
                     const unsigned char *in, size_t in_len, unsigned char *out, size_t out_len)
{
    return vp_decrypt(k, iv, iv_len, NULL, 0, in, in_len, out, out_len);
}

/* ---------------------------------------------------------------- seal */

size_t vp_body_len(size_t pt_len)
{
    if (pt_len > (SIZE_MAX - 64) / 4 * 3)
        return 0;
    return PREFIX_LEN + IV_B64_LEN + TAG_B64_LEN + b64_len(pt_len) + SUFFIX_LEN;
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Writes the current Unix time in milliseconds as decimal text; returns its length. */
static size_t now_ms_text(char *out)
{
    struct timespec now;
    char digits[24];
    size_t n = 0;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return 0;
    unsigned long long ms = (unsigned long long)now.tv_sec * 1000u +
                            (unsigned long long)now.tv_nsec / 1000000u;
    do {
        digits[n++] = (char)('0' + ms % 10);
        ms /= 10;
    } while (ms != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

/* meta = nonce hex (32), ' ', signature hex (64), ' ', x-timestamp text space-padded to 20:
 * split on spaces, it gives the three header values. */
#define META_SIG (NONCE_HEX_LEN + 1)
#define META_TS (META_SIG + SIG_HEX_LEN + 1)
#define META_TS_LEN 20
#define META_LEN (META_TS + META_TS_LEN)
_Static_assert(META_LEN == VP_META_LEN, "vpseal.h and vpseal.c disagree on VP_META_LEN");

static int valid_timestamp(const char *ts, size_t ts_len)
{
    if (ts_len == 0 || ts_len > 16)
        return 0;
    for (size_t i = 0; i < ts_len; i++)
        if (ts[i] < '0' || ts[i] > '9')
            return 0;
    return 1;
}

/* One request with a worker already in hand; meta's timestamp part is already filled in.
 * nonce_in/iv_in may be NULL (drawn fresh from the CSPRNG). */
static int seal_one(worker *w, int scheme, const char *agent, size_t agent_len,
                    const char *nonce_in, const unsigned char *iv_in,
                    const unsigned char *pt, size_t pt_len, char *body, char *meta)
{
    unsigned char iv[IV_LEN], tag[TAG_LEN], chunk[CHUNK];
    const char *ts = meta + META_TS;
    size_t ts_len = META_TS_LEN;
    char *p = body;
    int rc;

    while (ts_len > 0 && ts[ts_len - 1] == ' ')
        ts_len--;
    if (nonce_in == NULL && iv_in == NULL) { /* the usual case: one draw for both */
        unsigned char raw[NONCE_RAW_LEN + IV_LEN];
        if ((rc = vp_random(raw, sizeof(raw))) != VP_OK)
            return rc;
        hex_encode(raw, NONCE_RAW_LEN, meta);
        memcpy(iv, raw + NONCE_RAW_LEN, IV_LEN);
        OPENSSL_cleanse(raw, sizeof(raw));
    } else {
        if (nonce_in != NULL) {
            memcpy(meta, nonce_in, NONCE_HEX_LEN);
        } else {
            unsigned char raw[NONCE_RAW_LEN];
            if ((rc = vp_random(raw, sizeof(raw))) != VP_OK)
                return rc;
            hex_encode(raw, sizeof(raw), meta);
        }
        if (iv_in != NULL)
            memcpy(iv, iv_in, IV_LEN);
        else if ((rc = vp_random(iv, IV_LEN)) != VP_OK)
            return rc;
    }

    memcpy(p, BODY_PREFIX, PREFIX_LEN);
    p += PREFIX_LEN;
    p = b64_encode(iv, IV_LEN, p);
    char *tag_b64 = p; /* filled in once the tag is known */
    p += TAG_B64_LEN;

    if (!gcm_start(w->cipher, 1, iv, NULL, 0))
        return VP_ERR_OPENSSL;
    for (size_t off = 0; off < pt_len; off += CHUNK) {
        size_t n = pt_len - off < CHUNK ? pt_len - off : CHUNK;
        if (!gcm_update(w->cipher, pt + off, n, chunk))
            return VP_ERR_OPENSSL;
        p = b64_encode(chunk, n, p);
    }
    if (!gcm_finish_encrypt(w->cipher, tag))
        return VP_ERR_OPENSSL;
    b64_encode(tag, TAG_LEN, tag_b64);
    memcpy(p, BODY_SUFFIX, SUFFIX_LEN);
    p += SUFFIX_LEN;

    return sign_request(w->md, scheme, agent, agent_len, ts, ts_len, meta, NONCE_HEX_LEN, body,
                        (size_t)(p - body), meta + META_SIG);
}

/* Blanks meta and fills its timestamp part from ts (or the clock when ts is NULL). */
static int put_timestamp(char *meta, const char *ts, size_t ts_len)
{
    char *out = meta + META_TS;
    memset(meta, ' ', META_LEN);
    if (ts == NULL)
        return now_ms_text(out) != 0 ? VP_OK : VP_ERR_OPENSSL;
    if (!valid_timestamp(ts, ts_len))
        return VP_ERR_ARG;
    memcpy(out, ts, ts_len);
    return VP_OK;
}

static int seal_args_ok(vp_key *k, int scheme, const char *agent, size_t agent_len,
                        const unsigned char *pt, size_t pt_len, const char *body_out,
                        size_t body_len, const char *meta_out, size_t meta_len)
{
    return k != NULL && (scheme == VP_SCHEME_TRANSFER || scheme == VP_SCHEME_PIPE) &&
           (agent != NULL || agent_len == 0) && pt != NULL && pt_len != 0 &&
           (uint64_t)pt_len <= GCM_MAX_BYTES && body_out != NULL && meta_out != NULL &&
           meta_len == META_LEN && vp_body_len(pt_len) != 0 && body_len == vp_body_len(pt_len);
}

int vp_seal(vp_key *k, int scheme, const char *agent, size_t agent_len,
            const unsigned char *pt, size_t pt_len, char *body_out, size_t body_len,
            char *meta_out, size_t meta_len)
{
    return vp_seal_fixed(k, scheme, agent, agent_len, NULL, 0, NULL, 0, NULL, 0, pt, pt_len,
                         body_out, body_len, meta_out, meta_len);
}

int vp_seal_fixed(vp_key *k, int scheme, const char *agent, size_t agent_len,
                  const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                  const unsigned char *iv, size_t iv_len,
                  const unsigned char *pt, size_t pt_len, char *body_out, size_t body_len,
                  char *meta_out, size_t meta_len)
{
    if (!seal_args_ok(k, scheme, agent, agent_len, pt, pt_len, body_out, body_len, meta_out,
                      meta_len) ||
        (nonce != NULL && (nonce_len != NONCE_HEX_LEN || !is_lower_hex(nonce, nonce_len))) ||
        (iv != NULL && iv_len != IV_LEN))
        return VP_ERR_ARG;
    int rc = put_timestamp(meta_out, ts, ts_len);
    if (rc != VP_OK)
        return rc;
    worker *w = worker_take(k);
    if (w == NULL)
        return VP_ERR_OPENSSL;
    rc = seal_one(w, scheme, agent, agent_len, nonce, iv, pt, pt_len, body_out, meta_out);
    worker_give_back(k, w);
    return rc;
}

int vp_seal_many(vp_key *k, int scheme, const char *agent, size_t agent_len,
                 size_t n, const unsigned char *pts, size_t pts_len, const size_t *pt_lens,
                 char *bodies_out, size_t bodies_len, char *metas_out, size_t metas_len)
{
    if (k == NULL || (scheme != VP_SCHEME_TRANSFER && scheme != VP_SCHEME_PIPE) ||
        (agent == NULL && agent_len != 0) || n > SIZE_MAX / META_LEN ||
        metas_len != n * META_LEN ||
        (n != 0 && (pts == NULL || pt_lens == NULL || bodies_out == NULL || metas_out == NULL)))
        return VP_ERR_ARG;
    if (n == 0)
        return VP_OK;
    size_t total = 0, pt_total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bl = vp_body_len(pt_lens[i]);
        if (pt_lens[i] == 0 || (uint64_t)pt_lens[i] > GCM_MAX_BYTES || bl == 0 ||
            total > SIZE_MAX - bl || pt_lens[i] > pts_len - pt_total)
            return VP_ERR_ARG;
        total += bl;
        pt_total += pt_lens[i];
    }
    if (total != bodies_len || pt_total != pts_len)
        return VP_ERR_ARG;
    int rc = put_timestamp(metas_out, NULL, 0); /* one clock reading for the whole batch */
    if (rc != VP_OK)
        return rc;
    worker *w = worker_take(k);
    if (w == NULL)
        return VP_ERR_OPENSSL;
    for (size_t i = 0; i < n && rc == VP_OK; i++) {
        if (i > 0) { /* the same timestamp as the first */
            memset(metas_out, ' ', META_LEN);
            memcpy(metas_out + META_TS, metas_out - META_LEN + META_TS, META_TS_LEN);
        }
        rc = seal_one(w, scheme, agent, agent_len, NULL, NULL, pts, pt_lens[i], bodies_out,
                      metas_out);
        pts += pt_lens[i];
        bodies_out += vp_body_len(pt_lens[i]);
        metas_out += META_LEN;
    }
    worker_give_back(k, w);
    return rc;
}

/* ---------------------------------------------------------------- open */

static int ascii_lower(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch + ('a' - 'A') : ch;
}

/* Constant time in the content of the strings (their lengths are public). */
static int signature_matches(const char *expected, const char *given, size_t given_len)
{
    if (given_len != SIG_HEX_LEN)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < SIG_HEX_LEN; i++)
        diff |= (unsigned char)(expected[i] ^ ascii_lower((unsigned char)given[i]));
    return diff == 0;
}

static int body_is_canonical(const char *body, size_t body_len)
{
    if (body_len < PREFIX_LEN + SUFFIX_LEN || memcmp(body, BODY_PREFIX, PREFIX_LEN) != 0 ||
        memcmp(body + body_len - SUFFIX_LEN, BODY_SUFFIX, SUFFIX_LEN) != 0)
        return 0;
    for (size_t i = PREFIX_LEN; i < body_len - SUFFIX_LEN; i++)
        if (body[i] == '"' || body[i] == '\\')
            return 0;
    return 1;
}

static int open_one(worker *w, int scheme, const char *agent, size_t agent_len,
                    const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                    const char *sig, size_t sig_len, const char *body, size_t body_len,
                    unsigned char *pt_out, size_t pt_cap, size_t *pt_len)
{
    unsigned char iv[IV_LEN + 3], tag[TAG_LEN + 2], chunk[CHUNK];
    char expected[SIG_HEX_LEN];
    int rc;

    *pt_len = 0;
    if (!valid_timestamp(ts, ts_len))
        return VP_BAD_TIMESTAMP;
    if (nonce_len != NONCE_HEX_LEN || !is_lower_hex(nonce, nonce_len))
        return VP_BAD_NONCE;
    if (!body_is_canonical(body, body_len))
        return VP_NOT_CANONICAL;
    if ((rc = sign_request(w->md, scheme, agent, agent_len, ts, ts_len, nonce, nonce_len, body,
                           body_len, expected)) != VP_OK)
        return rc;
    if (!signature_matches(expected, sig, sig_len))
        return VP_BAD_SIGNATURE;

    const char *wire = body + PREFIX_LEN;
    size_t wire_len = body_len - PREFIX_LEN - SUFFIX_LEN;
    if (wire_len < IV_B64_LEN + TAG_B64_LEN + 4 || wire_len % 4 != 0 ||
        b64_decode(wire, IV_B64_LEN, iv) != IV_LEN ||
        b64_decode(wire + IV_B64_LEN, TAG_B64_LEN, tag) != TAG_LEN)
        return VP_BAD_WIRE;
    const char *ct_b64 = wire + IV_B64_LEN + TAG_B64_LEN;
    size_t ct_b64_len = wire_len - IV_B64_LEN - TAG_B64_LEN;
    size_t ct_len = vp_plaintext_len(body, body_len);
    if (ct_len == 0 || ct_len > pt_cap || (uint64_t)ct_len > GCM_MAX_BYTES)
        return VP_BAD_WIRE;

    if (!gcm_start(w->cipher, 0, iv, NULL, 0))
        return VP_ERR_OPENSSL;
    size_t done = 0;
    for (size_t off = 0; off < ct_b64_len; off += CHUNK / 3 * 4) {
        size_t n = ct_b64_len - off < CHUNK / 3 * 4 ? ct_b64_len - off : CHUNK / 3 * 4;
        long got = b64_decode(ct_b64 + off, n, chunk);
        if (got < 0 || (off + n < ct_b64_len && (size_t)got != n / 4 * 3)) {
            rc = VP_BAD_WIRE;
            goto fail;
        }
        if (!gcm_update(w->cipher, chunk, (size_t)got, pt_out + done)) {
            rc = VP_ERR_OPENSSL;
            goto fail;
        }
        done += (size_t)got;
    }
    if (done != ct_len) {
        rc = VP_BAD_WIRE;
        goto fail;
    }
    if (!gcm_finish_decrypt(w->cipher, tag)) {
        rc = VP_BAD_TAG;
        goto fail;
    }
    *pt_len = done;
    return VP_OK;
fail:
    OPENSSL_cleanse(pt_out, done);
    return rc;
}

size_t vp_plaintext_len(const char *body, size_t body_len)
{
    size_t overhead = PREFIX_LEN + IV_B64_LEN + TAG_B64_LEN + SUFFIX_LEN;
    if (body == NULL || body_len < overhead + 4 || (body_len - overhead) % 4 != 0)
        return 0;
    size_t n = (body_len - overhead) / 4 * 3;
    if (body[body_len - SUFFIX_LEN - 1] == '=')
        n -= (body[body_len - SUFFIX_LEN - 2] == '=') ? 2 : 1;
    return n;
}

/* VP_OK when ts_len and nonce_len fit inside headers_len, else the status of the header they
 * leave malformed. */
static int header_split(size_t headers_len, size_t ts_len, size_t nonce_len)
{
    if (ts_len > headers_len)
        return VP_BAD_TIMESTAMP;
    if (nonce_len > headers_len - ts_len)
        return VP_BAD_NONCE;
    return VP_OK;
}

int vp_open(vp_key *k, int scheme, const char *agent, size_t agent_len,
            const char *headers, size_t headers_len, size_t ts_len, size_t nonce_len,
            const char *body, size_t body_len, unsigned char *pt_out, size_t pt_len)
{
    if (k == NULL || (scheme != VP_SCHEME_TRANSFER && scheme != VP_SCHEME_PIPE) ||
        (agent == NULL && agent_len != 0) || (headers == NULL && headers_len != 0) ||
        (body == NULL && body_len != 0) || (pt_out == NULL && pt_len != 0))
        return VP_ERR_ARG;
    int rc = header_split(headers_len, ts_len, nonce_len);
    if (rc != VP_OK)
        return rc;
    worker *w = worker_take(k);
    if (w == NULL)
        return VP_ERR_OPENSSL;
    size_t produced = 0;
    const char *ts = headers, *nonce = ts + ts_len, *sig = nonce + nonce_len;
    rc = open_one(w, scheme, agent, agent_len, ts, ts_len, nonce, nonce_len, sig,
                  headers_len - ts_len - nonce_len, body, body_len, pt_out, pt_len, &produced);
    worker_give_back(k, w);
    if (rc == VP_OK && produced != pt_len) { /* pt_len must be vp_plaintext_len(body) */
        OPENSSL_cleanse(pt_out, produced);
        return VP_ERR_ARG;
    }
    return rc;
}

int vp_open_many(vp_key *const *keys, const int *schemes, size_t n, const char *fields,
                 size_t fields_len, const size_t *field_lens, unsigned char *pts_out,
                 size_t pts_cap, size_t *pt_lens, int *statuses)
{
    if ((n != 0 && (keys == NULL || schemes == NULL || fields == NULL || field_lens == NULL ||
                    pt_lens == NULL || statuses == NULL)) ||
        (pts_out == NULL && pts_cap != 0) || n > SIZE_MAX / 5)
        return VP_ERR_ARG;
    /* The buffers first: agent, headers and body lengths add up to fields_len exactly. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t *fl = field_lens + 5 * i;
        size_t parts[3] = {fl[0], fl[1], fl[4]};
        for (int j = 0; j < 3; j++) {
            if (parts[j] > fields_len - total)
                return VP_ERR_ARG;
            total += parts[j];
        }
    }
    if (total != fields_len)
        return VP_ERR_ARG;
    for (size_t i = 0; i < n; i++)
        if (keys[i] == NULL || (schemes[i] != VP_SCHEME_TRANSFER && schemes[i] != VP_SCHEME_PIPE))
            return VP_ERR_ARG;
    vp_key *held = NULL; /* consecutive requests of one key share a worker */
    worker *w = NULL;
    size_t out_off = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t *fl = field_lens + 5 * i;
        const char *agent = fields, *headers = agent + fl[0], *body = headers + fl[1];
        fields = body + fl[4];
        /* Each plaintext gets the room of its body, which always suffices. */
        size_t room = fl[4] <= pts_cap - out_off ? fl[4] : pts_cap - out_off;
        pt_lens[i] = 0;
        statuses[i] = header_split(fl[1], fl[2], fl[3]);
        if (statuses[i] == VP_OK) {
            if (keys[i] != held) {
                if (w != NULL)
                    worker_give_back(held, w);
                held = keys[i];
                if ((w = worker_take(held)) == NULL)
                    return VP_ERR_OPENSSL;
            }
            const char *nonce = headers + fl[2], *sig = nonce + fl[3];
            statuses[i] = open_one(w, schemes[i], agent, fl[0], headers, fl[2], nonce, fl[3],
                                   sig, fl[1] - fl[2] - fl[3], body, fl[4], pts_out + out_off,
                                   room, &pt_lens[i]);
        }
        out_off += room;
    }
    if (w != NULL)
        worker_give_back(held, w);
    return VP_OK;
}
