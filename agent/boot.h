/* sluice boot: private interface between agent/cmd_boot.c and agent/boot_*.c.
 *
 * boot_config.c  the configuration: /etc/sluice/sluice.conf (key = value) overridden by
 *                sluice.KEY=VALUE words on the kernel command line; retry backoff.
 * boot_root.c    PID 1 plumbing: API file systems, mounting the target root, the console,
 *                switch_root (checks everything before deleting the initramfs), failure actions.
 * boot_seal.c    step 10: extend the measurement PCR with the "released" event.
 * cmd_boot.c     the gate itself: runs the attestation in a child, applies the outcome. */
#ifndef SLUICE_AGENT_BOOT_H
#define SLUICE_AGENT_BOOT_H

#include <stddef.h>

#define BOOT_CONF_PATH "/etc/sluice/sluice.conf"
#define BOOT_CONF_MAX (64 * 1024)     /* config file and command line size limit */
#define BOOT_VAL_MAX 512              /* longest value of one key */
#define BOOT_MAX_EXCLUDES 32

enum boot_fail {
	BOOT_FAIL_HALT = 0, /* power off (stop if that is impossible); the default */
	BOOT_FAIL_REBOOT,
	BOOT_FAIL_RETRY,    /* retry with jittered exponential backoff inside the budget, then halt */
	BOOT_FAIL_SHELL,    /* development only: a shell on the console, then halt */
};

/* Where a setting came from: the command line may not change the trust anchors. */
enum boot_src {
	BOOT_SRC_FILE = 0,
	BOOT_SRC_CMDLINE,
};

struct boot_cfg {
	char verifier[BOOT_VAL_MAX];     /* verifier URL (required) */
	char verifier_key[BOOT_VAL_MAX]; /* pinned verifier key file */
	char ts[BOOT_VAL_MAX];           /* transparency service URL (required) */
	char ts_key[BOOT_VAL_MAX];       /* pinned TS key file */
	char ca_file[BOOT_VAL_MAX];      /* CA bundle for https, optional */
	char host_id[BOOT_VAL_MAX];      /* host identity as enrolled (required) */
	char tcti[BOOT_VAL_MAX];
	char root[BOOT_VAL_MAX];         /* block device of the target root (PID 1 mode) */
	char rootfstype[64];
	char sysroot[BOOT_VAL_MAX];      /* where the target root is (or gets) mounted */
	char init[BOOT_VAL_MAX];         /* program to exec in the new root */
	char eventlog[BOOT_VAL_MAX];     /* TCG event log; empty: the default */
	char out_dir[BOOT_VAL_MAX];
	char cred_dir[BOOT_VAL_MAX];
	char ip[BOOT_VAL_MAX];           /* used by /init, kept for --print */
	char excludes[BOOT_MAX_EXCLUDES][BOOT_VAL_MAX];
	size_t n_excludes;
	unsigned pcr;
	enum boot_fail fail;
	double budget;                   /* seconds for the whole gate, retries included */
	double retry_delay;              /* first backoff delay, seconds */
	double retry_max_delay;          /* backoff cap, seconds */
	int insecure_http;
	int allow_shell;                 /* fail=shell from the command line needs this in the file */
	int root_wait;                   /* seconds to wait for the root device */
};

void boot_cfg_defaults(struct boot_cfg *cfg);
/* Set one key. Returns 0, or -1 with a reason in err ("unknown key 'x'", "pcr: not 0..23"). */
int boot_cfg_set(struct boot_cfg *cfg, const char *key, const char *val, enum boot_src src,
		 char *err, size_t errlen);
/* Parse sluice.conf text: "key = value" lines, '#' comments, blank lines. Stops at the first
 * error (err names the line). */
int boot_cfg_parse_file(struct boot_cfg *cfg, const char *text, size_t len, char *err, size_t errlen);
/* Apply the sluice.KEY=VALUE words of a kernel command line ("..." quoting as the kernel does);
 * other words are ignored. */
int boot_cfg_parse_cmdline(struct boot_cfg *cfg, const char *cmdline, char *err, size_t errlen);
/* After parsing: required keys present, combinations valid. */
int boot_cfg_check(const struct boot_cfg *cfg, char *err, size_t errlen);
const char *boot_fail_name(enum boot_fail f);
/* Delay before retry number attempt (0-based): min(max, base * 2^attempt), jittered into
 * [d/2, d) with u in [0,1). */
double boot_backoff(unsigned attempt, double base, double max, double u);

/* boot_root.c */
void boot_console_setup(void);              /* PID 1: fds 0-2 on /dev/console, /dev/kmsg for logs */
void boot_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int boot_mount_api(char *why, size_t whylen); /* proc, sysfs, devtmpfs, securityfs, /run (if missing) */
/* Mount cfg->root read-only on cfg->sysroot: 0 mounted, 1 it already was (hook mode), -1 why. */
int boot_mount_root(const struct boot_cfg *cfg, char *why, size_t whylen);
int boot_is_mountpoint(const char *path);
/* Check, then delete the initramfs, move /dev /proc /sys /run, chroot, exec init. Returns only
 * on failure (why says what), possibly after the initramfs was emptied (*destroyed = 1). */
int boot_switch_root(const char *newroot, const char *init, int *destroyed, char *why, size_t whylen);
/* Apply a terminal failure action; never returns when pid1 (halt/reboot/shell then halt). */
void boot_fail_action(enum boot_fail f, int pid1, int initramfs_intact);

/* boot_seal.c: step 10. 0 on success, else -1 and why. */
int boot_seal(const struct boot_cfg *cfg, char *why, size_t whylen);

#endif
