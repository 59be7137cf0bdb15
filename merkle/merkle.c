/* RFC 9162 Merkle tree hashing (SHA-256): leaf/node hashes, streaming roots, proof
 * verification, and an append-only tree that serves roots and proofs for any size. */
#include "merkle/merkle.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

const char *merkle_strerror(enum merkle_err err)
{
	switch (err) {
	case MERKLE_OK:
		return "success";
	case MERKLE_ERR_INVAL:
		return "invalid argument (index or size out of range)";
	case MERKLE_ERR_NOMEM:
		return "out of memory";
	case MERKLE_ERR_PROOF:
		return "malformed proof (wrong length for index and size)";
	case MERKLE_ERR_MISMATCH:
		return "proof does not lead to the expected root";
	}
	return "unknown merkle error";
}

/* One digest context per thread, and SHA-256 fetched once: a context allocation and an
 * implicit fetch per hash cost about 4x the hash itself for 65-byte inputs. */
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;
static pthread_key_t hash_key;
static EVP_MD *hash_md;

static void ctx_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void hash_init(void)
{
	hash_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!hash_md || pthread_key_create(&hash_key, ctx_free) != 0)
		abort();
}

static void hash2(uint8_t prefix, const void *a, size_t alen, const void *b, size_t blen,
		  uint8_t out[MERKLE_HASH_LEN])
{
	EVP_MD_CTX *ctx;
	unsigned int n = MERKLE_HASH_LEN;

	pthread_once(&hash_once, hash_init);
	ctx = pthread_getspecific(hash_key);
	if (!ctx) {
		ctx = EVP_MD_CTX_new();
		if (!ctx || pthread_setspecific(hash_key, ctx) != 0)
			abort();
	}
	/* A failing SHA-256 is not recoverable here; abort rather than return a wrong hash
	 * that could be mistaken for a valid one. */
	if (EVP_DigestInit_ex(ctx, hash_md, NULL) != 1 || EVP_DigestUpdate(ctx, &prefix, 1) != 1 ||
	    (alen && EVP_DigestUpdate(ctx, a, alen) != 1) || (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(ctx, out, &n) != 1)
		abort();
}

void merkle_leaf_hash(const void *entry, size_t len, uint8_t out[MERKLE_HASH_LEN])
{
	hash2(0x00, entry, len, NULL, 0, out);
}

void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
		      uint8_t out[MERKLE_HASH_LEN])
{
	hash2(0x01, left, MERKLE_HASH_LEN, right, MERKLE_HASH_LEN, out);
}

static void empty_root(uint8_t out[MERKLE_HASH_LEN])
{
	unsigned int n = MERKLE_HASH_LEN;
	if (EVP_Digest("", 0, out, &n, EVP_sha256(), NULL) != 1)
		abort();
}

/* ---- streaming root ---------------------------------------------------------------- */

void merkle_stream_init(struct merkle_stream *s)
{
	memset(s, 0, sizeof *s);
}

/* stack[i] holds the root of a complete subtree of 2^i leaves whenever bit i of count is set. */
void merkle_stream_add(struct merkle_stream *s, const uint8_t leaf[MERKLE_HASH_LEN])
{
	uint8_t h[MERKLE_HASH_LEN];
	unsigned i = 0;

	memcpy(h, leaf, MERKLE_HASH_LEN);
	while (s->count & ((uint64_t)1 << i)) {
		merkle_node_hash(s->stack[i], h, h);
		i++;
	}
	memcpy(s->stack[i], h, MERKLE_HASH_LEN);
	s->count++;
}

void merkle_stream_root(const struct merkle_stream *s, uint8_t out[MERKLE_HASH_LEN])
{
	uint8_t r[MERKLE_HASH_LEN];
	int have = 0;

	if (s->count == 0) {
		empty_root(out);
		return;
	}
	/* Combine from the smallest complete subtree (rightmost) up to the largest (leftmost). */
	for (unsigned i = 0; i < MERKLE_MAX_PROOF; i++) {
		if (!(s->count & ((uint64_t)1 << i)))
			continue;
		if (!have) {
			memcpy(r, s->stack[i], MERKLE_HASH_LEN);
			have = 1;
		} else {
			merkle_node_hash(s->stack[i], r, r);
		}
	}
	memcpy(out, r, MERKLE_HASH_LEN);
}

void merkle_root(const uint8_t (*leaves)[MERKLE_HASH_LEN], size_t n, uint8_t out[MERKLE_HASH_LEN])
{
	struct merkle_stream s;
	merkle_stream_init(&s);
	for (size_t i = 0; i < n; i++)
		merkle_stream_add(&s, leaves[i]);
	merkle_stream_root(&s, out);
}

/* ---- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------- */

enum merkle_err merkle_inclusion_root(uint64_t index, uint64_t size, const uint8_t leaf[MERKLE_HASH_LEN],
				      const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len,
				      uint8_t out_root[MERKLE_HASH_LEN])
{
	uint64_t fn = index, sn;
	uint8_t r[MERKLE_HASH_LEN];

	if (size == 0 || index >= size)
		return MERKLE_ERR_INVAL;
	sn = size - 1;
	memcpy(r, leaf, MERKLE_HASH_LEN);
	for (size_t i = 0; i < path_len; i++) {
		if (sn == 0)
			return MERKLE_ERR_PROOF;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(path[i], r, r);
			if (!(fn & 1)) {
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
			}
		} else {
			merkle_node_hash(r, path[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return MERKLE_ERR_PROOF;
	memcpy(out_root, r, MERKLE_HASH_LEN);
	return MERKLE_OK;
}

enum merkle_err merkle_inclusion_verify(uint64_t index, uint64_t size, const uint8_t leaf[MERKLE_HASH_LEN],
					const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len,
					const uint8_t root[MERKLE_HASH_LEN])
{
	uint8_t r[MERKLE_HASH_LEN];
	enum merkle_err e = merkle_inclusion_root(index, size, leaf, path, path_len, r);
	if (e != MERKLE_OK)
		return e;
	return CRYPTO_memcmp(r, root, MERKLE_HASH_LEN) == 0 ? MERKLE_OK : MERKLE_ERR_MISMATCH;
}

enum merkle_err merkle_consistency_verify(uint64_t size1, uint64_t size2, const uint8_t root1[MERKLE_HASH_LEN],
					  const uint8_t root2[MERKLE_HASH_LEN],
					  const uint8_t (*path)[MERKLE_HASH_LEN], size_t path_len)
{
	uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
	const uint8_t *first;
	uint64_t fn, sn;
	size_t i = 0;

	/* Consistency with the empty tree proves nothing: RFC 9162 defines proofs for 0 < size1. */
	if (size1 == 0 || size2 < size1)
		return MERKLE_ERR_INVAL;
	if (size1 == size2) {
		/* Same tree: the proof is empty and the roots are equal. */
		if (path_len != 0)
			return MERKLE_ERR_PROOF;
		return CRYPTO_memcmp(root1, root2, MERKLE_HASH_LEN) == 0 ? MERKLE_OK : MERKLE_ERR_MISMATCH;
	}
	if (path_len == 0)
		return MERKLE_ERR_PROOF;

	/* If size1 is a power of two, root1 is the first node of the path (implicitly). */
	if ((size1 & (size1 - 1)) == 0) {
		first = root1;
	} else {
		first = path[0];
		i = 1;
	}
	fn = size1 - 1;
	sn = size2 - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	memcpy(fr, first, MERKLE_HASH_LEN);
	memcpy(sr, first, MERKLE_HASH_LEN);
	for (; i < path_len; i++) {
		if (sn == 0)
			return MERKLE_ERR_PROOF;
		if ((fn & 1) || fn == sn) {
			merkle_node_hash(path[i], fr, fr);
			merkle_node_hash(path[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_node_hash(sr, path[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return MERKLE_ERR_PROOF;
	if (CRYPTO_memcmp(fr, root1, MERKLE_HASH_LEN) != 0 || CRYPTO_memcmp(sr, root2, MERKLE_HASH_LEN) != 0)
		return MERKLE_ERR_MISMATCH;
	return MERKLE_OK;
}

/* ---- the append-only tree ------------------------------------------------------------ */

struct level {
	uint8_t (*h)[MERKLE_HASH_LEN];
	uint64_t n, cap;
};

struct merkle_tree {
	struct level lv[MERKLE_MAX_PROOF];
};

enum merkle_err merkle_tree_new(struct merkle_tree **ret)
{
	struct merkle_tree *t = calloc(1, sizeof *t);
	if (!t)
		return MERKLE_ERR_NOMEM;
	*ret = t;
	return MERKLE_OK;
}

void merkle_tree_free(struct merkle_tree *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < MERKLE_MAX_PROOF; i++)
		free(t->lv[i].h);
	free(t);
}

static enum merkle_err push(struct level *l, const uint8_t h[MERKLE_HASH_LEN])
{
	if (l->n == l->cap) {
		uint64_t ncap = l->cap ? l->cap * 2 : 1024;
		void *p;
		if (ncap > SIZE_MAX / MERKLE_HASH_LEN)
			return MERKLE_ERR_NOMEM;
		p = realloc(l->h, (size_t)ncap * MERKLE_HASH_LEN);
		if (!p)
			return MERKLE_ERR_NOMEM;
		l->h = p;
		l->cap = ncap;
	}
	memcpy(l->h[l->n++], h, MERKLE_HASH_LEN);
	return MERKLE_OK;
}

enum merkle_err merkle_tree_append(struct merkle_tree *t, const uint8_t leaf[MERKLE_HASH_LEN])
{
	enum merkle_err e = push(&t->lv[0], leaf);
	unsigned k = 0;

	/* Whenever a level gets an even count, the last two nodes form a complete parent. */
	while (e == MERKLE_OK && k + 1 < MERKLE_MAX_PROOF && t->lv[k].n % 2 == 0) {
		uint8_t p[MERKLE_HASH_LEN];
		merkle_node_hash(t->lv[k].h[t->lv[k].n - 2], t->lv[k].h[t->lv[k].n - 1], p);
		e = push(&t->lv[k + 1], p);
		k++;
	}
	return e;
}

uint64_t merkle_tree_size(const struct merkle_tree *t)
{
	return t->lv[0].n;
}

const uint8_t *merkle_tree_leaf(const struct merkle_tree *t, uint64_t index)
{
	return index < t->lv[0].n ? t->lv[0].h[index] : NULL;
}

static uint64_t split(uint64_t n) /* largest power of two strictly less than n (n > 1) */
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/* MTH of the n leaves starting at start (start is aligned to the largest power of two <= n,
 * which holds for every range the RFC 9162 recursions produce). */
static void mth(const struct merkle_tree *t, uint64_t start, uint64_t n, uint8_t out[MERKLE_HASH_LEN])
{
	if ((n & (n - 1)) == 0) {
		unsigned k = (unsigned)__builtin_ctzll(n);
		memcpy(out, t->lv[k].h[start >> k], MERKLE_HASH_LEN);
		return;
	}
	uint64_t k = split(n);
	uint8_t l[MERKLE_HASH_LEN], r[MERKLE_HASH_LEN];
	mth(t, start, k, l);
	mth(t, start + k, n - k, r);
	merkle_node_hash(l, r, out);
}

enum merkle_err merkle_tree_root(const struct merkle_tree *t, uint64_t size, uint8_t out[MERKLE_HASH_LEN])
{
	if (size > merkle_tree_size(t))
		return MERKLE_ERR_INVAL;
	if (size == 0)
		empty_root(out);
	else
		mth(t, 0, size, out);
	return MERKLE_OK;
}

/* RFC 9162 §2.1.3.1 PATH(m, D[start:start+n]) appended bottom-up. */
static void path(const struct merkle_tree *t, uint64_t m, uint64_t start, uint64_t n,
		 uint8_t (*out)[MERKLE_HASH_LEN], size_t *len)
{
	if (n <= 1)
		return;
	uint64_t k = split(n);
	if (m < k) {
		path(t, m, start, k, out, len);
		mth(t, start + k, n - k, out[(*len)++]);
	} else {
		path(t, m - k, start + k, n - k, out, len);
		mth(t, start, k, out[(*len)++]);
	}
}

enum merkle_err merkle_tree_inclusion(const struct merkle_tree *t, uint64_t index, uint64_t size,
				      uint8_t (*out)[MERKLE_HASH_LEN], size_t *ret_len)
{
	size_t len = 0;
	if (size > merkle_tree_size(t) || index >= size)
		return MERKLE_ERR_INVAL;
	path(t, index, 0, size, out, &len);
	*ret_len = len;
	return MERKLE_OK;
}

/* RFC 9162 §2.1.4.1 SUBPROOF(m, D[start:start+n], b). */
static void subproof(const struct merkle_tree *t, uint64_t m, uint64_t start, uint64_t n, int b,
		     uint8_t (*out)[MERKLE_HASH_LEN], size_t *len)
{
	if (m == n) {
		if (!b)
			mth(t, start, n, out[(*len)++]);
		return;
	}
	uint64_t k = split(n);
	if (m <= k) {
		subproof(t, m, start, k, b, out, len);
		mth(t, start + k, n - k, out[(*len)++]);
	} else {
		subproof(t, m - k, start + k, n - k, 0, out, len);
		mth(t, start, k, out[(*len)++]);
	}
}

enum merkle_err merkle_tree_consistency(const struct merkle_tree *t, uint64_t size1, uint64_t size2,
					uint8_t (*out)[MERKLE_HASH_LEN], size_t *ret_len)
{
	size_t len = 0;
	if (size1 == 0 || size1 > size2 || size2 > merkle_tree_size(t))
		return MERKLE_ERR_INVAL;
	if (size1 < size2)
		subproof(t, size1, 0, size2, 1, out, &len);
	*ret_len = len;
	return MERKLE_OK;
}
