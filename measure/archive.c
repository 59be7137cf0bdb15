/* The archive walk: the same records out of a tar or cpio archive (libarchive), so reference
 * digests can be computed from an image at build time.
 *
 * Paths are normalised ("./a/b/" -> "/a/b", "." -> "/"); absolute paths and paths with "..",
 * "." or empty components are rejected, as are duplicate paths. Hard links take the content
 * of the inode they share: tar names an earlier path; cpio (newc) carries the data on the
 * last link of a group, so a group's digest is settled when the archive ends. */
#include "measure/measure-int.h"

#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#define READ_BUF (64u * 1024)

/* Path -> entry index, open addressing. */
struct index {
	uint32_t *slot; /* entry index + 1, 0 = empty */
	size_t cap, used;
};

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static long index_find(const struct index *ix, const struct ents *e, const char *p, size_t n)
{
	if (!ix->cap)
		return -1;
	for (size_t i = fnv(p, n) & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
		const struct ent *x;
		if (!ix->slot[i])
			return -1;
		x = ents_at(e, ix->slot[i] - 1);
		if (x->path_len == n && memcmp(x->path, p, n) == 0)
			return (long)(ix->slot[i] - 1);
	}
}

static int index_put(struct index *ix, const struct ents *e, size_t idx)
{
	const struct ent *x;
	if ((ix->used + 1) * 2 > ix->cap) {
		size_t ncap = ix->cap ? ix->cap * 2 : 1024;
		uint32_t *ns = calloc(ncap, sizeof *ns);
		if (!ns)
			return -1;
		for (size_t i = 0; i < ix->cap; i++) {
			if (!ix->slot[i])
				continue;
			x = ents_at(e, ix->slot[i] - 1);
			size_t j = fnv(x->path, x->path_len) & (ncap - 1);
			while (ns[j])
				j = (j + 1) & (ncap - 1);
			ns[j] = ix->slot[i];
		}
		free(ix->slot);
		ix->slot = ns;
		ix->cap = ncap;
	}
	x = ents_at(e, idx);
	size_t j = fnv(x->path, x->path_len) & (ix->cap - 1);
	while (ix->slot[j])
		j = (j + 1) & (ix->cap - 1);
	ix->slot[j] = (uint32_t)idx + 1;
	ix->used++;
	return 0;
}

/* Archive name -> "/"-rooted path in out (MEASURE_MAX_PATH + 1 bytes). */
static int normalise(const char *in, char *out, size_t *ret_len)
{
	size_t n = strlen(in), o = 0;
	const char *p = in, *end;

	if (n == 0 || in[0] == '/')
		return -1;
	while (n && in[n - 1] == '/')
		n--;
	end = in + n;
	/* Leading "./" (tar -C dir .) is the archive's way to say "relative to the root". */
	while (end - p >= 2 && p[0] == '.' && p[1] == '/') {
		p += 2;
		if (p < end && *p == '/')
			return -1; /* ".//x" */
	}
	if (p == end || (end - p == 1 && p[0] == '.')) {
		out[0] = '/';
		out[1] = 0;
		*ret_len = 1;
		return 0;
	}
	while (p < end) {
		const char *s = p;
		size_t c;
		while (p < end && *p != '/')
			p++;
		c = (size_t)(p - s);
		if (c == 0 || (c == 1 && s[0] == '.') || (c == 2 && s[0] == '.' && s[1] == '.'))
			return -1;
		if (o + 1 + c > MEASURE_MAX_PATH)
			return -2;
		out[o++] = '/';
		memcpy(out + o, s, c);
		o += c;
		if (p < end)
			p++;
	}
	out[o] = 0;
	*ret_len = o;
	return 0;
}

struct rd {
	struct archive *a;
	const struct measure_opts *opts;
	struct excludes x;
	struct ents ents;
	struct arena arena;
	struct index ix;
	uint64_t sockets, bytes;
	EVP_MD_CTX *ctx;
	uint8_t *buf;
	int links; /* some entry's content comes from a link group leader */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum measure_err arch_err(struct rd *r, struct measure_error *err, const char *path, size_t n, const char *what)
{
	const char *msg = archive_error_string(r->a);
	return seterr(err, MEASURE_ERR_ARCHIVE, archive_errno(r->a) > 0 ? archive_errno(r->a) : 0, path, n, "%s%s%s",
		      what, msg ? ": " : "", msg ? msg : "");
}

/* Hash the entry's data; *ret_n receives the byte count. */
static enum measure_err hash_data(struct rd *r, const char *path, size_t plen, uint8_t out[MEASURE_DIGEST_LEN],
				  uint64_t *ret_n, struct measure_error *err)
{
	uint64_t total = 0;

	if (!EVP_DigestInit_ex(r->ctx, EVP_sha256(), NULL))
		return seterr(err, MEASURE_ERR_NOMEM, 0, path, plen, "EVP_DigestInit_ex");
	for (;;) {
		la_ssize_t n = archive_read_data(r->a, r->buf, READ_BUF);
		if (n < 0)
			return arch_err(r, err, path, plen, "read data");
		if (n == 0)
			break;
		total += (uint64_t)n;
		r->bytes += (uint64_t)n;
		if (r->opts && r->opts->max_bytes && r->bytes > r->opts->max_bytes)
			return seterr(err, MEASURE_ERR_LIMIT, 0, path, plen, "more than %llu content bytes",
				      (unsigned long long)r->opts->max_bytes);
		EVP_DigestUpdate(r->ctx, r->buf, (size_t)n);
	}
	EVP_DigestFinal_ex(r->ctx, out, NULL);
	*ret_n = total;
	return MEASURE_OK;
}

static enum measure_err one_entry(struct rd *r, struct archive_entry *ae, struct measure_error *err)
{
	const char *name = archive_entry_pathname(ae);
	const char *link = archive_entry_hardlink(ae);
	char path[MEASURE_MAX_PATH + 1], lpath[MEASURE_MAX_PATH + 1];
	size_t plen = 0, llen = 0;
	struct ent *e;
	enum measure_err rc = MEASURE_OK;
	int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
	unsigned type;
	int nr;

	if (!name)
		return seterr(err, MEASURE_ERR_ARCHIVE, 0, NULL, 0, "entry without a path");
	if ((nr = normalise(name, path, &plen)) != 0)
		return seterr(err, nr == -2 ? MEASURE_ERR_PATH_TOO_LONG : MEASURE_ERR_BAD_PATH, 0, name, strlen(name), NULL);
	if (excludes_covers(&r->x, path, plen))
		return MEASURE_OK;
	if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX)
		return seterr(err, MEASURE_ERR_ARCHIVE, 0, path, plen, "owner out of range");
	if (index_find(&r->ix, &r->ents, path, plen) >= 0)
		return seterr(err, MEASURE_ERR_DUPLICATE, 0, path, plen, NULL);
	switch (archive_entry_filetype(ae)) {
	case AE_IFREG: type = MEASURE_TYPE_REG; break;
	case AE_IFDIR: type = MEASURE_TYPE_DIR; break;
	case AE_IFLNK: type = MEASURE_TYPE_SYMLINK; break;
	case AE_IFCHR: type = MEASURE_TYPE_CHR; break;
	case AE_IFBLK: type = MEASURE_TYPE_BLK; break;
	case AE_IFIFO: type = MEASURE_TYPE_FIFO; break;
	case AE_IFSOCK: r->sockets++; return MEASURE_OK;
	default:
		if (!link)
			return seterr(err, MEASURE_ERR_ARCHIVE, 0, path, plen, "unknown entry type 0%o",
				      (unsigned)archive_entry_filetype(ae));
		type = MEASURE_TYPE_REG; /* tar hard link entries carry no type */
	}
	if (!(e = ents_add(&r->ents, &rc)))
		return seterr(err, rc, 0, path, plen, NULL);
	e->path_len = (uint32_t)plen;
	if (!(e->path = arena_strndup(&r->arena, path, plen)) || index_put(&r->ix, &r->ents, r->ents.n - 1) != 0)
		return seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
	e->type = (uint8_t)type;
	e->mode = archive_entry_perm(ae) & 07777;
	e->uid = (uint32_t)uid;
	e->gid = (uint32_t)gid;
	e->parent = (uint32_t)(r->ents.n - 1); /* link group leader: itself */
	if (link) {
		long t;
		const struct ent *lead;
		if ((nr = normalise(link, lpath, &llen)) != 0)
			return seterr(err, MEASURE_ERR_BAD_PATH, 0, link, strlen(link), "hard link target");
		t = index_find(&r->ix, &r->ents, lpath, llen);
		if (t < 0 || (size_t)t == r->ents.n - 1)
			return seterr(err, MEASURE_ERR_HARDLINK, 0, path, plen, "%s %s", lpath,
				      excludes_covers(&r->x, lpath, llen) ? "is excluded: exclude its links too"
									  : "is not an earlier entry");
		lead = ents_at(&r->ents, ents_at(&r->ents, (size_t)t)->parent);
		if (lead->type != MEASURE_TYPE_REG)
			return seterr(err, MEASURE_ERR_HARDLINK, 0, path, plen, "%s is not a regular file", lpath);
		e->type = MEASURE_TYPE_REG;
		e->parent = ents_at(&r->ents, (size_t)t)->parent;
		r->links = 1;
		if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > 0) {
			/* cpio: the data travels with a later link; it becomes the group's content. */
			struct ent *l = ents_at(&r->ents, e->parent);
			uint8_t d[MEASURE_DIGEST_LEN];
			uint64_t n = 0;
			if ((rc = hash_data(r, path, plen, d, &n, err)) != MEASURE_OK)
				return rc;
			if (n != (uint64_t)archive_entry_size(ae))
				return seterr(err, MEASURE_ERR_ARCHIVE, 0, path, plen, "truncated data");
			if (l->size && (l->size != n || memcmp(l->digest, d, sizeof d) != 0))
				return seterr(err, MEASURE_ERR_HARDLINK, 0, path, plen, "links with different content");
			l->size = n;
			memcpy(l->digest, d, sizeof d);
		}
		return MEASURE_OK;
	}
	switch ((enum measure_type)type) {
	case MEASURE_TYPE_REG: {
		uint64_t n = 0;
		if ((rc = hash_data(r, path, plen, e->digest, &n, err)) != MEASURE_OK)
			return rc;
		if (archive_entry_size_is_set(ae) && n != (uint64_t)archive_entry_size(ae))
			return seterr(err, MEASURE_ERR_ARCHIVE, 0, path, plen, "data size %llu, header says %lld",
				      (unsigned long long)n, (long long)archive_entry_size(ae));
		e->size = n;
		break;
	}
	case MEASURE_TYPE_SYMLINK: {
		const char *target = archive_entry_symlink(ae);
		size_t tl = target ? strlen(target) : 0;
		if (!target)
			return seterr(err, MEASURE_ERR_ARCHIVE, 0, path, plen, "symlink without target");
		if (tl > MEASURE_MAX_PATH)
			return seterr(err, MEASURE_ERR_PATH_TOO_LONG, 0, path, plen, "symlink target");
		e->size = tl;
		sha256_buf(target, tl, e->digest);
		break;
	}
	case MEASURE_TYPE_CHR:
	case MEASURE_TYPE_BLK:
		device_digest(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae), e->digest);
		break;
	case MEASURE_TYPE_DIR:
	case MEASURE_TYPE_FIFO:
		break;
	}
	return MEASURE_OK;
}

static enum measure_err run(struct rd *r, const char *label, struct measure_manifest **ret, struct measure_error *err)
{
	enum measure_err rc = MEASURE_OK;
	double next_report = now() + 0.25;
	const struct measure_opts *o = r->opts;
	uint64_t files = 0;

	for (;;) {
		struct archive_entry *ae;
		int s = archive_read_next_header(r->a, &ae);
		if (s == ARCHIVE_EOF)
			break;
		if (s != ARCHIVE_OK)
			return arch_err(r, err, label, strlen(label), s == ARCHIVE_WARN ? "suspicious header" : "read header");
		if ((rc = one_entry(r, ae, err)) != MEASURE_OK)
			return rc;
		files++;
		if (o && o->progress && (files & 63) == 0 && now() >= next_report) {
			o->progress(o->ud, files, r->bytes, files, 0);
			next_report = now() + 0.25;
		}
	}
	if (r->links) /* settle link groups: every link has its leader's content */
		for (size_t i = 0; i < r->ents.n; i++) {
			struct ent *e = ents_at(&r->ents, i);
			const struct ent *l = ents_at(&r->ents, e->parent);
			if (l == e)
				continue;
			e->size = l->size;
			e->mode = l->mode;
			e->uid = l->uid;
			e->gid = l->gid;
			memcpy(e->digest, l->digest, MEASURE_DIGEST_LEN);
		}
	if (o && o->progress)
		o->progress(o->ud, files, r->bytes, files, 1);
	return manifest_build(&r->ents, &r->x, r->sockets, ret, err);
}

static enum measure_err measure_archive_common(const char *file, const void *buf, size_t len,
					       const struct measure_opts *opts, struct measure_manifest **ret,
					       struct measure_error *err)
{
	struct rd r;
	enum measure_err rc;
	const char *label = file ? file : "(archive in memory)";
	locale_t loc = (locale_t)0, old = (locale_t)0;

	memset(&r, 0, sizeof r);
	if (!ret || (!file && !buf))
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, NULL);
	r.opts = opts;
	if ((rc = excludes_init(&r.x, opts, err)) != MEASURE_OK)
		return rc;
	if (ents_init(&r.ents) != 0 || !(r.ctx = EVP_MD_CTX_new()) || !(r.buf = malloc(READ_BUF)) ||
	    !(r.a = archive_read_new())) {
		rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
		goto out;
	}
	archive_read_support_filter_all(r.a);
	archive_read_support_format_tar(r.a);
	archive_read_support_format_gnutar(r.a);
	archive_read_support_format_cpio(r.a);
	if ((file ? archive_read_open_filename(r.a, file, READ_BUF) : archive_read_open_memory(r.a, buf, len)) !=
	    ARCHIVE_OK) {
		rc = arch_err(&r, err, label, strlen(label), "open");
		goto out;
	}
	/* Pax archives store names as UTF-8; libarchive converts them to the locale's charset.
	 * Read in C.UTF-8 (this thread only) so that non-ASCII names survive unchanged. */
	if ((loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0)))
		old = uselocale(loc);
	rc = run(&r, label, ret, err);
	if (loc) {
		uselocale(old);
		freelocale(loc);
	}
out:
	if (r.a)
		archive_read_free(r.a);
	EVP_MD_CTX_free(r.ctx);
	free(r.buf);
	free(r.ix.slot);
	ents_free(&r.ents);
	arena_free(&r.arena);
	excludes_free(&r.x);
	return rc;
}

enum measure_err measure_archive(const char *file, const struct measure_opts *opts, struct measure_manifest **ret,
				 struct measure_error *err)
{
	if (!file)
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, NULL);
	return measure_archive_common(file, NULL, 0, opts, ret, err);
}

enum measure_err measure_archive_mem(const void *buf, size_t len, const struct measure_opts *opts,
				     struct measure_manifest **ret, struct measure_error *err)
{
	if (!buf)
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, NULL);
	return measure_archive_common(NULL, buf, len, opts, ret, err);
}
