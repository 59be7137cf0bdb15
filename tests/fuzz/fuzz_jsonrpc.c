/* Fuzz target: the MCP JSON-RPC reader (agent/mcp.c), and through the backend below the
 * argument schema validator (agent/tools_schema.c). Input: newline-delimited messages, fed
 * line by line to mcp_handle, then as one message, then as a byte stream through mcp_serve. */
#include "agent/mcp.h"
#include "agent/tools.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static json_t *schema;

static json_t *list_tools(void *ud)
{
	(void)ud;
	return json_pack("[{s:s, s:s, s:O}]", "name", "stock_price", "description", "d", "inputSchema", schema);
}

static int call_tool(void *ud, const char *name, json_t *args, json_t **ret, struct mcp_error *err)
{
	char why[256];
	(void)ud;
	if (strcmp(name, "stock_price") != 0 || tools_schema_validate(schema, args, why, sizeof why) != 0) {
		err->code = MCP_INVALID_PARAMS;
		snprintf(err->message, sizeof err->message, "%s", why);
		err->data = mcp_reason("arguments.invalid", why);
		return -1;
	}
	*ret = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", "42.00", "isError", 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mcp_cfg cfg = {.max_message = 65536, .ops = {.list_tools = list_tools, .call_tool = call_tool}};
	struct mcp_server *s = NULL;
	size_t start = 0;

	if (!schema) {
		schema = json_loads("{\"type\":\"object\",\"properties\":{\"symbol\":{\"type\":\"string\",\"pattern\":"
				    "\"^[A-Z]{1,5}$\",\"maxLength\":5},\"days\":{\"type\":\"integer\",\"minimum\":1},"
				    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]}}},\"required\":"
				    "[\"symbol\"],\"additionalProperties\":false}",
				    0, NULL);
		if (!schema)
			abort();
	}
	if (mcp_server_new(&cfg, &s) != 0)
		return 0;
	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == '\n') {
			char *out = mcp_handle(s, (const char *)data + start, i - start);
			if (out && strchr(out, '\n'))
				abort(); /* a response must be one line */
			free(out);
			start = i + 1;
		}
	}
	free(mcp_handle(s, (const char *)data, size));
	mcp_server_free(s);

	/* The stream framing of mcp_serve (partial reads, CRLF, over-long lines skipped up to
	 * their newline) with a small limit, input from a memfd, answers to /dev/null. */
	cfg.max_message = 1024;
	if (mcp_server_new(&cfg, &s) == 0) {
		int in = memfd_create("fuzz_jsonrpc", MFD_CLOEXEC), out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (in >= 0 && out >= 0 && write(in, data, size) == (ssize_t)size && lseek(in, 0, SEEK_SET) == 0)
			mcp_serve(s, in, out);
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		mcp_server_free(s);
	}
	return 0;
}
