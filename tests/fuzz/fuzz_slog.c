/* Fuzz the sluice event log parser (quote_slog_parse): any input must be refused cleanly or
 * parse into a log whose deterministic re-encoding is exactly the input (the parser accepts
 * canonical CBOR only), and replay over an accepted log must not crash. */
#include "quote/quote.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct quote_slog *log = NULL;
	struct quote_diag d;

	if (quote_slog_parse(data, size, &log, &d) == QUOTE_OK) {
		struct quote_pcr_values *v = malloc(sizeof *v);
		struct quote_pcr_selection sel;
		uint8_t *enc = NULL;
		size_t len = 0;
		if (quote_slog_encode(log, &enc, &len) != QUOTE_OK)
			abort();
		/* an empty input is the empty log, which encodes as an empty array */
		if (size == 0 ? (len != 1 || enc[0] != 0x80) : (len != size || memcmp(enc, data, size) != 0))
			abort();
		free(enc);
		if (v && quote_pcr_selection_parse("sha1:all+sha256:all+sha384:all", &sel) == QUOTE_OK) {
			quote_pcr_values_init(v, &sel);
			(void)quote_slog_replay(log, v, &d);
		}
		free(v);
	}
	quote_slog_free(log);
	return 0;
}
