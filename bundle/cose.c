/* COSE_Sign1 (RFC 9052 §4.2, §4.4): sign through a callback, parse with borrowed pointers,
 * verify with a key or a key set. */
#include "bundle/bundle-int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

enum bundle_err bundle_encode_protected(int alg, struct bundle_bytes kid, const struct bundle_cose_hdr *hdr,
					uint8_t **ret, size_t *ret_len)
{
	static const struct bundle_cose_hdr none;
	struct cw w;
	uint64_t n = 1;
	int ncwt;

	if (!hdr)
		hdr = &none;
	ncwt = !!hdr->cwt_iss + !!hdr->cwt_sub + !!hdr->cwt_iat;
	n += !!hdr->content_type + !!kid.ptr + !!ncwt + !!hdr->typ + !!hdr->payload_hash_alg +
	     !!hdr->preimage_content_type + !!hdr->vds;
	bundle_cw_init(&w, BUNDLE_MAX_COSE);
	bundle_cw_map(&w, n); /* keys in ascending order = canonical order for these uints */
	bundle_cw_uint(&w, 1);
	bundle_cw_int(&w, alg);
	if (hdr->content_type) {
		bundle_cw_uint(&w, 3);
		bundle_cw_tstr(&w, hdr->content_type);
	}
	if (kid.ptr) {
		bundle_cw_uint(&w, 4);
		bundle_cw_bstr(&w, kid.ptr, kid.len);
	}
	if (ncwt) {
		bundle_cw_uint(&w, 15);
		bundle_cw_map(&w, (uint64_t)ncwt);
		if (hdr->cwt_iss) {
			bundle_cw_uint(&w, 1);
			bundle_cw_tstr(&w, hdr->cwt_iss);
		}
		if (hdr->cwt_sub) {
			bundle_cw_uint(&w, 2);
			bundle_cw_tstr(&w, hdr->cwt_sub);
		}
		if (hdr->cwt_iat) {
			bundle_cw_uint(&w, 6);
			bundle_cw_int(&w, hdr->cwt_iat);
		}
	}
	if (hdr->typ) {
		bundle_cw_uint(&w, 16);
		bundle_cw_tstr(&w, hdr->typ);
	}
	if (hdr->payload_hash_alg) {
		bundle_cw_uint(&w, 258);
		bundle_cw_int(&w, hdr->payload_hash_alg);
	}
	if (hdr->preimage_content_type) {
		bundle_cw_uint(&w, 259);
		bundle_cw_tstr(&w, hdr->preimage_content_type);
	}
	if (hdr->vds) {
		bundle_cw_uint(&w, 395);
		bundle_cw_int(&w, hdr->vds);
	}
	return bundle_cw_finish(&w, ret, ret_len);
}

enum bundle_err bundle_sig_structure(const uint8_t *prot, size_t prot_len, const uint8_t *payload,
				     size_t payload_len, uint8_t **ret, size_t *ret_len)
{
	struct cw w;
	bundle_cw_init(&w, BUNDLE_MAX_EVIDENCE + 4096);
	bundle_cw_array(&w, 4);
	bundle_cw_tstr(&w, "Signature1");
	bundle_cw_bstr(&w, prot, prot_len);
	bundle_cw_bstr(&w, "", 0);
	bundle_cw_bstr(&w, payload, payload_len);
	return bundle_cw_finish(&w, ret, ret_len);
}

enum bundle_err bundle_sign_tbs(const struct bundle_signer *s, const uint8_t *prot, size_t prot_len,
				const uint8_t *payload, size_t payload_len, uint8_t *sig, size_t *sig_len)
{
	uint8_t *tbs = NULL;
	size_t tbs_len = 0, hl = bundle_alg_hash_len(s->alg), sl = 0;
	uint8_t dg[48];
	enum bundle_err e;
	int rc;

	if ((e = bundle_sig_structure(prot, prot_len, payload, payload_len, &tbs, &tbs_len)))
		return e;
	if (s->alg == BUNDLE_ALG_ES256)
		bundle_sha256(tbs, tbs_len, dg);
	else if (s->alg == BUNDLE_ALG_ES384)
		bundle_sha384(tbs, tbs_len, dg);
	rc = s->sign(s->ud, s->alg, tbs, tbs_len, hl ? dg : NULL, hl, sig, BUNDLE_MAX_SIG, &sl);
	free(tbs);
	if (rc != 0)
		return bundle_fail(BUNDLE_ERR_SIGNER, "signing callback returned %d", rc);
	if (sl != bundle_alg_sig_len(s->alg))
		return bundle_fail(BUNDLE_ERR_SIGNER, "signing callback returned %zu bytes, alg %d needs %zu", sl,
				   s->alg, bundle_alg_sig_len(s->alg));
	*sig_len = sl;
	return BUNDLE_OK;
}

static enum bundle_err check_signer(const struct bundle_signer *s)
{
	if (!s || !s->sign)
		return bundle_fail(BUNDLE_ERR_INVAL, "no signer");
	if (!bundle_alg_supported(s->alg))
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "signer alg %d", s->alg);
	return BUNDLE_OK;
}

enum bundle_err bundle_cose_sign1(const struct bundle_signer *s, const struct bundle_cose_hdr *hdr,
				  const uint8_t *payload, size_t payload_len, int detached, uint8_t **ret,
				  size_t *ret_len)
{
	uint8_t *prot = NULL;
	size_t prot_len = 0, sl = 0;
	uint8_t sig[BUNDLE_MAX_SIG];
	struct cw w;
	enum bundle_err e;

	bundle_clear_cause();
	if ((e = check_signer(s)))
		return e;
	if (!ret || !ret_len || (!payload && payload_len))
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (payload_len > BUNDLE_MAX_COSE && !detached)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "attached payload above %u bytes", BUNDLE_MAX_COSE);
	if ((e = bundle_encode_protected(s->alg, s->kid, hdr, &prot, &prot_len)))
		return e;
	if ((e = bundle_sign_tbs(s, prot, prot_len, payload ? payload : (const uint8_t *)"", payload_len, sig, &sl)))
		goto out;
	bundle_cw_init(&w, BUNDLE_MAX_COSE);
	bundle_cw_tag(&w, 18);
	bundle_cw_array(&w, 4);
	bundle_cw_bstr(&w, prot, prot_len);
	bundle_cw_map(&w, 0);
	if (detached)
		bundle_cw_null(&w);
	else
		bundle_cw_bstr(&w, payload ? payload : (const uint8_t *)"", payload_len);
	bundle_cw_bstr(&w, sig, sl);
	e = bundle_cw_finish(&w, ret, ret_len);
out:
	free(prot);
	return e;
}

/* ---------------------------------------------------------------------------------------- */
/* parsing */

static bool understood(int64_t label)
{
	switch (label) {
	case 1: case 2: case 3: case 4: case 15: case 16: case 33: case 34: case 258: case 259: case 260: case 395:
		return true;
	default:
		return false;
	}
}

static enum bundle_err parse_cwt(struct cr *r, struct bundle_cose *c)
{
	uint64_t n;
	enum bundle_err e = bundle_cr_map(r, &n, "CWT claims (15)");
	if (e)
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key k;
		if ((e = bundle_cr_key(r, &k)))
			return e;
		if (k.is_int && k.i == 1)
			e = bundle_cr_tstr(r, &c->cwt_iss, "CWT iss");
		else if (k.is_int && k.i == 2)
			e = bundle_cr_tstr(r, &c->cwt_sub, "CWT sub");
		else if (k.is_int && k.i == 6) {
			struct cr_item it;
			if ((e = bundle_cr_peek(r, &it)))
				return e;
			if (it.type == CR_TAG) { /* 1(int) as some issuers write it */
				if ((e = bundle_cr_head(r, &it)))
					return e;
				if (it.val != 1)
					return bundle_fail(BUNDLE_ERR_FORMAT, "CWT iat: tag %llu", (unsigned long long)it.val);
			}
			e = bundle_cr_int(r, &c->cwt_iat, "CWT iat");
		} else
			e = bundle_cr_skip(r, NULL);
		if (e)
			return e;
	}
	return BUNDLE_OK;
}

static enum bundle_err tstr_or_uint(struct cr *r, struct bundle_bytes *s, int64_t *u, const char *what)
{
	struct cr_item it;
	enum bundle_err e = bundle_cr_peek(r, &it);
	if (e)
		return e;
	if (it.type == CR_UINT && u)
		return bundle_cr_int(r, u, what);
	return bundle_cr_tstr(r, s, what);
}

static enum bundle_err parse_protected(const uint8_t *p, size_t len, struct bundle_cose *c)
{
	struct cr r;
	uint64_t n, seen = 0;
	enum bundle_err e;

	if (len == 0)
		return BUNDLE_OK; /* h'' = empty map */
	bundle_cr_init(&r, p, len);
	if ((e = bundle_cr_map(&r, &n, "protected header")))
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key k;
		int bit = -1;
		if ((e = bundle_cr_key(&r, &k)))
			return e;
		if (k.is_int) {
			switch (k.i) {
			case 1: bit = 0; e = bundle_cr_int(&r, &c->alg, "alg (1)"); break;
			case 2: bit = 1; e = bundle_cr_skip(&r, &c->crit); break;
			case 3: bit = 2; e = tstr_or_uint(&r, &c->content_type, &c->content_type_uint, "content type (3)"); break;
			case 4: {
				struct cr_item it;
				bit = 3;
				if ((e = bundle_cr_head(&r, &it)))
					break;
				if (it.type != CR_BSTR && it.type != CR_TSTR)
					e = bundle_fail(BUNDLE_ERR_FORMAT, "kid (4): not a bstr");
				c->kid.ptr = it.ptr;
				c->kid.len = it.len;
				break;
			}
			case 15: bit = 4; e = parse_cwt(&r, c); break;
			case 16: bit = 5; e = tstr_or_uint(&r, &c->typ, NULL, "typ (16)"); break;
			case 33: bit = 6; e = bundle_cr_skip(&r, &c->x5chain); break;
			case 258: bit = 7; e = bundle_cr_int(&r, &c->payload_hash_alg, "payload-hash-alg (258)"); break;
			case 259: {
				int64_t dummy = -1;
				bit = 8;
				e = tstr_or_uint(&r, &c->preimage_content_type, &dummy, "preimage content type (259)");
				break;
			}
			case 395: bit = 9; e = bundle_cr_int(&r, &c->vds, "vds (395)"); break;
			default: e = bundle_cr_skip(&r, NULL); break;
			}
		} else {
			e = bundle_cr_skip(&r, NULL);
		}
		if (e)
			return e;
		if (bit >= 0) {
			if (seen & (1u << bit))
				return bundle_fail(BUNDLE_ERR_FORMAT, "duplicate protected header label %lld", (long long)k.i);
			seen |= 1u << bit;
		}
	}
	if (!cr_done(&r))
		return bundle_fail(BUNDLE_ERR_CBOR, "trailing bytes in the protected header");
	if (c->crit.ptr) {
		struct cr cr;
		uint64_t cn;
		bundle_cr_init(&cr, c->crit.ptr, c->crit.len);
		if ((e = bundle_cr_array(&cr, &cn, "crit (2)")))
			return e;
		if (cn == 0)
			return bundle_fail(BUNDLE_ERR_FORMAT, "crit (2) is empty");
		for (uint64_t i = 0; i < cn; i++) {
			struct bundle_cr_key k;
			if ((e = bundle_cr_key(&cr, &k)))
				return e;
			if (!k.is_int || !understood(k.i)) {
				c->crit_unknown = 1;
				continue;
			}
			/* it must be present */
			int present = (k.i == 1 && c->alg) || k.i == 2 || (k.i == 3 && (c->content_type.ptr || c->content_type_uint >= 0)) ||
				      (k.i == 4 && c->kid.ptr) || (k.i == 15 && (seen & (1u << 4))) ||
				      (k.i == 16 && c->typ.ptr) || (k.i == 33 && c->x5chain.ptr) ||
				      (k.i == 258 && c->payload_hash_alg) || (k.i == 259 && (seen & (1u << 8))) ||
				      (k.i == 395 && c->vds) || k.i == 34 || k.i == 260;
			if (!present)
				return bundle_fail(BUNDLE_ERR_FORMAT, "crit lists label %lld which is absent", (long long)k.i);
		}
	}
	return BUNDLE_OK;
}

static enum bundle_err parse_unprotected(const uint8_t *p, size_t len, struct bundle_cose *c)
{
	struct cr r;
	uint64_t n;
	enum bundle_err e;

	bundle_cr_init(&r, p, len);
	if ((e = bundle_cr_map(&r, &n, "unprotected header")))
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key k;
		if ((e = bundle_cr_key(&r, &k)))
			return e;
		if (k.is_int && k.i == 4 && !c->kid.ptr) {
			struct cr_item it;
			if ((e = bundle_cr_head(&r, &it)))
				return e;
			if (it.type != CR_BSTR && it.type != CR_TSTR)
				return bundle_fail(BUNDLE_ERR_FORMAT, "kid (4): not a bstr");
			c->kid.ptr = it.ptr;
			c->kid.len = it.len;
		} else if (k.is_int && k.i == 33 && !c->x5chain.ptr) {
			e = bundle_cr_skip(&r, &c->x5chain);
		} else if (k.is_int && k.i == 394) {
			struct cr_item it;
			if ((e = bundle_cr_peek(&r, &it)))
				return e;
			if (it.type != CR_ARRAY)
				return bundle_fail(BUNDLE_ERR_FORMAT, "receipts (394): not an array");
			e = bundle_cr_skip(&r, &c->receipts);
		} else if (k.is_int && k.i == 396) {
			struct cr_item it;
			if ((e = bundle_cr_peek(&r, &it)))
				return e;
			if (it.type != CR_MAP)
				return bundle_fail(BUNDLE_ERR_FORMAT, "proofs (396): not a map");
			e = bundle_cr_skip(&r, &c->vdp);
		} else {
			e = bundle_cr_skip(&r, NULL);
		}
		if (e)
			return e;
	}
	return BUNDLE_OK;
}

enum bundle_err bundle_cose_parse_items(const uint8_t *buf, size_t len, struct bundle_cose *ret,
					struct bundle_bytes items[4])
{
	struct bundle_cose c;
	struct cr r;
	struct cr_item it;
	uint64_t n;
	enum bundle_err e;

	bundle_clear_cause();
	if (!ret || (!buf && len))
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (len > BUNDLE_MAX_COSE)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "COSE object of %zu bytes (max %u)", len, BUNDLE_MAX_COSE);
	if ((e = bundle_cbor_check(buf, len, 0)))
		return e;
	memset(&c, 0, sizeof c);
	c.content_type_uint = -1;
	bundle_cr_init(&r, buf, len);
	if ((e = bundle_cr_peek(&r, &it)))
		return e;
	if (it.type == CR_TAG) {
		bundle_cr_head(&r, &it);
		if (it.val != 18)
			return bundle_fail(BUNDLE_ERR_FORMAT, "tag %llu, not COSE_Sign1 (18)", (unsigned long long)it.val);
		c.tagged = 1;
	}
	if ((e = bundle_cr_array(&r, &n, "COSE_Sign1")))
		return e;
	if (n != 4)
		return bundle_fail(BUNDLE_ERR_FORMAT, "COSE_Sign1 array of %llu elements, not 4", (unsigned long long)n);
	items[0].ptr = r.p;
	if ((e = bundle_cr_bstr(&r, &c.protected_bstr, "protected header")))
		return e;
	items[0].len = (size_t)(r.p - items[0].ptr);
	c.protected_item = items[0];
	if ((e = bundle_cr_peek(&r, &it)))
		return e;
	if (it.type != CR_MAP)
		return bundle_fail(BUNDLE_ERR_FORMAT, "unprotected header: not a map");
	if ((e = bundle_cr_skip(&r, &c.unprotected)))
		return e;
	items[1] = c.unprotected;
	items[2].ptr = r.p;
	if ((e = bundle_cr_head(&r, &it)))
		return e;
	if (it.type == CR_BSTR) {
		c.payload.ptr = it.ptr;
		c.payload.len = it.len;
	} else if (it.type == CR_SIMPLE && it.val == 22) {
		c.detached = 1;
	} else {
		return bundle_fail(BUNDLE_ERR_FORMAT, "payload: neither bstr nor nil");
	}
	items[2].len = (size_t)(r.p - items[2].ptr);
	items[3].ptr = r.p;
	if ((e = bundle_cr_bstr(&r, &c.signature, "signature")))
		return e;
	items[3].len = (size_t)(r.p - items[3].ptr);
	if (!cr_done(&r))
		return bundle_fail(BUNDLE_ERR_CBOR, "trailing bytes after COSE_Sign1");
	if ((e = parse_protected(c.protected_bstr.ptr, c.protected_bstr.len, &c)))
		return e;
	if ((e = parse_unprotected(c.unprotected.ptr, c.unprotected.len, &c)))
		return e;
	*ret = c;
	return BUNDLE_OK;
}

enum bundle_err bundle_cose_parse(const uint8_t *buf, size_t len, struct bundle_cose *ret)
{
	struct bundle_bytes items[4];
	return bundle_cose_parse_items(buf, len, ret, items);
}

static enum bundle_err verify_parsed(const struct bundle_cose *c, const struct bundle_key *key,
				     const uint8_t *detached_payload, size_t detached_len)
{
	uint8_t *tbs = NULL;
	size_t tbs_len = 0;
	const uint8_t *pl = c->payload.ptr;
	size_t pll = c->payload.len;
	enum bundle_err e;

	if (c->crit_unknown)
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "crit (2) lists a header parameter we do not understand");
	if (!c->alg)
		return bundle_fail(BUNDLE_ERR_FORMAT, "no alg (1) in the protected header");
	if (!bundle_alg_supported(c->alg))
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "alg %lld", (long long)c->alg);
	if (c->detached) {
		if (!detached_payload)
			return bundle_fail(BUNDLE_ERR_INVAL, "detached payload required");
		pl = detached_payload;
		pll = detached_len;
	}
	if ((e = bundle_sig_structure(c->protected_bstr.ptr ? c->protected_bstr.ptr : (const uint8_t *)"",
				      c->protected_bstr.len, pl ? pl : (const uint8_t *)"", pll, &tbs, &tbs_len)))
		return e;
	e = bundle_key_verify_raw(key, (int)c->alg, tbs, tbs_len, c->signature.ptr, c->signature.len);
	free(tbs);
	return e;
}

enum bundle_err bundle_cose_verify(const uint8_t *buf, size_t len, const struct bundle_key *key,
				   const uint8_t *detached_payload, size_t detached_len)
{
	struct bundle_cose c;
	enum bundle_err e;
	if (!key)
		return bundle_fail(BUNDLE_ERR_INVAL, "no key");
	if ((e = bundle_cose_parse(buf, len, &c)))
		return e;
	return verify_parsed(&c, key, detached_payload, detached_len);
}

enum bundle_err bundle_cose_verify_keyset(const uint8_t *buf, size_t len, const struct bundle_keyset *ks,
					  const uint8_t *detached_payload, size_t detached_len)
{
	struct bundle_cose c;
	const struct bundle_key *k;
	enum bundle_err e;
	if (!ks)
		return bundle_fail(BUNDLE_ERR_INVAL, "no key set");
	if ((e = bundle_cose_parse(buf, len, &c)))
		return e;
	if (!c.kid.ptr)
		return bundle_fail(BUNDLE_ERR_KID, "object has no kid to choose a key");
	if (!(k = bundle_keyset_find(ks, c.kid.ptr, c.kid.len)))
		return bundle_fail(BUNDLE_ERR_KID, "no key in the set matches the object's kid");
	return verify_parsed(&c, k, detached_payload, detached_len);
}
