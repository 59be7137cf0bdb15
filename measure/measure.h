/* libmeasure: measure a root filesystem (a directory tree or a tar/cpio archive of it) into a
 * manifest of deterministic CBOR records and one root digest.
 *
 * Record (one per entry), deterministic CBOR (RFC 8949 §4.2.1: shortest integer and length
 * heads, definite lengths):
 *
 *   [path, type, mode, uid, gid, size, digest]
 *
 *   path    bstr  "/"-rooted, no trailing "/", no "." / ".." / empty components; the root of
 *                 the measured tree itself is "/". Raw bytes: names need not be UTF-8.
 *   type    uint  enum measure_type below.
 *   mode    uint  permission bits only (mode & 07777).
 *   uid,gid uint  numeric owner.
 *   size    uint  regular: content length; symlink: target length; others: 0.
 *   digest  bstr  SHA-256 (32 bytes) of: the content (regular), the target bytes (symlink),
 *                 the device number encoded as uint32 big-endian major || uint32 big-endian
 *                 minor (character and block devices). Empty (0 bytes) for directories and fifos.
 *
 * Records are sorted bytewise by path (no duplicates). The root digest is the RFC 9162
 * Merkle tree hash (libmerkle) over the record bytes: leaf i = SHA-256(0x00 || record i).
 * Time stamps, inode numbers, link counts and extended attributes are not measured; hard
 * links are simply two regular-file records with the same digest. Sockets are not measured
 * (no archive format carries them); the walker counts them (measure_manifest_sockets).
 *
 * The tree walk never follows symlinks (openat2 RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH where the
 * kernel has it, O_NOFOLLOW always), does not descend into other file systems unless
 * cross_mounts is set (a mount point is recorded, its contents are not), skips excluded
 * paths (the path and everything below it), and hashes regular files in parallel.
 *
 * Manifest file (measure_manifest_encoded): one deterministic CBOR array
 *
 *   [["sluice-manifest", 1, "sha256", root (bstr 32), [exclude (bstr)...]], record, record...]
 *
 * Decoding re-derives the root from the records and rejects a manifest whose stored root
 * differs, whose records are not canonical, not sorted, or malformed.
 *
 * Nothing here prints, exits, or keeps global state; errors come back in a struct
 * measure_error that names the path concerned. */
#ifndef SLUICE_MEASURE_H
#define SLUICE_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#define MEASURE_DIGEST_LEN 32
/* Longest measured path, in bytes, without the terminating NUL (PATH_MAX - 1). */
#define MEASURE_MAX_PATH 4095
/* Most entries in one manifest. */
#define MEASURE_MAX_ENTRIES (1u << 24)
/* Largest manifest accepted by measure_manifest_decode. */
#define MEASURE_MAX_MANIFEST (1u << 30)
/* Most exclude paths. */
#define MEASURE_MAX_EXCLUDES 256
/* Deepest inclusion proof (RFC 9162 for up to 2^64 leaves). */
#define MEASURE_MAX_PROOF 64

/* Record type codes. Stable values: they are part of the measured bytes. */
enum measure_type {
	MEASURE_TYPE_REG = 1,     /* regular file */
	MEASURE_TYPE_DIR = 2,     /* directory */
	MEASURE_TYPE_SYMLINK = 3, /* symbolic link */
	MEASURE_TYPE_CHR = 4,     /* character device */
	MEASURE_TYPE_BLK = 5,     /* block device */
	MEASURE_TYPE_FIFO = 6     /* named pipe */
};
/* "file", "dir", "symlink", "chr", "blk", "fifo"; "?" for other values. */
const char *measure_type_name(unsigned type);

/* Stable values. */
enum measure_err {
	MEASURE_OK = 0,
	MEASURE_ERR_INVAL = 1,       /* bad argument or option */
	MEASURE_ERR_NOMEM = 2,
	MEASURE_ERR_IO = 3,          /* open/read/stat failed (errno in the error) */
	MEASURE_ERR_CHANGED = 4,     /* file changed while measured (size, type or inode) */
	MEASURE_ERR_PATH_TOO_LONG = 5, /* path longer than MEASURE_MAX_PATH */
	MEASURE_ERR_LOOP = 6,        /* a directory contains itself (bind mount loop) */
	MEASURE_ERR_LIMIT = 7,       /* more than MEASURE_MAX_ENTRIES, or input too large */
	MEASURE_ERR_ARCHIVE = 8,     /* libarchive could not read the archive (detail says why) */
	MEASURE_ERR_BAD_PATH = 9,    /* archive path absolute, with "..", "." or empty components */
	MEASURE_ERR_DUPLICATE = 10,  /* the same path twice */
	MEASURE_ERR_HARDLINK = 11,   /* hard link to a path that is not an earlier regular file */
	MEASURE_ERR_MANIFEST = 12,   /* manifest malformed, not canonical, unsorted */
	MEASURE_ERR_DIGEST = 13,     /* manifest root does not match its records */
	MEASURE_ERR_NOT_FOUND = 14,  /* path not in the manifest */
	MEASURE_ERR_PROOF = 15,      /* inclusion proof malformed or does not lead to the root */
	MEASURE_ERR_THREAD = 16      /* could not start worker threads */
};
const char *measure_strerror(enum measure_err err);

/* What went wrong and where. path is the measured path ("/"-rooted, raw bytes) or the
 * file given by the caller; sys_errno the errno cause (0 if none); detail a short
 * low-level cause (libarchive message, CBOR position, ...), may be empty. */
struct measure_error {
	enum measure_err code;
	int sys_errno;
	char path[MEASURE_MAX_PATH + 1];
	char detail[256];
};
/* One line "PATH: reason (cause)", the path escaped (non-printable bytes as \xNN). */
void measure_error_format(const struct measure_error *err, char *buf, size_t len);

/* The excludes measured trees skip unless no_default_excludes is set. */
extern const char *const measure_default_excludes[];
extern const size_t measure_n_default_excludes;

struct measure_opts {
	const char *const *excludes; /* extra "/"-rooted paths to skip (relative to the root) */
	size_t n_excludes;
	int no_default_excludes;     /* measure /proc, /tmp, ... too */
	int cross_mounts;            /* descend into other file systems (tree walk only) */
	unsigned jobs;               /* hashing threads; 0 = online CPUs */
	uint64_t max_bytes;          /* archive: most content bytes to read (0 = no limit) */
	/* Called from the calling thread about 4 times a second, and once at the end, with
	 * files and content bytes hashed so far (and files found so far). May be NULL. */
	void (*progress)(void *ud, uint64_t files_done, uint64_t bytes_done, uint64_t files_found,
			 int final);
	void *ud;
};

/* A measured tree or archive, or a decoded manifest file. */
struct measure_manifest;

struct measure_record {
	const uint8_t *path; /* borrowed, valid while the manifest lives; not NUL-terminated */
	size_t path_len;
	unsigned type;       /* enum measure_type */
	uint32_t mode, uid, gid;
	uint64_t size;
	uint8_t digest[MEASURE_DIGEST_LEN];
	size_t digest_len;   /* 32, or 0 for directories and fifos */
};

/* Measure the directory tree at root. opts may be NULL (defaults). err may be NULL. */
enum measure_err measure_tree(const char *root, const struct measure_opts *opts,
			      struct measure_manifest **ret, struct measure_error *err);
/* Measure a tar or cpio archive (optionally gzip/xz/zstd/bzip2 compressed) of a tree.
 * "./a" and "a" become "/a"; "." or "./" is the root "/". Absolute paths, ".." and empty
 * or "." components, duplicate paths and dangling hard links are rejected. */
enum measure_err measure_archive(const char *file, const struct measure_opts *opts,
				 struct measure_manifest **ret, struct measure_error *err);
enum measure_err measure_archive_mem(const void *buf, size_t len, const struct measure_opts *opts,
				     struct measure_manifest **ret, struct measure_error *err);
/* Decode a manifest file's bytes (at most MEASURE_MAX_MANIFEST). */
enum measure_err measure_manifest_decode(const void *buf, size_t len, struct measure_manifest **ret,
					 struct measure_error *err);
void measure_manifest_free(struct measure_manifest *m);

/* Root digest, MEASURE_DIGEST_LEN bytes. */
const uint8_t *measure_manifest_digest(const struct measure_manifest *m);
/* "sha256" */
const char *measure_manifest_alg(const struct measure_manifest *m);
size_t measure_manifest_entries(const struct measure_manifest *m);
/* Sum of regular file sizes. */
uint64_t measure_manifest_bytes(const struct measure_manifest *m);
/* Sockets seen and skipped by the tree or archive walk (0 for decoded manifests). */
uint64_t measure_manifest_sockets(const struct measure_manifest *m);
/* The excludes in force ("/"-rooted, NUL-terminated, sorted). */
size_t measure_manifest_n_excludes(const struct measure_manifest *m);
const char *measure_manifest_exclude(const struct measure_manifest *m, size_t i);
/* The manifest file bytes (borrowed). */
const uint8_t *measure_manifest_encoded(const struct measure_manifest *m, size_t *ret_len);
/* Record i (0 <= i < entries), sorted order. Returns 0, or -1 if i is out of range. */
int measure_manifest_record(const struct measure_manifest *m, size_t i, struct measure_record *out);
/* The encoded record bytes of record i (borrowed), the Merkle leaf entry. NULL if out of range. */
const uint8_t *measure_manifest_record_bytes(const struct measure_manifest *m, size_t i, size_t *ret_len);
/* Index of path (raw bytes), or -1. */
long measure_manifest_find(const struct measure_manifest *m, const void *path, size_t path_len);

/* Differences between two manifests, in path order. */
enum measure_change_kind { MEASURE_ADDED = 1, MEASURE_REMOVED = 2, MEASURE_CHANGED = 3 };
/* What changed, for MEASURE_CHANGED (bit set). */
enum measure_change_bits {
	MEASURE_CH_TYPE = 1,
	MEASURE_CH_CONTENT = 2, /* regular file content (digest or size) */
	MEASURE_CH_TARGET = 4,  /* symlink target */
	MEASURE_CH_DEVICE = 8,  /* device number */
	MEASURE_CH_MODE = 16,
	MEASURE_CH_OWNER = 32   /* uid or gid */
};
struct measure_change {
	enum measure_change_kind kind;
	unsigned what;             /* enum measure_change_bits, for MEASURE_CHANGED */
	struct measure_record a;   /* valid for REMOVED and CHANGED */
	struct measure_record b;   /* valid for ADDED and CHANGED */
};
/* Calls fn for every difference (fn returns non-zero to stop early). Returns the number
 * of differences reported. */
uint64_t measure_diff(const struct measure_manifest *a, const struct measure_manifest *b,
		      int (*fn)(void *ud, const struct measure_change *c), void *ud);

/* Inclusion proof of one record under the root digest. */
struct measure_proof {
	uint64_t index, tree_size;
	uint8_t root[MEASURE_DIGEST_LEN];
	uint8_t path[MEASURE_MAX_PROOF][MEASURE_DIGEST_LEN];
	size_t path_len;
};
/* Proof for path (raw bytes) in m: MEASURE_ERR_NOT_FOUND if absent. The record bytes are
 * measure_manifest_record_bytes(m, proof.index). */
enum measure_err measure_manifest_prove(const struct measure_manifest *m, const void *path, size_t path_len,
					struct measure_proof *out, struct measure_error *err);
/* Check that record (encoded bytes, must be a canonical record) sits at proof->index of a tree
 * of proof->tree_size leaves with root proof->root. On success *out (may be NULL) holds the
 * decoded record (path borrowed from record). Compare proof->root with the root you trust. */
enum measure_err measure_proof_verify(const uint8_t *record, size_t record_len, const struct measure_proof *proof,
				      struct measure_record *out, struct measure_error *err);

/* Encode one record (canonical). Returns the length written, or 0 if cap is too small or the
 * record invalid. At most MEASURE_MAX_PATH + 64 bytes are needed. */
size_t measure_record_encode(const struct measure_record *r, uint8_t *buf, size_t cap);
/* Decode one canonical record from exactly len bytes (path borrowed from buf). */
enum measure_err measure_record_decode(const uint8_t *buf, size_t len, struct measure_record *out);

#endif
