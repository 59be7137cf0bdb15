/* The gateway lock (agent/tools_lock.c) and the call statement payload (agent/tools_receipt.c),
 * with real libbundle crypto: verdicts signed by a software verifier key, receipts issued by
 * libbundle's receipt issuer (as sluice-ts does) for a one-leaf tree. No TPM, no network; the
 * same cases run end to end against swtpm and sluice-ts in tests/integration/tools_gateway.sh. */
#include "agent/agent.h"
#include "agent/tools.h"
#include "bundle/bundle.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64], vpub[128], tspub[128], cred[128];
static struct bundle_key *vkey, *rogue, *tskey, *ts2key;
static struct tools_set *tools;

/* a plain write (agent_write_file fsyncs, too slow for a byte-by-byte loop) */
static void put(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "w");
	T_CHECK(f && fwrite(b, 1, n, f) == n);
	if (f)
		fclose(f);
}

static void save_pub(const struct bundle_key *k, const char *path)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	T_CHECK(bundle_key_save_pem(k, 0, &pem, &len) == BUNDLE_OK);
	put(path, pem, len);
	free(pem);
}

struct mint {
	const struct bundle_key *signer, *ts;
	const char *host;
	long exp_in, iat_in;
	int status;
	const char *tools; /* comma separated */
};

/* verdict.cose, verdict-statement.cose, verdict-receipt.cose into sub/ of dir */
static void mint(const char *sub, struct mint m)
{
	struct bundle_signer s, ts;
	struct bundle_ear e = {0};
	struct bundle_receipt_head *head = NULL;
	struct bundle_receipt_hdr rh = {.iss = "unit-ts"};
	const char *names[8];
	char buf[256], path[256];
	uint8_t *v = NULL, *vs = NULL, *r = NULL, leaf[32], nonce[8] = {1};
	size_t vl = 0, vsl = 0, rl = 0;
	int64_t now = (int64_t)time(NULL);

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	mkdir(path, 0755);
	snprintf(buf, sizeof buf, "%s", m.tools ? m.tools : "stock_price,echo");
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && e.n_tools < 8; t = strtok_r(NULL, ",", &save))
		names[e.n_tools++] = t;
	e.tools = names;
	e.iat = now + m.iat_in;
	e.exp = now + (m.exp_in ? m.exp_in : 3600);
	e.nonce.ptr = nonce;
	e.nonce.len = sizeof nonce;
	e.status = m.status ? m.status : BUNDLE_EAR_AFFIRMING;
	for (int i = 0; i < BUNDLE_TV_COUNT; i++)
		e.tv[i] = BUNDLE_TV_ABSENT;
	e.host_id = m.host ? m.host : "host-a";
	T_CHECK(bundle_signer_from_key(m.signer ? m.signer : vkey, &s) == BUNDLE_OK);
	T_CHECK(bundle_ear_sign(&s, &e, &v, &vl) == BUNDLE_OK);
	T_CHECK(bundle_statement_sign(&s, "unit-verifier", e.host_id, BUNDLE_MT_EAR, v, vl, &vs, &vsl) == BUNDLE_OK);
	T_CHECK(bundle_statement_leaf_hash(vs, vsl, leaf) == BUNDLE_OK);
	T_CHECK(bundle_signer_from_key(m.ts ? m.ts : tskey, &ts) == BUNDLE_OK);
	T_CHECK(bundle_receipt_sign_head(&ts, &rh, 1, leaf, &head) == BUNDLE_OK);
	T_CHECK(bundle_receipt_issue(head, 0, NULL, 0, &r, &rl) == BUNDLE_OK);
	snprintf(path, sizeof path, "%s/%s/verdict.cose", dir, sub);
	put(path, v, vl);
	snprintf(path, sizeof path, "%s/%s/verdict-statement.cose", dir, sub);
	put(path, vs, vsl);
	snprintf(path, sizeof path, "%s/%s/verdict-receipt.cose", dir, sub);
	put(path, r, rl);
	bundle_receipt_head_free(head);
	free(v);
	free(vs);
	free(r);
}

static enum tools_err lock(const char *sub, struct tools_unlock *u, const char *host)
{
	char run[256], detail[512] = "";
	struct tools_lock_cfg c = {.run_dir = run, .cred_dir = cred, .verifier_key = vpub, .ts_key = tspub,
				   .host_id = host ? host : "host-a", .tools = tools};
	enum tools_err e;
	snprintf(run, sizeof run, "%s/%s", dir, sub);
	e = tools_lock_check(&c, u, detail, sizeof detail);
	if (e != TOOLS_OK)
		printf("# %s: %s: %s\n", sub, tools_reason(e), detail);
	return e;
}

static enum tools_err lock_only(const char *sub)
{
	struct tools_unlock u = {0};
	enum tools_err e = lock(sub, &u, NULL);
	tools_unlock_clear(&u);
	return e;
}

static void test_unlocked(void)
{
	struct tools_unlock u = {0};
	mint("good", (struct mint){0});
	T_EQ_INT(lock("good", &u, NULL), TOOLS_OK);
	T_CHECK(tools_unlock_allows(&u, "stock_price"));
	T_CHECK(tools_unlock_allows(&u, "echo"));
	T_CHECK(!tools_unlock_allows(&u, "other"));
	T_CHECK(u.exp > time(NULL));
	tools_unlock_clear(&u);
}

static void flip(const char *sub, const char *file, long from_end)
{
	char path[256];
	uint8_t *b = NULL;
	size_t n = 0;
	snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
	T_CHECK(agent_read_file(path, 1 << 20, &b, &n) == 0);
	b[n - (size_t)from_end] ^= 0x01;
	put(path, b, n);
	free(b);
}

static void copy_dir(const char *from, const char *to)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cp -r '%s/%s' '%s/%s'", dir, from, dir, to);
	T_CHECK(system(cmd) == 0);
}

static void test_locked_cases(void)
{
	struct tools_unlock u = {0};
	char p[256];

	T_EQ_INT(lock_only("absent"), TOOLS_ERR_NO_VERDICT);
	mint("expired", (struct mint){.exp_in = -5});
	T_EQ_INT(lock_only("expired"), TOOLS_ERR_VERDICT_EXPIRED);
	mint("future", (struct mint){.iat_in = 3600, .exp_in = 7200});
	T_EQ_INT(lock_only("future"), TOOLS_ERR_VERDICT_EXPIRED);
	mint("otherhost", (struct mint){.host = "host-b"});
	T_EQ_INT(lock_only("otherhost"), TOOLS_ERR_VERDICT_HOST);
	mint("contra", (struct mint){.status = BUNDLE_EAR_CONTRAINDICATED});
	T_EQ_INT(lock_only("contra"), TOOLS_ERR_VERDICT_STATUS);
	mint("warning", (struct mint){.status = BUNDLE_EAR_WARNING});
	T_EQ_INT(lock_only("warning"), TOOLS_ERR_VERDICT_STATUS);
	mint("rogue", (struct mint){.signer = rogue});
	T_EQ_INT(lock_only("rogue"), TOOLS_ERR_VERDICT_SIGNATURE);
	mint("untrusted-ts", (struct mint){.ts = ts2key});
	T_EQ_INT(lock_only("untrusted-ts"), TOOLS_ERR_VERDICT_RECEIPT);
	/* one flipped byte in the verdict's signature, its claims, the statement, the receipt */
	copy_dir("good", "flip-sig");
	flip("flip-sig", "verdict.cose", 3);
	T_EQ_INT(lock_only("flip-sig"), TOOLS_ERR_VERDICT_SIGNATURE);
	copy_dir("good", "flip-claims");
	flip("flip-claims", "verdict.cose", 80);
	T_EQ_INT(lock_only("flip-claims"), TOOLS_ERR_VERDICT_SIGNATURE);
	copy_dir("good", "flip-stmt");
	flip("flip-stmt", "verdict-statement.cose", 3);
	T_EQ_INT(lock_only("flip-stmt"), TOOLS_ERR_VERDICT_RECEIPT);
	copy_dir("good", "flip-rcpt");
	flip("flip-rcpt", "verdict-receipt.cose", 3);
	T_EQ_INT(lock_only("flip-rcpt"), TOOLS_ERR_VERDICT_RECEIPT);
	/* every byte of the receipt and statement: never unlocked */
	{
		const char *files[] = {"verdict-receipt.cose", "verdict-statement.cose", "verdict.cose"};
		for (size_t f = 0; f < 3; f++) {
			char path[256];
			uint8_t *b = NULL;
			size_t n = 0;
			int opened = 0;
			copy_dir("good", "every");
			snprintf(path, sizeof path, "%s/every/%s", dir, files[f]);
			T_CHECK(agent_read_file(path, 1 << 20, &b, &n) == 0);
			for (size_t i = 0; b && i < n; i++) {
				b[i] ^= 0x40;
				put(path, b, n);
				if (lock_only("every") == TOOLS_OK) {
					printf("# %s byte %zu flipped still unlocks\n", files[f], i);
					opened = 1;
				}
				b[i] ^= 0x40;
			}
			T_CHECK(!opened);
			free(b);
			snprintf(path, sizeof path, "rm -rf '%s/every'", dir);
			T_CHECK(system(path) == 0);
		}
	}
	/* statement or receipt missing; a verdict swapped under another verdict's statement */
	copy_dir("good", "nostmt");
	snprintf(p, sizeof p, "%s/nostmt/verdict-statement.cose", dir);
	unlink(p);
	T_EQ_INT(lock_only("nostmt"), TOOLS_ERR_VERDICT_RECEIPT);
	copy_dir("good", "norcpt");
	snprintf(p, sizeof p, "%s/norcpt/verdict-receipt.cose", dir);
	unlink(p);
	T_EQ_INT(lock_only("norcpt"), TOOLS_ERR_VERDICT_RECEIPT);
	copy_dir("good", "swap");
	{
		char cmd[512];
		snprintf(cmd, sizeof cmd, "cp '%s/otherhost/verdict.cose' '%s/swap/verdict.cose'", dir, dir);
		T_CHECK(system(cmd) == 0);
	}
	T_EQ_INT(lock_only("swap"), TOOLS_ERR_VERDICT_RECEIPT);
	/* this host not configured */
	T_EQ_INT(lock("good", &u, ""), TOOLS_ERR_NOT_CONFIGURED);
	tools_unlock_clear(&u);
	/* released credential missing */
	snprintf(p, sizeof p, "%s/tok", cred);
	T_CHECK(rename(p, "/tmp/sluice-unit-tok.saved") == 0 || 1);
	T_EQ_INT(lock_only("good"), TOOLS_ERR_NO_CREDENTIAL);
	T_CHECK(rename("/tmp/sluice-unit-tok.saved", p) == 0);
	T_EQ_INT(lock_only("good"), TOOLS_OK);
	/* a verdict that allows a tool with a credential only if configured: unconfigured names are fine */
	mint("extra", (struct mint){.tools = "stock_price,not_configured"});
	T_EQ_INT(lock_only("extra"), TOOLS_OK);
}

static void test_call_payload(void)
{
	uint8_t a[32], v[32], *p = NULL, *stmt = NULL;
	size_t n = 0, sl = 0;
	struct bundle_signer s;
	struct bundle_cose_hdr h = {.content_type = "application/vnd.sluice.tool-call+cbor", .cwt_iss = "urn:sluice:host:host-a",
				    .cwt_sub = "tool:stock_price", .cwt_iat = 1700000000};
	json_t *args = json_pack("{s:s, s:i}", "symbol", "INTC", "n", 1), *args2 = json_pack("{s:i, s:s}", "n", 1, "symbol", "INTC");
	uint8_t a2[32];
	char why[256];

	T_EQ_INT(tools_args_sha256(args, a), 0);
	T_EQ_INT(tools_args_sha256(args2, a2), 0); /* key order does not matter */
	T_CHECK(memcmp(a, a2, 32) == 0);
	memset(v, 7, sizeof v);
	T_EQ_INT(tools_call_payload("stock_price", a, v, "host-a", 1700000000, &p, &n), 0);
	T_EQ_INT(bundle_cbor_check(p, n, 1), BUNDLE_OK); /* deterministic CBOR */
	T_CHECK(bundle_signer_from_key(vkey, &s) == BUNDLE_OK);
	T_CHECK(bundle_cose_sign1(&s, &h, p, n, 0, &stmt, &sl) == BUNDLE_OK);
	T_EQ_INT(tools_call_statement_matches(stmt, sl, "stock_price", a, v, 1700000000, why, sizeof why), 0);
	T_EQ_INT(tools_call_statement_matches(stmt, sl, "stock_pricf", a, v, 1700000000, why, sizeof why), -1);
	T_EQ_INT(tools_call_statement_matches(stmt, sl, "stock_price", a, v, 1700000001, why, sizeof why), -1);
	v[0] ^= 1;
	T_EQ_INT(tools_call_statement_matches(stmt, sl, "stock_price", a, v, 1700000000, why, sizeof why), -1);
	a[31] ^= 1;
	T_EQ_INT(tools_call_statement_matches(stmt, sl, "stock_price", a, v, 1700000000, why, sizeof why), -1);
	free(p);
	free(stmt);
	json_decref(args);
	json_decref(args2);
}

int main(void)
{
	char p[256], why[256];
	FILE *f;

	snprintf(dir, sizeof dir, "/tmp/sluice-tools-lock.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	if (bundle_key_generate(BUNDLE_ALG_ES256, &vkey) != BUNDLE_OK || bundle_key_generate(BUNDLE_ALG_ES256, &rogue) ||
	    bundle_key_generate(BUNDLE_ALG_ES256, &tskey) || bundle_key_generate(BUNDLE_ALG_ES256, &ts2key))
		return 1;
	snprintf(vpub, sizeof vpub, "%s/verifier.pem", dir);
	snprintf(tspub, sizeof tspub, "%s/ts.pem", dir);
	save_pub(vkey, vpub);
	save_pub(tskey, tspub);
	snprintf(cred, sizeof cred, "%s/cred", dir);
	mkdir(cred, 0700);
	snprintf(p, sizeof p, "%s/tok", cred);
	f = fopen(p, "w");
	fputs("secret\n", f);
	fclose(f);
	snprintf(p, sizeof p, "%s/tools.d", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/tools.d/stock_price.json", dir);
	f = fopen(p, "w");
	fputs("{\"name\":\"stock_price\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},\"credential\":\"tok\","
	      "\"http\":{\"url\":\"http://127.0.0.1:1/q\"}}",
	      f);
	fclose(f);
	snprintf(p, sizeof p, "%s/tools.d", dir);
	if (tools_load_dir(p, &tools, why, sizeof why) != TOOLS_OK) {
		printf("# %s\n", why);
		return 1;
	}
	T_RUN(test_unlocked);
	T_RUN(test_locked_cases);
	T_RUN(test_call_payload);
	tools_set_free(tools);
	bundle_key_free(vkey);
	bundle_key_free(rogue);
	bundle_key_free(tskey);
	bundle_key_free(ts2key);
	snprintf(p, sizeof p, "rm -rf '%s'", dir);
	if (system(p) != 0)
		printf("# could not remove %s\n", dir);
	return t_done();
}
