/* Bounded HTTP requests over libcurl: no automatic redirects, timeouts, response size cap,
 * CA file, plain http only to loopback unless allowed, problem details decoded. */
#include "scrapi/scrapi.h"
#include "scrapi/scrapi-int.h"

#include <cbor.h>
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A handle keeps what does not change between its requests, so that a request costs the
 * transfer and little else: the options that come from cfg are set once on the easy handle
 * (no curl_easy_reset per request; the per-request ones are all set again every time), the
 * last URL's verdict under the URL rule (a pure function of the URL text and cfg), and the
 * last request-header list (rebuilt only when Accept or Content-Type change). */
struct scrapi_http {
	struct scrapi_http_cfg cfg;
	CURL *curl;
	char cause[512];
	char checked_url[2400];     /* "" or the last URL checked, and its verdict */
	enum scrapi_err checked_rc;
	struct curl_slist *hdrs;    /* headers for hdrs_post/hdrs_accept/hdrs_ctype */
	int hdrs_post;
	char hdrs_accept[256], hdrs_ctype[256];
};

const char *scrapi_strerror(enum scrapi_err err)
{
	switch (err) {
	case SCRAPI_OK:
		return "success";
	case SCRAPI_ERR_INVAL:
		return "invalid argument or URL";
	case SCRAPI_ERR_NOMEM:
		return "out of memory";
	case SCRAPI_ERR_INSECURE:
		return "plain http to a non-loopback host (use https, or allow insecure http)";
	case SCRAPI_ERR_NETWORK:
		return "network or TLS failure";
	case SCRAPI_ERR_TIMEOUT:
		return "timed out";
	case SCRAPI_ERR_TOOBIG:
		return "response too large";
	case SCRAPI_ERR_REJECTED:
		return "the service refused the request";
	case SCRAPI_ERR_HTTP:
		return "unexpected HTTP status";
	case SCRAPI_ERR_PROTOCOL:
		return "the service broke the protocol";
	case SCRAPI_ERR_TLS:
		return "TLS certificate verification failed";
	}
	return "unknown scrapi error";
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud);
static size_t on_header(char *buf, size_t size, size_t nitems, void *ud);

/* The options that are the same for every request of h. */
static CURLcode set_fixed(struct scrapi_http *h)
{
	CURL *c = h->curl;
	CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                                                  \
	do {                                                                                                           \
		if (cc == CURLE_OK)                                                                                    \
			cc = curl_easy_setopt(c, opt, val);                                                            \
	} while (0)
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->cfg.max_response);
	SET(CURLOPT_USERAGENT, h->cfg.user_agent);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->cfg.ca_file)
		SET(CURLOPT_CAINFO, h->cfg.ca_file);
#undef SET
	return cc;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

enum scrapi_err scrapi_http_new(const struct scrapi_http_cfg *cfg, struct scrapi_http **ret)
{
	struct scrapi_http *h;
	if (!ret)
		return SCRAPI_ERR_INVAL;
	pthread_once(&init_once, global_init);
	h = calloc(1, sizeof *h);
	if (!h)
		return SCRAPI_ERR_NOMEM;
	if (cfg)
		h->cfg = *cfg;
	if (h->cfg.connect_timeout_ms <= 0)
		h->cfg.connect_timeout_ms = 5000;
	if (h->cfg.timeout_ms <= 0)
		h->cfg.timeout_ms = 30000;
	if (!h->cfg.max_response)
		h->cfg.max_response = 1u << 20;
	if (!h->cfg.user_agent)
		h->cfg.user_agent = "sluice/scrapi";
	h->curl = curl_easy_init();
	if (!h->curl) {
		free(h);
		return SCRAPI_ERR_NOMEM;
	}
	if (set_fixed(h) != CURLE_OK) {
		scrapi_http_free(h);
		return SCRAPI_ERR_NOMEM;
	}
	*ret = h;
	return SCRAPI_OK;
}

void scrapi_http_free(struct scrapi_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->hdrs);
	free(h);
}

const char *scrapi_http_last_cause(const struct scrapi_http *h) { return h ? h->cause : ""; }

void scrapi_http_resp_clear(struct scrapi_http_resp *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof *r);
	r->retry_after = -1;
}

static int is_loopback_host(const char *host)
{
	unsigned a, b, c, d;
	char tail;
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
		return 1;
	if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 && d < 256)
		return 1;
	return 0;
}

enum scrapi_err scrapi_url_check(const char *url, int insecure_http)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	enum scrapi_err rc = SCRAPI_ERR_INVAL;

	if (!u)
		return SCRAPI_ERR_NOMEM;
	if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "https") == 0)
		rc = SCRAPI_OK;
	else if (strcasecmp(scheme, "http") == 0)
		rc = insecure_http || is_loopback_host(host) ? SCRAPI_OK : SCRAPI_ERR_INSECURE;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
	size_t k = 0;
	if (!cap)
		return;
	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[k++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch; /* no control characters in logs */
	}
	dst[k] = 0;
}

static int walk(const uint8_t **pp, const uint8_t *end, int depth)
{
	const uint8_t *p = *pp;
	unsigned major, ai;
	uint64_t v = 0;

	if (depth > 16 || p >= end)
		return -1;
	major = *p >> 5;
	ai = *p & 31;
	p++;
	if (ai < 24) {
		v = ai;
	} else if (ai <= 27) {
		unsigned n = 1u << (ai - 24);
		if ((size_t)(end - p) < n)
			return -1;
		for (unsigned i = 0; i < n; i++)
			v = v << 8 | *p++;
	} else {
		return -1; /* indefinite length or reserved */
	}
	switch (major) {
	case 2:
	case 3:
		if (v > (uint64_t)(end - p))
			return -1;
		p += v;
		break;
	case 4:
	case 5:
		if (v > (uint64_t)(end - p) || (major == 5 && v > (uint64_t)(end - p) / 2))
			return -1;
		for (uint64_t i = 0; i < (major == 5 ? 2 * v : v); i++)
			if (walk(&p, end, depth + 1) != 0)
				return -1;
		break;
	case 6:
		if (walk(&p, end, depth + 1) != 0)
			return -1;
		break;
	default:
		break;
	}
	*pp = p;
	return 0;
}

int scrapi_cbor_precheck(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf;
	if (!buf || !len || walk(&p, buf + len, 0) != 0)
		return -1;
	return p == buf + len ? 0 : -1;
}

int scrapi_problem_decode(const uint8_t *buf, size_t len, char *title, size_t title_cap, char *detail,
			  size_t detail_cap)
{
	struct cbor_load_result res;
	cbor_item_t *m;
	int found = 0;

	if (title_cap)
		title[0] = 0;
	if (detail_cap)
		detail[0] = 0;
	if (!buf || !len || len > 65536 || scrapi_cbor_precheck(buf, len) != 0)
		return -1;
	m = cbor_load(buf, len, &res);
	if (!m)
		return -1;
	if (res.error.code != CBOR_ERR_NONE || res.read != len || !cbor_isa_map(m)) {
		cbor_decref(&m);
		return -1;
	}
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		struct cbor_pair p = cbor_map_handle(m)[i];
		uint64_t k;
		if (!cbor_isa_negint(p.key) || !cbor_isa_string(p.value) || !cbor_string_is_definite(p.value))
			continue;
		k = cbor_get_int(p.key); /* -1 - k */
		if (k == 0 && title_cap) {
			copy_str(title, title_cap, (const char *)cbor_string_handle(p.value), cbor_string_length(p.value));
			found = 1;
		} else if (k == 1 && detail_cap) {
			copy_str(detail, detail_cap, (const char *)cbor_string_handle(p.value), cbor_string_length(p.value));
			found = 1;
		}
	}
	cbor_decref(&m);
	return found ? 0 : -1;
}

struct xfer {
	struct scrapi_http *h;
	struct scrapi_http_resp *resp;
	uint8_t *body;
	size_t len, cap;
	int too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	if (x->len + n > x->h->cfg.max_response) {
		x->too_big = 1;
		return 0; /* aborts the transfer */
	}
	if (x->len + n + 1 > x->cap) {
		size_t ncap = x->cap ? x->cap : 4096;
		uint8_t *nb;
		while (ncap < x->len + n + 1)
			ncap *= 2;
		nb = realloc(x->body, ncap);
		if (!nb)
			return 0;
		x->body = nb;
		x->cap = ncap;
	}
	memcpy(x->body + x->len, ptr, n);
	x->len += n;
	return n;
}

static long parse_retry_after(const char *v)
{
	char *end;
	long s;
	time_t t;
	while (*v == ' ')
		v++;
	if (isdigit((unsigned char)*v)) {
		s = strtol(v, &end, 10);
		return s < 0 ? -1 : (s > 86400 ? 86400 : s);
	}
	t = curl_getdate(v, NULL);
	if (t < 0)
		return -1;
	s = (long)(t - time(NULL));
	return s < 0 ? 0 : (s > 86400 ? 86400 : s);
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nitems, nl;
	const char *colon;
	char val[2048];

	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): forget earlier headers */
		x->resp->content_type[0] = 0;
		x->resp->location[0] = 0;
		x->resp->retry_after = -1;
		return n;
	}
	colon = memchr(buf, ':', n);
	if (!colon)
		return n;
	nl = (size_t)(colon - buf);
	{
		const char *v = colon + 1;
		size_t vl = n - nl - 1;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		copy_str(val, sizeof val, v, vl);
	}
	if (nl == 12 && strncasecmp(buf, "Content-Type", 12) == 0)
		copy_str(x->resp->content_type, sizeof x->resp->content_type, val, strlen(val));
	else if (nl == 8 && strncasecmp(buf, "Location", 8) == 0)
		copy_str(x->resp->location, sizeof x->resp->location, val, strlen(val));
	else if (nl == 11 && strncasecmp(buf, "Retry-After", 11) == 0)
		x->resp->retry_after = parse_retry_after(val);
	return n;
}

enum scrapi_err scrapi_http_do(struct scrapi_http *h, const struct scrapi_http_req *req, struct scrapi_http_resp *resp)
{
	struct xfer x = {0};
	struct curl_slist *hdrs = NULL;
	char line[256], errbuf[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode cc;
	enum scrapi_err rc;
	long timeout;
	int post;

	if (!h || !req || !req->url || !req->method || !resp)
		return SCRAPI_ERR_INVAL;
	h->cause[0] = 0;
	memset(resp, 0, sizeof *resp);
	resp->retry_after = -1;
	post = strcmp(req->method, "POST") == 0;
	if (!post && strcmp(req->method, "GET") != 0) {
		snprintf(h->cause, sizeof h->cause, "method %s not supported", req->method);
		return SCRAPI_ERR_INVAL;
	}
	if (strcmp(req->url, h->checked_url) != 0) {
		rc = scrapi_url_check(req->url, h->cfg.insecure_http);
		if (strlen(req->url) < sizeof h->checked_url) {
			strcpy(h->checked_url, req->url);
			h->checked_rc = rc;
		} else {
			h->checked_url[0] = 0;
		}
	} else {
		rc = h->checked_rc;
	}
	if (rc != SCRAPI_OK) {
		snprintf(h->cause, sizeof h->cause, "%s: %s", rc == SCRAPI_ERR_INSECURE ? "refusing plain http to a non-loopback host" : "not an http(s) URL", req->url);
		return rc;
	}
	timeout = h->cfg.timeout_ms;
	if (req->timeout_ms > 0 && req->timeout_ms < timeout)
		timeout = req->timeout_ms;

	c = h->curl;
	x.h = h;
	x.resp = resp;
	/* The request headers: the list of the previous request if it is the same. */
	{
		const char *acc = req->accept ? req->accept : "";
		const char *ct = post ? (req->content_type ? req->content_type : "application/octet-stream") : "";
		if (!h->hdrs || h->hdrs_post != post || strcmp(h->hdrs_accept, acc) != 0 || strcmp(h->hdrs_ctype, ct) != 0) {
			struct curl_slist *n = curl_slist_append(NULL, "Expect:"), *t = n;
			if (t && req->accept) {
				snprintf(line, sizeof line, "Accept: %s", req->accept);
				t = curl_slist_append(n, line);
			}
			if (t && post) {
				snprintf(line, sizeof line, "Content-Type: %s", ct);
				t = curl_slist_append(n, line);
			}
			if (!t) {
				curl_slist_free_all(n);
				snprintf(h->cause, sizeof h->cause, "%s %s: out of memory", req->method, req->url);
				return SCRAPI_ERR_NOMEM;
			}
			curl_slist_free_all(h->hdrs);
			h->hdrs = n;
			h->hdrs_post = post;
			/* cached only if the key fits; otherwise rebuilt next time */
			if (strlen(acc) < sizeof h->hdrs_accept && strlen(ct) < sizeof h->hdrs_ctype) {
				strcpy(h->hdrs_accept, acc);
				strcpy(h->hdrs_ctype, ct);
			} else {
				h->hdrs_post = -1; /* matches no request: rebuilt next time */
			}
		}
		hdrs = h->hdrs;
	}
	/* Every option that differs between requests is set here, every time (the others were
	 * set once by set_fixed). */
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->cfg.connect_timeout_ms < timeout ? h->cfg.connect_timeout_ms : timeout);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	if (post) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(c);
	/* Nothing that points into this call's stack or the caller's body stays set. */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, NULL);
	if (post) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	if (cc != CURLE_OK) {
		if (x.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
			snprintf(h->cause, sizeof h->cause, "%s %s: response larger than %zu bytes", req->method, req->url,
				 h->cfg.max_response);
			rc = SCRAPI_ERR_TOOBIG;
		} else if (cc == CURLE_OPERATION_TIMEDOUT) {
			snprintf(h->cause, sizeof h->cause, "%s %s: no complete answer within %ld ms", req->method, req->url,
				 timeout);
			rc = SCRAPI_ERR_TIMEOUT;
		} else if (cc == CURLE_OUT_OF_MEMORY) {
			rc = SCRAPI_ERR_NOMEM;
		} else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
			   cc == CURLE_SSL_CERTPROBLEM) {
			snprintf(h->cause, sizeof h->cause, "%s %s: %s", req->method, req->url,
				 errbuf[0] ? errbuf : curl_easy_strerror(cc));
			rc = SCRAPI_ERR_TLS;
		} else {
			snprintf(h->cause, sizeof h->cause, "%s %s: %s", req->method, req->url,
				 errbuf[0] ? errbuf : curl_easy_strerror(cc));
			rc = SCRAPI_ERR_NETWORK;
		}
		free(x.body);
		scrapi_http_resp_clear(resp);
		return rc;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (!x.body && !(x.body = malloc(1))) {
		scrapi_http_resp_clear(resp);
		return SCRAPI_ERR_NOMEM;
	}
	x.body[x.len] = 0;
	resp->body = x.body;
	resp->body_len = x.len;
	if (resp->status >= 400) {
		if (scrapi_problem_decode(resp->body, resp->body_len, resp->problem_title, sizeof resp->problem_title,
					  resp->problem_detail, sizeof resp->problem_detail) != 0 &&
		    strncasecmp(resp->content_type, "text/", 5) == 0)
			copy_str(resp->problem_detail, 200, (const char *)resp->body, resp->body_len);
	}
	return SCRAPI_OK;
}
