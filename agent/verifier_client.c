/* The agent's verifier client: bounded HTTP (libscrapi's helper), the verifier's JSON API,
 * SCRAPI registration (libscrapi) with the receipt verified against the pinned key, enrolment,
 * and unwrapping released credentials in the TPM. */
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "bundle/bundle.h"
#include "quote/quote.h"
#include "scrapi/scrapi.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void agent_http_resp_clear(struct agent_http_resp *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* One exchange through libscrapi's bounded HTTP helper (no automatic redirects, timeouts,
 * size cap, plain http only to loopback unless allowed). */
int agent_http(const struct agent_http_opts *o, const char *method, const char *url, const char *content_type,
	       const void *body, size_t len, const char *accept, struct agent_http_resp *ret, char *err, size_t errlen)
{
	struct scrapi_http_cfg hc = {0};
	struct scrapi_http_req rq = {0};
	struct scrapi_http_resp rs;
	struct scrapi_http *h = NULL;
	enum scrapi_err se;
	double timeout = o && o->timeout > 0 ? o->timeout : 30;

	memset(ret, 0, sizeof *ret);
	memset(&rs, 0, sizeof rs);
	hc.ca_file = o ? o->ca_file : NULL;
	hc.insecure_http = o ? o->insecure_http : 0;
	hc.timeout_ms = (long)(timeout * 1000);
	hc.connect_timeout_ms = hc.timeout_ms < 5000 ? hc.timeout_ms : 5000;
	hc.max_response = o && o->max_body ? o->max_body : AGENT_HTTP_MAX_BODY;
	hc.user_agent = "sluice/" SLUICE_VERSION;
	if ((se = scrapi_http_new(&hc, &h)) != SCRAPI_OK) {
		snprintf(err, errlen, "%s: %s", url, scrapi_strerror(se));
		return -1;
	}
	rq.method = method;
	rq.url = url;
	rq.content_type = content_type;
	rq.accept = accept;
	rq.body = body;
	rq.body_len = len;
	se = scrapi_http_do(h, &rq, &rs);
	if (se != SCRAPI_OK) {
		snprintf(err, errlen, "%s: %s (%s)", url, scrapi_strerror(se), scrapi_http_last_cause(h));
		scrapi_http_free(h);
		return -1;
	}
	ret->status = rs.status;
	ret->body = rs.body;
	ret->len = rs.body_len;
	rs.body = NULL;
	snprintf(ret->content_type, sizeof ret->content_type, "%s", rs.content_type);
	snprintf(ret->location, sizeof ret->location, "%s", rs.location);
	ret->retry_after = rs.retry_after;
	scrapi_http_resp_clear(&rs);
	scrapi_http_free(h);
	if (!ret->body && !(ret->body = calloc(1, 1))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

char *agent_b64(const uint8_t *in, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

int agent_unb64(const char *in, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(in), pad = 0;
	uint8_t *out;
	int r;
	if (n % 4 || n / 4 * 3 > max + 2)
		return -1;
	if (n && in[n - 1] == '=')
		pad++;
	if (n > 1 && in[n - 2] == '=')
		pad++;
	if (!(out = malloc(n / 4 * 3 + 1)))
		return -1;
	r = n ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) : 0;
	if (r < 0 || (size_t)r < pad || (size_t)r - pad > max) {
		free(out);
		return -1;
	}
	*ret = out;
	*ret_len = (size_t)r - pad;
	return 0;
}

long agent_vc_post(const struct agent_http_opts *o, const char *base_url, const char *path, json_t *req,
		   json_t **ret, char *title, size_t title_len, char *err, size_t errlen)
{
	char url[2048], *text = json_dumps(req, JSON_COMPACT);
	struct agent_http_resp r;
	size_t bl = strlen(base_url);
	json_t *ans;
	long status;

	if (title && title_len)
		title[0] = 0;
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (bl && base_url[bl - 1] == '/')
		bl--;
	snprintf(url, sizeof url, "%.*s%s", (int)bl, base_url, path);
	if (agent_http(o, "POST", url, "application/json", text, strlen(text), "application/json", &r, err, errlen)) {
		free(text);
		return -1;
	}
	free(text);
	status = r.status;
	ans = r.len ? json_loadb((const char *)r.body, r.len, 0, NULL) : NULL;
	if (status < 200 || status > 299) {
		const char *t = json_string_value(json_object_get(ans, "title"));
		const char *d = json_string_value(json_object_get(ans, "detail"));
		snprintf(err, errlen, "HTTP %ld: %s%s%s", status, t ? t : "no problem details", d ? ": " : "", d ? d : "");
		if (title && t)
			snprintf(title, title_len, "%s", t);
		json_decref(ans);
		agent_http_resp_clear(&r);
		return status;
	}
	agent_http_resp_clear(&r);
	if (!json_is_object(ans)) {
		snprintf(err, errlen, "HTTP %ld with a body that is not a JSON object", status);
		json_decref(ans);
		return -1;
	}
	*ret = ans;
	return status;
}

int agent_load_keyset(const char *path, struct bundle_keyset **ret, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum bundle_err be;
	if (!path || !*path) {
		snprintf(err, errlen, "no key file configured");
		return -1;
	}
	if (agent_read_file(path, 1u << 20, &buf, &len) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	be = bundle_keyset_load(buf, len, ret);
	free(buf);
	if (be != BUNDLE_OK) {
		snprintf(err, errlen, "%s: not a key or key set: %s (%s)", path, bundle_strerror(be), bundle_last_cause());
		return -1;
	}
	return 0;
}

int agent_ts_register(const struct agent_http_opts *o, const char *ts_url, const struct bundle_keyset *ts_keys,
		      const uint8_t *stmt, size_t stmt_len, double budget, uint8_t **ret, size_t *ret_len, char *err,
		      size_t errlen)
{
	struct scrapi_cfg sc = {0};
	struct scrapi_client *c = NULL;
	struct scrapi_result res;
	enum scrapi_err se;
	enum bundle_err be;
	int rc = -1;

	memset(&res, 0, sizeof res);
	sc.url = ts_url;
	sc.http.ca_file = o ? o->ca_file : NULL;
	sc.http.insecure_http = o ? o->insecure_http : 0;
	sc.http.user_agent = "sluice/" SLUICE_VERSION;
	sc.budget = budget;
	if ((se = scrapi_client_new(&sc, &c)) != SCRAPI_OK) {
		snprintf(err, errlen, "%s: %s", ts_url, scrapi_strerror(se));
		return -1;
	}
	if ((se = scrapi_register(c, stmt, stmt_len, &res)) != SCRAPI_OK) {
		snprintf(err, errlen, "%s: %s (%s)", ts_url, scrapi_strerror(se), scrapi_last_cause(c));
		goto out;
	}
	/* libscrapi does not verify receipts: the pinned key decides. */
	be = bundle_receipt_verify(res.receipt, res.receipt_len, stmt, stmt_len, NULL, ts_keys, NULL);
	if (be != BUNDLE_OK) {
		snprintf(err, errlen, "the transparency service's receipt does not verify: %s (%s)", bundle_strerror(be),
			 bundle_last_cause());
		goto out;
	}
	*ret = res.receipt;
	*ret_len = res.receipt_len;
	res.receipt = NULL;
	rc = 0;
out:
	scrapi_result_clear(&res);
	scrapi_client_free(c);
	return rc;
}

int agent_enroll(struct quote_ctx *q, const struct agent_http_opts *o, const char *verifier_url, const char *host_id,
		 char *why, size_t whylen)
{
	struct quote_key ek, ak;
	uint8_t *cert = NULL, *cred = NULL, secret[64];
	size_t cert_len = 0, cred_len = 0, secret_len = 0;
	const uint8_t *id, *sec;
	size_t id_len, sec_len;
	char *b_ek = NULL, *b_ak = NULL, *b_cert = NULL, *b_secret = NULL, err[768] = "", title[128];
	json_t *req = NULL, *ans = NULL;
	enum quote_err qe;
	uint16_t alg = QUOTE_ALG_RSA;
	int rc = -1;

	if ((qe = quote_ek_public(q, alg, &ek)) != QUOTE_OK) {
		snprintf(why, whylen, "enroll: EK: %s (%s)", quote_strerror(qe), quote_ctx_cause(q));
		goto out;
	}
	qe = quote_ek_cert(q, alg, &cert, &cert_len);
	if (qe != QUOTE_OK && qe != QUOTE_ERR_NOT_FOUND) {
		snprintf(why, whylen, "enroll: EK certificate: %s (%s)", quote_strerror(qe), quote_ctx_cause(q));
		goto out;
	}
	if ((qe = quote_ak_ensure(q, &ak, NULL)) != QUOTE_OK) {
		snprintf(why, whylen, "enroll: AK: %s (%s)", quote_strerror(qe), quote_ctx_cause(q));
		goto out;
	}
	b_ek = agent_b64(ek.pub, ek.pub_len);
	b_ak = agent_b64(ak.pub, ak.pub_len);
	b_cert = cert ? agent_b64(cert, cert_len) : NULL;
	req = json_pack("{s:s, s:s, s:s, s:s*}", "host_id", host_id, "ek_public", b_ek ? b_ek : "", "ak_public",
			b_ak ? b_ak : "", "ek_cert", b_cert);
	if (agent_vc_post(o, verifier_url, "/v1/enroll", req, &ans, title, sizeof title, err, sizeof err) != 200) {
		snprintf(why, whylen, "enroll: verifier refused: %s", err);
		goto out;
	}
	if (!json_is_string(json_object_get(ans, "credential")) ||
	    agent_unb64(json_string_value(json_object_get(ans, "credential")), 4096, &cred, &cred_len) ||
	    quote_credential_file_parse(cred, cred_len, &id, &id_len, &sec, &sec_len) != QUOTE_OK) {
		snprintf(why, whylen, "enroll: the verifier's challenge is malformed");
		goto out;
	}
	qe = quote_activate_credential(q, id, id_len, sec, sec_len, secret, &secret_len);
	if (qe != QUOTE_OK) {
		snprintf(why, whylen, "enroll: ActivateCredential: %s (%s)", quote_strerror(qe), quote_ctx_cause(q));
		goto out;
	}
	b_secret = agent_b64(secret, secret_len);
	json_decref(req);
	req = json_pack("{s:O, s:s}", "enroll_id", json_object_get(ans, "enroll_id"), "secret", b_secret ? b_secret : "");
	json_decref(ans);
	ans = NULL;
	if (agent_vc_post(o, verifier_url, "/v1/enroll/finish", req, &ans, title, sizeof title, err, sizeof err) != 200) {
		snprintf(why, whylen, "enroll: verifier refused the activated secret: %s", err);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(secret, sizeof secret);
	if (b_secret) {
		OPENSSL_cleanse(b_secret, strlen(b_secret));
		free(b_secret);
	}
	free(b_ek);
	free(b_ak);
	free(b_cert);
	free(cert);
	free(cred);
	json_decref(req);
	json_decref(ans);
	return rc;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int agent_release_unwrap(struct quote_ctx *q, const uint8_t *blob, size_t len, const uint8_t stmt_hash[32],
			 json_t **ret, char *why, size_t whylen)
{
	const uint8_t *id, *sec, *iv, *ct, *tag;
	size_t id_len, sec_len, cred_len, ct_len, off = 0;
	uint8_t key[64], aad[17 + 32], *pt = NULL;
	size_t key_len = 0;
	EVP_CIPHER_CTX *ctx = NULL;
	enum quote_err qe;
	int outl = 0, rc = -1;
	json_t *j;

	if (len < 8 || memcmp(blob, "SLR1", 4) != 0)
		goto malformed;
	cred_len = be32(blob + 4);
	off = 8;
	if (cred_len > len - off || len - off - cred_len < 12 + 4 + 16)
		goto malformed;
	if (quote_credential_file_parse(blob + off, cred_len, &id, &id_len, &sec, &sec_len) != QUOTE_OK)
		goto malformed;
	off += cred_len;
	iv = blob + off;
	off += 12;
	ct_len = be32(blob + off);
	off += 4;
	if (ct_len != len - off - 16 || ct_len > (1u << 20))
		goto malformed;
	ct = blob + off;
	tag = ct + ct_len;
	qe = quote_activate_credential(q, id, id_len, sec, sec_len, key, &key_len);
	if (qe != QUOTE_OK) {
		snprintf(why, whylen, "release: ActivateCredential refused the credential: %s (%s)", quote_strerror(qe),
			 quote_ctx_cause(q));
		goto out;
	}
	if (key_len != 32)
		goto malformed;
	memcpy(aad, "sluice-release-v1", 17);
	memcpy(aad + 17, stmt_hash, 32);
	if (!(pt = malloc(ct_len + 1)) || !(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)sizeof aad) != 1 ||
	    EVP_DecryptUpdate(ctx, pt, &outl, ct, (int)ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, pt + outl, &outl) != 1) {
		snprintf(why, whylen, "release: the payload does not decrypt (tampered, or for another verdict)");
		goto out;
	}
	pt[ct_len] = 0;
	j = json_loadb((const char *)pt, ct_len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		goto malformed;
	}
	*ret = j;
	rc = 0;
	goto out;
malformed:
	snprintf(why, whylen, "release: the released credential is malformed");
out:
	OPENSSL_cleanse(key, sizeof key);
	if (pt) {
		OPENSSL_cleanse(pt, ct_len);
		free(pt);
	}
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

void agent_release_wipe(json_t *payload)
{
	const char *name;
	json_t *v;
	json_object_foreach(payload, name, v) {
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
}

int agent_release_write(json_t *payload, const char *dir, size_t *ret_n, char *why, size_t whylen)
{
	const char *name;
	json_t *v;
	size_t n = 0;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, whylen, "release: cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	json_object_foreach(payload, name, v) {
		char path[PATH_MAX];
		uint8_t *data = NULL;
		size_t len = 0;
		int bad = !name[0] || name[0] == '.' || strchr(name, '/') || strlen(name) > 64;
		if (bad || !json_is_string(v) || agent_unb64(json_string_value(v), 1u << 20, &data, &len)) {
			snprintf(why, whylen, "release: bad credential entry \"%s\"", name);
			return -1;
		}
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (agent_write_file(path, data, len, 0400) != 0) {
			snprintf(why, whylen, "release: cannot write %s: %s", path, strerror(errno));
			OPENSSL_cleanse(data, len);
			free(data);
			return -1;
		}
		OPENSSL_cleanse(data, len);
		free(data);
		n++;
	}
	if (ret_n)
		*ret_n = n;
	return 0;
}
