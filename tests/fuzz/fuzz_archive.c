/* Fuzz target: archive input (tar, cpio, compressed) -> records -> manifest. Whatever the
 * input, measure_archive_mem must return cleanly; when it succeeds, its manifest must decode
 * back to the same root. */
#include "measure/measure.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libarchive's cpio reader allocates the header's name size before it sees the input is too
 * short (a large allocation, not memory corruption; libarchive offers no limit). Skip such
 * headers so libFuzzer's malloc limit does not stop the run on it. */
static int cpio_huge_name(const uint8_t *d, size_t n)
{
	for (size_t at = 0; at + 110 <= n; at++) {
		unsigned long v = 0;
		if (memcmp(d + at, "07070", 5) != 0 || (d[at + 5] != '1' && d[at + 5] != '2'))
			continue;
		for (size_t i = at + 94; i < at + 102; i++) {
			int c = d[i];
			v = v * 16 + (unsigned long)(c >= '0' && c <= '9'   ? c - '0'
						     : c >= 'a' && c <= 'f' ? c - 'a' + 10
						     : c >= 'A' && c <= 'F' ? c - 'A' + 10
									    : 0);
		}
		if (v > (1u << 20))
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct measure_opts o;
	struct measure_manifest *m = NULL, *d = NULL;
	struct measure_error e;
	const uint8_t *enc;
	size_t len;

	if (data && cpio_huge_name(data, size))
		return 0;
	memset(&o, 0, sizeof o);
	o.max_bytes = 64u << 20; /* sparse or compressed bombs: bounded work */
	if (measure_archive_mem(data ? data : (const uint8_t *)"", size, &o, &m, &e) != MEASURE_OK)
		return 0;
	enc = measure_manifest_encoded(m, &len);
	if (measure_manifest_decode(enc, len, &d, &e) != MEASURE_OK ||
	    memcmp(measure_manifest_digest(d), measure_manifest_digest(m), MEASURE_DIGEST_LEN) != 0 ||
	    measure_diff(m, d, NULL, NULL) != 0)
		abort();
	measure_manifest_free(d);
	measure_manifest_free(m);
	return 0;
}
