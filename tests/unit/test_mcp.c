/* MCP protocol layer (agent/mcp.c): framing, JSON-RPC envelopes and errors, negotiation.
 * The backend here is a fixed two-tool table; the gateway backend is tested by the
 * integration tests with real verdicts, TPM and transparency service. */
#include "agent/mcp.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int calls;

static json_t *list_tools(void *ud)
{
	(void)ud;
	return json_pack("[{s:s, s:s, s:{s:s}}]", "name", "echo", "description", "echo", "inputSchema", "type",
			 "object");
}

static int call_tool(void *ud, const char *name, json_t *args, json_t **ret, struct mcp_error *err)
{
	(void)ud;
	calls++;
	if (strcmp(name, "echo") != 0) {
		err->code = MCP_REFUSED;
		snprintf(err->message, sizeof err->message, "refused");
		err->data = mcp_reason("tool.unknown", name);
		return -1;
	}
	*ret = json_pack("{s:[{s:s, s:O}]}", "content", "type", "text", "text", args);
	return 0;
}

static struct mcp_server *server(void)
{
	struct mcp_cfg c = {.server_version = "9", .max_message = 4096,
			    .ops = {.list_tools = list_tools, .call_tool = call_tool}};
	struct mcp_server *s = NULL;
	T_CHECK(mcp_server_new(&c, &s) == 0);
	return s;
}

/* Send one line, parse the answer (NULL if none). */
static json_t *rpc(struct mcp_server *s, const char *line)
{
	char *out = mcp_handle(s, line, strlen(line));
	json_t *j = NULL;
	if (out) {
		T_CHECK(strchr(out, '\n') == NULL);
		j = json_loads(out, 0, NULL);
		T_CHECK(j != NULL);
		free(out);
	}
	return j;
}

static int err_code(json_t *j)
{
	return (int)json_integer_value(json_object_get(json_object_get(j, "error"), "code"));
}

static void init(struct mcp_server *s)
{
	json_t *j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
			   "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
	T_CHECK(j && json_object_get(j, "result"));
	json_decref(j);
	T_CHECK(rpc(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}") == NULL);
}

static void test_initialize_negotiates(void)
{
	struct mcp_server *s = server();
	json_t *j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
			   "\"2025-03-26\",\"capabilities\":{}}}");
	json_t *r = json_object_get(j, "result");
	T_EQ_STR(json_string_value(json_object_get(r, "protocolVersion")), "2025-03-26");
	T_EQ_STR(json_string_value(json_object_get(json_object_get(r, "serverInfo"), "name")), "sluice");
	T_CHECK(json_is_object(json_object_get(json_object_get(r, "capabilities"), "tools")));
	T_EQ_INT(json_integer_value(json_object_get(j, "id")), 1);
	T_EQ_STR(mcp_protocol_version(s), "2025-03-26");
	json_decref(j);
	/* a second initialize is refused */
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-03-26\"}}");
	T_EQ_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	mcp_server_free(s);

	/* unknown version: we offer our newest */
	s = server();
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"1999-01-01\"}}");
	T_EQ_STR(json_string_value(json_object_get(json_object_get(j, "result"), "protocolVersion")), "2025-11-25");
	T_EQ_STR(json_string_value(json_object_get(j, "id")), "a");
	json_decref(j);
	/* missing protocolVersion */
	mcp_server_free(s);
	s = server();
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}}");
	T_EQ_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	mcp_server_free(s);
}

static void test_not_initialized(void)
{
	struct mcp_server *s = server();
	json_t *j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
	T_EQ_INT(err_code(j), MCP_NOT_INITIALIZED);
	json_decref(j);
	calls = 0;
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"}}");
	T_EQ_INT(err_code(j), MCP_NOT_INITIALIZED);
	T_EQ_INT(calls, 0);
	json_decref(j);
	/* ping works before initialize */
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}");
	T_CHECK(json_is_object(json_object_get(j, "result")));
	json_decref(j);
	mcp_server_free(s);
}

static void test_list_and_call(void)
{
	struct mcp_server *s = server();
	json_t *j;
	init(s);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{}}");
	T_EQ_INT(json_array_size(json_object_get(json_object_get(j, "result"), "tools")), 1);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"x\":1}}}");
	T_CHECK(json_is_array(json_object_get(json_object_get(j, "result"), "content")));
	json_decref(j);
	/* arguments absent -> {} */
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"}}");
	T_CHECK(json_object_get(j, "result") != NULL);
	json_decref(j);
	/* backend refusal becomes the JSON-RPC error with its data */
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"nope\"}}");
	T_EQ_INT(err_code(j), MCP_REFUSED);
	T_EQ_STR(json_string_value(json_object_get(json_object_get(json_object_get(j, "error"), "data"), "reason")),
		 "tool.unknown");
	json_decref(j);
	/* bad params */
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":1}}");
	T_EQ_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":[1]}}");
	T_EQ_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/list\",\"params\":{\"cursor\":\"x\"}}");
	T_EQ_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/list\",\"params\":[1]}");
	T_EQ_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	mcp_server_free(s);
}

static void test_jsonrpc_errors(void)
{
	struct mcp_server *s = server();
	json_t *j;
	init(s);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":");
	T_EQ_INT(err_code(j), MCP_PARSE_ERROR);
	T_CHECK(json_is_null(json_object_get(j, "id")));
	json_decref(j);
	j = rpc(s, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]");
	T_EQ_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = rpc(s, "42");
	T_EQ_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}");
	T_EQ_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}");
	T_EQ_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}");
	T_EQ_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}");
	T_EQ_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}");
	T_EQ_INT(err_code(j), MCP_METHOD_NOT_FOUND);
	json_decref(j);
	/* duplicate keys are rejected (a smuggling vector between parsers) */
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}");
	T_EQ_INT(err_code(j), MCP_PARSE_ERROR);
	json_decref(j);
	/* NUL inside a string and invalid UTF-8 */
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\\u0000ing\"}");
	T_EQ_INT(err_code(j), MCP_PARSE_ERROR);
	json_decref(j);
	j = rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}");
	T_EQ_INT(err_code(j), MCP_PARSE_ERROR);
	json_decref(j);
	/* responses and notifications get no answer; a call sent as a notification is not run */
	T_CHECK(rpc(s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}") == NULL);
	calls = 0;
	T_CHECK(rpc(s, "{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"}}") == NULL);
	T_EQ_INT(calls, 0);
	T_CHECK(rpc(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{}}") == NULL);
	T_CHECK(rpc(s, "   ") == NULL);
	mcp_server_free(s);
}

/* The stream loop: CRLF, several messages per read, an over-long line skipped. */
static void test_serve_stream(void)
{
	struct mcp_server *s = server();
	int in[2], out[2];
	char big[6000];
	const char *msgs = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n"
			   "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n";
	char buf[8192];
	ssize_t n;
	size_t got = 0;
	int lines = 0;

	T_CHECK(pipe(in) == 0 && pipe(out) == 0);
	memset(big, 'x', sizeof big);
	T_CHECK(write(in[1], msgs, strlen(msgs)) == (ssize_t)strlen(msgs));
	T_CHECK(write(in[1], big, sizeof big) == (ssize_t)sizeof big);
	T_CHECK(write(in[1], "\n{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", 41) == 41); /* no final newline */
	close(in[1]);
	T_EQ_INT(mcp_serve(s, in[0], out[1]), 0);
	close(out[1]);
	while ((n = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	for (size_t i = 0; i < got; i++)
		lines += buf[i] == '\n';
	T_EQ_INT(lines, 4);
	T_CHECK(strstr(buf, "\"id\":1") && strstr(buf, "\"id\":2") && strstr(buf, "\"id\":3"));
	T_CHECK(strstr(buf, "message too large") != NULL);
	close(in[0]);
	close(out[0]);
	mcp_server_free(s);
}

int main(void)
{
	T_RUN(test_initialize_negotiates);
	T_RUN(test_not_initialized);
	T_RUN(test_list_and_call);
	T_RUN(test_jsonrpc_errors);
	T_RUN(test_serve_stream);
	return t_done();
}
