/* Fuzz target: bounded CBOR well-formedness/determinism checks and the CBOR -> JSON renderer
 * (whose output must always be valid JSON). */
#include "bundle/bundle.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = NULL;
	enum bundle_err loose = bundle_cbor_check(data, size, 0);
	enum bundle_err strict = bundle_cbor_check(data, size, 1);
	/* deterministic implies well-formed */
	if (strict == BUNDLE_OK && loose != BUNDLE_OK)
		abort();
	if (bundle_cbor_to_json(data, size, &json) == BUNDLE_OK) {
		json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (loose != BUNDLE_OK || !j) /* the renderer only accepts CBOR and only emits JSON */
			abort();
		json_decref(j);
	}
	free(json);
	return 0;
}
