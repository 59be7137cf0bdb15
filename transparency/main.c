/* sluice-ts: a SCITT transparency service (SCRAPI over HTTP, RFC 9162 receipts, crash-safe
 * append-only log with group commit). See docs/sluice-ts.md. */
#include "transparency/ts-int.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TS_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice-ts --listen ADDR:PORT --state DIR [OPTIONS]\n"
		"\n"
		"A SCITT transparency service: registers COSE_Sign1 signed statements (SCRAPI,\n"
		"draft-ietf-scitt-scrapi-09) in an append-only RFC 9162 log on disk and answers\n"
		"with receipts signed by the service key (P-256, created in DIR on first start).\n"
		"\n"
		"  --listen ADDR:PORT      address to bind, e.g. 127.0.0.1:8443 or [::1]:8443\n"
		"  --state DIR             log and service key (created if missing)\n"
		"  --iss NAME              issuer named in receipts (CWT iss), default sluice-ts\n"
		"  --async                 answer POST /entries with 303 and let clients poll\n"
		"                          GET /entries/{id} (302 until registered, then 200)\n"
		"  --trust-dir DIR         issuer public keys (*.pem: SPKI or certificate); a\n"
		"                          statement's kid names one (RFC 9679 thumbprint,\n"
		"                          SHA-256 of the SPKI raw or hex, or the file name)\n"
		"  --open-registration     also accept statements signed by the key of their own\n"
		"                          protected x5chain leaf certificate\n"
		"  --alg LIST              allowed statement algorithms, comma separated, from\n"
		"                          ES256,ES384,EdDSA (default ES256,ES384)\n"
		"  --max-statement BYTES   largest statement accepted (default 262144)\n"
		"  --threads N             HTTP worker threads (default 2)\n"
		"  --commit-window-us N    wait up to N microseconds to gather a commit batch\n"
		"                          (default 0: batch whatever queued during the last fsync)\n"
		"  --max-batch N           entries per commit at most (default 4096)\n"
		"  --max-pending N         queued registrations before answering 503 (default 20000)\n"
		"  --retry-after S         Retry-After seconds on 303, 302 and 503 (default 1)\n"
		"  --log-level LEVEL       error, warn, info (one line per request; default), debug\n"
		"  --help, --version\n"
		"\n"
		"Endpoints: POST /entries, GET /entries/{id}, GET /entries/{id}/statement,\n"
		"GET /consistency/{size}, GET /.well-known/scitt-keys[/{kid}], GET /metrics.\n"
		"Stops cleanly on SIGTERM/SIGINT (queued registrations are committed first).\n"
		"Exit status: 0 after a clean stop, 1 on a fatal error (log write failed), 2 usage.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static int parse_algs(const char *list, int64_t *algs, size_t cap, size_t *n)
{
	char buf[256];
	char *save = NULL, *tok;
	*n = 0;
	if (strlen(list) >= sizeof buf)
		return -1;
	strcpy(buf, list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int64_t a;
		if (strcmp(tok, "ES256") == 0)
			a = -7;
		else if (strcmp(tok, "ES384") == 0)
			a = -35;
		else if (strcmp(tok, "EdDSA") == 0)
			a = -8;
		else
			return -1;
		if (*n == cap)
			return -1;
		algs[(*n)++] = a;
	}
	return *n ? 0 : -1;
}

int main(int argc, char **argv)
{
	enum { O_ISS = 256, O_ASYNC, O_TRUST, O_OPEN, O_ALG, O_MAXST, O_THREADS, O_WINDOW, O_BATCH, O_PENDING,
	       O_RETRY, O_LOGLEVEL, O_VERSION };
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"state", required_argument, NULL, 's'},
		{"iss", required_argument, NULL, O_ISS},
		{"async", no_argument, NULL, O_ASYNC},
		{"trust-dir", required_argument, NULL, O_TRUST},
		{"open-registration", no_argument, NULL, O_OPEN},
		{"alg", required_argument, NULL, O_ALG},
		{"max-statement", required_argument, NULL, O_MAXST},
		{"threads", required_argument, NULL, O_THREADS},
		{"commit-window-us", required_argument, NULL, O_WINDOW},
		{"max-batch", required_argument, NULL, O_BATCH},
		{"max-pending", required_argument, NULL, O_PENDING},
		{"retry-after", required_argument, NULL, O_RETRY},
		{"log-level", required_argument, NULL, O_LOGLEVEL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, O_VERSION},
		{NULL, 0, NULL, 0},
	};
	struct ts_server_cfg cfg = {0};
	struct ts_server *srv = NULL;
	int64_t algs[8];
	size_t n_algs = 0;
	unsigned long v;
	char err[512];
	sigset_t set;
	int c, sig, rc;

	cfg.iss = "sluice-ts";
	cfg.retry_after = 1;
	cfg.log_level = TS_LOG_INFO;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': cfg.listen = optarg; break;
		case 's': cfg.state_dir = optarg; break;
		case O_ISS:
			if (!*optarg || strlen(optarg) > 64) {
				fprintf(stderr, "sluice-ts: --iss must be 1..64 characters\n");
				return 2;
			}
			cfg.iss = optarg;
			break;
		case O_ASYNC: cfg.async = 1; break;
		case O_TRUST: cfg.policy.trust_dir = optarg; break;
		case O_OPEN: cfg.policy.open_registration = 1; break;
		case O_ALG:
			if (parse_algs(optarg, algs, 8, &n_algs) != 0) {
				fprintf(stderr, "sluice-ts: --alg: want a list of ES256, ES384, EdDSA\n");
				return 2;
			}
			cfg.policy.algs = algs;
			cfg.policy.n_algs = n_algs;
			break;
		case O_MAXST:
			if (parse_uint(optarg, TS_LOG_MAX_RECORD - 64, &v) != 0 || v < 64) {
				fprintf(stderr, "sluice-ts: --max-statement: 64..%u bytes\n", TS_LOG_MAX_RECORD - 64);
				return 2;
			}
			cfg.policy.max_statement = v;
			break;
		case O_THREADS:
			if (parse_uint(optarg, 256, &v) != 0 || v == 0) {
				fprintf(stderr, "sluice-ts: --threads: 1..256\n");
				return 2;
			}
			cfg.threads = (unsigned)v;
			break;
		case O_WINDOW:
			if (parse_uint(optarg, 1000000, &v) != 0) {
				fprintf(stderr, "sluice-ts: --commit-window-us: 0..1000000\n");
				return 2;
			}
			cfg.commit_window_us = (unsigned)v;
			break;
		case O_BATCH:
			if (parse_uint(optarg, 65536, &v) != 0 || v == 0) {
				fprintf(stderr, "sluice-ts: --max-batch: 1..65536\n");
				return 2;
			}
			cfg.max_batch = (unsigned)v;
			break;
		case O_PENDING:
			if (parse_uint(optarg, 1000000, &v) != 0 || v == 0) {
				fprintf(stderr, "sluice-ts: --max-pending: 1..1000000\n");
				return 2;
			}
			cfg.max_pending = (unsigned)v;
			break;
		case O_RETRY:
			if (parse_uint(optarg, 3600, &v) != 0) {
				fprintf(stderr, "sluice-ts: --retry-after: 0..3600\n");
				return 2;
			}
			cfg.retry_after = (unsigned)v;
			break;
		case O_LOGLEVEL:
			if (strcmp(optarg, "error") == 0)
				cfg.log_level = TS_LOG_ERROR;
			else if (strcmp(optarg, "warn") == 0)
				cfg.log_level = TS_LOG_WARN;
			else if (strcmp(optarg, "info") == 0)
				cfg.log_level = TS_LOG_INFO;
			else if (strcmp(optarg, "debug") == 0)
				cfg.log_level = TS_LOG_DEBUG;
			else {
				fprintf(stderr, "sluice-ts: --log-level: error, warn, info or debug\n");
				return 2;
			}
			break;
		case O_VERSION:
			printf("sluice-ts %s\n", TS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !cfg.listen || !cfg.state_dir) {
		fprintf(stderr, "sluice-ts: --listen and --state are required (see --help)\n");
		return 2;
	}
	ts_log_level = cfg.log_level;
	if (mkdir(cfg.state_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "sluice-ts: failed to create state directory %s: %s\n", cfg.state_dir, strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* threads inherit the mask */
	if (ts_server_start(&cfg, &srv, err, sizeof err) != 0) {
		ts_logf(TS_LOG_ERROR, "failed to start: %s", err);
		return 1;
	}
	for (;;) {
		struct timespec t = {0, 200 * 1000 * 1000};
		sig = sigtimedwait(&set, NULL, &t);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (ts_server_failed(srv))
			break;
	}
	rc = ts_server_failed(srv) ? 1 : 0;
	ts_logf(TS_LOG_INFO, "stopping%s", rc ? " after a fatal error" : "");
	ts_server_stop(srv);
	return rc;
}
