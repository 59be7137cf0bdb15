/* The sluice event log: a CBOR array of CEL-style records
 *   {0: recnum, 1: pcr, 2: [[alg, digest], ...], 3: type, 4: content}
 * Encoding is deterministic (RFC 8949 §4.2.1: shortest heads, definite lengths, map keys
 * in order). The parser is a small bounded reader for exactly this shape: definite
 * lengths only, every count checked against the bytes left. Record contents are copied. */
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

struct rbuf {
	const uint8_t *p, *end;
};

/* Read one head; only definite lengths, no tags, no floats/simple values. */
static int rhead(struct rbuf *r, unsigned *major, uint64_t *val)
{
	unsigned ai, n;
	uint64_t v = 0;
	if (r->p >= r->end)
		return -1;
	*major = *r->p >> 5;
	ai = *r->p & 31;
	r->p++;
	if (ai < 24) {
		*val = ai;
		return 0;
	}
	if (ai > 27)
		return -1;
	n = 1u << (ai - 24);
	if ((size_t)(r->end - r->p) < n)
		return -1;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | *r->p++;
	*val = v;
	return 0;
}

static int ruint(struct rbuf *r, uint64_t max, uint64_t *ret)
{
	unsigned m;
	uint64_t v;
	if (rhead(r, &m, &v) != 0 || m != 0 || v > max)
		return -1;
	*ret = v;
	return 0;
}

static int rbstr(struct rbuf *r, size_t max, const uint8_t **ret, size_t *ret_len)
{
	unsigned m;
	uint64_t v;
	if (rhead(r, &m, &v) != 0 || m != 2 || v > max || v > (uint64_t)(r->end - r->p))
		return -1;
	*ret = r->p;
	*ret_len = (size_t)v;
	r->p += v;
	return 0;
}

static enum quote_err parse_rec(struct rbuf *rb, size_t idx, struct quote_slog_rec *rec, struct quote_diag *diag)
{
	unsigned m;
	uint64_t n, v;
	unsigned seen = 0;

	memset(rec, 0, sizeof *rec);
	if (rhead(rb, &m, &n) != 0 || m != 5 || n != 5) {
		quote_diag_set(diag, "record %zu is not a map of 5 entries", idx);
		return QUOTE_ERR_EVENTLOG;
	}
	for (uint64_t k = 0; k < n; k++) {
		uint64_t key;
		if (ruint(rb, 4, &key) != 0 || (seen & (1u << key))) {
			quote_diag_set(diag, "record %zu: bad or repeated key", idx);
			return QUOTE_ERR_EVENTLOG;
		}
		seen |= 1u << key;
		switch (key) {
		case 0:
			if (ruint(rb, UINT64_MAX, &v) != 0)
				goto bad;
			rec->recnum = v;
			break;
		case 1:
			if (ruint(rb, QUOTE_PCR_COUNT - 1, &v) != 0)
				goto bad;
			rec->pcr = (unsigned)v;
			break;
		case 2: {
			uint64_t nd;
			if (rhead(rb, &m, &nd) != 0 || m != 4 || nd == 0 || nd > QUOTE_MAX_BANKS)
				goto bad;
			for (uint64_t d = 0; d < nd; d++) {
				uint64_t two, alg;
				const uint8_t *dig;
				size_t dl;
				if (rhead(rb, &m, &two) != 0 || m != 4 || two != 2 || ruint(rb, 0xffff, &alg) != 0 ||
				    rbstr(rb, QUOTE_MAX_DIGEST, &dig, &dl) != 0)
					goto bad;
				if (quote_alg_digest_len((uint16_t)alg) != dl)
					goto bad;
				for (uint64_t e = 0; e < d; e++)
					if (rec->digests[e].alg == alg)
						goto bad;
				rec->digests[d].alg = (uint16_t)alg;
				rec->digests[d].len = dl;
				memcpy(rec->digests[d].bytes, dig, dl);
			}
			rec->n_digests = (size_t)nd;
			break;
		}
		case 3:
			if (ruint(rb, UINT32_MAX, &v) != 0)
				goto bad;
			rec->type = (uint32_t)v;
			break;
		case 4:
			if (rbstr(rb, QUOTE_EVENT_DATA_MAX, &rec->content, &rec->content_len) != 0)
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
	struct rbuf rb = {buf, buf + len};
	struct quote_slog *log = NULL;
	enum quote_err err;
	unsigned m;
	uint64_t n;

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
	if (rhead(&rb, &m, &n) != 0 || m != 4 || n > len) {
		quote_diag_set(diag, "sluice event log is not a CBOR array");
		goto fail;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct quote_slog_rec rec;
		uint8_t *copy;
		if ((err = parse_rec(&rb, (size_t)i, &rec, diag)) != QUOTE_OK)
			goto fail;
		err = QUOTE_ERR_NOMEM;
		if (!(copy = malloc(rec.content_len ? rec.content_len : 1)))
			goto fail;
		if (rec.content_len)
			memcpy(copy, rec.content, rec.content_len);
		rec.content = copy;
		if ((err = push(log, &rec)) != QUOTE_OK) {
			free(copy);
			goto fail;
		}
	}
	if (rb.p != rb.end) {
		quote_diag_set(diag, "%zu trailing bytes after the sluice event log", (size_t)(rb.end - rb.p));
		err = QUOTE_ERR_EVENTLOG;
		goto fail;
	}
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
