/* Registration of call statements with the transparency service (SCRAPI,
 * draft-ietf-scitt-scrapi-09) over the agent's bounded HTTP client: POST /entries, then 201
 * with the receipt, or 303/302 polling of Location honouring Retry-After, all inside the
 * gateway's registration budget. Redirects are never followed automatically. The entry id
 * is the last path segment of the Location the service named ("" if it named none); the
 * caller verifies the receipt. */
#include "agent/tools.h"
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "bundle/bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void entry_from_location(const char *loc, char *entry_id, size_t cap)
{
	const char *p = strstr(loc, "/entries/");
	size_t n;
	if (!p || cap == 0)
		return;
	p += strlen("/entries/");
	n = strcspn(p, "/?#");
	if (n == 0 || n >= cap)
		return;
	/* only a tidy token goes into _meta and the journal */
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
		      p[i] == '-' || p[i] == '_' || p[i] == '.' || p[i] == '%'))
			return;
	memcpy(entry_id, p, n);
	entry_id[n] = '\0';
}

enum tools_err tools_scrapi_register(const struct tools_call_cfg *cfg, const uint8_t *stmt, size_t stmt_len,
				     uint8_t **ret_receipt, size_t *ret_len, char *entry_id, size_t entry_cap,
				     char *detail, size_t detaillen)
{
	struct agent_http_opts o = {.ca_file = cfg->ca_file, .insecure_http = cfg->insecure_http,
				    .max_body = BUNDLE_MAX_COSE};
	struct agent_http_resp r = {0};
	char url[2048], base[1024], err[512] = "";
	double budget = cfg->budget > 0 ? cfg->budget : 10, start = agent_now(), backoff = 0.05;
	size_t bl;

	if (entry_cap)
		entry_id[0] = '\0';
	snprintf(base, sizeof base, "%s", cfg->ts_url);
	bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		base[--bl] = '\0';
	snprintf(url, sizeof url, "%s/entries", base);
	o.timeout = budget;
	if (agent_http(&o, "POST", url, "application/cose", stmt, stmt_len, "application/cose", &r, err, sizeof err)) {
		snprintf(detail, detaillen, "%s", err);
		return TOOLS_ERR_REGISTER;
	}
	while (r.status == 303 || r.status == 302 || r.status == 202) {
		double left = budget - (agent_now() - start);
		double wait = r.retry_after >= 0 ? (double)r.retry_after : backoff;
		if (!r.location[0]) {
			snprintf(detail, detaillen, "%s: HTTP %ld without Location", url, r.status);
			goto fail;
		}
		if (wait >= left) {
			snprintf(detail, detaillen, "%s: registration still pending after %.1f s", url, budget);
			goto fail;
		}
		usleep((useconds_t)(wait * 1e6));
		backoff = backoff * 2 > 2 ? 2 : backoff * 2;
		int n = r.location[0] == '/' ? snprintf(url, sizeof url, "%s%s", base, r.location)
					    : snprintf(url, sizeof url, "%s", r.location);
		if (n < 0 || (size_t)n >= sizeof url) {
			snprintf(detail, detaillen, "registration Location too long");
			goto fail;
		}
		agent_http_resp_clear(&r);
		o.timeout = left - wait;
		if (agent_http(&o, "GET", url, NULL, NULL, 0, "application/cose", &r, err, sizeof err)) {
			snprintf(detail, detaillen, "%s", err);
			return TOOLS_ERR_REGISTER;
		}
	}
	if (r.status != 200 && r.status != 201) {
		char t[128] = "", d[256] = "";
		if (r.len)
			bundle_problem_decode(r.body, r.len, t, sizeof t, d, sizeof d);
		snprintf(detail, detaillen, "%s: HTTP %ld%s%s%s%s", url, r.status, t[0] ? ": " : "", t, d[0] ? ": " : "",
			 d);
		goto fail;
	}
	if (r.len == 0) {
		snprintf(detail, detaillen, "%s: HTTP %ld with an empty body", url, r.status);
		goto fail;
	}
	entry_from_location(r.location[0] ? r.location : url, entry_id, entry_cap);
	*ret_receipt = r.body;
	*ret_len = r.len;
	r.body = NULL;
	agent_http_resp_clear(&r);
	return TOOLS_OK;
fail:
	agent_http_resp_clear(&r);
	return TOOLS_ERR_REGISTER;
}
