/* A C-only workout of every entry point of the native engine, for the sanitizers:
 * tests/test_c_sanitizers.py builds it with -fsanitize=address,undefined (LeakSanitizer runs at
 * exit) and expects "ok". Round trips, tampered and truncated inputs, batches, fixed values,
 * and every length check, on bodies of one and of several base64 chunks (vpseal.c streams
 * 3072 bytes of plaintext, 4096 base64 characters, at a time). */
#include "vpseal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...)                                                                              \
    do {                                                                                       \
        printf("line %d: ", __LINE__);                                                         \
        printf(__VA_ARGS__);                                                                   \
        printf("\n");                                                                          \
        exit(1);                                                                               \
    } while (0)

#define MAX_PT 20000
/* Around the chunk edges (3072 bytes of plaintext, 4096 base64 characters) and beyond. */
static const size_t SIZES[] = {1, 2, 3, 57, 255, 3071, 3072, 3073, 4096, 6143, 6144, 6145,
                               9216, 9217, MAX_PT};
#define N_SIZES (sizeof(SIZES) / sizeof(SIZES[0]))

static unsigned char pt[MAX_PT];

/* The x-timestamp length of a meta (its timestamp part is space-padded to 20). */
static size_t ts_len_of(const char *meta)
{
    size_t t = 20;
    while (t > 0 && meta[98 + t - 1] == ' ')
        t--;
    return t;
}

/* headers = timestamp, nonce, signature back to back; returns their length. */
static size_t headers_of(const char *meta, char *headers)
{
    size_t t = ts_len_of(meta);
    memcpy(headers, meta + 98, t);
    memcpy(headers + t, meta, 32);
    memcpy(headers + t + 32, meta + 33, 64);
    return t + 96;
}

/* The transfer-scheme signature of a body: sha256(agent + timestamp + nonce + body). */
static void resign(const char *headers, size_t tl, const char *body, size_t bl, char *sig_out)
{
    size_t n = 5 + tl + 32 + bl;
    char *signed_text = malloc(n);
    if (signed_text == NULL)
        FAIL("malloc");
    memcpy(signed_text, "agent", 5);
    memcpy(signed_text + 5, headers, tl + 32);
    memcpy(signed_text + 5 + tl + 32, body, bl);
    if (vp_sha256_hex((const unsigned char *)signed_text, n, sig_out, 64))
        FAIL("sha256");
    free(signed_text);
}

static void aead(vp_key *k, int round)
{
    unsigned char iv[12] = {(unsigned char)round};
    static unsigned char out[MAX_PT + 16], back[MAX_PT];
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t n = SIZES[i] - (round & 1); /* 0 as well */
        size_t aad_len = n % 20;
        if (vp_encrypt(k, iv, 12, pt, aad_len, pt, n, out, n + 16))
            FAIL("encrypt %zu", n);
        if (vp_decrypt(k, iv, 12, pt, aad_len, out, n + 16, back, n) || memcmp(back, pt, n))
            FAIL("decrypt %zu", n);
        out[n / 2] ^= 1;
        if (vp_decrypt(k, iv, 12, pt, aad_len, out, n + 16, back, n) != VP_BAD_TAG)
            FAIL("tampered decrypt %zu", n);
        /* lengths that do not add up are refused before anything is read */
        if (vp_encrypt(k, iv, 12, pt, aad_len, pt, n, out, n + 15) != VP_ERR_ARG ||
            vp_decrypt(k, iv, 12, pt, aad_len, out, n + 16, back, n + 1) != VP_ERR_ARG ||
            vp_encrypt(k, iv, 11, pt, aad_len, pt, n, out, n + 16) != VP_ERR_ARG)
            FAIL("length checks %zu", n);
    }
    /* beyond GCM's limit (2^36 - 32 bytes): refused without touching the buffers */
    size_t huge = (size_t)1 << 36;
    if (sizeof(size_t) > 4 && vp_encrypt(k, iv, 12, NULL, 0, pt, huge, out, huge + 16) != VP_ERR_ARG)
        FAIL("GCM length limit");
}

static void seal_open(vp_key *k, vp_key *other, int round)
{
    int scheme = round & 1;
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t n = SIZES[i];
        size_t bl = vp_body_len(n);
        char *body = malloc(bl);
        unsigned char *back = malloc(n);
        char meta[VP_META_LEN], headers[200];
        if (body == NULL || back == NULL)
            FAIL("malloc");
        if (vp_seal(k, scheme, "agent", 5, pt, n, body, bl, meta, VP_META_LEN))
            FAIL("seal %zu", n);
        if (vp_plaintext_len(body, bl) != n)
            FAIL("plaintext_len %zu", n);
        size_t hl = headers_of(meta, headers), tl = ts_len_of(meta);
        int rc = vp_open(k, scheme, "agent", 5, headers, hl, tl, 32, body, bl, back, n);
        if (rc != VP_OK || memcmp(back, pt, n))
            FAIL("open %zu: %d", n, rc);
        if (vp_open(other, scheme, "agent", 5, headers, hl, tl, 32, body, bl, back, n) !=
            VP_BAD_TAG)
            FAIL("open with another key %zu", n);
        /* splits that do not fit the headers: the header they break */
        if (vp_open(k, scheme, "agent", 5, headers, hl, hl + 1, 0, body, bl, back, n) !=
                VP_BAD_TIMESTAMP ||
            vp_open(k, scheme, "agent", 5, headers, hl, tl, hl - tl + 1, body, bl, back, n) !=
                VP_BAD_NONCE ||
            vp_open(k, scheme, "agent", 5, headers, hl, (size_t)-1, 2, body, bl, back, n) !=
                VP_BAD_TIMESTAMP)
            FAIL("header split %zu", n);
        /* an output length other than the body's plaintext length */
        if (n > 1 && vp_open(k, scheme, "agent", 5, headers, hl, tl, 32, body, bl, back, n - 1) !=
                         VP_BAD_WIRE)
            FAIL("short output %zu", n);
        if (vp_seal(k, scheme, "agent", 5, pt, n, body, bl, meta, VP_META_LEN - 1) != VP_ERR_ARG ||
            vp_seal(k, scheme, "agent", 5, pt, n, body, bl - 1, meta, VP_META_LEN) != VP_ERR_ARG)
            FAIL("seal length checks %zu", n);
        /* tampering in the first, a middle and the last base64 chunk, re-signed (transfer
         * scheme) so that it reaches the wire decoder and GCM, not just the signature check */
        size_t spots[3] = {15 + 40 + 1, 15 + 40 + (bl - 57) / 2, bl - 4};
        for (int s = 0; s < 3 && scheme == 0; s++) {
            char saved = body[spots[s]], sig[64];
            body[spots[s]] = saved == 'A' ? 'B' : 'A';
            resign(headers, tl, body, bl, sig);
            memcpy(headers + tl + 32, sig, 64);
            memset(back, 0x5a, n);
            rc = vp_open(k, scheme, "agent", 5, headers, hl, tl, 32, body, bl, back, n);
            if (rc != VP_BAD_TAG && rc != VP_BAD_WIRE)
                FAIL("tampered body %zu at %zu: %d", n, spots[s], rc);
            body[spots[s]] = saved;
            resign(headers, tl, body, bl, sig);
            memcpy(headers + tl + 32, sig, 64);
            for (size_t j = 0; j < n; j++) /* nothing unauthenticated is left behind */
                if (back[j] != 0x5a && back[j] != 0)
                    FAIL("unauthenticated plaintext released %zu", n);
        }
        if (vp_open(k, scheme, "agent", 5, headers, hl, tl, 32, body, bl, back, n) != VP_OK)
            FAIL("re-signed original %zu", n);
        /* truncated bodies, and bodies whose length is off by a little */
        size_t step = bl > 2000 ? 397 : 7;
        for (size_t cut = 0; cut < bl; cut += step)
            if (vp_open(k, scheme, "agent", 5, headers, hl, tl, 32, body, cut, back, n) == VP_OK)
                FAIL("truncated body opened %zu at %zu", n, cut);
        free(back);
        free(body);
    }
}

static void batches(vp_key *k, vp_key *other)
{
    /* seal_many over sizes of one and several chunks */
    size_t lens[N_SIZES], pts_len = 0, bodies_len = 0;
    for (size_t i = 0; i < N_SIZES; i++) {
        lens[i] = SIZES[i] <= 10000 ? SIZES[i] : 100;
        pts_len += lens[i];
        bodies_len += vp_body_len(lens[i]);
    }
    unsigned char *pts = malloc(pts_len);
    char *bodies = malloc(bodies_len), metas[N_SIZES * VP_META_LEN];
    if (pts == NULL || bodies == NULL)
        FAIL("malloc");
    for (size_t i = 0, off = 0; i < N_SIZES; off += lens[i], i++)
        memcpy(pts + off, pt, lens[i]);
    if (vp_seal_many(k, 0, "a", 1, N_SIZES, pts, pts_len, lens, bodies, bodies_len, metas,
                     sizeof(metas)))
        FAIL("seal_many");
    if (vp_seal_many(k, 0, "a", 1, N_SIZES, pts, pts_len - 1, lens, bodies, bodies_len, metas,
                     sizeof(metas)) != VP_ERR_ARG ||
        vp_seal_many(k, 0, "a", 1, N_SIZES, pts, pts_len + 1, lens, bodies, bodies_len, metas,
                     sizeof(metas)) != VP_ERR_ARG ||
        vp_seal_many(k, 0, "a", 1, N_SIZES, pts, pts_len, lens, bodies, bodies_len, metas,
                     sizeof(metas) - 1) != VP_ERR_ARG ||
        vp_seal_many(k, 0, "a", 1, N_SIZES, pts, pts_len, lens, bodies, bodies_len + 1, metas,
                     sizeof(metas)) != VP_ERR_ARG)
        FAIL("seal_many length checks");

    /* open_many: every sealed body, then one truncated (of several chunks), one whose header
     * split does not fit, and one for the other key */
    enum { EXTRA = 3 };
    size_t n = N_SIZES + EXTRA, fields_len = 0, field_lens[5 * (N_SIZES + EXTRA)];
    size_t body_off[N_SIZES];
    for (size_t i = 0, off = 0; i < N_SIZES; off += vp_body_len(lens[i]), i++)
        body_off[i] = off;
    char *fields = malloc(bodies_len + N_SIZES * 8192 + n * 200);
    vp_key *keys[N_SIZES + EXTRA];
    int schemes[N_SIZES + EXTRA], statuses[N_SIZES + EXTRA];
    size_t pt_lens[N_SIZES + EXTRA];
    static const size_t extra_src[EXTRA] = {8, 0, 7};
    if (fields == NULL)
        FAIL("malloc");
    for (size_t i = 0; i < n; i++) {
        size_t src = i < N_SIZES ? i : extra_src[i - N_SIZES];
        const char *body = bodies + body_off[src], *meta = metas + src * VP_META_LEN;
        size_t bl = vp_body_len(lens[src]);
        char headers[200];
        size_t hl = headers_of(meta, headers), tl = ts_len_of(meta);
        if (i == N_SIZES)
            bl -= 4; /* truncated */
        if (i == N_SIZES + 1)
            tl = hl + 3; /* does not fit */
        keys[i] = i == N_SIZES + 2 ? other : k;
        schemes[i] = 0;
        memcpy(fields + fields_len, "a", 1);
        memcpy(fields + fields_len + 1, headers, hl);
        memcpy(fields + fields_len + 1 + hl, body, bl);
        fields_len += 1 + hl + bl;
        size_t fl[5] = {1, hl, tl, 32, bl};
        memcpy(field_lens + 5 * i, fl, sizeof(fl));
    }
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        cap += field_lens[5 * i + 4];
    unsigned char *out = malloc(cap);
    if (out == NULL)
        FAIL("malloc");
    if (vp_open_many(keys, schemes, n, fields, fields_len, field_lens, out, cap, pt_lens, statuses))
        FAIL("open_many");
    size_t off = 0;
    for (size_t i = 0; i < N_SIZES; i++) {
        if (statuses[i] != VP_OK || pt_lens[i] != lens[i] || memcmp(out + off, pt, lens[i]))
            FAIL("open_many item %zu: %d", i, statuses[i]);
        off += field_lens[5 * i + 4];
    }
    if (statuses[N_SIZES] == VP_OK || statuses[N_SIZES + 1] != VP_BAD_TIMESTAMP ||
        statuses[N_SIZES + 2] != VP_BAD_TAG)
        FAIL("open_many bad items: %d %d %d", statuses[N_SIZES], statuses[N_SIZES + 1],
             statuses[N_SIZES + 2]);
    if (vp_open_many(keys, schemes, n, fields, fields_len - 1, field_lens, out, cap, pt_lens,
                     statuses) != VP_ERR_ARG ||
        vp_open_many(keys, schemes, n, fields, fields_len + 1, field_lens, out, cap, pt_lens,
                     statuses) != VP_ERR_ARG)
        FAIL("open_many length checks");
    /* less room than the bodies: never written past, the short items fail */
    if (vp_open_many(keys, schemes, n, fields, fields_len, field_lens, out, cap / 2, pt_lens,
                     statuses))
        FAIL("open_many short room");
    free(out);
    free(fields);
    free(bodies);
    free(pts);
}

static void fixed_and_misc(vp_key *k)
{
    char body[400], meta[VP_META_LEN], hex[64];
    unsigned char iv[12] = {9}, r[2000];
    size_t bl = vp_body_len(57);
    if (vp_seal_fixed(k, 1, "agent", 5, "1769746894501", 13, "56ffd5ecd8a3a4457863a0bd7c298fb2",
                      32, iv, 12, pt, 57, body, bl, meta, VP_META_LEN))
        FAIL("seal_fixed");
    if (vp_seal_fixed(k, 1, "agent", 5, "17x", 3, NULL, 0, NULL, 0, pt, 57, body, bl, meta,
                      VP_META_LEN) != VP_ERR_ARG ||
        vp_seal_fixed(k, 1, "agent", 5, NULL, 0, "56FFD5ECD8A3A4457863A0BD7C298FB2", 32, NULL, 0,
                      pt, 57, body, bl, meta, VP_META_LEN) != VP_ERR_ARG ||
        vp_seal_fixed(k, 1, "agent", 5, NULL, 0, NULL, 0, iv, 11, pt, 57, body, bl, meta,
                      VP_META_LEN) != VP_ERR_ARG ||
        vp_seal(k, 2, "agent", 5, pt, 57, body, bl, meta, VP_META_LEN) != VP_ERR_ARG ||
        vp_seal(k, 0, "agent", 5, pt, 0, body, vp_body_len(0), meta, VP_META_LEN) != VP_ERR_ARG)
        FAIL("seal argument checks");
    if (vp_sha256_hex(pt, 100, hex, 64) || vp_sha256_hex(pt, 100, hex, 63) != VP_ERR_ARG)
        FAIL("sha256");
    if (vp_random(r, 2000) || vp_random(r, 7) || vp_random(r, 0) || vp_random(NULL, 0) ||
        vp_random(NULL, 1) != VP_ERR_ARG)
        FAIL("random");
}

int main(void)
{
    unsigned char key[32] = {1}, key2[32] = {2};
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (unsigned char)(i * 7);
    if (vp_key_new(key, 31) != NULL)
        FAIL("short key accepted");
    for (int round = 0; round < 6; round++) {
        vp_key *k = vp_key_new(key, 32), *other = vp_key_new(key2, 32);
        if (k == NULL || other == NULL)
            FAIL("key");
        aead(k, round);
        seal_open(k, other, round);
        batches(k, other);
        fixed_and_misc(k);
        vp_key_free(other);
        vp_key_free(k);
    }
    puts("ok");
    return 0;
}
