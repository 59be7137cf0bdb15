/* The SCRAPI registration client: POST /entries, then whatever the service asks for (201,
 * 303 + polling, legacy 202 operations), retries with Retry-After or jittered exponential
 * backoff, all inside one time budget. */
#include "scrapi/scrapi.h"
#include "scrapi/scrapi-int.h"

#include <cbor.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define RECEIPT_ACCEPT "application/cose, application/scitt-receipt+cose, application/cbor, " \
		       "application/concise-problem-details+cbor"

struct scrapi_client {
	struct scrapi_cfg cfg;
	char base[2048];
	struct scrapi_http *http;
	char cause[1024];
	uint64_t rng;
	int lost; /* the last poll said the operation is unknown (404): submit again */
	/* POST /entries: its URL, formatted once, and that URL parsed once with its origin, to
	 * resolve the Location of every registration against (NULL if libcurl could not parse
	 * it: then resolve() parses per call, as for any other URL). */
	char post_url[2300];
	CURLU *post_u;
	char *post_scheme, *post_host, *post_port;
	char origin_url[2048]; /* "/" resolved against post_url by libcurl, without the "/" ("" if unknown) */
};

static void fmt(char *dst, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *dst, size_t cap, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vsnprintf(dst, cap, f, ap);
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts;
	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0)
		;
}

const char *scrapi_last_cause(const struct scrapi_client *c) { return c ? c->cause : ""; }

static int origin(CURLU *u, char **scheme, char **host, char **port);
static int resolve_c(struct scrapi_client *c, const char *ref, const char *loc, char *out, size_t cap);

static void post_url_free(struct scrapi_client *c)
{
	curl_url_cleanup(c->post_u);
	curl_free(c->post_scheme);
	curl_free(c->post_host);
	curl_free(c->post_port);
	c->post_u = NULL;
	c->post_scheme = c->post_host = c->post_port = NULL;
}

enum scrapi_err scrapi_client_new(const struct scrapi_cfg *cfg, struct scrapi_client **ret)
{
	struct scrapi_client *c;
	enum scrapi_err e;
	size_t n;

	if (!cfg || !cfg->url || !ret)
		return SCRAPI_ERR_INVAL;
	n = strlen(cfg->url);
	while (n && cfg->url[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof c->base)
		return SCRAPI_ERR_INVAL;
	e = scrapi_url_check(cfg->url, cfg->http.insecure_http);
	if (e != SCRAPI_OK)
		return e;
	c = calloc(1, sizeof *c);
	if (!c)
		return SCRAPI_ERR_NOMEM;
	c->cfg = *cfg;
	memcpy(c->base, cfg->url, n);
	c->base[n] = 0;
	c->cfg.url = c->base;
	if (c->cfg.budget <= 0)
		c->cfg.budget = 60;
	if (c->cfg.backoff_initial <= 0)
		c->cfg.backoff_initial = 0.25;
	if (c->cfg.backoff_max <= 0)
		c->cfg.backoff_max = 5;
	if (!c->cfg.max_polls)
		c->cfg.max_polls = 1000;
	if (getrandom(&c->rng, sizeof c->rng, 0) != sizeof c->rng)
		c->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
	c->rng |= 1;
	e = scrapi_http_new(&cfg->http, &c->http);
	if (e != SCRAPI_OK) {
		free(c);
		return e;
	}
	fmt(c->post_url, sizeof c->post_url, "%s/entries%s%s", c->base, c->cfg.post_query ? "?" : "",
	    c->cfg.post_query ? c->cfg.post_query : "");
	if (!(c->post_u = curl_url()) || curl_url_set(c->post_u, CURLUPART_URL, c->post_url, 0) != CURLUE_OK ||
	    origin(c->post_u, &c->post_scheme, &c->post_host, &c->post_port) != 0)
		post_url_free(c);
	if (!c->post_u || resolve_c(c, c->post_url, "/", c->origin_url, sizeof c->origin_url) != 0 ||
	    !*c->origin_url || c->origin_url[strlen(c->origin_url) - 1] != '/')
		c->origin_url[0] = 0;
	else
		c->origin_url[strlen(c->origin_url) - 1] = 0;
	*ret = c;
	return SCRAPI_OK;
}

void scrapi_client_free(struct scrapi_client *c)
{
	if (!c)
		return;
	scrapi_http_free(c->http);
	post_url_free(c);
	free(c);
}

void scrapi_result_clear(struct scrapi_result *r)
{
	if (!r)
		return;
	free(r->receipt);
	memset(r, 0, sizeof *r);
}

static double jitter01(struct scrapi_client *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return (double)(c->rng >> 11) / (double)(1ull << 53);
}

/* Wait before the next try: Retry-After if given, else backoff k (jittered). Returns -1 (and
 * leaves the wait undone) if that would cross the deadline. */
static int wait_next(struct scrapi_client *c, double deadline, long retry_after, unsigned *k)
{
	double d;
	if (retry_after >= 0) {
		d = (double)retry_after;
		if (d < 0.05)
			d = 0.05; /* a service saying "0" must not make us spin */
	} else {
		double b = c->cfg.backoff_initial;
		for (unsigned i = 0; i < *k && b < c->cfg.backoff_max; i++)
			b *= 2;
		if (b > c->cfg.backoff_max)
			b = c->cfg.backoff_max;
		d = b * (0.5 + 0.5 * jitter01(c));
	}
	(*k)++;
	if (now_s() + d > deadline)
		return -1;
	sleep_s(d);
	return 0;
}

static int receipt_type(const char *ct)
{
	size_t n = strcspn(ct, "; ");
	return n == 0 || (n == 16 && strncasecmp(ct, "application/cose", n) == 0) ||
	       (n == 30 && strncasecmp(ct, "application/scitt-receipt+cose", n) == 0) ||
	       (n == 16 && strncasecmp(ct, "application/cbor", n) == 0);
}

static void http_cause(struct scrapi_client *c, const char *what, const struct scrapi_http_resp *r)
{
	fmt(c->cause, sizeof c->cause, "%s: HTTP %ld%s%s%s%s", what, r->status, r->problem_title[0] ? " " : "",
		 r->problem_title, r->problem_detail[0] ? ": " : "", r->problem_detail);
}

/* Parts of a URL that make its origin; 0 or -1. */
static int origin(CURLU *u, char **scheme, char **host, char **port)
{
	return curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
			       curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
			       curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) == CURLUE_OK
		       ? 0
		       : -1;
}

/* Resolve loc against base (a parsed URL whose origin is scheme, host, port) into out. The
 * result must stay on that origin: a service cannot send the client elsewhere. 0 or -1. */
static int resolve_on(CURLU *base, const char *scheme, const char *host, const char *port, const char *loc,
		      char *out, size_t cap)
{
	CURLU *u = curl_url_dup(base);
	char *s = NULL, *s2 = NULL, *h2 = NULL, *p2 = NULL;
	int rc = -1;
	if (!u)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, loc, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK ||
	    strlen(s) >= cap)
		goto out;
	if (origin(u, &s2, &h2, &p2) != 0 || strcasecmp(scheme, s2) != 0 || strcasecmp(host, h2) != 0 ||
	    strcmp(port, p2) != 0)
		goto out;
	strcpy(out, s);
	rc = 0;
out:
	curl_free(s);
	curl_free(s2);
	curl_free(h2);
	curl_free(p2);
	curl_url_cleanup(u);
	return rc;
}

/* Resolve a Location against the URL of the request that returned it (same origin only). */
static int resolve(const char *ref, const char *loc, char *out, size_t cap)
{
	CURLU *b = curl_url();
	char *s1 = NULL, *h1 = NULL, *p1 = NULL;
	int rc = -1;
	if (b && curl_url_set(b, CURLUPART_URL, ref, 0) == CURLUE_OK && origin(b, &s1, &h1, &p1) == 0)
		rc = resolve_on(b, s1, h1, p1, loc, out, cap);
	curl_free(s1);
	curl_free(h1);
	curl_free(p1);
	curl_url_cleanup(b);
	return rc;
}

/* 1 if loc is an absolute path made of [A-Za-z0-9_-] segments ("/entries/17"): resolved against
 * any URL it is that URL's origin followed by loc, exactly as libcurl writes it (no dot
 * segments, escapes, query or fragment to normalise; no "//" that would name a host). */
static int plain_path(const char *loc)
{
	size_t n = strlen(loc);
	if (n < 2 || loc[0] != '/' || loc[n - 1] == '/')
		return 0;
	for (size_t i = 1; i < n; i++) {
		char ch = loc[i];
		if (ch == '/' ? loc[i - 1] == '/'
			      : !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
				  ch == '-'))
			return 0;
	}
	return 1;
}

/* resolve(), with the POST URL's parse and origin from the client when ref is that URL (and for
 * the service's usual "/entries/ID", its origin as libcurl wrote it once, followed by the path). */
static int resolve_c(struct scrapi_client *c, const char *ref, const char *loc, char *out, size_t cap)
{
	if (!c->post_u || strcmp(ref, c->post_url) != 0)
		return resolve(ref, loc, out, cap);
	if (c->origin_url[0] && plain_path(loc)) {
		size_t on = strlen(c->origin_url), ln = strlen(loc);
		if (on + ln >= cap)
			return -1;
		memcpy(out, c->origin_url, on);
		memcpy(out + on, loc, ln + 1);
		return 0;
	}
	return resolve_on(c->post_u, c->post_scheme, c->post_host, c->post_port, loc, out, cap);
}

static void set_entry(struct scrapi_result *res, const char *url)
{
	const char *slash;
	size_t n;
	fmt(res->entry_url, sizeof res->entry_url, "%s", url);
	n = strcspn(res->entry_url, "?#");
	res->entry_url[n] = 0;
	slash = strrchr(res->entry_url, '/');
	fmt(res->entry_id, sizeof res->entry_id, "%s", slash ? slash + 1 : "");
}

static enum scrapi_err take_receipt(struct scrapi_client *c, struct scrapi_http_resp *r, const char *what,
				    struct scrapi_result *res)
{
	if (!r->body_len || !receipt_type(r->content_type)) {
		fmt(c->cause, sizeof c->cause, "%s: HTTP %ld without a receipt (Content-Type '%s', %zu bytes)", what,
			 r->status, r->content_type, r->body_len);
		return SCRAPI_ERR_PROTOCOL;
	}
	res->receipt = r->body;
	res->receipt_len = r->body_len;
	r->body = NULL;
	return SCRAPI_OK;
}

/* Legacy operation status (CBOR or JSON object with "status" and maybe "entryId").
 * Returns 1 running, 2 succeeded (entry filled), 3 failed, 0 not an operation. */
static int legacy_status(const struct scrapi_http_resp *r, char *entry, size_t cap)
{
	struct cbor_load_result lr;
	cbor_item_t *m;
	int st = 0;
	entry[0] = 0;
	if (!r->body_len || r->body_len > 65536)
		return 0;
	m = scrapi_cbor_precheck(r->body, r->body_len) == 0 ? cbor_load(r->body, r->body_len, &lr) : NULL;
	if (m && lr.error.code == CBOR_ERR_NONE && cbor_isa_map(m)) {
		for (size_t i = 0; i < cbor_map_size(m); i++) {
			struct cbor_pair p = cbor_map_handle(m)[i];
			size_t kl, vl;
			const char *k, *v;
			if (!cbor_isa_string(p.key) || !cbor_isa_string(p.value) || !cbor_string_is_definite(p.key) ||
			    !cbor_string_is_definite(p.value))
				continue;
			k = (const char *)cbor_string_handle(p.key);
			kl = cbor_string_length(p.key);
			v = (const char *)cbor_string_handle(p.value);
			vl = cbor_string_length(p.value);
			if (kl == 6 && memcmp(k, "status", 6) == 0)
				st = (vl == 7 && memcmp(v, "running", 7) == 0) ? 1 : (vl == 9 && memcmp(v, "succeeded", 9) == 0) ? 2 : 3;
			else if (kl == 7 && memcmp(k, "entryId", 7) == 0 && vl < cap) {
				memcpy(entry, v, vl);
				entry[vl] = 0;
			}
		}
	} else {
		/* JSON: {"operationId": "...", "status": "running", "entryId": "..."} */
		const char *b = (const char *)r->body, *p;
		if ((p = strstr(b, "\"status\""))) {
			st = strstr(p, "\"running\"") ? 1 : strstr(p, "\"succeeded\"") ? 2 : 3;
			if ((p = strstr(b, "\"entryId\"")) && (p = strchr(p + 9, '"'))) {
				size_t n = strcspn(p + 1, "\"");
				if (n < cap) {
					memcpy(entry, p + 1, n);
					entry[n] = 0;
				}
			}
		}
	}
	if (m)
		cbor_decref(&m);
	for (char *q = entry; *q; q++) /* an id is one path segment */
		if (*q == '/' || *q == '?' || *q == '#' || *q == '%' || *q <= ' ')
			return 3;
	if (st == 2 && !entry[0])
		st = 3;
	return st;
}

static enum scrapi_err poll_status(struct scrapi_client *c, const char *first_url, long retry_after, double deadline,
			    struct scrapi_result *res)
{
	char url[2048], next[2048], entry[256];
	unsigned k = 0;
	enum scrapi_err e;
	struct scrapi_http_resp r = {0};
	char last[512] = "no answer yet";

	fmt(url, sizeof url, "%s", first_url);
	for (;;) {
		struct scrapi_http_req req = {.method = "GET", .url = url, .accept = RECEIPT_ACCEPT};
		if (wait_next(c, deadline, retry_after, &k) != 0) {
			fmt(c->cause, sizeof c->cause, "still not registered after %u polls of %s within the %.0fs budget (%s)",
				 res->polls, url, c->cfg.budget, last);
			return SCRAPI_ERR_TIMEOUT;
		}
		if (res->polls >= c->cfg.max_polls) {
			fmt(c->cause, sizeof c->cause, "still not registered after %u polls of %s", res->polls, url);
			return SCRAPI_ERR_TIMEOUT;
		}
		req.timeout_ms = (long)((deadline - now_s()) * 1000);
		if (req.timeout_ms <= 0)
			req.timeout_ms = 1;
		res->polls++;
		retry_after = -1;
		e = scrapi_http_do(c->http, &req, &r);
		if (e == SCRAPI_ERR_NETWORK || e == SCRAPI_ERR_TIMEOUT) {
			fmt(last, sizeof last, "%s", scrapi_http_last_cause(c->http));
			continue;
		}
		if (e != SCRAPI_OK) {
			fmt(c->cause, sizeof c->cause, "%s", scrapi_http_last_cause(c->http));
			return e;
		}
		if (r.status == 200) {
			int st = legacy_status(&r, entry, sizeof entry);
			if (st == 0) {
				set_entry(res, url);
				if (r.location[0] && resolve(url, r.location, next, sizeof next) == 0)
					set_entry(res, next);
				e = take_receipt(c, &r, "GET registration status", res);
				scrapi_http_resp_clear(&r);
				return e;
			}
			if (st == 3) {
				fmt(c->cause, sizeof c->cause, "the service reports the registration operation failed");
				scrapi_http_resp_clear(&r);
				return SCRAPI_ERR_REJECTED;
			}
			if (st == 2) {
				fmt(next, sizeof next, "%s/entries/%s", c->base, entry);
				fmt(url, sizeof url, "%s", next);
				retry_after = 0;
				k = 0;
			}
			fmt(last, sizeof last, "operation %s", st == 1 ? "running" : "succeeded");
			retry_after = r.retry_after >= 0 ? r.retry_after : retry_after;
		} else if (r.status == 302 || r.status == 303 || r.status == 202) {
			if (r.location[0]) {
				if (resolve(url, r.location, next, sizeof next) != 0) {
					fmt(c->cause, sizeof c->cause, "HTTP %ld with a malformed Location or one on another origin: '%s'",
					    r.status, r.location);
					scrapi_http_resp_clear(&r);
					return SCRAPI_ERR_PROTOCOL;
				}
				fmt(url, sizeof url, "%s", next);
			}
			fmt(last, sizeof last, "HTTP %ld pending", r.status);
			retry_after = r.retry_after;
		} else if (r.status == 429 || r.status >= 500) {
			http_cause(c, "GET registration status", &r);
			fmt(last, sizeof last, "%s", c->cause);
			retry_after = r.retry_after;
		} else {
			http_cause(c, "GET registration status", &r);
			e = r.status == 404 || r.status < 400 ? SCRAPI_ERR_HTTP : SCRAPI_ERR_REJECTED;
			c->lost = r.status == 404;
			scrapi_http_resp_clear(&r);
			return e;
		}
		scrapi_http_resp_clear(&r);
	}
}

enum scrapi_err scrapi_register(struct scrapi_client *c, const uint8_t *stmt, size_t len, struct scrapi_result *res)
{
	char url[2300], loc[2048];
	double t0 = now_s(), deadline;
	unsigned k = 0;
	enum scrapi_err e = SCRAPI_ERR_TIMEOUT;
	struct scrapi_http_resp r = {0};
	long retry_after;
	unsigned resubmits = 0;

	if (!c || !stmt || !len || !res)
		return SCRAPI_ERR_INVAL;
	memset(res, 0, sizeof *res);
	c->cause[0] = 0;
	deadline = t0 + c->cfg.budget;
	fmt(url, sizeof url, "%s", c->post_url);
	for (;;) {
		struct scrapi_http_req req = {.method = "POST", .url = url, .content_type = "application/cose",
					      .accept = RECEIPT_ACCEPT, .body = stmt, .body_len = len};
		req.timeout_ms = (long)((deadline - now_s()) * 1000);
		if (req.timeout_ms <= 0) {
			if (!c->cause[0])
				fmt(c->cause, sizeof c->cause, "the %.0fs budget ran out", c->cfg.budget);
			e = SCRAPI_ERR_TIMEOUT;
			break;
		}
		res->attempts++;
		e = scrapi_http_do(c->http, &req, &r);
		retry_after = -1;
		if (e == SCRAPI_ERR_NETWORK || e == SCRAPI_ERR_TIMEOUT) {
			fmt(c->cause, sizeof c->cause, "%s (after %u attempts)", scrapi_http_last_cause(c->http), res->attempts);
		} else if (e != SCRAPI_OK) {
			fmt(c->cause, sizeof c->cause, "%s", scrapi_http_last_cause(c->http));
			break;
		} else if (r.status == 201 || r.status == 200) {
			if (r.location[0] && resolve_c(c, url, r.location, loc, sizeof loc) == 0)
				set_entry(res, loc);
			e = take_receipt(c, &r, "POST /entries", res);
			break;
		} else if (r.status == 303 || r.status == 202) {
			if (!r.location[0] || resolve_c(c, url, r.location, loc, sizeof loc) != 0) {
				fmt(c->cause, sizeof c->cause,
				    "POST /entries: HTTP %ld without a usable Location (missing, malformed or on another origin: '%s')",
				    r.status, r.location);
				e = SCRAPI_ERR_PROTOCOL;
				break;
			}
			retry_after = r.retry_after;
			scrapi_http_resp_clear(&r);
			c->lost = 0;
			e = poll_status(c, loc, retry_after, deadline, res);
			/* An operation the service forgot (it restarted before committing it) is
			 * submitted again, a few times, inside the same budget. */
			if (e == SCRAPI_ERR_HTTP && c->lost && resubmits < 3) {
				resubmits++;
				e = SCRAPI_ERR_TIMEOUT;
				retry_after = -1;
				goto again;
			}
			break;
		} else if (r.status == 429 || r.status >= 500) {
			http_cause(c, "POST /entries", &r);
			retry_after = r.retry_after;
		} else if (r.status >= 400) {
			http_cause(c, "POST /entries", &r);
			e = SCRAPI_ERR_REJECTED;
			break;
		} else if (r.status >= 300) {
			fmt(c->cause, sizeof c->cause, "POST /entries: HTTP %ld redirect to '%s' (redirects are not followed)",
				 r.status, r.location);
			e = SCRAPI_ERR_PROTOCOL;
			break;
		} else {
			http_cause(c, "POST /entries", &r);
			e = SCRAPI_ERR_HTTP;
			break;
		}
		scrapi_http_resp_clear(&r);
	again:
		if (wait_next(c, deadline, retry_after, &k) != 0) {
			size_t n = strlen(c->cause);
			fmt(c->cause + n, sizeof c->cause - n, "; gave up: next retry would exceed the %.0fs budget",
				 c->cfg.budget);
			if (e != SCRAPI_ERR_NETWORK)
				e = SCRAPI_ERR_TIMEOUT;
			break;
		}
	}
	scrapi_http_resp_clear(&r);
	res->seconds = now_s() - t0;
	if (e != SCRAPI_OK)
		scrapi_result_clear(res);
	return e;
}

static enum scrapi_err get_bytes(struct scrapi_client *c, const char *path, const char *accept, uint8_t **ret,
				 size_t *ret_len)
{
	char url[2300];
	struct scrapi_http_resp r = {0};
	struct scrapi_http_req req = {.method = "GET", .url = url, .accept = accept};
	enum scrapi_err e;

	c->cause[0] = 0;
	fmt(url, sizeof url, "%s%s", c->base, path);
	e = scrapi_http_do(c->http, &req, &r);
	if (e != SCRAPI_OK) {
		fmt(c->cause, sizeof c->cause, "%s", scrapi_http_last_cause(c->http));
		return e;
	}
	if (r.status != 200 || !r.body_len) {
		http_cause(c, path, &r);
		scrapi_http_resp_clear(&r);
		return SCRAPI_ERR_HTTP;
	}
	*ret = r.body;
	*ret_len = r.body_len;
	r.body = NULL;
	scrapi_http_resp_clear(&r);
	return SCRAPI_OK;
}

enum scrapi_err scrapi_get_keys(struct scrapi_client *c, uint8_t **ret, size_t *ret_len)
{
	if (!c || !ret || !ret_len)
		return SCRAPI_ERR_INVAL;
	return get_bytes(c, "/.well-known/scitt-keys", "application/cbor", ret, ret_len);
}

enum scrapi_err scrapi_get_receipt(struct scrapi_client *c, const char *entry_id, uint8_t **ret, size_t *ret_len)
{
	char path[300];
	if (!c || !entry_id || !*entry_id || strlen(entry_id) > 255 || strpbrk(entry_id, "/?#% ") || !ret || !ret_len)
		return SCRAPI_ERR_INVAL;
	fmt(path, sizeof path, "/entries/%s", entry_id);
	return get_bytes(c, path, RECEIPT_ACCEPT, ret, ret_len);
}
