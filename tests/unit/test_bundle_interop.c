/* Interop with an implementation that is not ours: tests/interop/scitt_check.py (Python,
 * cbor2 + cryptography, written from the RFCs) verifies statements, receipts and transparent
 * statements that libbundle makes, and libbundle verifies the ones it makes. Each direction
 * also checks that a tampered object is rejected, so neither side is a yes-man.
 * Needs /usr/bin/python3 with python3-cbor2 and python3-cryptography (deps.txt); run from the
 * project root (tests/run.sh does). PYTHON overrides the interpreter. */
#include "bundle/bundle.h"
#include "merkle/merkle.h"
#include "tests/unit/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];
static char top[400];
static const char *py;

static void put(const char *name, const uint8_t *b, size_t n)
{
	char p[512];
	FILE *f;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	f = fopen(p, "wb");
	if (f) {
		fwrite(b, 1, n, f);
		fclose(f);
	}
}

static uint8_t *get(const char *name, size_t *n)
{
	char p[512];
	FILE *f;
	uint8_t *b = malloc(1 << 20);
	snprintf(p, sizeof p, "%s/%s", dir, name);
	if (!(f = fopen(p, "rb"))) {
		free(b);
		return NULL;
	}
	*n = fread(b, 1, 1 << 20, f);
	fclose(f);
	return b;
}

/* run @transmute/cose's verifier (only when TRANSMUTE_VERIFY names verify.mjs with its
 * node_modules installed: tests/integration/bundle_transmute.sh does that) */
static int transmute(const char *args)
{
	char cmd[8192];
	int rc;
	snprintf(cmd, sizeof cmd, "cd %s && node %s %s", dir, getenv("TRANSMUTE_VERIFY"), args);
	fflush(stdout);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 99;
}

/* run the checker; returns its exit status */
static int check(const char *args)
{
	char cmd[8192];
	int rc;
	snprintf(cmd, sizeof cmd, "cd %s && %s %s/tests/interop/scitt_check.py %s", dir, py, top, args);
	fflush(stdout);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 99;
}

static void ours_checked_by_python(int issuer_alg, int ts_alg)
{
	struct bundle_key *ik = NULL, *tk = NULL;
	struct bundle_signer is, ts;
	uint8_t *st = NULL, *ck = NULL, *tck = NULL, *r = NULL, *tr = NULL, *other[5] = {0};
	size_t sl = 0, ckl = 0, tckl = 0, rl = 0, trl = 0, ol[5];
	struct merkle_tree *t = NULL;
	uint8_t root[32], path[MERKLE_MAX_PROOF][32];
	size_t pl = 0;
	struct bundle_receipt_head *h = NULL;
	static const uint8_t ev[] = "evidence bytes from sluice";
	struct bundle_bytes rb;

	bundle_key_generate(issuer_alg, &ik);
	bundle_key_generate(ts_alg, &tk);
	bundle_signer_from_key(ik, &is);
	bundle_signer_from_key(tk, &ts);
	merkle_tree_new(&t);
	/* statement at index 3 of a 5-leaf tree */
	for (int i = 0; i < 5; i++) {
		uint8_t leaf[32];
		char sub[32];
		snprintf(sub, sizeof sub, "host:%d", i);
		T_EQ_INT(bundle_statement_sign(&is, "https://sluice.example", sub, NULL, i == 3 ? ev : (const uint8_t *)sub,
					       i == 3 ? sizeof ev : strlen(sub), &other[i], &ol[i]),
			 BUNDLE_OK);
		bundle_statement_leaf_hash(other[i], ol[i], leaf);
		merkle_tree_append(t, leaf);
	}
	st = other[3];
	sl = ol[3];
	merkle_tree_root(t, 5, root);
	merkle_tree_inclusion(t, 3, 5, path, &pl);
	T_EQ_INT(bundle_receipt_sign_head(&ts, &(struct bundle_receipt_hdr){.iss = "https://ts.sluice"}, 5, root, &h),
		 BUNDLE_OK);
	T_EQ_INT(bundle_receipt_issue(h, 3, (const uint8_t (*)[32])path, pl, &r, &rl), BUNDLE_OK);
	rb.ptr = r;
	rb.len = rl;
	T_EQ_INT(bundle_transparent_make(st, sl, &rb, 1, &tr, &trl), BUNDLE_OK);
	bundle_key_to_cose(ik, &ck, &ckl);
	bundle_key_to_cose(tk, &tck, &tckl);
	put("s.cose", st, sl);
	put("r.cose", r, rl);
	put("t.cose", tr, trl);
	put("ev.bin", ev, sizeof ev);
	put("issuer.cose_key", ck, ckl);
	put("ts.cose_key", tck, tckl);
	put("other.cose", other[2], ol[2]);
	T_EQ_INT(check("verify-statement s.cose issuer.cose_key ev.bin"), 0);
	T_EQ_INT(check("verify-receipt s.cose r.cose ts.cose_key"), 0);
	T_EQ_INT(check("verify-transparent t.cose ts.cose_key"), 0);
	if (getenv("TRANSMUTE_VERIFY")) {
		uint8_t *pem = NULL, *ipem = NULL;
		size_t pml = 0, ipl = 0;
		bundle_key_save_pem(tk, 0, &pem, &pml);
		bundle_key_save_pem(ik, 0, &ipem, &ipl);
		put("ts.pem", pem, pml);
		put("issuer.pem", ipem, ipl);
		T_EQ_INT(transmute("receipt s.cose r.cose ts.pem"), 0);
		T_EQ_INT(transmute("receipt t.cose r.cose ts.pem"), 0);
		T_EQ_INT(transmute("receipt other.cose r.cose ts.pem"), 1);
		T_EQ_INT(transmute("receipt s.cose r.cose issuer.pem"), 1);
		if (issuer_alg != BUNDLE_ALG_EDDSA) /* transmute 0.2.11 wants "fully specified" EdDSA keys */
			T_EQ_INT(transmute("statement s.cose issuer.pem"), 0);
		free(pem);
		free(ipem);
		printf("# checked by @transmute/cose too\n");
	}
	/* forgeries the checker must refuse */
	T_EQ_INT(check("verify-receipt s.cose r.cose issuer.cose_key"), 1);
	T_EQ_INT(check("verify-receipt other.cose r.cose ts.cose_key"), 1);
	r[rl - 1] ^= 1;
	put("r.cose", r, rl);
	T_EQ_INT(check("verify-receipt s.cose r.cose ts.cose_key"), 1);
	T_EQ_INT(check("verify-statement s.cose issuer.cose_key r.cose"), 1);

	for (int i = 0; i < 5; i++)
		free(other[i]);
	free(ck);
	free(tck);
	free(r);
	free(tr);
	bundle_receipt_head_free(h);
	merkle_tree_free(t);
	bundle_key_free(ik);
	bundle_key_free(tk);
}

static void test_ours_es256_es384_checked_by_python(void)
{
	ours_checked_by_python(BUNDLE_ALG_ES256, BUNDLE_ALG_ES384);
}

static void test_ours_eddsa_es256_checked_by_python(void)
{
	ours_checked_by_python(BUNDLE_ALG_EDDSA, BUNDLE_ALG_ES256);
}

static void test_python_checked_by_ours(void)
{
	size_t sl = 0, rl = 0, tl = 0, kl = 0, pl = 0, il = 0, pre_l = 0;
	uint8_t *s, *r, *t, *k, *pem, *ik, *pre;
	struct bundle_key *ts = NULL, *ts2 = NULL, *iss = NULL;
	struct bundle_keyset *ks = NULL;
	struct bundle_receipt_info info;

	T_EQ_INT(check("make ."), 0);
	s = get("py_statement.cose", &sl);
	r = get("py_receipt.cose", &rl);
	t = get("py_transparent.cose", &tl);
	k = get("py_ts.cose_key", &kl);
	pem = get("py_ts.pem", &pl);
	ik = get("py_issuer.cose_key", &il);
	pre = get("py_preimage.bin", &pre_l);
	T_CHECK(s && r && t && k && pem && ik && pre);
	if (!s || !r || !t || !k || !pem || !ik || !pre)
		goto out;
	T_EQ_INT(bundle_key_from_cose(k, kl, &ts), BUNDLE_OK);
	T_EQ_INT(bundle_key_load(pem, pl, &ts2), BUNDLE_OK);
	T_EQ_INT(bundle_key_from_cose(ik, il, &iss), BUNDLE_OK);
	T_EQ_INT(bundle_statement_check(s, sl, NULL), BUNDLE_OK);
	T_EQ_INT(bundle_cose_verify(s, sl, iss, NULL, 0), BUNDLE_OK);
	T_EQ_INT(bundle_statement_check_preimage(s, sl, pre, pre_l), BUNDLE_OK);
	T_EQ_INT(bundle_receipt_verify(r, rl, s, sl, ts, NULL, &info), BUNDLE_OK);
	T_EQ_INT(info.tree_size, 6);
	T_EQ_INT(info.leaf_index, 4);
	T_EQ_INT(bundle_receipt_verify(r, rl, t, tl, ts2, NULL, NULL), BUNDLE_OK);
	/* by kid: Python set the COSE_Key kid to the RFC 9679 thumbprint, as we do */
	bundle_keyset_load(k, kl, &ks);
	T_EQ_INT(bundle_receipt_verify(r, rl, s, sl, NULL, ks, NULL), BUNDLE_OK);
	/* forgeries */
	T_EQ_INT(bundle_receipt_verify(r, rl, s, sl, iss, NULL, NULL), BUNDLE_ERR_KEY);
	s[sl - 1] ^= 1;
	T_EQ_INT(bundle_receipt_verify(r, rl, s, sl, ts, NULL, NULL), BUNDLE_ERR_SIGNATURE);
	T_EQ_INT(bundle_cose_verify(s, sl, iss, NULL, 0), BUNDLE_ERR_SIGNATURE);
out:
	free(s);
	free(r);
	free(t);
	free(k);
	free(pem);
	free(ik);
	free(pre);
	bundle_key_free(ts);
	bundle_key_free(ts2);
	bundle_key_free(iss);
	bundle_keyset_free(ks);
}

/* the third-party vds1 vector: the Python checker and libbundle agree on it */
static void test_checker_accepts_transmute_vector(void)
{
	char args[4096];
	const char *sh = getenv("SHARED") ? getenv("SHARED") : "../shared";
	char v[1024];
	if (sh[0] == '/')
		snprintf(v, sizeof v, "%s/vectors/scitt/vds1", sh);
	else
		snprintf(v, sizeof v, "%s/%s/vectors/scitt/vds1", top, sh);
	snprintf(args, sizeof args, "verify-receipt %s/signed_statement.cose %s/receipt.cose %s/ts_public.jwk.json", v, v, v);
	T_EQ_INT(check(args), 0);
	snprintf(args, sizeof args, "verify-receipt %s/signed_statement.cose %s/receipt.cose %s/issuer_public.jwk.json", v,
		 v, v);
	T_EQ_INT(check(args), 1);
}

int main(void)
{
	char tmpl[] = "/tmp/sluice-interop.XXXXXX";
	char cmd[300];
	if (!getcwd(top, sizeof top)) {
		printf("not ok getcwd\n");
		return 1;
	}
	py = getenv("PYTHON") ? getenv("PYTHON") : "/usr/bin/python3";
	if (!mkdtemp(tmpl)) {
		printf("not ok mkdtemp\n");
		return 1;
	}
	snprintf(dir, sizeof dir, "%s", tmpl);
	T_RUN(test_checker_accepts_transmute_vector);
	T_RUN(test_ours_es256_es384_checked_by_python);
	T_RUN(test_ours_eddsa_es256_checked_by_python);
	T_RUN(test_python_checked_by_ours);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return t_done();
}
