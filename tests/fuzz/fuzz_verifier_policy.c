/* Fuzz target: the verifier's policy parser (JSON via jansson, then strict validation). */
#include "verifier/verifier-int.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verifier_policy *p = NULL;
	char err[256];
	if (verifier_policy_parse((const char *)data, size, "/nonexistent", &p, err, sizeof err) == VERIFIER_OK) {
		verifier_policy_group(p, "web-01");
		verifier_policy_free(p);
	}
	return 0;
}
