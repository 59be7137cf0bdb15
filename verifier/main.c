/* sluice-verifier: the fleet-side verifier and policy engine (see docs/sluice-verifier.md).
 *
 *   sluice-verifier [serve] --listen ADDR:PORT --state DIR --policy FILE --ts URL --ts-key FILE
 *                   [--ek-ca DIR] [--trust-ts-key FILE]... [--id NAME] [--threads N] [--queue N]
 *                   [--max-body BYTES] [--quiet]
 *   sluice-verifier policy check FILE
 */
#include "verifier/verifier-int.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice-verifier [serve] --listen ADDR:PORT --state DIR --policy FILE\n"
		"                       --ts URL --ts-key FILE [options]\n"
		"       sluice-verifier policy check FILE\n"
		"\n"
		"Enrols hosts (EK certificate + AK, MakeCredential challenge), appraises their evidence\n"
		"against the policy, answers with a signed EAR verdict registered with the transparency\n"
		"service, and releases the group's payload wrapped to the appraised TPM.\n"
		"\n"
		"options:\n"
		"  --listen ADDR:PORT     IPv4 address and port to serve HTTP on (e.g. 127.0.0.1:8443)\n"
		"  --state DIR            SQLite database and the verifier key (created on first start)\n"
		"  --policy FILE          JSON policy (docs/policy.md); reloaded on SIGHUP\n"
		"  --ts URL               transparency service (SCRAPI) where verdicts are registered\n"
		"  --ts-key FILE          its public key (PEM, COSE_Key or COSE_KeySet); also trusted for\n"
		"                         the receipts agents present\n"
		"  --trust-ts-key FILE    another trusted transparency service key (repeatable)\n"
		"  --ek-ca DIR            trusted TPM manufacturer CA certificates (*.pem, *.crt)\n"
		"  --id NAME              verifier id in verdicts (default sluice-verifier)\n"
		"  --threads N            worker threads (default 32)\n"
		"  --queue N              requests in flight before answering 503 (default 256)\n"
		"  --max-body BYTES       largest request body (default 8388608)\n"
		"  --insecure-http        allow a plain-http transparency service off loopback\n"
		"  --quiet                no per-request log lines\n"
		"  -h, --help             this text\n"
		"\n"
		"Signals: SIGHUP reloads the policy (a bad file is rejected and the old policy kept);\n"
		"SIGTERM/SIGINT stop the service.\n");
}

static int policy_check(int argc, char **argv)
{
	struct verifier_policy *p = NULL;
	char err[512] = "";
	enum verifier_err rc;

	if (argc != 3 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "usage: sluice-verifier policy check FILE\n");
		return 2;
	}
	rc = verifier_policy_load(argv[2], &p, err, sizeof err);
	if (rc != VERIFIER_OK) {
		fprintf(stderr, "sluice-verifier: policy %s rejected: %s\n", argv[2], err);
		return 1;
	}
	printf("policy %s: ok, id %s, %zu group(s)\n", argv[2], p->id, p->n_groups);
	for (size_t i = 0; i < p->n_groups; i++) {
		const struct verifier_group *g = &p->groups[i];
		unsigned n = 0;
		for (unsigned j = 0; j < VERIFIER_MAX_PCR; j++)
			n += (g->pcr_mask >> j) & 1;
		printf("  group %s: %zu host pattern(s), %u PCR(s), %zu rootfs digest(s), %zu release file(s), "
		       "%zu tool(s), verdict lifetime %llds\n",
		       g->name, g->n_hosts, n, g->n_rootfs, g->n_release, g->n_tools, (long long)g->lifetime);
	}
	verifier_policy_free(p);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},  {"state", required_argument, NULL, 's'},
		{"policy", required_argument, NULL, 'p'},  {"ts", required_argument, NULL, 't'},
		{"ts-key", required_argument, NULL, 'k'},  {"trust-ts-key", required_argument, NULL, 'K'},
		{"ek-ca", required_argument, NULL, 'e'},   {"id", required_argument, NULL, 'i'},
		{"threads", required_argument, NULL, 'T'}, {"queue", required_argument, NULL, 'q'},
		{"max-body", required_argument, NULL, 'b'}, {"insecure-http", no_argument, NULL, 'I'},
		{"quiet", no_argument, NULL, 'Q'},         {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct verifier_svc_cfg cfg = {.verifier_id = "sluice-verifier", .threads = 32, .queue_max = 256,
				       .max_body = 8u << 20};
	const char *trust[16];
	struct verifier_svc *svc = NULL;
	char err[512] = "";
	sigset_t set;
	int c, rc = 1;

	if (argc >= 2 && strcmp(argv[1], "policy") == 0)
		return policy_check(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
		argc--;
		argv++;
	}
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end = NULL;
		switch (c) {
		case 'l': cfg.listen = optarg; break;
		case 's': cfg.state_dir = optarg; break;
		case 'p': cfg.policy_path = optarg; break;
		case 't': cfg.ts_url = optarg; break;
		case 'k': cfg.ts_key_path = optarg; break;
		case 'K':
			if (cfg.n_trust_ts >= 16) {
				fprintf(stderr, "sluice-verifier: at most 16 --trust-ts-key\n");
				return 2;
			}
			trust[cfg.n_trust_ts++] = optarg;
			cfg.trust_ts = trust;
			break;
		case 'e': cfg.ek_ca_dir = optarg; break;
		case 'i': cfg.verifier_id = optarg; break;
		case 'T':
			cfg.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || cfg.threads < 1 || cfg.threads > 1024) {
				fprintf(stderr, "sluice-verifier: --threads 1..1024\n");
				return 2;
			}
			break;
		case 'q':
			cfg.queue_max = (unsigned)strtoul(optarg, &end, 10);
			if (*end || cfg.queue_max < 1 || cfg.queue_max > 100000) {
				fprintf(stderr, "sluice-verifier: --queue 1..100000\n");
				return 2;
			}
			break;
		case 'b':
			cfg.max_body = strtoul(optarg, &end, 10);
			if (*end || cfg.max_body < 1024 || cfg.max_body > (64u << 20)) {
				fprintf(stderr, "sluice-verifier: --max-body 1024..67108864\n");
				return 2;
			}
			break;
		case 'I': cfg.insecure_http = 1; break;
		case 'Q': cfg.quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !cfg.listen || !cfg.state_dir || !cfg.policy_path || !cfg.ts_url || !cfg.ts_key_path) {
		fprintf(stderr, "sluice-verifier: --listen, --state, --policy, --ts and --ts-key are required\n");
		usage(stderr);
		return 2;
	}
	/* Signals are handled synchronously here; the worker threads inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (verifier_svc_open(&cfg, &svc, err, sizeof err) != VERIFIER_OK) {
		fprintf(stderr, "sluice-verifier: failed to start: %s\n", err);
		return 1;
	}
	if (verifier_svc_start(svc, err, sizeof err) != VERIFIER_OK) {
		fprintf(stderr, "sluice-verifier: failed to start: %s\n", err);
		goto out;
	}
	fprintf(stderr, "sluice-verifier: listening on %s, policy %s (%s)\n", cfg.listen, cfg.policy_path,
		svc->pol.cur->id);
	for (;;) {
		struct timespec ts = {.tv_sec = 30};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGHUP) {
			char perr[512] = "";
			if (verifier_policy_reload(&svc->pol, perr, sizeof perr) == VERIFIER_OK) {
				struct verifier_policy *p = verifier_policy_get(&svc->pol);
				fprintf(stderr, "sluice-verifier: policy reloaded (%s)\n", p->id);
				verifier_policy_put(&svc->pol, p);
			} else {
				fprintf(stderr, "sluice-verifier: policy reload rejected, keeping the old policy: %s\n",
					perr);
			}
		} else if (sig == SIGTERM || sig == SIGINT) {
			fprintf(stderr, "sluice-verifier: stopping\n");
			break;
		} else if (sig < 0 && errno == EAGAIN) {
			verifier_store_nonce_purge(svc->store, verifier_now() - 60);
		}
	}
	rc = 0;
out:
	verifier_svc_free(svc);
	return rc;
}
