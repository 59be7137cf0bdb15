/* libbundle against third-party vectors: the @transmute/cose vds=1 receipt, the real production
 * CCF (vds=2) receipt, and every real-world statement in ../shared/vectors/scitt. Every single-byte
 * change of the vds1 statement and receipt must make verification fail. */
#include "bundle/bundle.h"
#include "tests/unit/t.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char vdir[1024];

static uint8_t *slurp(const char *name, size_t *len)
{
	char p[2048];
	FILE *f;
	uint8_t *b;
	long n;
	snprintf(p, sizeof p, "%s/%s", vdir, name);
	if (!(f = fopen(p, "rb")))
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	if (fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static struct bundle_keyset *keyset(const char *name)
{
	size_t l = 0;
	uint8_t *b = slurp(name, &l);
	struct bundle_keyset *ks = NULL;
	if (b && bundle_keyset_load(b, l, &ks) != BUNDLE_OK)
		printf("# keyset %s: %s\n", name, bundle_last_cause());
	free(b);
	return ks;
}

static void test_vds1_receipt_verifies(void)
{
	size_t sl, rl;
	uint8_t *s = slurp("vds1/signed_statement.cose", &sl), *r = slurp("vds1/receipt.cose", &rl);
	struct bundle_keyset *ts = keyset("vds1/ts_public.jwk.json");
	struct bundle_receipt_info info;
	char hx[65];
	enum bundle_err e;

	T_CHECK(s && r && ts);
	if (!s || !r || !ts)
		goto out;
	e = bundle_receipt_verify(r, rl, s, sl, NULL, ts, &info);
	if (e)
		printf("# %s: %s\n", bundle_strerror(e), bundle_last_cause());
	T_EQ_INT(e, BUNDLE_OK);
	T_EQ_INT(info.vds, 1);
	T_EQ_INT(info.tree_size, 7);
	T_EQ_INT(info.leaf_index, 6);
	T_EQ_INT(info.path_len, 2);
	hex(info.leaf, 32, hx);
	T_EQ_STR(hx, "e2a490f119e66ae1e5a9940ea9b5ec2ae3e2dcd7d50327cb2465c3c90a191f81");
	hex(info.root, 32, hx);
	T_EQ_STR(hx, "4d43051f622a0aabb3adcc91fa99c0106a222835015cfe252b28fec6c823bb7b");
	{
		struct bundle_receipt_info pi;
		T_EQ_INT(bundle_receipt_parse(r, rl, &pi), BUNDLE_OK);
		T_EQ_INT(pi.tree_size, 7);
		T_EQ_INT(pi.leaf_index, 6);
		T_EQ_INT(pi.path_len, 2);
		T_CHECK(pi.iss.len == 18 && memcmp(pi.iss.ptr, "https://ts.example", 18) == 0);
	}
	/* the single key, without the key set */
	T_EQ_INT(bundle_receipt_verify(r, rl, s, sl, bundle_keyset_get(ts, 0), NULL, NULL), BUNDLE_OK);
out:
	free(s);
	free(r);
	bundle_keyset_free(ts);
}

static void test_vds1_statement_signature(void)
{
	size_t sl;
	uint8_t *s = slurp("vds1/signed_statement.cose", &sl);
	struct bundle_keyset *iss = keyset("vds1/issuer_public.jwk.json"), *ts = keyset("vds1/ts_public.jwk.json");
	struct bundle_cose c;
	T_CHECK(s && iss && ts);
	if (!s || !iss || !ts)
		goto out;
	T_EQ_INT(bundle_statement_check(s, sl, &c), BUNDLE_OK);
	T_EQ_INT(c.alg, BUNDLE_ALG_ES256);
	T_CHECK(c.cwt_iss.len == 22 && memcmp(c.cwt_iss.ptr, "https://issuer.example", 22) == 0);
	T_EQ_INT(bundle_cose_verify_keyset(s, sl, iss, NULL, 0), BUNDLE_OK);
	/* the TS key is not the issuer's */
	T_EQ_INT(bundle_cose_verify_keyset(s, sl, ts, NULL, 0), BUNDLE_ERR_KID);
	T_EQ_INT(bundle_cose_verify(s, sl, bundle_keyset_get(ts, 0), NULL, 0), BUNDLE_ERR_SIGNATURE);
out:
	free(s);
	bundle_keyset_free(iss);
	bundle_keyset_free(ts);
}

static void test_vds1_transparent(void)
{
	size_t tl, rl, sl, n = 0, ml = 0;
	uint8_t *t = slurp("vds1/transparent_statement.cose", &tl), *r = slurp("vds1/receipt.cose", &rl);
	uint8_t *s = slurp("vds1/signed_statement.cose", &sl), *m = NULL;
	struct bundle_keyset *ts = keyset("vds1/ts_public.jwk.json");
	struct bundle_bytes rs[4];
	uint8_t l1[32], l2[32];

	T_CHECK(t && r && s && ts);
	if (!t || !r || !s || !ts)
		goto out;
	T_EQ_INT(bundle_transparent_receipts(t, tl, rs, 4, &n), BUNDLE_OK);
	T_EQ_INT(n, 1);
	T_CHECK(n == 1 && rs[0].len == rl && memcmp(rs[0].ptr, r, rl) == 0);
	/* the receipt verifies for the transparent statement itself (394 stripped by the record rule) */
	T_EQ_INT(bundle_receipt_verify(rs[0].ptr, rs[0].len, t, tl, NULL, ts, NULL), BUNDLE_OK);
	T_EQ_INT(bundle_statement_leaf_hash(t, tl, l1), BUNDLE_OK);
	T_EQ_INT(bundle_statement_leaf_hash(s, sl, l2), BUNDLE_OK);
	T_CHECK(memcmp(l1, l2, 32) == 0);
	/* our transparent statement is byte-identical to transmute's */
	T_EQ_INT(bundle_transparent_make(s, sl, rs, 1, &m, &ml), BUNDLE_OK);
	T_CHECK(m && ml == tl && memcmp(m, t, tl) == 0);
out:
	free(t);
	free(r);
	free(s);
	free(m);
	bundle_keyset_free(ts);
}

/* Every byte of statement and receipt, changed two ways, must fail. */
static void test_vds1_every_byte_flip_fails(void)
{
	size_t sl, rl, bad = 0, total = 0;
	uint8_t *s = slurp("vds1/signed_statement.cose", &sl), *r = slurp("vds1/receipt.cose", &rl);
	struct bundle_keyset *ts = keyset("vds1/ts_public.jwk.json");
	static const uint8_t masks[] = {0x01, 0x80, 0xff};

	T_CHECK(s && r && ts);
	if (!s || !r || !ts)
		goto out;
	for (size_t m = 0; m < sizeof masks; m++) {
		for (size_t i = 0; i < sl; i++) {
			s[i] ^= masks[m];
			if (bundle_receipt_verify(r, rl, s, sl, NULL, ts, NULL) == BUNDLE_OK) {
				printf("# statement byte %zu ^ 0x%02x still verifies\n", i, masks[m]);
				bad++;
			}
			s[i] ^= masks[m];
			total++;
		}
		for (size_t i = 0; i < rl; i++) {
			r[i] ^= masks[m];
			if (bundle_receipt_verify(r, rl, s, sl, NULL, ts, NULL) == BUNDLE_OK) {
				printf("# receipt byte %zu ^ 0x%02x still verifies\n", i, masks[m]);
				bad++;
			}
			r[i] ^= masks[m];
			total++;
		}
	}
	T_EQ_INT(bad, 0);
	T_CHECK(total == 3 * (sl + rl));
	/* and the untouched pair still verifies (the loop restored every byte) */
	T_EQ_INT(bundle_receipt_verify(r, rl, s, sl, NULL, ts, NULL), BUNDLE_OK);
	/* truncations fail too */
	for (size_t i = 0; i < rl; i++)
		if (bundle_receipt_verify(r, i, s, sl, NULL, ts, NULL) == BUNDLE_OK)
			bad++;
	for (size_t i = 0; i < sl; i++)
		if (bundle_receipt_verify(r, rl, s, i, NULL, ts, NULL) == BUNDLE_OK)
			bad++;
	T_EQ_INT(bad, 0);
out:
	free(s);
	free(r);
	bundle_keyset_free(ts);
}

static void test_ccf_receipt_verifies(void)
{
	size_t tl, hl, n = 0;
	uint8_t *t = slurp("uvm_0.2.10.cose", &tl), *h = slurp("uvm_root.hex", &hl);
	struct bundle_keyset *ks = keyset("esrp-cts-db.json");
	struct bundle_bytes rs[4];
	struct bundle_receipt_info info;
	char hx[65];
	enum bundle_err e;

	T_CHECK(t && h && ks);
	if (!t || !h || !ks)
		goto out;
	T_EQ_INT(bundle_transparent_receipts(t, tl, rs, 4, &n), BUNDLE_OK);
	T_EQ_INT(n, 1);
	if (n != 1)
		goto out;
	e = bundle_receipt_verify(rs[0].ptr, rs[0].len, t, tl, NULL, ks, &info);
	if (e)
		printf("# %s: %s\n", bundle_strerror(e), bundle_last_cause());
	T_EQ_INT(e, BUNDLE_OK);
	T_EQ_INT(info.vds, 2);
	T_EQ_INT(info.alg, BUNDLE_ALG_ES384);
	T_EQ_INT(info.path_len, 5);
	hex(info.root, 32, hx);
	T_CHECK(hl >= 64 && memcmp(hx, h, 64) == 0);
	/* a byte of the statement payload changed: the data hash no longer matches */
	{
		struct bundle_cose c;
		uint8_t *t2 = malloc(tl);
		memcpy(t2, t, tl);
		T_EQ_INT(bundle_cose_parse(t2, tl, &c), BUNDLE_OK);
		((uint8_t *)c.payload.ptr)[0] ^= 1;
		T_EQ_INT(bundle_receipt_verify(rs[0].ptr, rs[0].len, t2, tl, NULL, ks, NULL), BUNDLE_ERR_PROOF);
		free(t2);
	}
	/* every byte of the CCF receipt, flipped, fails */
	{
		uint8_t *r2 = malloc(rs[0].len);
		size_t bad = 0;
		memcpy(r2, rs[0].ptr, rs[0].len);
		for (size_t i = 0; i < rs[0].len; i++) {
			r2[i] ^= 0x01;
			if (bundle_receipt_verify(r2, rs[0].len, t, tl, NULL, ks, NULL) == BUNDLE_OK) {
				printf("# CCF receipt byte %zu ^ 0x01 still verifies\n", i);
				bad++;
			}
			r2[i] ^= 0x01;
		}
		T_EQ_INT(bad, 0);
		free(r2);
	}
	/* the vds1 TS key is not trusted for it */
	{
		struct bundle_keyset *other = keyset("vds1/ts_public.jwk.json");
		T_EQ_INT(bundle_receipt_verify(rs[0].ptr, rs[0].len, t, tl, NULL, other, NULL), BUNDLE_ERR_KID);
		T_EQ_INT(bundle_receipt_verify(rs[0].ptr, rs[0].len, t, tl, bundle_keyset_get(other, 0), NULL, NULL),
			 BUNDLE_ERR_KEY);
		bundle_keyset_free(other);
	}
out:
	free(t);
	free(h);
	bundle_keyset_free(ks);
}

/* transmute's CCF and MMR receipts: the CCF proofs compute (no keys offline), vds 3 is refused. */
static void test_transmute_statements(void)
{
	const char *names[] = {"1ts-statement.scitt", "2ts-statement.scitt"};
	for (size_t f = 0; f < 2; f++) {
		size_t tl, n = 0;
		uint8_t *t = slurp(names[f], &tl);
		struct bundle_bytes rs[4];
		struct bundle_keyset *ks = keyset("esrp-cts-db.json");
		T_CHECK(t != NULL);
		if (!t)
			continue;
		T_EQ_INT(bundle_transparent_receipts(t, tl, rs, 4, &n), BUNDLE_OK);
		T_EQ_INT(n, f + 1);
		for (size_t i = 0; i < n; i++) {
			struct bundle_receipt_info info;
			enum bundle_err e = bundle_receipt_verify(rs[i].ptr, rs[i].len, t, tl, NULL, ks, &info);
			struct bundle_cose c;
			T_EQ_INT(bundle_cose_parse(rs[i].ptr, rs[i].len, &c), BUNDLE_OK);
			if (c.vds == 2) /* proof holds; the key is not in our trust store */
				T_CHECK(e == BUNDLE_ERR_KID || e == BUNDLE_ERR_SIGNATURE);
			else
				T_EQ_INT(e, BUNDLE_ERR_UNSUPPORTED);
		}
		free(t);
		bundle_keyset_free(ks);
	}
}

static void test_real_world_statements_parse(void)
{
	DIR *d = opendir(vdir);
	struct dirent *de;
	int count = 0;
	T_CHECK(d != NULL);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), bl;
		uint8_t *b;
		struct bundle_cose c;
		char *json = NULL;
		if (l < 6 || (strcmp(de->d_name + l - 5, ".cose") && strcmp(de->d_name + l - 6, ".scitt")))
			continue;
		b = slurp(de->d_name, &bl);
		enum bundle_err e = bundle_cose_parse(b, bl, &c);
		if (e)
			printf("# %s: %s: %s\n", de->d_name, bundle_strerror(e), bundle_last_cause());
		T_EQ_INT(e, BUNDLE_OK);
		T_CHECK(c.alg != 0);
		T_EQ_INT(bundle_cbor_to_json(b, bl, &json), BUNDLE_OK);
		free(json);
		free(b);
		count++;
	}
	closedir(d);
	T_CHECK(count >= 10);
}

int main(void)
{
	const char *sh = getenv("SHARED");
	snprintf(vdir, sizeof vdir, "%s/vectors/scitt", sh ? sh : "../shared");
	T_RUN(test_vds1_receipt_verifies);
	T_RUN(test_vds1_statement_signature);
	T_RUN(test_vds1_transparent);
	T_RUN(test_vds1_every_byte_flip_fails);
	T_RUN(test_ccf_receipt_verifies);
	T_RUN(test_transmute_statements);
	T_RUN(test_real_world_statements_parse);
	return t_done();
}
