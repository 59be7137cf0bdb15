/* libbundle: deterministic CBOR, keys, COSE_Sign1, statements, receipts (issue + verify), EAR,
 * evidence, bundles, problem details. Every verifier gets a forgery that must fail and every
 * structure must round-trip byte-identically (encode -> decode -> encode). */
#include "bundle/bundle.h"
#include "merkle/merkle.h"
#include "tests/unit/t.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const int algs[] = {BUNDLE_ALG_ES256, BUNDLE_ALG_ES384, BUNDLE_ALG_EDDSA};

static int det(const uint8_t *b, size_t n)
{
	return bundle_cbor_check(b, n, 1) == BUNDLE_OK;
}

/* ---------------------------------------------------------------------------------------- */

static void test_cbor_check(void)
{
	static const uint8_t ok1[] = {0xa2, 0x01, 0x02, 0x20, 0x03};            /* {1:2,-1:3} */
	static const uint8_t unsorted[] = {0xa2, 0x20, 0x03, 0x01, 0x02};       /* {-1:3,1:2} */
	static const uint8_t dup[] = {0xa2, 0x01, 0x02, 0x01, 0x03};
	static const uint8_t longint[] = {0x18, 0x05};                         /* 5 in two bytes */
	static const uint8_t indef[] = {0x9f, 0x01, 0xff};
	static const uint8_t trailing[] = {0x01, 0x02};
	static const uint8_t trunc[] = {0x5a, 0xff, 0xff, 0xff, 0xff, 0x00};    /* bstr of 4 GiB */
	static const uint8_t huge[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t bigarr[] = {0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t reserved[] = {0x1c};
	static const uint8_t tag18[] = {0xd2, 0x80};
	uint8_t deep[64];

	T_EQ_INT(bundle_cbor_check(ok1, sizeof ok1, 1), BUNDLE_OK);
	T_EQ_INT(bundle_cbor_check(unsorted, sizeof unsorted, 0), BUNDLE_OK);
	T_EQ_INT(bundle_cbor_check(unsorted, sizeof unsorted, 1), BUNDLE_ERR_NONCANON);
	T_EQ_INT(bundle_cbor_check(dup, sizeof dup, 1), BUNDLE_ERR_NONCANON);
	T_EQ_INT(bundle_cbor_check(longint, sizeof longint, 0), BUNDLE_OK);
	T_EQ_INT(bundle_cbor_check(longint, sizeof longint, 1), BUNDLE_ERR_NONCANON);
	T_EQ_INT(bundle_cbor_check(indef, sizeof indef, 0), BUNDLE_ERR_CBOR);
	T_EQ_INT(bundle_cbor_check(trailing, sizeof trailing, 0), BUNDLE_ERR_CBOR);
	T_EQ_INT(bundle_cbor_check(trunc, sizeof trunc, 0), BUNDLE_ERR_CBOR);
	T_EQ_INT(bundle_cbor_check(huge, sizeof huge, 0), BUNDLE_ERR_CBOR);
	T_EQ_INT(bundle_cbor_check(bigarr, sizeof bigarr, 0), BUNDLE_ERR_CBOR);
	T_EQ_INT(bundle_cbor_check(reserved, sizeof reserved, 0), BUNDLE_ERR_CBOR);
	T_EQ_INT(bundle_cbor_check(tag18, sizeof tag18, 1), BUNDLE_OK);
	T_EQ_INT(bundle_cbor_check(NULL, 0, 0), BUNDLE_ERR_CBOR);
	/* nesting: 16 levels fine, 17 not */
	memset(deep, 0x81, sizeof deep);
	deep[BUNDLE_MAX_DEPTH] = 0x00;
	T_EQ_INT(bundle_cbor_check(deep, BUNDLE_MAX_DEPTH + 1, 0), BUNDLE_OK);
	memset(deep, 0x81, sizeof deep);
	deep[BUNDLE_MAX_DEPTH + 1] = 0x00;
	T_EQ_INT(bundle_cbor_check(deep, BUNDLE_MAX_DEPTH + 2, 0), BUNDLE_ERR_CBOR);
	T_CHECK(strlen(bundle_last_cause()) > 0);
}

static void test_cbor_json(void)
{
	static const uint8_t m[] = {0xa3, 0x01, 0x42, 0xab, 0xcd, 0x20, 0x63, 'a', '"', 'b', 0x61, 'k', 0xf5};
	char *j = NULL;
	T_EQ_INT(bundle_cbor_to_json(m, sizeof m, &j), BUNDLE_OK);
	T_EQ_STR(j, "{\"1\":\"h'abcd'\",\"-1\":\"a\\\"b\",\"k\":true}");
	free(j);
	{
		/* ["é", invalid 0xff, truncated 0xc3, surrogate ED A0 80] */
		static const uint8_t u[] = {0x84, 0x62, 0xc3, 0xa9, 0x61, 0xff, 0x61, 0xc3, 0x63, 0xed, 0xa0, 0x80};
		j = NULL;
		T_EQ_INT(bundle_cbor_to_json(u, sizeof u, &j), BUNDLE_OK);
		T_EQ_STR(j, "[\"\xc3\xa9\",\"\\ufffd\",\"\\ufffd\",\"\\ufffd\\ufffd\\ufffd\"]");
		free(j);
	}
}

/* ---------------------------------------------------------------------------------------- */

static void test_key_rfc9679_thumbprint(void)
{
	static const uint8_t cose[] = {
		0xa4, 0x01, 0x02, 0x20, 0x01, 0x21, 0x58, 0x20, 0x65, 0xed, 0xa5, 0xa1, 0x25, 0x77, 0xc2, 0xba, 0xe8,
		0x29, 0x43, 0x7f, 0xe3, 0x38, 0x70, 0x1a, 0x10, 0xaa, 0xa3, 0x75, 0xe1, 0xbb, 0x5b, 0x5d, 0xe1, 0x08,
		0xde, 0x43, 0x9c, 0x08, 0x55, 0x1d, 0x22, 0x58, 0x20, 0x1e, 0x52, 0xed, 0x75, 0x70, 0x11, 0x63, 0xf7,
		0xf9, 0xe4, 0x0d, 0xdf, 0x9f, 0x34, 0x1b, 0x3d, 0xc9, 0xba, 0x86, 0x0a, 0xf7, 0xe0, 0xca, 0x7c, 0xa7,
		0xe9, 0xee, 0xcd, 0x00, 0x84, 0xd1, 0x9c};
	static const uint8_t want[32] = {0x49, 0x6b, 0xd8, 0xaf, 0xad, 0xf3, 0x07, 0xe5, 0xb0, 0x8c, 0x64,
					 0xb0, 0x42, 0x1b, 0xf9, 0xdc, 0x01, 0x52, 0x8a, 0x34, 0x4a, 0x43,
					 0xbd, 0xa8, 0x8f, 0xad, 0xd1, 0x66, 0x9d, 0xa2, 0x53, 0xec};
	struct bundle_key *k = NULL;
	uint8_t tp[32];
	T_EQ_INT(bundle_key_from_cose(cose, sizeof cose, &k), BUNDLE_OK);
	T_EQ_INT(bundle_key_alg(k), BUNDLE_ALG_ES256);
	T_EQ_INT(bundle_key_thumbprint(k, tp), BUNDLE_OK);
	T_CHECK(memcmp(tp, want, 32) == 0);
	T_CHECK(bundle_key_matches_kid(k, want, 32));
	bundle_key_free(k);
}

static void test_key_roundtrips(void)
{
	for (size_t i = 0; i < 3; i++) {
		struct bundle_key *k = NULL, *k2 = NULL, *k3 = NULL, *pub = NULL;
		uint8_t *pem = NULL, *ppem = NULL, *c1 = NULL, *c2 = NULL;
		size_t pl = 0, ppl = 0, c1l = 0, c2l = 0;
		uint8_t t1[32], t2[32];
		T_EQ_INT(bundle_key_generate(algs[i], &k), BUNDLE_OK);
		if (!k)
			continue;
		T_EQ_INT(bundle_key_alg(k), algs[i]);
		T_CHECK(bundle_key_has_private(k));
		T_EQ_INT(bundle_key_save_pem(k, 1, &pem, &pl), BUNDLE_OK);
		T_EQ_INT(bundle_key_save_pem(k, 0, &ppem, &ppl), BUNDLE_OK);
		T_EQ_INT(bundle_key_load(pem, pl, &k2), BUNDLE_OK);
		T_EQ_INT(bundle_key_load(ppem, ppl, &pub), BUNDLE_OK);
		T_CHECK(k2 && bundle_key_has_private(k2));
		T_CHECK(pub && !bundle_key_has_private(pub));
		T_EQ_INT(bundle_key_save_pem(pub, 1, &c1, &c1l), BUNDLE_ERR_KEY);
		bundle_key_thumbprint(k, t1);
		bundle_key_thumbprint(pub, t2);
		T_CHECK(memcmp(t1, t2, 32) == 0);
		/* COSE_Key: encode -> decode -> encode identical, deterministic */
		T_EQ_INT(bundle_key_to_cose(k, &c1, &c1l), BUNDLE_OK);
		T_CHECK(det(c1, c1l));
		T_EQ_INT(bundle_key_from_cose(c1, c1l, &k3), BUNDLE_OK);
		T_EQ_INT(bundle_key_to_cose(k3, &c2, &c2l), BUNDLE_OK);
		T_CHECK(c1l == c2l && memcmp(c1, c2, c1l) == 0);
		T_CHECK(!bundle_key_has_private(k3));
		free(pem);
		free(ppem);
		free(c1);
		free(c2);
		bundle_key_free(k);
		bundle_key_free(k2);
		bundle_key_free(k3);
		bundle_key_free(pub);
	}
}

static void test_key_rejects(void)
{
	uint8_t x[32], y[32];
	struct bundle_key *k = NULL;
	memset(x, 0x11, 32);
	memset(y, 0x22, 32);
	T_EQ_INT(bundle_key_from_ec_point(BUNDLE_ALG_ES256, x, 32, y, 32, &k), BUNDLE_ERR_KEY); /* off curve */
	T_EQ_INT(bundle_key_from_ec_point(BUNDLE_ALG_EDDSA, x, 32, y, 32, &k), BUNDLE_ERR_UNSUPPORTED);
	T_EQ_INT(bundle_key_load((const uint8_t *)"hello", 5, &k), BUNDLE_ERR_KEY);
	/* COSE_Key with a curve we do not do (X25519 = OKP crv 4) */
	{
		uint8_t c[40] = {0xa3, 0x01, 0x01, 0x20, 0x04, 0x21, 0x58, 0x20};
		T_EQ_INT(bundle_key_from_cose(c, 40, &k), BUNDLE_ERR_UNSUPPORTED);
	}
	T_CHECK(k == NULL);
}

static void test_keyset_roundtrip(void)
{
	struct bundle_keyset *ks = NULL, *ks2 = NULL;
	uint8_t *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	T_EQ_INT(bundle_keyset_new(&ks), BUNDLE_OK);
	for (size_t i = 0; i < 3; i++) {
		struct bundle_key *k = NULL;
		bundle_key_generate(algs[i], &k);
		T_EQ_INT(bundle_keyset_add(ks, k), BUNDLE_OK);
	}
	T_EQ_INT(bundle_keyset_encode(ks, &e1, &l1), BUNDLE_OK);
	T_CHECK(det(e1, l1));
	T_EQ_INT(bundle_keyset_decode(e1, l1, &ks2), BUNDLE_OK);
	T_EQ_INT(bundle_keyset_count(ks2), 3);
	T_EQ_INT(bundle_keyset_encode(ks2, &e2, &l2), BUNDLE_OK);
	T_CHECK(l1 == l2 && memcmp(e1, e2, l1) == 0);
	for (size_t i = 0; i < 3; i++) {
		struct bundle_bytes kid = bundle_key_kid(bundle_keyset_get(ks, i));
		T_CHECK(bundle_keyset_find(ks2, kid.ptr, kid.len) != NULL);
	}
	T_CHECK(bundle_keyset_find(ks2, (const uint8_t *)"nope", 4) == NULL);
	free(e1);
	free(e2);
	bundle_keyset_free(ks);
	bundle_keyset_free(ks2);
}

/* ---------------------------------------------------------------------------------------- */
/* A "TPM-like" signer: gets only the digest and signs it with a raw (prehashed) ECDSA key. */
struct digest_signer {
	EVP_PKEY *pkey;
	int calls;
	int fail;
	size_t short_by;
};

static int digest_sign_cb(void *ud, int alg, const uint8_t *tbs, size_t tbs_len, const uint8_t *digest,
			  size_t digest_len, uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	struct digest_signer *d = ud;
	EVP_PKEY_CTX *c;
	uint8_t der[128];
	size_t dl = sizeof der;
	const unsigned char *q = der;
	ECDSA_SIG *es;
	int rc = -1;
	(void)tbs, (void)tbs_len, (void)alg;
	d->calls++;
	if (d->fail)
		return 7;
	c = EVP_PKEY_CTX_new(d->pkey, NULL);
	if (c && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, der, &dl, digest, digest_len) == 1 &&
	    (es = d2i_ECDSA_SIG(NULL, &q, (long)dl))) {
		const BIGNUM *r, *s;
		ECDSA_SIG_get0(es, &r, &s);
		if (sig_cap >= 64 && BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32) {
			*sig_len = 64 - d->short_by;
			rc = 0;
		}
		ECDSA_SIG_free(es);
	}
	EVP_PKEY_CTX_free(c);
	return rc;
}

static void test_cose_sign_verify(void)
{
	static const uint8_t msg[] = "hello sluice";
	for (size_t i = 0; i < 3; i++) {
		struct bundle_key *k = NULL, *other = NULL, *pub = NULL;
		struct bundle_signer s;
		struct bundle_cose_hdr h = {.content_type = "text/plain", .cwt_iss = "iss", .cwt_sub = "sub", .cwt_iat = 1700000000};
		uint8_t *c = NULL, *d = NULL;
		size_t cl = 0, dl = 0;
		struct bundle_cose pc;

		bundle_key_generate(algs[i], &k);
		bundle_key_generate(algs[i], &other);
		bundle_key_public(k, &pub);
		T_EQ_INT(bundle_signer_from_key(k, &s), BUNDLE_OK);
		T_EQ_INT(bundle_cose_sign1(&s, &h, msg, sizeof msg, 0, &c, &cl), BUNDLE_OK);
		T_CHECK(det(c, cl));
		T_EQ_INT(bundle_cose_parse(c, cl, &pc), BUNDLE_OK);
		T_EQ_INT(pc.alg, algs[i]);
		T_CHECK(pc.tagged && !pc.detached && pc.payload.len == sizeof msg);
		T_EQ_INT(pc.cwt_iat, 1700000000);
		T_EQ_INT(bundle_cose_verify(c, cl, pub, NULL, 0), BUNDLE_OK);
		T_EQ_INT(bundle_cose_verify(c, cl, other, NULL, 0), BUNDLE_ERR_SIGNATURE);
		/* tamper: last signature byte, a payload byte */
		c[cl - 1] ^= 1;
		T_EQ_INT(bundle_cose_verify(c, cl, pub, NULL, 0), BUNDLE_ERR_SIGNATURE);
		c[cl - 1] ^= 1;
		((uint8_t *)pc.payload.ptr)[0] ^= 1;
		T_EQ_INT(bundle_cose_verify(c, cl, pub, NULL, 0), BUNDLE_ERR_SIGNATURE);
		/* detached */
		T_EQ_INT(bundle_cose_sign1(&s, NULL, msg, sizeof msg, 1, &d, &dl), BUNDLE_OK);
		T_EQ_INT(bundle_cose_verify(d, dl, pub, msg, sizeof msg), BUNDLE_OK);
		T_EQ_INT(bundle_cose_verify(d, dl, pub, msg, sizeof msg - 1), BUNDLE_ERR_SIGNATURE);
		T_EQ_INT(bundle_cose_verify(d, dl, pub, NULL, 0), BUNDLE_ERR_INVAL);
		/* a key for another alg */
		{
			struct bundle_key *wrong = NULL;
			bundle_key_generate(algs[(i + 1) % 3], &wrong);
			T_EQ_INT(bundle_cose_verify(d, dl, wrong, msg, sizeof msg), BUNDLE_ERR_KEY);
			bundle_key_free(wrong);
		}
		free(c);
		free(d);
		bundle_key_free(k);
		bundle_key_free(other);
		bundle_key_free(pub);
	}
}

static void test_cose_crit(void)
{
	/* 18([<<{1:-7, 2:[99], 99:1}>>, {}, h'', h'']) : unknown crit label */
	static const uint8_t unk[] = {0xd2, 0x84, 0x4a, 0xa3, 0x01, 0x26, 0x02, 0x81, 0x18, 0x63, 0x18, 0x63,
				      0x01, 0xa0, 0x40, 0x40};
	/* crit lists 4 (kid) but there is none */
	static const uint8_t absent[] = {0xd2, 0x84, 0x46, 0xa2, 0x01, 0x26, 0x02, 0x81, 0x04, 0xa0, 0x40, 0x40};
	struct bundle_cose c;
	struct bundle_key *k = NULL;
	bundle_key_generate(BUNDLE_ALG_ES256, &k);
	T_EQ_INT(bundle_cose_parse(unk, sizeof unk, &c), BUNDLE_OK);
	T_CHECK(c.crit_unknown);
	T_EQ_INT(bundle_cose_verify(unk, sizeof unk, k, NULL, 0), BUNDLE_ERR_UNSUPPORTED);
	T_EQ_INT(bundle_cose_parse(absent, sizeof absent, &c), BUNDLE_ERR_FORMAT);
	bundle_key_free(k);
}

static void test_cose_digest_signer(void)
{
	struct digest_signer ds = {0};
	struct bundle_signer s = {.alg = BUNDLE_ALG_ES256, .kid = {(const uint8_t *)"tpm-key", 7}, .sign = digest_sign_cb, .ud = &ds};
	struct bundle_key *pub = NULL;
	uint8_t *c = NULL, *pem = NULL;
	size_t cl = 0, pl = 0;
	BIO *b;

	ds.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, ds.pkey);
	pl = (size_t)BIO_get_mem_data(b, (char **)&pem);
	T_EQ_INT(bundle_key_load(pem, pl, &pub), BUNDLE_OK);
	BIO_free(b);
	T_EQ_INT(bundle_statement_sign(&s, "https://host", "rootfs:h1", NULL, (const uint8_t *)"ev", 2, &c, &cl), BUNDLE_OK);
	T_EQ_INT(ds.calls, 1);
	T_EQ_INT(bundle_cose_verify(c, cl, pub, NULL, 0), BUNDLE_OK);
	free(c);
	c = NULL;
	ds.fail = 1;
	T_EQ_INT(bundle_statement_sign(&s, "https://host", "rootfs:h1", NULL, (const uint8_t *)"ev", 2, &c, &cl),
		 BUNDLE_ERR_SIGNER);
	ds.fail = 0;
	ds.short_by = 1;
	T_EQ_INT(bundle_statement_sign(&s, "https://host", "rootfs:h1", NULL, (const uint8_t *)"ev", 2, &c, &cl),
		 BUNDLE_ERR_SIGNER);
	T_CHECK(c == NULL);
	EVP_PKEY_free(ds.pkey);
	bundle_key_free(pub);
}

/* ---------------------------------------------------------------------------------------- */

static void test_statement(void)
{
	struct bundle_key *k = NULL;
	struct bundle_signer s;
	uint8_t *st = NULL, *rec = NULL;
	size_t sl = 0, rl = 0;
	struct bundle_cose c;
	static const uint8_t ev[] = {0xa1, 0x01, 0x02};
	uint8_t leaf[32], want[32];

	bundle_key_generate(BUNDLE_ALG_ES256, &k);
	bundle_signer_from_key(k, &s);
	T_EQ_INT(bundle_statement_sign(&s, "https://agent.example", "rootfs:m1", NULL, ev, sizeof ev, &st, &sl), BUNDLE_OK);
	T_CHECK(det(st, sl));
	T_EQ_INT(bundle_statement_check(st, sl, &c), BUNDLE_OK);
	T_EQ_INT(c.payload_hash_alg, -16);
	T_CHECK(c.preimage_content_type.len == strlen(BUNDLE_MT_EVIDENCE));
	T_CHECK(!c.content_type.ptr);
	T_CHECK(c.kid.len == 32);
	/* protected header is exactly {1,4,15,258,259} */
	T_CHECK(c.protected_bstr.ptr[0] == 0xa5);
	T_EQ_INT(bundle_statement_check_preimage(st, sl, ev, sizeof ev), BUNDLE_OK);
	T_EQ_INT(bundle_statement_check_preimage(st, sl, ev, sizeof ev - 1), BUNDLE_ERR_MISMATCH);
	/* unprotected {} already: the record is the statement */
	T_EQ_INT(bundle_statement_record(st, sl, &rec, &rl), BUNDLE_OK);
	T_CHECK(rl == sl && memcmp(rec, st, sl) == 0);
	T_EQ_INT(bundle_statement_leaf_hash(st, sl, leaf), BUNDLE_OK);
	merkle_leaf_hash(st, sl, want);
	T_CHECK(memcmp(leaf, want, 32) == 0);
	/* untagged input is not a SCITT statement */
	T_EQ_INT(bundle_statement_check(st + 1, sl - 1, NULL), BUNDLE_ERR_FORMAT);
	free(st);
	free(rec);
	bundle_key_free(k);
}

/* A TS: N statements, one head signature, N receipts, each verifies, forgeries fail. */
static void test_receipts_issue_verify(void)
{
	enum { N = 13 };
	struct bundle_key *ik = NULL, *tk = NULL, *other = NULL;
	struct bundle_signer is, ts;
	uint8_t *st[N] = {0};
	size_t sl[N];
	struct merkle_tree *t = NULL;
	uint8_t root[32];
	struct bundle_receipt_head *h = NULL;
	struct bundle_receipt_hdr rh = {.iss = "https://ts.example", .sub = "sluice", .iat = 1700000001};
	struct bundle_keyset *ks = NULL;

	bundle_key_generate(BUNDLE_ALG_ES256, &ik);
	bundle_key_generate(BUNDLE_ALG_ES384, &tk);
	bundle_key_generate(BUNDLE_ALG_ES384, &other);
	bundle_signer_from_key(ik, &is);
	bundle_signer_from_key(tk, &ts);
	T_EQ_INT(merkle_tree_new(&t), MERKLE_OK);
	for (int i = 0; i < N; i++) {
		char sub[32];
		uint8_t leaf[32];
		snprintf(sub, sizeof sub, "rootfs:%d", i);
		T_EQ_INT(bundle_statement_sign(&is, "https://agent", sub, NULL, (const uint8_t *)sub, strlen(sub), &st[i], &sl[i]),
			 BUNDLE_OK);
		bundle_statement_leaf_hash(st[i], sl[i], leaf);
		merkle_tree_append(t, leaf);
	}
	merkle_tree_root(t, N, root);
	T_EQ_INT(bundle_receipt_sign_head(&ts, &rh, N, root, &h), BUNDLE_OK);
	bundle_keyset_new(&ks);
	{
		struct bundle_key *pub = NULL;
		bundle_key_public(tk, &pub);
		bundle_keyset_add(ks, pub);
	}
	for (int i = 0; i < N; i++) {
		uint8_t path[MERKLE_MAX_PROOF][32];
		size_t pl = 0, rl = 0, tl = 0;
		uint8_t *r = NULL, *tr = NULL;
		struct bundle_receipt_info info;
		struct bundle_bytes rb;
		merkle_tree_inclusion(t, (uint64_t)i, N, path, &pl);
		T_EQ_INT(bundle_receipt_issue(h, (uint64_t)i, (const uint8_t (*)[32])path, pl, &r, &rl), BUNDLE_OK);
		T_CHECK(det(r, rl));
		T_EQ_INT(bundle_receipt_verify(r, rl, st[i], sl[i], NULL, ks, &info), BUNDLE_OK);
		T_EQ_INT(info.tree_size, N);
		T_EQ_INT(info.leaf_index, i);
		T_EQ_INT(info.iat, 1700000001);
		T_CHECK(memcmp(info.root, root, 32) == 0);
		/* the receipt of another statement, another key */
		T_EQ_INT(bundle_receipt_verify(r, rl, st[(i + 1) % N], sl[(i + 1) % N], NULL, ks, NULL), BUNDLE_ERR_SIGNATURE);
		T_EQ_INT(bundle_receipt_verify(r, rl, st[i], sl[i], other, NULL, NULL), BUNDLE_ERR_SIGNATURE);
		/* transparent statement verifies too, and carries the receipt */
		rb.ptr = r;
		rb.len = rl;
		T_EQ_INT(bundle_transparent_make(st[i], sl[i], &rb, 1, &tr, &tl), BUNDLE_OK);
		T_CHECK(det(tr, tl));
		T_EQ_INT(bundle_receipt_verify(r, rl, tr, tl, NULL, ks, NULL), BUNDLE_OK);
		free(r);
		free(tr);
	}
	/* a leaf index outside the tree cannot be issued */
	{
		uint8_t *r = NULL;
		size_t rl = 0;
		T_EQ_INT(bundle_receipt_issue(h, N, NULL, 0, &r, &rl), BUNDLE_ERR_INVAL);
	}
	bundle_receipt_head_free(h);
	merkle_tree_free(t);
	for (int i = 0; i < N; i++)
		free(st[i]);
	bundle_keyset_free(ks);
	bundle_key_free(ik);
	bundle_key_free(tk);
	bundle_key_free(other);
}

/* ---------------------------------------------------------------------------------------- */

static void fill_ear(struct bundle_ear *e)
{
	static const char *tools[] = {"stock.price", "weather"};
	static const struct bundle_ear_reason reasons[] = {{"pcr.mismatch", "pcr 4 event 12"}, {"rootfs.digest.unknown", "sha256:ab"}};
	memset(e, 0, sizeof *e);
	e->iat = 1700000000;
	e->exp = 1700000600;
	e->nonce.ptr = (const uint8_t *)"0123456789abcdef";
	e->nonce.len = 16;
	e->verifier_developer = "sluice";
	e->verifier_build = "0.1.0";
	e->status = BUNDLE_EAR_AFFIRMING;
	for (int i = 0; i < BUNDLE_TV_COUNT; i++)
		e->tv[i] = BUNDLE_TV_ABSENT;
	e->tv[BUNDLE_TV_FILE_SYSTEM] = 2;
	e->tv[BUNDLE_TV_HARDWARE] = 2;
	e->policy_id = "policy:default";
	e->host_id = "host-1";
	e->has_statement_hash = 1;
	memset(e->statement_hash, 0xab, 32);
	e->tools = tools;
	e->n_tools = 2;
	e->credential.ptr = (const uint8_t *)"\x01\x02\x03";
	e->credential.len = 3;
	e->reasons = reasons;
	e->n_reasons = 2;
}

static void test_ear(void)
{
	struct bundle_ear in, *out = NULL, *v = NULL;
	uint8_t *c1 = NULL, *c2 = NULL, *sig = NULL;
	size_t l1 = 0, l2 = 0, sl = 0;
	struct bundle_key *k = NULL, *other = NULL;
	struct bundle_signer s;
	uint8_t h[32];

	fill_ear(&in);
	T_EQ_INT(bundle_ear_encode(&in, &c1, &l1), BUNDLE_OK);
	T_CHECK(det(c1, l1));
	T_EQ_INT(bundle_ear_decode(c1, l1, &out), BUNDLE_OK);
	if (!out)
		return;
	T_EQ_STR(out->profile, BUNDLE_EAR_PROFILE);
	T_EQ_INT(out->status, BUNDLE_EAR_AFFIRMING);
	T_EQ_INT(out->tv[BUNDLE_TV_FILE_SYSTEM], 2);
	T_EQ_INT(out->tv[BUNDLE_TV_EXECUTABLES], BUNDLE_TV_ABSENT);
	T_EQ_INT(out->n_tools, 2);
	T_EQ_STR(out->tools[1], "weather");
	T_EQ_INT(out->n_reasons, 2);
	T_EQ_STR(out->reasons[0].type, "pcr.mismatch");
	T_EQ_STR(out->reasons[1].detail, "sha256:ab");
	T_EQ_STR(out->host_id, "host-1");
	T_EQ_STR(out->verifier_build, "0.1.0");
	T_CHECK(out->credential.len == 3 && out->has_statement_hash);
	T_EQ_INT(bundle_ear_encode(out, &c2, &l2), BUNDLE_OK);
	T_CHECK(l1 == l2 && memcmp(c1, c2, l1) == 0);
	/* validation */
	memset(h, 0xab, 32);
	T_EQ_INT(bundle_ear_validate(out, 1700000100, 30, (const uint8_t *)"0123456789abcdef", 16, h), BUNDLE_OK);
	T_EQ_INT(bundle_ear_validate(out, 1700000600, 30, NULL, 0, NULL), BUNDLE_ERR_EXPIRED);
	T_EQ_INT(bundle_ear_validate(out, 1699999000, 30, NULL, 0, NULL), BUNDLE_ERR_EXPIRED);
	T_EQ_INT(bundle_ear_validate(out, 1700000100, 30, (const uint8_t *)"0123456789abcdeX", 16, NULL), BUNDLE_ERR_MISMATCH);
	h[0] ^= 1;
	T_EQ_INT(bundle_ear_validate(out, 1700000100, 30, NULL, 0, h), BUNDLE_ERR_MISMATCH);
	/* signed verdict */
	bundle_key_generate(BUNDLE_ALG_ES256, &k);
	bundle_key_generate(BUNDLE_ALG_ES256, &other);
	bundle_signer_from_key(k, &s);
	T_EQ_INT(bundle_ear_sign(&s, &in, &sig, &sl), BUNDLE_OK);
	T_EQ_INT(bundle_ear_verify(sig, sl, k, NULL, &v), BUNDLE_OK);
	T_CHECK(v && v->status == BUNDLE_EAR_AFFIRMING);
	bundle_ear_free(v);
	v = NULL;
	T_EQ_INT(bundle_ear_verify(sig, sl, other, NULL, &v), BUNDLE_ERR_SIGNATURE);
	sig[sl / 2] ^= 0x10;
	T_CHECK(bundle_ear_verify(sig, sl, k, NULL, &v) != BUNDLE_OK);
	T_CHECK(v == NULL);
	/* missing status */
	{
		static const uint8_t bad[] = {0xa1, 0x19, 0x01, 0x09, 0x61, 'x'}; /* {265: "x"} */
		struct bundle_ear *b = NULL;
		T_EQ_INT(bundle_ear_decode(bad, sizeof bad, &b), BUNDLE_ERR_FORMAT);
	}
	free(c1);
	free(c2);
	free(sig);
	bundle_ear_free(out);
	bundle_key_free(k);
	bundle_key_free(other);
}

static void fill_evidence(struct bundle_evidence *ev, struct bundle_pcr *pcrs, const char **ex)
{
	memset(ev, 0, sizeof *ev);
	ev->host_id = "host-1";
	ev->nonce = (struct bundle_bytes){(const uint8_t *)"nonce-nonce-nonce", 17};
	ev->ak_public = (struct bundle_bytes){(const uint8_t *)"\x00\x01\x02", 3};
	ev->quote = (struct bundle_bytes){(const uint8_t *)"\xff\x54\x43\x47", 4};
	ev->quote_sig = (struct bundle_bytes){(const uint8_t *)"sig", 3};
	pcrs[0] = (struct bundle_pcr){0x000b, 0, {(const uint8_t *)"0123456789abcdef0123456789abcdef", 32}};
	pcrs[1] = (struct bundle_pcr){0x000b, 15, {(const uint8_t *)"fedcba9876543210fedcba9876543210", 32}};
	ev->pcrs = pcrs;
	ev->n_pcrs = 2;
	ev->fw_eventlog = (struct bundle_bytes){(const uint8_t *)"", 0};
	ev->sluice_eventlog = (struct bundle_bytes){(const uint8_t *)"\x80", 1};
	ev->rootfs_digest = (struct bundle_bytes){(const uint8_t *)"0123456789abcdef0123456789abcdef", 32};
	ev->rootfs_alg = "sha256";
	ev->rootfs_entries = 1234;
	ev->rootfs_bytes = 99999999;
	ex[0] = "/proc";
	ex[1] = "/sys";
	ev->rootfs_excludes = ex;
	ev->n_rootfs_excludes = 2;
	ev->stmt_key_public = (struct bundle_bytes){(const uint8_t *)"pub", 3};
	ev->stmt_key_certify = (struct bundle_bytes){(const uint8_t *)"cert", 4};
	ev->stmt_key_certify_sig = (struct bundle_bytes){(const uint8_t *)"csig", 4};
	ev->time = 1700000000;
}

static void test_evidence(void)
{
	struct bundle_evidence in, *out = NULL;
	struct bundle_pcr pcrs[2];
	const char *ex[2];
	uint8_t *c1 = NULL, *c2 = NULL;
	size_t l1 = 0, l2 = 0;

	fill_evidence(&in, pcrs, ex);
	T_EQ_INT(bundle_evidence_encode(&in, &c1, &l1), BUNDLE_OK);
	T_CHECK(det(c1, l1));
	T_EQ_INT(bundle_evidence_decode(c1, l1, &out), BUNDLE_OK);
	if (!out)
		return;
	T_EQ_STR(out->host_id, "host-1");
	T_EQ_INT(out->n_pcrs, 2);
	T_EQ_INT(out->pcrs[1].index, 15);
	T_EQ_INT(out->rootfs_entries, 1234);
	T_EQ_STR(out->rootfs_excludes[1], "/sys");
	T_CHECK(out->fw_eventlog.ptr && out->fw_eventlog.len == 0);
	T_CHECK(!out->ek_cert.ptr);
	T_EQ_INT(bundle_evidence_encode(out, &c2, &l2), BUNDLE_OK);
	T_CHECK(l1 == l2 && memcmp(c1, c2, l1) == 0);
	bundle_evidence_free(out);
	out = NULL;
	/* drop the quote (required) */
	in.quote.ptr = NULL;
	T_EQ_INT(bundle_evidence_encode(&in, &c2, &l2), BUNDLE_ERR_INVAL);
	{
		static const uint8_t bad[] = {0xa1, 0x01, 0x61, 'h'};
		T_EQ_INT(bundle_evidence_decode(bad, sizeof bad, &out), BUNDLE_ERR_FORMAT);
	}
	free(c1);
	free(c2);
}

/* ---------------------------------------------------------------------------------------- */

static uint8_t *raw_tar(const char *name, int type, const char *data, size_t *len)
{
	static uint8_t buf[65536];
	size_t used = 0;
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_open_memory(a, buf, sizeof buf, &used);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, (unsigned)type);
	archive_entry_set_perm(e, 0644);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, "/etc/passwd");
	archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)strlen(data) : 0);
	archive_write_header(a, e);
	if (type == AE_IFREG)
		archive_write_data(a, data, strlen(data));
	archive_write_close(a);
	archive_write_free(a);
	archive_entry_free(e);
	*len = used;
	return buf;
}

static void test_archive(void)
{
	struct bundle_entry ents[] = {
		{BUNDLE_F_EVIDENCE, {(const uint8_t *)"\xa0", 1}},
		{BUNDLE_F_STATEMENT, {(const uint8_t *)"statement", 9}},
		{BUNDLE_F_RECEIPT, {(const uint8_t *)"receipt", 7}},
		{BUNDLE_F_VERDICT, {(const uint8_t *)"", 0}},
	};
	uint8_t *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0, rl;
	struct bundle_archive *a = NULL;
	struct bundle_bytes b;
	uint8_t *raw;

	T_EQ_INT(bundle_archive_write(ents, 4, &t1, &l1), BUNDLE_OK);
	T_EQ_INT(bundle_archive_write(ents, 4, &t2, &l2), BUNDLE_OK);
	T_CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0); /* deterministic */
	T_EQ_INT(bundle_archive_read(t1, l1, &a), BUNDLE_OK);
	T_EQ_INT(bundle_archive_count(a), 5);
	T_EQ_INT(bundle_archive_get(a, BUNDLE_F_STATEMENT, &b), BUNDLE_OK);
	T_CHECK(b.len == 9 && memcmp(b.ptr, "statement", 9) == 0);
	T_EQ_INT(bundle_archive_get(a, BUNDLE_F_MANIFEST, &b), BUNDLE_ERR_NOTFOUND);
	bundle_archive_free(a);
	a = NULL;
	/* change one content byte: the index no longer matches */
	for (size_t i = 0; i + 9 <= l1; i++)
		if (memcmp(t1 + i, "statement", 9) == 0) {
			t1[i] = 'S';
			break;
		}
	T_EQ_INT(bundle_archive_read(t1, l1, &a), BUNDLE_ERR_ARCHIVE);
	/* unsafe names and types */
	raw = raw_tar("../evil", AE_IFREG, "x", &rl);
	T_EQ_INT(bundle_archive_read(raw, rl, &a), BUNDLE_ERR_ARCHIVE);
	raw = raw_tar("/etc/x", AE_IFREG, "x", &rl);
	T_EQ_INT(bundle_archive_read(raw, rl, &a), BUNDLE_ERR_ARCHIVE);
	raw = raw_tar("link", AE_IFLNK, "", &rl);
	T_EQ_INT(bundle_archive_read(raw, rl, &a), BUNDLE_ERR_ARCHIVE);
	raw = raw_tar("plain", AE_IFREG, "x", &rl); /* no index */
	T_EQ_INT(bundle_archive_read(raw, rl, &a), BUNDLE_ERR_ARCHIVE);
	T_EQ_INT(bundle_archive_read((const uint8_t *)"not a tar", 9, &a), BUNDLE_ERR_ARCHIVE);
	T_CHECK(a == NULL);
	/* writer refuses bad names */
	{
		struct bundle_entry bad = {"a/b", {(const uint8_t *)"", 0}};
		uint8_t *t = NULL;
		size_t l = 0;
		T_EQ_INT(bundle_archive_write(&bad, 1, &t, &l), BUNDLE_ERR_INVAL);
	}
	free(t1);
	free(t2);
}

static void test_problem(void)
{
	uint8_t *p = NULL;
	size_t pl = 0;
	char t[16], d[64];
	T_EQ_INT(bundle_problem_encode("Rejected", "registration policy: \x01 no", 400, &p, &pl), BUNDLE_OK);
	T_CHECK(det(p, pl));
	T_EQ_INT(bundle_problem_decode(p, pl, t, sizeof t, d, sizeof d), BUNDLE_OK);
	T_EQ_STR(t, "Rejected");
	T_EQ_STR(d, "registration policy: ? no");
	T_EQ_INT(bundle_problem_decode(p, pl, t, 4, NULL, 0), BUNDLE_OK);
	T_EQ_STR(t, "Rej");
	T_EQ_INT(bundle_problem_decode((const uint8_t *)"\x01", 1, t, sizeof t, d, sizeof d), BUNDLE_ERR_FORMAT);
	free(p);
}

static void test_strerror_total(void)
{
	for (int i = 0; i <= BUNDLE_ERR_NOTFOUND; i++)
		T_CHECK(strcmp(bundle_strerror((enum bundle_err)i), "unknown error") != 0);
}

int main(void)
{
	T_RUN(test_cbor_check);
	T_RUN(test_cbor_json);
	T_RUN(test_key_rfc9679_thumbprint);
	T_RUN(test_key_roundtrips);
	T_RUN(test_key_rejects);
	T_RUN(test_keyset_roundtrip);
	T_RUN(test_cose_sign_verify);
	T_RUN(test_cose_crit);
	T_RUN(test_cose_digest_signer);
	T_RUN(test_statement);
	T_RUN(test_receipts_issue_verify);
	T_RUN(test_ear);
	T_RUN(test_evidence);
	T_RUN(test_archive);
	T_RUN(test_problem);
	T_RUN(test_strerror_total);
	return t_done();
}
