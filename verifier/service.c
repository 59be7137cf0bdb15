/* The HTTP service (libmicrohttpd): routing, bounded bodies, a bounded request queue that
 * answers 503 + Retry-After when saturated, /metrics, and the service's set-up (store, policy,
 * keys). The appraisal and enrolment logic is in appraise.c and enroll.c. */
#include "verifier/verifier-int.h"
#include "bundle/bundle.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct req {
	char *body;
	size_t len, cap, max; /* max: the endpoint's body limit */
	int too_big;
	int busy; /* counted in inflight */
	double start;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void verifier_svc_log(struct verifier_svc *svc, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	if (svc && svc->cfg.quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "sluice-verifier: %s\n", line);
}

json_t *verifier_problem(int status, int *ret_status, const char *title, const char *fmt, ...)
{
	char detail[512] = "";
	va_list ap;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof detail, fmt, ap);
		va_end(ap);
	}
	*ret_status = status;
	return json_pack("{s:s, s:s, s:i}", "title", title, "detail", detail, "status", status);
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *body, int problem)
{
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
	int cbor = accept && strstr(accept, "application/cbor") && !strstr(accept, "application/json");
	struct MHD_Response *r;
	enum MHD_Result ret;
	uint8_t *buf = NULL;
	size_t len = 0;
	const char *ctype;

	if (cbor && problem) {
		const char *t = json_string_value(json_object_get(body, "title"));
		const char *d = json_string_value(json_object_get(body, "detail"));
		if (bundle_problem_encode(t ? t : "", d ? d : "", status, &buf, &len) != BUNDLE_OK)
			buf = NULL;
		ctype = "application/concise-problem-details+cbor";
	} else if (cbor) {
		if (verifier_json_to_cbor(body, &buf, &len) != 0)
			buf = NULL;
		ctype = "application/cbor";
	} else {
		char *text = json_dumps(body, JSON_COMPACT);
		buf = (uint8_t *)text;
		len = text ? strlen(text) : 0;
		ctype = problem ? "application/problem+json" : "application/json";
	}
	json_decref(body);
	if (!buf)
		return MHD_NO;
	r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	if (status == 503)
		MHD_add_response_header(r, "Retry-After", "1");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *c, int status, char *text, const char *ctype)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct verifier_svc *svc = cls;
	struct req *rq = *con_cls;
	(void)c;
	(void)toe;
	if (!rq)
		return;
	if (rq->busy)
		__atomic_sub_fetch(&svc->inflight, 1, __ATOMIC_SEQ_CST);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
}

static json_t *dispatch_post(struct verifier_svc *svc, struct MHD_Connection *c, const char *url, struct req *rq,
			     int *status)
{
	const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	json_error_t je;
	json_t *req, *ans;

	if (ctype && strncmp(ctype, "application/cbor", 16) == 0) {
		char err[256] = "";
		req = verifier_cbor_to_json((const uint8_t *)(rq->body ? rq->body : ""), rq->len, err, sizeof err);
		if (!req)
			return verifier_problem(400, status, "Malformed request", "CBOR body: %s", err);
	} else {
		char err[256] = "";
		if (verifier_json_shape_check(rq->body ? rq->body : "", rq->len, err, sizeof err) != 0)
			return verifier_problem(400, status, "Malformed request", "JSON body: %s", err);
		req = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &je);
		if (!req || !json_is_object(req)) {
			json_decref(req);
			return verifier_problem(400, status, "Malformed request", "body is not a JSON object: %s",
						req ? "not an object" : je.text);
		}
	}
	if (strcmp(url, "/v1/enroll") == 0)
		ans = verifier_enroll(svc, req, status);
	else if (strcmp(url, "/v1/enroll/finish") == 0)
		ans = verifier_enroll_finish(svc, req, status);
	else if (strcmp(url, "/v1/challenge") == 0)
		ans = verifier_challenge(svc, req, status);
	else if (strcmp(url, "/v1/attest") == 0)
		ans = verifier_attest(svc, req, status);
	else
		ans = verifier_problem(404, status, "Not Found", "no such endpoint: POST %s", url);
	json_decref(req);
	return ans;
}

/* The body limit of an endpoint (at most --max-body): what its real requests need with room to
 * spare. An attest body carries the evidence (quote, PCRs, both event logs: an OVMF TCG log is
 * ~30 KB, ~40 KB as base64), the statement and the receipt. */
static size_t endpoint_max_body(const struct verifier_svc *svc, const char *url)
{
	size_t m = VERIFIER_MAX_BODY_OTHER;
	if (strcmp(url, "/v1/attest") == 0)
		m = VERIFIER_MAX_BODY_ATTEST;
	else if (strcmp(url, "/v1/enroll") == 0)
		m = VERIFIER_MAX_BODY_ENROLL;
	return m < svc->cfg.max_body ? m : svc->cfg.max_body;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			       const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct verifier_svc *svc = cls;
	struct req *rq = *con_cls;
	int status = 200;
	json_t *ans;
	(void)version;

	if (!rq) {
		if (!(rq = calloc(1, sizeof *rq)))
			return MHD_NO;
		rq->start = verifier_mono();
		rq->max = endpoint_max_body(svc, url);
		*con_cls = rq;
		pthread_mutex_lock(&svc->metrics.mu);
		svc->metrics.http_requests++;
		pthread_mutex_unlock(&svc->metrics.mu);
		if (__atomic_add_fetch(&svc->inflight, 1, __ATOMIC_SEQ_CST) > (int)svc->cfg.queue_max) {
			__atomic_sub_fetch(&svc->inflight, 1, __ATOMIC_SEQ_CST);
			pthread_mutex_lock(&svc->metrics.mu);
			svc->metrics.rejected_busy++;
			pthread_mutex_unlock(&svc->metrics.mu);
			rq->too_big = -1; /* answered 503 once the body is drained */
		} else {
			rq->busy = 1;
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->too_big == 0) {
			if (rq->len + *upload_size > rq->max) {
				rq->too_big = 1;
			} else {
				if (rq->len + *upload_size + 1 > rq->cap) {
					size_t ncap = rq->cap ? rq->cap * 2 : 16384;
					char *n;
					while (ncap < rq->len + *upload_size + 1)
						ncap *= 2;
					if (ncap > rq->max + 1)
						ncap = rq->max + 1;
					if (!(n = realloc(rq->body, ncap)))
						return MHD_NO;
					rq->body = n;
					rq->cap = ncap;
				}
				memcpy(rq->body + rq->len, upload_data, *upload_size);
				rq->len += *upload_size;
				rq->body[rq->len] = 0;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_big < 0)
		return send_json(c, 503, verifier_problem(503, &status, "Service Unavailable",
							  "request queue full (%u); retry later", svc->cfg.queue_max), 1);
	if (rq->too_big > 0)
		return send_json(c, 413, verifier_problem(413, &status, "Payload Too Large",
							  "request body above %zu bytes", rq->max), 1);

	if (strcmp(method, "GET") == 0) {
		if (strcmp(url, "/metrics") == 0) {
			long long hosts = 0;
			char *text;
			verifier_store_count(svc->store, "hosts", &hosts);
			text = verifier_metrics_render(&svc->metrics, hosts);
			if (!text)
				return MHD_NO;
			return send_text(c, 200, text, "text/plain; version=0.0.4");
		}
		if (strncmp(url, "/v1/hosts/", 10) == 0) {
			ans = verifier_host_info(svc, url + 10, &status);
			return send_json(c, status, ans, status >= 400);
		}
		if (strcmp(url, "/v1/key") == 0) {
			uint8_t *pem = NULL;
			size_t n = 0;
			if (bundle_key_save_pem(svc->key, 0, &pem, &n) != BUNDLE_OK)
				return MHD_NO;
			return send_text(c, 200, (char *)pem, "application/x-pem-file");
		}
		return send_json(c, 404, verifier_problem(404, &status, "Not Found", "no such endpoint: GET %s", url),
				 1);
	}
	if (strcmp(method, "POST") != 0)
		return send_json(c, 405, verifier_problem(405, &status, "Method Not Allowed", "%s", method), 1);
	/* --threads requests are worked on at once; the others wait here (their connections have
	 * threads of their own, and the queue bound above caps how many there are). */
	while (sem_wait(&svc->workers) != 0 && errno == EINTR)
		;
	ans = dispatch_post(svc, c, url, rq, &status);
	sem_post(&svc->workers);
	if (!ans)
		ans = verifier_problem(500, &status, "Internal Server Error", "out of memory");
	return send_json(c, status, ans, status >= 400);
}

/* ---- set-up ---- */

static int load_bytes(const char *path, size_t max, uint8_t **ret, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf;
	size_t n;
	if (!f)
		return -1;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	buf[n] = 0;
	*ret = buf;
	*len = n;
	return 0;
}

/* The verifier's P-256 key: DIR/verifier-key.pem (created 0600 on first start) and its public
 * half DIR/verifier.pub.pem for operators to pin in agents. */
static enum verifier_err load_or_create_key(struct verifier_svc *svc, char *err, size_t errlen)
{
	char path[PATH_MAX], pubpath[PATH_MAX];
	uint8_t *buf = NULL, *pem = NULL;
	size_t len = 0, plen = 0;
	FILE *f;
	int fd;

	snprintf(path, sizeof path, "%s/verifier-key.pem", svc->cfg.state_dir);
	snprintf(pubpath, sizeof pubpath, "%s/verifier.pub.pem", svc->cfg.state_dir);
	if (load_bytes(path, 65536, &buf, &len) == 0) {
		enum bundle_err be = bundle_key_load(buf, len, &svc->key);
		OPENSSL_cleanse(buf, len);
		free(buf);
		if (be != BUNDLE_OK || !bundle_key_has_private(svc->key)) {
			seterr(err, errlen, "%s: not a private key (%s)", path, bundle_strerror(be));
			return VERIFIER_ERR_CRYPTO;
		}
	} else {
		if (bundle_key_generate(BUNDLE_ALG_ES256, &svc->key) != BUNDLE_OK ||
		    bundle_key_save_pem(svc->key, 1, &pem, &plen) != BUNDLE_OK) {
			seterr(err, errlen, "cannot create the verifier key: %s", bundle_last_cause());
			return VERIFIER_ERR_CRYPTO;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, pem, plen) != (ssize_t)plen || fsync(fd) != 0) {
			seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			OPENSSL_cleanse(pem, plen);
			free(pem);
			return VERIFIER_ERR_IO;
		}
		close(fd);
		OPENSSL_cleanse(pem, plen);
		free(pem);
		pem = NULL;
	}
	if (bundle_key_save_pem(svc->key, 0, &pem, &plen) != BUNDLE_OK)
		return VERIFIER_ERR_CRYPTO;
	f = fopen(pubpath, "we");
	if (!f || fwrite(pem, 1, plen, f) != plen) {
		seterr(err, errlen, "cannot write %s: %s", pubpath, strerror(errno));
		if (f)
			fclose(f);
		free(pem);
		return VERIFIER_ERR_IO;
	}
	fclose(f);
	free(pem);
	return VERIFIER_OK;
}

static enum verifier_err load_keyset(const char *path, struct bundle_keyset *ks, struct bundle_key **ret_one,
				     char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct bundle_keyset *tmp = NULL;
	enum bundle_err be;

	if (load_bytes(path, 1u << 20, &buf, &len) != 0) {
		seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return VERIFIER_ERR_IO;
	}
	be = bundle_keyset_load(buf, len, &tmp);
	if (be == BUNDLE_OK && ret_one && bundle_keyset_count(tmp) >= 1)
		be = bundle_key_public(bundle_keyset_get(tmp, 0), ret_one);
	if (be == BUNDLE_OK)
		for (size_t i = 0; i < bundle_keyset_count(tmp) && be == BUNDLE_OK; i++) {
			struct bundle_key *k = NULL;
			be = bundle_key_public(bundle_keyset_get(tmp, i), &k);
			if (be == BUNDLE_OK && (be = bundle_keyset_add(ks, k)) != BUNDLE_OK)
				bundle_key_free(k);
		}
	free(buf);
	bundle_keyset_free(tmp);
	if (be != BUNDLE_OK) {
		seterr(err, errlen, "%s: not a key or key set: %s (%s)", path, bundle_strerror(be), bundle_last_cause());
		return VERIFIER_ERR_CRYPTO;
	}
	return VERIFIER_OK;
}

enum verifier_err verifier_svc_open(const struct verifier_svc_cfg *cfg, struct verifier_svc **ret, char *err,
				    size_t errlen)
{
	struct verifier_svc *svc = calloc(1, sizeof *svc);
	struct verifier_policy *p = NULL;
	enum verifier_err rc;

	if (!svc)
		return VERIFIER_ERR_NOMEM;
	svc->cfg = *cfg;
	pthread_mutex_init(&svc->pol.mu, NULL);
	verifier_metrics_init(&svc->metrics);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_mutex_init(&svc->ts_mu, NULL);
	if (sem_init(&svc->workers, 0, cfg->threads ? cfg->threads : 1) != 0 ||
	    !(svc->ts_idle = calloc(cfg->threads ? cfg->threads : 1, sizeof *svc->ts_idle))) {
		free(svc);
		return VERIFIER_ERR_NOMEM;
	}
	if (!(svc->pol.path = strdup(cfg->policy_path))) {
		rc = VERIFIER_ERR_NOMEM;
		goto fail;
	}
	if ((rc = verifier_policy_load(cfg->policy_path, &p, err, errlen)) != VERIFIER_OK)
		goto fail;
	p->refs = 1;
	svc->pol.cur = p;
	if (verifier_keycache_new(&svc->keys) != 0) {
		rc = VERIFIER_ERR_NOMEM;
		goto fail;
	}
	if ((rc = verifier_store_open(cfg->state_dir, &svc->store)) != VERIFIER_OK) {
		seterr(err, errlen, "cannot open the database in %s", cfg->state_dir);
		goto fail;
	}
	if ((rc = load_or_create_key(svc, err, errlen)) != VERIFIER_OK)
		goto fail;
	if (cfg->ek_ca_dir && (rc = verifier_ekca_load(cfg->ek_ca_dir, &svc->ekca, err, errlen)) != VERIFIER_OK)
		goto fail;
	if (bundle_keyset_new(&svc->trusted_ts) != BUNDLE_OK) {
		rc = VERIFIER_ERR_NOMEM;
		goto fail;
	}
	if (cfg->ts_key_path &&
	    (rc = load_keyset(cfg->ts_key_path, svc->trusted_ts, &svc->ts_key, err, errlen)) != VERIFIER_OK)
		goto fail;
	for (size_t i = 0; i < cfg->n_trust_ts; i++)
		if ((rc = load_keyset(cfg->trust_ts[i], svc->trusted_ts, NULL, err, errlen)) != VERIFIER_OK)
			goto fail;
	if (bundle_keyset_count(svc->trusted_ts) == 0) {
		seterr(err, errlen, "no trusted transparency service key (--ts-key or --trust-ts-key)");
		rc = VERIFIER_ERR_INVAL;
		goto fail;
	}
	*ret = svc;
	return VERIFIER_OK;
fail:
	verifier_svc_free(svc);
	return rc;
}

enum verifier_err verifier_svc_start(struct verifier_svc *svc, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	char host[64];
	const char *colon = strrchr(svc->cfg.listen, ':');
	long port;
	char *end;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	if (!colon || (size_t)(colon - svc->cfg.listen) >= sizeof host) {
		seterr(err, errlen, "--listen: want ADDRESS:PORT, got \"%s\"", svc->cfg.listen);
		return VERIFIER_ERR_INVAL;
	}
	memcpy(host, svc->cfg.listen, (size_t)(colon - svc->cfg.listen));
	host[colon - svc->cfg.listen] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		seterr(err, errlen, "--listen: want IPv4-ADDRESS:PORT, got \"%s\"", svc->cfg.listen);
		return VERIFIER_ERR_INVAL;
	}
	sa.sin_port = htons((uint16_t)port);
	/* A thread per connection: an appraisal blocks its thread while the transparency service
	 * commits the verdict, so a connection must never wait behind another one. (With a thread
	 * pool, libmicrohttpd binds each connection to the pool thread that accepted it, and under
	 * load a few threads accepted nearly all of them: 2 of 32 threads served a whole bench
	 * run, serially.) --threads still bounds the requests worked on at once. */
	svc->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
					    MHD_USE_ERROR_LOG | MHD_USE_TURBO,
				    (uint16_t)port, NULL, NULL, handler, svc, MHD_OPTION_SOCK_ADDR, &sa,
				    MHD_OPTION_NOTIFY_COMPLETED, completed, svc, MHD_OPTION_CONNECTION_TIMEOUT,
				    (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)(svc->cfg.queue_max * 4 + 64),
				    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
	if (!svc->mhd) {
		seterr(err, errlen, "cannot listen on %s: %s", svc->cfg.listen, strerror(errno));
		return VERIFIER_ERR_IO;
	}
	return VERIFIER_OK;
}

void verifier_svc_free(struct verifier_svc *svc)
{
	if (!svc)
		return;
	if (svc->mhd)
		MHD_stop_daemon(svc->mhd);
	verifier_ts_clients_free(svc);
	verifier_store_close(svc->store);
	verifier_keycache_free(svc->keys);
	verifier_ekca_free(svc->ekca);
	bundle_key_free(svc->key);
	bundle_key_free(svc->ts_key);
	bundle_keyset_free(svc->trusted_ts);
	if (svc->pol.cur)
		verifier_policy_put(&svc->pol, svc->pol.cur);
	free(svc->pol.path);
	sem_destroy(&svc->workers);
	free(svc);
}
