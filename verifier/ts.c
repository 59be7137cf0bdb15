/* Registering verdict statements with the transparency service, from the appraisal worker
 * threads, through libscrapi (POST /entries; 201, or 303 and polling with Retry-After; retries
 * of 5xx inside a 10 s budget; never an automatic redirect). Clients are pooled: a registration
 * takes an idle one (creating it if none is idle) and gives it back, so each keeps its
 * keep-alive connection to the service across appraisals, whichever connection's thread runs
 * them. The receipt is checked for shape only: every agent verifies it against its pinned
 * service key (agent_attest_appraise), so a second ECDSA verification here would only cost CPU. */
#include "verifier/verifier-int.h"
#include "bundle/bundle.h"
#include "scrapi/scrapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET 10.0

void verifier_ts_clients_free(struct verifier_svc *svc)
{
	for (size_t i = 0; i < svc->n_ts_idle; i++)
		scrapi_client_free(svc->ts_idle[i]);
	free(svc->ts_idle);
	svc->ts_idle = NULL;
	svc->n_ts_idle = 0;
}

/* An idle client, or a new one; NULL with err on failure. */
static struct scrapi_client *take(struct verifier_svc *svc, char *err, size_t errlen)
{
	struct scrapi_client *c = NULL;
	struct scrapi_cfg cfg = {0};
	enum scrapi_err se;

	pthread_mutex_lock(&svc->ts_mu);
	if (svc->n_ts_idle)
		c = svc->ts_idle[--svc->n_ts_idle];
	pthread_mutex_unlock(&svc->ts_mu);
	if (c)
		return c;
	cfg.url = svc->cfg.ts_url;
	cfg.http.insecure_http = svc->cfg.insecure_http;
	cfg.http.timeout_ms = (long)(BUDGET * 1000);
	cfg.http.user_agent = "sluice-verifier";
	cfg.budget = BUDGET;
	cfg.backoff_initial = 0.05;
	cfg.backoff_max = 1;
	if ((se = scrapi_client_new(&cfg, &c)) != SCRAPI_OK) {
		snprintf(err, errlen, "%s: %s", svc->cfg.ts_url, scrapi_strerror(se));
		return NULL;
	}
	return c;
}

/* Back to the idle list (at most --threads are kept; one per worker is all that can be busy). */
static void put(struct verifier_svc *svc, struct scrapi_client *c)
{
	pthread_mutex_lock(&svc->ts_mu);
	if (svc->n_ts_idle < svc->cfg.threads && svc->ts_idle) {
		svc->ts_idle[svc->n_ts_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&svc->ts_mu);
	scrapi_client_free(c);
}

enum verifier_err verifier_ts_register(struct verifier_svc *svc, const uint8_t *stmt, size_t len, uint8_t **ret,
				       size_t *ret_len, char *err, size_t errlen)
{
	struct scrapi_client *c = take(svc, err, errlen);
	struct scrapi_result res;
	struct bundle_cose rc;
	enum scrapi_err se;
	enum bundle_err be;

	if (!c)
		return VERIFIER_ERR_INVAL;
	memset(&res, 0, sizeof res);
	se = scrapi_register(c, stmt, len, &res);
	if (se != SCRAPI_OK)
		snprintf(err, errlen, "%s: %s (%s)", svc->cfg.ts_url, scrapi_strerror(se), scrapi_last_cause(c));
	put(svc, c);
	if (se != SCRAPI_OK)
		return VERIFIER_ERR_IO;
	if ((be = bundle_cose_parse(res.receipt, res.receipt_len, &rc)) != BUNDLE_OK || !rc.detached || !rc.vdp.ptr) {
		snprintf(err, errlen, "the service's answer is not a receipt: %s", bundle_strerror(be));
		scrapi_result_clear(&res);
		return VERIFIER_ERR_IO;
	}
	*ret = res.receipt;
	*ret_len = res.receipt_len;
	res.receipt = NULL;
	scrapi_result_clear(&res);
	return VERIFIER_OK;
}
