/* PID 1 plumbing for sluice boot: console, API file systems, the target root, switch_root and
 * the failure actions. Modelled on busybox util-linux/switch_root.c: everything is checked before
 * the initramfs is emptied, and PID 1 never returns from a failure action. */
#include "agent/boot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int kmsg_fd = -1; /* open when /dev/kmsg is there (PID 1 mode): boot_say copies lines to it */

void boot_console_setup(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		for (int i = 0; i < 3; i++)
			if (fd != i)
				dup2(fd, i);
		if (fd > 2)
			close(fd);
	}
	if (kmsg_fd < 0)
		kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
}

void boot_say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "sluice: %s\n", line);
	fflush(stderr);
	/* A copy for dmesg of the booted system; "<5>" stays off a quiet console. One write() per
	 * record, as /dev/kmsg wants, and not dprintf: glibc's dprintf first asks the fd for its
	 * offset, which /dev/kmsg refuses (EINVAL), so it silently wrote nothing. The kernel
	 * rate-limits each open of /dev/kmsg to 10 records per 5 s and a gate says more than that
	 * in a second, so every record gets its own open (as `echo >/dev/kmsg` in a script does). */
	if (kmsg_fd >= 0) {
		char rec[sizeof line + 16];
		int m = snprintf(rec, sizeof rec, "<5>sluice: %s\n", line);
		int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (m > 0 && fd >= 0) {
			ssize_t w;
			if ((size_t)m >= sizeof rec)
				m = (int)sizeof rec - 1;
			do
				w = write(fd, rec, (size_t)m);
			while (w < 0 && errno == EINTR);
		}
		if (fd >= 0)
			close(fd);
	}
}

static void seterr(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

int boot_is_mountpoint(const char *path)
{
	struct stat a, b;
	char parent[4096];
	if (snprintf(parent, sizeof parent, "%s/..", path) >= (int)sizeof parent)
		return 0;
	if (stat(path, &a) != 0 || stat(parent, &b) != 0)
		return 0;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

int boot_mount_api(char *why, size_t whylen)
{
	static const struct {
		const char *src, *dir, *type;
		unsigned long flags;
		const char *data;
		int optional;
	} m[] = {
		{"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0},
		{"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0},
		{"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0},
		{"securityfs", "/sys/kernel/security", "securityfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 1},
		{"run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0},
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		if (mkdir(m[i].dir, 0755) != 0 && errno != EEXIST && !m[i].optional) {
			seterr(why, whylen, "mkdir %s: %s", m[i].dir, strerror(errno));
			return -1;
		}
		if (boot_is_mountpoint(m[i].dir))
			continue;
		if (mount(m[i].src, m[i].dir, m[i].type, m[i].flags, m[i].data) != 0 && !m[i].optional) {
			seterr(why, whylen, "mount %s on %s: %s", m[i].type, m[i].dir, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int boot_mount_root(const struct boot_cfg *cfg, char *why, size_t whylen)
{
	struct stat st;
	struct timespec pause_ = {0, 10 * 1000 * 1000}; /* the disk's modules may still be loading */
	int waited = 0;

	if (mkdir(cfg->sysroot, 0755) != 0 && errno != EEXIST) {
		seterr(why, whylen, "mkdir %s: %s", cfg->sysroot, strerror(errno));
		return -1;
	}
	if (boot_is_mountpoint(cfg->sysroot))
		return 1; /* hook mode: the initramfs framework mounted it */
	while (stat(cfg->root, &st) != 0 || !S_ISBLK(st.st_mode)) {
		if (waited >= cfg->root_wait * 100) {
			seterr(why, whylen, "root device %s did not appear within %d s", cfg->root, cfg->root_wait);
			return -1;
		}
		nanosleep(&pause_, NULL);
		waited++;
	}
	if (mount(cfg->root, cfg->sysroot, cfg->rootfstype, MS_RDONLY, NULL) != 0) {
		seterr(why, whylen, "mount %s (%s) read-only on %s: %s", cfg->root, cfg->rootfstype,
		       cfg->sysroot, strerror(errno));
		return -1;
	}
	return 0;
}

/* Remove everything under dirfd that lives on device dev (the initramfs), depth-first. */
static void delete_contents(int dirfd, dev_t dev, int depth)
{
	DIR *d;
	struct dirent *e;

	if (depth > 64) {
		close(dirfd);
		return;
	}
	d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				delete_contents(sub, dev, depth + 1);
			unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
		} else {
			unlinkat(dirfd, e->d_name, 0);
		}
	}
	closedir(d);
}

/* Is init a regular executable inside newroot (symlinks resolved inside it)? Checked in a
 * child that chroots, so PID 1's root stays put. */
static int check_init(const char *newroot, const char *init)
{
	pid_t pid = fork();
	int status = 0;
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct stat st;
		if (chroot(newroot) != 0 || chdir("/") != 0)
			_exit(2);
		if (stat(init, &st) != 0)
			_exit(3);
		if (!S_ISREG(st.st_mode) || access(init, X_OK) != 0)
			_exit(4);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int boot_switch_root(const char *newroot, const char *init, int *destroyed, char *why, size_t whylen)
{
	static const char *const moves[] = {"/dev", "/proc", "/sys", "/run"};
	struct stat st_root, st_new, st_init;
	struct statfs sfs;
	char target[4096];
	int rc, rootfd;

	*destroyed = 0;
	if (stat("/", &st_root) != 0 || stat(newroot, &st_new) != 0) {
		seterr(why, whylen, "stat %s: %s", newroot, strerror(errno));
		return -1;
	}
	if (st_root.st_dev == st_new.st_dev) {
		seterr(why, whylen, "%s is not a mount point", newroot);
		return -1;
	}
	if (statfs("/", &sfs) != 0 || ((unsigned long)sfs.f_type != RAMFS_MAGIC && (unsigned long)sfs.f_type != TMPFS_MAGIC) ||
	    stat("/init", &st_init) != 0 || !S_ISREG(st_init.st_mode)) {
		seterr(why, whylen, "not running from an initramfs (/ is not ramfs/tmpfs with /init)");
		return -1;
	}
	rc = check_init(newroot, init);
	if (rc != 0) {
		seterr(why, whylen, "%s in %s: %s", init, newroot,
		       rc == 3 ? "does not exist" : rc == 4 ? "is not an executable file" : "cannot be checked");
		return -1;
	}
	for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
		struct stat st;
		snprintf(target, sizeof target, "%s%s", newroot, moves[i]);
		if (!boot_is_mountpoint(moves[i]))
			continue;
		if (stat(target, &st) != 0 || !S_ISDIR(st.st_mode)) {
			if (!strcmp(moves[i], "/run")) {
				seterr(why, whylen, "%s has no /run to carry the release into", newroot);
				return -1;
			}
			continue;
		}
		if (mount(moves[i], target, NULL, MS_MOVE, NULL) != 0) {
			seterr(why, whylen, "move %s to %s: %s", moves[i], target, strerror(errno));
			return -1;
		}
	}
	/* Point of no return: empty the initramfs (it would otherwise pin RAM forever). */
	*destroyed = 1;
	rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd >= 0)
		delete_contents(rootfd, st_root.st_dev, 0);
	if (chdir(newroot) != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 || chdir("/") != 0) {
		seterr(why, whylen, "move %s to /: %s", newroot, strerror(errno));
		return -1;
	}
	execl(init, init, (char *)NULL);
	seterr(why, whylen, "exec %s: %s", init, strerror(errno));
	return -1;
}

static void power_off(int reboot_)
{
	sync();
	if (reboot_)
		reboot(RB_AUTOBOOT);
	reboot(RB_POWER_OFF);
	reboot(RB_HALT_SYSTEM);
}

static void run_shell(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		setsid();
		ioctl(0, TIOCSCTTY, 1);
		execl("/bin/sh", "sh", (char *)NULL);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(-1, NULL, 0);
		if (w == pid || (w < 0 && errno == ECHILD))
			break;
	}
}

void boot_fail_action(enum boot_fail f, int pid1, int initramfs_intact)
{
	switch (f) {
	case BOOT_FAIL_SHELL:
		if (!pid1)
			return; /* hook mode: exit 1 and let the initramfs framework open its shell */
		if (initramfs_intact) {
			boot_say("starting a shell (fail = shell); the machine halts when it exits");
			run_shell();
		}
		power_off(0);
		break;
	case BOOT_FAIL_REBOOT:
		power_off(1);
		break;
	case BOOT_FAIL_HALT:
	case BOOT_FAIL_RETRY:
		power_off(0);
		break;
	}
	if (pid1)
		for (;;)
			pause();
}
