/* Tool definitions: one JSON file per tool in a configuration directory. Strict parsing (an
 * unknown key is an error, so a typo cannot silently drop a limit), placeholders checked
 * against the input schema, and the reason codes of the gateway. */
#include "agent/tools.h"
#include "agent/agent.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tools_strerror(enum tools_err e)
{
	switch (e) {
	case TOOLS_OK: return "success";
	case TOOLS_ERR_NOMEM: return "out of memory";
	case TOOLS_ERR_CONFIG: return "invalid tool definition";
	case TOOLS_ERR_UNKNOWN_TOOL: return "no such tool";
	case TOOLS_ERR_NOT_ALLOWED: return "the verdict does not allow this tool";
	case TOOLS_ERR_SCHEMA: return "arguments do not match the tool's input schema";
	case TOOLS_ERR_NO_VERDICT: return "locked: no verdict";
	case TOOLS_ERR_VERDICT_INVALID: return "locked: verdict is malformed";
	case TOOLS_ERR_VERDICT_SIGNATURE: return "locked: verdict signature does not verify with the pinned verifier key";
	case TOOLS_ERR_VERDICT_RECEIPT: return "locked: verdict receipt missing or not valid under the pinned transparency service key";
	case TOOLS_ERR_VERDICT_HOST: return "locked: verdict is for another host";
	case TOOLS_ERR_VERDICT_EXPIRED: return "locked: verdict expired";
	case TOOLS_ERR_VERDICT_STATUS: return "locked: verdict is not affirming";
	case TOOLS_ERR_NO_CREDENTIAL: return "locked: released tool credentials missing";
	case TOOLS_ERR_SIGN: return "could not sign the call statement with the TPM statement key";
	case TOOLS_ERR_REGISTER: return "could not register the call with the transparency service";
	case TOOLS_ERR_RECEIPT: return "the call's receipt does not verify";
	case TOOLS_ERR_JOURNAL: return "could not write the local journal";
	case TOOLS_ERR_EXEC: return "the tool failed";
	case TOOLS_ERR_TIMEOUT: return "the tool was killed at its timeout";
	case TOOLS_ERR_OUTPUT_LIMIT: return "the tool's output exceeded its limit";
	case TOOLS_ERR_HTTP: return "the tool's HTTP request failed";
	case TOOLS_ERR_NOT_CONFIGURED: return "the gateway is not configured for this";
	}
	return "unknown error";
}

const char *tools_reason(enum tools_err e)
{
	switch (e) {
	case TOOLS_OK: return "ok";
	case TOOLS_ERR_NOMEM: return "internal";
	case TOOLS_ERR_CONFIG: return "config";
	case TOOLS_ERR_UNKNOWN_TOOL: return "tool.unknown";
	case TOOLS_ERR_NOT_ALLOWED: return "tool.not-allowed";
	case TOOLS_ERR_SCHEMA: return "arguments.invalid";
	case TOOLS_ERR_NO_VERDICT: return "locked.no-verdict";
	case TOOLS_ERR_VERDICT_INVALID: return "locked.verdict-invalid";
	case TOOLS_ERR_VERDICT_SIGNATURE: return "locked.bad-signature";
	case TOOLS_ERR_VERDICT_RECEIPT: return "locked.bad-receipt";
	case TOOLS_ERR_VERDICT_HOST: return "locked.wrong-host";
	case TOOLS_ERR_VERDICT_EXPIRED: return "locked.expired";
	case TOOLS_ERR_VERDICT_STATUS: return "locked.not-affirming";
	case TOOLS_ERR_NO_CREDENTIAL: return "locked.no-credential";
	case TOOLS_ERR_SIGN: return "call.sign";
	case TOOLS_ERR_REGISTER: return "call.register";
	case TOOLS_ERR_RECEIPT: return "call.receipt";
	case TOOLS_ERR_JOURNAL: return "call.journal";
	case TOOLS_ERR_EXEC: return "tool.failed";
	case TOOLS_ERR_TIMEOUT: return "tool.timeout";
	case TOOLS_ERR_OUTPUT_LIMIT: return "tool.output-limit";
	case TOOLS_ERR_HTTP: return "tool.http";
	case TOOLS_ERR_NOT_CONFIGURED: return "not-configured";
	}
	return "unknown";
}

static enum tools_err bad(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum tools_err bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why && whylen)
		vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return TOOLS_ERR_CONFIG;
}

static int valid_name(const char *s, size_t max, int allow_dot_first)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || (!allow_dot_first && s[0] == '.'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* Length of the placeholder identifier at p (just after '{'), 0 if p does not start one. */
static size_t placeholder(const char *p)
{
	size_t n = 0;
	while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= '0' && p[n] <= '9') ||
	       p[n] == '_' || p[n] == '-')
		n++;
	return n > 0 && p[n] == '}' ? n : 0;
}

/* Every placeholder must be a schema property (or "credential" where allowed). */
static int check_placeholders(const char *tmpl, const json_t *props, int allow_cred, char *bad_name,
			      size_t bad_len)
{
	for (const char *p = tmpl; *p; p++) {
		size_t n;
		char key[128];
		if (*p != '{' || (n = placeholder(p + 1)) == 0)
			continue;
		snprintf(key, sizeof key, "%.*s", (int)(n < 127 ? n : 127), p + 1);
		if (allow_cred && strcmp(key, "credential") == 0)
			continue;
		if (!json_object_get(props, key)) {
			snprintf(bad_name, bad_len, "%s", key);
			return -1;
		}
		p += n + 1;
	}
	return 0;
}

struct strbuf {
	char *p;
	size_t len, cap;
};

#define TOOLS_MAX_EXPANDED (64u << 10)

static int sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > TOOLS_MAX_EXPANDED)
		return -1;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void sb_wipe_free(struct strbuf *b)
{
	if (b->p) {
		memset(b->p, 0, b->cap);
		free(b->p);
	}
}

char *tools_expand(const char *tmpl, const json_t *args, const char *cred, int url_encode)
{
	struct strbuf b = {0};
	const char *p = tmpl;

	if (sb_add(&b, "", 0) != 0)
		return NULL;
	while (*p) {
		size_t n = p[0] == '{' ? placeholder(p + 1) : 0;
		char key[128], num[64];
		const char *val = NULL;
		json_t *v;
		char *esc = NULL;
		int rc;

		if (n == 0) {
			if (sb_add(&b, p, 1) != 0)
				goto fail;
			p++;
			continue;
		}
		snprintf(key, sizeof key, "%.*s", (int)(n < 127 ? n : 127), p + 1);
		p += n + 2;
		if (cred && strcmp(key, "credential") == 0) {
			val = cred;
		} else if ((v = json_object_get(args, key)) != NULL) {
			if (json_is_string(v))
				val = json_string_value(v);
			else if (json_is_integer(v))
				snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v)), val = num;
			else if (json_is_real(v))
				snprintf(num, sizeof num, "%.17g", json_real_value(v)), val = num;
			else if (json_is_true(v))
				val = "true";
			else if (json_is_false(v))
				val = "false";
			else
				val = "";
		} else {
			val = "";
		}
		if (url_encode && *val) {
			esc = curl_easy_escape(NULL, val, (int)strlen(val));
			if (!esc)
				goto fail;
			val = esc;
		}
		rc = sb_add(&b, val, strlen(val));
		if (esc) {
			memset(esc, 0, strlen(esc));
			curl_free(esc);
		}
		if (rc != 0)
			goto fail;
	}
	return b.p;
fail:
	sb_wipe_free(&b);
	return NULL;
}

static char **string_array(const json_t *arr, size_t *ret_n)
{
	size_t n = json_array_size(arr);
	char **v = calloc(n + 1, sizeof *v);
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(json_string_value(json_array_get(arr, i)));
		if (!v[i]) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return NULL;
		}
	}
	*ret_n = n;
	return v;
}

static int all_strings(const json_t *arr, size_t min, size_t max)
{
	size_t i;
	json_t *v;
	if (!json_is_array(arr) || json_array_size(arr) < min || json_array_size(arr) > max)
		return 0;
	json_array_foreach(arr, i, v) if (!json_is_string(v) || strlen(json_string_value(v)) > 8192) return 0;
	return 1;
}

static int only_keys(const json_t *obj, const char *const *allowed, char *badkey, size_t badlen)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		int found = 0;
		(void)v;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0)
				found = 1;
		if (!found) {
			snprintf(badlen ? badkey : NULL, badlen, "%s", k);
			return -1;
		}
	}
	return 0;
}

static int header_ok(const char *h)
{
	const char *colon = strchr(h, ':');
	if (!colon || colon == h || strpbrk(h, "\r\n"))
		return 0;
	for (const char *p = h; p < colon; p++)
		if (*p == ' ' || *p == '\t')
			return 0;
	return 1;
}

enum tools_err tools_def_parse(const json_t *j, struct tools_def *def, char *why, size_t whylen)
{
	static const char *const top[] = {"name", "description", "inputSchema", "command", "http",
					  "credential", "timeoutMs", "maxOutputBytes", NULL};
	static const char *const cmd_keys[] = {"argv", "stdin", NULL};
	static const char *const http_keys[] = {"method", "url", "headers", "credentialHeader", NULL};
	json_t *name, *desc, *schema, *cmd, *http, *cred, *tmo, *maxo, *props;
	char badkey[128] = "", sw[256];
	enum tools_err rc = TOOLS_ERR_CONFIG;

	memset(def, 0, sizeof *def);
	if (!json_is_object(j))
		return bad(why, whylen, "a tool definition must be a JSON object");
	if (only_keys(j, top, badkey, sizeof badkey) != 0)
		return bad(why, whylen, "unknown key \"%s\"", badkey);
	name = json_object_get(j, "name");
	desc = json_object_get(j, "description");
	schema = json_object_get(j, "inputSchema");
	cmd = json_object_get(j, "command");
	http = json_object_get(j, "http");
	cred = json_object_get(j, "credential");
	tmo = json_object_get(j, "timeoutMs");
	maxo = json_object_get(j, "maxOutputBytes");
	if (!json_is_string(name) || !valid_name(json_string_value(name), 128, 1))
		return bad(why, whylen, "name must be 1-128 characters of A-Z a-z 0-9 _ - .");
	if (!json_is_string(desc))
		return bad(why, whylen, "description (string) is required");
	if (!json_is_object(schema))
		return bad(why, whylen, "inputSchema (object) is required");
	if (tools_schema_check(schema, sw, sizeof sw) != 0)
		return bad(why, whylen, "inputSchema: %s", sw);
	if (!json_is_string(json_object_get(schema, "type")) ||
	    strcmp(json_string_value(json_object_get(schema, "type")), "object") != 0)
		return bad(why, whylen, "inputSchema must have \"type\": \"object\"");
	props = json_object_get(schema, "properties");
	if (!!cmd == !!http)
		return bad(why, whylen, "exactly one of \"command\" and \"http\" is required");
	if (cred && (!json_is_string(cred) || !valid_name(json_string_value(cred), 255, 0)))
		return bad(why, whylen, "credential must be a file name (A-Z a-z 0-9 _ - ., not starting with .)");
	if (tmo && (!json_is_integer(tmo) || json_integer_value(tmo) < 1 ||
		    json_integer_value(tmo) > TOOLS_MAX_TIMEOUT_MS))
		return bad(why, whylen, "timeoutMs must be an integer in 1..%u", TOOLS_MAX_TIMEOUT_MS);
	if (maxo && (!json_is_integer(maxo) || json_integer_value(maxo) < 1 ||
		     json_integer_value(maxo) > (json_int_t)TOOLS_MAX_OUTPUT_LIMIT))
		return bad(why, whylen, "maxOutputBytes must be an integer in 1..%u", TOOLS_MAX_OUTPUT_LIMIT);

	if (cmd) {
		json_t *argv = json_object_get(cmd, "argv"), *in = json_object_get(cmd, "stdin");
		size_t i;
		json_t *v;
		if (!json_is_object(cmd))
			return bad(why, whylen, "command must be an object");
		if (only_keys(cmd, cmd_keys, badkey, sizeof badkey) != 0)
			return bad(why, whylen, "command: unknown key \"%s\"", badkey);
		if (!all_strings(argv, 1, 256))
			return bad(why, whylen, "command.argv must be an array of 1-256 strings");
		if (json_string_value(json_array_get(argv, 0))[0] != '/' ||
		    strchr(json_string_value(json_array_get(argv, 0)), '{'))
			return bad(why, whylen, "command.argv[0] must be an absolute path without placeholders");
		json_array_foreach(argv, i, v) if (check_placeholders(json_string_value(v), props, 0, badkey,
								      sizeof badkey) != 0) return bad(why, whylen, "command.argv[%zu]: placeholder {%s} is not a property of inputSchema", i, badkey);
		if (in && (!json_is_string(in) || (strcmp(json_string_value(in), "json") != 0 &&
						    strcmp(json_string_value(in), "none") != 0)))
			return bad(why, whylen, "command.stdin must be \"json\" or \"none\"");
	} else {
		json_t *method = json_object_get(http, "method"), *url = json_object_get(http, "url");
		json_t *hdrs = json_object_get(http, "headers"), *ch = json_object_get(http, "credentialHeader");
		const char *u;
		size_t i;
		json_t *v;
		if (!json_is_object(http))
			return bad(why, whylen, "http must be an object");
		if (only_keys(http, http_keys, badkey, sizeof badkey) != 0)
			return bad(why, whylen, "http: unknown key \"%s\"", badkey);
		if (method && (!json_is_string(method) || (strcmp(json_string_value(method), "GET") != 0 &&
							   strcmp(json_string_value(method), "POST") != 0)))
			return bad(why, whylen, "http.method must be \"GET\" or \"POST\"");
		if (!json_is_string(url))
			return bad(why, whylen, "http.url (string) is required");
		u = json_string_value(url);
		if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
			return bad(why, whylen, "http.url must start with http:// or https://");
		{
			/* placeholders only after the authority, so arguments cannot choose the host */
			const char *path = strchr(u + (u[4] == 's' ? 8 : 7), '/');
			const char *brace = strchr(u, '{');
			if (brace && (!path || brace < path))
				return bad(why, whylen, "http.url: placeholders are not allowed in the scheme or host");
		}
		if (check_placeholders(u, props, 0, badkey, sizeof badkey) != 0)
			return bad(why, whylen, "http.url: placeholder {%s} is not a property of inputSchema", badkey);
		if (hdrs && !all_strings(hdrs, 0, 64))
			return bad(why, whylen, "http.headers must be an array of at most 64 strings");
		json_array_foreach(hdrs, i, v) {
			if (!header_ok(json_string_value(v)))
				return bad(why, whylen, "http.headers[%zu] must be \"Name: value\"", i);
			if (check_placeholders(json_string_value(v), props, 0, badkey, sizeof badkey) != 0)
				return bad(why, whylen, "http.headers[%zu]: placeholder {%s} is not a property of inputSchema", i, badkey);
		}
		if (ch) {
			if (!json_is_string(ch) || !header_ok(json_string_value(ch)) ||
			    !strstr(json_string_value(ch), "{credential}"))
				return bad(why, whylen, "http.credentialHeader must be \"Name: ...{credential}...\"");
			if (!cred)
				return bad(why, whylen, "http.credentialHeader needs \"credential\"");
			if (check_placeholders(json_string_value(ch), props, 1, badkey, sizeof badkey) != 0)
				return bad(why, whylen, "http.credentialHeader: placeholder {%s} is not a property of inputSchema", badkey);
		}
	}

	rc = TOOLS_ERR_NOMEM;
	def->name = strdup(json_string_value(name));
	def->description = strdup(json_string_value(desc));
	def->schema = json_deep_copy(schema);
	def->credential = cred ? strdup(json_string_value(cred)) : NULL;
	def->timeout_ms = tmo ? (unsigned)json_integer_value(tmo) : TOOLS_DEFAULT_TIMEOUT_MS;
	def->max_output = maxo ? (size_t)json_integer_value(maxo) : TOOLS_DEFAULT_MAX_OUTPUT;
	if (!def->name || !def->description || !def->schema || (cred && !def->credential))
		goto fail;
	if (cmd) {
		json_t *in = json_object_get(cmd, "stdin");
		def->kind = TOOLS_KIND_COMMAND;
		def->argv = string_array(json_object_get(cmd, "argv"), &def->argc);
		def->stdin_json = !in || strcmp(json_string_value(in), "json") == 0;
		if (!def->argv)
			goto fail;
	} else {
		json_t *method = json_object_get(http, "method"), *hdrs = json_object_get(http, "headers");
		json_t *ch = json_object_get(http, "credentialHeader");
		def->kind = TOOLS_KIND_HTTP;
		def->method = strdup(method ? json_string_value(method) : "GET");
		def->url = strdup(json_string_value(json_object_get(http, "url")));
		def->headers = hdrs ? string_array(hdrs, &def->n_headers) : calloc(1, sizeof(char *));
		if (ch)
			def->credential_header = strdup(json_string_value(ch));
		else if (cred)
			def->credential_header = strdup("Authorization: Bearer {credential}");
		if (!def->method || !def->url || !def->headers || (cred && !def->credential_header))
			goto fail;
	}
	return TOOLS_OK;
fail:
	tools_def_clear(def);
	if (why && whylen)
		snprintf(why, whylen, "out of memory");
	return rc;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

void tools_def_clear(struct tools_def *def)
{
	if (!def)
		return;
	free(def->name);
	free(def->description);
	json_decref(def->schema);
	free_strv(def->argv);
	free(def->method);
	free(def->url);
	free_strv(def->headers);
	free(def->credential);
	free(def->credential_header);
	free(def->path);
	memset(def, 0, sizeof *def);
}

void tools_set_free(struct tools_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		tools_def_clear(&set->defs[i]);
	free(set->defs);
	free(set);
}

const struct tools_def *tools_find(const struct tools_set *set, const char *name)
{
	if (!set || !name)
		return NULL;
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->defs[i].name, name) == 0)
			return &set->defs[i];
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum tools_err tools_load_dir(const char *dir, struct tools_set **ret, char *why, size_t whylen)
{
	struct tools_set *set = calloc(1, sizeof *set);
	char **names = NULL;
	size_t n = 0;
	DIR *d = NULL;
	struct dirent *e;
	enum tools_err rc = TOOLS_ERR_NOMEM;

	if (!set)
		goto out;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			*ret = set;
			set = NULL;
			rc = TOOLS_OK;
		} else {
			rc = bad(why, whylen, "%s: %s", dir, strerror(errno));
		}
		goto out;
	}
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		char **nn;
		if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
			continue;
		if (n >= TOOLS_MAX_TOOLS) {
			rc = bad(why, whylen, "%s: more than %u tool definitions", dir, TOOLS_MAX_TOOLS);
			goto out;
		}
		nn = realloc(names, (n + 1) * sizeof *names);
		if (!nn)
			goto out;
		names = nn;
		if (!(names[n] = strdup(e->d_name)))
			goto out;
		n++;
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	set->defs = calloc(n ? n : 1, sizeof *set->defs);
	if (!set->defs)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char path[4096], w[512] = "";
		json_error_t jerr;
		json_t *j;
		uint8_t *raw = NULL;
		size_t rawlen = 0;
		enum tools_err r;

		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (agent_read_file(path, TOOLS_MAX_DEF_FILE, &raw, &rawlen) != 0) {
			rc = bad(why, whylen, "%s: %s", path,
				 errno == EFBIG ? "file too large" : strerror(errno));
			goto out;
		}
		j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr);
		free(raw);
		if (!j) {
			rc = bad(why, whylen, "%s: line %d: %s", path, jerr.line, jerr.text);
			goto out;
		}
		r = tools_def_parse(j, &set->defs[set->n], w, sizeof w);
		json_decref(j);
		if (r != TOOLS_OK) {
			rc = r;
			if (why && whylen)
				snprintf(why, whylen, "%s: %s", path, w);
			goto out;
		}
		set->n++;
		if (tools_find(set, set->defs[set->n - 1].name) != &set->defs[set->n - 1]) {
			rc = bad(why, whylen, "%s: tool \"%s\" is defined twice", path, set->defs[set->n - 1].name);
			goto out;
		}
		set->defs[set->n - 1].path = strdup(path);
	}
	*ret = set;
	set = NULL;
	rc = TOOLS_OK;
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	tools_set_free(set);
	return rc;
}
