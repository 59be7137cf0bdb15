/* libmeasure internals shared by walk.c, archive.c and manifest.c. */
#ifndef SLUICE_MEASURE_INT_H
#define SLUICE_MEASURE_INT_H

#include "measure/measure.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* One entry found by the walk or the archive reader, before sorting. */
struct ent {
	const char *path;   /* "/"-rooted, in the arena, NUL-terminated */
	uint32_t path_len;
	uint8_t type;       /* enum measure_type */
	uint8_t scan;       /* walk: directory still to be listed */
	uint8_t linked;     /* walk: the file had links when opened (so 0 links later = vanished) */
	uint32_t mode, uid, gid;
	uint32_t link;      /* walk: 1 + index of an earlier entry for the same inode, or 0 */
	uint64_t size;
	uint64_t dev, ino;
	uint32_t parent;    /* walk: index of the parent directory entry */
	int32_t fd1;        /* walk: 1 + descriptor of a regular file opened by the walk, 0 = none */
	uint8_t digest[MEASURE_DIGEST_LEN];
};

/* Stable-address entry storage: blocks of ENT_BLOCK entries, so hashing threads can hold
 * pointers while the walker appends. */
#define ENT_BLOCK 4096u
#define ENT_NBLOCKS (MEASURE_MAX_ENTRIES / ENT_BLOCK)
struct ents {
	struct ent **blocks; /* ENT_NBLOCKS slots */
	size_t n;
};
int ents_init(struct ents *e);
void ents_free(struct ents *e);
static inline struct ent *ents_at(const struct ents *e, size_t i)
{
	return &e->blocks[i / ENT_BLOCK][i % ENT_BLOCK];
}
/* A zeroed new entry, or NULL (MEASURE_ERR_NOMEM or MEASURE_ERR_LIMIT in *rc). */
struct ent *ents_add(struct ents *e, enum measure_err *rc);

/* Bump allocator for path strings. */
struct arena {
	struct arena_chunk *head;
};
void arena_free(struct arena *a);
/* Copy len bytes + NUL; NULL on allocation failure. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

/* Normalised excludes: defaults (unless opts->no_default_excludes) + opts->excludes, each
 * "/"-rooted without trailing "/", sorted, unique. */
struct excludes {
	char **v;
	size_t *len;
	size_t n;
};
enum measure_err excludes_init(struct excludes *x, const struct measure_opts *opts, struct measure_error *err);
void excludes_free(struct excludes *x);
/* Is path exactly one of the excludes? */
int excludes_exact(const struct excludes *x, const char *path, size_t len);
/* Is path an exclude or below one? */
int excludes_covers(const struct excludes *x, const char *path, size_t len);

/* Fill err (may be NULL) and return code. path may be NULL. */
enum measure_err seterr(struct measure_error *err, enum measure_err code, int sys_errno, const char *path,
			size_t path_len, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* SHA-256 of a device number (uint32 BE major || uint32 BE minor). */
void device_digest(uint64_t major, uint64_t minor, uint8_t out[MEASURE_DIGEST_LEN]);
/* SHA-256 of a buffer. */
void sha256_buf(const void *buf, size_t len, uint8_t out[MEASURE_DIGEST_LEN]);

/* Sort entries by path, reject duplicates, encode the records and the manifest, compute the
 * root. Takes ownership of nothing; the excludes are copied. */
enum measure_err manifest_build(struct ents *e, const struct excludes *x, uint64_t sockets,
				struct measure_manifest **ret, struct measure_error *err);
/* The two halves of manifest_build. manifest_order sorts the entries, rejects duplicates and
 * learns each record's encoded length (which does not depend on the digest bytes); it reads
 * no digest, so it may run while hashing threads still fill digests in.
 * manifest_build_ordered encodes and roots them; it takes ownership of the order (freed, on
 * failure too). */
struct order {
	struct ent **v;
	size_t n, nchunks;
	size_t *start; /* nchunks + 1: each chunk's offset from the first record; [nchunks] = total */
};
enum measure_err manifest_order(struct ents *e, struct order *o, struct measure_error *err);
enum measure_err manifest_build_ordered(struct ents *e, struct order *o, const struct excludes *x, uint64_t sockets,
					struct measure_manifest **ret, struct measure_error *err);
void order_free(struct order *o);

/* record.c */
int record_path_valid(const uint8_t *p, size_t n);
int record_fields_valid(const struct measure_record *r);
enum measure_err record_decode_prefix(const uint8_t *buf, size_t len, struct measure_record *out, size_t *used);
/* One CBOR head (or definite string) via libcbor's streaming decoder. */
enum item_kind { ITEM_NONE = 0, ITEM_UINT, ITEM_BSTR, ITEM_TSTR, ITEM_ARRAY };
struct item {
	enum item_kind kind;
	uint64_t u;          /* value, string length, or array length */
	const uint8_t *data; /* strings: borrowed */
};
int item_next(const uint8_t *buf, size_t len, size_t *pos, struct item *it);

#endif
