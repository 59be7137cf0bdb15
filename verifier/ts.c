/* Registering verdict statements with the transparency service, from the appraisal worker
 * threads, through libscrapi (POST /entries; 201, or 303 and polling with Retry-After; retries
 * of 5xx inside a 10 s budget; never an automatic redirect). One client per worker thread keeps
 * its connection alive. The receipt is checked for shape only: every agent verifies it against
 * its pinned service key (agent_attest_appraise), so a second ECDSA verification here would
 * only cost CPU. */
#include "verifier/verifier-int.h"
#include "bundle/bundle.h"
#include "scrapi/scrapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET 10.0

void verifier_ts_client_free(void *client)
{
	scrapi_client_free(client);
}

enum verifier_err verifier_ts_register(struct verifier_svc *svc, const uint8_t *stmt, size_t len, uint8_t **ret,
				       size_t *ret_len, char *err, size_t errlen)
{
	struct scrapi_client *c = pthread_getspecific(svc->http_key);
	struct scrapi_result res;
	struct bundle_cose rc;
	enum scrapi_err se;
	enum bundle_err be;

	if (!c) {
		struct scrapi_cfg cfg = {0};
		cfg.url = svc->cfg.ts_url;
		cfg.http.insecure_http = svc->cfg.insecure_http;
		cfg.http.timeout_ms = (long)(BUDGET * 1000);
		cfg.http.user_agent = "sluice-verifier";
		cfg.budget = BUDGET;
		cfg.backoff_initial = 0.05;
		cfg.backoff_max = 1;
		if ((se = scrapi_client_new(&cfg, &c)) != SCRAPI_OK) {
			snprintf(err, errlen, "%s: %s", svc->cfg.ts_url, scrapi_strerror(se));
			return VERIFIER_ERR_INVAL;
		}
		pthread_setspecific(svc->http_key, c);
	}
	memset(&res, 0, sizeof res);
	if ((se = scrapi_register(c, stmt, len, &res)) != SCRAPI_OK) {
		snprintf(err, errlen, "%s: %s (%s)", svc->cfg.ts_url, scrapi_strerror(se), scrapi_last_cause(c));
		return VERIFIER_ERR_IO;
	}
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
