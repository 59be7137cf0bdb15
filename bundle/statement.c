/* SCITT signed statements (hash envelope, DESIGN.md step 6), the log record / leaf rule, and
 * transparent statements (receipts under unprotected label 394). */
#include "bundle/bundle-int.h"
#include "merkle/merkle.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

enum bundle_err bundle_statement_sign(const struct bundle_signer *s, const char *iss, const char *sub,
				      const char *preimage_content_type, const uint8_t *preimage,
				      size_t preimage_len, uint8_t **ret, size_t *ret_len)
{
	struct bundle_cose_hdr h = {0};
	uint8_t dg[32];

	bundle_clear_cause();
	if (!s || !iss || !sub || !*iss || !*sub || (!preimage && preimage_len))
		return bundle_fail(BUNDLE_ERR_INVAL, "statement needs a signer, iss and sub");
	if (!s->kid.ptr || !s->kid.len)
		return bundle_fail(BUNDLE_ERR_INVAL, "statement signer needs a kid");
	bundle_sha256(preimage ? preimage : (const uint8_t *)"", preimage_len, dg);
	h.cwt_iss = iss;
	h.cwt_sub = sub;
	h.payload_hash_alg = BUNDLE_HASH_SHA256;
	h.preimage_content_type = preimage_content_type ? preimage_content_type : BUNDLE_MT_EVIDENCE;
	return bundle_cose_sign1(s, &h, dg, sizeof dg, 0, ret, ret_len);
}

enum bundle_err bundle_statement_check(const uint8_t *buf, size_t len, struct bundle_cose *ret)
{
	struct bundle_cose c;
	enum bundle_err e = bundle_cose_parse(buf, len, &c);
	if (e)
		return e;
	if (!c.tagged)
		return bundle_fail(BUNDLE_ERR_FORMAT, "signed statement must be tagged COSE_Sign1 (18)");
	if (c.crit_unknown)
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "crit (2) lists a header parameter we do not understand");
	if (!c.alg)
		return bundle_fail(BUNDLE_ERR_FORMAT, "signed statement without alg (1)");
	if (!c.kid.ptr && !c.x5chain.ptr)
		return bundle_fail(BUNDLE_ERR_FORMAT, "signed statement without kid (4) or x5chain (33)");
	if (!c.cwt_iss.ptr || !c.cwt_sub.ptr)
		return bundle_fail(BUNDLE_ERR_FORMAT, "signed statement without CWT claims iss and sub (15)");
	if (c.payload_hash_alg && (c.content_type.ptr || c.content_type_uint >= 0))
		return bundle_fail(BUNDLE_ERR_FORMAT, "hash envelope must not carry content type (3)");
	if (c.detached)
		return bundle_fail(BUNDLE_ERR_FORMAT, "signed statement with a detached payload");
	if (ret)
		*ret = c;
	return BUNDLE_OK;
}

enum bundle_err bundle_statement_check_preimage(const uint8_t *buf, size_t len, const uint8_t *preimage,
						size_t preimage_len)
{
	struct bundle_cose c;
	uint8_t dg[48];
	size_t dl;
	enum bundle_err e = bundle_cose_parse(buf, len, &c);
	if (e)
		return e;
	if (c.payload_hash_alg == BUNDLE_HASH_SHA256) {
		bundle_sha256(preimage ? preimage : (const uint8_t *)"", preimage_len, dg);
		dl = 32;
	} else if (c.payload_hash_alg == -43) {
		bundle_sha384(preimage ? preimage : (const uint8_t *)"", preimage_len, dg);
		dl = 48;
	} else {
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "payload hash alg %lld", (long long)c.payload_hash_alg);
	}
	if (c.payload.len != dl || CRYPTO_memcmp(c.payload.ptr, dg, dl) != 0)
		return bundle_fail(BUNDLE_ERR_MISMATCH, "statement payload is not the hash of the evidence");
	return BUNDLE_OK;
}

/* D2 84 || protected item || unprotected || payload item || signature item */
static enum bundle_err build(const uint8_t *buf, size_t len, const uint8_t *unprot, size_t unprot_len,
			     uint8_t **ret, size_t *ret_len)
{
	struct bundle_cose c;
	struct bundle_bytes it[4];
	struct cw w;
	enum bundle_err e = bundle_cose_parse_items(buf, len, &c, it);
	if (e)
		return e;
	bundle_cw_init(&w, BUNDLE_MAX_COSE);
	bundle_cw_raw(&w, "\xd2\x84", 2);
	bundle_cw_raw(&w, it[0].ptr, it[0].len);
	bundle_cw_raw(&w, unprot, unprot_len);
	bundle_cw_raw(&w, it[2].ptr, it[2].len);
	bundle_cw_raw(&w, it[3].ptr, it[3].len);
	return bundle_cw_finish(&w, ret, ret_len);
}

enum bundle_err bundle_statement_record(const uint8_t *buf, size_t len, uint8_t **ret, size_t *ret_len)
{
	if (!ret || !ret_len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	return build(buf, len, (const uint8_t *)"\xa0", 1, ret, ret_len);
}

enum bundle_err bundle_statement_leaf_hash(const uint8_t *buf, size_t len, uint8_t out[32])
{
	uint8_t *rec = NULL;
	size_t rl = 0;
	enum bundle_err e = bundle_statement_record(buf, len, &rec, &rl);
	if (e)
		return e;
	merkle_leaf_hash(rec, rl, out);
	free(rec);
	return BUNDLE_OK;
}

enum bundle_err bundle_transparent_make(const uint8_t *stmt, size_t stmt_len, const struct bundle_bytes *receipts,
					size_t n_receipts, uint8_t **ret, size_t *ret_len)
{
	struct cw u;
	uint8_t *ub = NULL;
	size_t ul = 0;
	enum bundle_err e;

	bundle_clear_cause();
	if (!ret || !ret_len || (!receipts && n_receipts))
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (n_receipts == 0 || n_receipts > BUNDLE_MAX_RECEIPTS)
		return bundle_fail(BUNDLE_ERR_INVAL, "%zu receipts (1..%d)", n_receipts, BUNDLE_MAX_RECEIPTS);
	bundle_cw_init(&u, BUNDLE_MAX_COSE);
	bundle_cw_map(&u, 1);
	bundle_cw_uint(&u, 394);
	bundle_cw_array(&u, n_receipts);
	for (size_t i = 0; i < n_receipts; i++)
		bundle_cw_bstr(&u, receipts[i].ptr, receipts[i].len);
	if ((e = bundle_cw_finish(&u, &ub, &ul)))
		return e;
	e = build(stmt, stmt_len, ub, ul, ret, ret_len);
	free(ub);
	return e;
}

enum bundle_err bundle_transparent_receipts(const uint8_t *buf, size_t len, struct bundle_bytes *out, size_t cap,
					    size_t *ret_n)
{
	struct bundle_cose c;
	struct cr r;
	uint64_t n;
	enum bundle_err e = bundle_cose_parse(buf, len, &c);
	if (e)
		return e;
	if (!ret_n || (!out && cap))
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (!c.receipts.ptr) {
		*ret_n = 0;
		return BUNDLE_OK;
	}
	bundle_cr_init(&r, c.receipts.ptr, c.receipts.len);
	if ((e = bundle_cr_array(&r, &n, "receipts (394)")))
		return e;
	if (n > cap)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "%llu receipts, room for %zu", (unsigned long long)n, cap);
	for (uint64_t i = 0; i < n; i++)
		if ((e = bundle_cr_bstr(&r, &out[i], "receipt")))
			return e;
	*ret_n = (size_t)n;
	return BUNDLE_OK;
}
