/* Consistency receipts (COSE Receipts, vds 1 = RFC9162_SHA256) for auditors: libbundle issues
 * the inclusion receipts but no consistency receipts, so this is sluice-ts's private helper.
 *
 * A signed tree head (struct ts_sth) is the receipt protected header
 *     {1: -7, 4: kid, 15: {1: iss, 6: iat}, 395: 1}
 * and an ES256 signature over ["Signature1", protected, h'', root]. A consistency receipt is
 *     18([protected, {396: {-2: [bstr .cbor [size1, size2, [path...]]]}}, nil, sig])
 * with the newer root as the detached payload. */
#include "transparency/ts-int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

int ts_sth_sign(const struct ts_key *k, const char *iss, uint64_t size, const uint8_t root[MERKLE_HASH_LEN],
		int64_t iat, struct ts_sth *out)
{
	struct ts_buf p = {0}, tbs = {0};
	int rc = -1;

	ts_cbor_head(&p, 5, 4);
	ts_cbor_int(&p, 1);
	ts_cbor_int(&p, -7);
	ts_cbor_int(&p, 4);
	ts_cbor_bstr(&p, ts_key_kid(k), TS_KID_LEN);
	ts_cbor_int(&p, 15);
	ts_cbor_head(&p, 5, 2);
	ts_cbor_int(&p, 1);
	ts_cbor_tstr(&p, iss);
	ts_cbor_int(&p, 6);
	ts_cbor_int(&p, iat);
	ts_cbor_int(&p, 395);
	ts_cbor_int(&p, 1);
	if (p.oom || p.len > sizeof out->prot)
		goto out;

	ts_cbor_head(&tbs, 4, 4);
	ts_cbor_tstr(&tbs, "Signature1");
	ts_cbor_bstr(&tbs, p.p, p.len);
	ts_cbor_bstr(&tbs, NULL, 0);
	ts_cbor_bstr(&tbs, root, MERKLE_HASH_LEN);
	if (tbs.oom || ts_key_sign(k, tbs.p, tbs.len, out->sig) != 0)
		goto out;
	memcpy(out->prot, p.p, p.len);
	out->prot_len = p.len;
	memcpy(out->root, root, MERKLE_HASH_LEN);
	out->size = size;
	out->iat = iat;
	rc = 0;
out:
	ts_buf_free(&p);
	ts_buf_free(&tbs);
	return rc;
}

static void receipt(const struct ts_sth *sth, int64_t proof_type, uint64_t a, uint64_t b,
		    const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len, struct ts_buf *out)
{
	struct ts_buf proof = {0};

	ts_cbor_head(&proof, 4, 3);
	ts_cbor_uint(&proof, a);
	ts_cbor_uint(&proof, b);
	ts_cbor_head(&proof, 4, path_len);
	for (size_t i = 0; i < path_len; i++)
		ts_cbor_bstr(&proof, path[i], MERKLE_HASH_LEN);

	ts_cbor_head(out, 6, 18);
	ts_cbor_head(out, 4, 4);
	ts_cbor_bstr(out, sth->prot, sth->prot_len);
	ts_cbor_head(out, 5, 1);
	ts_cbor_int(out, 396);
	ts_cbor_head(out, 5, 1);
	ts_cbor_int(out, proof_type);
	ts_cbor_head(out, 4, 1);
	if (proof.oom)
		out->oom = 1;
	else
		ts_cbor_bstr(out, proof.p, proof.len);
	ts_buf_put(out, "\xf6", 1);
	ts_cbor_bstr(out, sth->sig, sizeof sth->sig);
	ts_buf_free(&proof);
}

void ts_receipt_consistency(const struct ts_sth *sth, uint64_t size1, const uint8_t (*path)[MERKLE_HASH_LEN],
			    size_t path_len, struct ts_buf *out)
{
	receipt(sth, -2, size1, sth->size, path, path_len, out);
}

int ts_consistency_root(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
			const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len, uint8_t root2[MERKLE_HASH_LEN])
{
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	uint64_t fn, sn;
	size_t i = 0;

	if (size1 == 0 || size1 > size2)
		return -1;
	if (size1 == size2) {
		if (path_len != 0)
			return -1;
		memcpy(root2, root1, MERKLE_HASH_LEN);
		return 0;
	}
	if (path_len == 0 || path_len > MERKLE_MAX_PROOF)
		return -1;
	fn = size1 - 1;
	sn = size2 - 1;
	if ((size1 & (size1 - 1)) == 0) {
		/* size1 is a power of two: the path starts (implicitly) with root1 */
		memcpy(fr, root1, MERKLE_HASH_LEN);
		memcpy(sr, root1, MERKLE_HASH_LEN);
	} else {
		memcpy(fr, path[0], MERKLE_HASH_LEN);
		memcpy(sr, path[0], MERKLE_HASH_LEN);
		i = 1;
	}
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < path_len; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) || fn == sn) {
			uint8_t t[MERKLE_HASH_LEN];
			merkle_node_hash(path[i], fr, t);
			memcpy(fr, t, sizeof t);
			merkle_node_hash(path[i], sr, t);
			memcpy(sr, t, sizeof t);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			uint8_t t[MERKLE_HASH_LEN];
			merkle_node_hash(sr, path[i], t);
			memcpy(sr, t, sizeof t);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || CRYPTO_memcmp(fr, root1, MERKLE_HASH_LEN) != 0)
		return -1;
	memcpy(root2, sr, MERKLE_HASH_LEN);
	return 0;
}
