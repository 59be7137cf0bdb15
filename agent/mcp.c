/* MCP server core: newline-delimited JSON-RPC 2.0, the initialize handshake, ping, tools/list
 * and tools/call dispatch to a backend. See agent/mcp.h for the exact behaviour. */
#include "agent/mcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mcp_server {
	struct mcp_cfg cfg;
	int initialized;              /* initialize answered */
	int client_ready;             /* notifications/initialized received */
	char version[32];             /* negotiated protocol version */
};

static const char *const versions[] = MCP_PROTOCOL_VERSIONS;

int mcp_server_new(const struct mcp_cfg *cfg, struct mcp_server **ret)
{
	struct mcp_server *s;

	if (!cfg || !ret || !cfg->ops.list_tools || !cfg->ops.call_tool)
		return -1;
	s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	s->cfg = *cfg;
	if (!s->cfg.server_name)
		s->cfg.server_name = "sluice";
	if (!s->cfg.server_version)
		s->cfg.server_version = "0";
	if (s->cfg.max_message == 0)
		s->cfg.max_message = MCP_DEFAULT_MAX_MESSAGE;
	if (s->cfg.max_message > MCP_MAX_MESSAGE_LIMIT)
		s->cfg.max_message = MCP_MAX_MESSAGE_LIMIT;
	*ret = s;
	return 0;
}

void mcp_server_free(struct mcp_server *s)
{
	free(s);
}

const char *mcp_protocol_version(const struct mcp_server *s)
{
	return s && s->initialized ? s->version : NULL;
}

json_t *mcp_reason(const char *reason, const char *detail)
{
	return json_pack("{s:s, s:s}", "reason", reason ? reason : "", "detail", detail ? detail : "");
}

/* Serialise one response and release it. */
static char *dump(json_t *resp)
{
	char *line = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
	json_decref(resp);
	return line;
}

static json_t *id_or_null(json_t *id)
{
	return id ? json_incref(id) : json_null();
}

static char *error_line(json_t *id, int code, const char *message, json_t *data)
{
	json_t *err = json_pack("{s:i, s:s}", "code", code, "message", message);

	if (err && data)
		json_object_set_new(err, "data", data);
	else
		json_decref(data);
	if (!err)
		return NULL;
	return dump(json_pack("{s:s, s:o, s:o}", "jsonrpc", "2.0", "id", id_or_null(id), "error", err));
}

static char *result_line(json_t *id, json_t *result)
{
	if (!result)
		return error_line(id, MCP_INTERNAL_ERROR, "internal error (out of memory)", NULL);
	return dump(json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result));
}

static char *do_initialize(struct mcp_server *s, json_t *id, json_t *params)
{
	const char *want = NULL, *chosen = versions[0];
	json_t *caps, *result;

	if (s->initialized)
		return error_line(id, MCP_INVALID_REQUEST, "already initialized", NULL);
	if (!params || !json_is_string(json_object_get(params, "protocolVersion")))
		return error_line(id, MCP_INVALID_PARAMS, "initialize: protocolVersion (string) is required",
				  NULL);
	if (json_object_get(params, "capabilities") && !json_is_object(json_object_get(params, "capabilities")))
		return error_line(id, MCP_INVALID_PARAMS, "initialize: capabilities must be an object", NULL);
	want = json_string_value(json_object_get(params, "protocolVersion"));
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++)
		if (strcmp(want, versions[i]) == 0)
			chosen = versions[i];
	caps = json_pack("{s:{s:b}}", "tools", "listChanged", 0);
	result = json_pack("{s:s, s:o, s:{s:s, s:s}}", "protocolVersion", chosen, "capabilities", caps,
			   "serverInfo", "name", s->cfg.server_name, "version", s->cfg.server_version);
	if (result && s->cfg.instructions)
		json_object_set_new(result, "instructions", json_string(s->cfg.instructions));
	if (!result)
		return error_line(id, MCP_INTERNAL_ERROR, "internal error (out of memory)", NULL);
	snprintf(s->version, sizeof s->version, "%s", chosen);
	s->initialized = 1;
	return result_line(id, result);
}

static char *do_tools_list(struct mcp_server *s, json_t *id, json_t *params)
{
	json_t *tools;

	if (params && json_object_get(params, "cursor") && !json_is_null(json_object_get(params, "cursor")))
		return error_line(id, MCP_INVALID_PARAMS, "tools/list: unknown cursor (no pagination)", NULL);
	tools = s->cfg.ops.list_tools(s->cfg.ops.ud);
	if (!json_is_array(tools)) {
		json_decref(tools);
		return error_line(id, MCP_INTERNAL_ERROR, "tools/list: backend failed", NULL);
	}
	return result_line(id, json_pack("{s:o}", "tools", tools));
}

static char *do_tools_call(struct mcp_server *s, json_t *id, json_t *params)
{
	json_t *name = params ? json_object_get(params, "name") : NULL;
	json_t *args = params ? json_object_get(params, "arguments") : NULL;
	json_t *result = NULL;
	struct mcp_error err = {0};
	char *line;

	if (!json_is_string(name))
		return error_line(id, MCP_INVALID_PARAMS, "tools/call: name (string) is required", NULL);
	if (args && !json_is_null(args) && !json_is_object(args))
		return error_line(id, MCP_INVALID_PARAMS, "tools/call: arguments must be an object", NULL);
	if (!args || json_is_null(args))
		args = json_object();
	else
		json_incref(args);
	if (!args)
		return error_line(id, MCP_INTERNAL_ERROR, "internal error (out of memory)", NULL);
	if (s->cfg.ops.call_tool(s->cfg.ops.ud, json_string_value(name), args, &result, &err) != 0) {
		if (err.code == 0)
			err.code = MCP_INTERNAL_ERROR;
		line = error_line(id, err.code, err.message[0] ? err.message : "tools/call failed", err.data);
	} else if (!json_is_object(result)) {
		json_decref(result);
		json_decref(err.data);
		line = error_line(id, MCP_INTERNAL_ERROR, "tools/call: backend returned no result", NULL);
	} else {
		json_decref(err.data);
		line = result_line(id, result);
	}
	json_decref(args);
	return line;
}

static int only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

char *mcp_handle(struct mcp_server *s, const char *msg, size_t len)
{
	json_error_t jerr;
	json_t *req = NULL, *id, *method, *params, *ver;
	const char *m;
	char *line = NULL;

	if (!s || !msg || only_space(msg, len))
		return NULL;
	if (len > s->cfg.max_message)
		return error_line(NULL, MCP_INVALID_REQUEST, "message too large", NULL);
	req = json_loadb(msg, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		char text[300];
		snprintf(text, sizeof text, "parse error: %s (column %d)", jerr.text, jerr.column);
		return error_line(NULL, MCP_PARSE_ERROR, text, NULL);
	}
	if (json_is_array(req)) {
		line = error_line(NULL, MCP_INVALID_REQUEST, "batches are not supported", NULL);
		goto out;
	}
	if (!json_is_object(req)) {
		line = error_line(NULL, MCP_INVALID_REQUEST, "a request must be a JSON object", NULL);
		goto out;
	}
	id = json_object_get(req, "id");
	method = json_object_get(req, "method");
	params = json_object_get(req, "params");
	ver = json_object_get(req, "jsonrpc");
	if (id && !json_is_string(id) && !json_is_integer(id)) {
		line = error_line(NULL, MCP_INVALID_REQUEST, "id must be a string or an integer", NULL);
		goto out;
	}
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
		line = id ? error_line(id, MCP_INVALID_REQUEST, "jsonrpc must be \"2.0\"", NULL) : NULL;
		goto out;
	}
	if (!method) {
		/* A response to a request we never send, or garbage: answer only garbage with an id. */
		if (id && !json_object_get(req, "result") && !json_object_get(req, "error"))
			line = error_line(id, MCP_INVALID_REQUEST, "method is required", NULL);
		goto out;
	}
	if (!json_is_string(method)) {
		line = error_line(id, MCP_INVALID_REQUEST, "method must be a string", NULL);
		goto out;
	}
	m = json_string_value(method);
	if (!id) {
		/* Notifications are never answered. Only notifications/initialized changes state;
		 * request methods sent as notifications are not executed (a tool call must be
		 * answered with its receipt). */
		if (strcmp(m, "notifications/initialized") == 0 && s->initialized)
			s->client_ready = 1;
		goto out;
	}
	if (params && !json_is_object(params)) {
		line = error_line(id, MCP_INVALID_PARAMS, "params must be an object", NULL);
		goto out;
	}
	if (strcmp(m, "initialize") == 0)
		line = do_initialize(s, id, params);
	else if (strcmp(m, "ping") == 0)
		line = result_line(id, json_object());
	else if (strcmp(m, "tools/list") == 0 || strcmp(m, "tools/call") == 0) {
		if (!s->initialized)
			line = error_line(id, MCP_NOT_INITIALIZED, "server not initialized", NULL);
		else if (m[6] == 'l')
			line = do_tools_list(s, id, params);
		else
			line = do_tools_call(s, id, params);
	} else {
		char text[200];
		snprintf(text, sizeof text, "method not found: %.120s", m);
		line = error_line(id, MCP_METHOD_NOT_FOUND, text, NULL);
	}
out:
	json_decref(req);
	return line;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int answer(struct mcp_server *s, int out_fd, const char *msg, size_t len)
{
	char *line = mcp_handle(s, msg, len);
	int rc = 0;

	if (line) {
		size_t n = strlen(line);
		rc = write_all(out_fd, line, n);
		if (rc == 0)
			rc = write_all(out_fd, "\n", 1);
		free(line);
	}
	return rc;
}

int mcp_serve(struct mcp_server *s, int in_fd, int out_fd)
{
	size_t cap = s->cfg.max_message + 2, len = 0;
	char *buf = malloc(cap);
	int discarding = 0, rc = -1;

	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		ssize_t r = read(in_fd, buf + len, cap - len);
		size_t start = 0;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (r == 0) {
			/* EOF: a last unterminated message is still served. */
			if (len > 0 && buf[len - 1] == '\r')
				len--;
			if (!discarding && len > 0 && answer(s, out_fd, buf, len) != 0)
				goto out;
			rc = 0;
			goto out;
		}
		len += (size_t)r;
		for (size_t i = 0; i < len; i++) {
			if (buf[i] != '\n')
				continue;
			if (discarding) {
				discarding = 0;
			} else {
				size_t n = i - start;
				if (n > 0 && buf[start + n - 1] == '\r')
					n--;
				if (answer(s, out_fd, buf + start, n) != 0)
					goto out;
			}
			start = i + 1;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
		if (len > s->cfg.max_message) {
			/* An over-long line: answer once, then drop bytes up to its newline. */
			if (!discarding) {
				char *line = error_line(NULL, MCP_INVALID_REQUEST, "message too large", NULL);
				int w = line ? write_all(out_fd, line, strlen(line)) : 0;
				if (w == 0 && line)
					w = write_all(out_fd, "\n", 1);
				free(line);
				if (w != 0)
					goto out;
			}
			discarding = 1;
			len = 0;
		}
	}
out:
	free(buf);
	return rc;
}
