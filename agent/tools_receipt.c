/* The per-call SCITT statement.
 *
 * Payload (media type application/vnd.sluice.tool-call+cbor), deterministic CBOR:
 *   {"args": bstr(32) SHA-256 of the arguments (compact JSON, sorted keys),
 *    "host": tstr host id, "time": uint seconds since the epoch, "tool": tstr name,
 *    "verdict": bstr(32) SHA-256 of verdict.cose as stored}
 * COSE_Sign1 (attached payload) with protected {1: -7, 3: media type, 4: kid of the TPM
 * statement key, 15: {1: "urn:sluice:host:<host id>", 2: "tool:<name>", 6: time}}, signed by the TPM-resident
 * statement key (TPM2_Sign over the SHA-256 of the Sig_structure). It is registered with the
 * SCRAPI service with libscrapi (the same client as `sluice register` and the verifier: bounded,
 * no automatic redirects, Location kept on the service origin, Retry-After and backoff inside the
 * --budget) and the receipt verified against the pinned service key before returning. */
#include "agent/tools.h"
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "bundle/bundle.h"
#include "quote/quote.h"
#include "scrapi/scrapi.h"

#include <cbor.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MT_TOOL_CALL "application/vnd.sluice.tool-call+cbor"
#define ISS_PREFIX "urn:sluice:host:" /* as the evidence statement of `sluice attest` */

int tools_args_sha256(const json_t *args, uint8_t out[32])
{
	char *s = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!s)
		return -1;
	SHA256((const unsigned char *)s, strlen(s), out);
	free(s);
	return 0;
}

void tools_call_record_clear(struct tools_call_record *r)
{
	if (!r)
		return;
	free(r->statement);
	free(r->receipt);
	memset(r, 0, sizeof *r);
}

/* A small deterministic CBOR writer for the call payload (bounded). */
struct cbuf {
	uint8_t b[1024];
	size_t n;
	int over;
};

static void put(struct cbuf *c, const void *p, size_t n)
{
	if (c->n + n > sizeof c->b) {
		c->over = 1;
		return;
	}
	memcpy(c->b + c->n, p, n);
	c->n += n;
}

/* A CBOR item head in its shortest form (libcbor's encoders choose it). */
static void head(struct cbuf *c, unsigned major, uint64_t v)
{
	unsigned char h[9];
	size_t n = 0;
	switch (major) {
	case 0:
		n = cbor_encode_uint(v, h, sizeof h);
		break;
	case 2:
		n = cbor_encode_bytestring_start((size_t)v, h, sizeof h);
		break;
	case 3:
		n = cbor_encode_string_start((size_t)v, h, sizeof h);
		break;
	case 5:
		n = cbor_encode_map_start((size_t)v, h, sizeof h);
		break;
	default:
		break;
	}
	if (n == 0) {
		c->over = 1;
		return;
	}
	put(c, h, n);
}

static void text(struct cbuf *c, const char *s)
{
	head(c, 3, strlen(s));
	put(c, s, strlen(s));
}

static void bytes(struct cbuf *c, const uint8_t *p, size_t n)
{
	head(c, 2, n);
	put(c, p, n);
}

/* Keys in deterministic order: encoded bytes sorted, i.e. by length then bytewise. */
static int call_payload(struct cbuf *c, const char *tool, const uint8_t args[32], const uint8_t verdict[32],
			const char *host, int64_t when)
{
	head(c, 5, 5);
	text(c, "args");
	bytes(c, args, 32);
	text(c, "host");
	text(c, host);
	text(c, "time");
	head(c, 0, (uint64_t)(when < 0 ? 0 : when));
	text(c, "tool");
	text(c, tool);
	text(c, "verdict");
	bytes(c, verdict, 32);
	return c->over ? -1 : 0;
}

static enum tools_err fail(enum tools_err e, char *detail, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum tools_err fail(enum tools_err e, char *detail, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (detail && len)
		vsnprintf(detail, len, fmt, ap);
	va_end(ap);
	return e;
}

struct tpm_signer {
	struct quote_ctx *ctx;
	enum quote_err qe;
};

static int tpm_sign(void *ud, int alg, const uint8_t *tbs, size_t tbs_len, const uint8_t *digest,
		    size_t digest_len, uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	struct tpm_signer *t = ud;
	(void)tbs;
	(void)tbs_len;
	if (alg != BUNDLE_ALG_ES256 || !digest || digest_len != 32 || sig_cap < 64)
		return 1;
	t->qe = quote_sk_sign(t->ctx, digest, sig);
	if (t->qe != QUOTE_OK)
		return 2;
	*sig_len = 64;
	return 0;
}

static int verify_info(const char *ts_key, const uint8_t *statement, size_t statement_len, const uint8_t *receipt,
		       size_t receipt_len, struct bundle_receipt_info *info, char *why, size_t whylen)
{
	struct bundle_keyset *ks = NULL;
	enum bundle_err be;

	if (agent_load_keyset(ts_key, &ks, why, whylen) != 0)
		return -1;
	be = bundle_receipt_verify(receipt, receipt_len, statement, statement_len, NULL, ks, info);
	bundle_keyset_free(ks);
	if (be != BUNDLE_OK) {
		snprintf(why, whylen, "%s (%s)", bundle_strerror(be), bundle_last_cause());
		return -1;
	}
	return 0;
}

int tools_call_verify(const char *ts_key, const uint8_t *statement, size_t statement_len, const uint8_t *receipt,
		      size_t receipt_len, char *why, size_t whylen)
{
	struct bundle_receipt_info info;
	return verify_info(ts_key, statement, statement_len, receipt, receipt_len, &info, why, whylen);
}

/* Sign the call statement with the TPM statement key. */
static enum tools_err sign_statement(const struct tools_call_cfg *cfg, const char *tool, const struct cbuf *payload,
				     int64_t when, uint8_t **ret, size_t *ret_len, char *detail, size_t dlen)
{
	struct quote_cfg qc = {.tcti = cfg->tcti};
	struct quote_ctx *ctx = NULL;
	struct quote_key sk;
	struct bundle_key *pub = NULL;
	struct tpm_signer ts = {0};
	struct bundle_signer s = {0};
	struct bundle_cose_hdr hdr = {0};
	uint8_t *der = NULL;
	size_t der_len = 0;
	char sub[200], iss[300];
	enum quote_err qe;
	enum bundle_err be;
	enum tools_err rc = TOOLS_ERR_SIGN;

	qe = quote_ctx_new(&qc, &ctx);
	if (qe != QUOTE_OK) {
		rc = fail(TOOLS_ERR_SIGN, detail, dlen, "TPM %s: %s", cfg->tcti ? cfg->tcti : "(default)",
			  quote_strerror(qe));
		goto out;
	}
	qe = quote_sk_ensure(ctx, &sk, NULL);
	if (qe != QUOTE_OK) {
		rc = fail(TOOLS_ERR_SIGN, detail, dlen, "statement key: %s (%s)", quote_strerror(qe),
			  quote_ctx_cause(ctx));
		goto out;
	}
	qe = quote_public_to_der(sk.pub, sk.pub_len, &der, &der_len);
	if (qe != QUOTE_OK) {
		rc = fail(TOOLS_ERR_SIGN, detail, dlen, "statement key public: %s", quote_strerror(qe));
		goto out;
	}
	be = bundle_key_load(der, der_len, &pub);
	if (be != BUNDLE_OK) {
		rc = fail(TOOLS_ERR_SIGN, detail, dlen, "statement key public: %s (%s)", bundle_strerror(be),
			  bundle_last_cause());
		goto out;
	}
	ts.ctx = ctx;
	s.alg = BUNDLE_ALG_ES256;
	s.kid = bundle_key_kid(pub);
	s.sign = tpm_sign;
	s.ud = &ts;
	snprintf(sub, sizeof sub, "tool:%s", tool);
	snprintf(iss, sizeof iss, "%s%s", ISS_PREFIX, cfg->host_id);
	hdr.content_type = MT_TOOL_CALL;
	hdr.cwt_iss = iss;
	hdr.cwt_sub = sub;
	hdr.cwt_iat = when;
	be = bundle_cose_sign1(&s, &hdr, payload->b, payload->n, 0, ret, ret_len);
	if (be != BUNDLE_OK) {
		if (ts.qe != QUOTE_OK)
			rc = fail(TOOLS_ERR_SIGN, detail, dlen, "TPM2_Sign: %s (%s)", quote_strerror(ts.qe),
				  quote_ctx_cause(ctx));
		else
			rc = fail(TOOLS_ERR_SIGN, detail, dlen, "COSE_Sign1: %s (%s)", bundle_strerror(be),
				  bundle_last_cause());
		goto out;
	}
	rc = TOOLS_OK;
out:
	bundle_key_free(pub);
	free(der);
	quote_ctx_free(ctx);
	return rc;
}

/* Register the statement: TOOLS_OK with the (unverified) receipt and the entry id the service
 * named, if it is a tidy token that fits ("" otherwise), else TOOLS_ERR_REGISTER with why. */
static enum tools_err register_statement(const struct tools_call_cfg *cfg, struct tools_call_record *r,
					 char *detail, size_t dlen)
{
	double budget = cfg->budget > 0 ? cfg->budget : 10;
	struct scrapi_cfg sc = {.url = cfg->ts_url,
				.http = {.ca_file = cfg->ca_file,
					 .insecure_http = cfg->insecure_http,
					 .timeout_ms = (long)(budget * 1000),
					 .max_response = BUNDLE_MAX_COSE,
					 .user_agent = "sluice/" SLUICE_VERSION},
				.budget = budget};
	struct scrapi_client *cl = NULL;
	struct scrapi_result res = {0};
	enum scrapi_err se;
	enum tools_err rc = TOOLS_ERR_REGISTER;
	size_t n;

	if ((se = scrapi_client_new(&sc, &cl)) != SCRAPI_OK) {
		fail(rc, detail, dlen, "%s: %s", cfg->ts_url, scrapi_strerror(se));
		return rc;
	}
	if ((se = scrapi_register(cl, r->statement, r->statement_len, &res)) != SCRAPI_OK) {
		fail(rc, detail, dlen, "%s: %s (%s)", cfg->ts_url, scrapi_strerror(se), scrapi_last_cause(cl));
		goto out;
	}
	/* only a tidy token goes into _meta and the journal */
	n = strlen(res.entry_id);
	if (n < sizeof r->entry_id && strspn(res.entry_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789-_.%") == n)
		memcpy(r->entry_id, res.entry_id, n + 1);
	r->receipt = res.receipt;
	r->receipt_len = res.receipt_len;
	res.receipt = NULL;
	rc = TOOLS_OK;
out:
	scrapi_result_clear(&res);
	scrapi_client_free(cl);
	return rc;
}

enum tools_err tools_call_register(const struct tools_call_cfg *cfg, const char *tool, const uint8_t args_sha256[32],
				   const uint8_t verdict_sha256[32], int64_t when, struct tools_call_record *ret,
				   char *detail, size_t detaillen)
{
	struct cbuf payload = {0};
	struct tools_call_record r = {0};
	struct bundle_receipt_info info;
	enum tools_err rc;
	char err[512];

	if (!cfg->host_id || !*cfg->host_id || !cfg->ts_url || !*cfg->ts_url)
		return fail(TOOLS_ERR_NOT_CONFIGURED, detail, detaillen, "%s",
			    !cfg->ts_url || !*cfg->ts_url ? "no transparency service URL (--ts)" : "no host id");
	if (call_payload(&payload, tool, args_sha256, verdict_sha256, cfg->host_id, when) != 0)
		return fail(TOOLS_ERR_SIGN, detail, detaillen, "call statement too large");
	rc = sign_statement(cfg, tool, &payload, when, &r.statement, &r.statement_len, detail, detaillen);
	if (rc != TOOLS_OK)
		goto out;
	rc = register_statement(cfg, &r, detail, detaillen);
	if (rc != TOOLS_OK)
		goto out;
	/* Verified again here, whatever the client did: the tool runs only on a receipt that
	 * this process checked against the pinned key. */
	if (verify_info(cfg->ts_key, r.statement, r.statement_len, r.receipt, r.receipt_len, &info, err,
			sizeof err) != 0) {
		rc = fail(TOOLS_ERR_RECEIPT, detail, detaillen, "%s", err);
		goto out;
	}
	if (!r.entry_id[0]) /* the service named no entry: the log position identifies it */
		snprintf(r.entry_id, sizeof r.entry_id, "%llu", (unsigned long long)info.leaf_index);
	*ret = r;
	memset(&r, 0, sizeof r);
	rc = TOOLS_OK;
out:
	tools_call_record_clear(&r);
	return rc;
}

int tools_call_statement_matches(const uint8_t *stmt, size_t len, const char *tool, const uint8_t args_sha256[32],
				 const uint8_t verdict_sha256[32], int64_t when, char *why, size_t whylen)
{
	struct bundle_cose c;
	struct cbuf want = {0};
	char host[256];
	enum bundle_err be = bundle_cose_parse(stmt, len, &c);

	if (be != BUNDLE_OK) {
		snprintf(why, whylen, "statement: %s (%s)", bundle_strerror(be), bundle_last_cause());
		return -1;
	}
	if (!c.cwt_iss.ptr || c.cwt_iss.len <= strlen(ISS_PREFIX) || c.cwt_iss.len - strlen(ISS_PREFIX) >= sizeof host ||
	    memcmp(c.cwt_iss.ptr, ISS_PREFIX, strlen(ISS_PREFIX)) != 0 || !c.payload.ptr) {
		snprintf(why, whylen, "statement has no %s... issuer or no payload", ISS_PREFIX);
		return -1;
	}
	memcpy(host, c.cwt_iss.ptr + strlen(ISS_PREFIX), c.cwt_iss.len - strlen(ISS_PREFIX));
	host[c.cwt_iss.len - strlen(ISS_PREFIX)] = '\0';
	if (!tool || call_payload(&want, tool, args_sha256, verdict_sha256, host, when) != 0 ||
	    want.n != c.payload.len || memcmp(want.b, c.payload.ptr, want.n) != 0) {
		snprintf(why, whylen, "statement does not describe this call (tool, arguments, verdict or time differ)");
		return -1;
	}
	return 0;
}

int tools_call_payload(const char *tool, const uint8_t args_sha256[32], const uint8_t verdict_sha256[32],
		       const char *host, int64_t when, uint8_t **ret, size_t *ret_len)
{
	struct cbuf c = {0};
	if (call_payload(&c, tool, args_sha256, verdict_sha256, host, when) != 0 || !(*ret = malloc(c.n)))
		return -1;
	memcpy(*ret, c.b, c.n);
	*ret_len = c.n;
	return 0;
}
