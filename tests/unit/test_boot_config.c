/* sluice boot configuration: sluice.conf parsing, kernel command line overrides, the rules
 * that keep trust anchors out of the command line's reach, and the retry backoff. */
#include "agent/boot.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>

static struct boot_cfg cfg;
static char err[512];

static int parse(const char *text)
{
	boot_cfg_defaults(&cfg);
	err[0] = 0;
	return boot_cfg_parse_file(&cfg, text, strlen(text), err, sizeof err);
}

static void test_defaults(void)
{
	boot_cfg_defaults(&cfg);
	T_EQ_INT(cfg.pcr, 15);
	T_EQ_INT(cfg.fail, BOOT_FAIL_HALT);
	T_CHECK(cfg.budget == 60);
	T_EQ_STR(cfg.tcti, "device:/dev/tpmrm0");
	T_EQ_STR(cfg.sysroot, "/sysroot");
	T_EQ_STR(cfg.init, "/sbin/init");
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.exclude=/usr/bin", err, sizeof err), -1);
	T_EQ_INT(cfg.n_excludes, 0);
	T_EQ_STR(cfg.out_dir, "/run/sluice");
	T_EQ_STR(cfg.cred_dir, "/run/credentials/@initrd");
	T_EQ_STR(cfg.verifier_key, "/etc/sluice/keys/verifier.pem");
	/* no URLs by default: the check refuses to run without them */
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), -1);
	T_CHECK(strstr(err, "verifier") != NULL);
}

static void test_file(void)
{
	T_EQ_INT(parse("# sluice\n\n  verifier = http://10.0.2.100:8080  \n"
		       "ts=\"http://10.0.2.100:8081\"\r\n"
		       "pcr = 14\nfail = retry\nbudget = 12.5\nexclude = /srv/cache\nexclude=/home\n"
		       "host_id = host-1\nallow_shell = yes\ninsecure_http = no\n"),
		 0);
	T_EQ_STR(cfg.verifier, "http://10.0.2.100:8080");
	T_EQ_STR(cfg.ts, "http://10.0.2.100:8081");
	T_EQ_INT(cfg.pcr, 14);
	T_EQ_INT(cfg.fail, BOOT_FAIL_RETRY);
	T_CHECK(cfg.budget == 12.5);
	T_EQ_INT(cfg.n_excludes, 2);
	T_EQ_STR(cfg.excludes[1], "/home");
	T_EQ_STR(cfg.host_id, "host-1");
	T_EQ_INT(cfg.allow_shell, 1);
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), 0);
	/* no trailing newline, empty file */
	T_EQ_INT(parse("pcr=16"), 0);
	T_EQ_INT(cfg.pcr, 16);
	T_EQ_INT(parse(""), 0);
}

static void test_file_errors(void)
{
	T_EQ_INT(parse("verifier = http://a\nbogus = 1\n"), -1);
	T_CHECK(strstr(err, "line 2") && strstr(err, "unknown key 'bogus'"));
	T_EQ_INT(parse("just words\n"), -1);
	T_CHECK(strstr(err, "line 1") != NULL);
	T_EQ_INT(parse("pcr = 24\n"), -1);
	T_EQ_INT(parse("pcr = -1\n"), -1);
	T_EQ_INT(parse("pcr = 1x\n"), -1);
	T_EQ_INT(parse("budget = nan\n"), -1);
	T_EQ_INT(parse("budget = 1e9\n"), -1);
	T_EQ_INT(parse("fail = explode\n"), -1);
	T_EQ_INT(parse("verifier = ftp://x\n"), -1);
	T_EQ_INT(parse("verifier_key = relative.pem\n"), -1);
	T_EQ_INT(parse("allow_shell = maybe\n"), -1);
	T_EQ_INT(parse("pcr = 1\0pcr = 2\n"), 0); /* strlen stops at NUL: only the first line */
	{
		const char t[] = "pcr = 1\n\0pcr = 2\n";
		boot_cfg_defaults(&cfg);
		T_EQ_INT(boot_cfg_parse_file(&cfg, t, sizeof t - 1, err, sizeof err), -1);
		T_CHECK(strstr(err, "NUL") != NULL);
	}
	{
		/* over-long line and over-long file are rejected, not truncated */
		size_t n = BOOT_VAL_MAX + 200;
		char *t = malloc(n + 1);
		memcpy(t, "host_id = ", 10);
		memset(t + 10, 'a', n - 10);
		t[n] = 0;
		T_EQ_INT(parse(t), -1);
		T_CHECK(strstr(err, "longer") != NULL);
		free(t);
		t = calloc(1, BOOT_CONF_MAX + 2);
		memset(t, '\n', BOOT_CONF_MAX + 1);
		T_EQ_INT(parse(t), -1);
		free(t);
	}
	{
		char t[64 * 40] = "";
		for (int i = 0; i <= BOOT_MAX_EXCLUDES; i++)
			strcat(t, "exclude = /x\n");
		T_EQ_INT(parse(t), -1);
		T_CHECK(strstr(err, "exclude") != NULL);
	}
}

static void test_cmdline(void)
{
	T_EQ_INT(parse("verifier = http://a:1\nts = http://b:2\nfail = halt\n"), 0);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg,
					"BOOT_IMAGE=/vmlinuz console=ttyS0 quiet sluice.verifier=http://c:3 "
					"sluice.fail=reboot sluice.budget=30 sluice.pcr=16 "
					"sluice.host_id=\"my host\" sluice.root=/dev/vdb rootfstype=xfs\n",
					err, sizeof err),
		 0);
	T_EQ_STR(cfg.verifier, "http://c:3");
	T_EQ_STR(cfg.ts, "http://b:2");
	T_EQ_INT(cfg.fail, BOOT_FAIL_REBOOT);
	T_CHECK(cfg.budget == 30);
	T_EQ_INT(cfg.pcr, 16);
	T_EQ_STR(cfg.host_id, "my host");
	T_EQ_STR(cfg.root, "/dev/vdb");
	T_EQ_STR(cfg.rootfstype, "ext4"); /* rootfstype= without the prefix is not ours */
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "", err, sizeof err), 0);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.bogus=1", err, sizeof err), -1);
	T_CHECK(strstr(err, "bogus") != NULL);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.pcr", err, sizeof err), -1);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.pcr=99", err, sizeof err), -1);
}

static void test_cmdline_cannot_touch_trust(void)
{
	T_EQ_INT(parse("verifier = http://a:1\nts = http://b:2\n"), 0);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.verifier_key=/tmp/evil.pem", err, sizeof err), -1);
	T_CHECK(strstr(err, "kernel command line") != NULL);
	T_EQ_STR(cfg.verifier_key, "/etc/sluice/keys/verifier.pem");
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.ts_key=/x", err, sizeof err), -1);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.ca_file=/x", err, sizeof err), -1);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.insecure_http=yes", err, sizeof err), -1);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.allow_shell=yes", err, sizeof err), -1);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.cred_dir=/tmp", err, sizeof err), -1);
	/* init= would let the command line pick what runs with the released credentials */
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.init=/bin/sh", err, sizeof err), -1);
	T_EQ_STR(cfg.init, "/sbin/init");
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.exclude=/usr/bin", err, sizeof err), -1);
	T_EQ_INT(cfg.n_excludes, 0);
	/* the shell: not from the command line alone ... */
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.fail=shell", err, sizeof err), -1);
	T_CHECK(strstr(err, "allow_shell") != NULL);
	T_EQ_INT(cfg.fail, BOOT_FAIL_HALT);
	/* ... but yes when the (measured, in-initramfs) file allows it */
	T_EQ_INT(parse("allow_shell = yes\n"), 0);
	T_EQ_INT(boot_cfg_parse_cmdline(&cfg, "sluice.fail=shell", err, sizeof err), 0);
	T_EQ_INT(cfg.fail, BOOT_FAIL_SHELL);
	/* and the file itself may always choose it */
	T_EQ_INT(parse("fail = shell\n"), 0);
	T_EQ_INT(cfg.fail, BOOT_FAIL_SHELL);
}

static void test_check(void)
{
	T_EQ_INT(parse("verifier = http://a\nts = http://b\nhost_id = h\n"), 0);
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), 0);
	T_EQ_INT(parse("verifier = http://a\nts = http://b\n"), 0);
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), -1);
	T_CHECK(strstr(err, "host_id") != NULL);
	T_EQ_INT(parse("verifier = http://a\nts = http://b\nhost_id = h\nsysroot = /\n"), 0);
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), -1);
	T_EQ_INT(parse("verifier = http://a\nts = http://b\nhost_id = h\nbudget = 0\n"), 0);
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), -1);
	T_EQ_INT(parse("verifier = http://a\nts = http://b\nhost_id = h\nretry_delay = 5\nretry_max_delay = 1\n"), 0);
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), -1);
	T_EQ_INT(parse("verifier = http://a\n"), 0);
	T_EQ_INT(boot_cfg_check(&cfg, err, sizeof err), -1);
	T_CHECK(strstr(err, "transparency") != NULL);
}

static void test_backoff(void)
{
	/* base 1, cap 15: 1, 2, 4, 8, 15, 15 ... jittered into [d/2, d) */
	T_CHECK(boot_backoff(0, 1, 15, 0) == 0.5);
	T_CHECK(boot_backoff(0, 1, 15, 0.999) < 1.0);
	T_CHECK(boot_backoff(3, 1, 15, 0) == 4.0);
	T_CHECK(boot_backoff(4, 1, 15, 0) == 7.5);
	T_CHECK(boot_backoff(200, 1, 15, 0.5) <= 15.0);
	T_CHECK(boot_backoff(200, 1, 15, 7) < 15.0);   /* u clamped */
	T_CHECK(boot_backoff(2, 1, 15, -3) == 2.0);
	for (unsigned i = 0; i < 40; i++) {
		double d = boot_backoff(i, 0.25, 10, 0.3);
		T_CHECK(d > 0 && d <= 10);
	}
}

static void test_fail_names(void)
{
	T_EQ_STR(boot_fail_name(BOOT_FAIL_HALT), "halt");
	T_EQ_STR(boot_fail_name(BOOT_FAIL_REBOOT), "reboot");
	T_EQ_STR(boot_fail_name(BOOT_FAIL_RETRY), "retry");
	T_EQ_STR(boot_fail_name(BOOT_FAIL_SHELL), "shell");
	T_EQ_INT(parse("fail = poweroff\n"), 0);
	T_EQ_INT(cfg.fail, BOOT_FAIL_HALT);
}

int main(void)
{
	T_RUN(test_defaults);
	T_RUN(test_file);
	T_RUN(test_file_errors);
	T_RUN(test_cmdline);
	T_RUN(test_cmdline_cannot_touch_trust);
	T_RUN(test_check);
	T_RUN(test_backoff);
	T_RUN(test_fail_names);
	return t_done();
}
