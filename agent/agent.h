/* sluice agent: the CLI and the boot flow. Private to agent/ (not a library header).
 *
 * Each subcommand lives in its own file agent/cmd_<name>.c and has the signature
 *   int cmd_<name>(int argc, char **argv);   argv[0] is the subcommand name.
 * It returns the process exit status: 0 success, 1 failure (verification failed, service
 * refused, ...), 2 usage error. Shared helpers are in agent/util.c. */
#ifndef SLUICE_AGENT_H
#define SLUICE_AGENT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define SLUICE_VERSION "0.1.0"

int cmd_measure(int argc, char **argv);
int cmd_tpm(int argc, char **argv);
int cmd_quote(int argc, char **argv);
int cmd_eventlog(int argc, char **argv);
int cmd_statement(int argc, char **argv);
int cmd_receipt(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_register(int argc, char **argv);
int cmd_ts(int argc, char **argv);
int cmd_enroll(int argc, char **argv);
int cmd_attest(int argc, char **argv);
int cmd_boot(int argc, char **argv);
int cmd_tools(int argc, char **argv);

/* The attestation flow (DESIGN.md boot flow steps 1-9): measure the root, extend the
 * measurement PCR, challenge, quote, evidence, statement, register, appraise, verify the
 * verdict and its receipt, activate the released credential and write the outputs.
 * Implemented in agent/attest.c (used by `sluice attest` and by `sluice boot`).
 * Fields left NULL/0 take the documented defaults. */
struct agent_attest_cfg {
	const char *tcti;            /* TPM, e.g. "device:/dev/tpmrm0" or "swtpm:port=2321" */
	const char *host_id;         /* host identity as enrolled */
	const char *root;            /* tree to measure (mounted target root), default "/" */
	const char *const *excludes; /* extra excludes on top of measure's defaults */
	size_t n_excludes;
	unsigned pcr;                /* measurement PCR, default 15 */
	const char *verifier_url;    /* http(s)://... */
	const char *verifier_key;    /* pinned verifier public key (PEM or COSE_Key file) */
	const char *ts_url;          /* SCRAPI transparency service */
	const char *ts_key;          /* pinned TS public key (PEM, COSE_Key or COSE_KeySet file) */
	const char *ca_file;         /* for https, optional */
	int insecure_http;           /* allow plain http to non-loopback hosts */
	const char *eventlog;        /* TCG event log, default securityfs path; may be missing */
	const char *out_dir;         /* verdict, receipts, evidence bundle; default /run/sluice */
	const char *cred_dir;        /* released credentials (0400); default /run/credentials/@initrd */
	double budget;               /* total seconds for network waits, default 60 */
	/* Called once per finished step ("measure", "extend", "challenge", "quote", "statement",
	 * "register", "appraise", "release") with its duration, so callers can print progress. */
	void (*on_step)(void *ud, const char *step, double seconds, const char *detail);
	void *ud;
};

/* Returns 0 only when an affirming verdict with a valid receipt is back and the released
 * credential was recovered and written. Otherwise returns 1 and fills why with one line:
 * "<step>: <reason> (<cause>)", e.g. "appraise: rootfs.digest.unknown (sha256:ab..)". */
int agent_attest_run(const struct agent_attest_cfg *cfg, char *why, size_t whylen);

/* Logging: one line to stderr prefixed "sluice: ". */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void agent_vlog(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Read a whole file (or "-" for stdin) of at most max bytes. On success *ret_buf is
 * malloc'd (NUL-terminated for convenience, not counted in *ret_len). Returns 0, or -1 with
 * errno set (EFBIG when the file is larger than max). */
int agent_read_file(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len);

/* Write a file atomically (temp file in the same directory, fsync, rename) with mode. "-" is
 * stdout. Returns 0 or -1 with errno set. */
int agent_write_file(const char *path, const void *buf, size_t len, unsigned mode);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void agent_hex(const uint8_t *in, size_t len, char *out);
/* Parse hex (even length, no prefix) into out of outcap bytes; returns bytes or -1. */
long agent_unhex(const char *hex, uint8_t *out, size_t outcap);

/* Monotonic clock in seconds. */
double agent_now(void);

#endif
