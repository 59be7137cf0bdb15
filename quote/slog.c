/* The sluice event log: a CBOR array of CEL-style records
 *   {0: recnum, 1: pcr, 2: [[alg, digest], ...], 3: type, 4: content}
 * Encoding is deterministic (RFC 8949 §4.2.1: shortest heads, definite lengths, map keys
 * in order), written with libcbor's head encoders. Parsing is libcbor's too (a streaming
 * shape pass to bound allocation, then cbor_load per record); the parsed log must re-encode
 * to exactly the input bytes. Record contents are copied. */
#include "quote/quote-int.h"

#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/crypto.h>

struct quote_slog {
	struct quote_slog_rec *recs;
	size_t n, cap;
};

enum quote_err quote_slog_new(struct quote_slog **ret)
{
	if (!ret)
		return QUOTE_ERR_ARG;
	*ret = calloc(1, sizeof **ret);
	return *ret ? QUOTE_OK : QUOTE_ERR_NOMEM;
}

void quote_slog_free(struct quote_slog *log)
{
	if (!log)
		return;
	for (size_t i = 0; i < log->n; i++)
		free((void *)log->recs[i].content);
	free(log->recs);
	free(log);
}

size_t quote_slog_count(const struct quote_slog *log)
{
	return log ? log->n : 0;
}

const struct quote_slog_rec *quote_slog_get(const struct quote_slog *log, size_t i)
{
	return log && i < log->n ? &log->recs[i] : NULL;
}

enum quote_err quote_slog_event_digest(uint16_t alg, uint32_t type, const uint8_t *content, size_t len,
				       struct quote_digest *ret)
{
	uint8_t t[4] = {(uint8_t)(type >> 24), (uint8_t)(type >> 16), (uint8_t)(type >> 8), (uint8_t)type};
	struct quote_digest d;
	if (!ret || (!content && len))
		return QUOTE_ERR_ARG;
	if (!quote_alg_digest_len(alg))
		return QUOTE_ERR_UNSUPPORTED;
	memset(&d, 0, sizeof d);
	if (quote_hash_buf(alg, t, 4, content, len, d.bytes, &d.len) != 0)
		return QUOTE_ERR_CRYPTO;
	d.alg = alg;
	*ret = d;
	return QUOTE_OK;
}

/* Takes ownership of content (malloc'd) on success. */
static enum quote_err push(struct quote_slog *log, const struct quote_slog_rec *r)
{
	if (log->n == log->cap) {
		size_t ncap = log->cap ? log->cap * 2 : 8;
		struct quote_slog_rec *n = realloc(log->recs, ncap * sizeof *n);
		if (!n)
			return QUOTE_ERR_NOMEM;
		log->recs = n;
		log->cap = ncap;
	}
	log->recs[log->n++] = *r;
	return QUOTE_OK;
}

enum quote_err quote_slog_append(struct quote_slog *log, unsigned pcr, uint32_t type, const uint8_t *content,
				 size_t content_len, const struct quote_pcr_selection *banks)
{
	struct quote_slog_rec r;
	enum quote_err err;
	uint8_t *copy;

	if (!log || !banks || pcr >= QUOTE_PCR_COUNT || (!content && content_len) || banks->n == 0 ||
	    banks->n > QUOTE_MAX_BANKS || content_len > QUOTE_EVENT_DATA_MAX)
		return QUOTE_ERR_ARG;
	memset(&r, 0, sizeof r);
	r.recnum = log->n;
	r.pcr = pcr;
	r.type = type;
	for (size_t b = 0; b < banks->n; b++)
		if ((err = quote_slog_event_digest(banks->bank[b].alg, type, content, content_len, &r.digests[b])) != QUOTE_OK)
			return err;
	r.n_digests = banks->n;
	if (!(copy = malloc(content_len ? content_len : 1)))
		return QUOTE_ERR_NOMEM;
	if (content_len)
		memcpy(copy, content, content_len);
	r.content = copy;
	r.content_len = content_len;
	if ((err = push(log, &r)) != QUOTE_OK)
		free(copy);
	return err;
}

/* ---- writer ---- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int oom;
};

static void wput(struct wbuf *w, const void *data, size_t n)
{
	if (w->oom)
		return;
	if (w->cap - w->len < n) {
		size_t ncap = w->cap ? w->cap : 256;
		uint8_t *np;
		while (ncap - w->len < n)
			ncap *= 2;
		if (!(np = realloc(w->p, ncap))) {
			w->oom = 1;
			return;
		}
		w->p = np;
		w->cap = ncap;
	}
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

/* CBOR heads come from libcbor's encoders, which pick the shortest form (RFC 8949 §4.2.1). */
enum whead_kind { WH_UINT, WH_BSTR, WH_ARRAY, WH_MAP };

static void whead(struct wbuf *w, enum whead_kind kind, uint64_t v)
{
	unsigned char h[9];
	size_t n = 0;
	switch (kind) {
	case WH_UINT:
		n = cbor_encode_uint(v, h, sizeof h);
		break;
	case WH_BSTR:
		n = cbor_encode_bytestring_start((size_t)v, h, sizeof h);
		break;
	case WH_ARRAY:
		n = cbor_encode_array_start((size_t)v, h, sizeof h);
		break;
	case WH_MAP:
		n = cbor_encode_map_start((size_t)v, h, sizeof h);
		break;
	}
	if (n == 0) {
		w->oom = 1;
		return;
	}
	wput(w, h, n);
}

enum quote_err quote_slog_encode(const struct quote_slog *log, uint8_t **ret, size_t *ret_len)
{
	struct wbuf w = {0};
	if (!log || !ret || !ret_len)
		return QUOTE_ERR_ARG;
	whead(&w, WH_ARRAY, log->n);
	for (size_t i = 0; i < log->n; i++) {
		const struct quote_slog_rec *r = &log->recs[i];
		whead(&w, WH_MAP, 5);
		whead(&w, WH_UINT, 0);
		whead(&w, WH_UINT, r->recnum);
		whead(&w, WH_UINT, 1);
		whead(&w, WH_UINT, r->pcr);
		whead(&w, WH_UINT, 2);
		whead(&w, WH_ARRAY, r->n_digests);
		for (size_t d = 0; d < r->n_digests; d++) {
			whead(&w, WH_ARRAY, 2);
			whead(&w, WH_UINT, r->digests[d].alg);
			whead(&w, WH_BSTR, r->digests[d].len);
			wput(&w, r->digests[d].bytes, r->digests[d].len);
		}
		whead(&w, WH_UINT, 3);
		whead(&w, WH_UINT, r->type);
		whead(&w, WH_UINT, 4);
		whead(&w, WH_BSTR, r->content_len);
		if (r->content_len)
			wput(&w, r->content, r->content_len);
	}
	if (w.oom) {
		free(w.p);
		return QUOTE_ERR_NOMEM;
	}
	*ret = w.p ? w.p : malloc(1);
	*ret_len = w.len;
	return *ret ? QUOTE_OK : QUOTE_ERR_NOMEM;
}

/* ---- reader ---- */

/* Decoding is libcbor's. Before any tree is built, one streaming pass (cbor_stream_decode,
 * which allocates nothing) bounds what cbor_load may allocate: apart from the log array
 * itself, every container holds at most SHAPE_WIDTH entries and nests at most SHAPE_DEPTH
 * deep; tags and indefinite lengths are refused. Records are then loaded one at a time, so
 * libcbor holds one record's small tree at a time (contents are capped at
 * QUOTE_EVENT_DATA_MAX). Determinism is checked last, by re-encoding the parsed log and
 * comparing bytes: any non-shortest head or out-of-order key fails that comparison. */
#define SHAPE_WIDTH QUOTE_MAX_BANKS /* a record map has 5 entries, at most QUOTE_MAX_BANKS digests */
#define SHAPE_DEPTH 4               /* log array, record map, digest list, [alg, digest] */

enum shape_kind { SHAPE_SCALAR, SHAPE_ARRAY, SHAPE_MAP };

struct shape {
	uint64_t left[SHAPE_DEPTH]; /* items still owed to each open container */
	size_t depth;
	int started, bad;
	uint64_t top_n; /* the log array's length */
};

static void shape_item(void *ctx, enum shape_kind kind, uint64_t n)
{
	struct shape *s = ctx;
	uint64_t entries = kind == SHAPE_MAP ? 2 * n : n;
	if (s->bad)
		return;
	if (!s->started) {
		s->started = 1;
		if (kind != SHAPE_ARRAY) {
			s->bad = 1;
			return;
		}
		s->top_n = n;
	} else {
		if (s->depth == 0) {
			s->bad = 1;
			return;
		}
		s->left[s->depth - 1]--;
		if (kind != SHAPE_SCALAR && (s->depth >= SHAPE_DEPTH || n > SHAPE_WIDTH)) {
			s->bad = 1;
			return;
		}
	}
	if (kind != SHAPE_SCALAR)
		s->left[s->depth++] = entries;
	while (s->depth > 0 && s->left[s->depth - 1] == 0)
		s->depth--;
}

static void sh_u8(void *c, uint8_t v) { (void)v; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_u16(void *c, uint16_t v) { (void)v; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_u32(void *c, uint32_t v) { (void)v; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_u64(void *c, uint64_t v) { (void)v; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_str(void *c, cbor_data d, size_t n) { (void)d; (void)n; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_simple(void *c) { shape_item(c, SHAPE_SCALAR, 0); }
static void sh_bool(void *c, bool v) { (void)v; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_f4(void *c, float v) { (void)v; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_f8(void *c, double v) { (void)v; shape_item(c, SHAPE_SCALAR, 0); }
static void sh_refuse(void *c) { ((struct shape *)c)->bad = 1; }
static void sh_tag(void *c, uint64_t v) { (void)v; ((struct shape *)c)->bad = 1; }
static void sh_array(void *c, size_t n) { shape_item(c, SHAPE_ARRAY, n); }
static void sh_map(void *c, size_t n) { shape_item(c, SHAPE_MAP, n); }

static const struct cbor_callbacks shape_cb = {
	.uint8 = sh_u8, .uint16 = sh_u16, .uint32 = sh_u32, .uint64 = sh_u64,
	.negint8 = sh_u8, .negint16 = sh_u16, .negint32 = sh_u32, .negint64 = sh_u64,
	.byte_string = sh_str, .byte_string_start = sh_refuse,
	.string = sh_str, .string_start = sh_refuse,
	.array_start = sh_array, .indef_array_start = sh_refuse,
	.map_start = sh_map, .indef_map_start = sh_refuse,
	.tag = sh_tag,
	.float2 = sh_f4, .float4 = sh_f4, .float8 = sh_f8,
	.undefined = sh_simple, .null = sh_simple, .boolean = sh_bool, .indef_break = sh_refuse,
};

/* Returns the bytes the log array spans (0 if buf does not start with a bounded log array). */
static size_t shape_check(const uint8_t *buf, size_t len, uint64_t *n)
{
	struct shape s;
	size_t off = 0;
	memset(&s, 0, sizeof s);
	while (off < len && !s.bad && (!s.started || s.depth > 0)) {
		struct cbor_decoder_result r = cbor_stream_decode(buf + off, len - off, &shape_cb, &s);
		if (r.status != CBOR_DECODER_FINISHED || r.read == 0)
			return 0;
		off += r.read;
	}
	if (s.bad || !s.started || s.depth > 0)
		return 0;
	*n = s.top_n;
	return off;
}

static int get_uint(const cbor_item_t *it, uint64_t max, uint64_t *ret)
{
	if (!cbor_isa_uint(it) || cbor_get_int(it) > max)
		return -1;
	*ret = cbor_get_int(it);
	return 0;
}

static int get_bstr(const cbor_item_t *it, size_t max, const uint8_t **ret, size_t *ret_len)
{
	if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it) || cbor_bytestring_length(it) > max)
		return -1;
	*ret = cbor_bytestring_handle(it);
	*ret_len = cbor_bytestring_length(it);
	return 0;
}

/* rec->content points into item; the caller copies it before releasing item. */
static enum quote_err parse_rec(const cbor_item_t *item, size_t idx, struct quote_slog_rec *rec,
				struct quote_diag *diag)
{
	struct cbor_pair *pairs;
	unsigned seen = 0;
	uint64_t v;

	memset(rec, 0, sizeof *rec);
	if (!cbor_isa_map(item) || !cbor_map_is_definite(item) || cbor_map_size(item) != 5) {
		quote_diag_set(diag, "record %zu is not a map of 5 entries", idx);
		return QUOTE_ERR_EVENTLOG;
	}
	pairs = cbor_map_handle(item);
	for (size_t k = 0; k < 5; k++) {
		uint64_t key;
		const cbor_item_t *val = pairs[k].value;
		if (get_uint(pairs[k].key, 4, &key) != 0 || (seen & (1u << key))) {
			quote_diag_set(diag, "record %zu: bad or repeated key", idx);
			return QUOTE_ERR_EVENTLOG;
		}
		seen |= 1u << key;
		switch (key) {
		case 0:
			if (get_uint(val, UINT64_MAX, &v) != 0)
				goto bad;
			rec->recnum = v;
			break;
		case 1:
			if (get_uint(val, QUOTE_PCR_COUNT - 1, &v) != 0)
				goto bad;
			rec->pcr = (unsigned)v;
			break;
		case 2: {
			size_t nd;
			cbor_item_t **ds;
			if (!cbor_isa_array(val) || !cbor_array_is_definite(val) || (nd = cbor_array_size(val)) == 0 ||
			    nd > QUOTE_MAX_BANKS)
				goto bad;
			ds = cbor_array_handle(val);
			for (size_t d = 0; d < nd; d++) {
				uint64_t alg;
				const uint8_t *dig;
				size_t dl;
				cbor_item_t **pair;
				if (!cbor_isa_array(ds[d]) || !cbor_array_is_definite(ds[d]) || cbor_array_size(ds[d]) != 2)
					goto bad;
				pair = cbor_array_handle(ds[d]);
				if (get_uint(pair[0], 0xffff, &alg) != 0 || get_bstr(pair[1], QUOTE_MAX_DIGEST, &dig, &dl) != 0)
					goto bad;
				if (quote_alg_digest_len((uint16_t)alg) != dl)
					goto bad;
				for (size_t e = 0; e < d; e++)
					if (rec->digests[e].alg == alg)
						goto bad;
				rec->digests[d].alg = (uint16_t)alg;
				rec->digests[d].len = dl;
				memcpy(rec->digests[d].bytes, dig, dl);
			}
			rec->n_digests = nd;
			break;
		}
		case 3:
			if (get_uint(val, UINT32_MAX, &v) != 0)
				goto bad;
			rec->type = (uint32_t)v;
			break;
		case 4:
			if (get_bstr(val, QUOTE_EVENT_DATA_MAX, &rec->content, &rec->content_len) != 0)
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (seen != 0x1f)
		goto bad;
	if (rec->recnum != idx) {
		quote_diag_set(diag, "record %zu carries recnum %llu", idx, (unsigned long long)rec->recnum);
		if (diag)
			diag->event = (long)idx;
		return QUOTE_ERR_EVENTLOG;
	}
	return QUOTE_OK;
bad:
	quote_diag_set(diag, "record %zu malformed", idx);
	if (diag)
		diag->event = (long)idx;
	return QUOTE_ERR_EVENTLOG;
}

enum quote_err quote_slog_parse(const uint8_t *buf, size_t len, struct quote_slog **ret, struct quote_diag *diag)
{
	struct quote_slog *log = NULL;
	enum quote_err err;
	uint64_t n = 0;
	size_t end, off;
	uint8_t *enc = NULL;
	size_t enc_len = 0;

	quote_diag_reset(diag);
	if (!ret || (!buf && len))
		return QUOTE_ERR_ARG;
	if (len > QUOTE_EVENTLOG_MAX) {
		quote_diag_set(diag, "sluice event log of %zu bytes (max %u)", len, QUOTE_EVENTLOG_MAX);
		return QUOTE_ERR_TOO_LARGE;
	}
	if ((err = quote_slog_new(&log)) != QUOTE_OK)
		return err;
	if (len == 0) {
		*ret = log;
		return QUOTE_OK;
	}
	err = QUOTE_ERR_EVENTLOG;
	if (!(end = shape_check(buf, len, &n)) || n > len) {
		quote_diag_set(diag, "sluice event log is not a CBOR array");
		goto fail;
	}
	if (end != len) {
		quote_diag_set(diag, "%zu trailing bytes after the sluice event log", len - end);
		goto fail;
	}
	/* skip the array head, then load each record on its own */
	{
		struct cbor_decoder_result r = cbor_stream_decode(buf, len, &cbor_empty_callbacks, NULL);
		if (r.status != CBOR_DECODER_FINISHED)
			goto fail;
		off = r.read;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct quote_slog_rec rec;
		struct cbor_load_result res;
		cbor_item_t *item = cbor_load(buf + off, end - off, &res);
		uint8_t *copy;
		if (!item || res.error.code != CBOR_ERR_NONE) {
			if (item)
				cbor_decref(&item);
			quote_diag_set(diag, "record %zu malformed", (size_t)i);
			if (diag)
				diag->event = (long)i;
			err = res.error.code == CBOR_ERR_MEMERROR ? QUOTE_ERR_NOMEM : QUOTE_ERR_EVENTLOG;
			goto fail;
		}
		off += res.read;
		if ((err = parse_rec(item, (size_t)i, &rec, diag)) != QUOTE_OK) {
			cbor_decref(&item);
			goto fail;
		}
		copy = malloc(rec.content_len ? rec.content_len : 1);
		if (copy && rec.content_len)
			memcpy(copy, rec.content, rec.content_len);
		cbor_decref(&item);
		err = QUOTE_ERR_NOMEM;
		if (!copy)
			goto fail;
		rec.content = copy;
		if ((err = push(log, &rec)) != QUOTE_OK) {
			free(copy);
			goto fail;
		}
	}
	if (off != end) {
		quote_diag_set(diag, "%zu trailing bytes after the sluice event log", len - off);
		err = QUOTE_ERR_EVENTLOG;
		goto fail;
	}
	/* deterministic encoding (RFC 8949 §4.2.1): the canonical re-encoding must be the input */
	if ((err = quote_slog_encode(log, &enc, &enc_len)) != QUOTE_OK)
		goto fail;
	if (enc_len != len || CRYPTO_memcmp(enc, buf, len) != 0) {
		quote_diag_set(diag, "sluice event log is not deterministic CBOR (RFC 8949 4.2.1)");
		err = QUOTE_ERR_EVENTLOG;
		free(enc);
		goto fail;
	}
	free(enc);
	*ret = log;
	return QUOTE_OK;
fail:
	quote_slog_free(log);
	return err;
}

enum quote_err quote_slog_replay(const struct quote_slog *log, struct quote_pcr_values *v, struct quote_diag *diag)
{
	if (!log || !v)
		return QUOTE_ERR_ARG;
	for (size_t i = 0; i < log->n; i++) {
		const struct quote_slog_rec *r = &log->recs[i];
		for (size_t d = 0; d < r->n_digests; d++) {
			struct quote_digest want;
			enum quote_err err = quote_slog_event_digest(r->digests[d].alg, r->type, r->content,
								     r->content_len, &want);
			if (err != QUOTE_OK)
				return err;
			if (want.len != r->digests[d].len || CRYPTO_memcmp(want.bytes, r->digests[d].bytes, want.len)) {
				quote_diag_set(diag, "sluice record %zu: %s digest does not match its type and content", i,
					 quote_alg_name(r->digests[d].alg));
				if (diag) {
					diag->event = (long)i;
					diag->pcr = (int)r->pcr;
					diag->alg = r->digests[d].alg;
				}
				quote_diag_values(diag, r->digests[d].bytes, want.bytes, want.len);
				return QUOTE_ERR_EVENT_TYPE;
			}
		}
		for (size_t b = 0; b < v->sel.n; b++) {
			uint16_t alg = v->sel.bank[b].alg;
			int found = 0;
			if (!(v->sel.bank[b].mask & (1u << r->pcr)))
				continue;
			for (size_t d = 0; d < r->n_digests; d++) {
				if (r->digests[d].alg != alg)
					continue;
				found = 1;
				quote_pcr_value_extend(v, alg, r->pcr, r->digests[d].bytes, r->digests[d].len);
			}
			if (!found) {
				quote_diag_set(diag, "sluice record %zu has no %s digest", i, quote_alg_name(alg));
				if (diag) {
					diag->event = (long)i;
					diag->pcr = (int)r->pcr;
					diag->alg = alg;
				}
				return QUOTE_ERR_EVENTLOG;
			}
		}
	}
	return QUOTE_OK;
}
