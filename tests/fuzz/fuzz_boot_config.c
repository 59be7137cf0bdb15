/* Fuzz the sluice boot configuration parsers: byte 0 chooses the input (even: sluice.conf
 * text, odd: a kernel command line); the rest is the text. A parse that succeeds must leave a
 * configuration whose strings are terminated and whose numbers are in range. */
#include "agent/boot.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct boot_cfg cfg;
	char err[256];
	char *text;

	if (size < 1 || size > BOOT_CONF_MAX + 2)
		return 0;
	boot_cfg_defaults(&cfg);
	if (data[0] & 1) {
		text = malloc(size);
		if (!text)
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = 0;
		if (boot_cfg_parse_cmdline(&cfg, text, err, sizeof err) == 0)
			(void)boot_cfg_check(&cfg, err, sizeof err);
		free(text);
	} else if (boot_cfg_parse_file(&cfg, (const char *)data + 1, size - 1, err, sizeof err) == 0) {
		(void)boot_cfg_check(&cfg, err, sizeof err);
	}
	assert(memchr(cfg.verifier, 0, sizeof cfg.verifier) && memchr(cfg.host_id, 0, sizeof cfg.host_id));
	assert(cfg.pcr <= 23 && cfg.n_excludes <= BOOT_MAX_EXCLUDES);
	assert(strlen(err) < sizeof err);
	return 0;
}
