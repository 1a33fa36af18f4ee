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
    VP_ERR_ARG = -1,        /* a length or pointer the caller should have checked */
    VP_ERR_OPENSSL = -2     /* an OpenSSL call failed (allocation, provider) */
};

enum { VP_SCHEME_TRANSFER = 0, VP_SCHEME_PIPE = 1 };

int vp_init(void);
const char *vp_openssl_version(void);

vp_key *vp_key_new(const unsigned char *key, size_t key_len);
void vp_key_free(vp_key *k);

int vp_random(unsigned char *out, size_t n);
int vp_sha256_hex(const unsigned char *in, size_t in_len, char *hex_out);

int vp_encrypt(vp_key *k, const unsigned char *iv, size_t iv_len,
               const unsigned char *aad, size_t aad_len,
               const unsigned char *in, size_t in_len,
               unsigned char *out, size_t out_len);
int vp_decrypt(vp_key *k, const unsigned char *iv, size_t iv_len,
               const unsigned char *aad, size_t aad_len,
               const unsigned char *in, size_t in_len,
               unsigned char *out, size_t out_len);

size_t vp_body_len(size_t plaintext_len);
/* The plaintext length a canonical body decodes to (0 when the body cannot be one). */
size_t vp_plaintext_len(const char *body, size_t body_len);

int vp_seal(vp_key *k, int scheme,
            const char *agent, size_t agent_len,
            const char *ts, size_t ts_len,
            const char *nonce_in, size_t nonce_in_len,
            const unsigned char *iv_in, size_t iv_in_len,
            const unsigned char *pt, size_t pt_len,
            char *body_out, size_t body_len,
            char *hex_out);

int vp_seal_many(vp_key *k, int scheme,
                 const char *agent, size_t agent_len,
                 const char *ts, size_t ts_len,
                 size_t n, const unsigned char *pts, const size_t *pt_lens,
                 char *bodies_out, size_t bodies_len,
                 char *hex_out);

int vp_open(vp_key *k, int scheme,
            const char *agent, size_t agent_len,
            const char *ts, size_t ts_len,
            const char *nonce, size_t nonce_len,
            const char *sig, size_t sig_len,
            const char *body, size_t body_len,
            unsigned char *pt_out, size_t pt_len);

int vp_open_many(vp_key *k, int scheme, size_t n, const char *fields, size_t fields_len,
                 const size_t *field_lens, unsigned char *pts_out, size_t pts_cap,
                 size_t *pt_lens, int *statuses);
/* --- cdef end --- */

#endif
