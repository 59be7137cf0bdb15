/* Test kit for the tool gateway tests: makes what the boot flow would leave in /run/sluice,
 * with real libraries and a real transparency service, before the verifier is in the loop.
 *
 *   tools_testkit keygen OUT.pem
 *       a fresh ES256 key: OUT.pem (PKCS#8 private) and OUT.pub.pem (SPKI public)
 *   tools_testkit verdict --key K.pem --host ID --out DIR [--tools a,b] [--status S]
 *                 [--exp-in SECONDS] [--iat-in SECONDS] [--verifier-id ID]
 *                 [--ts URL --ts-key KEYFILE]
 *       an EAR verdict signed by K (DIR/verdict.cose), the verifier's hash-envelope statement
 *       of it (DIR/verdict-statement.cose), exactly as sluice-verifier makes them; with --ts,
 *       registered there and the verified receipt written to DIR/verdict-receipt.cose.
 *       S: affirming (default), warning, contraindicated. exp = now + exp-in (default 3600,
 *       may be negative); iat = now + iat-in (default 0).
 *   tools_testkit sk-pub --tcti T --out FILE.pem
 *       the TPM statement key's public key (created and persisted if absent)
 */
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "bundle/bundle.h"
#include "quote/quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int die(const char *what, enum bundle_err be)
{
	fprintf(stderr, "tools_testkit: %s: %s (%s)\n", what, bundle_strerror(be), bundle_last_cause());
	return 1;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
	const char *v = def; /* the last occurrence wins, so callers can override defaults */
	for (int i = 2; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			v = argv[++i];
	return v;
}

static int read_key(const char *path, struct bundle_key **ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum bundle_err be;
	if (agent_read_file(path, 1 << 16, &buf, &len) != 0) {
		perror(path);
		return 1;
	}
	be = bundle_key_load(buf, len, ret);
	free(buf);
	return be == BUNDLE_OK ? 0 : die(path, be);
}

static int keygen(const char *out)
{
	struct bundle_key *k = NULL;
	uint8_t *pem = NULL;
	size_t len = 0;
	char pub[4096];
	enum bundle_err be;
	int rc = 1;

	if ((be = bundle_key_generate(BUNDLE_ALG_ES256, &k)) != BUNDLE_OK)
		return die("generate", be);
	if ((be = bundle_key_save_pem(k, 1, &pem, &len)) != BUNDLE_OK || agent_write_file(out, pem, len, 0600) != 0) {
		rc = die(out, be);
		goto out;
	}
	free(pem);
	pem = NULL;
	snprintf(pub, sizeof pub, "%.*s.pub.pem", (int)(strlen(out) > 4 && strcmp(out + strlen(out) - 4, ".pem") == 0
							 ? strlen(out) - 4 : strlen(out)), out);
	if ((be = bundle_key_save_pem(k, 0, &pem, &len)) != BUNDLE_OK || agent_write_file(pub, pem, len, 0644) != 0) {
		rc = die(pub, be);
		goto out;
	}
	rc = 0;
out:
	free(pem);
	bundle_key_free(k);
	return rc;
}

static int verdict(int argc, char **argv)
{
	const char *keyf = arg(argc, argv, "--key", NULL), *host = arg(argc, argv, "--host", NULL);
	const char *out = arg(argc, argv, "--out", NULL), *tools = arg(argc, argv, "--tools", "");
	const char *status = arg(argc, argv, "--status", "affirming");
	const char *vid = arg(argc, argv, "--verifier-id", "test-verifier");
	const char *ts = arg(argc, argv, "--ts", NULL), *tskey = arg(argc, argv, "--ts-key", NULL);
	long exp_in = atol(arg(argc, argv, "--exp-in", "3600")), iat_in = atol(arg(argc, argv, "--iat-in", "0"));
	struct bundle_key *k = NULL;
	struct bundle_signer s;
	struct bundle_ear e = {0};
	const char *names[32];
	char toolbuf[1024], path[4096], err[512];
	uint8_t *v = NULL, *vs = NULL, *rc_buf = NULL, nonce[16] = {1, 2, 3};
	size_t vlen = 0, vslen = 0, rlen = 0;
	enum bundle_err be;
	int rc = 1;
	int64_t now = (int64_t)time(NULL);

	if (!keyf || !host || !out) {
		fprintf(stderr, "tools_testkit verdict: --key, --host and --out are required\n");
		return 2;
	}
	if (read_key(keyf, &k) != 0)
		return 1;
	snprintf(toolbuf, sizeof toolbuf, "%s", tools);
	for (char *save = NULL, *t = strtok_r(toolbuf, ",", &save); t && e.n_tools < 32; t = strtok_r(NULL, ",", &save))
		names[e.n_tools++] = t;
	e.tools = names;
	e.iat = now + iat_in;
	e.exp = now + exp_in;
	e.nonce.ptr = nonce;
	e.nonce.len = sizeof nonce;
	e.verifier_developer = "sluice tests";
	e.verifier_build = "tools_testkit";
	e.status = strcmp(status, "affirming") == 0 ? BUNDLE_EAR_AFFIRMING
		   : strcmp(status, "warning") == 0 ? BUNDLE_EAR_WARNING : BUNDLE_EAR_CONTRAINDICATED;
	for (int i = 0; i < BUNDLE_TV_COUNT; i++)
		e.tv[i] = BUNDLE_TV_ABSENT;
	e.tv[BUNDLE_TV_FILE_SYSTEM] = e.status == BUNDLE_EAR_AFFIRMING ? 2 : 96;
	e.policy_id = "tests";
	e.host_id = host;
	e.has_statement_hash = 1;
	memset(e.statement_hash, 0xab, sizeof e.statement_hash);
	if ((be = bundle_signer_from_key(k, &s)) != BUNDLE_OK || (be = bundle_ear_sign(&s, &e, &v, &vlen)) != BUNDLE_OK ||
	    (be = bundle_statement_sign(&s, vid, host, BUNDLE_MT_EAR, v, vlen, &vs, &vslen)) != BUNDLE_OK) {
		rc = die("sign verdict", be);
		goto out;
	}
	snprintf(path, sizeof path, "%s/verdict.cose", out);
	if (agent_write_file(path, v, vlen, 0644) != 0)
		goto io;
	snprintf(path, sizeof path, "%s/verdict-statement.cose", out);
	if (agent_write_file(path, vs, vslen, 0644) != 0)
		goto io;
	if (ts) {
		struct bundle_keyset *ks = NULL;
		struct agent_http_opts o = {0};
		if (!tskey || agent_load_keyset(tskey, &ks, err, sizeof err) != 0) {
			fprintf(stderr, "tools_testkit: --ts-key: %s\n", tskey ? err : "required with --ts");
			goto out;
		}
		if (agent_ts_register(&o, ts, ks, vs, vslen, 10, &rc_buf, &rlen, err, sizeof err) != 0) {
			bundle_keyset_free(ks);
			fprintf(stderr, "tools_testkit: register: %s\n", err);
			goto out;
		}
		bundle_keyset_free(ks);
		snprintf(path, sizeof path, "%s/verdict-receipt.cose", out);
		if (agent_write_file(path, rc_buf, rlen, 0644) != 0)
			goto io;
	}
	rc = 0;
	goto out;
io:
	perror(path);
out:
	free(v);
	free(vs);
	free(rc_buf);
	bundle_key_free(k);
	return rc;
}

static int sk_pub(int argc, char **argv)
{
	struct quote_cfg c = {.tcti = arg(argc, argv, "--tcti", NULL)};
	const char *out = arg(argc, argv, "--out", NULL);
	struct quote_ctx *q = NULL;
	struct quote_key sk;
	char *pem = NULL;
	enum quote_err qe;
	int rc = 1;

	if (!out)
		return 2;
	if ((qe = quote_ctx_new(&c, &q)) != QUOTE_OK || (qe = quote_sk_ensure(q, &sk, NULL)) != QUOTE_OK ||
	    (qe = quote_public_to_pem(sk.pub, sk.pub_len, &pem)) != QUOTE_OK) {
		fprintf(stderr, "tools_testkit: statement key: %s (%s)\n", quote_strerror(qe), q ? quote_ctx_cause(q) : "");
		goto out;
	}
	if (agent_write_file(out, pem, strlen(pem), 0644) != 0) {
		perror(out);
		goto out;
	}
	rc = 0;
out:
	free(pem);
	quote_ctx_free(q);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "keygen") == 0)
		return keygen(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "verdict") == 0)
		return verdict(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "sk-pub") == 0)
		return sk_pub(argc, argv);
	fprintf(stderr, "usage: tools_testkit keygen OUT.pem | verdict ... | sk-pub --tcti T --out F\n");
	return 2;
}
