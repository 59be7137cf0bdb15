/* Fuzz target: COSE_Key, COSE_KeySet and every key-file format bundle_keyset_load accepts. */
#include "bundle/bundle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_key *k = NULL;
	struct bundle_keyset *ks = NULL;

	if (bundle_key_from_cose(data, size, &k) == BUNDLE_OK) {
		/* encode -> decode -> encode is stable */
		uint8_t *a = NULL, *b = NULL;
		size_t al = 0, bl = 0;
		struct bundle_key *k2 = NULL;
		if (bundle_key_to_cose(k, &a, &al) != BUNDLE_OK || bundle_key_from_cose(a, al, &k2) != BUNDLE_OK ||
		    bundle_key_to_cose(k2, &b, &bl) != BUNDLE_OK || al != bl || memcmp(a, b, al))
			abort();
		free(a);
		free(b);
		bundle_key_free(k2);
		bundle_key_free(k);
	}
	if (bundle_keyset_decode(data, size, &ks) == BUNDLE_OK)
		bundle_keyset_free(ks);
	ks = NULL;
	if (size && bundle_keyset_load(data, size, &ks) == BUNDLE_OK) {
		for (size_t i = 0; i < bundle_keyset_count(ks); i++) {
			struct bundle_bytes kid = bundle_key_kid(bundle_keyset_get(ks, i));
			if (!bundle_keyset_find(ks, kid.ptr, kid.len))
				abort();
		}
		bundle_keyset_free(ks);
	}
	return 0;
}
