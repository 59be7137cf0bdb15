/* Fuzz target: EAR claims decoding, validation and re-encoding, and signed-verdict parsing. */
#include "bundle/bundle.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bundle_key *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_ear *e = NULL, *e2 = NULL;
	uint8_t h[32] = {0};

	if (!key && bundle_key_generate(BUNDLE_ALG_ES256, &key) != BUNDLE_OK)
		abort();
	if (bundle_ear_decode(data, size, &e) == BUNDLE_OK) {
		uint8_t *c = NULL;
		size_t cl = 0;
		bundle_ear_validate(e, 1700000000, 60, (const uint8_t *)"n", 1, h);
		/* whatever decodes re-encodes, and that decodes again */
		if (bundle_ear_encode(e, &c, &cl) != BUNDLE_OK || bundle_ear_decode(c, cl, &e2) != BUNDLE_OK)
			abort();
		free(c);
		bundle_ear_free(e2);
		bundle_ear_free(e);
	}
	e = NULL;
	if (bundle_ear_verify(data, size, key, NULL, &e) == BUNDLE_OK)
		abort(); /* a fresh key signed nothing */
	return 0;
}
