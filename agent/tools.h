/* The LLM tool gateway behind `sluice tools serve` / `sluice tools audit`. Private to agent/.
 *
 *   tools_config.c   tool definitions from a directory of JSON files (/etc/sluice/tools.d)
 *   tools_schema.c   the JSON Schema subset used to check call arguments
 *   tools_exec.c     executors: a command (no shell) or an HTTP request (libcurl)
 *   tools_journal.c  the local append-only, hash-chained journal of calls
 *   tools_lock.c     the lock: is there a verdict in /run/sluice that verifies now?
 *   tools_receipt.c  the per-call SCITT statement: sign in the TPM, register, verify receipt
 *   tools_gate.c     the MCP backend that ties these together
 *
 * The user-facing contract is docs/tools.md. */
#ifndef SLUICE_AGENT_TOOLS_H
#define SLUICE_AGENT_TOOLS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Why a call was refused or failed. The values are stable; tools_reason() gives the short
 * machine-readable code that goes into JSON-RPC error data and the journal. */
enum tools_err {
	TOOLS_OK = 0,
	TOOLS_ERR_NOMEM = 1,
	TOOLS_ERR_CONFIG = 2,             /* a tool definition is invalid */
	TOOLS_ERR_UNKNOWN_TOOL = 3,       /* no such tool configured */
	TOOLS_ERR_NOT_ALLOWED = 4,        /* the verdict does not allow this tool */
	TOOLS_ERR_SCHEMA = 5,             /* arguments violate the tool's input schema */
	TOOLS_ERR_NO_VERDICT = 6,         /* nothing (readable) in the run directory */
	TOOLS_ERR_VERDICT_INVALID = 7,    /* verdict does not decode / lacks claims */
	TOOLS_ERR_VERDICT_SIGNATURE = 8,  /* not signed by the pinned verifier key */
	TOOLS_ERR_VERDICT_RECEIPT = 9,    /* no receipt, or not valid under the pinned TS key */
	TOOLS_ERR_VERDICT_HOST = 10,      /* issued for another host */
	TOOLS_ERR_VERDICT_EXPIRED = 11,   /* past exp (or not yet valid) */
	TOOLS_ERR_VERDICT_STATUS = 12,    /* not affirming */
	TOOLS_ERR_NO_CREDENTIAL = 13,     /* released tool credentials missing */
	TOOLS_ERR_SIGN = 14,              /* TPM statement key could not sign */
	TOOLS_ERR_REGISTER = 15,          /* transparency service refused or unreachable */
	TOOLS_ERR_RECEIPT = 16,           /* the receipt we got back does not verify */
	TOOLS_ERR_JOURNAL = 17,           /* the local journal could not be written */
	TOOLS_ERR_EXEC = 18,              /* the tool could not be started / failed */
	TOOLS_ERR_TIMEOUT = 19,           /* the tool was killed at its timeout */
	TOOLS_ERR_OUTPUT_LIMIT = 20,      /* the tool produced more than its output limit */
	TOOLS_ERR_HTTP = 21,              /* HTTP transfer failed or non-2xx status */
	TOOLS_ERR_NOT_CONFIGURED = 22,    /* gateway lacks a setting (key, TS URL, host id) */
};
const char *tools_strerror(enum tools_err e);
const char *tools_reason(enum tools_err e);

/* ---- tool definitions (tools_config.c) -------------------------------------------------- */

enum tools_kind { TOOLS_KIND_COMMAND, TOOLS_KIND_HTTP };

#define TOOLS_MAX_DEF_FILE (256u << 10)
#define TOOLS_MAX_TOOLS 256
#define TOOLS_DEFAULT_TIMEOUT_MS 10000
#define TOOLS_MAX_TIMEOUT_MS 600000
#define TOOLS_DEFAULT_MAX_OUTPUT (256u << 10)
#define TOOLS_MAX_OUTPUT_LIMIT (16u << 20)
#define TOOLS_MAX_CREDENTIAL 4096

struct tools_def {
	char *name;
	char *description;
	json_t *schema;          /* inputSchema, checked to use only the supported subset */
	enum tools_kind kind;
	/* command */
	char **argv;             /* templates; argv[0] absolute path; NULL-terminated */
	size_t argc;
	int stdin_json;          /* write the arguments as JSON to stdin */
	/* http */
	char *method;            /* GET or POST (POST sends the arguments as JSON) */
	char *url;               /* template, placeholders URL-encoded */
	char **headers;          /* templates "Name: value"; NULL-terminated */
	size_t n_headers;
	/* both */
	char *credential;        /* file name in the credential dir, or NULL */
	char *credential_header; /* http: header template using {credential} */
	unsigned timeout_ms;
	size_t max_output;
	char *path;              /* the definition file */
};

struct tools_set {
	struct tools_def *defs;
	size_t n;
};

/* Load every *.json file in dir (sorted by name). A bad file fails the whole load (a gateway
 * should not silently lose a tool): returns TOOLS_ERR_CONFIG with why = "<file>: <reason>".
 * An empty or missing directory gives an empty set. */
enum tools_err tools_load_dir(const char *dir, struct tools_set **ret, char *why, size_t whylen);
/* Parse one definition (exposed for tests). */
enum tools_err tools_def_parse(const json_t *j, struct tools_def *def, char *why, size_t whylen);
void tools_def_clear(struct tools_def *def);
const struct tools_def *tools_find(const struct tools_set *set, const char *name);
void tools_set_free(struct tools_set *set);

/* Expand "{name}" placeholders from args (string as is, numbers and booleans in JSON form,
 * absent → ""); "{credential}" from cred when cred is not NULL. url_encode escapes values.
 * Returns a malloc'd string or NULL (out of memory / result longer than 64 KiB). */
char *tools_expand(const char *tmpl, const json_t *args, const char *cred, int url_encode);

/* ---- JSON Schema subset (tools_schema.c) ------------------------------------------------ */

/* Check that schema uses only what tools_schema_validate understands. 0 or -1 with why. */
int tools_schema_check(const json_t *schema, char *why, size_t whylen);
/* Validate instance; 0 when valid, else -1 with why = "<json pointer>: <reason>". */
int tools_schema_validate(const json_t *schema, const json_t *instance, char *why, size_t whylen);

/* ---- executors (tools_exec.c) ----------------------------------------------------------- */

struct tools_output {
	char *data;              /* stdout / response body, NUL-terminated, malloc'd */
	size_t len;
	char *errtext;           /* stderr (command), bounded; may be NULL */
	int exit_status;         /* command: exit code, or 128+signal; -1 if not run */
	long http_status;        /* http: status code; 0 if none */
	double seconds;
	enum tools_err err;      /* TOOLS_OK, EXEC, TIMEOUT, OUTPUT_LIMIT, HTTP, NO_CREDENTIAL */
	char detail[256];
};

/* Run the tool with validated args. cred_dir is where credentials live. Fills out (free with
 * tools_output_clear) and returns out->err. */
enum tools_err tools_run(const struct tools_def *def, const json_t *args, const char *cred_dir,
			 struct tools_output *out);
void tools_output_clear(struct tools_output *out);

/* Read credential name from dir (bounded, trailing newline dropped, no CR/LF/NUL inside).
 * Returns a malloc'd string the caller must wipe (tools_secret_free) or NULL with errno. */
char *tools_credential_read(const char *dir, const char *name);
void tools_secret_free(char *s);

/* ---- journal (tools_journal.c) ---------------------------------------------------------- */

#define TOOLS_MAX_JOURNAL_LINE (4u << 20)

/* Append one record (a JSON object). The journal adds "seq" and "prev" (SHA-256 hex of the
 * previous line, "" for the first), takes an exclusive lock, writes one line and fsyncs.
 * Returns 0 or -1 with errno. */
int tools_journal_append(const char *path, json_t *record);
/* Read all records in order, checking the chain. Returns a JSON array (new reference) or NULL
 * with why ("line N: ..."). */
json_t *tools_journal_read(const char *path, char *why, size_t whylen);

/* ---- the lock (tools_lock.c) ------------------------------------------------------------ */

struct tools_lock_cfg {
	const char *run_dir;       /* verdict.cose + verdict-receipt.cose; default /run/sluice */
	const char *cred_dir;      /* default /run/credentials/@initrd */
	const char *verifier_key;  /* pinned verifier public key file */
	const char *ts_key;        /* pinned transparency service key file */
	const char *host_id;       /* this host */
	const struct tools_set *tools; /* configured tools (for their credentials) */
	int64_t now;               /* seconds since the epoch; 0 = time(NULL) */
};

struct tools_unlock {
	char **allowed;            /* tool names the verdict allows; NULL-terminated */
	size_t n_allowed;
	uint8_t verdict_sha256[32];/* SHA-256 of verdict.cose as stored */
	int64_t exp;
};

/* TOOLS_OK fills ret (free with tools_unlock_clear); anything else is the lock reason with
 * detail filled. */
enum tools_err tools_lock_check(const struct tools_lock_cfg *cfg, struct tools_unlock *ret,
				char *detail, size_t detaillen);
void tools_unlock_clear(struct tools_unlock *u);
int tools_unlock_allows(const struct tools_unlock *u, const char *name);

/* ---- the per-call statement (tools_receipt.c) ------------------------------------------- */

struct tools_call_cfg {
	const char *tcti;          /* TPM holding the statement key */
	const char *ts_url;        /* SCRAPI service */
	const char *ts_key;        /* pinned TS key */
	const char *host_id;       /* iss/sub of the statement */
	double budget;             /* seconds for registration, default 10 */
	const char *ca_file;       /* https to the TS, optional */
	int insecure_http;         /* allow plain http to a non-loopback TS */
};

struct tools_call_record {
	uint8_t *statement;        /* COSE_Sign1 as registered */
	size_t statement_len;
	uint8_t *receipt;          /* verified receipt */
	size_t receipt_len;
	char entry_id[128];
};

/* SHA-256 of the arguments as canonical JSON (compact, sorted keys). */
int tools_args_sha256(const json_t *args, uint8_t out[32]);

/* Build the call statement (tool, argument hash, time, verdict hash), sign it with the TPM
 * statement key, register it, verify the receipt. TOOLS_OK or SIGN/REGISTER/RECEIPT with
 * detail. */
enum tools_err tools_call_register(const struct tools_call_cfg *cfg, const char *tool,
				   const uint8_t args_sha256[32], const uint8_t verdict_sha256[32],
				   int64_t when, struct tools_call_record *ret, char *detail,
				   size_t detaillen);
void tools_call_record_clear(struct tools_call_record *r);

/* Verify a journaled call (statement + receipt) against the TS key. 0 or -1 with why. */
int tools_call_verify(const char *ts_key, const uint8_t *statement, size_t statement_len,
		      const uint8_t *receipt, size_t receipt_len, char *why, size_t whylen);

/* The call statement's payload (deterministic CBOR, see tools_receipt.c); malloc'd. 0 or -1. */
int tools_call_payload(const char *tool, const uint8_t args_sha256[32], const uint8_t verdict_sha256[32],
		       const char *host, int64_t when, uint8_t **ret, size_t *ret_len);

/* Does the statement's payload say exactly this call (tool, argument hash, verdict hash,
 * time; host from its CWT issuer)? 0 or -1 with why. Used by `sluice tools audit`. */
int tools_call_statement_matches(const uint8_t *stmt, size_t len, const char *tool, const uint8_t args_sha256[32],
				 const uint8_t verdict_sha256[32], int64_t when, char *why, size_t whylen);

/* ---- the gateway (tools_gate.c) --------------------------------------------------------- */

struct tools_gate_cfg {
	struct tools_lock_cfg lock;
	struct tools_call_cfg call;
	const char *journal;       /* default /var/lib/sluice/tools.journal */
	const struct tools_set *tools;
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
};

struct mcp_ops;
/* Fill ops with the gateway backend (ops->ud = cfg, which must outlive the server). */
void tools_gate_ops(struct tools_gate_cfg *cfg, struct mcp_ops *ops);

#endif
