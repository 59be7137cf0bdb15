/* The manifest: sorted canonical records, their RFC 9162 root (libmerkle), the manifest file
 * encoding and decoding, diff and inclusion proofs. */
#include "measure/measure-int.h"
#include "merkle/merkle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/crypto.h>

static const char MAGIC[] = "sluice-manifest";
static const char ALG[] = "sha256";
#define MANIFEST_VERSION 1

struct measure_manifest {
	uint8_t digest[MEASURE_DIGEST_LEN];
	uint64_t bytes, sockets;
	size_t n;
	uint8_t *enc;
	size_t enc_len;
	size_t *off; /* n + 1 offsets into enc: record i is enc[off[i], off[i + 1]) */
	char **ex;
	size_t n_ex;
};

void measure_manifest_free(struct measure_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_ex; i++)
		free(m->ex[i]);
	free(m->ex);
	free(m->off);
	free(m->enc);
	free(m);
}

const uint8_t *measure_manifest_digest(const struct measure_manifest *m) { return m->digest; }
const char *measure_manifest_alg(const struct measure_manifest *m) { (void)m; return ALG; }
size_t measure_manifest_entries(const struct measure_manifest *m) { return m->n; }
uint64_t measure_manifest_bytes(const struct measure_manifest *m) { return m->bytes; }
uint64_t measure_manifest_sockets(const struct measure_manifest *m) { return m->sockets; }
size_t measure_manifest_n_excludes(const struct measure_manifest *m) { return m->n_ex; }

const char *measure_manifest_exclude(const struct measure_manifest *m, size_t i)
{
	return i < m->n_ex ? m->ex[i] : NULL;
}

const uint8_t *measure_manifest_encoded(const struct measure_manifest *m, size_t *ret_len)
{
	*ret_len = m->enc_len;
	return m->enc;
}

const uint8_t *measure_manifest_record_bytes(const struct measure_manifest *m, size_t i, size_t *ret_len)
{
	if (i >= m->n)
		return NULL;
	*ret_len = m->off[i + 1] - m->off[i];
	return m->enc + m->off[i];
}

int measure_manifest_record(const struct measure_manifest *m, size_t i, struct measure_record *out)
{
	size_t len;
	const uint8_t *p = measure_manifest_record_bytes(m, i, &len);
	/* Records in a manifest were validated when it was built or decoded. */
	if (!p || measure_record_decode(p, len, out) != MEASURE_OK)
		return -1;
	return 0;
}

static int path_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

long measure_manifest_find(const struct measure_manifest *m, const void *path, size_t path_len)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct measure_record r;
		int c;
		if (measure_manifest_record(m, mid, &r) != 0)
			return -1;
		c = path_cmp(r.path, r.path_len, path, path_len);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Header: ["sluice-manifest", 1, "sha256", root, [exclude...]] */
static size_t header_encode(const uint8_t root[MEASURE_DIGEST_LEN], char *const *ex, size_t n_ex, uint8_t *buf,
			    size_t cap)
{
	size_t o = 0, n;
#define PUT(call)                  \
	do {                       \
		if (!(n = (call))) \
			return 0;  \
		o += n;            \
	} while (0)
#define RAW(p, l)                        \
	do {                             \
		if (cap - o < (l))       \
			return 0;        \
		memcpy(buf + o, p, l);   \
		o += (l);                \
	} while (0)
	PUT(cbor_encode_array_start(5, buf + o, cap - o));
	PUT(cbor_encode_string_start(sizeof MAGIC - 1, buf + o, cap - o));
	RAW(MAGIC, sizeof MAGIC - 1);
	PUT(cbor_encode_uint(MANIFEST_VERSION, buf + o, cap - o));
	PUT(cbor_encode_string_start(sizeof ALG - 1, buf + o, cap - o));
	RAW(ALG, sizeof ALG - 1);
	PUT(cbor_encode_bytestring_start(MEASURE_DIGEST_LEN, buf + o, cap - o));
	RAW(root, MEASURE_DIGEST_LEN);
	PUT(cbor_encode_array_start(n_ex, buf + o, cap - o));
	for (size_t i = 0; i < n_ex; i++) {
		size_t l = strlen(ex[i]);
		PUT(cbor_encode_bytestring_start(l, buf + o, cap - o));
		RAW(ex[i], l);
	}
#undef PUT
#undef RAW
	return o;
}

static size_t header_cap(char *const *ex, size_t n_ex)
{
	size_t cap = 128;
	for (size_t i = 0; i < n_ex; i++)
		cap += strlen(ex[i]) + 9;
	return cap;
}

/* Encoding the sorted records and their root, on two threads. Records are cut into chunks
 * of LEAF_CHUNK (a power of two): RFC 9162 splits a tree at the largest power of two below
 * its size, so for every size the root over all leaves equals the root over the chunk roots
 * taken as leaves (each chunk root is the MTH of its records; the last chunk may be short).
 * manifest_order knows each chunk's offset in the manifest (it encodes every record once into
 * a scratch buffer to learn its length, which does not depend on the digest bytes), so each
 * thread takes whole chunks and encodes them in place, leaf-hashes them and folds them into
 * the chunk root; then one stream folds the few chunk roots. */
#define LEAF_CHUNK 4096
struct chunks {
	struct ent *const *v;
	uint8_t *enc;
	size_t *off;
	size_t n, nchunks, base;              /* base: offset of the first record in enc */
	const size_t *start;                  /* per chunk (+ 1): offset from the first record */
	uint8_t (*root)[MERKLE_HASH_LEN];     /* per chunk */
	atomic_size_t next;                   /* next chunk to take */
	atomic_size_t bad;                    /* 1 + lowest index of a record that cannot be encoded */
	atomic_uint_fast64_t bytes;           /* regular file content */
};

/* t's record; with_digest 0: a zero digest of the right length (the digest may still be
 * being written by a hashing thread, and it is not read). */
static void ent_record(const struct ent *t, struct measure_record *r, int with_digest)
{
	memset(r, 0, sizeof *r);
	r->path = (const uint8_t *)t->path;
	r->path_len = t->path_len;
	r->type = t->type;
	r->mode = t->mode;
	r->uid = t->uid;
	r->gid = t->gid;
	r->size = t->size;
	r->digest_len = t->type == MEASURE_TYPE_DIR || t->type == MEASURE_TYPE_FIFO ? 0 : MEASURE_DIGEST_LEN;
	if (with_digest)
		memcpy(r->digest, t->digest, MEASURE_DIGEST_LEN);
}

static void mark_bad(atomic_size_t *bad, size_t i)
{
	size_t want = i + 1, have = atomic_load(bad);
	while ((!have || want < have) && !atomic_compare_exchange_weak(bad, &have, want))
		;
}

static void encode_chunk(struct chunks *c, size_t k)
{
	size_t end = (k + 1) * LEAF_CHUNK < c->n ? (k + 1) * LEAF_CHUNK : c->n;
	size_t o = c->base + c->start[k], stop = c->base + c->start[k + 1];
	struct merkle_stream ms;
	uint64_t bytes = 0;

	merkle_stream_init(&ms);
	for (size_t i = k * LEAF_CHUNK; i < end; i++) {
		const struct ent *t = c->v[i];
		struct measure_record r;
		uint8_t leaf[MERKLE_HASH_LEN];
		size_t n;

		ent_record(t, &r, 1);
		c->off[i] = o;
		if (!(n = measure_record_encode(&r, c->enc + o, stop - o))) {
			mark_bad(&c->bad, i);
			return;
		}
		merkle_leaf_hash(c->enc + o, n, leaf);
		merkle_stream_add(&ms, leaf);
		o += n;
		if (t->type == MEASURE_TYPE_REG)
			bytes += t->size;
	}
	if (o != stop) { /* cannot happen: the lengths were measured by the same encoder */
		mark_bad(&c->bad, end - 1);
		return;
	}
	merkle_stream_root(&ms, c->root[k]);
	atomic_fetch_add(&c->bytes, bytes);
}

static void *chunk_worker(void *arg)
{
	struct chunks *c = arg;
	for (size_t k; (k = atomic_fetch_add(&c->next, 1)) < c->nchunks && !atomic_load(&c->bad);)
		encode_chunk(c, k);
	return NULL;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = *(const struct ent *const *)a, *y = *(const struct ent *const *)b;
	return path_cmp(x->path, x->path_len, y->path, y->path_len);
}

static enum measure_err copy_excludes(struct measure_manifest *m, char *const *v, size_t n)
{
	if (!(m->ex = calloc(n + 1, sizeof *m->ex)))
		return MEASURE_ERR_NOMEM;
	for (m->n_ex = 0; m->n_ex < n; m->n_ex++)
		if (!(m->ex[m->n_ex] = strdup(v[m->n_ex])))
			return MEASURE_ERR_NOMEM;
	return MEASURE_OK;
}

void order_free(struct order *o)
{
	free(o->v);
	free(o->start);
	memset(o, 0, sizeof *o);
}

enum measure_err manifest_order(struct ents *e, struct order *o, struct measure_error *err)
{
	uint8_t scratch[MEASURE_MAX_PATH + 64];
	size_t at = 0;

	memset(o, 0, sizeof *o);
	o->n = e->n;
	o->nchunks = (e->n + LEAF_CHUNK - 1) / LEAF_CHUNK;
	if (!(o->v = malloc((e->n ? e->n : 1) * sizeof *o->v)) || !(o->start = malloc((o->nchunks + 1) * sizeof *o->start))) {
		order_free(o);
		return seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
	}
	for (size_t i = 0; i < e->n; i++)
		o->v[i] = ents_at(e, i);
	qsort(o->v, e->n, sizeof *o->v, ent_cmp);
	for (size_t i = 0; i < e->n; i++) {
		struct measure_record r;
		size_t n;
		if (i && ent_cmp(&o->v[i - 1], &o->v[i]) == 0) {
			enum measure_err rc = seterr(err, MEASURE_ERR_DUPLICATE, 0, o->v[i]->path, o->v[i]->path_len, NULL);
			order_free(o);
			return rc;
		}
		if (i % LEAF_CHUNK == 0)
			o->start[i / LEAF_CHUNK] = at;
		ent_record(o->v[i], &r, 0);
		if (!(n = measure_record_encode(&r, scratch, sizeof scratch))) {
			enum measure_err rc = seterr(err, MEASURE_ERR_BAD_PATH, 0, o->v[i]->path, o->v[i]->path_len,
						     "cannot encode record");
			order_free(o);
			return rc;
		}
		at += n;
	}
	o->start[o->nchunks] = at;
	return MEASURE_OK;
}

enum measure_err manifest_build_ordered(struct ents *e, struct order *ord, const struct excludes *x, uint64_t sockets,
					struct measure_manifest **ret, struct measure_error *err)
{
	struct measure_manifest *m = NULL;
	struct chunks c;
	struct merkle_stream ms;
	size_t cap = 0, o = 0, hl = 0, hdr_at = 0;
	enum measure_err rc = MEASURE_ERR_NOMEM;
	pthread_t tid;
	int threaded = 0;

	memset(&c, 0, sizeof c);
	if (ord->n != e->n)
		goto nomem; /* not this entry set's order */
	if (!(m = calloc(1, sizeof *m)))
		goto nomem;
	m->sockets = sockets;
	if (copy_excludes(m, x->v, x->n) != MEASURE_OK)
		goto nomem;
	c.v = ord->v;
	c.n = ord->n;
	c.nchunks = ord->nchunks;
	c.start = ord->start;
	if (!(c.root = malloc((c.nchunks + 1) * sizeof *c.root)))
		goto nomem;
	cap = header_cap(m->ex, m->n_ex) + 16 + ord->start[ord->nchunks];
	if (!(m->enc = malloc(cap)) || !(m->off = malloc((e->n + 1) * sizeof *m->off)))
		goto nomem;
	/* Outer array head, then the header (its root filled in at the end: fixed size). */
	o = cbor_encode_array_start(e->n + 1, m->enc, cap);
	hl = o ? header_encode(m->digest, m->ex, m->n_ex, m->enc + o, cap - o) : 0;
	if (!o || !hl)
		goto nomem;
	hdr_at = o;
	o += hl;
	c.base = o;
	c.enc = m->enc;
	c.off = m->off;
	if (c.nchunks > 1)
		threaded = pthread_create(&tid, NULL, chunk_worker, &c) == 0;
	chunk_worker(&c);
	if (threaded)
		pthread_join(tid, NULL);
	if (atomic_load(&c.bad)) {
		const struct ent *t = c.v[atomic_load(&c.bad) - 1];
		rc = seterr(err, MEASURE_ERR_BAD_PATH, 0, t->path, t->path_len, "cannot encode record");
		goto fail;
	}
	merkle_stream_init(&ms);
	for (size_t k = 0; k < c.nchunks; k++)
		merkle_stream_add(&ms, c.root[k]);
	merkle_stream_root(&ms, m->digest);
	o += ord->start[ord->nchunks];
	m->off[e->n] = o;
	m->n = e->n;
	m->enc_len = o;
	m->bytes = atomic_load(&c.bytes);
	if (header_encode(m->digest, m->ex, m->n_ex, m->enc + hdr_at, hl) != hl)
		goto nomem;
	free(c.root);
	order_free(ord);
	*ret = m;
	return MEASURE_OK;
nomem:
	rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
fail:
	free(c.root);
	order_free(ord);
	measure_manifest_free(m);
	return rc;
}

enum measure_err manifest_build(struct ents *e, const struct excludes *x, uint64_t sockets,
				struct measure_manifest **ret, struct measure_error *err)
{
	struct order ord;
	enum measure_err rc = manifest_order(e, &ord, err);

	if (rc != MEASURE_OK)
		return rc;
	return manifest_build_ordered(e, &ord, x, sockets, ret, err);
}

static enum measure_err bad(struct measure_error *err, size_t pos, const char *what)
{
	return seterr(err, MEASURE_ERR_MANIFEST, 0, NULL, 0, "%s at byte %zu", what, pos);
}

enum measure_err measure_manifest_decode(const void *buf_, size_t len, struct measure_manifest **ret,
					 struct measure_error *err)
{
	const uint8_t *buf = buf_;
	struct measure_manifest *m = NULL;
	struct item it;
	size_t pos = 0, hdr_at, hl, n, prev_off = 0, prev_len = 0;
	uint8_t root[MEASURE_DIGEST_LEN];
	uint8_t *hbuf = NULL;
	char **ex = NULL;
	size_t n_ex = 0;
	struct merkle_stream ms;
	enum measure_err rc;

	if (!buf || !ret)
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, NULL);
	if (len > MEASURE_MAX_MANIFEST)
		return seterr(err, MEASURE_ERR_LIMIT, 0, NULL, 0, "manifest larger than %u bytes", MEASURE_MAX_MANIFEST);
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_ARRAY || it.u < 1)
		return bad(err, 0, "not a manifest array");
	if (it.u - 1 > MEASURE_MAX_ENTRIES)
		return seterr(err, MEASURE_ERR_LIMIT, 0, NULL, 0, "more than %u records", MEASURE_MAX_ENTRIES);
	n = (size_t)(it.u - 1);
	hdr_at = pos;
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_ARRAY || it.u != 5)
		return bad(err, hdr_at, "no manifest header");
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_TSTR || it.u != sizeof MAGIC - 1 ||
	    memcmp(it.data, MAGIC, it.u) != 0)
		return bad(err, pos, "not a sluice manifest");
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_UINT || it.u != MANIFEST_VERSION)
		return bad(err, pos, "unsupported manifest version");
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_TSTR || it.u != sizeof ALG - 1 ||
	    memcmp(it.data, ALG, it.u) != 0)
		return bad(err, pos, "unsupported hash algorithm");
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_BSTR || it.u != MEASURE_DIGEST_LEN)
		return bad(err, pos, "bad root digest");
	memcpy(root, it.data, MEASURE_DIGEST_LEN);
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_ARRAY || it.u > MEASURE_MAX_EXCLUDES)
		return bad(err, pos, "bad excludes");
	if (!(ex = calloc((size_t)it.u + 1, sizeof *ex)))
		return seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
	for (uint64_t i = 0, k = it.u; i < k; i++) {
		if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_BSTR ||
		    !record_path_valid(it.data, it.u) || it.u < 2 ||
		    (n_ex && path_cmp(ex[n_ex - 1], strlen(ex[n_ex - 1]), it.data, it.u) >= 0) ||
		    memchr(it.data, 0, it.u)) {
			rc = bad(err, pos, "bad exclude");
			goto fail;
		}
		if (!(ex[n_ex] = strndup((const char *)it.data, it.u))) {
			rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
			goto fail;
		}
		n_ex++;
	}
	/* The header must be canonical too. */
	hl = header_cap(ex, n_ex);
	if (!(hbuf = malloc(hl))) {
		rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
		goto fail;
	}
	if (header_encode(root, ex, n_ex, hbuf, hl) != pos - hdr_at || memcmp(hbuf, buf + hdr_at, pos - hdr_at) != 0) {
		rc = bad(err, hdr_at, "header not canonical");
		goto fail;
	}
	/* A record takes at least 9 bytes: reject impossible counts before allocating. */
	if (n > (len - pos) / 9) {
		rc = bad(err, pos, "truncated");
		goto fail;
	}
	if (!(m = calloc(1, sizeof *m)) || !(m->off = malloc((n + 1) * sizeof *m->off)) ||
	    !(m->enc = malloc(len ? len : 1))) {
		rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
		goto fail;
	}
	m->ex = ex;
	m->n_ex = n_ex;
	ex = NULL;
	memcpy(m->enc, buf, len);
	m->enc_len = len;
	merkle_stream_init(&ms);
	for (size_t i = 0; i < n; i++) {
		struct measure_record r;
		size_t used = 0;
		uint8_t leaf[MERKLE_HASH_LEN];
		if (record_decode_prefix(buf + pos, len - pos, &r, &used) != MEASURE_OK) {
			rc = bad(err, pos, "bad record");
			goto fail;
		}
		if (i && path_cmp(buf + prev_off, prev_len, r.path, r.path_len) >= 0) {
			rc = seterr(err, MEASURE_ERR_MANIFEST, 0, (const char *)r.path, r.path_len,
				    "record at byte %zu out of order or duplicate", pos);
			goto fail;
		}
		prev_off = (size_t)(r.path - buf);
		prev_len = r.path_len;
		m->off[i] = pos;
		merkle_leaf_hash(buf + pos, used, leaf);
		merkle_stream_add(&ms, leaf);
		if (r.type == MEASURE_TYPE_REG)
			m->bytes += r.size;
		pos += used;
	}
	if (pos != len) {
		rc = bad(err, pos, "trailing bytes");
		goto fail;
	}
	m->off[n] = pos;
	m->n = n;
	merkle_stream_root(&ms, m->digest);
	if (CRYPTO_memcmp(m->digest, root, MEASURE_DIGEST_LEN) != 0) {
		rc = seterr(err, MEASURE_ERR_DIGEST, 0, NULL, 0, NULL);
		goto fail;
	}
	free(hbuf);
	*ret = m;
	return MEASURE_OK;
fail:
	if (ex)
		for (size_t i = 0; i < n_ex; i++)
			free(ex[i]);
	free(ex);
	free(hbuf);
	measure_manifest_free(m);
	return rc;
}

static unsigned changes(const struct measure_record *a, const struct measure_record *b)
{
	unsigned w = 0;
	int same_digest = a->digest_len == b->digest_len && memcmp(a->digest, b->digest, a->digest_len) == 0;

	if (a->type != b->type) {
		w |= MEASURE_CH_TYPE;
	} else if (!same_digest || a->size != b->size) {
		switch ((enum measure_type)a->type) {
		case MEASURE_TYPE_REG: w |= MEASURE_CH_CONTENT; break;
		case MEASURE_TYPE_SYMLINK: w |= MEASURE_CH_TARGET; break;
		case MEASURE_TYPE_CHR:
		case MEASURE_TYPE_BLK: w |= MEASURE_CH_DEVICE; break;
		case MEASURE_TYPE_DIR:
		case MEASURE_TYPE_FIFO: break;
		}
	}
	if (a->mode != b->mode)
		w |= MEASURE_CH_MODE;
	if (a->uid != b->uid || a->gid != b->gid)
		w |= MEASURE_CH_OWNER;
	return w;
}

uint64_t measure_diff(const struct measure_manifest *a, const struct measure_manifest *b,
		      int (*fn)(void *ud, const struct measure_change *c), void *ud)
{
	size_t i = 0, j = 0;
	uint64_t count = 0;

	while (i < a->n || j < b->n) {
		struct measure_change c;
		int cmp;
		memset(&c, 0, sizeof c);
		if (i < a->n)
			measure_manifest_record(a, i, &c.a);
		if (j < b->n)
			measure_manifest_record(b, j, &c.b);
		if (i >= a->n)
			cmp = 1;
		else if (j >= b->n)
			cmp = -1;
		else
			cmp = path_cmp(c.a.path, c.a.path_len, c.b.path, c.b.path_len);
		if (cmp < 0) {
			c.kind = MEASURE_REMOVED;
			memset(&c.b, 0, sizeof c.b);
			i++;
		} else if (cmp > 0) {
			c.kind = MEASURE_ADDED;
			memset(&c.a, 0, sizeof c.a);
			j++;
		} else {
			c.kind = MEASURE_CHANGED;
			c.what = changes(&c.a, &c.b);
			i++;
			j++;
			if (!c.what)
				continue;
		}
		count++;
		if (fn && fn(ud, &c))
			break;
	}
	return count;
}

enum measure_err measure_manifest_prove(const struct measure_manifest *m, const void *path, size_t path_len,
					struct measure_proof *out, struct measure_error *err)
{
	struct merkle_tree *t = NULL;
	long idx;
	enum measure_err rc = MEASURE_OK;
	enum merkle_err me;

	if (!m || !path || !out)
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, NULL);
	idx = measure_manifest_find(m, path, path_len);
	if (idx < 0)
		return seterr(err, MEASURE_ERR_NOT_FOUND, 0, path, path_len, NULL);
	if (merkle_tree_new(&t) != MERKLE_OK)
		return seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
	for (size_t i = 0; i < m->n; i++) {
		uint8_t leaf[MERKLE_HASH_LEN];
		merkle_leaf_hash(m->enc + m->off[i], m->off[i + 1] - m->off[i], leaf);
		if (merkle_tree_append(t, leaf) != MERKLE_OK) {
			rc = seterr(err, MEASURE_ERR_NOMEM, 0, NULL, 0, NULL);
			goto out;
		}
	}
	memset(out, 0, sizeof *out);
	out->index = (uint64_t)idx;
	out->tree_size = m->n;
	memcpy(out->root, m->digest, MEASURE_DIGEST_LEN);
	me = merkle_tree_inclusion(t, out->index, out->tree_size, out->path, &out->path_len);
	if (me != MERKLE_OK)
		rc = seterr(err, MEASURE_ERR_PROOF, 0, path, path_len, "%s", merkle_strerror(me));
out:
	merkle_tree_free(t);
	return rc;
}

enum measure_err measure_proof_verify(const uint8_t *record, size_t record_len, const struct measure_proof *proof,
				      struct measure_record *out, struct measure_error *err)
{
	struct measure_record r;
	uint8_t leaf[MERKLE_HASH_LEN];
	enum merkle_err me;

	if (!record || !proof || proof->path_len > MEASURE_MAX_PROOF)
		return seterr(err, MEASURE_ERR_INVAL, 0, NULL, 0, NULL);
	if (measure_record_decode(record, record_len, &r) != MEASURE_OK)
		return seterr(err, MEASURE_ERR_PROOF, 0, NULL, 0, "record is not a canonical measure record");
	merkle_leaf_hash(record, record_len, leaf);
	me = merkle_inclusion_verify(proof->index, proof->tree_size, leaf, (const uint8_t(*)[MERKLE_HASH_LEN])proof->path,
				     proof->path_len, proof->root);
	if (me != MERKLE_OK)
		return seterr(err, MEASURE_ERR_PROOF, 0, (const char *)r.path, r.path_len, "%s", merkle_strerror(me));
	if (out)
		*out = r;
	return MEASURE_OK;
}
