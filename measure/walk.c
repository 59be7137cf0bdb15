/* The tree walk: list directories breadth-first on the calling thread while a pool of
 * hashing threads works through the regular files found so far.
 *
 * - Entries live in stable-address blocks (struct ents); the walker publishes a prefix
 *   [0, published) under the mutex, workers claim small batches of that prefix (a few
 *   files or ~256 KiB, whichever comes first) so per-file hand-off costs one uncontended
 *   lock per batch, not one per file.
 * - Every open is relative to the root fd: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 *   where the kernel has it (no symlink anywhere in the path, nothing outside the root),
 *   openat(O_NOFOLLOW) otherwise. Files are opened O_NOATIME when permitted.
 * - A file is hashed with one EVP context per thread and 64 KiB reads; a short read that
 *   completes the size seen by the walk ends the file (no extra read for small files).
 *   The inode, type and size must match what the walk saw, else MEASURE_ERR_CHANGED. */
#include "measure/measure-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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

struct walk {
	int rootfd;
	uint64_t root_dev;
	int cross_mounts;
	const struct excludes *x;
	struct ents ents;
	struct arena arena;
	uint64_t sockets;
	EVP_MD *md;

	pthread_mutex_t mu;
	pthread_cond_t cv_work; /* more entries published, walk done, or failure */
	pthread_cond_t cv_done; /* a worker finished */
	size_t published, next;
	int walk_done, running, waiting;
	struct measure_error err; /* the first error */
	atomic_int failed;

	atomic_uint_fast64_t files_done, bytes_done;
	atomic_int no_openat2, no_noatime;

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
	pthread_mutex_unlock(&w->mu);
}

/* Open rel (no leading "/") below the root. */
static int open_below(struct walk *w, const char *rel, int flags, int dir)
{
	if (!atomic_load(&w->no_openat2)) {
		struct open_how how = {
			.flags = (uint64_t)flags,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
				   (dir && !w->cross_mounts ? RESOLVE_NO_XDEV : 0),
		};
		long fd = syscall(SYS_openat2, w->rootfd, rel, &how, sizeof how);
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)fd;
		if (errno == ENOSYS) /* EPERM: maybe a seccomp filter; try openat below */
			atomic_store(&w->no_openat2, 1);
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

static void hash_file(struct walk *w, struct ent *e, EVP_MD_CTX *ctx, uint8_t *buf)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	int fd = -1;
	struct stat st;
	uint64_t total = 0;
	char detail[128];

	if (!atomic_load(&w->no_noatime)) {
		fd = open_below(w, e->path + 1, flags | O_NOATIME, 0);
		if (fd < 0 && errno == EPERM)
			atomic_store(&w->no_noatime, 1);
	}
	if (fd < 0 && atomic_load(&w->no_noatime))
		fd = open_below(w, e->path + 1, flags, 0);
	if (fd < 0) {
		fail(w, errno == ENOENT ? MEASURE_ERR_CHANGED : MEASURE_ERR_IO, errno, e->path,
		     errno == ENOENT ? "vanished" : "open");
		return;
	}
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

	if (!ctx || !buf)
		fail(w, MEASURE_ERR_NOMEM, 0, NULL, "hashing thread");
	for (;;) {
		size_t start, end;
		uint64_t acc = 0;

		pthread_mutex_lock(&w->mu);
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
			if (e->type == MEASURE_TYPE_REG && !e->link)
				hash_file(w, e, ctx, buf);
		}
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	pthread_mutex_lock(&w->mu);
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
		if (statx(dirfd(dir), de->d_name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &sx) != 0) {
			fail(w, errno == ENOENT ? MEASURE_ERR_CHANGED : MEASURE_ERR_IO, errno, path,
			     errno == ENOENT ? "vanished" : "stat");
			goto fail;
		}
		if (S_ISSOCK(sx.stx_mode)) {
			w->sockets++;
			continue;
		}
		if (!(e = ents_add(&w->ents, &rc))) {
			fail(w, rc, 0, path, NULL);
			goto fail;
		}
		if (!(e->path = arena_strndup(&w->arena, path, plen))) {
			fail(w, MEASURE_ERR_NOMEM, 0, path, NULL);
			goto fail;
		}
		e->path_len = (uint32_t)plen;
		e->mode = sx.stx_mode & 07777;
		e->uid = sx.stx_uid;
		e->gid = sx.stx_gid;
		e->dev = (uint64_t)makedev(sx.stx_dev_major, sx.stx_dev_minor);
		e->ino = (uint64_t)sx.stx_ino;
		e->parent = (uint32_t)di;
		switch (sx.stx_mode & S_IFMT) {
		case S_IFREG: {
			long l = 0;
			e->type = MEASURE_TYPE_REG;
			e->size = (uint64_t)sx.stx_size;
			if (sx.stx_nlink > 1 && (l = link_of(w, e, w->ents.n - 1)) < 0) {
				fail(w, MEASURE_ERR_NOMEM, 0, path, NULL);
				goto fail;
			}
			e->link = (uint32_t)l;
			break;
		}
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
fail:
	closedir(dir);
	return -1;
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
	double next_report = 0;

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
	next_report = now() + 0.25;
	for (size_t i = 0; i < w.ents.n && !atomic_load(&w.failed); i++) {
		struct ent *d = ents_at(&w.ents, i);
		if (d->type != MEASURE_TYPE_DIR || !d->scan)
			continue;
		if (list_dir(&w, i) != 0)
			break;
		publish(&w, 0);
		if (opts && opts->progress && (i & 63) == 0 && now() >= next_report) {
			opts->progress(opts->ud, atomic_load(&w.files_done), atomic_load(&w.bytes_done), w.ents.n, 0);
			next_report = now() + 0.25;
		}
	}
	publish(&w, 1);
	pthread_mutex_lock(&w.mu);
	while (w.running > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
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
	if (atomic_load(&w.failed)) {
		rc = w.err.code;
		if (err)
			*err = w.err;
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
	rc = manifest_build(&w.ents, &x, w.sockets, ret, err);
out:
	if (w.rootfd >= 0)
		close(w.rootfd);
	EVP_MD_free(w.md);
	ents_free(&w.ents);
	arena_free(&w.arena);
	free(w.links);
	excludes_free(&x);
	pthread_cond_destroy(&w.cv_done);
	pthread_cond_destroy(&w.cv_work);
	pthread_mutex_destroy(&w.mu);
	return rc;
}
