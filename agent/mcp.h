/* MCP (Model Context Protocol) server core: JSON-RPC 2.0 over a byte stream, one message per
 * line (the MCP stdio transport). Private to agent/.
 *
 * This layer knows the protocol only: framing, JSON-RPC envelopes and errors, the initialize
 * handshake with protocol version negotiation, ping, tools/list and tools/call dispatch. What
 * the tools are and whether a call may run is decided by the backend (struct mcp_ops), which
 * for `sluice tools serve` is the gateway in agent/tools_gate.c.
 *
 * Behaviour (documented for users in docs/tools.md):
 *  - Messages are UTF-8 JSON objects, one per line ("\n", an optional "\r" before it is
 *    dropped). A line longer than cfg->max_message bytes is discarded up to its newline and
 *    answered with -32600 (id null). Malformed JSON: -32700 (id null).
 *  - Batches (JSON arrays) are not supported (MCP 2025-06-18 removed them): -32600.
 *  - Requests carry "id" (string or integer); notifications have no id and are never answered.
 *    Responses sent to us by the client (result/error, no method) are ignored.
 *  - Before a successful "initialize", only "initialize" and "ping" are served; other
 *    requests get -32002 ("server not initialized").
 *  - Protocol version: if the client asks for a version in MCP_PROTOCOL_VERSIONS it is echoed;
 *    otherwise the newest one we speak is offered (the client then decides).
 */
#ifndef SLUICE_AGENT_MCP_H
#define SLUICE_AGENT_MCP_H

#include <jansson.h>
#include <stddef.h>

/* JSON-RPC 2.0 error codes (plus the MCP/sluice server-defined ones). */
enum mcp_code {
	MCP_PARSE_ERROR = -32700,
	MCP_INVALID_REQUEST = -32600,
	MCP_METHOD_NOT_FOUND = -32601,
	MCP_INVALID_PARAMS = -32602,
	MCP_INTERNAL_ERROR = -32603,
	MCP_NOT_INITIALIZED = -32002,
	/* sluice: the gateway refused the call (locked, not allowed, registration failed ...);
	 * error.data = {"reason": "<code>", "detail": "..."}. */
	MCP_REFUSED = -32001,
};

/* Newest first. */
#define MCP_PROTOCOL_VERSIONS {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
#define MCP_DEFAULT_MAX_MESSAGE (1u << 20)
#define MCP_MAX_MESSAGE_LIMIT (64u << 20)

/* An error a backend returns: code, message, optional data (owned, stolen by the server). */
struct mcp_error {
	int code;
	char message[512];
	json_t *data;
};

struct mcp_ops {
	/* tools/list: return a JSON array of tool objects {name, description, inputSchema}
	 * (new reference). NULL is answered with -32603. */
	json_t *(*list_tools)(void *ud);
	/* tools/call: arguments is an object (never NULL: {} when the client sent none).
	 * Return 0 with *ret_result a CallToolResult object (new reference), or -1 with err
	 * filled (the server sends it as the JSON-RPC error). */
	int (*call_tool)(void *ud, const char *name, json_t *arguments, json_t **ret_result,
			 struct mcp_error *err);
	void *ud;
};

struct mcp_cfg {
	const char *server_name;    /* serverInfo.name, default "sluice" */
	const char *server_version; /* serverInfo.version */
	const char *instructions;   /* optional initialize.instructions */
	size_t max_message;         /* bytes per line, default MCP_DEFAULT_MAX_MESSAGE */
	struct mcp_ops ops;
};

struct mcp_server;

/* Returns 0, or -1 (out of memory / invalid cfg). */
int mcp_server_new(const struct mcp_cfg *cfg, struct mcp_server **ret);
void mcp_server_free(struct mcp_server *s);

/* Handle one message (a line without its newline; need not be NUL-terminated). Returns the
 * response line (malloc'd, NUL-terminated, no newline) or NULL when nothing is to be sent. */
char *mcp_handle(struct mcp_server *s, const char *msg, size_t len);

/* The negotiated protocol version, or NULL before initialize. */
const char *mcp_protocol_version(const struct mcp_server *s);

/* Serve newline-delimited messages from in_fd, answers to out_fd, until EOF. Returns 0 on EOF,
 * -1 on a read/write error (errno set). */
int mcp_serve(struct mcp_server *s, int in_fd, int out_fd);

/* Build a JSON-RPC error object for err->data helpers: {"reason": reason, "detail": detail}. */
json_t *mcp_reason(const char *reason, const char *detail);

#endif
