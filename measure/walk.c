/* The tree walk: list directories depth-first on the calling thread while a pool of
 * hashing threads works through the regular files found so far.
 *
 * - Entries live in stable-address blocks (struct ents); the walker publishes a prefix
 *   [0, published) under the mutex, workers claim small batches of that prefix (a few
 *   files or ~256 KiB, whichever comes first) so per-file hand-off costs one uncontended
 *   lock per batch, not one per file.
 * - Directories are opened relative to the root fd: openat2(RESOLVE_BENEATH |
 *   RESOLVE_NO_SYMLINKS) where the kernel has it (no symlink anywhere in the path, nothing
 *   outside the root), openat(O_NOFOLLOW) otherwise.
 * - A regular file is opened by the walker while it lists the file's directory: one
 *   openat(dirfd, name, O_NOFOLLOW | O_NOATIME where permitted) and an fstat, which give
 *   the record's metadata and the descriptor handed to a worker. That replaces a statx by
 *   name plus a second, whole-path open in the worker (the per-file kernel cost that
 *   dominated small files). At most max_fds such descriptors are outstanding; the walker
 *   waits for the workers when it gets that far ahead.
 * - The worker fstats the descriptor again before hashing: the size must be the one the
 *   walk saw and the file must still have a name (else MEASURE_ERR_CHANGED: "size was",
 *   "vanished"). It hashes with one EVP context per thread and 64 KiB reads; a short read
 *   that completes the size ends the file (no extra read for small files).
 * - While the workers have more than max_fds / 2 files queued, the walker hashes files of
 *   at most 64 KiB itself right after opening them (same checks, no second fstat): that
 *   keeps each such file's kernel objects on one CPU. */
#include "measure/measure-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define READ_BUF (64u * 1024)
#define BATCH_FILES 16
#define BATCH_BYTES (256u * 1024)
#define MAX_JOBS 256
#define SMALL_FILE (64u * 1024)

struct walk {
	int rootfd;
	uint64_t root_dev;
	int cross_mounts;
	const struct excludes *x;
	struct ents ents;
	struct arena arena;
	uint64_t sockets;
	EVP_MD *md;
	EVP_MD_CTX *wctx; /* the walker's, for small files it hashes itself */
	uint8_t *wbuf;

	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* more entries published, walk done, or failure */
	pthread_cond_t cv_done; /* a worker finished */
	pthread_cond_t cv_fds;  /* workers closed descriptors the walker waits for, or failure */
	size_t published, next;
	int walk_done, running, waiting, walker_waiting;
	uint64_t wake_closed; /* wake the waiting walker once fds_closed reaches this */
	const struct measure_opts *opts; /* progress callback (walker only) */
	double next_report;
	struct measure_error err; /* the first error */
	atomic_int failed;

	/* Descriptors of files to hash: opened by the walker (walker only), closed by the
	 * workers (under mu). The walker stays below max_fds outstanding. */
	uint64_t fds_opened, max_fds;
	atomic_uint_fast64_t fds_closed;

	atomic_uint_fast64_t files_done, bytes_done;
	int no_openat2, no_noatime; /* walker only */

	/* (dev, ino) -> entry index of regular files with more than one link (walker only):
	 * a hard link is hashed once. */
	uint32_t *links; /* entry index + 1, 0 = empty */
	size_t links_cap, links_used;
};

static size_t inode_slot(uint64_t dev, uint64_t ino, size_t cap)
{
	uint64_t h = (ino ^ (dev * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	return (size_t)(h >> 17) & (cap - 1);
}

/* The earlier entry for e's inode (index + 1), or 0 after remembering e (index i). -1: no memory. */
static long link_of(struct walk *w, const struct ent *e, size_t i)
{
	size_t j;
	if ((w->links_used + 1) * 2 > w->links_cap) {
		size_t ncap = w->links_cap ? w->links_cap * 2 : 256;
		uint32_t *n = calloc(ncap, sizeof *n);
		if (!n)
			return -1;
		for (size_t k = 0; k < w->links_cap; k++) {
			const struct ent *x;
			if (!w->links[k])
				continue;
			x = ents_at(&w->ents, w->links[k] - 1);
			for (j = inode_slot(x->dev, x->ino, ncap); n[j]; j = (j + 1) & (ncap - 1))
				;
			n[j] = w->links[k];
		}
		free(w->links);
		w->links = n;
		w->links_cap = ncap;
	}
	for (j = inode_slot(e->dev, e->ino, w->links_cap); w->links[j]; j = (j + 1) & (w->links_cap - 1)) {
		const struct ent *x = ents_at(&w->ents, w->links[j] - 1);
		if (x->dev == e->dev && x->ino == e->ino)
			return (long)w->links[j];
	}
	w->links[j] = (uint32_t)i + 1;
	w->links_used++;
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Record the first failure; later ones are dropped. */
static void fail(struct walk *w, enum measure_err code, int sys_errno, const char *path, const char *detail)
{
	pthread_mutex_lock(&w->mu);
	if (!atomic_load(&w->failed)) {
		seterr(&w->err, code, sys_errno, path, path ? strlen(path) : 0, detail ? "%s" : NULL, detail);
		atomic_store(&w->failed, 1);
	}
	pthread_cond_broadcast(&w->cv_work);
	pthread_cond_broadcast(&w->cv_fds);
	pthread_mutex_unlock(&w->mu);
}

/* Open rel (no leading "/") below the root. */
static int open_below(struct walk *w, const char *rel, int flags, int dir)
{
	if (!w->no_openat2) {
		struct open_how how = {
			.flags = (uint64_t)flags,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
				   (dir && !w->cross_mounts ? RESOLVE_NO_XDEV : 0),
		};
		long fd = syscall(SYS_openat2, w->rootfd, rel, &how, sizeof how);
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)fd;
		if (errno == ENOSYS) /* EPERM: maybe a seccomp filter; try openat below */
			w->no_openat2 = 1;
	}
	return openat(w->rootfd, rel, flags);
}

/* A sparse file (fewer blocks than its size): hash its holes from a zero buffer instead of
 * reading them (reading a hole makes the kernel fill page cache with zeros). Returns 0 with
 * *ret_total bytes hashed, 1 if SEEK_DATA is not supported (nothing hashed yet), -1 after
 * fail(). */
static int hash_sparse(struct walk *w, struct ent *e, int fd, EVP_MD_CTX *ctx, uint8_t *buf, uint64_t *ret_total)
{
	static const uint8_t zeros[READ_BUF];
	uint64_t off = 0;
	struct stat st;

	while (off < e->size) {
		off_t data = lseek(fd, (off_t)off, SEEK_DATA), hole;
		uint64_t d = (uint64_t)data, h;
		if (data < 0) {
			if (errno == EINVAL && off == 0)
				return 1;
			if (errno != ENXIO) {
				fail(w, MEASURE_ERR_IO, errno, e->path, "lseek");
				return -1;
			}
			d = e->size; /* only a hole is left */
		}
		if (d > e->size)
			d = e->size;
		while (off < d) {
			size_t n = d - off < READ_BUF ? (size_t)(d - off) : READ_BUF;
			EVP_DigestUpdate(ctx, zeros, n);
			off += n;
		}
		if (off >= e->size)
			break;
		if ((hole = lseek(fd, (off_t)off, SEEK_HOLE)) < 0) {
			fail(w, MEASURE_ERR_IO, errno, e->path, "lseek");
			return -1;
		}
		h = (uint64_t)hole < e->size ? (uint64_t)hole : e->size;
		while (off < h) {
			size_t want = h - off < READ_BUF ? (size_t)(h - off) : READ_BUF;
			ssize_t r = pread(fd, buf, want, (off_t)off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				fail(w, MEASURE_ERR_IO, errno, e->path, "read");
				return -1;
			}
			if (r == 0) {
				fail(w, MEASURE_ERR_CHANGED, 0, e->path, "file shrank while hashing");
				return -1;
			}
			EVP_DigestUpdate(ctx, buf, (size_t)r);
			off += (uint64_t)r;
		}
		if (atomic_load_explicit(&w->failed, memory_order_relaxed))
			return -1;
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != e->size) {
		fail(w, MEASURE_ERR_CHANGED, 0, e->path, "size changed while hashing");
		return -1;
	}
	*ret_total = off;
	return 0;
}

/* Hash e's content from the descriptor the walker opened; closes it. recheck: fstat it first
 * (the walk opened it a while ago); 0 when the walker hashes a file it has just opened. */
static void hash_file(struct walk *w, struct ent *e, EVP_MD_CTX *ctx, uint8_t *buf, int recheck)
{
	int fd = e->fd1 - 1;
	struct stat st;
	uint64_t total = 0;
	char detail[128];

	e->fd1 = 0;
	if (!recheck)
		goto hash;
	if (fstat(fd, &st) != 0) {
		fail(w, MEASURE_ERR_IO, errno, e->path, "fstat");
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_ino != e->ino || (uint64_t)st.st_dev != e->dev) {
		fail(w, MEASURE_ERR_CHANGED, 0, e->path, "replaced by another file");
		goto out;
	}
	if ((uint64_t)st.st_size != e->size) {
		snprintf(detail, sizeof detail, "size was %llu, now %llu", (unsigned long long)e->size,
			 (unsigned long long)st.st_size);
		fail(w, MEASURE_ERR_CHANGED, 0, e->path, detail);
		goto out;
	}
	if (e->linked && st.st_nlink == 0) { /* unlinked since the walk opened it */
		fail(w, MEASURE_ERR_CHANGED, 0, e->path, "vanished");
		goto out;
	}
hash:
	if (e->size > 4 * READ_BUF)
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!EVP_DigestInit_ex(ctx, w->md, NULL)) {
		fail(w, MEASURE_ERR_NOMEM, 0, e->path, "EVP_DigestInit_ex");
		goto out;
	}
	if (e->size > 16 * (uint64_t)READ_BUF && (uint64_t)st.st_blocks * 512 < e->size) {
		int s = hash_sparse(w, e, fd, ctx, buf, &total);
		if (s < 0)
			goto out;
		if (s == 0)
			goto done;
	}
	for (;;) {
		ssize_t r = read(fd, buf, READ_BUF);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(w, MEASURE_ERR_IO, errno, e->path, "read");
			goto out;
		}
		if (r == 0)
			break;
		total += (uint64_t)r;
		if (total > e->size)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
		if ((size_t)r < READ_BUF && total == e->size)
			break; /* a short read of a regular file is its end */
		if (atomic_load_explicit(&w->failed, memory_order_relaxed))
			goto out;
	}
done:
	if (total != e->size) {
		snprintf(detail, sizeof detail, "size changed while hashing: %llu bytes expected, %s%llu read",
			 (unsigned long long)e->size, total > e->size ? "more than " : "",
			 (unsigned long long)(total > e->size ? e->size : total));
		fail(w, MEASURE_ERR_CHANGED, 0, e->path, detail);
		goto out;
	}
	EVP_DigestFinal_ex(ctx, e->digest, NULL);
	atomic_fetch_add_explicit(&w->files_done, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->bytes_done, total, memory_order_relaxed);
out:
	close(fd);
}

static void *worker(void *arg)
{
	struct walk *w = arg;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t *buf = aligned_alloc(4096, READ_BUF);
	uint64_t closed = 0;

	if (!ctx || !buf)
		fail(w, MEASURE_ERR_NOMEM, 0, NULL, "hashing thread");
	for (;;) {
		size_t start, end;
		uint64_t acc = 0;

		pthread_mutex_lock(&w->mu);
		atomic_fetch_add(&w->fds_closed, closed);
		closed = 0;
		if (w->walker_waiting && atomic_load(&w->fds_closed) >= w->wake_closed)
			pthread_cond_signal(&w->cv_fds);
		while (!atomic_load(&w->failed) && w->next >= w->published && !w->walk_done) {
			w->waiting++;
			pthread_cond_wait(&w->cv_work, &w->mu);
			w->waiting--;
		}
		if (atomic_load(&w->failed) || w->next >= w->published) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		start = end = w->next;
		while (end < w->published && end - start < BATCH_FILES && acc < BATCH_BYTES) {
			const struct ent *e = ents_at(&w->ents, end);
			if (e->type == MEASURE_TYPE_REG)
				acc += e->size + 4096;
			end++;
		}
		w->next = end;
		pthread_mutex_unlock(&w->mu);
		for (size_t i = start; i < end && !atomic_load_explicit(&w->failed, memory_order_relaxed); i++) {
			struct ent *e = ents_at(&w->ents, i);
			if (e->fd1) {
				hash_file(w, e, ctx, buf, 1);
				closed++;
			}
		}
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	pthread_mutex_lock(&w->mu);
	atomic_fetch_add(&w->fds_closed, closed);
	w->running--;
	pthread_cond_broadcast(&w->cv_done);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void publish(struct walk *w, int done)
{
	pthread_mutex_lock(&w->mu);
	w->published = w->ents.n;
	if (done)
		w->walk_done = 1;
	if (w->waiting)
		pthread_cond_broadcast(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
}

/* The progress callback, at most every 250 ms (walker only; not under the mutex). */
static void report(struct walk *w)
{
	if (!w->opts || !w->opts->progress || now() < w->next_report)
		return;
	w->opts->progress(w->opts->ud, atomic_load(&w->files_done), atomic_load(&w->bytes_done), w->ents.n, 0);
	w->next_report = now() + 0.25;
}

/* Waits on condition variables wake at least every 250 ms, so progress lines keep coming and a
 * lost wake-up costs a quarter of a second, never a hang. */
static void quarter_second_from_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += 250000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Before opening another file: if max_fds descriptors are outstanding, publish what is
 * listed so far (complete entries only) and wait until the workers have closed half of
 * them (one wake-up per max_fds / 2 files, not one per batch). Returns 0, or -1 on failure
 * elsewhere. */
static int reserve_fd(struct walk *w)
{
	int rc = 0;

	/* fds_closed only grows: a stale value errs on the side of waiting */
	if (w->fds_opened - atomic_load_explicit(&w->fds_closed, memory_order_relaxed) < w->max_fds)
		return 0;
	publish(w, 0);
	pthread_mutex_lock(&w->mu);
	w->wake_closed = w->fds_opened - w->max_fds / 2;
	while (!atomic_load(&w->failed) && atomic_load(&w->fds_closed) < w->wake_closed) {
		struct timespec ts;
		quarter_second_from_now(&ts);
		w->walker_waiting = 1;
		pthread_cond_timedwait(&w->cv_fds, &w->mu, &ts);
		w->walker_waiting = 0;
		if (w->opts && w->opts->progress) { /* a long wait inside one big directory */
			pthread_mutex_unlock(&w->mu);
			report(w);
			pthread_mutex_lock(&w->mu);
		}
	}
	if (atomic_load(&w->failed))
		rc = -1;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Open name (a regular file per readdir or statx) in directory dfd. Returns 1 with *ret_fd
 * and *st of an open regular file, 0 if name is not (or no longer) a regular file, -1 after
 * fail(). */
static int open_reg(struct walk *w, int dfd, const char *name, const char *path, int *ret_fd, struct stat *st)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	int fd = -1;

	if (reserve_fd(w) != 0)
		return -1;
	if (!w->no_noatime) {
		fd = openat(dfd, name, flags | O_NOATIME);
		if (fd < 0 && errno == EPERM) /* not the owner and no CAP_FOWNER */
			w->no_noatime = 1;
	}
	if (fd < 0 && w->no_noatime)
		fd = openat(dfd, name, flags);
	if (fd < 0) {
		if (errno == ELOOP) /* a symlink now */
			return 0;
		fail(w, errno == ENOENT ? MEASURE_ERR_CHANGED : MEASURE_ERR_IO, errno, path,
		     errno == ENOENT ? "vanished" : "open");
		return -1;
	}
	if (fstat(fd, st) != 0) {
		fail(w, MEASURE_ERR_IO, errno, path, "fstat");
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return 0;
	}
	w->fds_opened++;
	*ret_fd = fd;
	return 1;
}

/* Fill e (just added for path) as the regular file open as fd; keeps fd for a worker, or
 * closes it when e is a hard link to a file already listed. Returns 0, or -1 after fail(). */
static int add_reg(struct walk *w, struct ent *e, const char *path, int fd, const struct stat *st)
{
	long l = 0;

	e->type = MEASURE_TYPE_REG;
	e->mode = st->st_mode & 07777;
	e->uid = st->st_uid;
	e->gid = st->st_gid;
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	e->size = (uint64_t)st->st_size;
	e->linked = st->st_nlink > 0;
	e->fd1 = fd + 1;
	if (st->st_nlink > 1 && (l = link_of(w, e, w->ents.n - 1)) < 0) {
		fail(w, MEASURE_ERR_NOMEM, 0, path, NULL);
		return -1;
	}
	if (l) { /* content hashed once, from the first name */
		e->link = (uint32_t)l;
		e->fd1 = 0;
		close(fd);
		w->fds_opened--;
	} else if (e->size <= SMALL_FILE && w->wctx && w->wbuf &&
		   w->fds_opened - atomic_load_explicit(&w->fds_closed, memory_order_relaxed) > w->max_fds / 2) {
		/* The workers have plenty queued: hash a small file here, on the CPU that just
		 * opened it (no second fstat, no file, inode and page cache lines moving to
		 * another CPU). When they have little queued, the file goes to them instead, so
		 * a tree of only small files is still hashed in parallel. */
		w->fds_opened--;
		hash_file(w, e, w->wctx, w->wbuf, 0);
		if (atomic_load_explicit(&w->failed, memory_order_relaxed))
			return -1;
	}
	return 0;
}

static int is_loop(const struct walk *w, const struct ent *e, size_t parent)
{
	for (size_t p = parent;; p = ents_at(&w->ents, p)->parent) {
		const struct ent *a = ents_at(&w->ents, p);
		if (a->dev == e->dev && a->ino == e->ino)
			return 1;
		if (p == 0)
			return 0;
	}
}

/* List directory entry di: append its children. Returns 0, or -1 after fail(). */
static int list_dir(struct walk *w, size_t di)
{
	const struct ent *d = ents_at(&w->ents, di);
	const char *dpath = d->path;
	size_t dlen = d->path_len == 1 ? 0 : d->path_len; /* "/" contributes no prefix */
	uint64_t ddev = d->dev, dino = d->ino;
	int fd;
	DIR *dir;
	struct dirent *de;
	struct stat st;
	struct statx sx;
	char path[MEASURE_MAX_PATH + 2];
	char target[MEASURE_MAX_PATH + 1];
	enum measure_err rc = MEASURE_OK;
	int ffd = -1, have_fd = 0;

	fd = di == 0 ? openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
		     : open_below(w, dpath + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 1);
	if (fd < 0) {
		fail(w, errno == ENOENT ? MEASURE_ERR_CHANGED : MEASURE_ERR_IO, errno, dpath,
		     errno == ENOENT ? "vanished" : "open directory");
		return -1;
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != ddev || (uint64_t)st.st_ino != dino) {
		close(fd);
		fail(w, MEASURE_ERR_CHANGED, 0, dpath, "directory replaced");
		return -1;
	}
	if (!(dir = fdopendir(fd))) {
		fail(w, MEASURE_ERR_IO, errno, dpath, "fdopendir");
		close(fd);
		return -1;
	}
	memcpy(path, dpath, dlen);
	for (;;) {
		struct ent *e;
		size_t nl, plen;
		errno = 0;
		if (!(de = readdir(dir))) {
			if (errno) {
				fail(w, MEASURE_ERR_IO, errno, dpath, "readdir");
				goto fail;
			}
			break;
		}
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		nl = strlen(de->d_name);
		plen = dlen + 1 + nl;
		if (plen > MEASURE_MAX_PATH) { /* name the path as far as it fits */
			size_t room = dlen + 1 < MEASURE_MAX_PATH ? MEASURE_MAX_PATH - dlen - 1 : 0;
			path[dlen] = '/';
			memcpy(path + dlen + 1, de->d_name, room < nl ? room : nl);
			path[MEASURE_MAX_PATH] = 0;
			fail(w, MEASURE_ERR_PATH_TOO_LONG, 0, path, NULL);
			goto fail;
		}
		path[dlen] = '/';
		memcpy(path + dlen + 1, de->d_name, nl + 1);
		if (w->x->n && excludes_exact(w->x, path, plen))
			continue;
		/* A regular file is opened here (its descriptor goes to a worker); anything else,
		 * or a name readdir cannot type, is classified by statx first. */
		have_fd = 0;
		if (de->d_type == DT_REG && (have_fd = open_reg(w, dirfd(dir), de->d_name, path, &ffd, &st)) < 0)
			goto fail;
		if (!have_fd) {
			if (statx(dirfd(dir), de->d_name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS,
				  &sx) != 0) {
				fail(w, errno == ENOENT ? MEASURE_ERR_CHANGED : MEASURE_ERR_IO, errno, path,
				     errno == ENOENT ? "vanished" : "stat");
				goto fail;
			}
			if (S_ISSOCK(sx.stx_mode)) {
				w->sockets++;
				continue;
			}
			if (S_ISREG(sx.stx_mode)) {
				if ((have_fd = open_reg(w, dirfd(dir), de->d_name, path, &ffd, &st)) < 0)
					goto fail;
				if (!have_fd) {
					fail(w, MEASURE_ERR_CHANGED, 0, path, "replaced while being listed");
					goto fail;
				}
			}
		}
		if (!(e = ents_add(&w->ents, &rc))) {
			fail(w, rc, 0, path, NULL);
			goto fail_fd;
		}
		if (!(e->path = arena_strndup(&w->arena, path, plen))) {
			fail(w, MEASURE_ERR_NOMEM, 0, path, NULL);
			goto fail_fd;
		}
		e->path_len = (uint32_t)plen;
		e->parent = (uint32_t)di;
		if (have_fd) {
			if (add_reg(w, e, path, ffd, &st) != 0)
				goto fail;
			continue;
		}
		e->mode = sx.stx_mode & 07777;
		e->uid = sx.stx_uid;
		e->gid = sx.stx_gid;
		e->dev = (uint64_t)makedev(sx.stx_dev_major, sx.stx_dev_minor);
		e->ino = (uint64_t)sx.stx_ino;
		switch (sx.stx_mode & S_IFMT) {
		case S_IFREG: /* handled above */
			fail(w, MEASURE_ERR_CHANGED, 0, path, "replaced while being listed");
			goto fail;
		case S_IFDIR:
			e->type = MEASURE_TYPE_DIR;
			/* A mount point is recorded (as the mounted root looks) but not entered. Bind
			 * mounts of the same file system keep st_dev: STATX_ATTR_MOUNT_ROOT tells. */
			e->scan = w->cross_mounts ||
				  (e->dev == w->root_dev && !((sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
							      (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT)));
			if (w->cross_mounts && is_loop(w, e, di)) {
				fail(w, MEASURE_ERR_LOOP, 0, path, NULL);
				goto fail;
			}
			break;
		case S_IFLNK: {
			ssize_t n = readlinkat(dirfd(dir), de->d_name, target, sizeof target);
			if (n < 0) {
				fail(w, MEASURE_ERR_IO, errno, path, "readlink");
				goto fail;
			}
			if ((size_t)n >= sizeof target) {
				fail(w, MEASURE_ERR_PATH_TOO_LONG, 0, path, "symlink target");
				goto fail;
			}
			e->type = MEASURE_TYPE_SYMLINK;
			e->size = (uint64_t)n;
			sha256_buf(target, (size_t)n, e->digest);
			break;
		}
		case S_IFCHR:
		case S_IFBLK:
			e->type = S_ISCHR(sx.stx_mode) ? MEASURE_TYPE_CHR : MEASURE_TYPE_BLK;
			device_digest(sx.stx_rdev_major, sx.stx_rdev_minor, e->digest);
			break;
		case S_IFIFO:
			e->type = MEASURE_TYPE_FIFO;
			break;
		default:
			fail(w, MEASURE_ERR_IO, 0, path, "unknown file type");
			goto fail;
		}
	}
	closedir(dir);
	return 0;
fail_fd:
	if (have_fd) { /* not in an entry yet */
		close(ffd);
		w->fds_opened--;
	}
fail:
	closedir(dir);
	return -1;
}

/* Directory entries still to list (indices). */
struct stack {
	size_t *v;
	size_t n, cap;
};

static int stack_push(struct stack *s, size_t i)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		size_t *n = realloc(s->v, ncap * sizeof *n);
		if (!n)
			return -1;
		s->v = n;
		s->cap = ncap;
	}
	s->v[s->n++] = i;
	return 0;
}

/* How many file descriptors the walker may keep open for the workers: half of the soft
 * RLIMIT_NOFILE less some for everything else, at most 992, at least 1. Enough queued work
 * for any number of workers (each takes at most BATCH_FILES at a time). */
static uint64_t fd_budget(void)
{
	struct rlimit rl;
	uint64_t n = 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < n)
		n = rl.rlim_cur / 2;
	if (n > 64)
		return n - 32;
	return n > 3 ? n - 2 : 1;
}

enum measure_err measure_tree(const char *root, const struct measure_opts *opts, struct measure_manifest **ret,
			      struct measure_error *err)
{
	struct walk w;
	struct excludes x;
	struct stat st;
	pthread_t tid[MAX_JOBS];
	unsigned jobs = opts && opts->jobs ? opts->jobs : 0, started = 0;
	struct ent *e;
	enum measure_err rc = MEASURE_OK;
	struct stack dirs = {0};
	struct order order = {0};
	enum measure_err sort_rc = MEASURE_OK;
	struct measure_error sort_err;

	memset(&w, 0, sizeof w);
	w.rootfd = -1;
	if (!root || !ret)
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, NULL);
	if ((rc = excludes_init(&x, opts, err)) != MEASURE_OK)
		return rc;
	if (!jobs) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		jobs = n > 0 ? (unsigned)n : 1;
	}
	if (jobs > MAX_JOBS)
		jobs = MAX_JOBS;
	w.x = &x;
	w.cross_mounts = opts && opts->cross_mounts;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv_work, NULL);
	pthread_cond_init(&w.cv_done, NULL);
	pthread_cond_init(&w.cv_fds, NULL);
	w.max_fds = fd_budget();
	if (ents_init(&w.ents) != 0 || !(w.md = EVP_MD_fetch(NULL, "SHA256", NULL))) {
		rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
		goto out;
	}
	w.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.rootfd < 0 || fstat(w.rootfd, &st) != 0) {
		rc = seterr(err, MEASURE_ERR_IO, errno, root, strlen(root), "open root");
		goto out;
	}
	w.root_dev = (uint64_t)st.st_dev;
	w.wctx = EVP_MD_CTX_new();
	w.wbuf = aligned_alloc(4096, READ_BUF);
	if (!(e = ents_add(&w.ents, &rc)) || !(e->path = arena_strndup(&w.arena, "/", 1))) {
		rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
		goto out;
	}
	e->path_len = 1;
	e->type = MEASURE_TYPE_DIR;
	e->scan = 1;
	e->mode = st.st_mode & 07777;
	e->uid = st.st_uid;
	e->gid = st.st_gid;
	e->dev = (uint64_t)st.st_dev;
	e->ino = (uint64_t)st.st_ino;

	w.running = (int)jobs;
	for (; started < jobs; started++)
		if (pthread_create(&tid[started], NULL, worker, &w) != 0)
			break;
	if (started < jobs) {
		pthread_mutex_lock(&w.mu);
		w.running -= (int)(jobs - started);
		pthread_mutex_unlock(&w.mu);
		if (!started) {
			fail(&w, MEASURE_ERR_THREAD, errno, NULL, NULL);
		}
	}
	w.opts = opts;
	w.next_report = now() + 0.25;
	/* Depth first (a stack of directories still to list), so that the first files reach
	 * the workers after a few listings rather than after a whole level of the tree. */
	if (stack_push(&dirs, 0) != 0)
		fail(&w, MEASURE_ERR_NOMEM, 0, NULL, NULL);
	for (size_t listed = 0; dirs.n && !atomic_load(&w.failed); listed++) {
		size_t i = dirs.v[--dirs.n], first = w.ents.n;
		if (list_dir(&w, i) != 0)
			break;
		publish(&w, 0);
		for (size_t k = w.ents.n; k-- > first;) { /* pushed last to first: listed in readdir order */
			const struct ent *c = ents_at(&w.ents, k);
			if (c->type == MEASURE_TYPE_DIR && c->scan && stack_push(&dirs, k) != 0) {
				fail(&w, MEASURE_ERR_NOMEM, 0, c->path, NULL);
				break;
			}
		}
		if ((listed & 15) == 0)
			report(&w);
	}
	publish(&w, 1);
	/* The record order and lengths need no digest: work them out while the workers finish. */
	if (!atomic_load(&w.failed))
		sort_rc = manifest_order(&w.ents, &order, &sort_err);
	pthread_mutex_lock(&w.mu);
	while (w.running > 0) {
		struct timespec ts;
		quarter_second_from_now(&ts);
		pthread_cond_timedwait(&w.cv_done, &w.mu, &ts);
		if (opts && opts->progress && w.running > 0) {
			pthread_mutex_unlock(&w.mu);
			opts->progress(opts->ud, atomic_load(&w.files_done), atomic_load(&w.bytes_done), w.ents.n, 0);
			pthread_mutex_lock(&w.mu);
		}
	}
	pthread_mutex_unlock(&w.mu);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if (w.fds_opened != atomic_load(&w.fds_closed)) /* after a failure: files never hashed */
		for (size_t i = 0; i < w.ents.n; i++) {
			struct ent *f = ents_at(&w.ents, i);
			if (f->fd1) {
				close(f->fd1 - 1);
				f->fd1 = 0;
			}
		}
	if (atomic_load(&w.failed)) {
		rc = w.err.code;
		if (err)
			*err = w.err;
		goto out;
	}
	if (sort_rc != MEASURE_OK) {
		rc = sort_rc;
		if (err)
			*err = sort_err;
		goto out;
	}
	for (size_t i = 0; i < w.ents.n; i++) { /* hard links: the content hashed once */
		struct ent *l = ents_at(&w.ents, i);
		const struct ent *t;
		if (!l->link)
			continue;
		t = ents_at(&w.ents, l->link - 1);
		if (t->size != l->size) {
			rc = seterr(err, MEASURE_ERR_CHANGED, 0, l->path, l->path_len, "hard links of different sizes");
			goto out;
		}
		memcpy(l->digest, t->digest, MEASURE_DIGEST_LEN);
	}
	if (opts && opts->progress)
		opts->progress(opts->ud, atomic_load(&w.files_done), atomic_load(&w.bytes_done), w.ents.n, 1);
	rc = manifest_build_ordered(&w.ents, &order, &x, w.sockets, ret, err); /* frees order */
out:
	order_free(&order);
	if (w.rootfd >= 0)
		close(w.rootfd);
	EVP_MD_free(w.md);
	EVP_MD_CTX_free(w.wctx);
	free(w.wbuf);
	ents_free(&w.ents);
	arena_free(&w.arena);
	free(w.links);
	free(dirs.v);
	excludes_free(&x);
	pthread_cond_destroy(&w.cv_fds);
	pthread_cond_destroy(&w.cv_done);
	pthread_cond_destroy(&w.cv_work);
	pthread_mutex_destroy(&w.mu);
	return rc;
}
