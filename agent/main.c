/* sluice: the measured-boot attestation gate. Dispatches to one subcommand per file. */
#include "agent/agent.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"measure", cmd_measure, "measure a root tree or image archive -> manifest + root digest"},
	{"tpm", cmd_tpm, "TPM information (manufacturer, banks, EK/AK)"},
	{"quote", cmd_quote, "take a TPM quote, or verify one (quote verify)"},
	{"eventlog", cmd_eventlog, "print and replay a TCG PC Client event log"},
	{"statement", cmd_statement, "inspect a COSE_Sign1 signed statement"},
	{"receipt", cmd_receipt, "verify a SCITT receipt for a statement"},
	{"audit", cmd_audit, "re-verify an evidence bundle offline"},
	{"register", cmd_register, "register a signed statement with a SCITT service"},
	{"ts", cmd_ts, "talk to a transparency service (ts keys)"},
	{"enroll", cmd_enroll, "enrol this host's TPM with a verifier"},
	{"attest", cmd_attest, "measure, quote, register and obtain a verdict (no switch_root)"},
	{"boot", cmd_boot, "the initramfs gate: attest, release, switch_root"},
	{"tools", cmd_tools, "LLM tool gateway (tools serve | tools audit)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sluice COMMAND [ARGS...]\n\n"
		   "A measured-boot attestation gate: measure, quote, register with a SCITT\n"
		   "transparency service, obtain a verdict, then release and switch_root.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n  sluice COMMAND --help   details of one command\n"
		   "  sluice --version\n");
}

/* fds 0-2 must be valid before anything opens a file (PID 1 may start without them). */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	}
}

int main(int argc, char **argv)
{
	ensure_std_fds();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("sluice %s\n", SLUICE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "sluice: unknown command '%s' (see sluice --help)\n", argv[1]);
	return 2;
}
