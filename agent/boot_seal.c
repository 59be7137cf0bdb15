/* Step 10 of the boot flow: seal the phase. Extend the measurement PCR with a "released" event
 * (QUOTE_SLOG_RELEASED; content = SHA-256 of the registered statement, the value the verdict is
 * bound to, read back from the evidence bundle) and append the record to the sluice event log in out_dir, so the PCR state that the
 * verdict was given for can never be presented again from the booted system, and a later
 * attestation from it still replays. */
#include "agent/agent.h"
#include "agent/boot.h"
#include "bundle/bundle.h"
#include "quote/quote.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOG_NAME "sluice-eventlog.cbor" /* the sluice event log kept by agent/attest.c */
#define BUNDLE_NAME "bundle.tar"          /* the evidence bundle it writes on success */

int boot_seal(const struct boot_cfg *cfg, char *why, size_t whylen)
{
	struct quote_cfg qc = {0};
	struct quote_ctx *ctx = NULL;
	struct quote_slog *log = NULL;
	struct quote_diag diag = {0};
	char path[BOOT_VAL_MAX + 64];
	struct bundle_archive *ar = NULL;
	struct bundle_bytes stmt = {0};
	enum bundle_err be = BUNDLE_OK;
	uint8_t *buf = NULL, *enc = NULL, content[32];
	size_t len = 0, enc_len = 0;
	enum quote_err e;
	int rc = -1;

	/* content: the hash of the registered statement (what the verdict is bound to), taken from
	 * the evidence bundle the attestation just wrote */
	snprintf(path, sizeof path, "%s/%s", cfg->out_dir, BUNDLE_NAME);
	if (agent_read_file(path, 64u << 20, &buf, &len) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((be = bundle_archive_read(buf, len, &ar)) != BUNDLE_OK ||
	    (be = bundle_archive_get(ar, BUNDLE_F_STATEMENT, &stmt)) != BUNDLE_OK) {
		snprintf(why, whylen, "%s: %s", path, bundle_strerror(be));
		goto out;
	}
	SHA256(stmt.ptr, stmt.len, content);
	free(buf);
	buf = NULL;

	snprintf(path, sizeof path, "%s/%s", cfg->out_dir, SLOG_NAME);
	if (agent_read_file(path, QUOTE_EVENTLOG_MAX, &buf, &len) == 0) {
		e = quote_slog_parse(buf, len, &log, &diag);
		if (e != QUOTE_OK) {
			snprintf(why, whylen, "%s: %s (%s)", path, quote_strerror(e), diag.detail);
			goto out;
		}
	} else if (errno == ENOENT) {
		if ((e = quote_slog_new(&log)) != QUOTE_OK) {
			snprintf(why, whylen, "event log: %s", quote_strerror(e));
			goto out;
		}
	} else {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto out;
	}

	qc.tcti = cfg->tcti;
	if ((e = quote_ctx_new(&qc, &ctx)) != QUOTE_OK) {
		snprintf(why, whylen, "TPM %s: %s", cfg->tcti, quote_strerror(e));
		goto out;
	}
	if ((e = quote_pcr_extend(ctx, cfg->pcr, QUOTE_SLOG_RELEASED, content, sizeof content, log)) != QUOTE_OK) {
		snprintf(why, whylen, "extend PCR %u: %s (%s)", cfg->pcr, quote_strerror(e), quote_ctx_cause(ctx));
		goto out;
	}
	if ((e = quote_slog_encode(log, &enc, &enc_len)) != QUOTE_OK) {
		snprintf(why, whylen, "event log: %s", quote_strerror(e));
		goto out;
	}
	if (agent_write_file(path, enc, enc_len, 0644) != 0) {
		snprintf(why, whylen, "write %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(buf);
	free(enc);
	quote_slog_free(log);
	quote_ctx_free(ctx);
	bundle_archive_free(ar);
	return rc;
}
