/* SCITT receipts (draft-ietf-cose-merkle-tree-proofs): verify vds=1 (RFC9162_SHA256) and
 * vds=2 (CCF_LEDGER_SHA256), issue vds=1 with one head signature shared by many receipts.
 * Merkle arithmetic is libmerkle's; the CCF leaf/path rule is CCF's own (no RFC 9162 prefixes). */
#include "bundle/bundle-int.h"
#include "merkle/merkle.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct bundle_receipt_head {
	uint8_t *prot;
	size_t prot_len;
	uint8_t sig[BUNDLE_MAX_SIG];
	size_t sig_len;
	uint8_t root[32];
	uint64_t tree_size;
};

/* The first inclusion proof bstr under 396 -> -1. */
static enum bundle_err first_inclusion(const struct bundle_cose *c, struct bundle_bytes *proof)
{
	struct cr r;
	uint64_t n, m;
	enum bundle_err e;
	bool found = false;

	if (!c->vdp.ptr)
		return bundle_fail(BUNDLE_ERR_FORMAT, "receipt without proofs (396)");
	bundle_cr_init(&r, c->vdp.ptr, c->vdp.len);
	if ((e = bundle_cr_map(&r, &n, "proofs (396)")))
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key k;
		if ((e = bundle_cr_key(&r, &k)))
			return e;
		if (k.is_int && k.i == -1 && !found) {
			if ((e = bundle_cr_array(&r, &m, "inclusion proofs (-1)")))
				return e;
			if (m == 0)
				return bundle_fail(BUNDLE_ERR_FORMAT, "empty inclusion proof list");
			if ((e = bundle_cr_bstr(&r, proof, "inclusion proof")))
				return e;
			for (uint64_t j = 1; j < m; j++)
				if ((e = bundle_cr_skip(&r, NULL)))
					return e;
			found = true;
		} else if ((e = bundle_cr_skip(&r, NULL))) {
			return e;
		}
	}
	if (!found)
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "receipt has no inclusion proof (396 -> -1)");
	return BUNDLE_OK;
}

static enum bundle_err vds1_root(struct bundle_bytes proof, const uint8_t leaf[32], struct bundle_receipt_info *inf)
{
	struct cr r;
	uint64_t n, np;
	uint8_t path[BUNDLE_MAX_PATH][32];
	enum bundle_err e;
	enum merkle_err me;

	if ((e = bundle_cbor_check(proof.ptr, proof.len, 0)))
		return e;
	bundle_cr_init(&r, proof.ptr, proof.len);
	if ((e = bundle_cr_array(&r, &n, "RFC9162 inclusion proof")))
		return e;
	if (n != 3)
		return bundle_fail(BUNDLE_ERR_FORMAT, "inclusion proof: array of %llu, not 3", (unsigned long long)n);
	if ((e = bundle_cr_uint(&r, &inf->tree_size, "tree_size")) || (e = bundle_cr_uint(&r, &inf->leaf_index, "leaf_index")) ||
	    (e = bundle_cr_array(&r, &np, "inclusion path")))
		return e;
	if (np > BUNDLE_MAX_PATH)
		return bundle_fail(BUNDLE_ERR_PROOF, "inclusion path of %llu hashes", (unsigned long long)np);
	for (uint64_t i = 0; i < np; i++) {
		struct bundle_bytes h;
		if ((e = bundle_cr_bstr(&r, &h, "path hash")))
			return e;
		if (h.len != 32)
			return bundle_fail(BUNDLE_ERR_FORMAT, "path hash of %zu bytes, not 32", h.len);
		memcpy(path[i], h.ptr, 32);
	}
	inf->path_len = (size_t)np;
	me = merkle_inclusion_root(inf->leaf_index, inf->tree_size, leaf, (const uint8_t (*)[32])path, (size_t)np,
				   inf->root);
	if (me != MERKLE_OK)
		return bundle_fail(BUNDLE_ERR_PROOF, "inclusion proof for leaf %llu of %llu: %s",
				   (unsigned long long)inf->leaf_index, (unsigned long long)inf->tree_size,
				   merkle_strerror(me));
	return BUNDLE_OK;
}

/* CCF: proof = {1: [internal_tx_hash, internal_evidence, data_hash], 2: [[left, hash]...]} */
static enum bundle_err vds2_root(struct bundle_bytes proof, const uint8_t record_hash[32],
				 struct bundle_receipt_info *inf)
{
	struct cr r;
	uint64_t n, m;
	struct bundle_bytes itx = {0}, ev = {0}, dh = {0};
	uint8_t cur[32], buf[96], evh[32];
	bool have_leaf = false, have_path = false;
	enum bundle_err e;

	if ((e = bundle_cbor_check(proof.ptr, proof.len, 0)))
		return e;
	bundle_cr_init(&r, proof.ptr, proof.len);
	if ((e = bundle_cr_map(&r, &n, "CCF proof")))
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key k;
		if ((e = bundle_cr_key(&r, &k)))
			return e;
		if (k.is_int && k.i == 1 && !have_leaf) {
			if ((e = bundle_cr_array(&r, &m, "CCF leaf")))
				return e;
			if (m != 3)
				return bundle_fail(BUNDLE_ERR_FORMAT, "CCF leaf: array of %llu, not 3", (unsigned long long)m);
			if ((e = bundle_cr_bstr(&r, &itx, "CCF internal tx hash")) || (e = bundle_cr_tstr(&r, &ev, "CCF evidence")) ||
			    (e = bundle_cr_bstr(&r, &dh, "CCF data hash")))
				return e;
			if (itx.len != 32 || dh.len != 32)
				return bundle_fail(BUNDLE_ERR_FORMAT, "CCF leaf hashes must be 32 bytes");
			if (CRYPTO_memcmp(dh.ptr, record_hash, 32) != 0)
				return bundle_fail(BUNDLE_ERR_PROOF, "CCF data hash is not SHA-256 of the statement record");
			bundle_sha256(ev.ptr, ev.len, evh);
			memcpy(buf, itx.ptr, 32);
			memcpy(buf + 32, evh, 32);
			memcpy(buf + 64, dh.ptr, 32);
			bundle_sha256(buf, 96, cur);
			memcpy(inf->leaf, cur, 32);
			have_leaf = true;
		} else if (k.is_int && k.i == 2 && !have_path) {
			if (!have_leaf)
				return bundle_fail(BUNDLE_ERR_FORMAT, "CCF proof: path before leaf");
			if ((e = bundle_cr_array(&r, &m, "CCF path")))
				return e;
			if (m > BUNDLE_MAX_PATH)
				return bundle_fail(BUNDLE_ERR_PROOF, "CCF path of %llu steps", (unsigned long long)m);
			for (uint64_t j = 0; j < m; j++) {
				uint64_t two;
				bool left;
				struct bundle_bytes h;
				if ((e = bundle_cr_array(&r, &two, "CCF path step")))
					return e;
				if (two != 2)
					return bundle_fail(BUNDLE_ERR_FORMAT, "CCF path step: not [bool, hash]");
				if ((e = bundle_cr_bool(&r, &left, "CCF path direction")) || (e = bundle_cr_bstr(&r, &h, "CCF path hash")))
					return e;
				if (h.len != 32)
					return bundle_fail(BUNDLE_ERR_FORMAT, "CCF path hash of %zu bytes", h.len);
				if (left) {
					memcpy(buf, h.ptr, 32);
					memcpy(buf + 32, cur, 32);
				} else {
					memcpy(buf, cur, 32);
					memcpy(buf + 32, h.ptr, 32);
				}
				bundle_sha256(buf, 64, cur);
			}
			inf->path_len = (size_t)m;
			have_path = true;
		} else if ((e = bundle_cr_skip(&r, NULL))) {
			return e;
		}
	}
	if (!have_leaf || !have_path)
		return bundle_fail(BUNDLE_ERR_FORMAT, "CCF proof without leaf (1) or path (2)");
	memcpy(inf->root, cur, 32);
	return BUNDLE_OK;
}

enum bundle_err bundle_receipt_verify(const uint8_t *receipt, size_t receipt_len, const uint8_t *stmt, size_t stmt_len,
				      const struct bundle_key *key, const struct bundle_keyset *ks,
				      struct bundle_receipt_info *info)
{
	struct bundle_receipt_info inf;
	struct bundle_cose c;
	struct bundle_bytes proof;
	uint8_t *rec = NULL, *tbs = NULL;
	size_t rl = 0, tl = 0;
	const struct bundle_key *k = key;
	enum bundle_err e;

	bundle_clear_cause();
	memset(&inf, 0, sizeof inf);
	if (!key && !ks)
		return bundle_fail(BUNDLE_ERR_INVAL, "no key and no key set");
	if ((e = bundle_cose_parse(receipt, receipt_len, &c)))
		return e;
	inf.vds = c.vds;
	inf.alg = c.alg;
	inf.kid = c.kid;
	inf.iss = c.cwt_iss;
	inf.sub = c.cwt_sub;
	inf.iat = c.cwt_iat;
	if (!c.detached)
		return bundle_fail(BUNDLE_ERR_FORMAT, "receipt payload must be detached (nil)");
	if (c.crit_unknown)
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "receipt crit (2) lists a header we do not understand");
	if (!bundle_alg_supported(c.alg))
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "receipt alg %lld", (long long)c.alg);
	if (c.vds != 1 && c.vds != 2)
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "receipt vds %lld (1 and 2 are supported)", (long long)c.vds);
	if ((e = first_inclusion(&c, &proof)))
		return e;
	if ((e = bundle_statement_record(stmt, stmt_len, &rec, &rl)))
		goto out;
	if (c.vds == 1) {
		merkle_leaf_hash(rec, rl, inf.leaf);
		e = vds1_root(proof, inf.leaf, &inf);
	} else {
		uint8_t rh[32];
		bundle_sha256(rec, rl, rh);
		e = vds2_root(proof, rh, &inf);
	}
	if (e)
		goto out;
	if (!k) {
		if (!c.kid.ptr) {
			e = bundle_fail(BUNDLE_ERR_KID, "receipt has no kid and no key was given");
			goto out;
		}
		if (!(k = bundle_keyset_find(ks, c.kid.ptr, c.kid.len))) {
			e = bundle_fail(BUNDLE_ERR_KID, "no trusted key matches the receipt's kid");
			goto out;
		}
	}
	if ((e = bundle_sig_structure(c.protected_bstr.ptr ? c.protected_bstr.ptr : (const uint8_t *)"",
				      c.protected_bstr.len, inf.root, 32, &tbs, &tl)))
		goto out;
	e = bundle_key_verify_raw(k, (int)c.alg, tbs, tl, c.signature.ptr, c.signature.len);
out:
	if (info && (e == BUNDLE_OK || e == BUNDLE_ERR_SIGNATURE || e == BUNDLE_ERR_KID || e == BUNDLE_ERR_PROOF))
		*info = inf;
	free(rec);
	free(tbs);
	return e;
}

enum bundle_err bundle_receipt_parse(const uint8_t *receipt, size_t receipt_len, struct bundle_receipt_info *info)
{
	struct bundle_receipt_info inf;
	struct bundle_cose c;
	struct bundle_bytes proof;
	struct cr r;
	uint64_t n;
	enum bundle_err e;

	bundle_clear_cause();
	if (!info)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL info");
	memset(&inf, 0, sizeof inf);
	if ((e = bundle_cose_parse(receipt, receipt_len, &c)))
		return e;
	inf.vds = c.vds;
	inf.alg = c.alg;
	inf.kid = c.kid;
	inf.iss = c.cwt_iss;
	inf.sub = c.cwt_sub;
	inf.iat = c.cwt_iat;
	if (c.vds != 1 && c.vds != 2)
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "receipt vds %lld", (long long)c.vds);
	if ((e = first_inclusion(&c, &proof)) || (e = bundle_cbor_check(proof.ptr, proof.len, 0)))
		return e;
	bundle_cr_init(&r, proof.ptr, proof.len);
	if (c.vds == 1) {
		uint64_t np;
		if ((e = bundle_cr_array(&r, &n, "RFC9162 inclusion proof")))
			return e;
		if (n != 3)
			return bundle_fail(BUNDLE_ERR_FORMAT, "inclusion proof: array of %llu, not 3", (unsigned long long)n);
		if ((e = bundle_cr_uint(&r, &inf.tree_size, "tree_size")) || (e = bundle_cr_uint(&r, &inf.leaf_index, "leaf_index")) ||
		    (e = bundle_cr_array(&r, &np, "inclusion path")))
			return e;
		inf.path_len = (size_t)np;
	} else {
		if ((e = bundle_cr_map(&r, &n, "CCF proof")))
			return e;
		for (uint64_t i = 0; i < n; i++) {
			struct bundle_cr_key k;
			if ((e = bundle_cr_key(&r, &k)))
				return e;
			if (k.is_int && k.i == 2) {
				uint64_t m;
				if ((e = bundle_cr_array(&r, &m, "CCF path")))
					return e;
				inf.path_len = (size_t)m;
				for (uint64_t j = 0; j < m; j++)
					if ((e = bundle_cr_skip(&r, NULL)))
						return e;
			} else if ((e = bundle_cr_skip(&r, NULL))) {
				return e;
			}
		}
	}
	*info = inf;
	return BUNDLE_OK;
}

enum bundle_err bundle_receipt_sign_head(const struct bundle_signer *s, const struct bundle_receipt_hdr *hdr,
					 uint64_t tree_size, const uint8_t root[32], struct bundle_receipt_head **ret)
{
	struct bundle_cose_hdr h = {0};
	struct bundle_receipt_head *rh = NULL;
	enum bundle_err e;

	bundle_clear_cause();
	if (!s || !s->sign || !root || !ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (!s->kid.ptr || !s->kid.len)
		return bundle_fail(BUNDLE_ERR_INVAL, "receipt signer needs a kid");
	if (!bundle_alg_supported(s->alg))
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "signer alg %d", s->alg);
	if (tree_size == 0)
		return bundle_fail(BUNDLE_ERR_INVAL, "empty tree");
	if (hdr) {
		h.cwt_iss = hdr->iss;
		h.cwt_sub = hdr->sub;
		h.cwt_iat = hdr->iat;
	}
	h.vds = 1;
	if (!(rh = calloc(1, sizeof *rh)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "receipt head");
	if ((e = bundle_encode_protected(s->alg, s->kid, &h, &rh->prot, &rh->prot_len)) ||
	    (e = bundle_sign_tbs(s, rh->prot, rh->prot_len, root, 32, rh->sig, &rh->sig_len))) {
		bundle_receipt_head_free(rh);
		return e;
	}
	memcpy(rh->root, root, 32);
	rh->tree_size = tree_size;
	*ret = rh;
	return BUNDLE_OK;
}

enum bundle_err bundle_receipt_issue(const struct bundle_receipt_head *h, uint64_t leaf_index,
				     const uint8_t (*path)[32], size_t path_len, uint8_t **ret, size_t *ret_len)
{
	struct cw p, w;
	uint8_t *pb = NULL;
	size_t pl = 0;
	enum bundle_err e;

	bundle_clear_cause();
	if (!h || !ret || !ret_len || (!path && path_len))
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (leaf_index >= h->tree_size)
		return bundle_fail(BUNDLE_ERR_INVAL, "leaf %llu outside a tree of %llu", (unsigned long long)leaf_index,
				   (unsigned long long)h->tree_size);
	if (path_len > BUNDLE_MAX_PATH)
		return bundle_fail(BUNDLE_ERR_INVAL, "path of %zu hashes", path_len);
	bundle_cw_init(&p, 8192);
	bundle_cw_array(&p, 3);
	bundle_cw_uint(&p, h->tree_size);
	bundle_cw_uint(&p, leaf_index);
	bundle_cw_array(&p, path_len);
	for (size_t i = 0; i < path_len; i++)
		bundle_cw_bstr(&p, path[i], 32);
	if ((e = bundle_cw_finish(&p, &pb, &pl)))
		return e;
	bundle_cw_init(&w, BUNDLE_MAX_COSE);
	bundle_cw_tag(&w, 18);
	bundle_cw_array(&w, 4);
	bundle_cw_bstr(&w, h->prot, h->prot_len);
	bundle_cw_map(&w, 1);
	bundle_cw_uint(&w, 396);
	bundle_cw_map(&w, 1);
	bundle_cw_int(&w, -1);
	bundle_cw_array(&w, 1);
	bundle_cw_bstr(&w, pb, pl);
	bundle_cw_null(&w);
	bundle_cw_bstr(&w, h->sig, h->sig_len);
	free(pb);
	return bundle_cw_finish(&w, ret, ret_len);
}

void bundle_receipt_head_free(struct bundle_receipt_head *h)
{
	if (!h)
		return;
	free(h->prot);
	free(h);
}
