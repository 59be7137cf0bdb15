/* sluice-ts internals: CBOR reader strictness, log recovery (torn and corrupt tails), the
 * consistency-root computation, the policy on statements libbundle signs (accepted, the
 * record is libbundle's, a forgery is refused), receipts signed with the service key checked
 * against the COSE_Key we publish, and sluice-ts's own consistency receipts checked with
 * libbundle's COSE verifier (forged ones fail).
 * Uses a temp dir, no network. */
#include "bundle/bundle.h"
#include "merkle/merkle.h"
#include "tests/unit/t.h"
#include "transparency/ts-int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static void rm_rf(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# cleanup of %s failed\n", tmpdir);
}

static void test_cbor_reader(void)
{
	static const uint8_t nonshort[] = {0x18, 0x05};
	static const uint8_t indef[] = {0x9f, 0x01, 0xff};
	static const uint8_t trunc[] = {0x59, 0x01};
	static const uint8_t ok[] = {0x83, 0x01, 0x41, 0xaa, 0xa1, 0x01, 0x02};
	struct ts_cbor_rd r = {nonshort, nonshort + sizeof nonshort};
	struct ts_cbor_item it;
	T_EQ_INT(ts_cbor_next(&r, &it), -1);
	r = (struct ts_cbor_rd){indef, indef + sizeof indef};
	T_EQ_INT(ts_cbor_next(&r, &it), -1);
	r = (struct ts_cbor_rd){trunc, trunc + sizeof trunc};
	T_EQ_INT(ts_cbor_next(&r, &it), -1);
	r = (struct ts_cbor_rd){ok, ok + sizeof ok};
	T_EQ_INT(ts_cbor_skip(&r), 0);
	T_CHECK(r.p == r.end);
	r = (struct ts_cbor_rd){ok, ok + sizeof ok - 1};
	T_EQ_INT(ts_cbor_skip(&r), -1);
}

static void leaf_of(unsigned i, uint8_t out[32])
{
	uint8_t b[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
	merkle_leaf_hash(b, sizeof b, out);
}

static void test_consistency_root(void)
{
	struct merkle_tree *t = NULL;
	uint8_t leaf[32], r1[32], r2[32], got[32], path[MERKLE_MAX_PROOF][32];
	size_t n = 0;
	T_EQ_INT(merkle_tree_new(&t), MERKLE_OK);
	for (unsigned i = 0; i < 40; i++) {
		leaf_of(i, leaf);
		merkle_tree_append(t, leaf);
	}
	for (uint64_t s1 = 1; s1 <= 40; s1++)
		for (uint64_t s2 = s1; s2 <= 40; s2 += 3) {
			T_EQ_INT(merkle_tree_consistency(t, s1, s2, path, &n), MERKLE_OK);
			merkle_tree_root(t, s1, r1);
			merkle_tree_root(t, s2, r2);
			T_EQ_INT(ts_consistency_root(s1, s2, r1, (const uint8_t(*)[32])path, n, got), 0);
			T_CHECK(memcmp(got, r2, 32) == 0);
			if (n) {
				path[n - 1][0] ^= 1; /* tampered proof: wrong root or refused */
				if (ts_consistency_root(s1, s2, r1, (const uint8_t(*)[32])path, n, got) == 0)
					T_CHECK(memcmp(got, r2, 32) != 0);
			}
			r1[0] ^= 1; /* wrong old root is refused whenever the path commits to it */
			if (s1 != s2 && (s1 & (s1 - 1)) != 0)
				T_EQ_INT(ts_consistency_root(s1, s2, r1, (const uint8_t(*)[32])path, n, got), -1);
		}
	merkle_tree_free(t);
}

static void test_log_recovery(void)
{
	struct merkle_tree *t = NULL;
	struct ts_log *l = NULL;
	struct ts_log_recovery rec;
	char err[256], path[128];
	const uint8_t *recs[3] = {(const uint8_t *)"first", (const uint8_t *)"second", (const uint8_t *)"third"};
	size_t lens[3] = {5, 6, 5};
	uint8_t leaves[3][32], *buf = NULL, root3[32], root[32];
	size_t blen = 0;
	struct stat st;
	int fd;

	for (int i = 0; i < 3; i++)
		merkle_leaf_hash(recs[i], lens[i], leaves[i]);
	T_EQ_INT(merkle_tree_new(&t), MERKLE_OK);
	T_EQ_INT(ts_log_open(tmpdir, t, &l, &rec, err, sizeof err), 0);
	T_EQ_INT(rec.entries, 0);
	T_EQ_INT(ts_log_append(l, recs, lens, (const uint8_t(*)[32])leaves, 3, err, sizeof err), 0);
	T_EQ_INT(ts_log_count(l), 3);
	T_EQ_INT(ts_log_read(l, 1, &buf, &blen), 0);
	T_CHECK(blen == 6 && memcmp(buf, "second", 6) == 0);
	free(buf);
	T_EQ_INT(ts_log_read(l, 3, &buf, &blen), -1);
	ts_log_close(l);
	merkle_tree_free(t);

	/* torn tail: half a record header */
	snprintf(path, sizeof path, "%s/log", tmpdir);
	stat(path, &st);
	fd = open(path, O_WRONLY | O_APPEND);
	T_CHECK(write(fd, "\x00\x00\x00\x09" "abc", 7) == 7);
	close(fd);
	merkle_tree_new(&t);
	T_EQ_INT(ts_log_open(tmpdir, t, &l, &rec, err, sizeof err), 0);
	T_EQ_INT(rec.entries, 3);
	T_EQ_INT(rec.truncated, 7);
	T_EQ_INT(rec.truncated_at, st.st_size);
	merkle_tree_root(t, 3, root3);
	ts_log_close(l);
	merkle_tree_free(t);

	/* a flipped byte in the last record: it is cut, the first two stay */
	fd = open(path, O_RDWR);
	T_CHECK(pwrite(fd, "X", 1, st.st_size - 1) == 1);
	close(fd);
	merkle_tree_new(&t);
	T_EQ_INT(ts_log_open(tmpdir, t, &l, &rec, err, sizeof err), 0);
	T_EQ_INT(rec.entries, 2);
	T_CHECK(strstr(rec.why, "does not match its hash") != NULL);
	merkle_tree_root(t, 2, root);
	T_CHECK(memcmp(root, root3, 32) != 0);
	ts_log_close(l);
	merkle_tree_free(t);

	/* not a log at all */
	fd = open(path, O_WRONLY | O_TRUNC);
	T_CHECK(write(fd, "GARBAGE-GARBAGE-GARBAGE", 23) == 23);
	close(fd);
	merkle_tree_new(&t);
	T_EQ_INT(ts_log_open(tmpdir, t, &l, &rec, err, sizeof err), -1);
	T_CHECK(strstr(err, "not a sluice-ts log") != NULL);
	merkle_tree_free(t);
	unlink(path);
}

static void test_policy_and_receipts_vs_bundle(void)
{
	struct bundle_key *ik = NULL, *tsk_pub = NULL;
	struct bundle_signer sg;
	struct ts_policy *p = NULL;
	struct ts_policy_cfg pc = {0};
	struct ts_verdict v;
	struct ts_key *tk = NULL;
	struct merkle_tree *t = NULL;
	struct ts_sth sth;
	struct ts_buf cose = {0}, rc = {0};
	uint8_t *stmt = NULL, *rec = NULL, *brec = NULL, *pem = NULL, leaf[32], root[32], path[MERKLE_MAX_PROOF][32];
	size_t slen = 0, rlen = 0, brlen = 0, pemlen = 0, n = 0;
	char trust[128], err[256], pempath[160];
	int created = 0;
	FILE *f;

	snprintf(trust, sizeof trust, "%s/trust", tmpdir);
	mkdir(trust, 0700);
	T_EQ_INT(bundle_key_generate(BUNDLE_ALG_ES256, &ik), BUNDLE_OK);
	T_EQ_INT(bundle_key_save_pem(ik, 0, &pem, &pemlen), BUNDLE_OK);
	snprintf(pempath, sizeof pempath, "%s/issuer.pem", trust);
	f = fopen(pempath, "w");
	fwrite(pem, 1, pemlen, f);
	fclose(f);
	pc.trust_dir = trust;
	T_EQ_INT(ts_policy_new(&pc, &p, err, sizeof err), 0);
	T_EQ_INT(bundle_signer_from_key(ik, &sg), BUNDLE_OK);
	T_EQ_INT(bundle_statement_sign(&sg, "https://host.example", "rootfs:h1", NULL, (const uint8_t *)"evidence", 8, &stmt,
				       &slen),
		 BUNDLE_OK);

	/* bundle's statement passes our policy, and we log the record bundle would compute */
	T_EQ_INT(ts_policy_check(p, stmt, slen, &rec, &rlen, &v), 0);
	T_EQ_INT(bundle_statement_record(stmt, slen, &brec, &brlen), BUNDLE_OK);
	T_CHECK(rlen == brlen && memcmp(rec, brec, rlen) == 0);

	/* the service key's receipts (libbundle issues them with ts_key_signer) verify with the
	 * public COSE_Key we publish; our consistency receipts verify with libbundle's COSE check */
	T_EQ_INT(ts_key_load_or_create(tmpdir, &tk, &created, err, sizeof err), 0);
	T_EQ_INT(created, 1);
	ts_key_cose(tk, &cose);
	T_EQ_INT(bundle_key_from_cose(cose.p, cose.len, &tsk_pub), BUNDLE_OK);
	merkle_tree_new(&t);
	for (unsigned i = 0; i < 6; i++) {
		if (i == 3)
			merkle_leaf_hash(rec, rlen, leaf);
		else
			leaf_of(i, leaf);
		merkle_tree_append(t, leaf);
	}
	merkle_tree_root(t, 6, root);
	{
		struct bundle_receipt_info info;
		struct bundle_receipt_head *h = NULL;
		struct bundle_receipt_hdr hdr = {.iss = "sluice-ts-test"};
		uint8_t *ir = NULL, root3[32], got[32];
		size_t il = 0;
		T_EQ_INT(bundle_receipt_sign_head(ts_key_signer(tk), &hdr, 6, root, &h), BUNDLE_OK);
		T_EQ_INT(merkle_tree_inclusion(t, 3, 6, path, &n), MERKLE_OK);
		T_EQ_INT(bundle_receipt_issue(h, 3, (const uint8_t(*)[32])path, n, &ir, &il), BUNDLE_OK);
		T_EQ_INT(bundle_receipt_verify(ir, il, stmt, slen, tsk_pub, NULL, &info), BUNDLE_OK);
		T_EQ_INT(info.leaf_index, 3);
		T_CHECK(memcmp(info.kid.ptr, ts_key_kid(tk), 32) == 0);
		free(ir);
		bundle_receipt_head_free(h);

		/* consistency receipt from 3 to 6 */
		T_EQ_INT(ts_sth_sign(tk, "sluice-ts-test", 6, root, 1700000000, &sth), 0);
		T_EQ_INT(merkle_tree_consistency(t, 3, 6, path, &n), MERKLE_OK);
		ts_receipt_consistency(&sth, 3, (const uint8_t(*)[32])path, n, &rc);
		T_CHECK(!rc.oom);
		merkle_tree_root(t, 3, root3);
		T_EQ_INT(ts_consistency_root(3, 6, root3, (const uint8_t(*)[32])path, n, got), 0);
		T_CHECK(memcmp(got, root, 32) == 0);
		T_EQ_INT(bundle_cose_verify(rc.p, rc.len, tsk_pub, got, 32), BUNDLE_OK);
		/* forged: another root, or a flipped signature bit */
		T_EQ_INT(bundle_cose_verify(rc.p, rc.len, tsk_pub, root3, 32), BUNDLE_ERR_SIGNATURE);
		rc.p[rc.len - 1] ^= 1;
		T_EQ_INT(bundle_cose_verify(rc.p, rc.len, tsk_pub, got, 32), BUNDLE_ERR_SIGNATURE);
	}

	/* forged statement: our policy refuses it */
	free(rec);
	rec = NULL;
	stmt[slen - 3] ^= 1;
	T_EQ_INT(ts_policy_check(p, stmt, slen, &rec, &rlen, &v), -1);
	T_EQ_INT(v.status, 400);
	T_EQ_STR(v.title, "Bad Signature");
	T_CHECK(rec == NULL);

	free(stmt);
	free(rec);
	free(brec);
	free(pem);
	ts_buf_free(&cose);
	ts_buf_free(&rc);
	merkle_tree_free(t);
	ts_key_free(tk);
	ts_policy_free(p);
	bundle_key_free(ik);
	bundle_key_free(tsk_pub);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ts.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		printf("not ok mkdtemp\n");
		return 1;
	}
	T_RUN(test_cbor_reader);
	T_RUN(test_consistency_root);
	T_RUN(test_log_recovery);
	T_RUN(test_policy_and_receipts_vs_bundle);
	rm_rf();
	return t_done();
}
