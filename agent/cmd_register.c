/* sluice register: register a signed statement with a SCITT transparency service (SCRAPI) and
 * keep the receipt only after it verified against the pinned service key.
 * sluice ts keys: fetch a service's keys (/.well-known/scitt-keys) to pin them. */
#include "agent/agent.h"
#include "bundle/bundle.h"
#include "scrapi/scrapi.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct net_opts {
	const char *ts;
	const char *ca_file;
	int insecure_http;
	double budget;
	double timeout;
	unsigned long max_response;
};

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static void fill_cfg(const struct net_opts *o, struct scrapi_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->url = o->ts;
	cfg->http.ca_file = o->ca_file;
	cfg->http.insecure_http = o->insecure_http;
	cfg->http.timeout_ms = (long)(o->timeout * 1000);
	cfg->http.max_response = o->max_response;
	cfg->http.user_agent = "sluice/" SLUICE_VERSION;
	cfg->budget = o->budget;
}

static void register_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice register --ts URL --ts-key KEYFILE [OPTIONS] STATEMENT\n"
		"\n"
		"Register a COSE_Sign1 signed statement with a SCITT transparency service (SCRAPI:\n"
		"POST /entries; 201 with the receipt, or 303 and polling; legacy 202 operations) and\n"
		"verify the receipt against the pinned service key before writing it.\n"
		"\n"
		"  --ts URL              service base URL (https://..., or http:// on loopback)\n"
		"  --ts-key FILE         pinned service key(s): COSE_KeySet (from `sluice ts keys`),\n"
		"                        COSE_Key, PEM/DER public key or certificate, or a CCF trust\n"
		"                        store JSON\n"
		"  --out FILE            receipt output (default: stdout)\n"
		"  --transparent FILE    also write the transparent statement (receipt in header 394)\n"
		"  --ca-file FILE        CA bundle for https\n"
		"  --insecure-http       allow plain http to a non-loopback host\n"
		"  --budget SECONDS      total time for retries and polling (default 60)\n"
		"  --timeout SECONDS     per request (default 30)\n"
		"  --max-response BYTES  largest answer accepted (default 1048576)\n"
		"  --api-version V       add ?api-version=V to the POST (scitt-ccf-ledger's SCRAPI mode)\n"
		"\n"
		"Exit status: 0 registered and verified; 1 refused, failed or receipt did not verify\n"
		"(the reason, with the service's problem details, is printed); 2 usage.\n");
}

int cmd_register(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ts", required_argument, NULL, 't'},         {"ts-key", required_argument, NULL, 'k'},
		{"out", required_argument, NULL, 'o'},        {"transparent", required_argument, NULL, 'T'},
		{"ca-file", required_argument, NULL, 'C'},    {"insecure-http", no_argument, NULL, 'I'},
		{"budget", required_argument, NULL, 'b'},     {"timeout", required_argument, NULL, 'w'},
		{"max-response", required_argument, NULL, 'm'}, {"api-version", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
	};
	struct net_opts o = {.budget = 60, .timeout = 30, .max_response = 1u << 20};
	const char *keyfile = NULL, *out = "-", *transparent = NULL, *api = NULL;
	struct scrapi_cfg cfg;
	struct scrapi_client *cl = NULL;
	struct scrapi_result res = {0};
	struct bundle_keyset *ks = NULL;
	struct bundle_receipt_info info;
	uint8_t *stmt = NULL, *keybuf = NULL, *ts_stmt = NULL;
	size_t stmt_len = 0, key_len = 0, ts_len = 0;
	char query[128];
	enum scrapi_err se;
	enum bundle_err be;
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		double d;
		switch (c) {
		case 't': o.ts = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'o': out = optarg; break;
		case 'T': transparent = optarg; break;
		case 'C': o.ca_file = optarg; break;
		case 'I': o.insecure_http = 1; break;
		case 'a': api = optarg; break;
		case 'b':
			if (parse_double(optarg, 0.1, 86400, &o.budget) != 0) {
				agent_log("register: --budget wants 0.1..86400 seconds");
				return 2;
			}
			break;
		case 'w':
			if (parse_double(optarg, 0.1, 3600, &o.timeout) != 0) {
				agent_log("register: --timeout wants 0.1..3600 seconds");
				return 2;
			}
			break;
		case 'm':
			if (parse_double(optarg, 1024, 64.0 * 1024 * 1024, &d) != 0) {
				agent_log("register: --max-response wants 1024..67108864 bytes");
				return 2;
			}
			o.max_response = (unsigned long)d;
			break;
		case 'h': register_usage(stdout); return 0;
		default: register_usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || !o.ts || !keyfile) {
		agent_log("register: need --ts URL, --ts-key FILE and one STATEMENT (see sluice register --help)");
		return 2;
	}
	if (api && (strlen(api) > 64 || strspn(api, "0123456789-abcdefghijklmnopqrstuvwxyz.") != strlen(api))) {
		agent_log("register: bad --api-version");
		return 2;
	}
	if (agent_read_file(keyfile, 1u << 20, &keybuf, &key_len) != 0) {
		agent_log("failed to read service key %s: %m", keyfile);
		goto out;
	}
	if ((be = bundle_keyset_load(keybuf, key_len, &ks)) != BUNDLE_OK) {
		agent_log("failed to load service key %s: %s (%s)", keyfile, bundle_strerror(be), bundle_last_cause());
		goto out;
	}
	if (agent_read_file(argv[optind], BUNDLE_MAX_COSE, &stmt, &stmt_len) != 0) {
		agent_log("failed to read statement %s: %m", argv[optind]);
		goto out;
	}
	fill_cfg(&o, &cfg);
	if (api) {
		snprintf(query, sizeof query, "api-version=%s", api);
		cfg.post_query = query;
	}
	if ((se = scrapi_client_new(&cfg, &cl)) != SCRAPI_OK) {
		agent_log("failed to use transparency service %s: %s", o.ts, scrapi_strerror(se));
		goto out;
	}
	if ((se = scrapi_register(cl, stmt, stmt_len, &res)) != SCRAPI_OK) {
		agent_log("failed to register %s: %s (%s)", argv[optind], scrapi_strerror(se), scrapi_last_cause(cl));
		goto out;
	}
	memset(&info, 0, sizeof info);
	be = bundle_receipt_verify(res.receipt, res.receipt_len, stmt, stmt_len, NULL, ks, &info);
	if (be != BUNDLE_OK) {
		agent_log("failed to verify the receipt from %s: %s (%s)", o.ts, bundle_strerror(be), bundle_last_cause());
		goto out;
	}
	if (transparent) {
		struct bundle_bytes r = {res.receipt, res.receipt_len};
		if ((be = bundle_transparent_make(stmt, stmt_len, &r, 1, &ts_stmt, &ts_len)) != BUNDLE_OK) {
			agent_log("failed to make the transparent statement: %s (%s)", bundle_strerror(be), bundle_last_cause());
			goto out;
		}
		if (agent_write_file(transparent, ts_stmt, ts_len, 0644) != 0) {
			agent_log("failed to write %s: %m", transparent);
			goto out;
		}
	}
	if (agent_write_file(out, res.receipt, res.receipt_len, 0644) != 0) {
		agent_log("failed to write %s: %m", out);
		goto out;
	}
	if (info.vds == 1)
		agent_log("registered: entry %s, leaf %llu in a tree of %llu, receipt verified (%u attempts, %u polls, %.2fs)",
			  res.entry_id[0] ? res.entry_id : "?", (unsigned long long)info.leaf_index,
			  (unsigned long long)info.tree_size, res.attempts, res.polls, res.seconds);
	else
		agent_log("registered: entry %s, receipt (vds %lld) verified (%u attempts, %u polls, %.2fs)",
			  res.entry_id[0] ? res.entry_id : "?", (long long)info.vds, res.attempts, res.polls, res.seconds);
	rc = 0;
out:
	free(stmt);
	free(keybuf);
	free(ts_stmt);
	bundle_keyset_free(ks);
	scrapi_result_clear(&res);
	scrapi_client_free(cl);
	return rc;
}

static void ts_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice ts keys --ts URL [--out FILE] [--ca-file FILE] [--insecure-http] [--timeout S]\n"
		"\n"
		"Fetch a transparency service's keys (GET /.well-known/scitt-keys, a COSE_KeySet),\n"
		"print one line per key (kid in hex, algorithm) and write the key set to --out, to pin\n"
		"it for `sluice register --ts-key`. Compare the kid with one obtained out of band: this\n"
		"command trusts whatever the service answers.\n");
}

int cmd_ts(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ts", required_argument, NULL, 't'},      {"out", required_argument, NULL, 'o'},
		{"ca-file", required_argument, NULL, 'C'}, {"insecure-http", no_argument, NULL, 'I'},
		{"timeout", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct net_opts o = {.budget = 30, .timeout = 30, .max_response = 1u << 20};
	const char *out = NULL;
	struct scrapi_cfg cfg;
	struct scrapi_client *cl = NULL;
	struct bundle_keyset *ks = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	enum scrapi_err se;
	enum bundle_err be;
	int c, rc = 1;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		ts_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "keys") != 0) {
		agent_log("ts: unknown subcommand '%s' (see sluice ts --help)", argv[1]);
		return 2;
	}
	optind = 1;
	argc--, argv++;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': o.ts = optarg; break;
		case 'o': out = optarg; break;
		case 'C': o.ca_file = optarg; break;
		case 'I': o.insecure_http = 1; break;
		case 'w':
			if (parse_double(optarg, 0.1, 3600, &o.timeout) != 0) {
				agent_log("ts keys: --timeout wants 0.1..3600 seconds");
				return 2;
			}
			break;
		case 'h': ts_usage(stdout); return 0;
		default: ts_usage(stderr); return 2;
		}
	}
	if (optind != argc || !o.ts) {
		agent_log("ts keys: need --ts URL (see sluice ts --help)");
		return 2;
	}
	fill_cfg(&o, &cfg);
	if ((se = scrapi_client_new(&cfg, &cl)) != SCRAPI_OK) {
		agent_log("failed to use transparency service %s: %s", o.ts, scrapi_strerror(se));
		goto out;
	}
	if ((se = scrapi_get_keys(cl, &buf, &len)) != SCRAPI_OK) {
		agent_log("failed to fetch keys from %s: %s (%s)", o.ts, scrapi_strerror(se), scrapi_last_cause(cl));
		goto out;
	}
	if ((be = bundle_keyset_decode(buf, len, &ks)) != BUNDLE_OK) {
		agent_log("failed to decode the key set from %s: %s (%s)", o.ts, bundle_strerror(be), bundle_last_cause());
		goto out;
	}
	for (size_t i = 0; i < bundle_keyset_count(ks); i++) {
		const struct bundle_key *k = bundle_keyset_get(ks, i);
		struct bundle_bytes kid = bundle_key_kid(k);
		char hex[2 * 64 + 1] = "";
		if (kid.len <= 64)
			agent_hex(kid.ptr, kid.len, hex);
		fprintf(out && strcmp(out, "-") == 0 ? stderr : stdout, "kid %s alg %d\n", hex, bundle_key_alg(k));
	}
	if (out && agent_write_file(out, buf, len, 0644) != 0) {
		agent_log("failed to write %s: %m", out);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	bundle_keyset_free(ks);
	scrapi_client_free(cl);
	return rc;
}
