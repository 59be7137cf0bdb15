/* The gateway's local journal: one JSON object per line, appended under an exclusive lock and
 * fsync'd, each line carrying "seq" (1, 2, ...) and "prev" (SHA-256 hex of the previous line)
 * so that an edit, a deletion or a reordering is detected by `sluice tools audit`. The
 * transparency service holds the authoritative, signed record of every call; the journal is
 * the host's index of it (with the arguments, which the service only sees hashed). */
#include "agent/tools.h"
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_JOURNAL (256u << 20)

static void line_hash(const char *p, size_t n, char hex[65])
{
	uint8_t d[32];
	SHA256((const unsigned char *)p, n, d);
	agent_hex(d, sizeof d, hex);
}

/* Find the last line of the file (fd positioned anywhere): its seq and hash. */
static int last_line(int fd, long long *ret_seq, char prev[65])
{
	struct stat st;
	size_t want, got = 0;
	char *buf = NULL;
	int rc = -1;
	off_t off;

	if (fstat(fd, &st) != 0)
		return -1;
	if (st.st_size == 0) {
		*ret_seq = 0;
		prev[0] = '\0';
		return 0;
	}
	want = (size_t)st.st_size < TOOLS_MAX_JOURNAL_LINE + 1 ? (size_t)st.st_size : TOOLS_MAX_JOURNAL_LINE + 1;
	off = st.st_size - (off_t)want;
	buf = malloc(want + 1);
	if (!buf)
		return -1;
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	if (buf[want - 1] != '\n') {
		errno = EBADMSG; /* torn tail: refuse to append until an operator looks */
		goto out;
	}
	{
		size_t end = want - 1, start = end;
		json_t *j;
		while (start > 0 && buf[start - 1] != '\n')
			start--;
		if (start == 0 && off != 0) {
			errno = EFBIG;
			goto out;
		}
		j = json_loadb(buf + start, end - start, 0, NULL);
		if (!j || !json_is_integer(json_object_get(j, "seq"))) {
			json_decref(j);
			errno = EBADMSG;
			goto out;
		}
		*ret_seq = json_integer_value(json_object_get(j, "seq"));
		json_decref(j);
		line_hash(buf + start, end - start, prev);
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int tools_journal_append(const char *path, json_t *record)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	long long seq = 0;
	char prev[65], *line = NULL;
	int rc = -1, saved = 0;
	size_t n, off = 0;

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX) != 0 || last_line(fd, &seq, prev) != 0) {
		saved = errno;
		goto out;
	}
	json_object_set_new(record, "seq", json_integer(seq + 1));
	json_object_set_new(record, "prev", json_string(prev));
	line = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
	if (!line) {
		saved = ENOMEM;
		goto out;
	}
	n = strlen(line);
	if (n > TOOLS_MAX_JOURNAL_LINE) {
		saved = EFBIG;
		goto out;
	}
	line[n] = '\n'; /* json_dumps leaves the NUL; replace it, write n+1 bytes */
	while (off < n + 1) {
		ssize_t w = write(fd, line + off, n + 1 - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			saved = errno ? errno : EIO;
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		saved = errno;
		goto out;
	}
	rc = 0;
out:
	free(line);
	close(fd);
	if (rc != 0)
		errno = saved;
	return rc;
}

json_t *tools_journal_read(const char *path, char *why, size_t whylen)
{
	uint8_t *buf = NULL;
	size_t len = 0, start = 0;
	json_t *arr = NULL;
	char prev[65] = "";
	long long lineno = 0;

	if (agent_read_file(path, MAX_JOURNAL, &buf, &len) != 0) {
		if (errno == ENOENT) /* no calls yet */
			return json_array();
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	arr = json_array();
	if (!arr)
		goto fail;
	while (start < len) {
		char *nl = memchr(buf + start, '\n', len - start);
		size_t n;
		json_t *j, *seq, *pv;
		json_error_t jerr;

		lineno++;
		if (!nl) {
			snprintf(why, whylen, "line %lld: torn (no newline at the end of the journal)", lineno);
			goto fail;
		}
		n = (size_t)((uint8_t *)nl - (buf + start));
		j = json_loadb((const char *)buf + start, n, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(j)) {
			json_decref(j);
			snprintf(why, whylen, "line %lld: not a JSON object", lineno);
			goto fail;
		}
		seq = json_object_get(j, "seq");
		pv = json_object_get(j, "prev");
		if (!json_is_integer(seq) || json_integer_value(seq) != lineno) {
			json_decref(j);
			snprintf(why, whylen, "line %lld: seq is not %lld (lines removed or reordered)", lineno, lineno);
			goto fail;
		}
		if (!json_is_string(pv) || strcmp(json_string_value(pv), prev) != 0) {
			json_decref(j);
			snprintf(why, whylen, "line %lld: prev does not match the hash of line %lld (journal edited)",
				 lineno, lineno - 1);
			goto fail;
		}
		line_hash((const char *)buf + start, n, prev);
		json_array_append_new(arr, j);
		start += n + 1;
	}
	free(buf);
	return arr;
fail:
	free(buf);
	json_decref(arr);
	return NULL;
}
