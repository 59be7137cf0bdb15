/* sluice-verifier internals (private to verifier/; not a library header).
 *
 * verifier/policy.c    JSON policy: parse, validate, group lookup (refcounted, swapped on SIGHUP)
 * verifier/store.c     SQLite (WAL) store: hosts, pending enrolments, nonces, verdict history
 * verifier/ekcert.c    EK certificate validation against a directory of trusted CAs (OpenSSL)
 * verifier/reasons.c   typed appraisal reasons ({type, detail}) and the appraisal steps' names
 * verifier/appraise.c  the appraisal pipeline (issue order, stops at the first failure)
 * verifier/enroll.c    enrolment: EK/AK checks, MakeCredential challenge, finish
 * verifier/service.c   libmicrohttpd service: routing, body limits, queue bound, metrics
 * verifier/main.c      CLI: `sluice-verifier [serve] ...`, `sluice-verifier policy check FILE`
 *
 * Every extern symbol is prefixed verifier_ (the objects are archived into libverifier.a and
 * linked into every test binary). */
#ifndef SLUICE_VERIFIER_INT_H
#define SLUICE_VERIFIER_INT_H

#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>

#define VERIFIER_MAX_PCR 24
#define VERIFIER_HASH_LEN 32
#define VERIFIER_NONCE_LEN 32
#define VERIFIER_MAX_POLICY (1u << 20)      /* policy file size */
#define VERIFIER_MAX_RELEASE (256u << 10)   /* one group's release payload, all files */
#define VERIFIER_MAX_HOST_ID 128
/* 1 if s is a host id: [A-Za-z0-9._:@-]{1,VERIFIER_MAX_HOST_ID} (safe in logs, URLs, SQL). */
int verifier_host_id_valid(const char *s);
/* Request body limits per endpoint (capped by --max-body); docs/sluice-verifier.md. */
#define VERIFIER_MAX_BODY_ATTEST (1u << 20)
#define VERIFIER_MAX_BODY_ENROLL (64u << 10)
#define VERIFIER_MAX_BODY_OTHER (8u << 10)

/* ---- errors (stable values) ---- */
enum verifier_err {
	VERIFIER_OK = 0,
	VERIFIER_ERR_INVAL = 1,    /* bad argument or malformed input */
	VERIFIER_ERR_NOMEM = 2,
	VERIFIER_ERR_IO = 3,       /* file or database I/O */
	VERIFIER_ERR_POLICY = 4,   /* policy file invalid */
	VERIFIER_ERR_NOTFOUND = 5, /* no such host / nonce / pending enrolment */
	VERIFIER_ERR_CONFLICT = 6, /* re-enrolment with another EK, nonce already used */
	VERIFIER_ERR_EXPIRED = 7,
	VERIFIER_ERR_CERT = 8,     /* EK certificate did not validate */
	VERIFIER_ERR_CRYPTO = 9,   /* OpenSSL failure */
	VERIFIER_ERR_DB = 10,      /* SQLite failure */
};
const char *verifier_strerror(enum verifier_err err);

/* ---- policy ---- */
struct verifier_pcrval {
	uint8_t (*vals)[VERIFIER_HASH_LEN]; /* accepted values; NULL/0 = not constrained by value */
	size_t n;
};

struct verifier_release_file {
	char *name;     /* credential name (file name under the credential dir) */
	uint8_t *data;  /* loaded at policy load; wiped on free */
	size_t len;
};

struct verifier_group {
	char *name;
	char **hosts; /* fnmatch patterns on the host id */
	size_t n_hosts;
	uint16_t pcr_alg;  /* TPM_ALG_SHA256 (0x000b) */
	uint32_t pcr_mask; /* selected PCRs */
	struct verifier_pcrval pcr_values[VERIFIER_MAX_PCR];
	uint8_t (*events)[VERIFIER_HASH_LEN]; /* accepted TCG event digests; n_events == 0: any (replay only) */
	size_t n_events;
	int events_set;                       /* "events" key present (an empty list then accepts none) */
	uint8_t (*rootfs)[VERIFIER_HASH_LEN]; /* accepted rootfs root digests */
	size_t n_rootfs;
	char **tools;
	size_t n_tools;
	struct verifier_release_file *release;
	size_t n_release;
	char *release_pt;  /* the release payload {"name": base64(content), ...} (JSON, sorted keys),
			    * encoded once at policy load; wiped on free */
	size_t release_pt_len;
	int64_t lifetime; /* verdict lifetime, seconds */
};

struct verifier_policy {
	char *id;  /* "policy_id" or "sha256:<hex of the file>" */
	uint8_t file_hash[VERIFIER_HASH_LEN];
	struct verifier_group *groups;
	size_t n_groups;
	int64_t nonce_ttl;            /* seconds */
	int allow_reenroll_any;       /* enrollment.allow_reenroll == true */
	char **reenroll_hosts;        /* or a list of host ids allowed to re-enrol with another EK */
	size_t n_reenroll_hosts;
	uint8_t (*ek_pub_allowed)[VERIFIER_HASH_LEN]; /* SHA-256 of SPKI DER of pre-registered EKs */
	size_t n_ek_pub_allowed;
	int refs;                     /* protected by the holder's mutex */
};

/* Parse and validate a policy from a file. Relative release file paths are resolved against the
 * policy file's directory. On error returns non-OK and writes one line to err. */
enum verifier_err verifier_policy_load(const char *path, struct verifier_policy **ret, char *err, size_t errlen);
enum verifier_err verifier_policy_parse(const char *json, size_t len, const char *basedir,
					struct verifier_policy **ret, char *err, size_t errlen);
void verifier_policy_free(struct verifier_policy *p);
/* The first group whose host patterns match host_id, or NULL. */
const struct verifier_group *verifier_policy_group(const struct verifier_policy *p, const char *host_id);
const struct verifier_group *verifier_policy_group_by_name(const struct verifier_policy *p, const char *name);
int verifier_policy_reenroll_allowed(const struct verifier_policy *p, const char *host_id);
int verifier_policy_ek_pub_allowed(const struct verifier_policy *p, const uint8_t spki_hash[VERIFIER_HASH_LEN]);
int verifier_group_rootfs_ok(const struct verifier_group *g, const uint8_t digest[VERIFIER_HASH_LEN]);
int verifier_group_event_ok(const struct verifier_group *g, const uint8_t digest[VERIFIER_HASH_LEN]);
int verifier_group_pcr_value_ok(const struct verifier_group *g, unsigned pcr, const uint8_t *val, size_t len);

/* A refcounted holder so SIGHUP can swap the policy while requests use the old one. */
struct verifier_policy_holder {
	pthread_mutex_t mu;
	struct verifier_policy *cur;
	char *path;
};
struct verifier_policy *verifier_policy_get(struct verifier_policy_holder *h);
void verifier_policy_put(struct verifier_policy_holder *h, struct verifier_policy *p);
/* Reload from h->path; keeps the old policy on error. */
enum verifier_err verifier_policy_reload(struct verifier_policy_holder *h, char *err, size_t errlen);

/* ---- store ---- */
struct verifier_store;

struct verifier_host {
	char host_id[VERIFIER_MAX_HOST_ID + 1];
	uint8_t *ek_pub;   /* TPM2B_PUBLIC (marshalled) */
	size_t ek_pub_len;
	uint8_t *ek_cert;  /* DER, may be NULL */
	size_t ek_cert_len;
	uint8_t *ak_pub;   /* TPM2B_PUBLIC (marshalled) */
	size_t ak_pub_len;
	uint8_t *ak_name;  /* TPM2B_NAME contents (alg || digest) */
	size_t ak_name_len;
	int64_t enrolled_at;
	char last_status[32];
	int64_t last_at;
	char *last_reasons; /* JSON array text or NULL */
};
void verifier_host_clear(struct verifier_host *h);

enum verifier_err verifier_store_open(const char *dir, struct verifier_store **ret);
void verifier_store_close(struct verifier_store *s);
const char *verifier_store_last_cause(struct verifier_store *s);

enum verifier_err verifier_store_host_get(struct verifier_store *s, const char *host_id, struct verifier_host *ret);
/* Find the host enrolled with this AK (by AK name). */
enum verifier_err verifier_store_host_by_ak(struct verifier_store *s, const uint8_t *ak_name, size_t len,
					   struct verifier_host *ret);
enum verifier_err verifier_store_host_put(struct verifier_store *s, const struct verifier_host *h);
/* For an appraisal: the host id, EK and AK of the enrolment whose AK has this name (ek_cert
 * NULL, no last verdict), from memory once read (verifier_store_host_put forgets them all). */
enum verifier_err verifier_store_host_keys_by_ak(struct verifier_store *s, const uint8_t *ak_name, size_t len,
						 struct verifier_host *ret);

enum verifier_err verifier_store_pending_put(struct verifier_store *s, const char *id, const struct verifier_host *h,
					     const uint8_t secret_hash[VERIFIER_HASH_LEN], int64_t expires);
/* Fetch and delete (single use). */
enum verifier_err verifier_store_pending_take(struct verifier_store *s, const char *id, struct verifier_host *ret,
					      uint8_t secret_hash[VERIFIER_HASH_LEN], int64_t *expires);

enum verifier_err verifier_store_nonce_put(struct verifier_store *s, const uint8_t *nonce, size_t len,
					   const char *host_id, int64_t expires);
/* Consume a nonce: VERIFIER_OK once; NOTFOUND if unknown, CONFLICT if already used or issued to another
 * host (which_host gets the owner), EXPIRED if past its expiry (it is consumed in every case it exists). */
enum nonce_state { NONCE_FRESH, NONCE_UNKNOWN, NONCE_REPLAYED, NONCE_OTHER_HOST, NONCE_EXPIRED };
enum verifier_err verifier_store_nonce_consume(struct verifier_store *s, const uint8_t *nonce, size_t len,
					       const char *host_id, int64_t now, enum nonce_state *state);
enum verifier_err verifier_store_nonce_purge(struct verifier_store *s, int64_t before);

enum verifier_err verifier_store_verdict_add(struct verifier_store *s, const char *host_id, int64_t at,
					     const char *status, const char *reasons_json,
					     const uint8_t *stmt_hash, size_t stmt_hash_len,
					     const uint8_t *verdict, size_t verdict_len,
					     const uint8_t *receipt, size_t receipt_len);
enum verifier_err verifier_store_count(struct verifier_store *s, const char *table, long long *ret);

/* ---- EK certificates ---- */
struct verifier_ekca;
enum verifier_err verifier_ekca_load(const char *dir, struct verifier_ekca **ret, char *err, size_t errlen);
void verifier_ekca_free(struct verifier_ekca *ca);
/* Validate a DER EK certificate against the CA directory (EK certs carry TPM-specific critical
 * extensions; those are accepted). On success the SPKI DER of the certificate's key is returned
 * (malloc'd) so the caller can compare it with the EK public. */
enum verifier_err verifier_ekca_verify(const struct verifier_ekca *ca, const uint8_t *der, size_t len,
				       uint8_t **ret_spki, size_t *ret_spki_len, char *err, size_t errlen);

/* ---- reasons ---- */
/* A typed reason {type, detail{...}}; detail is a JSON object owned by the reason list. */
json_t *verifier_reason(const char *type, const char *fmt, ...);
/* Hex helper (lower case) returning a json string. */
json_t *verifier_hexstr(const uint8_t *b, size_t len);
void verifier_hex(const uint8_t *in, size_t len, char *out);
long verifier_unhex(const char *hex, uint8_t *out, size_t cap);
/* Base64 (standard, padded) of untrusted strings with a maximum decoded length. */
int verifier_b64_decode(const char *in, size_t max, uint8_t **ret, size_t *ret_len);
char *verifier_b64_encode(const uint8_t *in, size_t len);

/* ---- metrics ---- */
/* VR_REFUSED: a 403 problem, no verdict (the evidence was not shown to come from the enrolled TPM). */
enum verifier_result { VR_AFFIRMING, VR_CONTRAINDICATED, VR_ERROR, VR_REFUSED, VR__N };
struct verifier_metrics {
	pthread_mutex_t mu;
	unsigned long long appraisals[VR__N];
	unsigned long long buckets[12]; /* latency histogram buckets (seconds), cumulative at render */
	double sum;
	unsigned long long count;
	unsigned long long enrolments, challenges, rejected_busy, http_requests;
};
void verifier_metrics_init(struct verifier_metrics *m);
void verifier_metrics_appraisal(struct verifier_metrics *m, enum verifier_result r, double seconds);
/* Prometheus text; malloc'd. */
char *verifier_metrics_render(struct verifier_metrics *m, long long hosts);

/* ---- the service ---- */
struct bundle_key;
struct bundle_keyset;
struct scrapi_client;
struct verifier_svc_cfg {
	const char *listen;        /* "127.0.0.1:PORT" */
	const char *state_dir;
	const char *policy_path;
	const char *ek_ca_dir;     /* may be NULL: then only pre-registered EK public keys */
	const char *ts_url;        /* transparency service for verdicts */
	const char *ts_key_path;   /* its key (also trusted for agents' receipts) */
	const char *const *trust_ts; /* more trusted TS key files for agents' receipts */
	size_t n_trust_ts;
	const char *verifier_id;
	unsigned threads;
	unsigned queue_max;
	size_t max_body;
	int insecure_http;
	int quiet;
};

struct verifier_svc {
	struct verifier_svc_cfg cfg;
	struct verifier_policy_holder pol;
	struct verifier_store *store;
	struct verifier_ekca *ekca;
	struct bundle_key *key;           /* the verifier's signing key (P-256) */
	struct bundle_keyset *trusted_ts; /* receipts of agents' statements */
	struct bundle_key *ts_key;        /* receipts of our own verdicts */
	struct verifier_metrics metrics;
	struct verifier_keycache *keys;   /* parsed AKs and statement keys */
	int inflight;                     /* atomic */
	void *mhd;                        /* struct MHD_Daemon */
	sem_t workers;                    /* --threads: requests worked on at once */
	pthread_mutex_t ts_mu;            /* idle SCRAPI clients (verdict registration), */
	struct scrapi_client **ts_idle;   /* each keeping its connection to the service */
	size_t n_ts_idle;
	char err[512];
};

enum verifier_err verifier_svc_open(const struct verifier_svc_cfg *cfg, struct verifier_svc **ret, char *err,
				    size_t errlen);
enum verifier_err verifier_svc_start(struct verifier_svc *svc, char *err, size_t errlen);
void verifier_svc_free(struct verifier_svc *svc);
void verifier_svc_log(struct verifier_svc *svc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Request handlers: req is the parsed JSON body; they set *status and return the JSON answer
 * (a problem {"title","detail"} when status >= 400). */
json_t *verifier_enroll(struct verifier_svc *svc, json_t *req, int *status);
json_t *verifier_enroll_finish(struct verifier_svc *svc, json_t *req, int *status);
json_t *verifier_challenge(struct verifier_svc *svc, json_t *req, int *status);
json_t *verifier_attest(struct verifier_svc *svc, json_t *req, int *status);
json_t *verifier_host_info(struct verifier_svc *svc, const char *host_id, int *status);
json_t *verifier_problem(int status, int *ret_status, const char *title, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Register a verdict statement with the transparency service: the receipt, verified. */
enum verifier_err verifier_ts_register(struct verifier_svc *svc, const uint8_t *stmt, size_t len, uint8_t **ret,
				       size_t *ret_len, char *err, size_t errlen);

/* Free the idle SCRAPI clients (at shutdown). */
void verifier_ts_clients_free(struct verifier_svc *svc);

/* ---- CBOR bodies (cbor.c) ---- */
/* A request body (CBOR map, text keys) as the equivalent JSON object (bytes -> base64). Read in
 * place by a bounded reader: anything but a definite map of at most 64 text keys with scalar
 * values is refused before anything is allocated for it. */
json_t *verifier_cbor_to_json(const uint8_t *buf, size_t len, char *err, size_t errlen);
/* 0 if a JSON body (before jansson parses it) is an object of at most 64 fields with no nested
 * object or array; -1 with err otherwise. A shape pre-check only; jansson checks the syntax. */
int verifier_json_shape_check(const char *buf, size_t len, char *err, size_t errlen);
/* An answer as CBOR (known binary fields back to byte strings). */
int verifier_json_to_cbor(json_t *j, uint8_t **ret, size_t *ret_len);

/* ---- key cache (keycache.c) ---- */
struct verifier_keycache;
struct quote_diag;
int verifier_keycache_new(struct verifier_keycache **ret);
void verifier_keycache_free(struct verifier_keycache *kc);
/* quote_signature_verify / quote_certify_verify, fast for cached ECDSA AKs (same checks;
 * returns enum quote_err values). */
int verifier_keycache_sig_verify(struct verifier_keycache *kc, const uint8_t *pub, size_t pub_len,
				 const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len,
				 struct quote_diag *diag);
int verifier_keycache_certify_verify(struct verifier_keycache *kc, const uint8_t *ak_pub, size_t ak_len,
				     const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
				     const uint8_t *sk_pub, size_t sk_len, const uint8_t *qualifying, size_t qlen,
				     struct quote_diag *diag);
const struct bundle_key *verifier_keycache_bundle_key(struct verifier_keycache *kc, const uint8_t *pub, size_t len);
/* quote_public_parse, answered from the cache when the key is in it (never adds it: anyone
 * can send an AK public). Returns an enum quote_err value. */
struct quote_public_info;
int verifier_keycache_public_info(struct verifier_keycache *kc, const uint8_t *pub, size_t len,
				  struct quote_public_info *ret, struct quote_diag *diag);
/* An enrolled EK prepared for MakeCredential (quote_ek_new, once per EK), or NULL: then
 * quote_make_credential. Borrowed; valid while the service runs. */
struct quote_ek;
const struct quote_ek *verifier_keycache_ek(struct verifier_keycache *kc, const uint8_t *ek_pub, size_t len);

/* ---- hashing (util.c) ---- */
/* SHA-256 of buf into out (32 bytes) with an EVP_MD fetched once per process: EVP_sha256()
 * makes OpenSSL 3 fetch the provider's implementation on every EVP_Digest. 0 or -1. */
int verifier_sha256(const void *buf, size_t len, uint8_t out[VERIFIER_HASH_LEN]);
/* AES-256-GCM fetched once (the release's cipher), for the same reason. */
struct evp_cipher_st;
const struct evp_cipher_st *verifier_aes256gcm(void);

/* ---- time ---- */
int64_t verifier_now(void);      /* wall clock, seconds since the epoch */
double verifier_mono(void);      /* monotonic seconds */

#endif
