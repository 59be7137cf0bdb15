/* Registering verdict statements with the transparency service (SCRAPI POST /entries), from the
 * appraisal worker threads. One libcurl handle per worker thread keeps the connection alive.
 * 201 carries the receipt; 303 is polled (GET Location, 302 while pending) honouring
 * Retry-After inside a 10 s budget; redirects are never followed automatically. The receipt is
 * checked for shape only: agents verify it against their pinned service key. */
#include "verifier/verifier-int.h"
#include "bundle/bundle.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_RECEIPT (64u << 10)
#define BUDGET 10.0

struct body {
	uint8_t *p;
	size_t len;
	int too_big;
};

struct hdrs {
	char location[512];
	long retry_after;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = size * n;
	uint8_t *np;
	if (b->len + add > MAX_RECEIPT) {
		b->too_big = 1;
		return 0;
	}
	np = realloc(b->p, b->len + add + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, ptr, add);
	b->len += add;
	return add;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct hdrs *h = ud;
	size_t len = size * n;
	if (len > 9 && strncasecmp(buf, "Location:", 9) == 0) {
		size_t s = 9, e = len;
		while (s < e && (buf[s] == ' ' || buf[s] == '\t'))
			s++;
		while (e > s && (buf[e - 1] == '\r' || buf[e - 1] == '\n' || buf[e - 1] == ' '))
			e--;
		if (e - s < sizeof h->location) {
			memcpy(h->location, buf + s, e - s);
			h->location[e - s] = 0;
		}
	} else if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
		h->retry_after = strtol(buf + 12, NULL, 10);
	}
	return len;
}

void verifier_ts_curl_free(void *p)
{
	curl_easy_cleanup(p);
}

static int is_loopback_url(const char *url)
{
	const char *h = strstr(url, "://");
	if (!h)
		return 0;
	h += 3;
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 || strncmp(h, "[::1]", 5) == 0;
}

/* One request; returns the HTTP status or -1 (err filled). */
static long request(CURL *c, const char *url, const uint8_t *post, size_t post_len, struct body *b, struct hdrs *h,
		    double remaining, char *err, size_t errlen)
{
	struct curl_slist *hl = NULL;
	CURLcode cc;
	long code = 0;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(remaining * 1000) > 100 ? (long)(remaining * 1000) : 100L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	hl = curl_slist_append(hl, "Accept: application/cose");
	if (post) {
		hl = curl_slist_append(hl, "Content-Type: application/cose");
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)post_len);
	}
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	cc = curl_easy_perform(c);
	curl_slist_free_all(hl);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", url, b->too_big ? "response above 64 KiB" : curl_easy_strerror(cc));
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

static void problem_text(const struct body *b, long code, char *err, size_t errlen)
{
	char title[128] = "", detail[256] = "";
	if (b->len && bundle_problem_decode(b->p, b->len, title, sizeof title, detail, sizeof detail) == BUNDLE_OK)
		snprintf(err, errlen, "HTTP %ld: %s: %s", code, title, detail);
	else
		snprintf(err, errlen, "HTTP %ld", code);
}

enum verifier_err verifier_ts_register(struct verifier_svc *svc, const uint8_t *stmt, size_t len, uint8_t **ret,
				       size_t *ret_len, char *err, size_t errlen)
{
	CURL *c = pthread_getspecific(svc->http_key);
	char url[1024], base[600];
	struct body b = {0};
	struct hdrs h;
	double start = verifier_mono();
	long code;
	enum bundle_err be;
	size_t bl;

	if (!c) {
		if (!(c = curl_easy_init()))
			return VERIFIER_ERR_NOMEM;
		pthread_setspecific(svc->http_key, c);
	}
	if (strncmp(svc->cfg.ts_url, "https://", 8) != 0 && !is_loopback_url(svc->cfg.ts_url) && !svc->cfg.insecure_http) {
		snprintf(err, errlen, "plain http to a non-loopback transparency service needs --insecure-http");
		return VERIFIER_ERR_INVAL;
	}
	snprintf(base, sizeof base, "%s", svc->cfg.ts_url);
	bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		base[--bl] = 0;
	snprintf(url, sizeof url, "%s/entries", base);
	memset(&h, 0, sizeof h);
	code = request(c, url, stmt, len, &b, &h, BUDGET, err, errlen);
	while (code == 303 || code == 302 || code == 202) {
		double left = BUDGET - (verifier_mono() - start);
		double wait = h.retry_after > 0 ? (double)h.retry_after : 0.05;
		if (!h.location[0]) {
			snprintf(err, errlen, "HTTP %ld without Location", code);
			goto fail;
		}
		if (left <= wait) {
			snprintf(err, errlen, "registration still pending after %.0f s", BUDGET);
			goto fail;
		}
		usleep((useconds_t)(wait * 1e6));
		if (h.location[0] == '/')
			snprintf(url, sizeof url, "%s%s", base, h.location);
		else
			snprintf(url, sizeof url, "%s", h.location);
		free(b.p);
		memset(&b, 0, sizeof b);
		memset(&h, 0, sizeof h);
		code = request(c, url, NULL, 0, &b, &h, left - wait, err, errlen);
	}
	if (code < 0)
		goto fail;
	if (code != 200 && code != 201) {
		problem_text(&b, code, err, errlen);
		goto fail;
	}
	/* Structure only: every agent verifies this receipt against its pinned service key
	 * (agent_attest_appraise), so a second ECDSA verification here would only cost CPU. */
	{
		struct bundle_cose rc;
		if ((be = bundle_cose_parse(b.p, b.len, &rc)) != BUNDLE_OK || !rc.detached || !rc.vdp.ptr) {
			snprintf(err, errlen, "the service's answer is not a receipt: %s", bundle_strerror(be));
			goto fail;
		}
	}
	*ret = b.p;
	*ret_len = b.len;
	return VERIFIER_OK;
fail:
	free(b.p);
	return VERIFIER_ERR_IO;
}
