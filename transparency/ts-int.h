/* sluice-ts internals: private to transparency/ (not a library header).
 *
 *   cbor.c     tiny deterministic CBOR writer and a bounded reader (heads, skipping, splicing)
 *   log.c      the append-only log file: format, crash recovery, group appends with one fsync
 *   key.c      the service key (libbundle; P-256, created on first start), COSE_Key, kid, signatures
 *   receipt.c  consistency receipts (vds 1, 396 -> -2) and the consistency-root computation
 *              auditors need (inclusion receipts are libbundle's)
 *   policy.c   registration policy on libbundle (COSE parse and verify, keys, the log record):
 *              statement shape, algorithms, issuer keys, signature
 *   server.c   libmicrohttpd endpoints, the committer thread (group commit), /metrics
 *   main.c     command line, signals
 */
#ifndef SLUICE_TS_INT_H
#define SLUICE_TS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "merkle/merkle.h"

/* ---- cbor.c ---------------------------------------------------------------------------- */

/* A growable output buffer. On allocation failure ->oom is set and further writes are
 * ignored; check it once at the end. */
struct ts_buf {
	uint8_t *p;
	size_t len, cap;
	int oom;
};
void ts_buf_free(struct ts_buf *b);
void ts_buf_put(struct ts_buf *b, const void *data, size_t len);
/* CBOR heads in preferred (shortest) form, RFC 8949 §4.2.1. */
void ts_cbor_head(struct ts_buf *b, unsigned major, uint64_t val);
void ts_cbor_uint(struct ts_buf *b, uint64_t v);
void ts_cbor_int(struct ts_buf *b, int64_t v);
void ts_cbor_bstr(struct ts_buf *b, const void *data, size_t len);
void ts_cbor_tstr(struct ts_buf *b, const char *s);

/* Bounded reader over untrusted bytes. Rejects indefinite lengths and non-shortest heads
 * (we log exactly the bytes we were given, so they must be deterministic). */
struct ts_cbor_rd {
	const uint8_t *p, *end;
};
struct ts_cbor_item {
	unsigned major;      /* 0..7 */
	uint64_t val;        /* argument: integer value, length, count, tag or simple */
	const uint8_t *data; /* bstr/tstr contents */
	const uint8_t *start;/* first byte of the head */
};
/* 0 on success, -1 on malformed/truncated input. */
int ts_cbor_next(struct ts_cbor_rd *r, struct ts_cbor_item *it);
/* Skip one complete item (nested up to depth 16). */
int ts_cbor_skip(struct ts_cbor_rd *r);
/* Interpret an int item (major 0 or 1) as int64; -1 when not an int or out of range. */
int ts_cbor_as_int(const struct ts_cbor_item *it, int64_t *out);

/* ---- log.c ------------------------------------------------------------------------------- */

#define TS_LOG_MAGIC "SLUICE-TS-LOG-1\n"
#define TS_LOG_MAGIC_LEN 16
#define TS_LOG_MAX_RECORD (16u << 20)

struct ts_log;
struct ts_log_recovery {
	uint64_t entries;        /* records recovered */
	uint64_t bytes;          /* file size after recovery */
	uint64_t truncated;      /* bytes cut from a torn tail (0 if none) */
	uint64_t truncated_at;   /* file offset where the torn tail began */
	char why[128];           /* what was wrong with the tail */
};
/* Open (or create) DIR/log, verify every record, truncate a torn tail (reported in rec),
 * and append every leaf hash to tree. Returns 0 or -1 with err (one line) filled. */
int ts_log_open(const char *dir, struct merkle_tree *tree, struct ts_log **ret, struct ts_log_recovery *rec,
		char *err, size_t errlen);
void ts_log_close(struct ts_log *l);
/* Append n records (and their leaf hashes) with one write and one fdatasync. On failure
 * nothing is acknowledged and the log is unusable (the caller stops). */
int ts_log_append(struct ts_log *l, const uint8_t *const *recs, const size_t *lens,
		  const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, char *err, size_t errlen);
uint64_t ts_log_count(struct ts_log *l);
uint64_t ts_log_bytes(struct ts_log *l);
/* Read record index into a malloc'd buffer (thread-safe with appends). */
int ts_log_read(struct ts_log *l, uint64_t index, uint8_t **ret, size_t *ret_len);
/* write(2) until all of p is written (short writes, EINTR); 0, or -1 with errno set. */
int ts_write_all(int fd, const uint8_t *p, size_t len);

/* ---- key.c -------------------------------------------------------------------------------- */

struct ts_key;
/* Load DIR/service-key.pem or create it (P-256, mode 0600) on first start. */
int ts_key_load_or_create(const char *dir, struct ts_key **ret, int *created, char *err, size_t errlen);
void ts_key_free(struct ts_key *k);
/* kid: RFC 9679 COSE Key Thumbprint (SHA-256) of the public COSE_Key. */
const uint8_t *ts_key_kid(const struct ts_key *k);
#define TS_KID_LEN 32
/* The public COSE_Key (libbundle's encoding, with 2: kid and 3: -7) appended to b. */
void ts_key_cose(const struct ts_key *k, struct ts_buf *b);
/* libbundle's signer for this key (borrowed; valid while k lives). */
struct bundle_signer;
const struct bundle_signer *ts_key_signer(const struct ts_key *k);
/* ES256 over msg: raw r||s (64 bytes). 0 or -1. */
int ts_key_sign(const struct ts_key *k, const uint8_t *msg, size_t len, uint8_t sig[64]);

/* ---- receipt.c --------------------------------------------------------------------------- */

/* Inclusion receipts come from libbundle (bundle_receipt_sign_head once per commit batch,
 * bundle_receipt_issue per entry). libbundle issues no consistency receipts and keeps its head
 * opaque, so this is the private helper for those: a signed tree head (the receipt protected
 * header and its ES256 signature over ["Signature1", protected, h'', root]) and the encoder. */
struct ts_sth {
	uint64_t size;
	uint8_t root[MERKLE_HASH_LEN];
	uint8_t prot[160];
	size_t prot_len;
	uint8_t sig[64];
	int64_t iat;
};
int ts_sth_sign(const struct ts_key *k, const char *iss, uint64_t size, const uint8_t root[MERKLE_HASH_LEN],
		int64_t iat, struct ts_sth *out);
/* 396: {-2: [bstr .cbor [size1, size2, path]]}, the newer root (sth->root) is the payload. */
void ts_receipt_consistency(const struct ts_sth *sth, uint64_t size1, const uint8_t (*path)[MERKLE_HASH_LEN],
			    size_t path_len, struct ts_buf *out);
/* RFC 9162 §2.1.4.2: from (size1, root1) and a consistency path, compute root2 of size2. */
int ts_consistency_root(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
			const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len, uint8_t root2[MERKLE_HASH_LEN]);

/* ---- policy.c ---------------------------------------------------------------------------- */

struct ts_policy_cfg {
	const char *trust_dir;  /* directory of issuer public keys (PEM); NULL = none */
	int open_registration;  /* accept the key carried in the statement (x5chain) */
	const int64_t *algs;    /* allowed COSE algs; NULL = ES256, ES384 */
	size_t n_algs;
	size_t max_statement;   /* bytes */
};
struct ts_policy;
int ts_policy_new(const struct ts_policy_cfg *cfg, struct ts_policy **ret, char *err, size_t errlen);
void ts_policy_free(struct ts_policy *p);
size_t ts_policy_key_count(const struct ts_policy *p);

/* Outcome of checking one statement: HTTP status (0 = accepted), a problem title and detail. */
struct ts_verdict {
	int status;
	const char *title;
	char detail[256];
};
/* Check stmt against the policy. On acceptance, *ret_rec (malloc'd) holds the record to log:
 * the statement with its unprotected header replaced by {}. */
int ts_policy_check(const struct ts_policy *p, const uint8_t *stmt, size_t len, uint8_t **ret_rec,
		    size_t *ret_rec_len, struct ts_verdict *v);

/* ---- server.c ---------------------------------------------------------------------------- */

enum ts_log_level { TS_LOG_ERROR = 0, TS_LOG_WARN = 1, TS_LOG_INFO = 2, TS_LOG_DEBUG = 3 };

struct ts_server_cfg {
	const char *listen;       /* "127.0.0.1:8080" or "[::1]:8080" */
	const char *state_dir;
	const char *iss;          /* receipt issuer (CWT iss) */
	int async;                /* answer 303 and let clients poll */
	unsigned threads;         /* HTTP worker threads */
	unsigned commit_window_us;/* extra wait to gather a batch */
	unsigned max_batch;
	unsigned max_pending;     /* queued registrations before 503 */
	unsigned retry_after;     /* seconds, on 303/302/503 */
	enum ts_log_level log_level;
	struct ts_policy_cfg policy;
};
struct ts_server;
int ts_server_start(const struct ts_server_cfg *cfg, struct ts_server **ret, char *err, size_t errlen);
/* Finish queued registrations, stop HTTP, close the log. */
void ts_server_stop(struct ts_server *s);
/* Nonzero once the committer died (I/O error): main exits non-zero. */
int ts_server_failed(struct ts_server *s);

void ts_logf(enum ts_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern enum ts_log_level ts_log_level;

#endif
