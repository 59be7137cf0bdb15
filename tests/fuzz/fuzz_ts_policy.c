/* Fuzz the sluice-ts registration policy parser (untrusted POST /entries bodies) and the
 * libscrapi problem-details decoder (untrusted error answers). Open registration, so inputs
 * with an x5chain reach the certificate parser and the signature check too. */
#include "scrapi/scrapi.h"
#include "transparency/ts-int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ts_policy *p;
	struct ts_verdict v;
	uint8_t *rec = NULL;
	size_t rlen = 0;
	char t[64], d[128];

	if (!p) {
		struct ts_policy_cfg cfg = {.open_registration = 1, .max_statement = 65536};
		char err[256];
		if (ts_policy_new(&cfg, &p, err, sizeof err) != 0)
			abort();
	}
	if (ts_policy_check(p, data, size, &rec, &rlen, &v) == 0) {
		if (!rec || rlen < 4 || rec[0] != 0xd2)
			abort();
		free(rec);
	} else if (v.status < 400 || !v.title || rec) {
		abort();
	}
	scrapi_problem_decode(data, size, t, sizeof t, d, sizeof d);
	return 0;
}
