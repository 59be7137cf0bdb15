/* Fuzz target: evidence decoding and re-encoding. */
#include "bundle/bundle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_evidence *ev = NULL, *ev2 = NULL;
	uint8_t *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;

	if (bundle_evidence_decode(data, size, &ev) != BUNDLE_OK)
		return 0;
	/* decode -> encode -> decode -> encode is a fixed point */
	if (bundle_evidence_encode(ev, &a, &al) != BUNDLE_OK || bundle_evidence_decode(a, al, &ev2) != BUNDLE_OK ||
	    bundle_evidence_encode(ev2, &b, &bl) != BUNDLE_OK || al != bl || memcmp(a, b, al))
		abort();
	free(a);
	free(b);
	bundle_evidence_free(ev);
	bundle_evidence_free(ev2);
	return 0;
}
