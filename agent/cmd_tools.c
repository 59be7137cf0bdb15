/* sluice tools: the LLM tool gateway.
 *   sluice tools serve    MCP server on stdin/stdout (an LLM runtime launches it)
 *   sluice tools status   print the lock state and the tools that would be listed
 *   sluice tools audit    list the journaled calls, verifying each receipt
 * docs/tools.md is the user-facing description. */
#include "agent/agent.h"
#include "agent/boot.h"
#include "agent/mcp.h"
#include "agent/tools.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TOOLS_DIR "/etc/sluice/tools.d"
#define DEFAULT_JOURNAL "/var/lib/sluice/tools.journal"

struct opts {
	struct boot_cfg conf; /* verifier_key, ts, ts_key, host_id, tcti, out_dir, cred_dir */
	const char *tools_dir;
	const char *journal;
	size_t max_message;
	double budget;
	int json;
	char host[256];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice tools serve  [OPTIONS]\n"
		"       sluice tools status [OPTIONS]\n"
		"       sluice tools audit  [--journal FILE] [--ts-key FILE] [--json]\n\n"
		"The LLM tool gateway. `serve` is an MCP server (JSON-RPC 2.0, one message per line on\n"
		"stdin/stdout; logs on stderr). It is locked -- no tools listed, every call refused with\n"
		"the reason -- unless RUN_DIR holds a verdict that verifies now (pinned verifier key,\n"
		"receipt under the pinned transparency service key, this host, not expired, affirming)\n"
		"and the released tool credentials exist. Each call is checked against the verdict's\n"
		"allowed tools and the tool's input schema, registered with the transparency service as\n"
		"a statement signed by the TPM statement key (receipt verified before the tool runs),\n"
		"journaled, run, and answered with the receipt in _meta.\n\n"
		"options (defaults from --config, then these built-ins):\n"
		"  --config FILE        sluice.conf to read settings from (default %s, if present)\n"
		"  --tools-dir DIR      tool definitions, one JSON file per tool (default %s)\n"
		"  --run-dir DIR        verdict.cose, verdict-statement.cose, verdict-receipt.cose\n"
		"                       (default /run/sluice)\n"
		"  --cred-dir DIR       released credentials (default /run/credentials/@initrd)\n"
		"  --verifier-key FILE  pinned verifier public key (default /etc/sluice/keys/verifier.pem)\n"
		"  --ts-key FILE        pinned transparency service key (default /etc/sluice/keys/ts.pem)\n"
		"  --ts URL             transparency service (SCRAPI) for the call statements\n"
		"  --host-id ID         this host's id as enrolled (default: the host name)\n"
		"  --tcti TCTI          TPM holding the statement key (default device:/dev/tpmrm0)\n"
		"  --journal FILE       append-only call journal (default %s)\n"
		"  --max-message BYTES  largest JSON-RPC message accepted (default %u)\n"
		"  --budget SECONDS     time allowed to register one call (default 10)\n"
		"  --json               audit/status: print JSON\n\n"
		"exit status: serve 0 at end of input; status 0 if unlocked, 1 if locked; audit 0 if every\n"
		"receipt verifies and the journal chain is intact, 1 otherwise; 2 usage error.\n",
		BOOT_CONF_PATH, DEFAULT_TOOLS_DIR, DEFAULT_JOURNAL, MCP_DEFAULT_MAX_MESSAGE);
}

enum {
	O_CONFIG = 256,
	O_TOOLS_DIR,
	O_RUN_DIR,
	O_CRED_DIR,
	O_VERIFIER_KEY,
	O_TS_KEY,
	O_TS,
	O_HOST_ID,
	O_TCTI,
	O_JOURNAL,
	O_MAX_MESSAGE,
	O_BUDGET,
	O_JSON,
};

static int set(char *dst, const char *v)
{
	if (strlen(v) >= BOOT_VAL_MAX) {
		agent_log("tools: value too long: %.40s...", v);
		return -1;
	}
	snprintf(dst, BOOT_VAL_MAX, "%s", v);
	return 0;
}

static int load_conf(struct opts *o, const char *path, int explicit_path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256];
	int rc;

	if (agent_read_file(path, BOOT_CONF_MAX, &buf, &len) != 0) {
		if (errno == ENOENT && !explicit_path)
			return 0;
		agent_log("tools: failed to read %s: %s", path, strerror(errno));
		return -1;
	}
	rc = boot_cfg_parse_file(&o->conf, (const char *)buf, len, err, sizeof err);
	free(buf);
	if (rc != 0)
		agent_log("tools: failed to parse %s: %s", path, err);
	return rc;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"config", required_argument, 0, O_CONFIG},
		{"tools-dir", required_argument, 0, O_TOOLS_DIR},
		{"run-dir", required_argument, 0, O_RUN_DIR},
		{"cred-dir", required_argument, 0, O_CRED_DIR},
		{"verifier-key", required_argument, 0, O_VERIFIER_KEY},
		{"ts-key", required_argument, 0, O_TS_KEY},
		{"ts", required_argument, 0, O_TS},
		{"host-id", required_argument, 0, O_HOST_ID},
		{"tcti", required_argument, 0, O_TCTI},
		{"journal", required_argument, 0, O_JOURNAL},
		{"max-message", required_argument, 0, O_MAX_MESSAGE},
		{"budget", required_argument, 0, O_BUDGET},
		{"json", no_argument, 0, O_JSON},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *conf = BOOT_CONF_PATH;
	int c, explicit_conf = 0;

	boot_cfg_defaults(&o->conf);
	o->tools_dir = DEFAULT_TOOLS_DIR;
	o->journal = DEFAULT_JOURNAL;
	o->budget = 10;
	/* First pass: only --config, so the file's values can be overridden by the rest. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		if (c == O_CONFIG) {
			conf = optarg;
			explicit_conf = 1;
		}
	if (load_conf(o, conf, explicit_conf) != 0)
		return 2;
	opterr = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		char *end = NULL;
		int r = 0;
		switch (c) {
		case 'h':
			usage(stdout);
			exit(0);
		case O_CONFIG:
			break;
		case O_TOOLS_DIR:
			o->tools_dir = optarg;
			break;
		case O_RUN_DIR:
			r = set(o->conf.out_dir, optarg);
			break;
		case O_CRED_DIR:
			r = set(o->conf.cred_dir, optarg);
			break;
		case O_VERIFIER_KEY:
			r = set(o->conf.verifier_key, optarg);
			break;
		case O_TS_KEY:
			r = set(o->conf.ts_key, optarg);
			break;
		case O_TS:
			r = set(o->conf.ts, optarg);
			break;
		case O_HOST_ID:
			r = set(o->conf.host_id, optarg);
			break;
		case O_TCTI:
			r = set(o->conf.tcti, optarg);
			break;
		case O_JOURNAL:
			o->journal = optarg;
			break;
		case O_MAX_MESSAGE:
			errno = 0;
			o->max_message = strtoul(optarg, &end, 10);
			if (errno || !end || *end || o->max_message < 1024 || o->max_message > MCP_MAX_MESSAGE_LIMIT) {
				agent_log("tools: --max-message must be 1024..%u", MCP_MAX_MESSAGE_LIMIT);
				r = -1;
			}
			break;
		case O_BUDGET:
			o->budget = strtod(optarg, &end);
			if (!end || *end || !(o->budget > 0 && o->budget <= 600)) {
				agent_log("tools: --budget must be in (0, 600] seconds");
				r = -1;
			}
			break;
		case O_JSON:
			o->json = 1;
			break;
		default:
			usage(stderr);
			return 2;
		}
		if (r != 0)
			return 2;
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!o->conf.host_id[0] && gethostname(o->host, sizeof o->host - 1) == 0)
		snprintf(o->conf.host_id, sizeof o->conf.host_id, "%s", o->host);
	return 0;
}

static void gate_cfg(struct opts *o, const struct tools_set *set, struct tools_gate_cfg *g)
{
	memset(g, 0, sizeof *g);
	g->lock.run_dir = o->conf.out_dir;
	g->lock.cred_dir = o->conf.cred_dir;
	g->lock.verifier_key = o->conf.verifier_key;
	g->lock.ts_key = o->conf.ts_key;
	g->lock.host_id = o->conf.host_id;
	g->lock.tools = set;
	g->call.tcti = o->conf.tcti;
	g->call.ts_url = o->conf.ts;
	g->call.ts_key = o->conf.ts_key;
	g->call.host_id = o->conf.host_id;
	g->call.budget = o->budget;
	g->call.insecure_http = o->conf.insecure_http;
	g->call.ca_file = o->conf.ca_file[0] ? o->conf.ca_file : NULL;
	g->journal = o->journal;
	g->tools = set;
	g->log = agent_log;
}

static int serve(int argc, char **argv)
{
	struct opts o = {0};
	struct tools_set *set = NULL;
	struct tools_gate_cfg g;
	struct mcp_cfg mc = {0};
	struct mcp_server *srv = NULL;
	char why[1024] = "";
	enum tools_err e;
	int rc;

	if ((rc = parse(argc, argv, &o)) != 0)
		return rc;
	e = tools_load_dir(o.tools_dir, &set, why, sizeof why);
	if (e != TOOLS_OK) {
		agent_log("tools: failed to load tool definitions: %s", why);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	gate_cfg(&o, set, &g);
	mc.server_name = "sluice";
	mc.server_version = SLUICE_VERSION;
	mc.instructions = "Tools are available only on an attested host; every call is recorded in a "
			  "transparency log and its receipt is returned in _meta.";
	mc.max_message = o.max_message;
	tools_gate_ops(&g, &mc.ops);
	if (mcp_server_new(&mc, &srv) != 0) {
		agent_log("tools: out of memory");
		rc = 1;
		goto out;
	}
	agent_log("tools: serving %zu configured tool(s) from %s (run dir %s, host %s)", set->n, o.tools_dir,
		  o.conf.out_dir, o.conf.host_id);
	rc = mcp_serve(srv, STDIN_FILENO, STDOUT_FILENO) == 0 ? 0 : 1;
	if (rc != 0)
		agent_log("tools: stdio failed: %s", strerror(errno));
out:
	mcp_server_free(srv);
	tools_set_free(set);
	curl_global_cleanup();
	return rc;
}

static int status(int argc, char **argv)
{
	struct opts o = {0};
	struct tools_set *set = NULL;
	struct tools_gate_cfg g;
	struct tools_unlock u = {0};
	char why[1024] = "";
	enum tools_err e;
	json_t *j = NULL, *arr;
	int rc;

	if ((rc = parse(argc, argv, &o)) != 0)
		return rc;
	e = tools_load_dir(o.tools_dir, &set, why, sizeof why);
	if (e != TOOLS_OK) {
		agent_log("tools: failed to load tool definitions: %s", why);
		return 1;
	}
	gate_cfg(&o, set, &g);
	e = tools_lock_check(&g.lock, &u, why, sizeof why);
	arr = json_array();
	for (size_t i = 0; e == TOOLS_OK && i < set->n; i++)
		if (tools_unlock_allows(&u, set->defs[i].name))
			json_array_append_new(arr, json_string(set->defs[i].name));
	if (o.json) {
		char *s;
		j = json_pack("{s:b, s:s, s:s, s:o, s:I}", "locked", e != TOOLS_OK, "reason", tools_reason(e), "detail",
			      e == TOOLS_OK ? "" : why, "tools", arr, "expires", (json_int_t)u.exp);
		s = j ? json_dumps(j, JSON_COMPACT) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
	} else {
		if (e == TOOLS_OK) {
			printf("unlocked until %lld; tools:", (long long)u.exp);
			for (size_t i = 0; i < json_array_size(arr); i++)
				printf(" %s", json_string_value(json_array_get(arr, i)));
			printf("\n");
		} else {
			printf("locked: %s: %s\n", tools_reason(e), why);
		}
		json_decref(arr);
	}
	json_decref(j);
	tools_unlock_clear(&u);
	tools_set_free(set);
	return e == TOOLS_OK ? 0 : 1;
}

static uint8_t *unb64(const char *s, size_t *ret_len)
{
	size_t n = strlen(s);
	uint8_t *out;
	int len;

	if (n % 4 != 0 || n > (8u << 20))
		return NULL;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (len < 0) {
		free(out);
		return NULL;
	}
	if (n >= 1 && s[n - 1] == '=')
		len--;
	if (n >= 2 && s[n - 2] == '=')
		len--;
	*ret_len = (size_t)len;
	return out;
}

static int unhex32(const char *s, uint8_t out[32])
{
	return s && strlen(s) == 64 && agent_unhex(s, out, 32) == 32 ? 0 : -1;
}

static int audit(int argc, char **argv)
{
	struct opts o = {0};
	char why[1024] = "";
	json_t *recs, *r, *out = NULL, *outcomes = NULL;
	size_t i;
	int rc, bad = 0;

	if ((rc = parse(argc, argv, &o)) != 0)
		return rc;
	recs = tools_journal_read(o.journal, why, sizeof why);
	if (!recs) {
		agent_log("tools: journal %s is damaged: %s", o.journal, why);
		return 1;
	}
	if (o.json)
		out = json_array();
	/* outcome records, by the seq of the call they close */
	outcomes = json_object();
	json_array_foreach(recs, i, r) {
		const char *type = json_string_value(json_object_get(r, "type"));
		char key[32];
		if (!type || strcmp(type, "outcome") != 0 || !json_is_string(json_object_get(r, "result")))
			continue;
		snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(r, "call")));
		json_object_set(outcomes, key, json_object_get(r, "result"));
	}
	json_array_foreach(recs, i, r) {
		const char *type = json_string_value(json_object_get(r, "type"));
		const char *st = json_string_value(json_object_get(r, "statement"));
		const char *rc64 = json_string_value(json_object_get(r, "receipt"));
		json_t *args = json_object_get(r, "arguments");
		const char *ahex = json_string_value(json_object_get(r, "arguments_sha256"));
		uint8_t *sb = NULL, *rb = NULL, ah[32], vh[32];
		size_t sl = 0, rl = 0;
		char check[512] = "ok", hx[65], *argstr = NULL;
		const char *outcome = "(none)";
		time_t t = (time_t)json_integer_value(json_object_get(r, "time"));
		struct tm tm;
		char ts[32];

		if (!type || strcmp(type, "call") != 0)
			continue;
		{
			char key[32];
			json_t *x;
			snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(r, "seq")));
			if ((x = json_object_get(outcomes, key)) != NULL)
				outcome = json_string_value(x);
		}
		if (!st || !rc64 || !(sb = unb64(st, &sl)) || !(rb = unb64(rc64, &rl)))
			snprintf(check, sizeof check, "statement or receipt missing or not base64");
		else if (tools_call_verify(o.conf.ts_key, sb, sl, rb, rl, check, sizeof check) != 0)
			;
		else if (tools_args_sha256(args, ah) != 0 || (agent_hex(ah, 32, hx), !ahex || strcmp(hx, ahex) != 0))
			snprintf(check, sizeof check, "arguments do not match their hash");
		else if (unhex32(json_string_value(json_object_get(r, "verdict_sha256")), vh) != 0 ||
			 tools_call_statement_matches(sb, sl, json_string_value(json_object_get(r, "tool")), ah, vh,
						      json_integer_value(json_object_get(r, "time")), check,
						      sizeof check) != 0) {
			if (strcmp(check, "ok") == 0)
				snprintf(check, sizeof check, "verdict_sha256 is not 64 hex digits");
		}
		else
			snprintf(check, sizeof check, "ok");
		if (strcmp(check, "ok") != 0)
			bad = 1;
		argstr = json_dumps(args ? args : json_null(), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		gmtime_r(&t, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (o.json) {
			json_array_append_new(out, json_pack("{s:O, s:s, s:O, s:O, s:s, s:O, s:s, s:b}", "seq",
							     json_object_get(r, "seq"), "time", ts, "tool",
							     json_object_get(r, "tool"), "arguments", args ? args : json_null(),
							     "outcome", outcome, "entry_id", json_object_get(r, "entry_id"),
							     "receipt", check, "verified", strcmp(check, "ok") == 0));
		} else {
			printf("%lld %s %s %s -> %s entry %s receipt %s\n",
			       (long long)json_integer_value(json_object_get(r, "seq")), ts,
			       json_string_value(json_object_get(r, "tool")), argstr ? argstr : "?", outcome,
			       json_string_value(json_object_get(r, "entry_id")), check);
		}
		free(argstr);
		free(sb);
		free(rb);
	}
	if (o.json) {
		char *s = json_dumps(out, JSON_COMPACT);
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(out);
	}
	json_decref(outcomes);
	json_decref(recs);
	return bad ? 1 : 0;
}

int cmd_tools(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return status(argc - 1, argv + 1);
	if (strcmp(argv[1], "audit") == 0)
		return audit(argc - 1, argv + 1);
	agent_log("tools: unknown subcommand '%s' (serve, status, audit)", argv[1]);
	return 2;
}
