/* Test helper for the verifier's integration tests: runs the agent's attestation steps
 * (agent/attest.c) against real services with one tampering step in between, and prints what
 * the verifier answered:
 *
 *   verifier_forge keys TCTI OUTDIR           ensure AK + statement key; OUTDIR/statement-key.pem
 *   verifier_forge measure DIR                print the rootfs digest (sha256:HEX)
 *   verifier_forge tcglog OUT                 write a TCG PC Client (crypto-agile) event log OUT,
 *                                             OUT.altered (one digest changed) and OUT.retyped
 *                                             (one event's type changed); print the PCR extends
 *                                             ("PCR:sha1=HEX,sha256=HEX") the good log implies
 *   verifier_forge enroll MODE --tcti T --verifier URL --host-id H [--tcti2 T2]
 *                                             enrolment variants (see do_enroll)
 *   verifier_forge attest MODE [options]      one appraisal; prints
 *                                             "status=S reason=R credential=yes|no"; a request
 *                                             the verifier refuses with a problem (4xx) prints
 *                                             "status=refused-CODE reason=TITLE credential=no"
 *
 * MODE: good, wrong-nonce, replay, pcr-altered, foreign-stmt-key, untrusted-receipt,
 *       other-receipt, release-other-tpm, expired (sleeps --sleep S after the challenge),
 *       quote-sig-flip, certify-sig-flip, stmt-other-evidence, pcr-selection (quotes
 *       sha256:0,15), sealed (extends a "released" record first), nonce-other-host (--host2 H).
 * options: --tcti T --host-id H --verifier URL --verifier-key F --ts URL --ts-key F --root DIR
 *          --out DIR [--eventlog F] [--tcti2 T] [--ts2 URL] [--foreign-key PEM] [--sleep S]
 *          [--save-request F] (the /v1/attest JSON body, to replay it with curl)
 *
 * Not product code: it exists so each negative case reaches exactly the step it targets. */
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "bundle/bundle.h"
#include "measure/measure.h"
#include "quote/quote.h"

#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int die(const char *why)
{
	fprintf(stderr, "verifier_forge: %s\n", why);
	return 1;
}

static int do_keys(const char *tcti, const char *out)
{
	struct quote_cfg qc = {.tcti = tcti};
	struct quote_ctx *q = NULL;
	struct quote_key ak, sk;
	char *pem = NULL, path[4096];
	int rc = 1;
	if (quote_ctx_new(&qc, &q) != QUOTE_OK)
		return die("cannot open the TPM");
	if (quote_ak_ensure(q, &ak, NULL) != QUOTE_OK || quote_sk_ensure(q, &sk, NULL) != QUOTE_OK) {
		fprintf(stderr, "verifier_forge: keys: %s\n", quote_ctx_cause(q));
		goto out;
	}
	if (quote_public_to_pem(sk.pub, sk.pub_len, &pem) != QUOTE_OK)
		goto out;
	snprintf(path, sizeof path, "%s/statement-key.pem", out);
	if (agent_write_file(path, pem, strlen(pem), 0644) == 0)
		rc = 0;
out:
	free(pem);
	quote_ctx_free(q);
	return rc;
}

static int do_measure(const char *dir)
{
	struct measure_manifest *m = NULL;
	struct measure_error e;
	char hex[65];
	if (measure_tree(dir, NULL, &m, &e) != MEASURE_OK)
		return die("measure failed");
	agent_hex(measure_manifest_digest(m), 32, hex);
	printf("sha256:%s\n", hex);
	measure_manifest_free(m);
	return 0;
}

/* ---- a synthetic TCG event log ---- */
struct buf {
	uint8_t p[8192];
	size_t n;
};
static void put(struct buf *b, const void *d, size_t n)
{
	memcpy(b->p + b->n, d, n);
	b->n += n;
}
static void u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(b, x, 4);
}
static void u16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	put(b, x, 2);
}

struct ev {
	uint32_t pcr, type;
	const char *data;
	size_t len;
};

static void event2(struct buf *b, uint32_t pcr, uint32_t type, const void *data, size_t len, int flip)
{
	uint8_t s1[20], s256[32];
	unsigned n;
	EVP_Digest(data, len, s1, &n, EVP_sha1(), NULL);
	EVP_Digest(data, len, s256, &n, EVP_sha256(), NULL);
	if (flip)
		s256[0] ^= 1, s1[0] ^= 1;
	u32(b, pcr);
	u32(b, type);
	u32(b, 2);
	u16(b, 0x0004);
	put(b, s1, 20);
	u16(b, 0x000b);
	put(b, s256, 32);
	u32(b, (uint32_t)len);
	put(b, data, len);
}

static int do_tcglog(const char *out)
{
	static const uint8_t sep[4] = {0, 0, 0, 0};
	static const struct ev evs[] = {
		{0, 0x00000008 /* EV_S_CRTM_VERSION */, "1.0\0", 4},
		{0, 0x00000001 /* EV_POST_CODE */, "POST CODE", 9},
		{0, 0x00000004, (const char *)sep, 4}, {1, 0x00000004, (const char *)sep, 4},
		{2, 0x00000004, (const char *)sep, 4}, {3, 0x00000004, (const char *)sep, 4},
		{4, 0x00000004, (const char *)sep, 4}, {5, 0x00000004, (const char *)sep, 4},
		{6, 0x00000004, (const char *)sep, 4}, {7, 0x00000004, (const char *)sep, 4},
	};
	const size_t n_ev = sizeof evs / sizeof evs[0];
	char path[4096];
	for (int variant = 0; variant < 3; variant++) {
		struct buf b = {.n = 0};
		uint8_t zero[20] = {0};
		/* Spec ID event, SHA-1 log format. */
		struct buf spec = {.n = 0};
		put(&spec, "Spec ID Event03", 16);
		u32(&spec, 0);         /* platformClass */
		put(&spec, "\0\2\2\2", 4); /* minor 0, major 2, errata 2, uintnSize 2 */
		u32(&spec, 2);
		u16(&spec, 0x0004);
		u16(&spec, 20);
		u16(&spec, 0x000b);
		u16(&spec, 32);
		put(&spec, "\0", 1);   /* vendorInfoSize */
		u32(&b, 0);
		u32(&b, 0x00000003);   /* EV_NO_ACTION */
		put(&b, zero, 20);
		u32(&b, (uint32_t)spec.n);
		put(&b, spec.p, spec.n);
		for (size_t i = 0; i < n_ev; i++) {
			uint32_t type = evs[i].type;
			/* variant 2: the separator of PCR 0 (event 3 counting the Spec ID header) is retyped
			 * into an action event, whose digest the type does not cover. */
			if (variant == 2 && i == 2)
				type = 0x00000005; /* EV_ACTION */
			event2(&b, evs[i].pcr, type, evs[i].data, evs[i].len, variant == 1 && i == 1);
		}
		snprintf(path, sizeof path, "%s%s", out, variant == 0 ? "" : variant == 1 ? ".altered" : ".retyped");
		if (agent_write_file(path, b.p, b.n, 0644) != 0)
			return die("cannot write the log");
	}
	for (size_t i = 0; i < n_ev; i++) {
		uint8_t s1[20], s256[32];
		char h1[41], h256[65];
		unsigned n;
		EVP_Digest(evs[i].data, evs[i].len, s1, &n, EVP_sha1(), NULL);
		EVP_Digest(evs[i].data, evs[i].len, s256, &n, EVP_sha256(), NULL);
		agent_hex(s1, 20, h1);
		agent_hex(s256, 32, h256);
		printf("%u:sha1=%s,sha256=%s\n", evs[i].pcr, h1, h256);
	}
	return 0;
}

/* ---- appraisal with tampering ---- */

static void report(struct agent_attest_state *s, const char *mode)
{
	json_t *ans = agent_attest_answer(s);
	const char *st = json_string_value(json_object_get(ans, "status"));
	const char *reason = json_string_value(json_object_get(json_array_get(json_object_get(ans, "reasons"), 0), "type"));
	const char *vb = json_string_value(json_object_get(ans, "verdict"));
	uint8_t *v = NULL;
	size_t vlen = 0;
	struct bundle_cose c;
	struct bundle_ear *ear = NULL;
	int cred = 0;
	if (vb && agent_unb64(vb, BUNDLE_MAX_COSE, &v, &vlen) == 0 && bundle_cose_parse(v, vlen, &c) == BUNDLE_OK &&
	    c.payload.ptr && bundle_ear_decode(c.payload.ptr, c.payload.len, &ear) == BUNDLE_OK)
		cred = ear->credential.len > 0;
	printf("mode=%s status=%s reason=%s credential=%s\n", mode, st ? st : "none", reason ? reason : "none",
	       cred ? "yes" : "no");
	bundle_ear_free(ear);
	free(v);
}

static int raw_register(const char *ts, const uint8_t *stmt, size_t len, uint8_t **ret, size_t *ret_len)
{
	struct agent_http_opts o = {.timeout = 10};
	struct agent_http_resp r;
	char url[1024], err[512];
	snprintf(url, sizeof url, "%s/entries", ts);
	if (agent_http(&o, "POST", url, "application/cose", stmt, len, "application/cose", &r, err, sizeof err))
		return die(err);
	if (r.status != 201) {
		fprintf(stderr, "verifier_forge: %s: HTTP %ld\n", url, r.status);
		agent_http_resp_clear(&r);
		return 1;
	}
	*ret = r.body;
	*ret_len = r.len;
	return 0;
}

static int do_attest(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tcti", required_argument, NULL, 't'},        {"host-id", required_argument, NULL, 'H'},
		{"verifier", required_argument, NULL, 'v'},    {"verifier-key", required_argument, NULL, 'V'},
		{"ts", required_argument, NULL, 's'},          {"ts-key", required_argument, NULL, 'S'},
		{"root", required_argument, NULL, 'r'},        {"out", required_argument, NULL, 'o'},
		{"eventlog", required_argument, NULL, 'e'},    {"tcti2", required_argument, NULL, '2'},
		{"ts2", required_argument, NULL, 'T'},         {"foreign-key", required_argument, NULL, 'F'},
		{"sleep", required_argument, NULL, 'z'},       {"host2", required_argument, NULL, 'h'},
		{"save-request", required_argument, NULL, 'R'}, {NULL, 0, NULL, 0},
	};
	struct agent_attest_cfg cfg = {.budget = 30};
	const char *mode = argv[1], *tcti2 = NULL, *ts2 = NULL, *foreign = NULL, *host2 = NULL, *save = NULL;
	struct agent_attest_state *s = NULL;
	char why[1024] = "";
	double sleep_s = 0;
	int c, rc = 1;
	size_t len;
	const uint8_t *p;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': cfg.tcti = optarg; break;
		case 'H': cfg.host_id = optarg; break;
		case 'v': cfg.verifier_url = optarg; break;
		case 'V': cfg.verifier_key = optarg; break;
		case 's': cfg.ts_url = optarg; break;
		case 'S': cfg.ts_key = optarg; break;
		case 'r': cfg.root = optarg; break;
		case 'o': cfg.out_dir = optarg; cfg.cred_dir = optarg; break;
		case 'e': cfg.eventlog = optarg; break;
		case '2': tcti2 = optarg; break;
		case 'T': ts2 = optarg; break;
		case 'F': foreign = optarg; break;
		case 'z': sleep_s = strtod(optarg, NULL); break;
		case 'h': host2 = optarg; break;
		case 'R': save = optarg; break;
		default: return 2;
		}
	}
	if (!cfg.eventlog)
		cfg.eventlog = "/nonexistent/eventlog";
	if (agent_attest_state_new(&cfg, &s, why, sizeof why) || agent_attest_measure(s, why, sizeof why) ||
	    agent_attest_challenge(s, why, sizeof why))
		goto out;
	if (strcmp(mode, "pcr-selection") == 0 && agent_attest_set_pcrs(s, "sha256:0,15"))
		goto out;
	if (strcmp(mode, "sealed") == 0 &&
	    agent_attest_extend(s, QUOTE_SLOG_RELEASED, (const uint8_t *)"released", 8, why, sizeof why))
		goto out;
	if (strcmp(mode, "nonce-other-host") == 0) {
		/* A nonce the verifier issued to another host (--host2). */
		struct agent_http_opts o = {.timeout = 10};
		json_t *req = json_pack("{s:s}", "host_id", host2 ? host2 : ""), *ans = NULL;
		char err[512];
		uint8_t n[64];
		long nl;
		if (agent_vc_post(&o, cfg.verifier_url, "/v1/challenge", req, &ans, NULL, 0, err, sizeof err) != 200 ||
		    (nl = agent_unhex(json_string_value(json_object_get(ans, "nonce")), n, sizeof n)) <= 0) {
			json_decref(req);
			json_decref(ans);
			snprintf(why, sizeof why, "challenge for %s: %s", host2 ? host2 : "(none)", err);
			goto out;
		}
		agent_attest_set(s, AGENT_PART_NONCE, n, (size_t)nl);
		json_decref(req);
		json_decref(ans);
	}
	if (strcmp(mode, "wrong-nonce") == 0) {
		uint8_t n[32];
		RAND_bytes(n, sizeof n);
		agent_attest_set(s, AGENT_PART_NONCE, n, sizeof n);
	}
	if (sleep_s > 0)
		usleep((useconds_t)(sleep_s * 1e6));
	if (agent_attest_evidence(s, why, sizeof why))
		goto out;
	if (strcmp(mode, "pcr-altered") == 0) {
		/* Change one PCR value in the evidence (the quote still covers the real ones) and sign
		 * the altered evidence again: only the PCR digest check can catch it. */
		struct bundle_evidence *ev = NULL;
		uint8_t *enc = NULL, val[32];
		size_t enc_len = 0;
		struct bundle_pcr pcrs[BUNDLE_MAX_PCRS];
		p = agent_attest_get(s, AGENT_PART_EVIDENCE, &len);
		if (bundle_evidence_decode(p, len, &ev) != BUNDLE_OK || ev->n_pcrs == 0)
			goto out;
		memcpy(pcrs, ev->pcrs, ev->n_pcrs * sizeof pcrs[0]);
		memcpy(val, pcrs[ev->n_pcrs - 1].value.ptr, 32);
		val[31] ^= 0x5a;
		pcrs[ev->n_pcrs - 1].value.ptr = val;
		ev->pcrs = pcrs;
		if (bundle_evidence_encode(ev, &enc, &enc_len) != BUNDLE_OK)
			goto out;
		agent_attest_set(s, AGENT_PART_EVIDENCE, enc, enc_len);
		free(enc);
		bundle_evidence_free(ev);
		if (agent_attest_statement(s, why, sizeof why))
			goto out;
	}
	if (strcmp(mode, "quote-sig-flip") == 0 || strcmp(mode, "certify-sig-flip") == 0 ||
	    strcmp(mode, "stmt-other-evidence") == 0) {
		/* Flip one byte of the quote's or the certification's signature (and sign the altered
		 * evidence again), or sign a statement over other evidence than the one presented. */
		struct bundle_evidence *ev = NULL;
		uint8_t *enc = NULL, *orig = NULL, sig[QUOTE_SIG_MAX];
		size_t enc_len = 0, orig_len;
		int quote_sig = strcmp(mode, "quote-sig-flip") == 0;
		p = agent_attest_get(s, AGENT_PART_EVIDENCE, &len);
		orig_len = len;
		orig = malloc(len);
		memcpy(orig, p, len);
		if (bundle_evidence_decode(p, len, &ev) != BUNDLE_OK)
			goto out;
		if (strcmp(mode, "stmt-other-evidence") == 0) {
			ev->time += 1;
		} else {
			struct bundle_bytes *b = quote_sig ? &ev->quote_sig : &ev->stmt_key_certify_sig;
			memcpy(sig, b->ptr, b->len);
			sig[b->len - 3] ^= 0x01;
			b->ptr = sig;
		}
		if (bundle_evidence_encode(ev, &enc, &enc_len) != BUNDLE_OK)
			goto out;
		agent_attest_set(s, AGENT_PART_EVIDENCE, enc, enc_len);
		bundle_evidence_free(ev);
		free(enc);
		if (agent_attest_statement(s, why, sizeof why))
			goto out;
		if (strcmp(mode, "stmt-other-evidence") == 0)
			agent_attest_set(s, AGENT_PART_EVIDENCE, orig, orig_len);
		free(orig);
	}
	if (strcmp(mode, "foreign-stmt-key") == 0) {
		/* A statement over the same evidence, signed by a software key the AK never certified. */
		uint8_t *pem = NULL, *stmt = NULL;
		size_t pem_len = 0, stmt_len = 0;
		struct bundle_key *k = NULL;
		struct bundle_signer sg;
		if (!foreign || agent_read_file(foreign, 65536, &pem, &pem_len) || bundle_key_load(pem, pem_len, &k) ||
		    bundle_signer_from_key(k, &sg))
			goto out;
		p = agent_attest_get(s, AGENT_PART_EVIDENCE, &len);
		if (bundle_statement_sign(&sg, "urn:sluice:host:forger", cfg.host_id, BUNDLE_MT_EVIDENCE, p, len, &stmt,
					  &stmt_len) != BUNDLE_OK)
			goto out;
		agent_attest_set(s, AGENT_PART_STATEMENT, stmt, stmt_len);
		free(stmt);
		free(pem);
		bundle_key_free(k);
	}
	if (strcmp(mode, "untrusted-receipt") == 0) {
		uint8_t *r = NULL;
		size_t rl = 0;
		p = agent_attest_get(s, AGENT_PART_STATEMENT, &len);
		if (!ts2 || raw_register(ts2, p, len, &r, &rl))
			goto out;
		agent_attest_set(s, AGENT_PART_RECEIPT, r, rl);
		free(r);
	} else if (strcmp(mode, "other-receipt") == 0) {
		/* Register a second statement over the same evidence (ECDSA: different bytes) and
		 * present its receipt with the first statement. */
		uint8_t *first = NULL, *r = NULL;
		size_t fl, rl = 0;
		p = agent_attest_get(s, AGENT_PART_STATEMENT, &fl);
		first = malloc(fl);
		memcpy(first, p, fl);
		if (agent_attest_statement(s, why, sizeof why) || agent_attest_register(s, why, sizeof why))
			goto out;
		p = agent_attest_get(s, AGENT_PART_RECEIPT, &rl);
		r = malloc(rl);
		memcpy(r, p, rl);
		agent_attest_set(s, AGENT_PART_STATEMENT, first, fl);
		agent_attest_set(s, AGENT_PART_RECEIPT, r, rl);
		free(first);
		free(r);
	} else if (agent_attest_register(s, why, sizeof why)) {
		goto out;
	}
	if (save) {
		size_t l1, l2, l3;
		const uint8_t *p1 = agent_attest_get(s, AGENT_PART_EVIDENCE, &l1);
		const uint8_t *p2 = agent_attest_get(s, AGENT_PART_STATEMENT, &l2);
		const uint8_t *p3 = agent_attest_get(s, AGENT_PART_RECEIPT, &l3);
		char *b1 = agent_b64(p1, l1), *b2 = agent_b64(p2, l2), *b3 = agent_b64(p3, l3), *text = NULL;
		json_t *req = json_pack("{s:s, s:s, s:s, s:s}", "host_id", cfg.host_id, "evidence", b1 ? b1 : "",
					"statement", b2 ? b2 : "", "receipt", b3 ? b3 : "");
		if (req && (text = json_dumps(req, JSON_COMPACT)))
			agent_write_file(save, text, strlen(text), 0644);
		free(text);
		json_decref(req);
		free(b1);
		free(b2);
		free(b3);
	}
	if (agent_attest_appraise(s, why, sizeof why) == 0 && strcmp(mode, "replay") == 0) {
		/* The same evidence, statement and receipt a second time. */
		if (agent_attest_appraise(s, why, sizeof why) == 0)
			fprintf(stderr, "verifier_forge: replay was accepted\n");
	}
	if (!agent_attest_answer(s)) {
		/* The agent's message for a problem answer: "appraise: HTTP 403: TITLE: DETAIL". */
		const char *h = strstr(why, "HTTP 4");
		char title[128] = "none";
		int code = 0;
		fprintf(stderr, "verifier_forge: %s\n", why);
		if (h && sscanf(h, "HTTP %d: %127[^:]", &code, title) == 2)
			printf("mode=%s status=refused-%d reason=%s credential=no\n", mode, code, title);
		else
			printf("mode=%s status=http-error reason=none credential=no\n", mode);
		rc = 0;
		goto out;
	}
	report(s, mode);
	if (why[0])
		fprintf(stderr, "verifier_forge: %s\n", why);
	if (strcmp(mode, "release-other-tpm") == 0) {
		/* The credential of this affirming verdict, offered to another TPM. */
		struct quote_cfg qc = {.tcti = tcti2};
		struct quote_ctx *q2 = NULL;
		json_t *payload = NULL;
		json_t *ans = agent_attest_answer(s);
		const char *vb = json_string_value(json_object_get(ans, "verdict"));
		uint8_t *v = NULL, sh[32];
		size_t vlen = 0, sl;
		struct bundle_cose cc;
		struct bundle_ear *ear = NULL;
		unsigned mdl;
		const uint8_t *stmt = agent_attest_get(s, AGENT_PART_STATEMENT, &sl);
		EVP_Digest(stmt, sl, sh, &mdl, EVP_sha256(), NULL);
		if (!tcti2 || !vb || agent_unb64(vb, BUNDLE_MAX_COSE, &v, &vlen) || bundle_cose_parse(v, vlen, &cc) ||
		    bundle_ear_decode(cc.payload.ptr, cc.payload.len, &ear) || !ear->credential.len ||
		    quote_ctx_new(&qc, &q2) != QUOTE_OK)
			goto out;
		if (agent_release_unwrap(q2, ear->credential.ptr, ear->credential.len, sh, &payload, why, sizeof why) == 0)
			printf("other-tpm=UNWRAPPED\n");
		else
			printf("other-tpm=refused (%s)\n", why);
		json_decref(payload);
		/* The right TPM can. */
		if (agent_release_unwrap(agent_attest_tpm(s), ear->credential.ptr, ear->credential.len, sh, &payload, why,
					 sizeof why) == 0)
			printf("own-tpm=unwrapped\n");
		else
			printf("own-tpm=refused (%s)\n", why);
		json_decref(payload);
		quote_ctx_free(q2);
		bundle_ear_free(ear);
		free(v);
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "verifier_forge: %s failed: %s\n", mode, why[0] ? why : "(see above)");
	agent_attest_state_free(s);
	return rc;
}

/* Enrolment variants: no-cert (EK public only), sk-as-ak (the unrestricted statement key
 * offered as AK), wrong-secret (finish with a secret that is not the activated one), ek-of-other
 * (TPM --tcti2's EK with this TPM's AK: neither TPM can activate), cert-of-other (this EK with
 * --tcti2's EK certificate). Prints "enroll=<title or ok>". */
static int do_enroll(int argc, char **argv)
{
	const char *mode = argv[1], *tcti = NULL, *tcti2 = NULL, *url = NULL, *host = NULL;
	struct quote_cfg qc = {0}, qc2 = {0};
	struct quote_ctx *q = NULL, *q2 = NULL;
	struct quote_key ek, ak, sk;
	struct agent_http_opts o = {.timeout = 10};
	uint8_t *cert = NULL, *cred = NULL, secret[64];
	size_t cert_len = 0, cred_len = 0, secret_len = 0;
	const uint8_t *id, *sec;
	size_t id_len, sec_len;
	char err[768], title[128] = "", *b1, *b2, *b3 = NULL;
	json_t *req, *ans = NULL;
	long st;
	int i;

	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--tcti") == 0)
			tcti = argv[i + 1];
		else if (strcmp(argv[i], "--tcti2") == 0)
			tcti2 = argv[i + 1];
		else if (strcmp(argv[i], "--verifier") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--host-id") == 0)
			host = argv[i + 1];
	}
	qc.tcti = tcti;
	qc2.tcti = tcti2;
	if (!url || !host || quote_ctx_new(&qc, &q) != QUOTE_OK)
		return die("enroll: --tcti, --verifier, --host-id");
	if ((strcmp(mode, "ek-of-other") == 0 || strcmp(mode, "cert-of-other") == 0) &&
	    (!tcti2 || quote_ctx_new(&qc2, &q2) != QUOTE_OK))
		return die("enroll: --tcti2");
	if (quote_ek_public(q2 ? q2 : q, QUOTE_ALG_RSA, &ek) != QUOTE_OK || quote_ak_ensure(q, &ak, NULL) != QUOTE_OK ||
	    quote_sk_ensure(q, &sk, NULL) != QUOTE_OK)
		return die("enroll: TPM keys");
	if (strcmp(mode, "cert-of-other") == 0) {
		/* This TPM's EK public with the other TPM's (valid) EK certificate. */
		if (quote_ek_public(q, QUOTE_ALG_RSA, &ek) != QUOTE_OK)
			return die("enroll: EK");
		quote_ek_cert(q2, QUOTE_ALG_RSA, &cert, &cert_len);
	} else if (strcmp(mode, "no-cert") != 0) {
		quote_ek_cert(q2 ? q2 : q, QUOTE_ALG_RSA, &cert, &cert_len);
	}
	b1 = agent_b64(ek.pub, ek.pub_len);
	b2 = strcmp(mode, "sk-as-ak") == 0 ? agent_b64(sk.pub, sk.pub_len) : agent_b64(ak.pub, ak.pub_len);
	if (cert)
		b3 = agent_b64(cert, cert_len);
	req = json_pack("{s:s, s:s, s:s, s:s*}", "host_id", host, "ek_public", b1, "ak_public", b2, "ek_cert", b3);
	st = agent_vc_post(&o, url, "/v1/enroll", req, &ans, title, sizeof title, err, sizeof err);
	json_decref(req);
	if (st != 200) {
		printf("enroll=%s\n", title[0] ? title : "error");
		goto out;
	}
	agent_unb64(json_string_value(json_object_get(ans, "credential")), 4096, &cred, &cred_len);
	quote_credential_file_parse(cred, cred_len, &id, &id_len, &sec, &sec_len);
	if (strcmp(mode, "wrong-secret") == 0) {
		memset(secret, 0x42, 32);
		secret_len = 32;
	} else if (quote_activate_credential(q, id, id_len, sec, sec_len, secret, &secret_len) != QUOTE_OK &&
		   (!q2 || quote_activate_credential(q2, id, id_len, sec, sec_len, secret, &secret_len) != QUOTE_OK)) {
		printf("enroll=activation-refused\n");
		goto out;
	}
	free(b1);
	b1 = agent_b64(secret, secret_len);
	req = json_pack("{s:O, s:s}", "enroll_id", json_object_get(ans, "enroll_id"), "secret", b1);
	json_decref(ans);
	ans = NULL;
	st = agent_vc_post(&o, url, "/v1/enroll/finish", req, &ans, title, sizeof title, err, sizeof err);
	json_decref(req);
	printf("enroll=%s\n", st == 200 ? "ok" : title[0] ? title : "error");
out:
	free(b1);
	free(b2);
	free(b3);
	free(cert);
	free(cred);
	json_decref(ans);
	quote_ctx_free(q);
	quote_ctx_free(q2);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "enroll") == 0)
		return do_enroll(argc - 1, argv + 1);
	if (argc == 4 && strcmp(argv[1], "keys") == 0)
		return do_keys(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "measure") == 0)
		return do_measure(argv[2]);
	if (argc == 3 && strcmp(argv[1], "tcglog") == 0)
		return do_tcglog(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "attest") == 0)
		return do_attest(argc - 1, argv + 1);
	fprintf(stderr, "usage: verifier_forge keys TCTI OUTDIR | measure DIR | tcglog OUT | attest MODE [options]\n");
	return 2;
}
