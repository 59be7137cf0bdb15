/* sluice boot configuration: /etc/sluice/sluice.conf, then sluice.KEY=VALUE on the kernel
 * command line. The command line may change where to connect and how to fail, but not the trust
 * anchors (pinned keys, CA file, plain-http permission) and not enable the shell on its own. */
#include "agent/boot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void boot_cfg_defaults(struct boot_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->verifier_key, sizeof cfg->verifier_key, "/etc/sluice/keys/verifier.pem");
	snprintf(cfg->ts_key, sizeof cfg->ts_key, "/etc/sluice/keys/ts.pem");
	snprintf(cfg->tcti, sizeof cfg->tcti, "device:/dev/tpmrm0");
	snprintf(cfg->root, sizeof cfg->root, "/dev/vda");
	snprintf(cfg->rootfstype, sizeof cfg->rootfstype, "ext4");
	snprintf(cfg->sysroot, sizeof cfg->sysroot, "/sysroot");
	snprintf(cfg->init, sizeof cfg->init, "/sbin/init");
	snprintf(cfg->out_dir, sizeof cfg->out_dir, "/run/sluice");
	snprintf(cfg->cred_dir, sizeof cfg->cred_dir, "/run/credentials/@initrd");
	cfg->pcr = 15;
	cfg->fail = BOOT_FAIL_HALT;
	cfg->budget = 60;
	cfg->retry_delay = 1;
	cfg->retry_max_delay = 15;
	cfg->root_wait = 10;
}

const char *boot_fail_name(enum boot_fail f)
{
	switch (f) {
	case BOOT_FAIL_HALT:
		return "halt";
	case BOOT_FAIL_REBOOT:
		return "reboot";
	case BOOT_FAIL_RETRY:
		return "retry";
	case BOOT_FAIL_SHELL:
		return "shell";
	}
	return "?";
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int parse_double(const char *s, double lo, double hi, double *ret)
{
	char *end = NULL;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return -1;
	*ret = v;
	return 0;
}

static int parse_uint(const char *s, unsigned long hi, unsigned long *ret)
{
	char *end = NULL;
	unsigned long v;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > hi)
		return -1;
	*ret = v;
	return 0;
}

static int parse_bool(const char *s, int *ret)
{
	if (!strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on"))
		*ret = 1;
	else if (!strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off"))
		*ret = 0;
	else
		return -1;
	return 0;
}

enum kind { K_STR, K_PATH, K_URL, K_PCR, K_FAIL, K_SECONDS, K_BOOL, K_EXCLUDE, K_WAIT };

struct key {
	const char *name;
	enum kind kind;
	size_t off;  /* offset of the field in struct boot_cfg */
	size_t size; /* its size (strings) */
	int file_only;
};

#define STR(f, k, fo) {#f, k, offsetof(struct boot_cfg, f), sizeof(((struct boot_cfg *)0)->f), fo}
static const struct key keys[] = {
	STR(verifier, K_URL, 0),
	STR(verifier_key, K_PATH, 1),
	STR(ts, K_URL, 0),
	STR(ts_key, K_PATH, 1),
	STR(ca_file, K_PATH, 1),
	STR(host_id, K_STR, 0),
	STR(tcti, K_STR, 0),
	STR(root, K_STR, 0),
	STR(rootfstype, K_STR, 0),
	STR(sysroot, K_PATH, 0),
	STR(init, K_PATH, 1), /* what runs with the released credentials: not from the command line */
	STR(eventlog, K_PATH, 0),
	STR(out_dir, K_PATH, 1),
	STR(cred_dir, K_PATH, 1),
	STR(ip, K_STR, 0),
	{"exclude", K_EXCLUDE, 0, 0, 1}, /* part of the measured identity */
	{"pcr", K_PCR, offsetof(struct boot_cfg, pcr), 0, 0},
	{"fail", K_FAIL, offsetof(struct boot_cfg, fail), 0, 0},
	{"budget", K_SECONDS, offsetof(struct boot_cfg, budget), 0, 0},
	{"retry_delay", K_SECONDS, offsetof(struct boot_cfg, retry_delay), 0, 0},
	{"retry_max_delay", K_SECONDS, offsetof(struct boot_cfg, retry_max_delay), 0, 0},
	{"root_wait", K_WAIT, offsetof(struct boot_cfg, root_wait), 0, 0},
	{"insecure_http", K_BOOL, offsetof(struct boot_cfg, insecure_http), 0, 1},
	{"allow_shell", K_BOOL, offsetof(struct boot_cfg, allow_shell), 0, 1},
};

int boot_cfg_set(struct boot_cfg *cfg, const char *key, const char *val, enum boot_src src,
		 char *err, size_t errlen)
{
	const struct key *k = NULL;
	char *base = (char *)cfg;
	unsigned long u;
	double d;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!strcmp(keys[i].name, key))
			k = &keys[i];
	if (!k) {
		seterr(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	if (k->file_only && src == BOOT_SRC_CMDLINE) {
		seterr(err, errlen, "%s: may only be set in %s, not on the kernel command line", key,
		       BOOT_CONF_PATH);
		return -1;
	}
	if (strlen(val) >= BOOT_VAL_MAX) {
		seterr(err, errlen, "%s: value longer than %d bytes", key, BOOT_VAL_MAX - 1);
		return -1;
	}
	switch (k->kind) {
	case K_STR:
	case K_PATH:
	case K_URL:
		if (k->kind == K_PATH && *val && *val != '/') {
			seterr(err, errlen, "%s: '%s' is not an absolute path", key, val);
			return -1;
		}
		if (k->kind == K_URL && *val && strncmp(val, "http://", 7) && strncmp(val, "https://", 8)) {
			seterr(err, errlen, "%s: '%s' is not an http:// or https:// URL", key, val);
			return -1;
		}
		if (strlen(val) >= k->size) {
			seterr(err, errlen, "%s: value too long", key);
			return -1;
		}
		snprintf(base + k->off, k->size, "%s", val);
		return 0;
	case K_EXCLUDE:
		if (*val != '/') {
			seterr(err, errlen, "exclude: '%s' is not an absolute path", val);
			return -1;
		}
		if (cfg->n_excludes >= BOOT_MAX_EXCLUDES) {
			seterr(err, errlen, "exclude: more than %d entries", BOOT_MAX_EXCLUDES);
			return -1;
		}
		snprintf(cfg->excludes[cfg->n_excludes++], BOOT_VAL_MAX, "%s", val);
		return 0;
	case K_PCR:
		if (parse_uint(val, 23, &u) != 0) {
			seterr(err, errlen, "pcr: '%s' is not a PCR index 0..23", val);
			return -1;
		}
		cfg->pcr = (unsigned)u;
		return 0;
	case K_WAIT:
		if (parse_uint(val, 600, &u) != 0) {
			seterr(err, errlen, "%s: '%s' is not a number of seconds 0..600", key, val);
			return -1;
		}
		cfg->root_wait = (int)u;
		return 0;
	case K_FAIL:
		if (!strcmp(val, "halt") || !strcmp(val, "poweroff"))
			cfg->fail = BOOT_FAIL_HALT;
		else if (!strcmp(val, "reboot"))
			cfg->fail = BOOT_FAIL_REBOOT;
		else if (!strcmp(val, "retry"))
			cfg->fail = BOOT_FAIL_RETRY;
		else if (!strcmp(val, "shell")) {
			if (src == BOOT_SRC_CMDLINE && !cfg->allow_shell) {
				seterr(err, errlen, "fail: 'shell' on the kernel command line needs allow_shell = yes in %s",
				       BOOT_CONF_PATH);
				return -1;
			}
			cfg->fail = BOOT_FAIL_SHELL;
		} else {
			seterr(err, errlen, "fail: '%s' is not halt, reboot, retry or shell", val);
			return -1;
		}
		return 0;
	case K_SECONDS:
		if (parse_double(val, 0, 86400, &d) != 0) {
			seterr(err, errlen, "%s: '%s' is not a number of seconds 0..86400", key, val);
			return -1;
		}
		*(double *)(base + k->off) = d;
		return 0;
	case K_BOOL:
		if (parse_bool(val, (int *)(base + k->off)) != 0) {
			seterr(err, errlen, "%s: '%s' is not yes or no", key, val);
			return -1;
		}
		return 0;
	}
	return -1;
}

static char *trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

int boot_cfg_parse_file(struct boot_cfg *cfg, const char *text, size_t len, char *err, size_t errlen)
{
	char line[BOOT_VAL_MAX + 128], sub[256];
	size_t pos = 0;
	unsigned lineno = 0;

	if (len > BOOT_CONF_MAX) {
		seterr(err, errlen, "larger than %d bytes", BOOT_CONF_MAX);
		return -1;
	}
	while (pos < len) {
		size_t n = 0;
		char *k, *v, *eq;
		lineno++;
		while (pos < len && text[pos] != '\n') {
			if (text[pos] == 0) {
				seterr(err, errlen, "line %u: NUL byte", lineno);
				return -1;
			}
			if (n + 1 >= sizeof line) {
				seterr(err, errlen, "line %u: longer than %zu bytes", lineno, sizeof line - 1);
				return -1;
			}
			line[n++] = text[pos++];
		}
		pos++; /* the newline */
		line[n] = 0;
		k = trim(line);
		if (*k == 0 || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			seterr(err, errlen, "line %u: expected key = value", lineno);
			return -1;
		}
		*eq = 0;
		v = trim(eq + 1);
		k = trim(k);
		if (strlen(v) >= 2 && *v == '"' && v[strlen(v) - 1] == '"') {
			v[strlen(v) - 1] = 0;
			v++;
		}
		if (boot_cfg_set(cfg, k, v, BOOT_SRC_FILE, sub, sizeof sub) != 0) {
			seterr(err, errlen, "line %u: %s", lineno, sub);
			return -1;
		}
	}
	return 0;
}

int boot_cfg_parse_cmdline(struct boot_cfg *cfg, const char *cmdline, char *err, size_t errlen)
{
	char word[BOOT_VAL_MAX + 64], sub[256];
	const char *p = cmdline;

	if (strlen(cmdline) > BOOT_CONF_MAX) {
		seterr(err, errlen, "kernel command line too long");
		return -1;
	}
	for (;;) {
		size_t n = 0;
		int quoted = 0, toolong = 0;
		char *eq;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		/* A word ends at unquoted white space; quotes are removed (the kernel's next_arg()). */
		for (; *p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '"') {
				quoted = !quoted;
				continue;
			}
			if (n + 1 >= sizeof word)
				toolong = 1;
			else
				word[n++] = *p;
		}
		word[n] = 0;
		if (n < 8 || memcmp(word, "sluice.", 7) != 0)
			continue;
		if (toolong) {
			seterr(err, errlen, "kernel command line: %.40s...: too long", word);
			return -1;
		}
		eq = strchr(word, '=');
		if (!eq) {
			seterr(err, errlen, "kernel command line: '%s' has no value", word);
			return -1;
		}
		*eq = 0;
		if (boot_cfg_set(cfg, word + 7, eq + 1, BOOT_SRC_CMDLINE, sub, sizeof sub) != 0) {
			seterr(err, errlen, "kernel command line: %s", sub);
			return -1;
		}
	}
	return 0;
}

int boot_cfg_check(const struct boot_cfg *cfg, char *err, size_t errlen)
{
	if (!cfg->verifier[0]) {
		seterr(err, errlen, "no verifier URL (verifier = in %s or sluice.verifier=)", BOOT_CONF_PATH);
		return -1;
	}
	if (!cfg->ts[0]) {
		seterr(err, errlen, "no transparency service URL (ts = in %s or sluice.ts=)", BOOT_CONF_PATH);
		return -1;
	}
	if (!cfg->host_id[0]) {
		seterr(err, errlen, "no host identity (host_id = in %s or sluice.host_id=)", BOOT_CONF_PATH);
		return -1;
	}
	if (!cfg->verifier_key[0] || !cfg->ts_key[0]) {
		seterr(err, errlen, "the verifier and transparency service keys must be pinned");
		return -1;
	}
	if (!cfg->sysroot[0] || !strcmp(cfg->sysroot, "/")) {
		seterr(err, errlen, "sysroot must be a directory other than /");
		return -1;
	}
	if (cfg->budget <= 0) {
		seterr(err, errlen, "budget must be more than 0 seconds");
		return -1;
	}
	if (cfg->retry_delay <= 0 || cfg->retry_max_delay < cfg->retry_delay) {
		seterr(err, errlen, "need 0 < retry_delay <= retry_max_delay");
		return -1;
	}
	return 0;
}

double boot_backoff(unsigned attempt, double base, double max, double u)
{
	double d = base;
	for (unsigned i = 0; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	if (u < 0)
		u = 0;
	if (u >= 1)
		u = 0.999999;
	return d / 2 + u * d / 2;
}
