/* sluice-ts HTTP service: SCRAPI endpoints on libmicrohttpd, and the committer thread.
 *
 * A POST /entries is checked by the policy in the HTTP worker thread. An accepted statement
 * becomes a job on the commit queue; in sync mode (default) the connection is suspended until
 * the committer resumes it with the receipt (201); in async mode the client gets 303 and polls
 * GET /entries/op-<slot>-<token> (302 until done, then 200 with the receipt).
 *
 * The committer takes every job queued (optionally waiting commit_window_us for more, at most
 * max_batch), writes them to the log with one write and one fdatasync, appends the leaves to
 * the Merkle tree, signs ONE tree head for the new size, and issues every job's receipt from
 * it (the signature is shared, only the inclusion proofs differ). Nothing is answered before
 * the fdatasync returned. */
#include "bundle/bundle.h"
#include "transparency/ts-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OPS_MAX 65536
#define CT_COSE "application/cose"
#define CT_PROBLEM "application/concise-problem-details+cbor"

enum ts_log_level ts_log_level = TS_LOG_INFO;

void ts_logf(enum ts_log_level lvl, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char line[1024];
	va_list ap;
	if (lvl > ts_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "sluice-ts: %s: %s\n", names[lvl], line);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct op {
	char token[17];
	int state; /* 0 free, 1 pending, 2 done, 3 failed */
	uint64_t index;
};

struct req;
struct job {
	struct job *next;
	uint8_t *rec;
	size_t rec_len;
	uint8_t leaf[MERKLE_HASH_LEN];
	/* results, written by the committer before it resumes the connection */
	int status;
	uint64_t index;
	struct ts_buf receipt;
	struct req *req;      /* sync */
	struct ts_server *srv;
	unsigned op_slot;     /* async */
	char op_token[17];
};

enum req_state { REQ_NEW = 0, REQ_QUEUED, REQ_DONE };

struct req {
	struct ts_buf body;
	int too_big;
	enum req_state state;
	struct job job;
	struct MHD_Connection *conn;
	double t0;
};

#define N_BUCKETS 12
static const double buckets[N_BUCKETS] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};

struct ts_server {
	struct ts_server_cfg cfg;
	struct MHD_Daemon *mhd;
	struct ts_log *log;
	struct ts_key *key;
	struct ts_policy *policy;
	struct merkle_tree *tree;
	pthread_rwlock_t tree_lock; /* tree and head */
	struct bundle_receipt_head *head; /* signed head of the latest commit (NULL: empty log) */
	uint64_t head_size;
	uint8_t head_root[MERKLE_HASH_LEN];
	struct ts_buf keyset, onekey;

	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct job *qhead, *qtail;
	unsigned qlen;
	int stopping;
	pthread_t committer;
	int committer_started;
	atomic_int failed;

	pthread_mutex_t ops_lock;
	struct op *ops;
	unsigned ops_next;

	/* metrics */
	atomic_ullong m_accepted, m_rejected, m_errors, m_batches, m_batch_entries;
	atomic_ullong m_lat_bucket[N_BUCKETS + 1];
	atomic_ullong m_lat_sum_us, m_lat_count;
	uint64_t m_truncated;
};

static void observe_latency(struct ts_server *s, double sec)
{
	int i = 0;
	while (i < N_BUCKETS && sec > buckets[i])
		i++;
	atomic_fetch_add(&s->m_lat_bucket[i], 1);
	atomic_fetch_add(&s->m_lat_sum_us, (unsigned long long)(sec * 1e6));
	atomic_fetch_add(&s->m_lat_count, 1);
}

/* ---- responses ---------------------------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *ctype, const void *buf,
				size_t len, const char *location, unsigned retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;
	char ra[16];
	if (!r)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (location)
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
	if (retry_after) {
		snprintf(ra, sizeof ra, "%u", retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_problem(struct ts_server *s, struct MHD_Connection *c, unsigned status,
				    const char *title, const char *detail, unsigned retry_after)
{
	uint8_t *b = NULL;
	size_t len = 0;
	enum MHD_Result ret;
	(void)s;
	if (bundle_problem_encode(title, detail, (int)status, &b, &len) != BUNDLE_OK)
		return send_buf(c, status, NULL, NULL, 0, NULL, retry_after);
	ret = send_buf(c, status, CT_PROBLEM, b, len, NULL, retry_after);
	free(b);
	return ret;
}

/* ---- the commit queue --------------------------------------------------------------------- */

/* 0 queued; -1 queue full; -2 stopping or failed. */
static int enqueue(struct ts_server *s, struct job *j)
{
	int rc = 0;
	pthread_mutex_lock(&s->qlock);
	if (s->stopping || atomic_load(&s->failed))
		rc = -2;
	else if (s->qlen >= s->cfg.max_pending)
		rc = -1;
	else {
		j->next = NULL;
		if (s->qtail)
			s->qtail->next = j;
		else
			s->qhead = j;
		s->qtail = j;
		s->qlen++;
		pthread_cond_signal(&s->qcond);
	}
	pthread_mutex_unlock(&s->qlock);
	return rc;
}

static void finish_job(struct ts_server *s, struct job *j)
{
	if (j->req) {
		struct MHD_Connection *c = j->req->conn;
		j->req->state = REQ_DONE;
		MHD_resume_connection(c); /* j belongs to the connection from here on */
		return;
	}
	pthread_mutex_lock(&s->ops_lock);
	{
		struct op *o = &s->ops[j->op_slot];
		if (strcmp(o->token, j->op_token) == 0) {
			o->state = j->status == 201 ? 2 : 3;
			o->index = j->index;
		}
	}
	pthread_mutex_unlock(&s->ops_lock);
	ts_logf(TS_LOG_DEBUG, "operation op-%u-%s %s index %" PRIu64, j->op_slot, j->op_token,
		j->status == 201 ? "registered" : "failed", j->index);
	free(j->rec);
	ts_buf_free(&j->receipt);
	free(j);
}

/* One signature over (protected header, root) for a new tree head; every receipt of the
 * batch is issued from it. */
static int sign_head(struct ts_server *s, uint64_t size, const uint8_t root[MERKLE_HASH_LEN],
		     struct bundle_receipt_head **ret)
{
	struct bundle_receipt_hdr h = {.iss = s->cfg.iss, .iat = (int64_t)time(NULL)};
	enum bundle_err e = bundle_receipt_sign_head(ts_key_signer(s->key), &h, size, root, ret);
	if (e != BUNDLE_OK) {
		ts_logf(TS_LOG_ERROR, "failed to sign the tree head of size %" PRIu64 ": %s (%s)", size, bundle_strerror(e),
			bundle_last_cause());
		return -1;
	}
	return 0;
}

static void *committer_main(void *arg)
{
	struct ts_server *s = arg;
	struct job **batch = calloc(s->cfg.max_batch, sizeof *batch);
	const uint8_t **recs = calloc(s->cfg.max_batch, sizeof *recs);
	size_t *lens = calloc(s->cfg.max_batch, sizeof *lens);
	uint8_t(*leaves)[MERKLE_HASH_LEN] = calloc(s->cfg.max_batch, MERKLE_HASH_LEN);
	uint8_t(*path)[MERKLE_HASH_LEN] = calloc(MERKLE_MAX_PROOF, MERKLE_HASH_LEN);

	if (!batch || !recs || !lens || !leaves || !path) {
		ts_logf(TS_LOG_ERROR, "committer: out of memory");
		atomic_store(&s->failed, 1);
	}
	for (;;) {
		size_t n = 0;
		char err[256];
		int ok = !atomic_load(&s->failed);
		uint64_t base = 0, size;
		uint8_t root[MERKLE_HASH_LEN];
		struct bundle_receipt_head *nh = NULL, *old = NULL;

		pthread_mutex_lock(&s->qlock);
		while (!s->qhead && !s->stopping)
			pthread_cond_wait(&s->qcond, &s->qlock);
		if (!s->qhead && s->stopping) {
			pthread_mutex_unlock(&s->qlock);
			break;
		}
		if (s->cfg.commit_window_us && s->qlen < s->cfg.max_batch && !s->stopping) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_nsec += (long)s->cfg.commit_window_us * 1000;
			dl.tv_sec += dl.tv_nsec / 1000000000;
			dl.tv_nsec %= 1000000000;
			pthread_mutex_unlock(&s->qlock);
			/* wait without holding the lock: workers keep enqueuing */
			clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &dl, NULL);
			pthread_mutex_lock(&s->qlock);
		}
		while (s->qhead && n < s->cfg.max_batch && batch) {
			struct job *j = s->qhead;
			s->qhead = j->next;
			if (!s->qhead)
				s->qtail = NULL;
			s->qlen--;
			batch[n++] = j;
		}
		pthread_mutex_unlock(&s->qlock);
		if (!batch)
			break;

		for (size_t i = 0; i < n; i++) {
			recs[i] = batch[i]->rec;
			lens[i] = batch[i]->rec_len;
			memcpy(leaves[i], batch[i]->leaf, MERKLE_HASH_LEN);
		}
		if (ok && ts_log_append(s->log, recs, lens, (const uint8_t(*)[MERKLE_HASH_LEN])leaves, n, err,
					sizeof err) != 0) {
			ts_logf(TS_LOG_ERROR, "failed to append %zu entries to the log: %s; stopping", n, err);
			atomic_store(&s->failed, 1);
			ok = 0;
		}
		if (ok) {
			pthread_rwlock_wrlock(&s->tree_lock);
			base = merkle_tree_size(s->tree);
			for (size_t i = 0; i < n && ok; i++)
				if (merkle_tree_append(s->tree, leaves[i]) != MERKLE_OK)
					ok = 0;
			size = merkle_tree_size(s->tree);
			if (ok && merkle_tree_root(s->tree, size, root) != MERKLE_OK)
				ok = 0;
			pthread_rwlock_unlock(&s->tree_lock);
			if (ok && sign_head(s, size, root, &nh) != 0)
				ok = 0;
			if (!ok) {
				/* the log has the entries but we cannot serve the tree: stop, a restart rebuilds it */
				ts_logf(TS_LOG_ERROR, "failed to extend or sign the tree; stopping");
				atomic_store(&s->failed, 1);
			} else {
				pthread_rwlock_wrlock(&s->tree_lock);
				old = s->head;
				s->head = nh;
				s->head_size = size;
				memcpy(s->head_root, root, MERKLE_HASH_LEN);
				pthread_rwlock_unlock(&s->tree_lock);
				bundle_receipt_head_free(old); /* no reader holds it once the lock was ours */
				atomic_fetch_add(&s->m_batches, 1);
				atomic_fetch_add(&s->m_batch_entries, n);
			}
		}
		for (size_t i = 0; i < n; i++) {
			struct job *j = batch[i];
			size_t plen = 0;
			j->status = 503;
			if (ok) {
				j->index = base + i;
				/* nh stays valid: only this thread replaces and frees heads */
				if (merkle_tree_inclusion(s->tree, j->index, size, path, &plen) == MERKLE_OK &&
				    bundle_receipt_issue(nh, j->index, (const uint8_t(*)[32])path, plen, &j->receipt.p,
							 &j->receipt.len) == BUNDLE_OK) {
					j->receipt.cap = j->receipt.len;
					j->status = 201;
				}
			}
			finish_job(s, j);
		}
	}
	/* fail whatever is left (only after a failure) */
	pthread_mutex_lock(&s->qlock);
	while (s->qhead) {
		struct job *j = s->qhead;
		s->qhead = j->next;
		s->qlen--;
		j->status = 503;
		pthread_mutex_unlock(&s->qlock);
		finish_job(s, j);
		pthread_mutex_lock(&s->qlock);
	}
	s->qtail = NULL;
	pthread_mutex_unlock(&s->qlock);
	free(batch);
	free(recs);
	free(lens);
	free(leaves);
	free(path);
	return NULL;
}

/* ---- handlers ----------------------------------------------------------------------------- */

static void log_req(struct req *rq, const char *method, const char *url, unsigned status, const char *extra)
{
	if (ts_log_level < TS_LOG_INFO)
		return;
	ts_logf(TS_LOG_INFO, "%s %s %u %.2fms%s%s", method, url, status, (now_s() - rq->t0) * 1e3, extra ? " " : "",
		extra ? extra : "");
}

static int media_ok(const char *ct)
{
	size_t n;
	if (!ct)
		return 1;
	n = strcspn(ct, "; ");
	return (n == strlen(CT_COSE) && strncasecmp(ct, CT_COSE, n) == 0) ||
	       (n == 16 && strncasecmp(ct, "application/cbor", n) == 0) ||
	       (n == 32 && strncasecmp(ct, "application/scitt-statement+cose", n) == 0);
}

static enum MHD_Result post_entries(struct ts_server *s, struct req *rq, struct MHD_Connection *c)
{
	struct ts_verdict v;
	uint8_t *rec = NULL;
	size_t rlen = 0;
	char extra[64];
	int q;

	if (rq->state == REQ_DONE) {
		enum MHD_Result r;
		if (rq->job.status == 201) {
			char loc[48];
			snprintf(loc, sizeof loc, "/entries/%" PRIu64, rq->job.index);
			r = send_buf(c, 201, CT_COSE, rq->job.receipt.p, rq->job.receipt.len, loc, 0);
			atomic_fetch_add(&s->m_accepted, 1);
			observe_latency(s, now_s() - rq->t0);
			snprintf(extra, sizeof extra, "entry=%" PRIu64, rq->job.index);
			log_req(rq, "POST", "/entries", 201, extra);
		} else {
			r = send_problem(s, c, 503, "Service Unavailable", "the log could not be written",
					 s->cfg.retry_after);
			atomic_fetch_add(&s->m_errors, 1);
			log_req(rq, "POST", "/entries", 503, "commit failed");
		}
		return r;
	}
	if (rq->too_big) {
		atomic_fetch_add(&s->m_rejected, 1);
		log_req(rq, "POST", "/entries", 413, NULL);
		return send_problem(s, c, 413, "Payload Too Large", "the statement exceeds the size limit", 0);
	}
	if (!media_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		atomic_fetch_add(&s->m_rejected, 1);
		log_req(rq, "POST", "/entries", 415, NULL);
		return send_problem(s, c, 415, "Unsupported Media Type", "send the statement as application/cose", 0);
	}
	if (ts_policy_check(s->policy, rq->body.p, rq->body.len, &rec, &rlen, &v) != 0) {
		if (v.status >= 500)
			atomic_fetch_add(&s->m_errors, 1);
		else
			atomic_fetch_add(&s->m_rejected, 1);
		log_req(rq, "POST", "/entries", (unsigned)v.status, v.detail);
		return send_problem(s, c, (unsigned)v.status, v.title, v.detail, v.status == 503 ? s->cfg.retry_after : 0);
	}
	ts_buf_free(&rq->body);
	if (s->cfg.async) {
		struct job *j = calloc(1, sizeof *j);
		uint8_t rnd[8];
		char loc[64];
		if (!j || RAND_bytes(rnd, sizeof rnd) != 1) {
			free(j);
			free(rec);
			atomic_fetch_add(&s->m_errors, 1);
			return send_problem(s, c, 503, "Service Unavailable", "out of memory", s->cfg.retry_after);
		}
		j->rec = rec;
		j->rec_len = rlen;
		merkle_leaf_hash(rec, rlen, j->leaf);
		j->srv = s;
		for (int i = 0; i < 8; i++)
			snprintf(j->op_token + 2 * i, 3, "%02x", rnd[i]);
		pthread_mutex_lock(&s->ops_lock);
		j->op_slot = s->ops_next;
		s->ops_next = (s->ops_next + 1) % OPS_MAX;
		memcpy(s->ops[j->op_slot].token, j->op_token, sizeof j->op_token);
		s->ops[j->op_slot].state = 1;
		pthread_mutex_unlock(&s->ops_lock);
		q = enqueue(s, j);
		if (q != 0) {
			pthread_mutex_lock(&s->ops_lock);
			s->ops[j->op_slot].state = 0;
			s->ops[j->op_slot].token[0] = 0;
			pthread_mutex_unlock(&s->ops_lock);
			free(j->rec);
			free(j);
			atomic_fetch_add(&s->m_errors, 1);
			log_req(rq, "POST", "/entries", 503, q == -1 ? "queue full" : "stopping");
			return send_problem(s, c, 503, "Service Unavailable",
					    q == -1 ? "too many registrations pending" : "the service is stopping",
					    s->cfg.retry_after);
		}
		snprintf(loc, sizeof loc, "/entries/op-%u-%s", j->op_slot, j->op_token);
		atomic_fetch_add(&s->m_accepted, 1);
		observe_latency(s, now_s() - rq->t0);
		log_req(rq, "POST", "/entries", 303, loc);
		return send_buf(c, 303, NULL, NULL, 0, loc, s->cfg.retry_after);
	}
	rq->job.rec = rec;
	rq->job.rec_len = rlen;
	merkle_leaf_hash(rec, rlen, rq->job.leaf);
	rq->job.req = rq;
	rq->job.srv = s;
	rq->conn = c;
	rq->state = REQ_QUEUED;
	/* suspend before the committer can see the job, so its resume always follows */
	MHD_suspend_connection(c);
	q = enqueue(s, &rq->job);
	if (q != 0) {
		rq->job.status = 503;
		rq->state = REQ_DONE;
		MHD_resume_connection(c);
	}
	return MHD_YES;
}

static int parse_u64(const char *p, uint64_t *out)
{
	uint64_t v = 0;
	if (!*p || (p[0] == '0' && p[1]))
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

static enum MHD_Result get_receipt(struct ts_server *s, struct req *rq, struct MHD_Connection *c, const char *url,
				   uint64_t index)
{
	uint8_t(*path)[MERKLE_HASH_LEN] = malloc(MERKLE_MAX_PROOF * MERKLE_HASH_LEN);
	size_t plen = 0, len = 0;
	uint8_t *b = NULL;
	enum MHD_Result r;
	int found = 0;
	enum bundle_err e = BUNDLE_OK;

	if (!path)
		return send_problem(s, c, 503, "Service Unavailable", "out of memory", s->cfg.retry_after);
	pthread_rwlock_rdlock(&s->tree_lock);
	if (s->head && index < s->head_size &&
	    merkle_tree_inclusion(s->tree, index, s->head_size, path, &plen) == MERKLE_OK) {
		found = 1;
		e = bundle_receipt_issue(s->head, index, (const uint8_t(*)[32])path, plen, &b, &len);
	}
	pthread_rwlock_unlock(&s->tree_lock);
	free(path);
	if (!found) {
		log_req(rq, "GET", url, 404, NULL);
		return send_problem(s, c, 404, "Not Found", "no such entry", 0);
	}
	if (e != BUNDLE_OK)
		return send_problem(s, c, 503, "Service Unavailable", "cannot encode the receipt", s->cfg.retry_after);
	{
		char loc[48];
		snprintf(loc, sizeof loc, "/entries/%" PRIu64, index);
		r = send_buf(c, 200, CT_COSE, b, len, loc, 0);
	}
	free(b);
	log_req(rq, "GET", url, 200, NULL);
	return r;
}

static enum MHD_Result get_entry(struct ts_server *s, struct req *rq, struct MHD_Connection *c, const char *url)
{
	const char *id = url + strlen("/entries/");
	char idbuf[64];
	const char *slash = strchr(id, '/');
	uint64_t index;

	if (slash) {
		/* /entries/{n}/statement */
		uint8_t *rec = NULL;
		size_t len = 0;
		enum MHD_Result r;
		if ((size_t)(slash - id) >= sizeof idbuf || strcmp(slash, "/statement") != 0)
			goto notfound;
		memcpy(idbuf, id, (size_t)(slash - id));
		idbuf[slash - id] = 0;
		if (parse_u64(idbuf, &index) != 0 || ts_log_read(s->log, index, &rec, &len) != 0)
			goto notfound;
		r = send_buf(c, 200, CT_COSE, rec, len, NULL, 0);
		free(rec);
		log_req(rq, "GET", url, 200, NULL);
		return r;
	}
	if (strncmp(id, "op-", 3) == 0) {
		unsigned long slot;
		char *end;
		struct op o = {0};
		slot = strtoul(id + 3, &end, 10);
		if (end == id + 3 || *end != '-' || slot >= OPS_MAX || strlen(end + 1) != 16)
			goto opnotfound;
		pthread_mutex_lock(&s->ops_lock);
		if (s->ops[slot].state && strcmp(s->ops[slot].token, end + 1) == 0)
			o = s->ops[slot];
		pthread_mutex_unlock(&s->ops_lock);
		switch (o.state) {
		case 1:
			log_req(rq, "GET", url, 302, NULL);
			return send_buf(c, 302, NULL, NULL, 0, url, s->cfg.retry_after);
		case 2:
			return get_receipt(s, rq, c, url, o.index);
		case 3:
			log_req(rq, "GET", url, 500, NULL);
			return send_problem(s, c, 500, "Registration failed",
					    "the log could not be written; submit the statement again", 0);
		default:
			goto opnotfound;
		}
	}
	if (parse_u64(id, &index) != 0)
		goto notfound;
	return get_receipt(s, rq, c, url, index);
opnotfound:
	log_req(rq, "GET", url, 404, NULL);
	return send_problem(s, c, 404, "Operation Not Found", "no such registration operation (they do not survive a restart)",
			    0);
notfound:
	log_req(rq, "GET", url, 404, NULL);
	return send_problem(s, c, 404, "Not Found", "no such entry", 0);
}

static enum MHD_Result get_consistency(struct ts_server *s, struct req *rq, struct MHD_Connection *c,
				       const char *url)
{
	uint64_t size1;
	uint8_t(*path)[MERKLE_HASH_LEN] = NULL;
	size_t plen = 0;
	struct ts_sth sth;
	struct ts_buf b = {0};
	enum MHD_Result r;
	int ok = 0;
	uint64_t size2 = 0;
	uint8_t root2[MERKLE_HASH_LEN];

	if (parse_u64(url + strlen("/consistency/"), &size1) != 0 || size1 == 0) {
		log_req(rq, "GET", url, 400, NULL);
		return send_problem(s, c, 400, "Malformed request", "want /consistency/{old tree size >= 1}", 0);
	}
	path = malloc(MERKLE_MAX_PROOF * MERKLE_HASH_LEN);
	if (!path)
		return send_problem(s, c, 503, "Service Unavailable", "out of memory", s->cfg.retry_after);
	pthread_rwlock_rdlock(&s->tree_lock);
	if (s->head && size1 <= s->head_size &&
	    merkle_tree_consistency(s->tree, size1, s->head_size, path, &plen) == MERKLE_OK) {
		ok = 1;
		size2 = s->head_size;
		memcpy(root2, s->head_root, MERKLE_HASH_LEN);
	}
	pthread_rwlock_unlock(&s->tree_lock);
	/* a fresh signature over the current root carries the consistency proof */
	if (ok && ts_sth_sign(s->key, s->cfg.iss, size2, root2, (int64_t)time(NULL), &sth) != 0) {
		free(path);
		return send_problem(s, c, 503, "Service Unavailable", "cannot sign the tree head", s->cfg.retry_after);
	}
	if (!ok) {
		free(path);
		log_req(rq, "GET", url, 404, NULL);
		return send_problem(s, c, 404, "Not Found", "the tree was never that large", 0);
	}
	ts_receipt_consistency(&sth, size1, (const uint8_t(*)[MERKLE_HASH_LEN])path, plen, &b);
	free(path);
	r = b.oom ? send_problem(s, c, 503, "Service Unavailable", "out of memory", s->cfg.retry_after)
		  : send_buf(c, 200, CT_COSE, b.p, b.len, NULL, 0);
	ts_buf_free(&b);
	log_req(rq, "GET", url, 200, NULL);
	return r;
}

static enum MHD_Result get_metrics(struct ts_server *s, struct req *rq, struct MHD_Connection *c)
{
	char buf[8192];
	size_t n = 0;
	unsigned long long cum = 0;
	enum MHD_Result r;
#define P(...) n += (size_t)snprintf(buf + n, sizeof buf - n, __VA_ARGS__)
	P("# HELP sluice_ts_registrations_total Registrations answered, by result.\n"
	  "# TYPE sluice_ts_registrations_total counter\n");
	P("sluice_ts_registrations_total{result=\"accepted\"} %llu\n", (unsigned long long)atomic_load(&s->m_accepted));
	P("sluice_ts_registrations_total{result=\"rejected\"} %llu\n", (unsigned long long)atomic_load(&s->m_rejected));
	P("sluice_ts_registrations_total{result=\"error\"} %llu\n", (unsigned long long)atomic_load(&s->m_errors));
	P("# HELP sluice_ts_registration_seconds Time from request to receipt (sync) or 303 (async).\n"
	  "# TYPE sluice_ts_registration_seconds histogram\n");
	for (int i = 0; i <= N_BUCKETS; i++) {
		cum += atomic_load(&s->m_lat_bucket[i]);
		if (i < N_BUCKETS)
			P("sluice_ts_registration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i], cum);
		else
			P("sluice_ts_registration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	}
	P("sluice_ts_registration_seconds_sum %.6f\n", (double)atomic_load(&s->m_lat_sum_us) / 1e6);
	P("sluice_ts_registration_seconds_count %llu\n", (unsigned long long)atomic_load(&s->m_lat_count));
	P("# HELP sluice_ts_log_entries Entries in the log.\n# TYPE sluice_ts_log_entries gauge\n");
	P("sluice_ts_log_entries %llu\n", (unsigned long long)ts_log_count(s->log));
	P("# HELP sluice_ts_log_bytes Size of the log file.\n# TYPE sluice_ts_log_bytes gauge\n");
	P("sluice_ts_log_bytes %llu\n", (unsigned long long)ts_log_bytes(s->log));
	P("# HELP sluice_ts_commit_batches_total Group commits (one fsync and one signed tree head each).\n"
	  "# TYPE sluice_ts_commit_batches_total counter\n");
	P("sluice_ts_commit_batches_total %llu\n", (unsigned long long)atomic_load(&s->m_batches));
	P("# HELP sluice_ts_commit_entries_total Entries written by group commits.\n"
	  "# TYPE sluice_ts_commit_entries_total counter\n");
	P("sluice_ts_commit_entries_total %llu\n", (unsigned long long)atomic_load(&s->m_batch_entries));
	P("# HELP sluice_ts_recovery_truncated_bytes Bytes of torn tail cut from the log at the last start.\n"
	  "# TYPE sluice_ts_recovery_truncated_bytes gauge\n");
	P("sluice_ts_recovery_truncated_bytes %llu\n", (unsigned long long)s->m_truncated);
#undef P
	if (n >= sizeof buf)
		n = sizeof buf - 1;
	r = send_buf(c, 200, "text/plain; version=0.0.4", buf, n, NULL, 0);
	log_req(rq, "GET", "/metrics", 200, NULL);
	return r;
}

static int b64url_dec(const char *in, uint8_t *out, size_t cap, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	for (; *in; in++) {
		int v;
		char ch = *in;
		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			v = ch - '0' + 52;
		else if (ch == '-')
			v = 62;
		else if (ch == '_')
			v = 63;
		else
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	*outlen = n;
	return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct ts_server *s = cls;
	struct req *rq = *con_cls;
	(void)version;

	if (!rq) {
		rq = calloc(1, sizeof *rq);
		if (!rq)
			return MHD_NO;
		rq->t0 = now_s();
		*con_cls = rq;
		if (strcmp(method, "POST") == 0) {
			const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
			if (cl && strtoull(cl, NULL, 10) > s->cfg.policy.max_statement) {
				/* answer before reading the body; MHD then closes the connection */
				atomic_fetch_add(&s->m_rejected, 1);
				log_req(rq, "POST", url, 413, "Content-Length above the limit");
				return send_problem(s, c, 413, "Payload Too Large", "the statement exceeds the size limit", 0);
			}
		}
		return MHD_YES;
	}
	if (strcmp(method, "POST") == 0) {
		if (strcmp(url, "/entries") != 0) {
			if (*upload_data_size) {
				*upload_data_size = 0;
				return MHD_YES;
			}
			log_req(rq, method, url, 404, NULL);
			return send_problem(s, c, 404, "Not Found", "POST only to /entries", 0);
		}
		if (*upload_data_size) {
			if (!rq->too_big) {
				if (rq->body.len + *upload_data_size > s->cfg.policy.max_statement) {
					rq->too_big = 1;
					ts_buf_free(&rq->body);
				} else {
					ts_buf_put(&rq->body, upload_data, *upload_data_size);
					if (rq->body.oom)
						return MHD_NO;
				}
			}
			*upload_data_size = 0;
			return MHD_YES;
		}
		return post_entries(s, rq, c);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		if (*upload_data_size) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		log_req(rq, method, url, 405, NULL);
		return send_problem(s, c, 405, "Method Not Allowed", "use GET or POST", 0);
	}
	if (strcmp(url, "/.well-known/scitt-keys") == 0) {
		log_req(rq, method, url, 200, NULL);
		return send_buf(c, 200, "application/cbor", s->keyset.p, s->keyset.len, NULL, 0);
	}
	if (strncmp(url, "/.well-known/scitt-keys/", 24) == 0) {
		uint8_t kid[64];
		size_t kl = 0;
		if (b64url_dec(url + 24, kid, sizeof kid, &kl) == 0 && kl == TS_KID_LEN &&
		    memcmp(kid, ts_key_kid(s->key), TS_KID_LEN) == 0) {
			log_req(rq, method, url, 200, NULL);
			return send_buf(c, 200, "application/cbor", s->onekey.p, s->onekey.len, NULL, 0);
		}
		log_req(rq, method, url, 404, NULL);
		return send_problem(s, c, 404, "No such key", "no service key with that kid", 0);
	}
	if (strncmp(url, "/entries/", 9) == 0)
		return get_entry(s, rq, c, url);
	if (strncmp(url, "/consistency/", 13) == 0)
		return get_consistency(s, rq, c, url);
	if (strcmp(url, "/metrics") == 0)
		return get_metrics(s, rq, c);
	log_req(rq, method, url, 404, NULL);
	return send_problem(s, c, 404, "Not Found", "no such resource", 0);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (!rq)
		return;
	ts_buf_free(&rq->body);
	free(rq->job.rec);
	ts_buf_free(&rq->job.receipt);
	free(rq);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = 0;
	ts_logf(TS_LOG_WARN, "http: %s", line);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[256];
	const char *port, *colon = strrchr(listen, ':');
	struct addrinfo hints = {0}, *ai = NULL;
	int e;

	if (!colon || colon == listen || !colon[1]) {
		snprintf(err, errlen, "--listen wants HOST:PORT, got '%s'", listen);
		return -1;
	}
	port = colon + 1;
	if (listen[0] == '[') {
		if (colon[-1] != ']' || (size_t)(colon - listen - 2) >= sizeof host) {
			snprintf(err, errlen, "--listen: bad IPv6 address in '%s'", listen);
			return -1;
		}
		memcpy(host, listen + 1, (size_t)(colon - listen - 2));
		host[colon - listen - 2] = 0;
	} else {
		if ((size_t)(colon - listen) >= sizeof host) {
			snprintf(err, errlen, "--listen: host too long");
			return -1;
		}
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = 0;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	e = getaddrinfo(host, port, &hints, &ai);
	if (e != 0 || !ai) {
		snprintf(err, errlen, "--listen %s: %s", listen, gai_strerror(e));
		return -1;
	}
	memset(ss, 0, sizeof *ss);
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int ts_server_failed(struct ts_server *s) { return atomic_load(&s->failed); }

void ts_server_stop(struct ts_server *s)
{
	if (!s)
		return;
	if (s->committer_started) {
		pthread_mutex_lock(&s->qlock);
		s->stopping = 1;
		pthread_cond_broadcast(&s->qcond);
		pthread_mutex_unlock(&s->qlock);
		pthread_join(s->committer, NULL);
	}
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	ts_log_close(s->log);
	ts_key_free(s->key);
	ts_policy_free(s->policy);
	merkle_tree_free(s->tree);
	bundle_receipt_head_free(s->head);
	ts_buf_free(&s->keyset);
	ts_buf_free(&s->onekey);
	free(s->ops);
	pthread_rwlock_destroy(&s->tree_lock);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->qcond);
	pthread_mutex_destroy(&s->ops_lock);
	free(s);
}

int ts_server_start(const struct ts_server_cfg *cfg, struct ts_server **ret, char *err, size_t errlen)
{
	struct ts_server *s = calloc(1, sizeof *s);
	struct ts_log_recovery rec;
	struct sockaddr_storage ss;
	int created = 0;
	uint8_t root[MERKLE_HASH_LEN];
	unsigned flags;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->cfg = *cfg;
	if (!s->cfg.max_batch)
		s->cfg.max_batch = 4096;
	if (!s->cfg.max_pending)
		s->cfg.max_pending = 20000;
	if (!s->cfg.threads)
		s->cfg.threads = 2;
	if (!s->cfg.policy.max_statement)
		s->cfg.policy.max_statement = 256 * 1024;
	pthread_rwlock_init(&s->tree_lock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	pthread_mutex_init(&s->ops_lock, NULL);
	s->ops = calloc(OPS_MAX, sizeof *s->ops);
	if (!s->ops || merkle_tree_new(&s->tree) != MERKLE_OK) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (parse_listen(cfg->listen, &ss, err, errlen) != 0)
		goto fail;
	if (ts_policy_new(&s->cfg.policy, &s->policy, err, errlen) != 0)
		goto fail;
	if (ts_key_load_or_create(cfg->state_dir, &s->key, &created, err, errlen) != 0)
		goto fail;
	if (created)
		ts_logf(TS_LOG_INFO, "created service key %s/service-key.pem", cfg->state_dir);
	if (ts_log_open(cfg->state_dir, s->tree, &s->log, &rec, err, errlen) != 0)
		goto fail;
	s->m_truncated = rec.truncated;
	if (rec.truncated)
		ts_logf(TS_LOG_WARN, "log recovery: truncated a torn tail of %" PRIu64 " bytes at offset %" PRIu64 " (%s)",
			rec.truncated, rec.truncated_at, rec.why);
	ts_logf(TS_LOG_INFO, "log: %" PRIu64 " entries, %" PRIu64 " bytes", rec.entries, rec.bytes);
	if (merkle_tree_size(s->tree) > 0) {
		s->head_size = merkle_tree_size(s->tree);
		if (merkle_tree_root(s->tree, s->head_size, root) != MERKLE_OK ||
		    sign_head(s, s->head_size, root, &s->head) != 0) {
			snprintf(err, errlen, "cannot sign the recovered tree head");
			goto fail;
		}
		memcpy(s->head_root, root, MERKLE_HASH_LEN);
	}
	ts_cbor_head(&s->keyset, 4, 1);
	ts_key_cose(s->key, &s->keyset);
	ts_key_cose(s->key, &s->onekey);
	if (s->keyset.oom || s->onekey.oom) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (pthread_create(&s->committer, NULL, committer_main, s) != 0) {
		snprintf(err, errlen, "cannot start the committer thread");
		goto fail;
	}
	s->committer_started = 1;
	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	{
		struct MHD_OptionItem o[] = {
			{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s},
			{MHD_OPTION_SOCK_ADDR, 0, &ss},
			{MHD_OPTION_CONNECTION_LIMIT, 4096, NULL},
			{MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL},
			{MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
			{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, s},
			{s->cfg.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)s->cfg.threads, NULL},
			{MHD_OPTION_END, 0, NULL},
		};
		s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
	}
	if (!s->mhd) {
		snprintf(err, errlen, "cannot listen on %s (address in use?)", cfg->listen);
		goto fail;
	}
	ts_logf(TS_LOG_INFO, "listening on %s (%s mode, %u threads), issuer %s, %zu trusted issuer keys%s", cfg->listen,
		cfg->async ? "async" : "sync", s->cfg.threads, cfg->iss, ts_policy_key_count(s->policy),
		cfg->policy.open_registration ? ", open registration" : "");
	*ret = s;
	return 0;
fail:
	ts_server_stop(s);
	return -1;
}
