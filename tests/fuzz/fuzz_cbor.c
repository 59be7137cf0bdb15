/* Fuzz target: bounded CBOR well-formedness/determinism checks and the CBOR -> JSON renderer. */
#include "bundle/bundle.h"

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
	if (bundle_cbor_to_json(data, size, &json) == BUNDLE_OK && loose != BUNDLE_OK)
		abort();
	free(json);
	return 0;
}
