/* EAR verdicts (draft-fv-rats-ear / draft-ietf-rats-ear, CBOR serialisation) with the sluice
 * claims, signed as COSE_Sign1. Claim keys are listed in bundle.h and docs/formats.md. */
#include "bundle/bundle-int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define K_EXP 4
#define K_IAT 6
#define K_NONCE 10
#define K_PROFILE 265
#define K_SUBMODS 266
#define K_STATUS 1000
#define K_TV 1001
#define K_POLICY 1003
#define K_VERIFIER 1004
#define S_TOOLS "sluice.tools"
#define S_HOST "sluice.host-id"
#define S_REASONS "sluice.reasons"
#define S_CRED "sluice.credential"
#define S_STMT "sluice.statement-hash"

struct ear_box {
	struct bundle_ear e; /* first: bundle_ear_free casts back */
	struct pool pool;
};

static bool status_ok(int s)
{
	return s == BUNDLE_EAR_NONE || s == BUNDLE_EAR_AFFIRMING || s == BUNDLE_EAR_WARNING ||
	       s == BUNDLE_EAR_CONTRAINDICATED;
}

enum bundle_err bundle_ear_encode(const struct bundle_ear *e, uint8_t **ret, size_t *ret_len)
{
	struct cw w;
	uint64_t n = 0, nsub = 1, ntv = 0;

	bundle_clear_cause();
	if (!e || !ret || !ret_len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (!status_ok(e->status))
		return bundle_fail(BUNDLE_ERR_INVAL, "EAR status %d", e->status);
	if ((e->n_tools && !e->tools) || (e->n_reasons && !e->reasons))
		return bundle_fail(BUNDLE_ERR_INVAL, "EAR tools/reasons count without array");
	for (int i = 0; i < BUNDLE_TV_COUNT; i++)
		ntv += e->tv[i] != BUNDLE_TV_ABSENT;
	nsub += (ntv > 0) + !!e->policy_id;
	n = 2 /* profile, submods */ + !!e->exp + !!e->iat + !!e->nonce.ptr +
	    !!(e->verifier_developer || e->verifier_build) + !!e->n_tools + !!e->host_id + !!e->n_reasons +
	    !!e->credential.ptr + !!e->has_statement_hash;
	bundle_cw_init(&w, BUNDLE_MAX_COSE);
	bundle_cw_map(&w, n);
	if (e->exp) {
		bundle_cw_uint(&w, K_EXP);
		bundle_cw_int(&w, e->exp);
	}
	if (e->iat) {
		bundle_cw_uint(&w, K_IAT);
		bundle_cw_int(&w, e->iat);
	}
	if (e->nonce.ptr) {
		bundle_cw_uint(&w, K_NONCE);
		bundle_cw_bstr(&w, e->nonce.ptr, e->nonce.len);
	}
	bundle_cw_uint(&w, K_PROFILE);
	bundle_cw_tstr(&w, e->profile ? e->profile : BUNDLE_EAR_PROFILE);
	bundle_cw_uint(&w, K_SUBMODS);
	bundle_cw_map(&w, 1);
	bundle_cw_tstr(&w, BUNDLE_EAR_SUBMOD);
	bundle_cw_map(&w, nsub);
	bundle_cw_uint(&w, K_STATUS);
	bundle_cw_int(&w, e->status);
	if (ntv) {
		bundle_cw_uint(&w, K_TV);
		bundle_cw_map(&w, ntv);
		for (int i = 0; i < BUNDLE_TV_COUNT; i++) {
			if (e->tv[i] == BUNDLE_TV_ABSENT)
				continue;
			bundle_cw_uint(&w, (uint64_t)i);
			bundle_cw_int(&w, e->tv[i]);
		}
	}
	if (e->policy_id) {
		bundle_cw_uint(&w, K_POLICY);
		bundle_cw_tstr(&w, e->policy_id);
	}
	if (e->verifier_developer || e->verifier_build) {
		bundle_cw_uint(&w, K_VERIFIER);
		bundle_cw_map(&w, (uint64_t)(!!e->verifier_developer + !!e->verifier_build));
		if (e->verifier_developer) {
			bundle_cw_uint(&w, 0);
			bundle_cw_tstr(&w, e->verifier_developer);
		}
		if (e->verifier_build) {
			bundle_cw_uint(&w, 1);
			bundle_cw_tstr(&w, e->verifier_build);
		}
	}
	/* text keys: shorter first, then bytewise */
	if (e->n_tools) {
		bundle_cw_tstr(&w, S_TOOLS);
		bundle_cw_array(&w, e->n_tools);
		for (size_t i = 0; i < e->n_tools; i++)
			bundle_cw_tstr(&w, e->tools[i] ? e->tools[i] : "");
	}
	if (e->host_id) {
		bundle_cw_tstr(&w, S_HOST);
		bundle_cw_tstr(&w, e->host_id);
	}
	if (e->n_reasons) {
		bundle_cw_tstr(&w, S_REASONS);
		bundle_cw_array(&w, e->n_reasons);
		for (size_t i = 0; i < e->n_reasons; i++) {
			bundle_cw_map(&w, 2);
			bundle_cw_tstr(&w, "type");
			bundle_cw_tstr(&w, e->reasons[i].type ? e->reasons[i].type : "");
			bundle_cw_tstr(&w, "detail");
			bundle_cw_tstr(&w, e->reasons[i].detail ? e->reasons[i].detail : "");
		}
	}
	if (e->credential.ptr) {
		bundle_cw_tstr(&w, S_CRED);
		bundle_cw_bstr(&w, e->credential.ptr, e->credential.len);
	}
	if (e->has_statement_hash) {
		bundle_cw_tstr(&w, S_STMT);
		bundle_cw_bstr(&w, e->statement_hash, 32);
	}
	return bundle_cw_finish(&w, ret, ret_len);
}

static enum bundle_err dup_str(struct pool *pl, struct cr *r, const char **out, const char *what)
{
	struct bundle_bytes s;
	enum bundle_err e = bundle_cr_tstr(r, &s, what);
	if (e)
		return e;
	if (memchr(s.ptr, 0, s.len))
		return bundle_fail(BUNDLE_ERR_FORMAT, "%s: embedded NUL", what);
	if (!(*out = bundle_pool_dup(pl, s.ptr, s.len, true)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "%s", what);
	return BUNDLE_OK;
}

static enum bundle_err dup_bytes(struct pool *pl, struct cr *r, struct bundle_bytes *out, const char *what)
{
	struct bundle_bytes s;
	enum bundle_err e = bundle_cr_bstr(r, &s, what);
	if (e)
		return e;
	if (!(out->ptr = bundle_pool_dup(pl, s.ptr, s.len, false)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "%s", what);
	out->len = s.len;
	return BUNDLE_OK;
}

static enum bundle_err dec_submod(struct cr *r, struct bundle_ear *e, struct pool *pl, bool *have_status)
{
	uint64_t n;
	enum bundle_err err = bundle_cr_map(r, &n, "EAR submodule");
	if (err)
		return err;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key k;
		if ((err = bundle_cr_key(r, &k)))
			return err;
		if (k.is_int && k.i == K_STATUS) {
			int64_t v;
			if ((err = bundle_cr_int(r, &v, "ear.status")))
				return err;
			if (!status_ok((int)v) || v != (int)v)
				return bundle_fail(BUNDLE_ERR_FORMAT, "ear.status %lld", (long long)v);
			e->status = (int)v;
			*have_status = true;
		} else if (k.is_int && k.i == K_TV) {
			uint64_t m;
			if ((err = bundle_cr_map(r, &m, "ear.trustworthiness-vector")))
				return err;
			for (uint64_t j = 0; j < m; j++) {
				int64_t idx, v;
				if ((err = bundle_cr_int(r, &idx, "trustworthiness claim")) || (err = bundle_cr_int(r, &v, "trustworthiness value")))
					return err;
				if (v < -127 || v > 127)
					return bundle_fail(BUNDLE_ERR_FORMAT, "trustworthiness value %lld", (long long)v);
				if (idx >= 0 && idx < BUNDLE_TV_COUNT)
					e->tv[idx] = (int8_t)v;
			}
		} else if (k.is_int && k.i == K_POLICY) {
			if ((err = dup_str(pl, r, &e->policy_id, "ear.appraisal-policy-id")))
				return err;
		} else if ((err = bundle_cr_skip(r, NULL))) {
			return err;
		}
	}
	return BUNDLE_OK;
}

enum bundle_err bundle_ear_decode(const uint8_t *buf, size_t len, struct bundle_ear **ret)
{
	struct ear_box *b;
	struct bundle_ear *e;
	struct cr r;
	uint64_t n;
	bool have_status = false, have_profile = false;
	enum bundle_err err;

	bundle_clear_cause();
	if (!ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL ret");
	if (len > BUNDLE_MAX_COSE)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "EAR claims of %zu bytes", len);
	if ((err = bundle_cbor_check(buf, len, 0)))
		return err;
	if (!(b = calloc(1, sizeof *b)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "EAR");
	e = &b->e;
	for (int i = 0; i < BUNDLE_TV_COUNT; i++)
		e->tv[i] = BUNDLE_TV_ABSENT;
	bundle_cr_init(&r, buf, len);
	if ((err = bundle_cr_map(&r, &n, "EAR claims")))
		goto out;
	for (uint64_t i = 0; i < n && !err; i++) {
		struct bundle_cr_key k;
		if ((err = bundle_cr_key(&r, &k)))
			break;
		if (k.is_int && k.i == K_EXP)
			err = bundle_cr_int(&r, &e->exp, "exp");
		else if (k.is_int && k.i == K_IAT)
			err = bundle_cr_int(&r, &e->iat, "iat");
		else if (k.is_int && k.i == K_NONCE)
			err = dup_bytes(&b->pool, &r, &e->nonce, "eat_nonce");
		else if (k.is_int && k.i == K_PROFILE) {
			err = dup_str(&b->pool, &r, &e->profile, "eat_profile");
			have_profile = true;
		} else if (k.is_int && k.i == K_SUBMODS) {
			uint64_t m;
			if ((err = bundle_cr_map(&r, &m, "submods")))
				break;
			for (uint64_t j = 0; j < m && !err; j++) {
				struct bundle_cr_key sk;
				if ((err = bundle_cr_key(&r, &sk)))
					break;
				if (bundle_cr_key_is(&sk, BUNDLE_EAR_SUBMOD))
					err = dec_submod(&r, e, &b->pool, &have_status);
				else
					err = bundle_cr_skip(&r, NULL);
			}
		} else if (k.is_int && k.i == K_VERIFIER) {
			uint64_t m;
			if ((err = bundle_cr_map(&r, &m, "ear.verifier-id")))
				break;
			for (uint64_t j = 0; j < m && !err; j++) {
				struct bundle_cr_key vk;
				if ((err = bundle_cr_key(&r, &vk)))
					break;
				if (vk.is_int && vk.i == 0)
					err = dup_str(&b->pool, &r, &e->verifier_developer, "verifier developer");
				else if (vk.is_int && vk.i == 1)
					err = dup_str(&b->pool, &r, &e->verifier_build, "verifier build");
				else
					err = bundle_cr_skip(&r, NULL);
			}
		} else if (bundle_cr_key_is(&k, S_TOOLS)) {
			uint64_t m;
			const char **t;
			if ((err = bundle_cr_array(&r, &m, S_TOOLS)))
				break;
			if (!(t = bundle_pool_alloc(&b->pool, (size_t)(m ? m : 1) * sizeof *t))) {
				err = bundle_fail(BUNDLE_ERR_NOMEM, "tools");
				break;
			}
			for (uint64_t j = 0; j < m && !err; j++)
				err = dup_str(&b->pool, &r, &t[j], "tool name");
			e->tools = t;
			e->n_tools = (size_t)m;
		} else if (bundle_cr_key_is(&k, S_HOST)) {
			err = dup_str(&b->pool, &r, &e->host_id, S_HOST);
		} else if (bundle_cr_key_is(&k, S_REASONS)) {
			uint64_t m;
			struct bundle_ear_reason *rs;
			if ((err = bundle_cr_array(&r, &m, S_REASONS)))
				break;
			if (!(rs = bundle_pool_alloc(&b->pool, (size_t)(m ? m : 1) * sizeof *rs))) {
				err = bundle_fail(BUNDLE_ERR_NOMEM, "reasons");
				break;
			}
			for (uint64_t j = 0; j < m && !err; j++) {
				uint64_t q;
				if ((err = bundle_cr_map(&r, &q, "reason")))
					break;
				for (uint64_t x = 0; x < q && !err; x++) {
					struct bundle_cr_key rk;
					if ((err = bundle_cr_key(&r, &rk)))
						break;
					if (bundle_cr_key_is(&rk, "type"))
						err = dup_str(&b->pool, &r, &rs[j].type, "reason type");
					else if (bundle_cr_key_is(&rk, "detail"))
						err = dup_str(&b->pool, &r, &rs[j].detail, "reason detail");
					else
						err = bundle_cr_skip(&r, NULL);
				}
				if (!err && !rs[j].type)
					err = bundle_fail(BUNDLE_ERR_FORMAT, "reason without type");
				if (!err && !rs[j].detail)
					rs[j].detail = "";
			}
			e->reasons = rs;
			e->n_reasons = (size_t)m;
		} else if (bundle_cr_key_is(&k, S_CRED)) {
			err = dup_bytes(&b->pool, &r, &e->credential, S_CRED);
		} else if (bundle_cr_key_is(&k, S_STMT)) {
			struct bundle_bytes h;
			if ((err = bundle_cr_bstr(&r, &h, S_STMT)))
				break;
			if (h.len != 32) {
				err = bundle_fail(BUNDLE_ERR_FORMAT, "%s of %zu bytes", S_STMT, h.len);
				break;
			}
			memcpy(e->statement_hash, h.ptr, 32);
			e->has_statement_hash = 1;
		} else {
			err = bundle_cr_skip(&r, NULL);
		}
	}
	if (!err && (!have_profile || !have_status))
		err = bundle_fail(BUNDLE_ERR_FORMAT, "EAR without eat_profile or submods/%s/ear.status", BUNDLE_EAR_SUBMOD);
out:
	if (err) {
		bundle_ear_free(e);
		return err;
	}
	*ret = e;
	return BUNDLE_OK;
}

void bundle_ear_free(struct bundle_ear *e)
{
	struct ear_box *b = (struct ear_box *)e;
	if (!b)
		return;
	bundle_pool_free(&b->pool);
	free(b);
}

enum bundle_err bundle_ear_validate(const struct bundle_ear *e, int64_t now, int64_t skew, const uint8_t *nonce,
				    size_t nonce_len, const uint8_t *stmt_hash)
{
	bundle_clear_cause();
	if (!e)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL EAR");
	if (!e->profile || strcmp(e->profile, BUNDLE_EAR_PROFILE) != 0)
		return bundle_fail(BUNDLE_ERR_FORMAT, "eat_profile is not %s", BUNDLE_EAR_PROFILE);
	if (!e->exp || !e->iat)
		return bundle_fail(BUNDLE_ERR_FORMAT, "EAR without iat or exp");
	if (now >= e->exp)
		return bundle_fail(BUNDLE_ERR_EXPIRED, "verdict expired %lld s ago", (long long)(now - e->exp));
	if (e->iat > now + skew)
		return bundle_fail(BUNDLE_ERR_EXPIRED, "verdict issued %lld s in the future", (long long)(e->iat - now));
	if (nonce && (!e->nonce.ptr || e->nonce.len != nonce_len || CRYPTO_memcmp(e->nonce.ptr, nonce, nonce_len) != 0))
		return bundle_fail(BUNDLE_ERR_MISMATCH, "verdict nonce differs from the challenge");
	if (stmt_hash && (!e->has_statement_hash || CRYPTO_memcmp(e->statement_hash, stmt_hash, 32) != 0))
		return bundle_fail(BUNDLE_ERR_MISMATCH, "verdict is not bound to this statement");
	return BUNDLE_OK;
}

enum bundle_err bundle_ear_sign(const struct bundle_signer *s, const struct bundle_ear *e, uint8_t **ret,
				size_t *ret_len)
{
	struct bundle_cose_hdr h = {.content_type = BUNDLE_MT_EAR};
	uint8_t *c = NULL;
	size_t cl = 0;
	enum bundle_err err = bundle_ear_encode(e, &c, &cl);
	if (err)
		return err;
	err = bundle_cose_sign1(s, &h, c, cl, 0, ret, ret_len);
	free(c);
	return err;
}

enum bundle_err bundle_ear_verify(const uint8_t *cose, size_t len, const struct bundle_key *key,
				  const struct bundle_keyset *ks, struct bundle_ear **ret)
{
	struct bundle_cose c;
	enum bundle_err e;

	if (!key && !ks)
		return bundle_fail(BUNDLE_ERR_INVAL, "no key and no key set");
	e = key ? bundle_cose_verify(cose, len, key, NULL, 0) : bundle_cose_verify_keyset(cose, len, ks, NULL, 0);
	if (e)
		return e;
	if ((e = bundle_cose_parse(cose, len, &c)))
		return e;
	if (c.detached)
		return bundle_fail(BUNDLE_ERR_FORMAT, "verdict with a detached payload");
	return bundle_ear_decode(c.payload.ptr, c.payload.len, ret);
}
