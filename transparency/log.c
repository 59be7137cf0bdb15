/* The append-only log file of sluice-ts: STATE/log.
 *
 * Layout: a 16-byte magic "SLUICE-TS-LOG-1\n", then records
 *     u32 length (big endian) | leaf hash (32) | record (length bytes)
 * where record is the registered statement with its unprotected header emptied and the leaf
 * hash is SHA-256(0x00 || record) (RFC 9162), which doubles as the record's checksum.
 *
 * Appends come in batches: one write of all records, then one fdatasync; nothing is
 * acknowledged before the fdatasync returns. After a crash the file may end with a partial
 * record or one whose bytes did not all reach the disk; opening the log finds the first
 * record that is incomplete or whose hash does not match, truncates the file there, and
 * reports it. Records before that point were all verified, so every acknowledged entry
 * (which was fsync'd) survives. */
#include "transparency/ts-int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_LEN (4 + MERKLE_HASH_LEN)

struct ts_log {
	int fd;
	uint64_t size;      /* bytes */
	uint64_t *offsets;  /* file offset of each record's header */
	uint64_t count, cap;
	pthread_rwlock_t lock;
	int broken;
};

static int push_offset(struct ts_log *l, uint64_t off)
{
	if (l->count == l->cap) {
		uint64_t ncap = l->cap ? l->cap * 2 : 4096;
		uint64_t *n = realloc(l->offsets, ncap * sizeof *n);
		if (!n)
			return -1;
		l->offsets = n;
		l->cap = ncap;
	}
	l->offsets[l->count++] = off;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* The whole buffer, across short writes and EINTR; 0 or -1 with errno. */
int ts_write_all(int fd, const uint8_t *p, size_t len)
{
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

/* Scan the mapped file; returns the offset where valid data ends. */
static uint64_t scan(struct ts_log *l, const uint8_t *m, uint64_t size, struct merkle_tree *tree,
		     struct ts_log_recovery *rec, int *nomem)
{
	uint64_t off = TS_LOG_MAGIC_LEN;
	uint8_t leaf[MERKLE_HASH_LEN];

	while (off < size) {
		uint32_t len;
		if (size - off < HDR_LEN) {
			snprintf(rec->why, sizeof rec->why, "partial record header (%llu bytes)",
				 (unsigned long long)(size - off));
			return off;
		}
		len = (uint32_t)m[off] << 24 | (uint32_t)m[off + 1] << 16 | (uint32_t)m[off + 2] << 8 | m[off + 3];
		if (len == 0 || len > TS_LOG_MAX_RECORD) {
			snprintf(rec->why, sizeof rec->why, "bad record length %u", len);
			return off;
		}
		if (size - off - HDR_LEN < len) {
			snprintf(rec->why, sizeof rec->why, "partial record (%llu of %u bytes)",
				 (unsigned long long)(size - off - HDR_LEN), len);
			return off;
		}
		merkle_leaf_hash(m + off + HDR_LEN, len, leaf);
		if (memcmp(leaf, m + off + 4, MERKLE_HASH_LEN) != 0) {
			snprintf(rec->why, sizeof rec->why, "record %llu does not match its hash",
				 (unsigned long long)l->count);
			return off;
		}
		if (push_offset(l, off) != 0 || merkle_tree_append(tree, leaf) != MERKLE_OK) {
			*nomem = 1;
			return off;
		}
		off += HDR_LEN + len;
	}
	return off;
}

int ts_log_open(const char *dir, struct merkle_tree *tree, struct ts_log **ret, struct ts_log_recovery *rec,
		char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct ts_log *l = NULL;
	struct stat st;
	uint8_t *m = MAP_FAILED;
	int created = 0, nomem = 0, rc = -1;
	uint64_t good;

	memset(rec, 0, sizeof *rec);
	if (snprintf(path, sizeof path, "%s/log", dir) >= (int)sizeof path) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_rwlock_init(&l->lock, NULL);
	l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->fd < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		goto out;
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "%s is in use by another process (%s)", path,
			 errno == EWOULDBLOCK ? "locked" : strerror(errno));
		goto out;
	}
	if (fstat(l->fd, &st) != 0) {
		snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size < TS_LOG_MAGIC_LEN) {
		/* New log, or a crash while it was being created (only the magic can be there). */
		if (st.st_size > 0) {
			char head[TS_LOG_MAGIC_LEN];
			ssize_t r = pread(l->fd, head, (size_t)st.st_size, 0);
			if (r != st.st_size || memcmp(head, TS_LOG_MAGIC, (size_t)r) != 0) {
				snprintf(err, errlen, "%s is not a sluice-ts log", path);
				goto out;
			}
		}
		if (ftruncate(l->fd, 0) != 0 || pwrite(l->fd, TS_LOG_MAGIC, TS_LOG_MAGIC_LEN, 0) != TS_LOG_MAGIC_LEN ||
		    fsync(l->fd) != 0 || fsync_dir(dir) != 0) {
			snprintf(err, errlen, "initialise %s: %s", path, strerror(errno));
			goto out;
		}
		created = 1;
		st.st_size = TS_LOG_MAGIC_LEN;
	}
	if (!created) {
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, l->fd, 0);
		if (m == MAP_FAILED) {
			snprintf(err, errlen, "mmap %s: %s", path, strerror(errno));
			goto out;
		}
		if (memcmp(m, TS_LOG_MAGIC, TS_LOG_MAGIC_LEN) != 0) {
			snprintf(err, errlen, "%s is not a sluice-ts log (bad magic)", path);
			goto out;
		}
		good = scan(l, m, (uint64_t)st.st_size, tree, rec, &nomem);
		if (nomem) {
			snprintf(err, errlen, "out of memory while loading %s", path);
			goto out;
		}
		if (good < (uint64_t)st.st_size) {
			rec->truncated = (uint64_t)st.st_size - good;
			rec->truncated_at = good;
			if (ftruncate(l->fd, (off_t)good) != 0 || fsync(l->fd) != 0) {
				snprintf(err, errlen, "truncate torn tail of %s: %s", path, strerror(errno));
				goto out;
			}
			st.st_size = (off_t)good;
		}
	}
	l->size = (uint64_t)st.st_size;
	if (lseek(l->fd, (off_t)l->size, SEEK_SET) < 0) {
		snprintf(err, errlen, "seek %s: %s", path, strerror(errno));
		goto out;
	}
	rec->entries = l->count;
	rec->bytes = l->size;
	*ret = l;
	l = NULL;
	rc = 0;
out:
	if (m != MAP_FAILED)
		munmap(m, (size_t)st.st_size);
	ts_log_close(l);
	return rc;
}

void ts_log_close(struct ts_log *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->offsets);
	pthread_rwlock_destroy(&l->lock);
	free(l);
}

int ts_log_append(struct ts_log *l, const uint8_t *const *recs, const size_t *lens,
		  const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, char *err, size_t errlen)
{
	struct ts_buf b = {0};
	uint64_t off;
	int rc = -1;

	if (l->broken) {
		snprintf(err, errlen, "log is unusable after an earlier write error");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t h[4] = {(uint8_t)(lens[i] >> 24), (uint8_t)(lens[i] >> 16), (uint8_t)(lens[i] >> 8),
				(uint8_t)lens[i]};
		if (lens[i] == 0 || lens[i] > TS_LOG_MAX_RECORD) {
			snprintf(err, errlen, "record of %zu bytes out of range", lens[i]);
			goto out;
		}
		ts_buf_put(&b, h, 4);
		ts_buf_put(&b, leaves[i], MERKLE_HASH_LEN);
		ts_buf_put(&b, recs[i], lens[i]);
	}
	if (b.oom) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (ts_write_all(l->fd, b.p, b.len) != 0) {
		snprintf(err, errlen, "write log: %s", strerror(errno));
		l->broken = 1;
		goto out;
	}
	if (fdatasync(l->fd) != 0) {
		snprintf(err, errlen, "fdatasync log: %s", strerror(errno));
		l->broken = 1;
		goto out;
	}
	pthread_rwlock_wrlock(&l->lock);
	off = l->size;
	for (size_t i = 0; i < n; i++) {
		if (push_offset(l, off) != 0) {
			pthread_rwlock_unlock(&l->lock);
			snprintf(err, errlen, "out of memory");
			l->broken = 1;
			goto out;
		}
		off += HDR_LEN + lens[i];
	}
	l->size = off;
	pthread_rwlock_unlock(&l->lock);
	rc = 0;
out:
	ts_buf_free(&b);
	return rc;
}

uint64_t ts_log_count(struct ts_log *l)
{
	uint64_t c;
	pthread_rwlock_rdlock(&l->lock);
	c = l->count;
	pthread_rwlock_unlock(&l->lock);
	return c;
}

uint64_t ts_log_bytes(struct ts_log *l)
{
	uint64_t c;
	pthread_rwlock_rdlock(&l->lock);
	c = l->size;
	pthread_rwlock_unlock(&l->lock);
	return c;
}

int ts_log_read(struct ts_log *l, uint64_t index, uint8_t **ret, size_t *ret_len)
{
	uint64_t off;
	uint8_t h[4];
	uint32_t len;
	uint8_t *buf;

	pthread_rwlock_rdlock(&l->lock);
	if (index >= l->count) {
		pthread_rwlock_unlock(&l->lock);
		errno = ENOENT;
		return -1;
	}
	off = l->offsets[index];
	pthread_rwlock_unlock(&l->lock);
	if (pread(l->fd, h, 4, (off_t)off) != 4)
		return -1;
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	if (len == 0 || len > TS_LOG_MAX_RECORD) {
		errno = EIO;
		return -1;
	}
	buf = malloc(len);
	if (!buf)
		return -1;
	if (pread(l->fd, buf, len, (off_t)(off + HDR_LEN)) != (ssize_t)len) {
		free(buf);
		errno = EIO;
		return -1;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
