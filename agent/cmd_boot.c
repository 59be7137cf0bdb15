/* sluice boot: the initramfs gate (DESIGN.md "The boot flow", steps 1-11).
 *
 * PID 1 mode (the minimal initramfs execs it as /init's successor): valid fds on the console,
 * API file systems, the target root mounted read-only, then the risky work -- parsing, network,
 * TPM -- in a child process; PID 1 only reads the child's progress lines, applies the outcome and
 * never exits: switch_root on success, the failure action otherwise.
 * Hook mode (dracut, initramfs-tools, systemd; or any non-PID-1 caller): the same gate, exit 0
 * only when it opened, and the initramfs framework does the switch_root. */
#include "agent/agent.h"
#include "agent/boot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WHY_MAX 1024
#define CHILD_GRACE 30.0 /* seconds past the budget before an attempt is killed */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice boot [--hook] [--no-action] [--config FILE] [--set KEY=VALUE]... [--cmdline FILE]\n"
		"                   [--print]\n\n"
		"The initramfs gate: measure the target root, quote, register the evidence with the\n"
		"transparency service, obtain a verdict, release the credentials, seal the phase\n"
		"(extend the measurement PCR with a \"released\" event), then switch_root (PID 1)\n"
		"or exit 0 (hook mode). Any failure: nothing is released and the failure action runs.\n\n"
		"  --hook          hook mode even when running as PID 1 (default when not PID 1)\n"
		"  --no-action     hook mode: on failure only exit 1 (no halt/reboot/retry)\n"
		"  --config FILE   configuration (default " BOOT_CONF_PATH ")\n"
		"  --set KEY=VALUE override one key of the file (as if written there; up to 16)\n"
		"  --cmdline FILE  kernel command line to apply after them (default /proc/cmdline)\n"
		"  --print         print the effective configuration and exit\n\n"
		"Configuration keys (key = value; the kernel command line overrides with sluice.KEY=VALUE):\n"
		"  verifier, ts, host_id, tcti, pcr, fail (halt|reboot|retry|shell), budget, retry_delay,\n"
		"  retry_max_delay, root, rootfstype, root_wait, sysroot, eventlog, ip;\n"
		"  file only: verifier_key, ts_key, ca_file, insecure_http, allow_shell, out_dir, cred_dir,\n"
		"  init, exclude.\n"
		"Exit status (hook mode): 0 the gate opened, 1 refused or failed, 2 usage.\n"
		"See docs/boot.md.\n");
}

/* ---- the child: steps 1-10, progress lines to the parent over a pipe ------------------- */

struct child_ctx {
	int fd;
};

static void send_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(int fd, const char *fmt, ...)
{
	char buf[WHY_MAX + 128];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = (int)sizeof buf - 2;
	/* one line per message: no newlines inside */
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (int)w;
	}
}

static void on_step(void *ud, const char *step, double seconds, const char *detail)
{
	struct child_ctx *c = ud;
	send_line(c->fd, "S %s %.2f %s", step, seconds, detail ? detail : "");
}

static int mkdir_p(const char *path, unsigned mode)
{
	char buf[BOOT_VAL_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return chmod(buf, mode);
}

static void child_run(const struct boot_cfg *cfg, double budget, int fd)
{
	struct child_ctx c = {fd};
	const char *ex[BOOT_MAX_EXCLUDES];
	char why[WHY_MAX] = "";
	double t0;
	struct agent_attest_cfg ac = {0};

	for (size_t i = 0; i < cfg->n_excludes; i++)
		ex[i] = cfg->excludes[i];
	ac.tcti = cfg->tcti;
	ac.host_id = cfg->host_id[0] ? cfg->host_id : NULL;
	ac.root = cfg->sysroot;
	ac.excludes = ex;
	ac.n_excludes = cfg->n_excludes;
	ac.pcr = cfg->pcr;
	ac.verifier_url = cfg->verifier;
	ac.verifier_key = cfg->verifier_key;
	ac.ts_url = cfg->ts;
	ac.ts_key = cfg->ts_key;
	ac.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
	ac.insecure_http = cfg->insecure_http;
	ac.eventlog = cfg->eventlog[0] ? cfg->eventlog : NULL;
	ac.out_dir = cfg->out_dir;
	ac.cred_dir = cfg->cred_dir;
	ac.budget = budget;
	ac.on_step = on_step;
	ac.ud = &c;

	umask(077);
	if (mkdir_p(cfg->out_dir, 0755) != 0 || mkdir_p(cfg->cred_dir, 0700) != 0) {
		send_line(fd, "F release: cannot create %s or %s (%s)", cfg->out_dir, cfg->cred_dir, strerror(errno));
		_exit(1);
	}
	if (agent_attest_run(&ac, why, sizeof why) != 0) {
		send_line(fd, "F %s", why[0] ? why : "attest: failed (no reason given)");
		_exit(1);
	}
	t0 = agent_now();
	if (boot_seal(cfg, why, sizeof why) != 0) {
		send_line(fd, "F seal: %s", why);
		_exit(1);
	}
	send_line(fd, "S seal %.2f PCR %u extended with the released event", agent_now() - t0, cfg->pcr);
	send_line(fd, "OK");
	_exit(0);
}

/* After a failed attempt no released credential may stay behind (the attestation flow writes
 * them only on success; this also covers a crash between writing and sealing). The verdict and
 * evidence in out_dir stay: they say why the gate closed. */
/* Remove every released credential; returns how many files were removed. tmpfs frees the
 * pages, so unlinking is the wipe. */
static int wipe_credentials(const struct boot_cfg *cfg)
{
	int dfd = cfg->cred_dir[0] ? open(cfg->cred_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
	int lfd, n = 0;
	DIR *d;
	struct dirent *e;

	if (dfd < 0)
		return 0;
	lfd = dup(dfd);
	d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d && lfd >= 0)
		close(lfd);
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && unlinkat(dfd, e->d_name, 0) == 0)
			n++;
	if (d)
		closedir(d);
	close(dfd);
	return n;
}

/* ---- the parent: one attempt --------------------------------------------------------- */

struct attempt {
	int ok;
	char last_step[32]; /* last step that finished */
	char why[WHY_MAX];
};

static const char *const step_order[] = {"measure", "extend", "challenge", "quote", "statement",
					 "register", "appraise", "release", "seal"};

static const char *next_step(const char *last)
{
	size_t n = sizeof step_order / sizeof step_order[0];
	if (!last[0])
		return step_order[0];
	for (size_t i = 0; i + 1 < n; i++)
		if (!strcmp(step_order[i], last))
			return step_order[i + 1];
	return "seal";
}

/* Copy at most dstlen-1 bytes (lines from the child are cut, never overflow). */
static void copy_cut(char *dst, size_t dstlen, const char *src)
{
	size_t n = strnlen(src, dstlen - 1);
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void handle_line(char *line, struct attempt *a)
{
	if (!strncmp(line, "S ", 2)) {
		char step[32] = "", detail[WHY_MAX] = "";
		double secs = 0;
		int consumed = 0;
		if (sscanf(line + 2, "%31s %lf %n", step, &secs, &consumed) >= 2) {
			copy_cut(detail, sizeof detail, line + 2 + consumed);
			snprintf(a->last_step, sizeof a->last_step, "%s", step);
			if (detail[0])
				boot_say("%s ok (%.2fs) %s", step, secs, detail);
			else
				boot_say("%s ok (%.2fs)", step, secs);
		}
	} else if (!strncmp(line, "F ", 2)) {
		copy_cut(a->why, sizeof a->why, line + 2);
	} else if (!strcmp(line, "OK")) {
		a->ok = 1;
	}
}

static void run_attempt(const struct boot_cfg *cfg, double budget, struct attempt *a)
{
	int p[2];
	pid_t pid;
	char buf[8192];
	size_t len = 0;
	int status = 0, timed_out = 0;
	double deadline = agent_now() + budget + CHILD_GRACE;

	memset(a, 0, sizeof *a);
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(a->why, sizeof a->why, "attest: pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(a->why, sizeof a->why, "attest: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[0]);
		signal(SIGPIPE, SIG_IGN);
		child_run(cfg, budget, p[1]);
		_exit(1);
	}
	close(p[1]);
	for (;;) {
		double left = deadline - agent_now();
		struct pollfd pfd = {p[0], POLLIN, 0};
		ssize_t r;
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!pfd.revents)
			continue;
		r = read(p[0], buf + len, sizeof buf - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = 0;
		for (char *nl; (nl = memchr(buf, '\n', len));) {
			*nl = 0;
			handle_line(buf, a);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
		}
		if (len == sizeof buf - 1)
			len = 0; /* an over-long line: drop it */
	}
	close(p[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		a->ok = 0;
		snprintf(a->why, sizeof a->why, "%s: timed out (budget %.0fs exceeded)", next_step(a->last_step), budget);
	} else if (WIFSIGNALED(status)) {
		a->ok = 0;
		snprintf(a->why, sizeof a->why, "%s: the attestation process crashed (signal %d)",
			 next_step(a->last_step), WTERMSIG(status));
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		a->ok = 0;
		if (!a->why[0])
			snprintf(a->why, sizeof a->why, "%s: failed (exit %d)", next_step(a->last_step),
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	} else if (!a->ok) {
		snprintf(a->why, sizeof a->why, "%s: the attestation process ended without a result", next_step(a->last_step));
	}
}

/* The release must be where the new root expects it before the gate opens. */
static int check_release(const struct boot_cfg *cfg, char *why, size_t whylen)
{
	struct stat st;
	if (stat(cfg->out_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "release: %s missing", cfg->out_dir);
		return -1;
	}
	if (stat(cfg->cred_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "release: %s missing", cfg->cred_dir);
		return -1;
	}
	return 0;
}

static double random_unit(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (uint32_t)(agent_now() * 1e6);
	return (double)r / 4294967296.0;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

#define MAX_SETS 16

static int load_config(struct boot_cfg *cfg, const char *conf, char *const *sets, size_t n_sets, const char *cmdline,
		       char *why, size_t whylen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[512];
	int rc = -1;

	boot_cfg_defaults(cfg);
	if (agent_read_file(conf, BOOT_CONF_MAX, &buf, &len) != 0) {
		snprintf(why, whylen, "config: cannot read %s (%s)", conf, strerror(errno));
		goto out;
	}
	if (boot_cfg_parse_file(cfg, (const char *)buf, len, err, sizeof err) != 0) {
		snprintf(why, whylen, "config: %s: %s", conf, err);
		goto out;
	}
	free(buf);
	buf = NULL;
	for (size_t i = 0; i < n_sets; i++) {
		char kv[BOOT_VAL_MAX + 64], *eq;
		snprintf(kv, sizeof kv, "%s", sets[i]);
		eq = strchr(kv, '=');
		if (!eq) {
			snprintf(why, whylen, "config: --set %s: expected KEY=VALUE", sets[i]);
			goto out;
		}
		*eq = 0;
		if (boot_cfg_set(cfg, kv, eq + 1, BOOT_SRC_FILE, err, sizeof err) != 0) {
			snprintf(why, whylen, "config: --set: %s", err);
			goto out;
		}
	}
	if (cmdline) {
		if (agent_read_file(cmdline, BOOT_CONF_MAX, &buf, &len) != 0) {
			snprintf(why, whylen, "config: cannot read %s (%s)", cmdline, strerror(errno));
			goto out;
		}
		if (boot_cfg_parse_cmdline(cfg, (const char *)buf, err, sizeof err) != 0) {
			snprintf(why, whylen, "config: %s", err);
			goto out;
		}
	}
	if (boot_cfg_check(cfg, err, sizeof err) != 0) {
		snprintf(why, whylen, "config: %s", err);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

static void print_cfg(const struct boot_cfg *c)
{
	printf("verifier = %s\nverifier_key = %s\nts = %s\nts_key = %s\nca_file = %s\nhost_id = %s\n"
	       "tcti = %s\npcr = %u\nfail = %s\nbudget = %g\nretry_delay = %g\nretry_max_delay = %g\n"
	       "root = %s\nrootfstype = %s\nroot_wait = %d\nsysroot = %s\ninit = %s\neventlog = %s\n"
	       "out_dir = %s\ncred_dir = %s\nip = %s\ninsecure_http = %s\nallow_shell = %s\n",
	       c->verifier, c->verifier_key, c->ts, c->ts_key, c->ca_file, c->host_id, c->tcti, c->pcr,
	       boot_fail_name(c->fail), c->budget, c->retry_delay, c->retry_max_delay, c->root, c->rootfstype,
	       c->root_wait, c->sysroot, c->init, c->eventlog, c->out_dir, c->cred_dir, c->ip,
	       c->insecure_http ? "yes" : "no", c->allow_shell ? "yes" : "no");
	for (size_t i = 0; i < c->n_excludes; i++)
		printf("exclude = %s\n", c->excludes[i]);
}

static double g_t_start; /* when the gate started, for the closing line */

#define INIT_JOBS_WAIT 10.0 /* seconds at most for /init's background jobs */

/* The minimal initramfs' /init brings the network up in a background job and execs us while it
 * runs, so that sluice's start and the root mount overlap it; being PID 1 we are now that job's
 * parent. Wait for it (for every child: nothing else of ours runs yet) before the first attempt,
 * whose network steps need it; bounded, after which the attempt runs anyway and a missing network
 * fails the way it always does. Returns the seconds waited, or -1 when there was no child or
 * the limit ran out (said on the console). */
static double wait_init_jobs(double limit)
{
	double t0 = agent_now();
	struct timespec tick = {0, 5 * 1000 * 1000};
	int any = 0;

	for (;;) {
		pid_t w = waitpid(-1, NULL, WNOHANG);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) /* ECHILD: none left */
			return any ? agent_now() - t0 : -1;
		any = 1;
		if (w > 0)
			continue;
		if (agent_now() - t0 >= limit) {
			boot_say("init's background jobs still run after %.0fs; starting the gate anyway", limit);
			return -1;
		}
		nanosleep(&tick, NULL);
	}
}

/* PID 1 must never return: the failure action ends in power-off, or in pause() forever. */
static int refuse(const struct boot_cfg *cfg, enum boot_fail action, int pid1, int no_action, int intact,
		  const char *why)
{
	char verdict[BOOT_VAL_MAX + 16];
	int wiped;

	boot_say("FAILED %s", why);
	/* Whatever failed, and however late (switch_root itself can fail after the release),
	 * a closed gate leaves no credential behind and no verdict that could unlock the tool
	 * gateway; the evidence bundle stays for the operator. */
	wiped = wipe_credentials(cfg);
	if (wiped)
		boot_say("wiped %d released credential(s) from %s", wiped, cfg->cred_dir);
	if (cfg->out_dir[0] && snprintf(verdict, sizeof verdict, "%s/verdict.cose", cfg->out_dir) < (int)sizeof verdict)
		unlink(verdict);
	if (!pid1 && (no_action || action == BOOT_FAIL_SHELL)) {
		boot_say("gate closed after %.1fs: nothing released", agent_now() - g_t_start);
		return 1;
	}
	boot_say("gate closed after %.1fs: nothing released; failure action: %s", agent_now() - g_t_start,
		 action == BOOT_FAIL_RETRY ? "halt (retry budget spent)" : boot_fail_name(action));
	boot_fail_action(action, pid1, intact);
	return 1; /* hook mode when the action could not stop the machine */
}

int cmd_boot(int argc, char **argv)
{
	const char *conf = BOOT_CONF_PATH, *cmdline = "/proc/cmdline";
	int pid1 = getpid() == 1, hook = 0, no_action = 0, print = 0, destroyed = 0;
	char *sets[MAX_SETS];
	size_t n_sets = 0;
	struct boot_cfg *cfg = calloc(1, sizeof *cfg);
	char why[WHY_MAX] = "";
	double t_start = agent_now(), t0;
	struct attempt a;
	unsigned attempt_no = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			free(cfg);
			return 0;
		} else if (!strcmp(argv[i], "--hook")) {
			hook = 1;
		} else if (!strcmp(argv[i], "--no-action")) {
			no_action = 1;
		} else if (!strcmp(argv[i], "--print")) {
			print = 1;
		} else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			conf = argv[++i];
		} else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_sets < MAX_SETS) {
			sets[n_sets++] = argv[++i];
		} else if (!strcmp(argv[i], "--cmdline") && i + 1 < argc) {
			cmdline = argv[++i];
		} else if (!pid1) {
			usage(stderr);
			free(cfg);
			return 2;
		}
	}
	if (hook || print)
		pid1 = 0;
	g_t_start = t_start;
	if (!cfg) {
		if (!pid1)
			return 1;
		boot_fail_action(BOOT_FAIL_HALT, 1, 1);
	}
	if (pid1) {
		boot_console_setup();
		if (boot_mount_api(why, sizeof why) != 0) {
			boot_console_setup();
			boot_cfg_defaults(cfg);
			return refuse(cfg, BOOT_FAIL_HALT, 1, 0, 1, why);
		}
		boot_console_setup();
		signal(SIGPIPE, SIG_IGN);
	}
	if (load_config(cfg, conf, sets, n_sets, cmdline, why, sizeof why) != 0) {
		enum boot_fail f = BOOT_FAIL_HALT;
		if (print) {
			fprintf(stderr, "sluice: %s\n", why);
			free(cfg);
			return 1;
		}
		/* A broken configuration cannot be retried into working; honour only halt/reboot. */
		if (cfg->fail == BOOT_FAIL_REBOOT)
			f = BOOT_FAIL_REBOOT;
		return refuse(cfg, f, pid1, no_action, 1, why);
	}
	if (print) {
		print_cfg(cfg);
		free(cfg);
		return 0;
	}
	boot_say("gate: verifier %s, transparency service %s, PCR %u, budget %.0fs, on failure %s", cfg->verifier,
		 cfg->ts, cfg->pcr, cfg->budget, boot_fail_name(cfg->fail));

	t0 = agent_now();
	{
		int m = boot_mount_root(cfg, why, sizeof why);
		if (m < 0) {
			char tmp[WHY_MAX + 16]; /* room for the prefix: the reason is never cut */
			snprintf(tmp, sizeof tmp, "mount: %s", why);
			return refuse(cfg, cfg->fail == BOOT_FAIL_RETRY ? BOOT_FAIL_HALT : cfg->fail, pid1, no_action, 1,
				      tmp);
		}
		if (m > 0)
			boot_say("mount ok (%.2fs) %s was already mounted", agent_now() - t0, cfg->sysroot);
		else
			boot_say("mount ok (%.2fs) %s on %s read-only", agent_now() - t0, cfg->root, cfg->sysroot);
	}

	if (pid1) {
		double waited = wait_init_jobs(INIT_JOBS_WAIT);
		if (waited >= 0)
			boot_say("network ok (%.2fs) waited for /init's network setup", waited);
	}
	for (;;) {
		double left = cfg->budget - (agent_now() - t_start);
		run_attempt(cfg, left > 1 ? left : 1, &a);
		if (a.ok && check_release(cfg, a.why, sizeof a.why) == 0)
			break;
		a.ok = 0;
		wipe_credentials(cfg);
		if (cfg->fail != BOOT_FAIL_RETRY)
			return refuse(cfg, cfg->fail, pid1, no_action, 1, a.why);
		double delay = boot_backoff(attempt_no++, cfg->retry_delay, cfg->retry_max_delay, random_unit());
		left = cfg->budget - (agent_now() - t_start);
		if (no_action || delay >= left)
			return refuse(cfg, BOOT_FAIL_RETRY, pid1, no_action, 1, a.why);
		boot_say("attempt %u failed: %s; retrying in %.1fs (%.0fs of budget left)", attempt_no, a.why, delay,
			 left);
		sleep_s(delay);
	}
	boot_say("gate open after %.2fs: credentials in %s, verdict and receipts in %s", agent_now() - t_start,
		 cfg->cred_dir, cfg->out_dir);
	if (!pid1) {
		free(cfg);
		return 0;
	}
	boot_say("switch_root %s %s", cfg->sysroot, cfg->init);
	boot_switch_root(cfg->sysroot, cfg->init, &destroyed, why, sizeof why);
	{
		char tmp[WHY_MAX + 16];
		snprintf(tmp, sizeof tmp, "switch_root: %s", why);
		return refuse(cfg, cfg->fail == BOOT_FAIL_RETRY ? BOOT_FAIL_HALT : cfg->fail, 1, 0, !destroyed, tmp);
	}
}
