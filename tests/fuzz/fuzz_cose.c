/* Fuzz target: COSE_Sign1 parsing, the SCITT checks, the record/leaf rule, transparent
 * statements and signature verification (with a fixed key: the parse paths are the target). */
#include "bundle/bundle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct bundle_key *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bundle_cose c;
	struct bundle_bytes rs[BUNDLE_MAX_RECEIPTS];
	uint8_t *rec = NULL, leaf[32];
	size_t rl = 0, n = 0;

	if (!key && bundle_key_generate(BUNDLE_ALG_ES256, &key) != BUNDLE_OK)
		abort();
	if (bundle_cose_parse(data, size, &c) != BUNDLE_OK)
		return 0;
	/* borrowed pointers stay inside the input */
	if (c.signature.ptr < data || c.signature.ptr + c.signature.len > data + size)
		abort();
	bundle_statement_check(data, size, NULL);
	if (bundle_statement_record(data, size, &rec, &rl) == BUNDLE_OK) {
		/* the record parses and is its own record */
		uint8_t *rec2 = NULL;
		size_t rl2 = 0;
		if (bundle_statement_record(rec, rl, &rec2, &rl2) != BUNDLE_OK || rl2 != rl || memcmp(rec, rec2, rl))
			abort();
		free(rec2);
	}
	free(rec);
	bundle_statement_leaf_hash(data, size, leaf);
	bundle_transparent_receipts(data, size, rs, BUNDLE_MAX_RECEIPTS, &n);
	bundle_cose_verify(data, size, key, (const uint8_t *)"x", 1);
	bundle_statement_check_preimage(data, size, data, size);
	return 0;
}
