/* libmerkle: RFC 9162 (Certificate Transparency v2) Merkle tree hashing with SHA-256.
 *
 * The one Merkle implementation of sluice: measure/ builds the rootfs root digest with it,
 * bundle/ issues and verifies SCITT receipts (vds=1, RFC9162_SHA256) with it, and the
 * transparency service keeps its log in a struct merkle_tree.
 *
 *   leaf hash  = SHA-256(0x00 || entry)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 *
 * The stateless functions take leaf hashes (already leaf-hashed entries). Proof paths are
 * arrays of 32-byte hashes in RFC 9162 order (bottom up). Nothing here logs or allocates
 * except struct merkle_tree. */
#ifndef SLUICE_MERKLE_H
#define SLUICE_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32
/* Longest proof for a tree of up to 2^64 leaves. */
#define MERKLE_MAX_PROOF 64

/* Stable values. */
enum merkle_err {
	MERKLE_OK = 0,
	MERKLE_ERR_INVAL = 1,   /* bad argument: index >= size, size 0 where not allowed */
	MERKLE_ERR_NOMEM = 2,
	MERKLE_ERR_PROOF = 3,   /* proof malformed: wrong length for (index, size) */
	MERKLE_ERR_MISMATCH = 4 /* proof well-formed but the computed root differs */
};

const char *merkle_strerror(enum merkle_err err);

void merkle_leaf_hash(const void *entry, size_t len, uint8_t out[MERKLE_HASH_LEN]);
void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
		      uint8_t out[MERKLE_HASH_LEN]);

/* MTH over n leaf hashes; n == 0 gives SHA-256(""). O(n) time, O(log n) memory. */
void merkle_root(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, uint8_t out[MERKLE_HASH_LEN]);

/* Streaming root: feed leaf hashes in order, then finish. O(log n) memory, no allocation. */
struct merkle_stream {
	uint8_t stack[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
	uint64_t count;
};
void merkle_stream_init(struct merkle_stream *s);
void merkle_stream_add(struct merkle_stream *s, const uint8_t leaf[MERKLE_HASH_LEN]);
void merkle_stream_root(const struct merkle_stream *s, uint8_t out[MERKLE_HASH_LEN]);

/* RFC 9162 §2.1.3.2: compute the root implied by an inclusion proof. MERKLE_ERR_INVAL if
 * index >= size, MERKLE_ERR_PROOF if the path length does not fit (index, size). */
enum merkle_err merkle_inclusion_root(uint64_t index, uint64_t size, const uint8_t leaf[MERKLE_HASH_LEN],
				      const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len,
				      uint8_t out_root[MERKLE_HASH_LEN]);
/* The same, compared (constant time) against root: MERKLE_OK or MERKLE_ERR_MISMATCH. */
enum merkle_err merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf[MERKLE_HASH_LEN],
					const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len,
					const uint8_t root[MERKLE_HASH_LEN]);
/* RFC 9162 §2.1.4.2: verify a consistency proof between (size1, root1) and (size2, root2).
 * 0 < size1 <= size2 (MERKLE_ERR_INVAL otherwise); equal sizes need an empty path and equal roots. */
enum merkle_err merkle_consistency_verify(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
					  const uint8_t root2[MERKLE_HASH_LEN],
					  const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len);

/* An append-only tree that keeps every complete subtree hash (2n hashes for n leaves), so
 * roots, inclusion proofs and consistency proofs for any earlier size cost O(log n). */
struct merkle_tree;
enum merkle_err merkle_tree_new(struct merkle_tree **ret);
void merkle_tree_free(struct merkle_tree *t);
enum merkle_err merkle_tree_append(struct merkle_tree *t, const uint8_t leaf[MERKLE_HASH_LEN]);
uint64_t merkle_tree_size(const struct merkle_tree *t);
/* Leaf hash at index (borrowed pointer, valid until the next append). */
const uint8_t *merkle_tree_leaf(const struct merkle_tree *t, uint64_t index);
/* Root of the first size leaves (size <= merkle_tree_size). */
enum merkle_err merkle_tree_root(const struct merkle_tree *t, uint64_t size, uint8_t out[MERKLE_HASH_LEN]);
/* Inclusion proof of index in the tree of the first size leaves; path must hold
 * MERKLE_MAX_PROOF entries; *ret_len receives the count. */
enum merkle_err merkle_tree_inclusion(const struct merkle_tree *t, uint64_t index, uint64_t size,
				      uint8_t (*path)[MERKLE_HASH_LEN], size_t *ret_len);
/* Consistency proof from size1 to size2 (0 < size1 <= size2 <= merkle_tree_size). */
enum merkle_err merkle_tree_consistency(const struct merkle_tree *t, uint64_t size1, uint64_t size2,
					uint8_t (*path)[MERKLE_HASH_LEN], size_t *ret_len);

#endif
