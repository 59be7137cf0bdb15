/* Deterministic CBOR (RFC 8949 §4.2.1) on libcbor's encoders and its non-allocating streaming
 * decoder, plus error causes and bundle_strerror.
 *
 * Untrusted input never goes through libcbor's allocating cbor_load(): the reader decodes one
 * head at a time with cbor_stream_decode() over the caller's buffer, so nothing is allocated
 * for input, declared lengths are checked against the bytes that remain, and nesting is
 * bounded by BUNDLE_MAX_DEPTH. */
#include "bundle/bundle-int.h"

#include <cbor.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* errors */

static _Thread_local char cause[512];

const char *bundle_strerror(enum bundle_err err)
{
	switch (err) {
	case BUNDLE_OK: return "success";
	case BUNDLE_ERR_INVAL: return "invalid argument";
	case BUNDLE_ERR_NOMEM: return "out of memory";
	case BUNDLE_ERR_TOOBIG: return "input or output too large";
	case BUNDLE_ERR_CBOR: return "malformed CBOR";
	case BUNDLE_ERR_NONCANON: return "CBOR not deterministically encoded";
	case BUNDLE_ERR_FORMAT: return "unexpected structure";
	case BUNDLE_ERR_UNSUPPORTED: return "unsupported algorithm or feature";
	case BUNDLE_ERR_KEY: return "unusable key";
	case BUNDLE_ERR_SIGNATURE: return "signature does not verify";
	case BUNDLE_ERR_KID: return "no key matches the kid";
	case BUNDLE_ERR_PROOF: return "inclusion proof does not hold";
	case BUNDLE_ERR_MISMATCH: return "not bound to the given data";
	case BUNDLE_ERR_EXPIRED: return "expired or not yet valid";
	case BUNDLE_ERR_CRYPTO: return "cryptographic library failure";
	case BUNDLE_ERR_SIGNER: return "signer failed";
	case BUNDLE_ERR_ARCHIVE: return "malformed or unsafe bundle archive";
	case BUNDLE_ERR_NOTFOUND: return "not found";
	}
	return "unknown error";
}

const char *bundle_last_cause(void)
{
	return cause;
}

void bundle_clear_cause(void)
{
	cause[0] = 0;
}

enum bundle_err bundle_fail(enum bundle_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cause, sizeof cause, fmt, ap);
	va_end(ap);
	return err;
}

enum bundle_err bundle_fail_ossl(enum bundle_err err, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "no OpenSSL error";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(cause, sizeof cause, "%s: %s", what, buf);
	return err;
}

/* ---------------------------------------------------------------------------------------- */
/* reader */

struct hctx {
	struct cr_item *it;
	bool bad;         /* indefinite length, break, or something we refuse */
};

#define HC(ctx) (((struct hctx *)(ctx))->it)
static void cb_u8(void *c, uint8_t v) { HC(c)->type = CR_UINT; HC(c)->val = v; }
static void cb_u16(void *c, uint16_t v) { HC(c)->type = CR_UINT; HC(c)->val = v; }
static void cb_u32(void *c, uint32_t v) { HC(c)->type = CR_UINT; HC(c)->val = v; }
static void cb_u64(void *c, uint64_t v) { HC(c)->type = CR_UINT; HC(c)->val = v; }
static void cb_n8(void *c, uint8_t v) { HC(c)->type = CR_NEG; HC(c)->val = v; }
static void cb_n16(void *c, uint16_t v) { HC(c)->type = CR_NEG; HC(c)->val = v; }
static void cb_n32(void *c, uint32_t v) { HC(c)->type = CR_NEG; HC(c)->val = v; }
static void cb_n64(void *c, uint64_t v) { HC(c)->type = CR_NEG; HC(c)->val = v; }
static void cb_bstr(void *c, cbor_data p, size_t n)
{
	HC(c)->type = CR_BSTR;
	HC(c)->ptr = p;
	HC(c)->len = n;
}
static void cb_tstr(void *c, cbor_data p, size_t n)
{
	HC(c)->type = CR_TSTR;
	HC(c)->ptr = p;
	HC(c)->len = n;
}
static void cb_indef(void *c) { ((struct hctx *)c)->bad = true; }
static void cb_array(void *c, size_t n) { HC(c)->type = CR_ARRAY; HC(c)->val = n; }
static void cb_map(void *c, size_t n) { HC(c)->type = CR_MAP; HC(c)->val = n; }
static void cb_tag(void *c, uint64_t v) { HC(c)->type = CR_TAG; HC(c)->val = v; }
static void cb_f4(void *c, float v) { (void)v; HC(c)->type = CR_FLOAT; }
static void cb_f8(void *c, double v) { (void)v; HC(c)->type = CR_FLOAT; }
static void cb_undef(void *c) { HC(c)->type = CR_SIMPLE; HC(c)->val = 23; }
static void cb_null(void *c) { HC(c)->type = CR_SIMPLE; HC(c)->val = 22; }
static void cb_bool(void *c, bool v) { HC(c)->type = CR_SIMPLE; HC(c)->val = v ? 21 : 20; }

static const struct cbor_callbacks head_cbs = {
	.uint8 = cb_u8, .uint16 = cb_u16, .uint32 = cb_u32, .uint64 = cb_u64,
	.negint8 = cb_n8, .negint16 = cb_n16, .negint32 = cb_n32, .negint64 = cb_n64,
	.byte_string = cb_bstr, .byte_string_start = cb_indef,
	.string = cb_tstr, .string_start = cb_indef,
	.array_start = cb_array, .indef_array_start = cb_indef,
	.map_start = cb_map, .indef_map_start = cb_indef,
	.tag = cb_tag, .float2 = cb_f4, .float4 = cb_f4, .float8 = cb_f8,
	.undefined = cb_undef, .null = cb_null, .boolean = cb_bool, .indef_break = cb_indef,
};

void bundle_cr_init(struct cr *r, const uint8_t *buf, size_t len)
{
	r->p = buf;
	r->end = buf + len;
}

enum bundle_err bundle_cr_head(struct cr *r, struct cr_item *it)
{
	size_t avail = (size_t)(r->end - r->p);
	struct hctx ctx = {.it = it};
	struct cbor_decoder_result res;
	uint8_t ib, ai, major;
	size_t hl;

	memset(it, 0, sizeof *it);
	if (avail == 0)
		return bundle_fail(BUNDLE_ERR_CBOR, "truncated CBOR (item expected)");
	ib = r->p[0];
	ai = ib & 0x1f;
	major = ib >> 5;
	if (ai >= 28 && ai <= 30)
		return bundle_fail(BUNDLE_ERR_CBOR, "reserved additional information 0x%02x", ib);
	if (ai == 31)
		return bundle_fail(BUNDLE_ERR_CBOR, "indefinite length or break (0x%02x) not accepted", ib);
	if (major == 7 && ai == 24)
		return bundle_fail(BUNDLE_ERR_CBOR, "simple value 0xf8 not accepted");
	if (major == 7 && ai < 20)
		return bundle_fail(BUNDLE_ERR_CBOR, "unassigned simple value %u not accepted", ai);
	hl = ai < 24 ? 1 : ai == 24 ? 2 : ai == 25 ? 3 : ai == 26 ? 5 : 9;
	if (hl > avail)
		return bundle_fail(BUNDLE_ERR_CBOR, "truncated CBOR head");
	if (major == 6 && ai < 24) {
		/* libcbor 0.8's streaming decoder refuses immediate tags 6..20 (it calls them
		 * "unassigned"), which includes COSE_Sign1's tag 18: decode that head here. */
		it->type = CR_TAG;
		it->val = ai;
		res.status = CBOR_DECODER_FINISHED;
		res.read = 1;
	} else {
		res = cbor_stream_decode(r->p, avail, &head_cbs, &ctx);
	}
	if (res.status != CBOR_DECODER_FINISHED || ctx.bad)
		return bundle_fail(BUNDLE_ERR_CBOR, "%s (item starting with 0x%02x)",
				   res.status == CBOR_DECODER_NEDATA ? "truncated CBOR" : "malformed CBOR", ib);
	if (it->type == CR_BSTR || it->type == CR_TSTR) {
		if (it->len > avail - hl || res.read != hl + it->len || it->ptr != r->p + hl)
			return bundle_fail(BUNDLE_ERR_CBOR, "string length exceeds input");
		it->val = it->len;
	} else if (res.read != hl) {
		return bundle_fail(BUNDLE_ERR_CBOR, "unexpected head length");
	}
	it->start = r->p;
	it->head_len = hl;
	if (it->type == CR_FLOAT)
		it->canonical = false;
	else if (major == 7)
		it->canonical = true;
	else
		it->canonical = ai < 24 || (ai == 24 && it->val >= 24) || (ai == 25 && it->val > 0xff) ||
				(ai == 26 && it->val > 0xffff) || (ai == 27 && it->val > 0xffffffffu);
	r->p += res.read;
	return BUNDLE_OK;
}

enum bundle_err bundle_cr_peek(const struct cr *r, struct cr_item *it)
{
	struct cr c = *r;
	return bundle_cr_head(&c, it);
}

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Walk one item: well-formedness, depth, optionally determinism. */
static enum bundle_err walk(struct cr *r, int depth, bool det)
{
	struct cr_item it;
	enum bundle_err e;

	if (depth > BUNDLE_MAX_DEPTH)
		return bundle_fail(BUNDLE_ERR_CBOR, "CBOR nested deeper than %d", BUNDLE_MAX_DEPTH);
	if ((e = bundle_cr_head(r, &it)))
		return e;
	if (det && !it.canonical)
		return bundle_fail(BUNDLE_ERR_NONCANON, "non-shortest CBOR head or float (0x%02x)", it.start[0]);
	switch (it.type) {
	case CR_ARRAY:
		for (uint64_t i = 0; i < it.val; i++)
			if ((e = walk(r, depth + 1, det)))
				return e;
		return BUNDLE_OK;
	case CR_MAP: {
		const uint8_t *pk = NULL;
		size_t pkl = 0;
		for (uint64_t i = 0; i < it.val; i++) {
			const uint8_t *k = r->p;
			if ((e = walk(r, depth + 1, det)))
				return e;
			if (det) {
				size_t kl = (size_t)(r->p - k);
				if (pk && keycmp(pk, pkl, k, kl) >= 0)
					return bundle_fail(BUNDLE_ERR_NONCANON, "map keys unsorted or duplicate");
				pk = k;
				pkl = kl;
			}
			if ((e = walk(r, depth + 1, det)))
				return e;
		}
		return BUNDLE_OK;
	}
	case CR_TAG:
		return walk(r, depth + 1, det);
	case CR_UINT:
	case CR_NEG:
	case CR_BSTR:
	case CR_TSTR:
	case CR_SIMPLE:
	case CR_FLOAT:
		return BUNDLE_OK;
	}
	return BUNDLE_OK;
}

enum bundle_err bundle_cr_skip(struct cr *r, struct bundle_bytes *ret)
{
	const uint8_t *s = r->p;
	enum bundle_err e = walk(r, 0, false);
	if (e)
		return e;
	if (ret) {
		ret->ptr = s;
		ret->len = (size_t)(r->p - s);
	}
	return BUNDLE_OK;
}

enum bundle_err bundle_cbor_check(const uint8_t *buf, size_t len, int deterministic)
{
	struct cr r;
	enum bundle_err e;

	bundle_clear_cause();
	if (!buf && len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL buffer");
	bundle_cr_init(&r, buf, len);
	if ((e = walk(&r, 0, deterministic != 0)))
		return e;
	if (!cr_done(&r))
		return bundle_fail(BUNDLE_ERR_CBOR, "%zu trailing bytes after the CBOR item",
				   (size_t)(r.end - r.p));
	return BUNDLE_OK;
}

static const char *tname(enum cr_type t)
{
	switch (t) {
	case CR_UINT: return "uint";
	case CR_NEG: return "negative int";
	case CR_BSTR: return "bstr";
	case CR_TSTR: return "tstr";
	case CR_ARRAY: return "array";
	case CR_MAP: return "map";
	case CR_TAG: return "tag";
	case CR_SIMPLE: return "simple value";
	case CR_FLOAT: return "float";
	}
	return "?";
}

static enum bundle_err want(struct cr *r, struct cr_item *it, enum cr_type t, const char *what)
{
	enum bundle_err e = bundle_cr_head(r, it);
	if (e)
		return e;
	if (it->type != t)
		return bundle_fail(BUNDLE_ERR_FORMAT, "%s: expected %s, got %s", what, tname(t), tname(it->type));
	return BUNDLE_OK;
}

enum bundle_err bundle_cr_uint(struct cr *r, uint64_t *v, const char *what)
{
	struct cr_item it;
	enum bundle_err e = want(r, &it, CR_UINT, what);
	if (!e)
		*v = it.val;
	return e;
}

enum bundle_err bundle_cr_int(struct cr *r, int64_t *v, const char *what)
{
	struct cr_item it;
	enum bundle_err e = bundle_cr_head(r, &it);
	if (e)
		return e;
	if ((it.type != CR_UINT && it.type != CR_NEG) || it.val > INT64_MAX)
		return bundle_fail(BUNDLE_ERR_FORMAT, "%s: expected int64, got %s", what, tname(it.type));
	*v = it.type == CR_UINT ? (int64_t)it.val : -1 - (int64_t)it.val;
	return BUNDLE_OK;
}

enum bundle_err bundle_cr_bstr(struct cr *r, struct bundle_bytes *v, const char *what)
{
	struct cr_item it;
	enum bundle_err e = want(r, &it, CR_BSTR, what);
	if (!e) {
		v->ptr = it.ptr;
		v->len = it.len;
	}
	return e;
}

enum bundle_err bundle_cr_tstr(struct cr *r, struct bundle_bytes *v, const char *what)
{
	struct cr_item it;
	enum bundle_err e = want(r, &it, CR_TSTR, what);
	if (!e) {
		v->ptr = it.ptr;
		v->len = it.len;
	}
	return e;
}

enum bundle_err bundle_cr_array(struct cr *r, uint64_t *n, const char *what)
{
	struct cr_item it;
	enum bundle_err e = want(r, &it, CR_ARRAY, what);
	if (!e) {
		if (it.val > (uint64_t)(r->end - r->p))
			return bundle_fail(BUNDLE_ERR_CBOR, "%s: array count exceeds input", what);
		*n = it.val;
	}
	return e;
}

enum bundle_err bundle_cr_map(struct cr *r, uint64_t *n, const char *what)
{
	struct cr_item it;
	enum bundle_err e = want(r, &it, CR_MAP, what);
	if (!e) {
		if (it.val > (uint64_t)(r->end - r->p) / 2)
			return bundle_fail(BUNDLE_ERR_CBOR, "%s: map count exceeds input", what);
		*n = it.val;
	}
	return e;
}

enum bundle_err bundle_cr_bool(struct cr *r, bool *v, const char *what)
{
	struct cr_item it;
	enum bundle_err e = want(r, &it, CR_SIMPLE, what);
	if (e)
		return e;
	if (it.val != 20 && it.val != 21)
		return bundle_fail(BUNDLE_ERR_FORMAT, "%s: expected bool", what);
	*v = it.val == 21;
	return BUNDLE_OK;
}

enum bundle_err bundle_cr_key(struct cr *r, struct bundle_cr_key *k)
{
	struct cr_item it;
	struct cr save = *r;
	enum bundle_err e = bundle_cr_head(r, &it);
	memset(k, 0, sizeof *k);
	if (e)
		return e;
	if ((it.type == CR_UINT || it.type == CR_NEG) && it.val <= INT64_MAX) {
		k->is_int = true;
		k->i = it.type == CR_UINT ? (int64_t)it.val : -1 - (int64_t)it.val;
		return BUNDLE_OK;
	}
	if (it.type == CR_TSTR) {
		k->s.ptr = it.ptr;
		k->s.len = it.len;
		return BUNDLE_OK;
	}
	/* another kind of key: skip it whole, report as a key that matches nothing */
	*r = save;
	k->is_int = false;
	k->s.ptr = NULL;
	return bundle_cr_skip(r, NULL);
}

bool bundle_cr_key_is(const struct bundle_cr_key *k, const char *s)
{
	size_t n = strlen(s);
	return !k->is_int && k->s.ptr && k->s.len == n && memcmp(k->s.ptr, s, n) == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* writer */

void bundle_cw_init(struct cw *w, size_t max)
{
	memset(w, 0, sizeof *w);
	w->max = max;
}

void bundle_cw_free(struct cw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

static bool reserve(struct cw *w, size_t n)
{
	if (w->err)
		return false;
	if (n > w->max || w->len > w->max - n) {
		w->err = bundle_fail(BUNDLE_ERR_TOOBIG, "encoded output above %zu bytes", w->max);
		return false;
	}
	if (w->len + n + 1 > w->cap) {
		size_t nc = w->cap ? w->cap : 256;
		uint8_t *nb;
		while (nc < w->len + n + 1)
			nc *= 2;
		nb = realloc(w->buf, nc);
		if (!nb) {
			w->err = bundle_fail(BUNDLE_ERR_NOMEM, "allocating %zu bytes", nc);
			return false;
		}
		w->buf = nb;
		w->cap = nc;
	}
	return true;
}

void bundle_cw_raw(struct cw *w, const void *p, size_t n)
{
	if (!reserve(w, n))
		return;
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

#define CW_HEAD(w, call)                                   \
	do {                                               \
		if (!reserve(w, 9))                        \
			return;                            \
		size_t n_ = call;                          \
		if (!n_) {                                 \
			w->err = bundle_fail(BUNDLE_ERR_INVAL, "CBOR head encoding failed"); \
			return;                            \
		}                                          \
		w->len += n_;                              \
	} while (0)

void bundle_cw_uint(struct cw *w, uint64_t v) { CW_HEAD(w, cbor_encode_uint(v, w->buf + w->len, 9)); }

void bundle_cw_int(struct cw *w, int64_t v)
{
	if (v >= 0)
		bundle_cw_uint(w, (uint64_t)v);
	else
		CW_HEAD(w, cbor_encode_negint((uint64_t)(-(v + 1)), w->buf + w->len, 9));
}

void bundle_cw_bstr(struct cw *w, const void *p, size_t n)
{
	CW_HEAD(w, cbor_encode_bytestring_start(n, w->buf + w->len, 9));
	bundle_cw_raw(w, p, n);
}

void bundle_cw_tstrn(struct cw *w, const void *p, size_t n)
{
	CW_HEAD(w, cbor_encode_string_start(n, w->buf + w->len, 9));
	bundle_cw_raw(w, p, n);
}

void bundle_cw_tstr(struct cw *w, const char *s) { bundle_cw_tstrn(w, s, strlen(s)); }
void bundle_cw_array(struct cw *w, uint64_t n) { CW_HEAD(w, cbor_encode_array_start(n, w->buf + w->len, 9)); }
void bundle_cw_map(struct cw *w, uint64_t n) { CW_HEAD(w, cbor_encode_map_start(n, w->buf + w->len, 9)); }
void bundle_cw_tag(struct cw *w, uint64_t t) { CW_HEAD(w, cbor_encode_tag(t, w->buf + w->len, 9)); }
void bundle_cw_null(struct cw *w) { CW_HEAD(w, cbor_encode_null(w->buf + w->len, 9)); }
void bundle_cw_bool(struct cw *w, bool b) { CW_HEAD(w, cbor_encode_bool(b, w->buf + w->len, 9)); }

enum bundle_err bundle_cw_finish(struct cw *w, uint8_t **ret, size_t *ret_len)
{
	enum bundle_err e = w->err;
	if (!e && !w->buf)
		reserve(w, 1), e = w->err;
	if (e) {
		bundle_cw_free(w);
		return e;
	}
	w->buf[w->len] = 0;
	*ret = w->buf;
	*ret_len = w->len;
	w->buf = NULL;
	return BUNDLE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* hashing */

void bundle_sha256(const void *p, size_t n, uint8_t out[32])
{
	EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL);
}

void bundle_sha384(const void *p, size_t n, uint8_t out[48])
{
	EVP_Digest(p, n, out, NULL, EVP_sha384(), NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* CBOR -> JSON for humans */

/* Length of a valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates, <= U+10FFFF),
 * 0 if invalid. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t l = c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
	if (!l || l > n)
		return 0;
	for (size_t i = 1; i < l; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
	    (c == 0xf4 && p[1] > 0x8f))
		return 0;
	return l;
}

/* JSON string; in object keys a NUL is written as the visible text \\u0000 (many JSON parsers,
 * jansson among them, refuse NUL in keys). */
static void jstr(struct cw *o, const uint8_t *p, size_t n, bool key)
{
	static const char hx[] = "0123456789abcdef";
	bundle_cw_raw(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c >= 0x80) { /* valid UTF-8 passes, anything else becomes U+FFFD */
			size_t l = utf8_len(p + i, n - i);
			if (l) {
				bundle_cw_raw(o, p + i, l);
				i += l - 1;
			} else {
				bundle_cw_raw(o, "\\ufffd", 6);
			}
		} else if (c == '"' || c == '\\') {
			uint8_t esc[2] = {'\\', c};
			bundle_cw_raw(o, esc, 2);
		} else if (c == 0 && key) {
			bundle_cw_raw(o, "\\\\u0000", 7);
		} else if (c < 0x20 || c == 0x7f) {
			char esc[7] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15], 0};
			bundle_cw_raw(o, esc, 6);
		} else {
			bundle_cw_raw(o, &c, 1);
		}
	}
	bundle_cw_raw(o, "\"", 1);
}

static enum bundle_err tojson(struct cr *r, struct cw *o, int depth, bool as_key)
{
	static const char hx[] = "0123456789abcdef";
	struct cr_item it;
	enum bundle_err e;
	char num[64];

	if (depth > BUNDLE_MAX_DEPTH)
		return bundle_fail(BUNDLE_ERR_CBOR, "CBOR nested too deep");
	if ((e = bundle_cr_head(r, &it)))
		return e;
	switch (it.type) {
	case CR_UINT: /* beyond int64 as a string: many JSON parsers stop at 64-bit signed */
		snprintf(num, sizeof num, as_key || it.val > INT64_MAX ? "\"%" PRIu64 "\"" : "%" PRIu64, it.val);
		bundle_cw_raw(o, num, strlen(num));
		break;
	case CR_NEG:
		if (it.val == UINT64_MAX)
			snprintf(num, sizeof num, "\"-18446744073709551616\"");
		else
			snprintf(num, sizeof num, as_key || it.val > INT64_MAX ? "\"-%" PRIu64 "\"" : "-%" PRIu64, it.val + 1);
		bundle_cw_raw(o, num, strlen(num));
		break;
	case CR_BSTR:
		bundle_cw_raw(o, "\"h'", 3);
		for (size_t i = 0; i < it.len; i++) {
			char h[2] = {hx[it.ptr[i] >> 4], hx[it.ptr[i] & 15]};
			bundle_cw_raw(o, h, 2);
		}
		bundle_cw_raw(o, "'\"", 2);
		break;
	case CR_TSTR:
		jstr(o, it.ptr, it.len, as_key);
		break;
	case CR_ARRAY:
	case CR_MAP:
		if (as_key) {
			bundle_cw_raw(o, "\"<", 2);
			bundle_cw_raw(o, it.type == CR_ARRAY ? "array" : "map", it.type == CR_ARRAY ? 5 : 3);
			bundle_cw_raw(o, ">\"", 2);
			*r = (struct cr){it.start, r->end};
			return bundle_cr_skip(r, NULL);
		}
		bundle_cw_raw(o, it.type == CR_ARRAY ? "[" : "{", 1);
		for (uint64_t i = 0; i < it.val; i++) {
			if (i)
				bundle_cw_raw(o, ",", 1);
			if (it.type == CR_MAP) {
				if ((e = tojson(r, o, depth + 1, true)))
					return e;
				bundle_cw_raw(o, ":", 1);
			}
			if ((e = tojson(r, o, depth + 1, false)))
				return e;
		}
		bundle_cw_raw(o, it.type == CR_ARRAY ? "]" : "}", 1);
		break;
	case CR_TAG:
		if (as_key) {
			bundle_cw_raw(o, "\"<tag>\"", 7);
			*r = (struct cr){it.start, r->end};
			return bundle_cr_skip(r, NULL);
		}
		snprintf(num, sizeof num, it.val > INT64_MAX ? "{\"tag\":\"%" PRIu64 "\",\"value\":" : "{\"tag\":%" PRIu64 ",\"value\":",
			 it.val);
		bundle_cw_raw(o, num, strlen(num));
		if ((e = tojson(r, o, depth + 1, false)))
			return e;
		bundle_cw_raw(o, "}", 1);
		break;
	case CR_SIMPLE: {
		const char *s = it.val == 20 ? "false" : it.val == 21 ? "true" : it.val == 22 ? "null" : "\"undefined\"";
		if (as_key)
			jstr(o, (const uint8_t *)s, strlen(s), true);
		else
			bundle_cw_raw(o, s, strlen(s));
		break;
	}
	case CR_FLOAT:
		bundle_cw_raw(o, "\"<float>\"", 9);
		break;
	}
	return o->err;
}

enum bundle_err bundle_cbor_to_json(const uint8_t *buf, size_t len, char **ret)
{
	struct cw o;
	struct cr r;
	enum bundle_err e;
	uint8_t *out = NULL;
	size_t olen;

	if ((e = bundle_cbor_check(buf, len, 0)))
		return e;
	bundle_cw_init(&o, 64u << 20);
	bundle_cr_init(&r, buf, len);
	if ((e = tojson(&r, &o, 0, false))) {
		bundle_cw_free(&o);
		return e;
	}
	if ((e = bundle_cw_finish(&o, &out, &olen)))
		return e;
	*ret = (char *)out;
	return BUNDLE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* allocation pool for decoded structs */

void *bundle_pool_alloc(struct pool *pl, size_t n)
{
	void *m;
	if (pl->n == pl->cap) {
		size_t nc = pl->cap ? pl->cap * 2 : 16;
		void **np = realloc(pl->p, nc * sizeof *np);
		if (!np)
			return NULL;
		pl->p = np;
		pl->cap = nc;
	}
	if (!(m = calloc(1, n ? n : 1)))
		return NULL;
	pl->p[pl->n++] = m;
	return m;
}

void *bundle_pool_dup(struct pool *pl, const void *src, size_t n, bool nul)
{
	uint8_t *m = bundle_pool_alloc(pl, n + (nul ? 1 : 0));
	if (m && n)
		memcpy(m, src, n);
	return m;
}

void bundle_pool_free(struct pool *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->p[i]);
	free(pl->p);
	pl->p = NULL;
	pl->n = pl->cap = 0;
}
