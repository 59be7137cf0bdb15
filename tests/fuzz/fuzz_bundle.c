/* Fuzz target: evidence bundle (tar) reading: names, types, sizes, index. */
#include "bundle/bundle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_archive *a = NULL;
	if (bundle_archive_read(data, size, &a) != BUNDLE_OK)
		return 0;
	for (size_t i = 0; i < bundle_archive_count(a); i++) {
		const char *n = bundle_archive_name(a, i);
		struct bundle_bytes b;
		if (!n || strchr(n, '/') || strstr(n, "..") || bundle_archive_get(a, n, &b) != BUNDLE_OK)
			abort();
	}
	bundle_archive_free(a);
	return 0;
}
