/* The lock. The gateway is open only while the run directory holds a verdict that verifies
 * now, checked in this order (the first failure is the reason):
 *   verdict.cose present                          locked.no-verdict
 *   signed by the pinned verifier key             locked.bad-signature (locked.verdict-invalid)
 *   verdict-statement.cose: the verifier's signed
 *     statement of that verdict, and
 *   verdict-receipt.cose: its receipt, valid
 *     under the pinned transparency service key   locked.bad-receipt
 *   issued for this host                          locked.wrong-host
 *   iat <= now < exp (60 s skew on iat)           locked.expired
 *   status affirming                              locked.not-affirming
 *   released credentials of allowed tools exist   locked.no-credential
 * Nothing is cached: every tools/list and tools/call re-reads and re-verifies. */
#include "agent/tools.h"
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "bundle/bundle.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IAT_SKEW 60
#define VERDICT_STATEMENT "verdict-statement.cose"

static enum tools_err why(enum tools_err e, char *detail, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum tools_err why(enum tools_err e, char *detail, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (detail && len)
		vsnprintf(detail, len, fmt, ap);
	va_end(ap);
	return e;
}

void tools_unlock_clear(struct tools_unlock *u)
{
	if (!u)
		return;
	if (u->allowed)
		for (size_t i = 0; i < u->n_allowed; i++)
			free(u->allowed[i]);
	free(u->allowed);
	memset(u, 0, sizeof *u);
}

int tools_unlock_allows(const struct tools_unlock *u, const char *name)
{
	for (size_t i = 0; u && u->allowed && i < u->n_allowed; i++)
		if (strcmp(u->allowed[i], name) == 0)
			return 1;
	return 0;
}

enum tools_err tools_lock_check(const struct tools_lock_cfg *cfg, struct tools_unlock *ret, char *detail,
				size_t detaillen)
{
	const char *run = cfg->run_dir ? cfg->run_dir : "/run/sluice";
	char path[4096], err[512];
	uint8_t *verdict = NULL, *receipt = NULL, *vstmt = NULL;
	size_t vlen = 0, rlen = 0, vslen = 0;
	struct bundle_keyset *vks = NULL, *tks = NULL;
	struct bundle_ear *ear = NULL;
	struct tools_unlock u = {0};
	enum bundle_err be;
	enum tools_err rc;
	int64_t now = cfg->now ? cfg->now : (int64_t)time(NULL);

	snprintf(path, sizeof path, "%s/%s", run, BUNDLE_F_VERDICT);
	if (agent_read_file(path, BUNDLE_MAX_COSE, &verdict, &vlen) != 0) {
		rc = why(TOOLS_ERR_NO_VERDICT, detail, detaillen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (agent_load_keyset(cfg->verifier_key, &vks, err, sizeof err) != 0) {
		rc = why(TOOLS_ERR_NOT_CONFIGURED, detail, detaillen, "verifier key: %s", err);
		goto out;
	}
	be = bundle_ear_verify(verdict, vlen, NULL, vks, &ear);
	if (be == BUNDLE_ERR_SIGNATURE || be == BUNDLE_ERR_KID || be == BUNDLE_ERR_KEY) {
		rc = why(TOOLS_ERR_VERDICT_SIGNATURE, detail, detaillen, "%s: %s (%s)", path, bundle_strerror(be),
			 bundle_last_cause());
		goto out;
	}
	if (be != BUNDLE_OK) {
		rc = why(TOOLS_ERR_VERDICT_INVALID, detail, detaillen, "%s: %s (%s)", path, bundle_strerror(be),
			 bundle_last_cause());
		goto out;
	}
	/* The verdict is transparent: verdict-statement.cose (a hash envelope over verdict.cose,
	 * signed by the verifier) was registered, and verdict-receipt.cose is its receipt. */
	snprintf(path, sizeof path, "%s/%s", run, VERDICT_STATEMENT);
	if (agent_read_file(path, BUNDLE_MAX_COSE, &vstmt, &vslen) != 0) {
		rc = why(TOOLS_ERR_VERDICT_RECEIPT, detail, detaillen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((be = bundle_cose_verify_keyset(vstmt, vslen, vks, NULL, 0)) != BUNDLE_OK ||
	    (be = bundle_statement_check_preimage(vstmt, vslen, verdict, vlen)) != BUNDLE_OK) {
		rc = why(TOOLS_ERR_VERDICT_RECEIPT, detail, detaillen, "%s: not the verifier's statement of this verdict: %s (%s)",
			 path, bundle_strerror(be), bundle_last_cause());
		goto out;
	}
	snprintf(path, sizeof path, "%s/%s", run, BUNDLE_F_VERDICT_RECEIPT);
	if (agent_read_file(path, BUNDLE_MAX_COSE, &receipt, &rlen) != 0) {
		rc = why(TOOLS_ERR_VERDICT_RECEIPT, detail, detaillen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (agent_load_keyset(cfg->ts_key, &tks, err, sizeof err) != 0) {
		rc = why(TOOLS_ERR_NOT_CONFIGURED, detail, detaillen, "transparency service key: %s", err);
		goto out;
	}
	be = bundle_receipt_verify(receipt, rlen, vstmt, vslen, NULL, tks, NULL);
	if (be != BUNDLE_OK) {
		rc = why(TOOLS_ERR_VERDICT_RECEIPT, detail, detaillen, "%s: %s (%s)", path, bundle_strerror(be),
			 bundle_last_cause());
		goto out;
	}
	if (!cfg->host_id || !*cfg->host_id) {
		rc = why(TOOLS_ERR_NOT_CONFIGURED, detail, detaillen, "this host's id is not configured");
		goto out;
	}
	if (!ear->host_id || strcmp(ear->host_id, cfg->host_id) != 0) {
		rc = why(TOOLS_ERR_VERDICT_HOST, detail, detaillen, "verdict host \"%s\", this host \"%s\"",
			 ear->host_id ? ear->host_id : "", cfg->host_id);
		goto out;
	}
	be = bundle_ear_validate(ear, now, IAT_SKEW, NULL, 0, NULL);
	if (be == BUNDLE_ERR_EXPIRED) {
		rc = why(TOOLS_ERR_VERDICT_EXPIRED, detail, detaillen, "valid %lld..%lld, now %lld",
			 (long long)ear->iat, (long long)ear->exp, (long long)now);
		goto out;
	}
	if (be != BUNDLE_OK) {
		rc = why(TOOLS_ERR_VERDICT_INVALID, detail, detaillen, "%s (%s)", bundle_strerror(be),
			 bundle_last_cause());
		goto out;
	}
	if (ear->status != BUNDLE_EAR_AFFIRMING) {
		rc = why(TOOLS_ERR_VERDICT_STATUS, detail, detaillen, "status %d", ear->status);
		goto out;
	}
	u.allowed = calloc(ear->n_tools + 1, sizeof *u.allowed);
	if (!u.allowed) {
		rc = why(TOOLS_ERR_NOMEM, detail, detaillen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ear->n_tools; i++) {
		const struct tools_def *d;
		if (!(u.allowed[u.n_allowed] = strdup(ear->tools[i]))) {
			rc = why(TOOLS_ERR_NOMEM, detail, detaillen, "out of memory");
			goto out;
		}
		u.n_allowed++;
		d = tools_find(cfg->tools, ear->tools[i]);
		if (d && d->credential) {
			char *c = tools_credential_read(cfg->cred_dir ? cfg->cred_dir : "/run/credentials/@initrd",
							d->credential);
			if (!c) {
				rc = why(TOOLS_ERR_NO_CREDENTIAL, detail, detaillen, "credential \"%s\" of tool %s: %s",
					 d->credential, d->name, strerror(errno));
				goto out;
			}
			tools_secret_free(c);
		}
	}
	SHA256(verdict, vlen, u.verdict_sha256);
	u.exp = ear->exp;
	*ret = u;
	memset(&u, 0, sizeof u);
	rc = TOOLS_OK;
out:
	tools_unlock_clear(&u);
	bundle_ear_free(ear);
	bundle_keyset_free(vks);
	bundle_keyset_free(tks);
	free(verdict);
	free(receipt);
	free(vstmt);
	return rc;
}
