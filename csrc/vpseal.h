/* vpseal native engine: AES-256-GCM, the VP wire string and request signatures over
 * OpenSSL libcrypto. This file is both the C header and (between the markers) the cffi cdef,
 * so it must stay within what cffi's parser understands: no macros in the cdef part. */
#ifndef VPSEAL_H
#define VPSEAL_H
#include <stddef.h>

/* --- cdef begin --- */
typedef struct vp_key vp_key;

/* Return codes shared by every function below. */
enum {
    VP_OK = 0,
    VP_NOT_CANONICAL = 1,   /* body is not exactly {"cipherText":"..."} */
    VP_BAD_SIGNATURE = 2,
    VP_BAD_WIRE = 3,
    VP_BAD_TAG = 4,
    VP_BAD_TIMESTAMP = 5,   /* x-timestamp is not 1-16 decimal digits */
    VP_BAD_NONCE = 6,       /* x-nonce is not 32 lowercase hex characters */
    VP_ERR_ARG = -1,        /* a length or pointer the caller should have checked */
    VP_ERR_OPENSSL = -2     /* an OpenSSL call failed (allocation, provider) */
};

enum { VP_SCHEME_TRANSFER = 0, VP_SCHEME_PIPE = 1 };
enum { VP_META_LEN = 118 };

int vp_init(void);
const char *vp_openssl_version(void);

vp_key *vp_key_new(const unsigned char *key, size_t key_len);
void vp_key_free(vp_key *k);

/* n bytes from the CSPRNG. Safe however the process was duplicated (fork, _Fork, clone):
 * see the randomness section of vpseal.c. Calls vp_init() itself. */
int vp_random(unsigned char *out, size_t n);
/* hex_len must be 64. */
int vp_sha256_hex(const unsigned char *in, size_t in_len, char *hex_out, size_t hex_len);

/* Every buffer comes with its length, and every length is checked (VP_ERR_ARG otherwise):
 * iv_len 12, out_len = in_len + 16 (encrypt) or in_len - 16 (decrypt). */
int vp_encrypt(vp_key *k, const unsigned char *iv, size_t iv_len,
               const unsigned char *aad, size_t aad_len,
               const unsigned char *in, size_t in_len,
               unsigned char *out, size_t out_len);
int vp_decrypt(vp_key *k, const unsigned char *iv, size_t iv_len,
               const unsigned char *aad, size_t aad_len,
               const unsigned char *in, size_t in_len,
               unsigned char *out, size_t out_len);
/* The same without AAD: two arguments fewer to convert on the way in. */
int vp_encrypt_noaad(vp_key *k, const unsigned char *iv, size_t iv_len,
                     const unsigned char *in, size_t in_len, unsigned char *out, size_t out_len);
int vp_decrypt_noaad(vp_key *k, const unsigned char *iv, size_t iv_len,
                     const unsigned char *in, size_t in_len, unsigned char *out, size_t out_len);

size_t vp_body_len(size_t plaintext_len);
/* The plaintext length a canonical body decodes to (0 when the body cannot be one). */
size_t vp_plaintext_len(const char *body, size_t body_len);

/* meta_out receives VP_META_LEN characters (meta_len must be VP_META_LEN): nonce hex (32),
 * a space, signature hex (64), a space, and the x-timestamp text (up to 20 characters, padded
 * with spaces), so that splitting it on spaces gives the three header values.
 * body_len must be vp_body_len(pt_len). vp_seal draws the nonce and IV and reads the clock;
 * vp_seal_fixed takes any of them given (NULL: fresh), for known answers. */
int vp_seal(vp_key *k, int scheme, const char *agent, size_t agent_len,
            const unsigned char *pt, size_t pt_len, char *body_out, size_t body_len,
            char *meta_out, size_t meta_len);
int vp_seal_fixed(vp_key *k, int scheme, const char *agent, size_t agent_len,
                  const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                  const unsigned char *iv, size_t iv_len,
                  const unsigned char *pt, size_t pt_len, char *body_out, size_t body_len,
                  char *meta_out, size_t meta_len);
/* n requests, one clock reading: plaintexts back to back in pts (pts_len = the sum of
 * pt_lens), bodies back to back in bodies_out, metas VP_META_LEN apart (metas_len = n
 * VP_META_LEN). */
int vp_seal_many(vp_key *k, int scheme, const char *agent, size_t agent_len,
                 size_t n, const unsigned char *pts, size_t pts_len, const size_t *pt_lens,
                 char *bodies_out, size_t bodies_len, char *metas_out, size_t metas_len);

/* headers = x-timestamp text, x-nonce, x-signature back to back (headers_len in all);
 * ts_len and nonce_len split it, and a split that does not fit is VP_BAD_TIMESTAMP
 * (ts_len > headers_len) or VP_BAD_NONCE. pt_len must equal vp_plaintext_len(body); pt_out
 * receives the plaintext only when VP_OK is returned. */
int vp_open(vp_key *k, int scheme, const char *agent, size_t agent_len,
            const char *headers, size_t headers_len, size_t ts_len, size_t nonce_len,
            const char *body, size_t body_len, unsigned char *pt_out, size_t pt_len);

/* n requests, each with its own key and scheme (a gateway's batch mixes agents); one call.
 * fields = for each request: agent, headers (as for vp_open), body, back to back (fields_len
 * in all); field_lens = for each request: agent_len, headers_len, ts_len, nonce_len, body_len.
 * The agent, headers and body lengths must add up to fields_len (VP_ERR_ARG otherwise); a
 * header split that does not fit is that request's own status, as for vp_open. Plaintext i is
 * written at the offset of body i's running total (a body always has room). */
int vp_open_many(vp_key *const *keys, const int *schemes, size_t n, const char *fields,
                 size_t fields_len, const size_t *field_lens, unsigned char *pts_out,
                 size_t pts_cap, size_t *pt_lens, int *statuses);
/* --- cdef end --- */

#endif
