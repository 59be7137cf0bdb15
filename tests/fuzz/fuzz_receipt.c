/* Fuzz target: receipt verification (vds 1 and 2). Input: 2-byte big-endian length of the
 * receipt, the receipt, then the statement. */
#include "bundle/bundle.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bundle_key *key;
static struct bundle_keyset *ks;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t rl;
	struct bundle_receipt_info info;

	if (!key) {
		struct bundle_key *k2 = NULL;
		if (bundle_key_generate(BUNDLE_ALG_ES384, &key) != BUNDLE_OK || bundle_keyset_new(&ks) != BUNDLE_OK ||
		    bundle_key_generate(BUNDLE_ALG_ES256, &k2) != BUNDLE_OK || bundle_keyset_add(ks, k2) != BUNDLE_OK)
			abort();
	}
	if (size < 2)
		return 0;
	rl = (size_t)data[0] << 8 | data[1];
	if (rl > size - 2)
		return 0;
	bundle_receipt_parse(data + 2, rl, &info);
	/* a fresh key cannot have signed anything: success would be a forgery */
	if (bundle_receipt_verify(data + 2, rl, data + 2 + rl, size - 2 - rl, key, NULL, &info) == BUNDLE_OK)
		abort();
	if (bundle_receipt_verify(data + 2, rl, data + 2 + rl, size - 2 - rl, NULL, ks, &info) == BUNDLE_OK)
		abort();
	return 0;
}
