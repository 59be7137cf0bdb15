/* The gateway: the MCP backend of `sluice tools serve`.
 *
 * tools/list: the lock is evaluated (it must verify *now*); locked -> []; otherwise the
 * configured tools the verdict allows (and whose credentials were released).
 * tools/call, in this order, stopping at the first refusal (nothing runs after a refusal):
 *   1. lock                       -32001 locked.*
 *   2. tool configured            -32602 tool.unknown
 *   3. tool allowed by verdict    -32001 tool.not-allowed
 *   4. arguments match schema     -32602 arguments.invalid
 *   5. call statement signed in the TPM, registered, receipt verified
 *                                 -32001 call.sign / call.register / call.receipt
 *   6. journal record written     -32001 call.journal
 *   7. the tool runs; its failure (exit status, timeout, output limit, HTTP status) is a
 *      result with isError: true, still carrying the receipt.
 * Results carry _meta {"sluice/receipt", "sluice/statement" (base64), "sluice/entryId",
 * "sluice/journalSeq"}. */
#include "agent/mcp.h"
#include "agent/tools.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *b64(const uint8_t *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static int64_t wall_now(const struct tools_gate_cfg *g)
{
	return g->lock.now ? g->lock.now : (int64_t)time(NULL);
}

static void say(const struct tools_gate_cfg *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct tools_gate_cfg *g, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	if (!g->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* tool names and schema paths come from the client: one log line stays one line */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	g->log("%s", line);
}

static json_t *tool_json(const struct tools_def *d)
{
	return json_pack("{s:s, s:s, s:O}", "name", d->name, "description", d->description, "inputSchema",
			 d->schema);
}

static json_t *list_tools(void *ud)
{
	struct tools_gate_cfg *g = ud;
	struct tools_unlock u = {0};
	char detail[512] = "";
	enum tools_err e = tools_lock_check(&g->lock, &u, detail, sizeof detail);
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	if (e != TOOLS_OK) {
		say(g, "tools: locked (%s: %s)", tools_reason(e), detail);
		return arr;
	}
	for (size_t i = 0; g->tools && i < g->tools->n; i++) {
		const struct tools_def *d = &g->tools->defs[i];
		if (tools_unlock_allows(&u, d->name))
			json_array_append_new(arr, tool_json(d));
	}
	tools_unlock_clear(&u);
	return arr;
}

static int refuse(struct mcp_error *err, int code, enum tools_err e, const char *detail)
{
	err->code = code;
	snprintf(err->message, sizeof err->message, "%s%s%s", tools_strerror(e), detail && *detail ? ": " : "",
		 detail ? detail : "");
	err->data = mcp_reason(tools_reason(e), detail);
	return -1;
}

static int utf8_valid(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n); /* jansson validates UTF-8 */
	int ok = j != NULL;
	json_decref(j);
	return ok;
}

static int call_tool(void *ud, const char *name, json_t *args, json_t **ret_result, struct mcp_error *err)
{
	struct tools_gate_cfg *g = ud;
	struct tools_unlock u = {0};
	struct tools_call_record rec = {0};
	struct tools_output out = {0};
	const struct tools_def *d;
	char detail[512] = "", vhex[65], ahex[65], seqbuf[32];
	uint8_t ahash[32];
	enum tools_err e;
	char *st64 = NULL, *rc64 = NULL;
	json_t *jr = NULL, *result = NULL, *content = NULL;
	long long seq = 0;
	int rc = -1;
	int64_t when;

	e = tools_lock_check(&g->lock, &u, detail, sizeof detail);
	if (e != TOOLS_OK) {
		say(g, "tools: call %s refused: %s (%s)", name, tools_reason(e), detail);
		refuse(err, MCP_REFUSED, e, detail);
		goto out;
	}
	d = tools_find(g->tools, name);
	if (!d) {
		say(g, "tools: call %s refused: %s", name, tools_reason(TOOLS_ERR_UNKNOWN_TOOL));
		refuse(err, MCP_INVALID_PARAMS, TOOLS_ERR_UNKNOWN_TOOL, name);
		goto out;
	}
	if (!tools_unlock_allows(&u, name)) {
		say(g, "tools: call %s refused: %s", name, tools_reason(TOOLS_ERR_NOT_ALLOWED));
		refuse(err, MCP_REFUSED, TOOLS_ERR_NOT_ALLOWED, name);
		goto out;
	}
	if (tools_schema_validate(d->schema, args, detail, sizeof detail) != 0) {
		say(g, "tools: call %s refused: %s (%s)", name, tools_reason(TOOLS_ERR_SCHEMA), detail);
		refuse(err, MCP_INVALID_PARAMS, TOOLS_ERR_SCHEMA, detail);
		goto out;
	}
	if (tools_args_sha256(args, ahash) != 0) {
		refuse(err, MCP_INTERNAL_ERROR, TOOLS_ERR_NOMEM, NULL);
		goto out;
	}
	when = wall_now(g);
	e = tools_call_register(&g->call, name, ahash, u.verdict_sha256, when, &rec, detail, sizeof detail);
	if (e != TOOLS_OK) {
		say(g, "tools: call %s refused: %s (%s)", name, tools_reason(e), detail);
		refuse(err, MCP_REFUSED, e, detail);
		goto out;
	}
	st64 = b64(rec.statement, rec.statement_len);
	rc64 = b64(rec.receipt, rec.receipt_len);
	if (!st64 || !rc64) {
		refuse(err, MCP_INTERNAL_ERROR, TOOLS_ERR_NOMEM, NULL);
		goto out;
	}
	{
		static const char hexd[] = "0123456789abcdef";
		for (int i = 0; i < 32; i++) {
			vhex[2 * i] = hexd[u.verdict_sha256[i] >> 4];
			vhex[2 * i + 1] = hexd[u.verdict_sha256[i] & 15];
			ahex[2 * i] = hexd[ahash[i] >> 4];
			ahex[2 * i + 1] = hexd[ahash[i] & 15];
		}
		vhex[64] = ahex[64] = '\0';
	}
	/* The journal record is written before the tool runs: no call runs unrecorded. */
	jr = json_pack("{s:s, s:I, s:s, s:O, s:s, s:s, s:s, s:s, s:s}", "type", "call", "time", (json_int_t)when,
		       "tool", name, "arguments", args, "arguments_sha256", ahex, "verdict_sha256", vhex,
		       "entry_id", rec.entry_id, "statement", st64, "receipt", rc64);
	if (!jr || tools_journal_append(g->journal, jr) != 0) {
		snprintf(detail, sizeof detail, "%s: %s", g->journal, jr ? strerror(errno) : "out of memory");
		say(g, "tools: call %s refused: %s (%s)", name, tools_reason(TOOLS_ERR_JOURNAL), detail);
		refuse(err, MCP_REFUSED, TOOLS_ERR_JOURNAL, detail);
		goto out;
	}
	seq = json_integer_value(json_object_get(jr, "seq"));
	json_decref(jr);

	tools_run(d, args, g->lock.cred_dir, &out);

	jr = json_pack("{s:s, s:I, s:I, s:s, s:s, s:i, s:I, s:f, s:I}", "type", "outcome", "time",
		       (json_int_t)wall_now(g), "call", (json_int_t)seq, "tool", name, "result",
		       tools_reason(out.err), "exit_status", out.exit_status, "http_status",
		       (json_int_t)out.http_status, "seconds", out.seconds, "output_bytes", (json_int_t)out.len);
	if (!jr || tools_journal_append(g->journal, jr) != 0)
		say(g, "tools: call %s: could not journal the outcome (%s)", name, strerror(errno));

	if (out.err == TOOLS_OK && !utf8_valid(out.data, out.len)) {
		out.err = TOOLS_ERR_EXEC;
		snprintf(out.detail, sizeof out.detail, "output is not UTF-8 text (%zu bytes)", out.len);
		out.len = 0;
	}
	if (out.err == TOOLS_OK) {
		content = json_pack("[{s:s, s:s%}]", "type", "text", "text", out.data, out.len);
	} else {
		char *text = NULL;
		const char *errtext = out.errtext && utf8_valid(out.errtext, strlen(out.errtext)) ? out.errtext : "";
		const char *body = utf8_valid(out.data, out.len) ? out.data : "";
		if (asprintf(&text, "%s: %s%s%s%s%s", tools_reason(out.err), out.detail, *body ? "\n" : "", body,
			     *errtext ? "\n" : "", errtext) < 0)
			text = NULL;
		content = text ? json_pack("[{s:s, s:s}]", "type", "text", "text", text) : NULL;
		free(text);
	}
	snprintf(seqbuf, sizeof seqbuf, "%lld", seq);
	result = json_pack("{s:o, s:b, s:{s:s, s:s, s:s, s:I}}", "content", content, "isError", out.err != TOOLS_OK,
			   "_meta", "sluice/receipt", rc64, "sluice/statement", st64, "sluice/entryId", rec.entry_id,
			   "sluice/journalSeq", (json_int_t)seq);
	if (!result) {
		refuse(err, MCP_INTERNAL_ERROR, TOOLS_ERR_NOMEM, NULL);
		goto out;
	}
	say(g, "tools: call %s: %s (journal seq %s)", name, out.err == TOOLS_OK ? "ok" : tools_reason(out.err), seqbuf);
	*ret_result = result;
	result = NULL;
	rc = 0;
out:
	json_decref(jr);
	json_decref(result);
	free(st64);
	free(rc64);
	tools_output_clear(&out);
	tools_call_record_clear(&rec);
	tools_unlock_clear(&u);
	return rc;
}

void tools_gate_ops(struct tools_gate_cfg *cfg, struct mcp_ops *ops)
{
	ops->list_tools = list_tools;
	ops->call_tool = call_tool;
	ops->ud = cfg;
}
