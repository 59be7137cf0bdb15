/* sluice enroll: enrol this host's TPM with a verifier.
 * sluice attest: the attestation flow without switch_root (DESIGN.md steps 1-9). */
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "quote/quote.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void enroll_usage(FILE *f)
{
	fprintf(f, "usage: sluice enroll --verifier URL --host-id ID [--tcti T] [--out DIR]\n"
		   "                     [--ca-file FILE] [--insecure-http] [--timeout SECONDS]\n"
		   "\n"
		   "Enrol this host's TPM with a sluice verifier: sends the EK public key and its\n"
		   "certificate (from the TPM's NV index, when present) and the AK (created and\n"
		   "persisted on first use), activates the verifier's MakeCredential challenge in the TPM\n"
		   "and returns it, proving that AK and EK share this TPM.\n"
		   "\n"
		   "  --verifier URL   the verifier (http://127.0.0.1:PORT, https://...)\n"
		   "  --host-id ID     this host's identity ([A-Za-z0-9._:@-]{1,128})\n"
		   "  --tcti T         TPM (default device:/dev/tpmrm0; e.g. swtpm:host=127.0.0.1,port=2321)\n"
		   "  --out DIR        also write the statement key's public key (statement-key.pem) and the\n"
		   "                   AK public (ak.pub.pem) there, for the transparency service's trust store\n"
		   "  --ca-file FILE   trust anchors for https\n"
		   "  --insecure-http  allow plain http to a non-loopback verifier\n"
		   "  --timeout S      network timeout in seconds (default 30)\n"
		   "\n"
		   "Exit status: 0 enrolled, 1 refused or failed (one line says why), 2 usage.\n");
}

static int write_pem(const char *dir, const char *name, const struct quote_key *k)
{
	char path[PATH_MAX], *pem = NULL;
	int rc;
	if (quote_public_to_pem(k->pub, k->pub_len, &pem) != QUOTE_OK)
		return -1;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	rc = agent_write_file(path, pem, strlen(pem), 0644);
	free(pem);
	return rc;
}

int cmd_enroll(int argc, char **argv)
{
	static const struct option opts[] = {
		{"verifier", required_argument, NULL, 'v'}, {"host-id", required_argument, NULL, 'H'},
		{"tcti", required_argument, NULL, 't'},     {"out", required_argument, NULL, 'o'},
		{"ca-file", required_argument, NULL, 'c'},  {"insecure-http", no_argument, NULL, 'I'},
		{"timeout", required_argument, NULL, 'T'},  {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *verifier = NULL, *host_id = NULL, *tcti = NULL, *out = NULL;
	struct agent_http_opts ho = {.timeout = 30};
	struct quote_cfg qc = {0};
	struct quote_ctx *q = NULL;
	char why[1024] = "";
	enum quote_err qe;
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v': verifier = optarg; break;
		case 'H': host_id = optarg; break;
		case 't': tcti = optarg; break;
		case 'o': out = optarg; break;
		case 'c': ho.ca_file = optarg; break;
		case 'I': ho.insecure_http = 1; break;
		case 'T': ho.timeout = strtod(optarg, NULL); break;
		case 'h': enroll_usage(stdout); return 0;
		default: enroll_usage(stderr); return 2;
		}
	}
	if (optind != argc || !verifier || !host_id || ho.timeout <= 0) {
		enroll_usage(stderr);
		return 2;
	}
	qc.tcti = tcti;
	if ((qe = quote_ctx_new(&qc, &q)) != QUOTE_OK) {
		agent_log("enroll: cannot open the TPM (%s): %s", tcti ? tcti : "default", quote_strerror(qe));
		return 1;
	}
	if (agent_enroll(q, &ho, verifier, host_id, why, sizeof why) != 0) {
		agent_log("%s", why);
		goto out;
	}
	if (out) {
		struct quote_key sk, ak;
		if (mkdir(out, 0755) != 0 && errno != EEXIST) {
			agent_log("enroll: cannot create %s: %s", out, strerror(errno));
			goto out;
		}
		if ((qe = quote_sk_ensure(q, &sk, NULL)) != QUOTE_OK || (qe = quote_ak_ensure(q, &ak, NULL)) != QUOTE_OK) {
			agent_log("enroll: statement key: %s (%s)", quote_strerror(qe), quote_ctx_cause(q));
			goto out;
		}
		if (write_pem(out, "statement-key.pem", &sk) || write_pem(out, "ak.pub.pem", &ak)) {
			agent_log("enroll: cannot write the public keys to %s: %s", out, strerror(errno));
			goto out;
		}
	}
	printf("enrolled %s with %s\n", host_id, verifier);
	rc = 0;
out:
	quote_ctx_free(q);
	return rc;
}

static void attest_usage(FILE *f)
{
	fprintf(f,
		"usage: sluice attest --verifier URL --verifier-key FILE --ts URL --ts-key FILE\n"
		"                     --host-id ID [--tcti T] [--root DIR] [--exclude PATH]...\n"
		"                     [--pcr N] [--eventlog FILE] [--out DIR] [--cred-dir DIR]\n"
		"                     [--budget SECONDS] [--ca-file FILE] [--insecure-http] [--quiet]\n"
		"\n"
		"The attestation flow without switch_root: measure the root, extend the measurement\n"
		"PCR, get a challenge, quote, sign the evidence as a SCITT statement in the TPM,\n"
		"register it, have the verifier appraise it, verify the verdict and its receipt, and\n"
		"recover the released credentials with TPM2_ActivateCredential.\n"
		"\n"
		"  --verifier URL        the verifier;  --verifier-key FILE  its pinned public key\n"
		"  --ts URL              SCRAPI transparency service;  --ts-key FILE  its pinned key\n"
		"                        (PEM, COSE_Key or COSE_KeySet)\n"
		"  --host-id ID          this host's identity, as enrolled\n"
		"  --tcti T              TPM (default device:/dev/tpmrm0)\n"
		"  --root DIR            tree to measure (default /)\n"
		"  --exclude PATH        extra exclude (repeatable), on top of the default excludes\n"
		"  --pcr N               measurement PCR (default 15)\n"
		"  --eventlog FILE       TCG event log (default the securityfs one; may be absent)\n"
		"  --out DIR             verdict, receipts, evidence bundle, sluice event log\n"
		"                        (default /run/sluice)\n"
		"  --cred-dir DIR        released credentials, mode 0400 (default /run/credentials/@initrd)\n"
		"  --budget S            total seconds for network waits (default 60)\n"
		"  --quiet               no per-step lines\n"
		"\n"
		"Exit status: 0 affirming verdict and credentials released; 1 anything else, with one\n"
		"line \"sluice: <step>: <reason> (<cause>)\"; 2 usage.\n");
}

static void on_step(void *ud, const char *step, double seconds, const char *detail)
{
	(void)ud;
	fprintf(stderr, "sluice: %-9s %6.1f ms%s%s\n", step, seconds * 1000, detail ? "  " : "", detail ? detail : "");
}

int cmd_attest(int argc, char **argv)
{
	static const struct option opts[] = {
		{"verifier", required_argument, NULL, 'v'}, {"verifier-key", required_argument, NULL, 'V'},
		{"ts", required_argument, NULL, 's'},       {"ts-key", required_argument, NULL, 'S'},
		{"host-id", required_argument, NULL, 'H'},  {"tcti", required_argument, NULL, 't'},
		{"root", required_argument, NULL, 'r'},     {"exclude", required_argument, NULL, 'x'},
		{"pcr", required_argument, NULL, 'p'},      {"eventlog", required_argument, NULL, 'e'},
		{"out", required_argument, NULL, 'o'},      {"cred-dir", required_argument, NULL, 'C'},
		{"budget", required_argument, NULL, 'b'},   {"ca-file", required_argument, NULL, 'c'},
		{"insecure-http", no_argument, NULL, 'I'},  {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	struct agent_attest_cfg cfg = {0};
	const char *excl[64];
	char why[1024] = "";
	int c, quiet = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v': cfg.verifier_url = optarg; break;
		case 'V': cfg.verifier_key = optarg; break;
		case 's': cfg.ts_url = optarg; break;
		case 'S': cfg.ts_key = optarg; break;
		case 'H': cfg.host_id = optarg; break;
		case 't': cfg.tcti = optarg; break;
		case 'r': cfg.root = optarg; break;
		case 'x':
			if (cfg.n_excludes >= 64) {
				agent_log("attest: at most 64 --exclude");
				return 2;
			}
			excl[cfg.n_excludes++] = optarg;
			cfg.excludes = excl;
			break;
		case 'p':
			cfg.pcr = (unsigned)strtoul(optarg, &end, 10);
			if (*end || cfg.pcr > 23) {
				agent_log("attest: --pcr 0..23");
				return 2;
			}
			break;
		case 'e': cfg.eventlog = optarg; break;
		case 'o': cfg.out_dir = optarg; break;
		case 'C': cfg.cred_dir = optarg; break;
		case 'b':
			cfg.budget = strtod(optarg, &end);
			if (*end || cfg.budget <= 0) {
				agent_log("attest: --budget SECONDS > 0");
				return 2;
			}
			break;
		case 'c': cfg.ca_file = optarg; break;
		case 'I': cfg.insecure_http = 1; break;
		case 'q': quiet = 1; break;
		case 'h': attest_usage(stdout); return 0;
		default: attest_usage(stderr); return 2;
		}
	}
	if (optind != argc || !cfg.verifier_url || !cfg.verifier_key || !cfg.ts_url || !cfg.ts_key || !cfg.host_id) {
		attest_usage(stderr);
		return 2;
	}
	if (!quiet)
		cfg.on_step = on_step;
	if (agent_attest_run(&cfg, why, sizeof why) != 0) {
		agent_log("%s", why[0] ? why : "attest: failed");
		return 1;
	}
	if (!quiet)
		fprintf(stderr, "sluice: attest: affirming verdict, credentials in %s\n",
			cfg.cred_dir ? cfg.cred_dir : "/run/credentials/@initrd");
	return 0;
}
