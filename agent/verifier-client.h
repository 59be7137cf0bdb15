/* The agent's side of the verifier API (private to agent/): a bounded HTTP client (libscrapi's
 * helper: no automatic redirects, timeouts, response size caps), the verifier calls (enrol, challenge,
 * attest), verdict verification, and unwrapping the released credential in the TPM.
 *
 * Wire format of the verifier API (docs/sluice-verifier.md): JSON bodies, binary fields in
 * standard base64, errors as application/problem+json {"title", "detail", "status"}. */
#ifndef SLUICE_AGENT_VERIFIER_CLIENT_H
#define SLUICE_AGENT_VERIFIER_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct quote_ctx;
struct bundle_keyset;
struct bundle_ear;

#define AGENT_HTTP_MAX_BODY (32u << 20)

struct agent_http_resp {
	long status;
	uint8_t *body; /* malloc'd, NUL-terminated (not counted in len) */
	size_t len;
	char content_type[128];
	char location[2048];
	long retry_after; /* seconds, -1 if absent */
};
void agent_http_resp_clear(struct agent_http_resp *r);

struct agent_http_opts {
	const char *ca_file;  /* https trust anchors, optional */
	int insecure_http;    /* allow plain http to non-loopback hosts */
	double timeout;       /* seconds for the whole exchange */
	size_t max_body;      /* response cap (0: AGENT_HTTP_MAX_BODY) */
};

/* One HTTP exchange. body may be NULL (GET). Returns 0 when an HTTP answer came back (any
 * status), -1 with err filled on transport failure, timeout, oversize answer, or a plain-http
 * URL to a non-loopback host without insecure_http. */
int agent_http(const struct agent_http_opts *o, const char *method, const char *url, const char *content_type,
	       const void *body, size_t len, const char *accept, struct agent_http_resp *ret, char *err, size_t errlen);

/* POST JSON to base_url + path; on 2xx *ret gets the parsed object. On a 4xx/5xx answer err is
 * "HTTP <status>: <title>: <detail>" and *ret_title (if non-NULL) the problem title (the
 * verifier's typed reason, e.g. "enroll.ek.mismatch"). Returns the HTTP status, or -1. */
long agent_vc_post(const struct agent_http_opts *o, const char *base_url, const char *path, json_t *req,
		   json_t **ret, char *title, size_t title_len, char *err, size_t errlen);

/* Base64 helpers (standard alphabet, padded). */
char *agent_b64(const uint8_t *in, size_t len);
int agent_unb64(const char *in, size_t max, uint8_t **ret, size_t *ret_len);

/* Register a signed statement with a SCRAPI transparency service (POST /entries; 201, or 303
 * then polling with Retry-After inside budget seconds) and verify the receipt against ts_keys.
 * Returns 0 and the receipt, or -1 with err. */
int agent_ts_register(const struct agent_http_opts *o, const char *ts_url, const struct bundle_keyset *ts_keys,
		      const uint8_t *stmt, size_t stmt_len, double budget, uint8_t **ret, size_t *ret_len, char *err,
		      size_t errlen);

/* Load a key file (PEM, COSE_Key, COSE_KeySet) as a key set. */
int agent_load_keyset(const char *path, struct bundle_keyset **ret, char *err, size_t errlen);

/* Enrolment with a verifier (sluice enroll): EK public (+ certificate when present), AK, the
 * MakeCredential challenge activated in the TPM. 0 or -1 with why. */
int agent_enroll(struct quote_ctx *q, const struct agent_http_opts *o, const char *verifier_url, const char *host_id,
		 char *why, size_t whylen);

/* The released credential carried by an affirming verdict: "SLR1" || u32 len || TPM2
 * credential file (TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET) || iv(12) || u32 len ||
 * AES-256-GCM ciphertext || tag(16), AAD "sluice-release-v1" || statement hash. Recovers the key
 * with ActivateCredential and decrypts; *ret is the JSON payload {"name": base64(content)}.
 * Returns 0, or -1 with why (a blob for another TPM fails in ActivateCredential). */
int agent_release_unwrap(struct quote_ctx *q, const uint8_t *blob, size_t len, const uint8_t stmt_hash[32],
			 json_t **ret, char *why, size_t whylen);

/* Overwrite the payload's (base64) secrets in place; call before json_decref. */
void agent_release_wipe(json_t *payload);
/* Write the payload's credentials as files (mode 0400) into dir. */
int agent_release_write(json_t *payload, const char *dir, size_t *ret_n, char *why, size_t whylen);

/* The pieces of the attestation flow, so tests can tamper between them. */
struct agent_attest_state;
struct agent_attest_cfg;
int agent_attest_state_new(const struct agent_attest_cfg *cfg, struct agent_attest_state **ret, char *why,
			   size_t whylen);
void agent_attest_state_free(struct agent_attest_state *s);
/* Steps: measure + extend; challenge (nonce_override: use this nonce instead of asking);
 * quote + evidence + statement; register; appraise (returns 0 only when affirming and the
 * verdict and its receipt verify); release. */
int agent_attest_measure(struct agent_attest_state *s, char *why, size_t whylen);
int agent_attest_challenge(struct agent_attest_state *s, char *why, size_t whylen);
int agent_attest_evidence(struct agent_attest_state *s, char *why, size_t whylen);
/* (Re-)sign the current evidence part as the statement (agent_attest_evidence calls it). */
int agent_attest_statement(struct agent_attest_state *s, char *why, size_t whylen);
int agent_attest_register(struct agent_attest_state *s, char *why, size_t whylen);
int agent_attest_appraise(struct agent_attest_state *s, char *why, size_t whylen);
int agent_attest_release(struct agent_attest_state *s, char *why, size_t whylen);

/* Access for tests and tools: the current nonce, evidence, statement and receipt buffers
 * (owned by the state; replace them with agent_attest_set). */
enum agent_attest_part { AGENT_PART_NONCE, AGENT_PART_EVIDENCE, AGENT_PART_STATEMENT, AGENT_PART_RECEIPT,
			 AGENT_PART_VERDICT, AGENT_PART_CREDENTIAL };
const uint8_t *agent_attest_get(const struct agent_attest_state *s, enum agent_attest_part part, size_t *len);
int agent_attest_set(struct agent_attest_state *s, enum agent_attest_part part, const uint8_t *buf, size_t len);
/* Use this PCR selection (tpm2-tools syntax) instead of the one the challenge named. */
int agent_attest_set_pcrs(struct agent_attest_state *s, const char *sel);
/* Extend the measurement PCR with a sluice event log record of the given type (as `sluice boot`
 * does with QUOTE_SLOG_RELEASED to seal the phase), keeping the saved log in step. */
int agent_attest_extend(struct agent_attest_state *s, uint32_t type, const uint8_t *content, size_t len, char *why,
			size_t whylen);

/* The verifier's answer to the last appraisal ({"status", "reasons", ...}), borrowed. */
json_t *agent_attest_answer(const struct agent_attest_state *s);
/* The quote context (TPM), borrowed. */
struct quote_ctx *agent_attest_tpm(const struct agent_attest_state *s);

#endif
