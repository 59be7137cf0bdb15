/* Small helpers shared by the agent's subcommands: bounded file I/O, hex, logging. */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void agent_vlog(const char *fmt, va_list ap)
{
	char line[2048];
	vsnprintf(line, sizeof line, fmt, ap);
	fprintf(stderr, "sluice: %s\n", line);
}

void agent_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	agent_vlog(fmt, ap);
	va_end(ap);
}

int agent_read_file(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = -1, saved = 0;

	if (fd < 0)
		return -1;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			uint8_t *n;
			if (cap > max) {
				saved = EFBIG;
				goto out;
			}
			if (ncap > max + 1)
				ncap = max + 1;
			n = realloc(buf, ncap + 1);
			if (!n) {
				saved = ENOMEM;
				goto out;
			}
			buf = n;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			saved = EFBIG;
			goto out;
		}
	}
	if (!buf && !(buf = malloc(1))) {
		saved = ENOMEM;
		goto out;
	}
	buf[len] = 0;
	*ret_buf = buf;
	*ret_len = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc != 0)
		errno = saved;
	return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int agent_write_file(const char *path, const void *buf, size_t len, unsigned mode)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if (strcmp(path, "-") == 0)
		return write_all(STDOUT_FILENO, buf, len);
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -1;
	if (write_all(fd, buf, len) != 0 || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

void agent_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = 0;
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long agent_unhex(const char *hex, uint8_t *out, size_t outcap)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > outcap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

double agent_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
