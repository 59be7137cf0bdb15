/* Registration of call statements with the transparency service (SCRAPI), through the
 * scrapi/ client library. */
#include "agent/tools.h"

#include <stdio.h>

enum tools_err tools_scrapi_register(const struct tools_call_cfg *cfg, const uint8_t *stmt, size_t stmt_len,
				     uint8_t **ret_receipt, size_t *ret_len, char *entry_id, size_t entry_cap,
				     char *detail, size_t detaillen)
{
	(void)cfg;
	(void)stmt;
	(void)stmt_len;
	(void)ret_receipt;
	(void)ret_len;
	(void)entry_id;
	(void)entry_cap;
	snprintf(detail, detaillen, "SCRAPI client not available in this build");
	return TOOLS_ERR_REGISTER;
}
