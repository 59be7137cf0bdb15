/* libmeasure plumbing: error strings, entry storage, path arena, excludes, small digests. */
#include "measure/measure-int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

const char *const measure_default_excludes[] = {"/proc", "/sys", "/dev", "/run", "/tmp",
						"/var/tmp", "/var/log", "/var/cache"};
const size_t measure_n_default_excludes = sizeof measure_default_excludes / sizeof measure_default_excludes[0];

const char *measure_strerror(enum measure_err err)
{
	switch (err) {
	case MEASURE_OK: return "success";
	case MEASURE_ERR_INVAL: return "invalid argument";
	case MEASURE_ERR_NOMEM: return "out of memory";
	case MEASURE_ERR_IO: return "cannot read";
	case MEASURE_ERR_CHANGED: return "changed while being measured";
	case MEASURE_ERR_PATH_TOO_LONG: return "path longer than PATH_MAX";
	case MEASURE_ERR_LOOP: return "directory loop";
	case MEASURE_ERR_LIMIT: return "too many entries or input too large";
	case MEASURE_ERR_ARCHIVE: return "cannot read archive";
	case MEASURE_ERR_BAD_PATH: return "unsafe path in archive";
	case MEASURE_ERR_DUPLICATE: return "duplicate path";
	case MEASURE_ERR_HARDLINK: return "hard link to an unknown file";
	case MEASURE_ERR_MANIFEST: return "malformed manifest";
	case MEASURE_ERR_DIGEST: return "manifest root digest does not match its records";
	case MEASURE_ERR_NOT_FOUND: return "path not in manifest";
	case MEASURE_ERR_PROOF: return "inclusion proof does not verify";
	case MEASURE_ERR_THREAD: return "cannot start hashing threads";
	}
	return "unknown error";
}

const char *measure_type_name(unsigned type)
{
	switch (type) {
	case MEASURE_TYPE_REG: return "file";
	case MEASURE_TYPE_DIR: return "dir";
	case MEASURE_TYPE_SYMLINK: return "symlink";
	case MEASURE_TYPE_CHR: return "chr";
	case MEASURE_TYPE_BLK: return "blk";
	case MEASURE_TYPE_FIFO: return "fifo";
	default: return "?";
	}
}

static void escape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < cap; p++) {
		if (*p == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else if (*p < 0x20 || *p >= 0x7f) {
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o] = 0;
}

void measure_error_format(const struct measure_error *err, char *buf, size_t len)
{
	char path[4 * sizeof err->path + 1];
	char cause[sizeof err->detail + 128];
	size_t c = 0;

	if (!len)
		return;
	if (!err) {
		snprintf(buf, len, "unknown error");
		return;
	}
	escape(err->path, path, sizeof path);
	if (strlen(path) > 480) { /* keep the line short: first and last 200 bytes */
		size_t n = strlen(path);
		memmove(path + 205, path + n - 200, 201);
		memcpy(path + 200, "[...]", 5);
	}
	cause[0] = 0;
	if (err->detail[0])
		c += (size_t)snprintf(cause + c, sizeof cause - c, "%s", err->detail);
	if (err->sys_errno)
		snprintf(cause + c, sizeof cause - c, "%s%s", c ? ": " : "", strerror(err->sys_errno));
	snprintf(buf, len, "%s%s%s%s%s%s", path, path[0] ? ": " : "", measure_strerror(err->code),
		 cause[0] ? " (" : "", cause, cause[0] ? ")" : "");
}

enum measure_err seterr(struct measure_error *err, enum measure_err code, int sys_errno, const char *path,
			size_t path_len, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->sys_errno = sys_errno;
	err->path[0] = 0;
	if (path) {
		if (path_len > MEASURE_MAX_PATH)
			path_len = MEASURE_MAX_PATH;
		memcpy(err->path, path, path_len);
		err->path[path_len] = 0;
	}
	err->detail[0] = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->detail, sizeof err->detail, fmt, ap);
		va_end(ap);
	}
	return code;
}

int ents_init(struct ents *e)
{
	e->n = 0;
	e->blocks = calloc(ENT_NBLOCKS, sizeof *e->blocks);
	return e->blocks ? 0 : -1;
}

void ents_free(struct ents *e)
{
	if (!e->blocks)
		return;
	for (size_t i = 0; i < ENT_NBLOCKS && e->blocks[i]; i++)
		free(e->blocks[i]);
	free(e->blocks);
	e->blocks = NULL;
	e->n = 0;
}

struct ent *ents_add(struct ents *e, enum measure_err *rc)
{
	size_t b = e->n / ENT_BLOCK;
	struct ent *x;

	if (e->n >= MEASURE_MAX_ENTRIES) {
		*rc = MEASURE_ERR_LIMIT;
		return NULL;
	}
	if (!e->blocks[b] && !(e->blocks[b] = malloc(ENT_BLOCK * sizeof(struct ent)))) {
		*rc = MEASURE_ERR_NOMEM;
		return NULL;
	}
	x = &e->blocks[b][e->n % ENT_BLOCK];
	memset(x, 0, sizeof *x);
	e->n++;
	return x;
}

#define ARENA_CHUNK (1u << 20)
struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *n = a->head->next;
		free(a->head);
		a->head = n;
	}
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	struct arena_chunk *c = a->head;
	char *p;

	if (!c || c->cap - c->used < len + 1) {
		size_t cap = len + 1 > ARENA_CHUNK ? len + 1 : ARENA_CHUNK;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = 0;
	c->used += len + 1;
	return p;
}

/* "/a//b/" -> "/a/b"; "a" -> "/a". Rejects "", "/", "." and ".." components. */
static int norm_exclude(const char *in, char *out, size_t cap, size_t *ret_len)
{
	size_t o = 0;
	const char *p = in;

	while (*p) {
		const char *s;
		size_t n;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - s);
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return -1;
		if (o + 1 + n >= cap)
			return -1;
		out[o++] = '/';
		memcpy(out + o, s, n);
		o += n;
	}
	if (o == 0)
		return -1;
	out[o] = 0;
	*ret_len = o;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum measure_err excludes_init(struct excludes *x, const struct measure_opts *opts, struct measure_error *err)
{
	size_t nd = opts && opts->no_default_excludes ? 0 : measure_n_default_excludes;
	size_t nu = opts ? opts->n_excludes : 0;
	size_t total = nd + nu, k = 0;
	char buf[MEASURE_MAX_PATH + 1];

	memset(x, 0, sizeof *x);
	if (nu > MEASURE_MAX_EXCLUDES || (nu && !opts->excludes))
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, "more than %u excludes", MEASURE_MAX_EXCLUDES);
	x->v = calloc(total + 1, sizeof *x->v);
	x->len = calloc(total + 1, sizeof *x->len);
	if (!x->v || !x->len) {
		excludes_free(x);
		return seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
	}
	for (size_t i = 0; i < total; i++) {
		const char *in = i < nd ? measure_default_excludes[i] : opts->excludes[i - nd];
		size_t n;
		if (!in || norm_exclude(in, buf, sizeof buf, &n) != 0) {
			excludes_free(x);
			return seterr(err, MEASURE_ERR_INVAL, 0, in, in ? strlen(in) : 0,
				      "exclude must name a path below the root, without . or ..");
		}
		if (!(x->v[k++] = strdup(buf))) {
			excludes_free(x);
			return seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
		}
	}
	qsort(x->v, k, sizeof *x->v, cmp_str);
	x->n = 0;
	for (size_t i = 0; i < k; i++) {
		char *p = x->v[i];
		x->v[i] = NULL;
		if (x->n && strcmp(x->v[x->n - 1], p) == 0) {
			free(p);
			continue;
		}
		x->v[x->n] = p;
		x->len[x->n] = strlen(p);
		x->n++;
	}
	return MEASURE_OK;
}

void excludes_free(struct excludes *x)
{
	if (x->v)
		for (size_t i = 0; x->v[i]; i++)
			free(x->v[i]);
	free(x->v);
	free(x->len);
	memset(x, 0, sizeof *x);
}

int excludes_exact(const struct excludes *x, const char *path, size_t len)
{
	for (size_t i = 0; i < x->n; i++)
		if (x->len[i] == len && memcmp(x->v[i], path, len) == 0)
			return 1;
	return 0;
}

int excludes_covers(const struct excludes *x, const char *path, size_t len)
{
	for (size_t i = 0; i < x->n; i++)
		if (len >= x->len[i] && memcmp(x->v[i], path, x->len[i]) == 0 &&
		    (len == x->len[i] || path[x->len[i]] == '/'))
			return 1;
	return 0;
}

void sha256_buf(const void *buf, size_t len, uint8_t out[MEASURE_DIGEST_LEN])
{
	unsigned int n = 0;
	EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL);
}

void device_digest(uint64_t major, uint64_t minor, uint8_t out[MEASURE_DIGEST_LEN])
{
	uint8_t b[8];
	for (int i = 0; i < 4; i++) {
		b[i] = (uint8_t)(major >> (24 - 8 * i));
		b[4 + i] = (uint8_t)(minor >> (24 - 8 * i));
	}
	sha256_buf(b, sizeof b, out);
}
