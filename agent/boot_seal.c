/* Step 10 of the boot flow: seal the phase. Extend the measurement PCR with a "released" event
 * (QUOTE_SLOG_RELEASED; content = SHA-256 of the registered statement, the value the verdict is
 * bound to) and append the record to the sluice event log in out_dir, so the PCR state that the
 * verdict was given for can never be presented again from the booted system, and a later
 * attestation from it still replays. */
#include "agent/agent.h"
#include "agent/boot.h"
#include "quote/quote.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Transition: libquote is written in parallel; weak references keep `sluice` linkable until it
 * lands (the seal then fails closed). */
#pragma weak quote_ctx_new
#pragma weak quote_ctx_free
#pragma weak quote_ctx_cause
#pragma weak quote_strerror
#pragma weak quote_slog_new
#pragma weak quote_slog_free
#pragma weak quote_slog_parse
#pragma weak quote_slog_encode
#pragma weak quote_pcr_extend

#define SLOG_NAME "eventlog.cbor"       /* the sluice event log written by the attestation */
#define STATEMENT_NAME "statement.cose" /* the registered signed statement */

int boot_seal(const struct boot_cfg *cfg, char *why, size_t whylen)
{
	struct quote_cfg qc = {0};
	struct quote_ctx *ctx = NULL;
	struct quote_slog *log = NULL;
	struct quote_diag diag = {0};
	char path[BOOT_VAL_MAX + 64];
	uint8_t *buf = NULL, *enc = NULL, content[32];
	size_t len = 0, enc_len = 0;
	enum quote_err e;
	int rc = -1;

	if (!quote_ctx_new || !quote_pcr_extend || !quote_slog_encode || !quote_slog_parse || !quote_slog_new ||
	    !quote_slog_free || !quote_ctx_free || !quote_ctx_cause || !quote_strerror) {
		snprintf(why, whylen, "this sluice was built without libquote");
		return -1;
	}
	/* content: the statement's hash, or 32 zero bytes when the flow kept no statement file */
	memset(content, 0, sizeof content);
	snprintf(path, sizeof path, "%s/%s", cfg->out_dir, STATEMENT_NAME);
	if (agent_read_file(path, 1u << 20, &buf, &len) == 0)
		SHA256(buf, len, content);
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
	return rc;
}
