/* sluice statement | receipt | audit: look at and re-verify COSE statements, SCITT receipts
 * and whole evidence bundles offline. Composes libbundle (formats), libquote (pure TPM
 * quote/certify verification) and libmeasure (manifest root). */
#include "agent/agent.h"
#include "bundle/bundle.h"
#include "measure/measure.h"
#include "quote/quote.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX (1u << 20)

static char *hexs(const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	if (s)
		agent_hex(p, n, s);
	return s;
}

static json_t *jhex(const uint8_t *p, size_t n)
{
	char *s = hexs(p, n);
	json_t *j = json_string(s ? s : "");
	free(s);
	return j;
}

static json_t *jstrn(struct bundle_bytes b)
{
	return json_stringn_nocheck((const char *)b.ptr, b.len);
}

static const char *alg_name(int64_t alg)
{
	switch (alg) {
	case -7: return "ES256";
	case -35: return "ES384";
	case -36: return "ES512";
	case -8: return "EdDSA";
	case -37: return "PS256";
	case -38: return "PS384";
	case -39: return "PS512";
	case -257: return "RS256";
	default: return "unknown";
	}
}

static int load_keyset(const char *path, struct bundle_keyset **ret)
{
	uint8_t *b = NULL;
	size_t l = 0;
	enum bundle_err e;
	if (agent_read_file(path, KEY_MAX, &b, &l) != 0) {
		agent_log("failed to read key file %s: %m", path);
		return -1;
	}
	e = bundle_keyset_load(b, l, ret);
	free(b);
	if (e) {
		agent_log("failed to load keys from %s: %s (%s)", path, bundle_strerror(e), bundle_last_cause());
		return -1;
	}
	return 0;
}

static int read_cose(const char *path, uint8_t **b, size_t *l)
{
	if (agent_read_file(path, BUNDLE_MAX_COSE, b, l) != 0) {
		agent_log("failed to read %s: %m", path);
		return -1;
	}
	return 0;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		printf("%s\n", s);
	free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* sluice statement inspect | verify */

static json_t *cbor_json(const uint8_t *p, size_t n)
{
	char *s = NULL;
	json_t *j = NULL;
	if (bundle_cbor_to_json(p, n, &s) == BUNDLE_OK)
		j = json_loads(s, JSON_DECODE_ANY, NULL);
	free(s);
	return j ? j : json_null();
}

static json_t *headers_json(const struct bundle_cose *c)
{
	json_t *h = json_object();
	if (c->alg) {
		json_object_set_new(h, "alg", json_integer(c->alg));
		json_object_set_new(h, "alg_name", json_string(alg_name(c->alg)));
	}
	if (c->kid.ptr)
		json_object_set_new(h, "kid", jhex(c->kid.ptr, c->kid.len));
	if (c->content_type.ptr)
		json_object_set_new(h, "content_type", jstrn(c->content_type));
	else if (c->content_type_uint >= 0)
		json_object_set_new(h, "content_type", json_integer(c->content_type_uint));
	if (c->cwt_iss.ptr || c->cwt_sub.ptr || c->cwt_iat) {
		json_t *cw = json_object();
		if (c->cwt_iss.ptr)
			json_object_set_new(cw, "iss", jstrn(c->cwt_iss));
		if (c->cwt_sub.ptr)
			json_object_set_new(cw, "sub", jstrn(c->cwt_sub));
		if (c->cwt_iat)
			json_object_set_new(cw, "iat", json_integer(c->cwt_iat));
		json_object_set_new(h, "cwt_claims", cw);
	}
	if (c->typ.ptr)
		json_object_set_new(h, "typ", jstrn(c->typ));
	if (c->payload_hash_alg)
		json_object_set_new(h, "payload_hash_alg", json_integer(c->payload_hash_alg));
	if (c->preimage_content_type.ptr)
		json_object_set_new(h, "preimage_content_type", jstrn(c->preimage_content_type));
	if (c->vds)
		json_object_set_new(h, "vds", json_integer(c->vds));
	if (c->x5chain.ptr)
		json_object_set_new(h, "x5chain", json_true());
	if (c->crit.ptr)
		json_object_set_new(h, "crit", cbor_json(c->crit.ptr, c->crit.len));
	if (c->crit_unknown)
		json_object_set_new(h, "crit_unknown", json_true());
	return h;
}

/* Proof shape of a receipt (no verification). */
static void receipt_json(json_t *o, const uint8_t *b, size_t l)
{
	struct bundle_receipt_info info;
	if (bundle_receipt_parse(b, l, &info) != BUNDLE_OK)
		return;
	if (info.vds == 1) {
		json_object_set_new(o, "tree_size", json_integer((json_int_t)info.tree_size));
		json_object_set_new(o, "leaf_index", json_integer((json_int_t)info.leaf_index));
	}
	json_object_set_new(o, "path_length", json_integer((json_int_t)info.path_len));
}

static int statement_inspect(const char *path)
{
	uint8_t *b = NULL, dg[32], leaf[32];
	size_t l = 0, n = 0;
	struct bundle_cose c;
	struct bundle_bytes rs[BUNDLE_MAX_RECEIPTS];
	enum bundle_err e;
	json_t *o, *p;

	if (read_cose(path, &b, &l))
		return 1;
	if ((e = bundle_cose_parse(b, l, &c))) {
		agent_log("failed to parse %s as COSE_Sign1: %s (%s)", path, bundle_strerror(e), bundle_last_cause());
		free(b);
		return 1;
	}
	o = json_object();
	json_object_set_new(o, "file", json_string(path));
	json_object_set_new(o, "size", json_integer((json_int_t)l));
	EVP_Digest(b, l, dg, NULL, EVP_sha256(), NULL);
	json_object_set_new(o, "sha256", jhex(dg, 32));
	json_object_set_new(o, "tagged", json_boolean(c.tagged));
	json_object_set_new(o, "protected", headers_json(&c));
	json_object_set_new(o, "protected_cbor", cbor_json(c.protected_bstr.ptr, c.protected_bstr.len));
	p = json_object();
	json_object_set_new(p, "detached", json_boolean(c.detached));
	if (!c.detached) {
		json_object_set_new(p, "length", json_integer((json_int_t)c.payload.len));
		EVP_Digest(c.payload.ptr, c.payload.len, dg, NULL, EVP_sha256(), NULL);
		json_object_set_new(p, "sha256", jhex(dg, 32));
		if (c.payload.len <= 64)
			json_object_set_new(p, "hex", jhex(c.payload.ptr, c.payload.len));
	}
	json_object_set_new(o, "payload", p);
	json_object_set_new(o, "signature_length", json_integer((json_int_t)c.signature.len));
	if (bundle_statement_leaf_hash(b, l, leaf) == BUNDLE_OK)
		json_object_set_new(o, "leaf_hash", jhex(leaf, 32));
	if (c.vdp.ptr) {
		json_t *r = json_object();
		json_object_set_new(o, "proofs", cbor_json(c.vdp.ptr, c.vdp.len));
		receipt_json(r, b, l);
		json_object_set_new(o, "receipt", r);
	}
	if (bundle_transparent_receipts(b, l, rs, BUNDLE_MAX_RECEIPTS, &n) == BUNDLE_OK && n) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			struct bundle_cose rc;
			json_t *r = json_object();
			json_object_set_new(r, "size", json_integer((json_int_t)rs[i].len));
			if (bundle_cose_parse(rs[i].ptr, rs[i].len, &rc) == BUNDLE_OK)
				json_object_set_new(r, "protected", headers_json(&rc));
			else
				json_object_set_new(r, "error", json_string(bundle_last_cause()));
			receipt_json(r, rs[i].ptr, rs[i].len);
			json_array_append_new(arr, r);
		}
		json_object_set_new(o, "receipts", arr);
	}
	print_json(o);
	json_decref(o);
	free(b);
	return 0;
}

static int statement_verify(const char *path, const char *keyfile, const char *preimage)
{
	uint8_t *b = NULL, *pre = NULL;
	size_t l = 0, pl = 0;
	struct bundle_keyset *ks = NULL;
	enum bundle_err e;
	int rc = 1;

	if (read_cose(path, &b, &l) || load_keyset(keyfile, &ks))
		goto out;
	e = bundle_keyset_count(ks) == 1 ? bundle_cose_verify(b, l, bundle_keyset_get(ks, 0), NULL, 0)
					 : bundle_cose_verify_keyset(b, l, ks, NULL, 0);
	if (e) {
		agent_log("statement %s does not verify: %s (%s)", path, bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	if (preimage) {
		if (agent_read_file(preimage, BUNDLE_MAX_EVIDENCE, &pre, &pl) != 0) {
			agent_log("failed to read %s: %m", preimage);
			goto out;
		}
		if ((e = bundle_statement_check_preimage(b, l, pre, pl))) {
			agent_log("statement %s does not cover %s: %s (%s)", path, preimage, bundle_strerror(e),
				  bundle_last_cause());
			goto out;
		}
	}
	printf("verified statement %s: signature verifies%s\n", path, preimage ? ", payload is the hash of the preimage" : "");
	rc = 0;
out:
	free(b);
	free(pre);
	bundle_keyset_free(ks);
	return rc;
}

/* Sign FILE as a SCITT hash envelope with a software key (PEM private key). */
static int statement_sign(const char *path, const char *keyfile, const char *iss, const char *sub, const char *ctype,
			  const char *out)
{
	uint8_t *kb = NULL, *pre = NULL, *st = NULL;
	size_t kl = 0, pl = 0, sl = 0;
	struct bundle_key *k = NULL;
	struct bundle_signer s;
	enum bundle_err e;
	int rc = 1;

	if (agent_read_file(keyfile, KEY_MAX, &kb, &kl) != 0) {
		agent_log("failed to read key %s: %m", keyfile);
		goto out;
	}
	e = bundle_key_load(kb, kl, &k);
	OPENSSL_cleanse(kb, kl);
	if (e || (e = bundle_signer_from_key(k, &s))) {
		agent_log("failed to load signing key %s: %s (%s)", keyfile, bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	if (agent_read_file(path, BUNDLE_MAX_EVIDENCE, &pre, &pl) != 0) {
		agent_log("failed to read %s: %m", path);
		goto out;
	}
	if ((e = bundle_statement_sign(&s, iss, sub, ctype, pre, pl, &st, &sl))) {
		agent_log("failed to sign %s: %s (%s)", path, bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	if (agent_write_file(out, st, sl, 0644) != 0) {
		agent_log("failed to write %s: %m", out);
		goto out;
	}
	rc = 0;
out:
	free(kb);
	free(pre);
	free(st);
	bundle_key_free(k);
	return rc;
}

static void statement_usage(FILE *f)
{
	fprintf(f, "usage: sluice statement inspect FILE\n"
		   "       sluice statement verify FILE --key KEY [--preimage FILE]\n"
		   "       sluice statement sign FILE --key PRIVATE.pem --iss ISS --sub SUB [--content-type TYPE] -o OUT\n\n"
		   "inspect  print any COSE_Sign1 (statement, receipt, verdict, transparent statement) as JSON:\n"
		   "         headers by name, the raw protected header, payload size and SHA-256, the RFC 9162\n"
		   "         leaf hash of its log record, and the receipts under label 394.\n"
		   "verify   check the signature with KEY (PEM, DER, COSE_Key, COSE_KeySet, JWK or a CCF trust\n"
		   "         store; a set is searched by kid) and, with --preimage, that the hash-envelope\n"
		   "         payload is the hash of FILE. Exit 0 only if everything holds.\n"
		   "sign     make a SCITT signed statement over FILE with a software key (P-256, P-384 or\n"
		   "         Ed25519 PEM): a hash envelope (payload SHA-256(FILE), 258/259), CWT claims iss\n"
		   "         and sub, kid = the key's RFC 9679 thumbprint, deterministic CBOR. TYPE is the\n"
		   "         preimage content type (default application/vnd.sluice.evidence+cbor). The\n"
		   "         boot flow signs in the TPM instead; this is for artifacts such as reference\n"
		   "         values. OUT \"-\" is stdout.\n");
}

int cmd_statement(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"preimage", required_argument, NULL, 'p'},
		{"iss", required_argument, NULL, 'i'},
		{"sub", required_argument, NULL, 's'},
		{"content-type", required_argument, NULL, 't'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *key = NULL, *pre = NULL, *sub, *iss = NULL, *csub = NULL, *ctype = NULL, *out = NULL;
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		statement_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "k:p:i:s:t:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'p': pre = optarg; break;
		case 'i': iss = optarg; break;
		case 's': csub = optarg; break;
		case 't': ctype = optarg; break;
		case 'o': out = optarg; break;
		case 'h': statement_usage(stdout); return 0;
		default: statement_usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc - 1) {
		statement_usage(stderr);
		return 2;
	}
	if (!strcmp(sub, "inspect"))
		return statement_inspect(argv[optind + 1]);
	if (!strcmp(sub, "verify")) {
		if (!key) {
			agent_log("statement verify: --key is required");
			return 2;
		}
		return statement_verify(argv[optind + 1], key, pre);
	}
	if (!strcmp(sub, "sign")) {
		if (!key || !iss || !csub || !out) {
			agent_log("statement sign: --key, --iss, --sub and -o are required");
			return 2;
		}
		return statement_sign(argv[optind + 1], key, iss, csub, ctype, out);
	}
	statement_usage(stderr);
	return 2;
}

/* ---------------------------------------------------------------------------------------- */
/* sluice receipt verify */

static void receipt_usage(FILE *f)
{
	fprintf(f, "usage: sluice receipt verify --statement FILE [--receipt FILE] (--key KEY | --keyset SET)\n\n"
		   "Verify SCITT receipts for a signed statement: vds 1 (RFC9162_SHA256) and vds 2\n"
		   "(CCF_LEDGER_SHA256). Without --receipt, every receipt inside the transparent statement\n"
		   "(label 394) is checked. KEY is one trusted service key (used whatever the receipt's kid);\n"
		   "SET is a COSE_KeySet, JWK set, CCF trust store JSON or single key, searched by kid.\n"
		   "Prints one line per receipt; exit 0 only when every receipt verifies, 1 otherwise,\n"
		   "2 on usage errors.\n");
}

static int receipt_verify(const char *stmt_path, const char *rcpt_path, const char *key, const char *keyset)
{
	uint8_t *s = NULL, *r = NULL;
	size_t sl = 0, rl = 0, n = 0;
	struct bundle_keyset *ks = NULL;
	struct bundle_bytes rs[BUNDLE_MAX_RECEIPTS];
	enum bundle_err e;
	int rc = 1, bad = 0;

	if (read_cose(stmt_path, &s, &sl) || load_keyset(key ? key : keyset, &ks))
		goto out;
	if (key && bundle_keyset_count(ks) != 1) {
		agent_log("--key %s holds %zu keys; use --keyset", key, bundle_keyset_count(ks));
		goto out;
	}
	if (rcpt_path) {
		if (read_cose(rcpt_path, &r, &rl))
			goto out;
		rs[0].ptr = r;
		rs[0].len = rl;
		n = 1;
	} else if ((e = bundle_transparent_receipts(s, sl, rs, BUNDLE_MAX_RECEIPTS, &n))) {
		agent_log("failed to read receipts from %s: %s (%s)", stmt_path, bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	if (n == 0) {
		agent_log("%s carries no receipt (label 394) and no --receipt was given", stmt_path);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct bundle_receipt_info info;
		memset(&info, 0, sizeof info);
		e = bundle_receipt_verify(rs[i].ptr, rs[i].len, s, sl, key ? bundle_keyset_get(ks, 0) : NULL,
					  key ? NULL : ks, &info);
		if (e) {
			printf("FAILED receipt %zu: %s (%s)\n", i, bundle_strerror(e), bundle_last_cause());
			bad++;
			continue;
		}
		char root[65];
		agent_hex(info.root, 32, root);
		if (info.vds == 1)
			printf("verified receipt %zu: vds 1 (RFC9162_SHA256) %s, leaf %llu of %llu, root %s\n", i,
			       alg_name(info.alg), (unsigned long long)info.leaf_index, (unsigned long long)info.tree_size,
			       root);
		else
			printf("verified receipt %zu: vds 2 (CCF_LEDGER_SHA256) %s, %zu path steps, root %s\n", i,
			       alg_name(info.alg), info.path_len, root);
	}
	rc = bad ? 1 : 0;
out:
	free(s);
	free(r);
	bundle_keyset_free(ks);
	return rc;
}

int cmd_receipt(int argc, char **argv)
{
	static const struct option opts[] = {
		{"statement", required_argument, NULL, 's'},
		{"receipt", required_argument, NULL, 'r'},
		{"key", required_argument, NULL, 'k'},
		{"keyset", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *st = NULL, *rc = NULL, *key = NULL, *ks = NULL;
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		receipt_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "verify")) {
		receipt_usage(stderr);
		return 2;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "s:r:k:K:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': st = optarg; break;
		case 'r': rc = optarg; break;
		case 'k': key = optarg; break;
		case 'K': ks = optarg; break;
		case 'h': receipt_usage(stdout); return 0;
		default: receipt_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !st || (!key == !ks)) {
		receipt_usage(stderr);
		return 2;
	}
	return receipt_verify(st, rc, key, ks);
}

/* ---------------------------------------------------------------------------------------- */
/* sluice audit */

struct audit {
	int failed, checks;
	int json;
	json_t *log;
};

static void note(struct audit *a, int ok, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void note(struct audit *a, int ok, const char *check, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	a->checks++;
	if (!ok)
		a->failed++;
	if (a->json) {
		json_t *o = json_object();
		json_object_set_new(o, "check", json_string(check));
		json_object_set_new(o, "ok", json_boolean(ok));
		json_object_set_new(o, "detail", json_string(msg));
		json_array_append_new(a->log, o);
	} else {
		printf("%-4s %s: %s\n", ok ? "pass" : "FAIL", check, msg);
	}
}

static void audit_usage(FILE *f)
{
	fprintf(f, "usage: sluice audit BUNDLE --ts-key KEY --verifier-key KEY [--require-affirming] [--json]\n\n"
		   "Re-verify an evidence bundle (the bundle.tar that sluice attest/boot writes to /run/sluice)\n"
		   "offline, and print every check:\n"
		   "  bundle        tar is safe and every entry matches index.cbor\n"
		   "  evidence      evidence.cbor decodes\n"
		   "  statement     statement.cose is a SCITT signed statement whose hash envelope covers\n"
		   "                evidence.cbor, signed by the statement key carried in the evidence\n"
		   "  certify       the statement key is certified by the AK (TPM2_Certify, nonce bound)\n"
		   "  quote         the TPM quote: AK signature, nonce, PCR selection and digest of the PCR\n"
		   "                values in the evidence\n"
		   "  eventlog      the firmware and sluice event logs replay onto those PCR values\n"
		   "  receipt       receipt.cose proves the statement is in the transparency log (--ts-key)\n"
		   "  verdict       verdict.cose is signed by the verifier (--verifier-key), binds this\n"
		   "                statement and nonce; its status and validity window are reported\n"
		   "  verdict-receipt  verdict-statement.cose (the verifier's signed statement of the\n"
		   "                verdict, in the bundle or beside it) covers verdict.cose, and\n"
		   "                verdict-receipt.cose proves it is in the log\n"
		   "  manifest      manifest.cbor (if present) has the root digest in the evidence\n"
		   "Keys: PEM, DER, COSE_Key, COSE_KeySet, JWK (set) or CCF trust store JSON.\n"
		   "Exit 0 when every check passes (and, with --require-affirming, the verdict is\n"
		   "affirming); 1 otherwise; 2 on usage errors.\n");
}

/* The firmware TCG log and the sluice log replay onto the PCR values in the evidence. */
static void audit_logs(struct audit *a, const struct bundle_evidence *ev, const struct quote_pcr_values *v)
{
	struct quote_eventlog *tcg = NULL;
	struct quote_slog *slog = NULL;
	struct quote_diag diag;
	enum quote_err qe = QUOTE_OK;

	memset(&diag, 0, sizeof diag);
	if (ev->fw_eventlog.len && (qe = quote_eventlog_parse(ev->fw_eventlog.ptr, ev->fw_eventlog.len, &tcg, &diag)) != QUOTE_OK) {
		note(a, 0, "eventlog", "firmware event log: %s: %s", quote_strerror(qe), diag.detail);
		goto out;
	}
	if (ev->sluice_eventlog.len &&
	    (qe = quote_slog_parse(ev->sluice_eventlog.ptr, ev->sluice_eventlog.len, &slog, &diag)) != QUOTE_OK) {
		note(a, 0, "eventlog", "sluice event log: %s: %s", quote_strerror(qe), diag.detail);
		goto out;
	}
	qe = quote_replay_check(tcg, slog, v, &diag);
	if (qe == QUOTE_OK)
		note(a, 1, "eventlog", "%zu firmware and %zu sluice events replay onto the quoted PCRs",
		     tcg ? quote_eventlog_count(tcg) : 0, slog ? quote_slog_count(slog) : 0);
	else
		note(a, 0, "eventlog", "%s: %s", quote_strerror(qe), diag.detail);
out:
	quote_eventlog_free(tcg);
	quote_slog_free(slog);
}

static int audit_quote(struct audit *a, const struct bundle_evidence *ev)
{
	struct quote_attest_info qi;
	struct quote_diag diag;
	struct quote_pcr_values *v = NULL;
	enum quote_err qe;

	memset(&diag, 0, sizeof diag);
	qe = quote_certify_verify(ev->ak_public.ptr, ev->ak_public.len, ev->stmt_key_certify.ptr, ev->stmt_key_certify.len,
				  ev->stmt_key_certify_sig.ptr, ev->stmt_key_certify_sig.len, ev->stmt_key_public.ptr,
				  ev->stmt_key_public.len, ev->nonce.ptr, ev->nonce.len, NULL, &diag);
	note(a, qe == QUOTE_OK, "certify", "%s%s%s", qe == QUOTE_OK ? "statement key certified by the AK" : quote_strerror(qe),
	     diag.detail[0] ? ": " : "", diag.detail);
	memset(&diag, 0, sizeof diag);
	if ((qe = quote_attest_parse(ev->quote.ptr, ev->quote.len, &qi, &diag)) != QUOTE_OK) {
		note(a, 0, "quote", "%s: %s", quote_strerror(qe), diag.detail);
		return 0;
	}
	if (!(v = calloc(1, sizeof *v))) {
		note(a, 0, "quote", "out of memory");
		return 0;
	}
	quote_pcr_values_init(v, &qi.pcr_sel);
	for (size_t i = 0; i < ev->n_pcrs; i++)
		if (quote_pcr_value_set(v, ev->pcrs[i].alg, ev->pcrs[i].index, ev->pcrs[i].value.ptr, ev->pcrs[i].value.len) !=
		    QUOTE_OK) {
			note(a, 0, "quote", "PCR %u (alg 0x%04x) in the evidence is unusable", ev->pcrs[i].index, ev->pcrs[i].alg);
			free(v);
			return 0;
		}
	memset(&diag, 0, sizeof diag);
	qe = quote_verify(ev->ak_public.ptr, ev->ak_public.len, ev->quote.ptr, ev->quote.len, ev->quote_sig.ptr,
			  ev->quote_sig.len, ev->nonce.ptr, ev->nonce.len, v, &qi, &diag);
	note(a, qe == QUOTE_OK, "quote", "%s%s%s", qe == QUOTE_OK ? "AK signature, nonce and PCR digest verify" : quote_strerror(qe),
	     diag.detail[0] ? ": " : "", diag.detail);
	audit_logs(a, ev, v);
	free(v);
	return qe == QUOTE_OK;
}

static int audit_run(const char *path, const char *ts_path, const char *ver_path, int require_affirming, int json)
{
	struct audit a = {.json = json, .log = json ? json_array() : NULL};
	uint8_t *tar = NULL, stmt_hash[32];
	size_t tl = 0;
	struct bundle_archive *ar = NULL;
	struct bundle_evidence *ev = NULL;
	struct bundle_ear *ear = NULL;
	struct bundle_keyset *ts = NULL, *vk = NULL;
	struct bundle_bytes evb = {0}, st = {0}, rc = {0}, vd = {0}, vr = {0}, mf = {0}, vs = {0};
	uint8_t *vs_file = NULL;
	size_t vs_len = 0;
	enum bundle_err e;
	int status = -1;

	if (load_keyset(ts_path, &ts) || load_keyset(ver_path, &vk)) {
		bundle_keyset_free(ts);
		json_decref(a.log);
		return 2;
	}
	if (agent_read_file(path, BUNDLE_MAX_BUNDLE, &tar, &tl) != 0) {
		agent_log("failed to read bundle %s: %m", path);
		goto out;
	}
	if ((e = bundle_archive_read(tar, tl, &ar))) {
		note(&a, 0, "bundle", "%s (%s)", bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	note(&a, 1, "bundle", "%zu entries, index matches", bundle_archive_count(ar));
	bundle_archive_get(ar, BUNDLE_F_EVIDENCE, &evb);
	bundle_archive_get(ar, BUNDLE_F_STATEMENT, &st);
	bundle_archive_get(ar, BUNDLE_F_RECEIPT, &rc);
	bundle_archive_get(ar, BUNDLE_F_VERDICT, &vd);
	bundle_archive_get(ar, BUNDLE_F_VERDICT_RECEIPT, &vr);
	bundle_archive_get(ar, BUNDLE_F_MANIFEST, &mf);

	/* evidence + statement */
	if (!evb.ptr || (e = bundle_evidence_decode(evb.ptr, evb.len, &ev))) {
		note(&a, 0, "evidence", "%s", evb.ptr ? bundle_last_cause() : "no " BUNDLE_F_EVIDENCE);
	} else {
		char d[129];
		agent_hex(ev->rootfs_digest.ptr, ev->rootfs_digest.len > 64 ? 64 : ev->rootfs_digest.len, d);
		note(&a, 1, "evidence", "host %s, %zu PCR values, rootfs %s:%s (%llu entries)", ev->host_id, ev->n_pcrs,
		     ev->rootfs_alg, d, (unsigned long long)ev->rootfs_entries);
	}
	if (!st.ptr) {
		note(&a, 0, "statement", "no %s", BUNDLE_F_STATEMENT);
	} else {
		EVP_Digest(st.ptr, st.len, stmt_hash, NULL, EVP_sha256(), NULL);
		if ((e = bundle_statement_check(st.ptr, st.len, NULL)) ||
		    (evb.ptr && (e = bundle_statement_check_preimage(st.ptr, st.len, evb.ptr, evb.len)))) {
			note(&a, 0, "statement", "%s (%s)", bundle_strerror(e), bundle_last_cause());
		} else if (ev && ev->stmt_key_public.ptr) {
			uint8_t *der = NULL;
			size_t dl = 0;
			struct bundle_key *sk = NULL;
			if (quote_public_to_der(ev->stmt_key_public.ptr, ev->stmt_key_public.len, &der, &dl) != QUOTE_OK ||
			    bundle_key_load(der, dl, &sk) != BUNDLE_OK)
				note(&a, 0, "statement", "statement key in the evidence is unusable");
			else if ((e = bundle_cose_verify(st.ptr, st.len, sk, NULL, 0)))
				note(&a, 0, "statement", "signature: %s (%s)", bundle_strerror(e), bundle_last_cause());
			else
				note(&a, 1, "statement", "hash envelope covers the evidence; signed by the TPM statement key");
			free(der);
			bundle_key_free(sk);
		} else {
			note(&a, 0, "statement", "evidence carries no statement key to check the signature");
		}
	}
	if (ev)
		audit_quote(&a, ev);

	/* receipts and verdict */
	if (!rc.ptr || !st.ptr)
		note(&a, 0, "receipt", "no %s", rc.ptr ? BUNDLE_F_STATEMENT : BUNDLE_F_RECEIPT);
	else if ((e = bundle_receipt_verify(rc.ptr, rc.len, st.ptr, st.len, NULL, ts, NULL)))
		note(&a, 0, "receipt", "%s (%s)", bundle_strerror(e), bundle_last_cause());
	else
		note(&a, 1, "receipt", "statement is in the transparency log");
	if (!vd.ptr) {
		note(&a, 0, "verdict", "no %s", BUNDLE_F_VERDICT);
	} else if ((e = bundle_ear_verify(vd.ptr, vd.len, NULL, vk, &ear))) {
		note(&a, 0, "verdict", "%s (%s)", bundle_strerror(e), bundle_last_cause());
	} else if ((e = bundle_ear_validate(ear, ear->iat, 0, ev ? ev->nonce.ptr : NULL, ev ? ev->nonce.len : 0,
					    st.ptr ? stmt_hash : NULL))) {
		note(&a, 0, "verdict", "%s (%s)", bundle_strerror(e), bundle_last_cause());
	} else {
		const char *sn = ear->status == BUNDLE_EAR_AFFIRMING ? "affirming"
				 : ear->status == BUNDLE_EAR_WARNING ? "warning"
				 : ear->status == BUNDLE_EAR_CONTRAINDICATED ? "contraindicated" : "none";
		status = ear->status;
		note(&a, 1, "verdict", "%s for host %s, policy %s, valid %lld..%lld%s, %zu tools, %zu reasons%s%s%s", sn,
		     ear->host_id ? ear->host_id : "?", ear->policy_id ? ear->policy_id : "?", (long long)ear->iat,
		     (long long)ear->exp, (int64_t)time(NULL) >= ear->exp ? " (expired now)" : "", ear->n_tools,
		     ear->n_reasons, ear->n_reasons ? " (first: " : "", ear->n_reasons ? ear->reasons[0].type : "",
		     ear->n_reasons ? ")" : "");
	}
	/* The verifier registers a statement of the verdict (verdict-statement.cose, in the bundle
	 * or, for bundles written without it, beside the bundle file); the receipt is for that
	 * statement. Without one, the receipt must be for the verdict itself. */
	bundle_archive_get(ar, BUNDLE_F_VERDICT_STATEMENT, &vs);
	if (!vs.ptr && vd.ptr) {
		char side[4096];
		const char *slash = strrchr(path, '/');
		int dl = slash ? (int)(slash - path) : 1;
		snprintf(side, sizeof side, "%.*s/%s", dl, slash ? path : ".", BUNDLE_F_VERDICT_STATEMENT);
		if (agent_read_file(side, BUNDLE_MAX_COSE, &vs_file, &vs_len) == 0) {
			vs.ptr = vs_file;
			vs.len = vs_len;
		}
	}
	if (!vr.ptr || !vd.ptr)
		note(&a, 0, "verdict-receipt", "no %s", vr.ptr ? BUNDLE_F_VERDICT : BUNDLE_F_VERDICT_RECEIPT);
	else if (vs.ptr && (e = bundle_cose_verify_keyset(vs.ptr, vs.len, vk, NULL, 0)))
		note(&a, 0, "verdict-receipt", "verdict statement not signed by the verifier: %s (%s)", bundle_strerror(e),
		     bundle_last_cause());
	else if (vs.ptr && (e = bundle_statement_check_preimage(vs.ptr, vs.len, vd.ptr, vd.len)))
		note(&a, 0, "verdict-receipt", "verdict statement does not cover %s: %s (%s)", BUNDLE_F_VERDICT,
		     bundle_strerror(e), bundle_last_cause());
	else if ((e = bundle_receipt_verify(vr.ptr, vr.len, vs.ptr ? vs.ptr : vd.ptr, vs.ptr ? vs.len : vd.len, NULL, ts,
					    NULL)))
		note(&a, 0, "verdict-receipt", "%s (%s)", bundle_strerror(e), bundle_last_cause());
	else
		note(&a, 1, "verdict-receipt", "%s is in the transparency log%s",
		     vs.ptr ? "the verifier's statement of the verdict" : "the verdict",
		     vs_file ? " (statement read from beside the bundle)" : "");
	if (mf.ptr) {
		struct measure_manifest *m = NULL;
		struct measure_error me;
		memset(&me, 0, sizeof me);
		if (measure_manifest_decode(mf.ptr, mf.len, &m, &me) != MEASURE_OK)
			note(&a, 0, "manifest", "%s", me.detail);
		else if (!ev || ev->rootfs_digest.len != 32 || memcmp(measure_manifest_digest(m), ev->rootfs_digest.ptr, 32))
			note(&a, 0, "manifest", "manifest root differs from the evidence's rootfs digest");
		else
			note(&a, 1, "manifest", "%zu entries, root equals the evidence's rootfs digest", measure_manifest_entries(m));
		measure_manifest_free(m);
	}
	if (require_affirming && status != BUNDLE_EAR_AFFIRMING)
		note(&a, 0, "affirming", "verdict is not affirming");
out:
	if (a.json) {
		json_t *o = json_object();
		json_object_set_new(o, "bundle", json_string(path));
		json_object_set_new(o, "ok", json_boolean(a.failed == 0 && a.checks > 0));
		json_object_set_new(o, "checks", a.log);
		print_json(o);
		json_decref(o);
	} else {
		printf("%s: %d checks, %d failed\n", path, a.checks, a.failed);
	}
	free(tar);
	free(vs_file);
	bundle_archive_free(ar);
	bundle_evidence_free(ev);
	bundle_ear_free(ear);
	bundle_keyset_free(ts);
	bundle_keyset_free(vk);
	return a.failed == 0 && a.checks > 0 ? 0 : 1;
}

int cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ts-key", required_argument, NULL, 't'},
		{"verifier-key", required_argument, NULL, 'v'},
		{"require-affirming", no_argument, NULL, 'A'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *ts = NULL, *vk = NULL;
	int c, aff = 0, json = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:v:Ajh", opts, NULL)) != -1) {
		switch (c) {
		case 't': ts = optarg; break;
		case 'v': vk = optarg; break;
		case 'A': aff = 1; break;
		case 'j': json = 1; break;
		case 'h': audit_usage(stdout); return 0;
		default: audit_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !ts || !vk) {
		audit_usage(stderr);
		return 2;
	}
	return audit_run(argv[optind], ts, vk, aff, json);
}
