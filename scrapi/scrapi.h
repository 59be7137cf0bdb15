/* libscrapi: a SCRAPI client (draft-ietf-scitt-scrapi-09) and the bounded HTTP request helper
 * that sluice's other HTTP clients share (the agent's verifier client, the verifier when it
 * registers its verdicts).
 *
 * HTTP rules, for every request made through this library:
 *   - redirects are NEVER followed automatically; 3xx answers are returned to the caller
 *     (the SCRAPI client polls Location itself, honouring Retry-After);
 *   - connect and total timeouts on every request, and a maximum response size;
 *   - only http and https; https verifies the peer against ca_file (or the system store);
 *     plain http only to loopback hosts (127.0.0.0/8, ::1, localhost) unless insecure_http;
 *   - error answers (4xx/5xx) with concise problem details (RFC 9290, CBOR {-1: title,
 *     -2: detail}) or a short text body are decoded into the response / the error cause.
 *
 * This library does not verify receipts (libraries never include each other): scrapi_register
 * returns the receipt bytes and the caller verifies them with libbundle against the pinned
 * service key before trusting them. Nothing here prints, logs or exits. Contexts are not
 * thread-safe: use one per thread. */
#ifndef SLUICE_SCRAPI_H
#define SLUICE_SCRAPI_H

#include <stddef.h>
#include <stdint.h>

/* Stable values. */
enum scrapi_err {
	SCRAPI_OK = 0,
	SCRAPI_ERR_INVAL = 1,    /* bad argument or malformed URL */
	SCRAPI_ERR_NOMEM = 2,
	SCRAPI_ERR_INSECURE = 3, /* plain http to a non-loopback host without insecure_http */
	SCRAPI_ERR_NETWORK = 4,  /* connect, TLS or transfer failure (cause: libcurl's message) */
	SCRAPI_ERR_TIMEOUT = 5,  /* a request timed out, or the total budget ran out while retrying
	                          * or polling (cause says which and after how many polls) */
	SCRAPI_ERR_TOOBIG = 6,   /* response body larger than max_response */
	SCRAPI_ERR_REJECTED = 7, /* the service refused the statement (4xx; cause: status, problem
	                          * title and detail) */
	SCRAPI_ERR_HTTP = 8,     /* an unexpected status (cause: status and problem details) */
	SCRAPI_ERR_PROTOCOL = 9, /* the service broke SCRAPI: 3xx without Location, a redirect from
	                          * POST other than 303, empty or non-COSE receipt body */
	SCRAPI_ERR_TLS = 10,     /* the server's certificate did not verify, or the CA file is
	                          * unusable (not retried) */
};

const char *scrapi_strerror(enum scrapi_err err);

/* ---- bounded HTTP --------------------------------------------------------------------------- */

struct scrapi_http_cfg {
	const char *ca_file;     /* PEM CA bundle for https; NULL: the system store */
	int insecure_http;       /* allow http:// to non-loopback hosts */
	long connect_timeout_ms; /* default 5000 */
	long timeout_ms;         /* whole request, default 30000 */
	size_t max_response;     /* body bytes, default 1 MiB */
	const char *user_agent;  /* default "sluice/scrapi" */
};

struct scrapi_http_req {
	const char *method;       /* "GET" or "POST" */
	const char *url;
	const char *content_type; /* of the body (POST) */
	const char *accept;       /* NULL: no Accept header */
	const void *body;
	size_t body_len;
	long timeout_ms;          /* 0: the cfg value; otherwise min(this, cfg) */
};

struct scrapi_http_resp {
	long status;
	char content_type[128];  /* "" when absent */
	char location[2048];     /* Location header as sent ("" when absent) */
	long retry_after;        /* seconds from Retry-After (delta or HTTP date), -1 when absent */
	uint8_t *body;           /* malloc'd, NUL-terminated for convenience (not counted) */
	size_t body_len;
	char problem_title[128]; /* from problem details of a 4xx/5xx answer ("" when none) */
	char problem_detail[512];
};

struct scrapi_http;
enum scrapi_err scrapi_http_new(const struct scrapi_http_cfg *cfg, struct scrapi_http **ret);
void scrapi_http_free(struct scrapi_http *h);
/* One request. SCRAPI_OK when a complete response arrived, whatever its status (the caller
 * judges it); resp is then filled and must be released with scrapi_http_resp_clear. */
enum scrapi_err scrapi_http_do(struct scrapi_http *h, const struct scrapi_http_req *req,
			       struct scrapi_http_resp *resp);
void scrapi_http_resp_clear(struct scrapi_http_resp *resp);
/* The cause of the last failure on h: libcurl's message, the rule that refused a URL, ... */
const char *scrapi_http_last_cause(const struct scrapi_http *h);
/* The URL rule alone: SCRAPI_OK, SCRAPI_ERR_INVAL (not an http(s) URL) or SCRAPI_ERR_INSECURE. */
enum scrapi_err scrapi_url_check(const char *url, int insecure_http);
/* Decode concise problem details (CBOR map, -1 title, -2 detail); 0 or -1. Buffers are
 * always NUL-terminated (truncated to fit). */
int scrapi_problem_decode(const uint8_t *buf, size_t len, char *title, size_t title_cap, char *detail,
			  size_t detail_cap);

/* ---- SCRAPI client ------------------------------------------------------------------------ */

struct scrapi_cfg {
	const char *url;              /* service base URL, e.g. https://ts.example or http://127.0.0.1:8080 */
	struct scrapi_http_cfg http;
	double budget;                /* seconds for a whole registration incl. retries and polling; default 60 */
	double backoff_initial;       /* seconds, default 0.25; doubles per retry, with jitter */
	double backoff_max;           /* default 5 */
	unsigned max_polls;           /* default 1000 */
	const char *post_query;       /* appended to POST /entries, e.g. "api-version=2026-03-26" */
};

/* Outcome of a registration. */
struct scrapi_result {
	uint8_t *receipt;        /* malloc'd receipt bytes (UNVERIFIED: verify before use) */
	size_t receipt_len;
	char entry_url[2048];    /* absolute URL of the entry when the service named one, else "" */
	char entry_id[256];      /* its last path segment, else "" */
	unsigned attempts;       /* POSTs sent */
	unsigned polls;          /* GETs sent while waiting */
	double seconds;
};

struct scrapi_client;
enum scrapi_err scrapi_client_new(const struct scrapi_cfg *cfg, struct scrapi_client **ret);
void scrapi_client_free(struct scrapi_client *c);
/* POST /entries (Content-Type application/cose) and follow the protocol to a receipt:
 * 201/200 with the receipt; 303 -> poll Location (302 = wait, 200 = receipt); legacy 202 ->
 * poll Location or /operations/{id} until it names an entry, then GET /entries/{id}; 429, 503
 * and other 5xx and network errors are retried; an operation the service answers 404 for while
 * polling (it restarted before committing) is submitted again (at most 3 times); Retry-After
 * is honoured, otherwise exponential
 * backoff with jitter; all inside the time budget. 4xx -> SCRAPI_ERR_REJECTED. */
enum scrapi_err scrapi_register(struct scrapi_client *c, const uint8_t *stmt, size_t len, struct scrapi_result *ret);
void scrapi_result_clear(struct scrapi_result *r);
/* GET /.well-known/scitt-keys: the COSE_KeySet bytes (malloc'd, unverified). */
enum scrapi_err scrapi_get_keys(struct scrapi_client *c, uint8_t **ret, size_t *ret_len);
/* GET /entries/{id}: a receipt for an entry id (as from scrapi_result.entry_id). */
enum scrapi_err scrapi_get_receipt(struct scrapi_client *c, const char *entry_id, uint8_t **ret, size_t *ret_len);
/* One line: what went wrong last ("HTTP 400 Bad Signature: the statement ...", libcurl's
 * message, "still pending after 12 polls (budget 10s)"). "" if nothing failed. */
const char *scrapi_last_cause(const struct scrapi_client *c);

#endif
