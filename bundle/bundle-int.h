/* libbundle internals: error causes, the bounded CBOR reader and the deterministic writer. */
#ifndef SLUICE_BUNDLE_INT_H
#define SLUICE_BUNDLE_INT_H

#include "bundle/bundle.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- causes ---- */
enum bundle_err bundle_fail(enum bundle_err err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same, appending the OpenSSL error queue (and clearing it). */
enum bundle_err bundle_fail_ossl(enum bundle_err err, const char *what);
void bundle_clear_cause(void);

/* ---- reader: one CBOR head at a time over a buffer that bundle_cbor_check() accepted, or any
 * buffer (every read is bounds-checked; the reader never trusts declared lengths). ---- */
enum cr_type { CR_UINT, CR_NEG, CR_BSTR, CR_TSTR, CR_ARRAY, CR_MAP, CR_TAG, CR_SIMPLE, CR_FLOAT };

struct cr_item {
	enum cr_type type;
	uint64_t val;             /* uint value, neg: -1-val, array/map count, tag number, simple value */
	const uint8_t *ptr;       /* string content */
	size_t len;               /* string length */
	const uint8_t *start;     /* first byte of the head */
	size_t head_len;
	bool canonical;           /* head in shortest form */
};

struct cr {
	const uint8_t *p, *end;
};

void bundle_cr_init(struct cr *r, const uint8_t *buf, size_t len);
static inline bool cr_done(const struct cr *r) { return r->p == r->end; }
/* Read one head (string content consumed with it). Does not recurse. */
enum bundle_err bundle_cr_head(struct cr *r, struct cr_item *it);
/* Skip one whole item (depth-bounded); ret (optional) gets its byte range. */
enum bundle_err bundle_cr_skip(struct cr *r, struct bundle_bytes *ret);
/* Typed reads: BUNDLE_ERR_FORMAT on a different type. what names the field for the cause. */
enum bundle_err bundle_cr_uint(struct cr *r, uint64_t *v, const char *what);
enum bundle_err bundle_cr_int(struct cr *r, int64_t *v, const char *what);
enum bundle_err bundle_cr_bstr(struct cr *r, struct bundle_bytes *v, const char *what);
enum bundle_err bundle_cr_tstr(struct cr *r, struct bundle_bytes *v, const char *what);
enum bundle_err bundle_cr_array(struct cr *r, uint64_t *n, const char *what);
enum bundle_err bundle_cr_map(struct cr *r, uint64_t *n, const char *what);
enum bundle_err bundle_cr_bool(struct cr *r, bool *v, const char *what);
/* Peek the type of the next item without consuming it. */
enum bundle_err bundle_cr_peek(const struct cr *r, struct cr_item *it);
/* Map key that is an int or a text string. */
struct bundle_cr_key {
	bool is_int;
	int64_t i;
	struct bundle_bytes s;
};
enum bundle_err bundle_cr_key(struct cr *r, struct bundle_cr_key *k);
bool bundle_cr_key_is(const struct bundle_cr_key *k, const char *s);

/* ---- writer: deterministic CBOR into a growable buffer with a hard cap. Errors are sticky. ---- */
struct cw {
	uint8_t *buf;
	size_t len, cap, max;
	enum bundle_err err;
};

void bundle_cw_init(struct cw *w, size_t max);
void bundle_cw_free(struct cw *w);
/* Hand the buffer over (NULL-terminated spare byte not counted). */
enum bundle_err bundle_cw_finish(struct cw *w, uint8_t **ret, size_t *ret_len);
void bundle_cw_raw(struct cw *w, const void *p, size_t n);
void bundle_cw_uint(struct cw *w, uint64_t v);
void bundle_cw_int(struct cw *w, int64_t v);
void bundle_cw_bstr(struct cw *w, const void *p, size_t n);
void bundle_cw_tstr(struct cw *w, const char *s);
void bundle_cw_tstrn(struct cw *w, const void *p, size_t n);
void bundle_cw_array(struct cw *w, uint64_t n);
void bundle_cw_map(struct cw *w, uint64_t n);
void bundle_cw_tag(struct cw *w, uint64_t t);
void bundle_cw_null(struct cw *w);
void bundle_cw_bool(struct cw *w, bool b);

/* ---- crypto helpers shared by cose.c and key.c ---- */
/* Hash size for an alg (32 ES256, 48 ES384, 0 EdDSA), raw signature size (64, 96, 64). */
size_t bundle_alg_hash_len(int alg);
size_t bundle_alg_sig_len(int alg);
bool bundle_alg_supported(int64_t alg);
/* Verify a raw signature over msg with key (EVP internals in key.c). */
enum bundle_err bundle_key_verify_raw(const struct bundle_key *k, int alg, const uint8_t *msg, size_t msg_len,
				      const uint8_t *sig, size_t sig_len);
/* Sign msg with a private key, raw output. */
enum bundle_err bundle_key_sign_raw(const struct bundle_key *k, int alg, const uint8_t *msg, size_t msg_len,
				    uint8_t *sig, size_t sig_cap, size_t *sig_len);
void bundle_sha256(const void *p, size_t n, uint8_t out[32]);
void bundle_sha384(const void *p, size_t n, uint8_t out[48]);

/* The Sig_structure ["Signature1", protected_bstr, h'', payload]. */
enum bundle_err bundle_sig_structure(const uint8_t *prot, size_t prot_len, const uint8_t *payload,
				     size_t payload_len, uint8_t **ret, size_t *ret_len);
/* Run a signer over (protected map bytes, payload): raw signature into sig. */
enum bundle_err bundle_sign_tbs(const struct bundle_signer *s, const uint8_t *prot, size_t prot_len,
				const uint8_t *payload, size_t payload_len, uint8_t *sig, size_t *sig_len);
/* Encode a protected header map (deterministic) for alg, kid and hdr. */
enum bundle_err bundle_encode_protected(int alg, struct bundle_bytes kid, const struct bundle_cose_hdr *hdr,
					uint8_t **ret, size_t *ret_len);

/* A list of allocations owned by a decoded struct (EAR, evidence). */
struct pool {
	void **p;
	size_t n, cap;
};
/* Copy n bytes (+ a NUL when nul) into a new allocation owned by the pool; NULL on ENOMEM. */
void *bundle_pool_dup(struct pool *pl, const void *src, size_t n, bool nul);
void *bundle_pool_alloc(struct pool *pl, size_t n);
void bundle_pool_free(struct pool *pl);

/* bundle_cose_parse, also returning the raw items: [0] protected bstr item, [1] unprotected
 * map, [2] payload item (bstr or nil), [3] signature item. */
enum bundle_err bundle_cose_parse_items(const uint8_t *buf, size_t len, struct bundle_cose *ret,
					struct bundle_bytes items[4]);

#endif
