/* Fuzz target: CBOR request bodies of the verifier API (and the JSON shape check on the same bytes), and the answer encoder on the result. */
#include "verifier/verifier-int.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *j = verifier_cbor_to_json(data, size, err, sizeof err);
	verifier_json_shape_check((const char *)data, size, err, sizeof err);
	if (j) {
		uint8_t *out = NULL;
		size_t len = 0;
		if (verifier_json_to_cbor(j, &out, &len) == 0)
			free(out);
		json_decref(j);
	}
	return 0;
}
