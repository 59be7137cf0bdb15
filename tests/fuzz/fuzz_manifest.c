/* Fuzz target: manifest decoding. A decoded manifest must be self-consistent: every record
 * found again by its path, an inclusion proof of the first and last record verifies, and a
 * manifest differs from itself in nothing. */
#include "measure/measure.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct measure_manifest *m = NULL;
	struct measure_error e;
	size_t n;

	if (measure_manifest_decode(data ? data : (const uint8_t *)"", size, &m, &e) != MEASURE_OK)
		return 0;
	n = measure_manifest_entries(m);
	for (size_t i = 0; i < n; i++) {
		struct measure_record r;
		if (measure_manifest_record(m, i, &r) != 0 || measure_manifest_find(m, r.path, r.path_len) != (long)i)
			abort();
	}
	for (size_t k = 0; k < 2 && n; k++) {
		size_t i = k ? n - 1 : 0, rl = 0;
		struct measure_record r;
		struct measure_proof p;
		const uint8_t *rb = measure_manifest_record_bytes(m, i, &rl);
		measure_manifest_record(m, i, &r);
		if (measure_manifest_prove(m, r.path, r.path_len, &p, &e) != MEASURE_OK ||
		    measure_proof_verify(rb, rl, &p, NULL, &e) != MEASURE_OK)
			abort();
	}
	if (measure_diff(m, m, NULL, NULL) != 0)
		abort();
	measure_manifest_free(m);
	return 0;
}
