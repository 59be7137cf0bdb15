/* Fuzz the TCG event log parser, replay, type checks, the sluice event log parser and the
 * PCR values file parser. */
#include "quote/quote.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct quote_eventlog *log = NULL;
	struct quote_slog *slog = NULL;
	struct quote_pcr_values *v = malloc(sizeof *v);
	struct quote_pcr_selection sel;
	struct quote_diag d;

	if (!v)
		return 0;
	quote_pcr_selection_parse("sha1:all+sha256:all+sha384:0-7", &sel);
	if (quote_eventlog_parse(data, size, &log, &d) == QUOTE_OK) {
		for (size_t i = 0; i < quote_eventlog_count(log); i++)
			(void)quote_event_type_name(quote_eventlog_get(log, i)->type);
		quote_pcr_values_init(v, &sel);
		quote_eventlog_replay(log, v, &d);
		quote_eventlog_check_types(log, 0xffffff, &d);
		quote_replay_check(log, NULL, v, &d);
	}
	if (quote_slog_parse(data, size, &slog, &d) == QUOTE_OK) {
		uint8_t *enc = NULL;
		size_t len = 0;
		quote_pcr_values_init(v, &sel);
		quote_slog_replay(slog, v, &d);
		quote_replay_check(log, slog, v, &d);
		if (quote_slog_encode(slog, &enc, &len) == QUOTE_OK)
			free(enc);
	}
	/* the PCR values file (tpm2-tools' serialized or values format) */
	quote_pcrs_file_parse(data, size, &sel, v);
	quote_slog_free(slog);
	quote_eventlog_free(log);
	free(v);
	return 0;
}
