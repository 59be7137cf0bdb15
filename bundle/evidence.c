/* Evidence (DESIGN.md step 5) as deterministic CBOR. TPM structures travel as the bytes the
 * TPM produced; this file never interprets them. */
#include "bundle/bundle-int.h"

#include <stdlib.h>
#include <string.h>

struct ev_box {
	struct bundle_evidence ev; /* first: bundle_evidence_free casts back */
	struct pool pool;
};

static void bytes_field(struct cw *w, uint64_t key, struct bundle_bytes b)
{
	if (!b.ptr)
		return;
	bundle_cw_uint(w, key);
	bundle_cw_bstr(w, b.ptr, b.len);
}

enum bundle_err bundle_evidence_encode(const struct bundle_evidence *ev, uint8_t **ret, size_t *ret_len)
{
	struct cw w;
	uint64_t n;

	bundle_clear_cause();
	if (!ev || !ret || !ret_len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (!ev->host_id || !ev->nonce.ptr || !ev->ak_public.ptr || !ev->quote.ptr || !ev->quote_sig.ptr ||
	    !ev->rootfs_digest.ptr || !ev->rootfs_alg)
		return bundle_fail(BUNDLE_ERR_INVAL, "evidence needs host_id, nonce, AK, quote, signature and rootfs");
	if ((ev->n_pcrs && !ev->pcrs) || ev->n_pcrs > BUNDLE_MAX_PCRS)
		return bundle_fail(BUNDLE_ERR_INVAL, "%zu PCR values", ev->n_pcrs);
	if ((ev->n_rootfs_excludes && !ev->rootfs_excludes) || ev->n_rootfs_excludes > BUNDLE_MAX_EXCLUDES)
		return bundle_fail(BUNDLE_ERR_INVAL, "%zu excludes", ev->n_rootfs_excludes);
	n = 7 + !!ev->fw_eventlog.ptr + !!ev->sluice_eventlog.ptr + !!ev->stmt_key_public.ptr +
	    !!ev->stmt_key_certify.ptr + !!ev->stmt_key_certify_sig.ptr + !!ev->ek_cert.ptr + !!ev->time;
	bundle_cw_init(&w, BUNDLE_MAX_EVIDENCE);
	bundle_cw_map(&w, n);
	bundle_cw_uint(&w, 1);
	bundle_cw_tstr(&w, ev->host_id);
	bytes_field(&w, 2, ev->nonce);
	bytes_field(&w, 3, ev->ak_public);
	bytes_field(&w, 4, ev->quote);
	bytes_field(&w, 5, ev->quote_sig);
	bundle_cw_uint(&w, 6);
	bundle_cw_array(&w, ev->n_pcrs);
	for (size_t i = 0; i < ev->n_pcrs; i++) {
		bundle_cw_array(&w, 3);
		bundle_cw_uint(&w, ev->pcrs[i].alg);
		bundle_cw_uint(&w, ev->pcrs[i].index);
		bundle_cw_bstr(&w, ev->pcrs[i].value.ptr ? ev->pcrs[i].value.ptr : (const uint8_t *)"", ev->pcrs[i].value.len);
	}
	bytes_field(&w, 7, ev->fw_eventlog);
	bytes_field(&w, 8, ev->sluice_eventlog);
	bundle_cw_uint(&w, 9);
	bundle_cw_map(&w, 5);
	bundle_cw_uint(&w, 1);
	bundle_cw_bstr(&w, ev->rootfs_digest.ptr, ev->rootfs_digest.len);
	bundle_cw_uint(&w, 2);
	bundle_cw_tstr(&w, ev->rootfs_alg);
	bundle_cw_uint(&w, 3);
	bundle_cw_uint(&w, ev->rootfs_entries);
	bundle_cw_uint(&w, 4);
	bundle_cw_uint(&w, ev->rootfs_bytes);
	bundle_cw_uint(&w, 5);
	bundle_cw_array(&w, ev->n_rootfs_excludes);
	for (size_t i = 0; i < ev->n_rootfs_excludes; i++)
		bundle_cw_tstr(&w, ev->rootfs_excludes[i] ? ev->rootfs_excludes[i] : "");
	bytes_field(&w, 10, ev->stmt_key_public);
	bytes_field(&w, 11, ev->stmt_key_certify);
	bytes_field(&w, 12, ev->stmt_key_certify_sig);
	bytes_field(&w, 13, ev->ek_cert);
	if (ev->time) {
		bundle_cw_uint(&w, 14);
		bundle_cw_int(&w, ev->time);
	}
	return bundle_cw_finish(&w, ret, ret_len);
}

static enum bundle_err dbytes(struct pool *pl, struct cr *r, struct bundle_bytes *out, const char *what)
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

static enum bundle_err dstr(struct pool *pl, struct cr *r, const char **out, const char *what)
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

static enum bundle_err dec_rootfs(struct cr *r, struct bundle_evidence *ev, struct pool *pl)
{
	uint64_t n;
	enum bundle_err e = bundle_cr_map(r, &n, "rootfs (9)");
	if (e)
		return e;
	for (uint64_t i = 0; i < n && !e; i++) {
		struct bundle_cr_key k;
		if ((e = bundle_cr_key(r, &k)))
			return e;
		if (k.is_int && k.i == 1)
			e = dbytes(pl, r, &ev->rootfs_digest, "rootfs digest");
		else if (k.is_int && k.i == 2)
			e = dstr(pl, r, &ev->rootfs_alg, "rootfs alg");
		else if (k.is_int && k.i == 3)
			e = bundle_cr_uint(r, &ev->rootfs_entries, "rootfs entries");
		else if (k.is_int && k.i == 4)
			e = bundle_cr_uint(r, &ev->rootfs_bytes, "rootfs bytes");
		else if (k.is_int && k.i == 5) {
			uint64_t m;
			const char **x;
			if ((e = bundle_cr_array(r, &m, "rootfs excludes")))
				return e;
			if (m > BUNDLE_MAX_EXCLUDES)
				return bundle_fail(BUNDLE_ERR_TOOBIG, "%llu excludes", (unsigned long long)m);
			if (!(x = bundle_pool_alloc(pl, (size_t)(m ? m : 1) * sizeof *x)))
				return bundle_fail(BUNDLE_ERR_NOMEM, "excludes");
			for (uint64_t j = 0; j < m && !e; j++)
				e = dstr(pl, r, &x[j], "exclude");
			ev->rootfs_excludes = x;
			ev->n_rootfs_excludes = (size_t)m;
		} else
			e = bundle_cr_skip(r, NULL);
	}
	return e;
}

static enum bundle_err dec_pcrs(struct cr *r, struct bundle_evidence *ev, struct pool *pl)
{
	uint64_t n;
	struct bundle_pcr *p;
	enum bundle_err e = bundle_cr_array(r, &n, "PCR values (6)");
	if (e)
		return e;
	if (n > BUNDLE_MAX_PCRS)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "%llu PCR values (max %d)", (unsigned long long)n, BUNDLE_MAX_PCRS);
	if (!(p = bundle_pool_alloc(pl, (size_t)(n ? n : 1) * sizeof *p)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "PCRs");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t three, alg, idx;
		if ((e = bundle_cr_array(r, &three, "PCR value")))
			return e;
		if (three != 3)
			return bundle_fail(BUNDLE_ERR_FORMAT, "PCR value: not [alg, index, digest]");
		if ((e = bundle_cr_uint(r, &alg, "PCR bank")) || (e = bundle_cr_uint(r, &idx, "PCR index")) ||
		    (e = dbytes(pl, r, &p[i].value, "PCR digest")))
			return e;
		if (alg > 0xffff || idx > 23 || p[i].value.len > 64)
			return bundle_fail(BUNDLE_ERR_FORMAT, "PCR bank %llu index %llu digest of %zu bytes",
					   (unsigned long long)alg, (unsigned long long)idx, p[i].value.len);
		p[i].alg = (uint16_t)alg;
		p[i].index = (uint8_t)idx;
	}
	ev->pcrs = p;
	ev->n_pcrs = (size_t)n;
	return BUNDLE_OK;
}

enum bundle_err bundle_evidence_decode(const uint8_t *buf, size_t len, struct bundle_evidence **ret)
{
	struct ev_box *b;
	struct bundle_evidence *ev;
	struct cr r;
	uint64_t n;
	unsigned seen = 0;
	enum bundle_err e;

	bundle_clear_cause();
	if (!ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL ret");
	if (len > BUNDLE_MAX_EVIDENCE)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "evidence of %zu bytes (max %u)", len, BUNDLE_MAX_EVIDENCE);
	if ((e = bundle_cbor_check(buf, len, 0)))
		return e;
	if (!(b = calloc(1, sizeof *b)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "evidence");
	ev = &b->ev;
	bundle_cr_init(&r, buf, len);
	if ((e = bundle_cr_map(&r, &n, "evidence")))
		goto out;
	for (uint64_t i = 0; i < n && !e; i++) {
		struct bundle_cr_key k;
		if ((e = bundle_cr_key(&r, &k)))
			break;
		if (!k.is_int || k.i < 1 || k.i > 14) {
			e = bundle_cr_skip(&r, NULL);
			continue;
		}
		if (seen & (1u << k.i)) {
			e = bundle_fail(BUNDLE_ERR_FORMAT, "evidence field %lld twice", (long long)k.i);
			break;
		}
		seen |= 1u << k.i;
		switch (k.i) {
		case 1: e = dstr(&b->pool, &r, &ev->host_id, "host id (1)"); break;
		case 2: e = dbytes(&b->pool, &r, &ev->nonce, "nonce (2)"); break;
		case 3: e = dbytes(&b->pool, &r, &ev->ak_public, "AK public (3)"); break;
		case 4: e = dbytes(&b->pool, &r, &ev->quote, "quote (4)"); break;
		case 5: e = dbytes(&b->pool, &r, &ev->quote_sig, "quote signature (5)"); break;
		case 6: e = dec_pcrs(&r, ev, &b->pool); break;
		case 7: e = dbytes(&b->pool, &r, &ev->fw_eventlog, "firmware event log (7)"); break;
		case 8: e = dbytes(&b->pool, &r, &ev->sluice_eventlog, "sluice event log (8)"); break;
		case 9: e = dec_rootfs(&r, ev, &b->pool); break;
		case 10: e = dbytes(&b->pool, &r, &ev->stmt_key_public, "statement key public (10)"); break;
		case 11: e = dbytes(&b->pool, &r, &ev->stmt_key_certify, "statement key certify (11)"); break;
		case 12: e = dbytes(&b->pool, &r, &ev->stmt_key_certify_sig, "statement key certify signature (12)"); break;
		case 13: e = dbytes(&b->pool, &r, &ev->ek_cert, "EK certificate (13)"); break;
		case 14: e = bundle_cr_int(&r, &ev->time, "time (14)"); break;
		default: e = bundle_cr_skip(&r, NULL); break;
		}
	}
	if (!e) {
		static const int req[] = {1, 2, 3, 4, 5, 6, 9};
		for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
			if (!(seen & (1u << req[i]))) {
				e = bundle_fail(BUNDLE_ERR_FORMAT, "evidence without field %d", req[i]);
				break;
			}
	}
	if (!e && (!ev->rootfs_digest.ptr || !ev->rootfs_alg))
		e = bundle_fail(BUNDLE_ERR_FORMAT, "evidence rootfs without digest or alg");
out:
	if (e) {
		bundle_evidence_free(ev);
		return e;
	}
	*ret = ev;
	return BUNDLE_OK;
}

void bundle_evidence_free(struct bundle_evidence *ev)
{
	struct ev_box *b = (struct ev_box *)ev;
	if (!b)
		return;
	bundle_pool_free(&b->pool);
	free(b);
}
