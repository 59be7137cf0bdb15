/* Minimal deterministic CBOR for sluice-ts: a writer for receipts, keys and problem details,
 * and a bounded reader used to check statements and splice their unprotected header. */
#include "transparency/ts-int.h"

#include <stdlib.h>
#include <string.h>

void ts_buf_free(struct ts_buf *b)
{
	if (!b)
		return;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void ts_buf_put(struct ts_buf *b, const void *data, size_t len)
{
	if (b->oom || len == 0)
		return;
	if (b->len + len > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + len)
			ncap *= 2;
		uint8_t *n = realloc(b->p, ncap);
		if (!n) {
			b->oom = 1;
			return;
		}
		b->p = n;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void ts_cbor_head(struct ts_buf *b, unsigned major, uint64_t v)
{
	uint8_t h[9];
	size_t n;
	major <<= 5;
	if (v < 24) {
		h[0] = (uint8_t)(major | v);
		n = 1;
	} else if (v <= 0xff) {
		h[0] = (uint8_t)(major | 24);
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = (uint8_t)(major | 25);
		h[1] = (uint8_t)(v >> 8);
		h[2] = (uint8_t)v;
		n = 3;
	} else if (v <= 0xffffffffu) {
		h[0] = (uint8_t)(major | 26);
		for (int i = 0; i < 4; i++)
			h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		n = 5;
	} else {
		h[0] = (uint8_t)(major | 27);
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		n = 9;
	}
	ts_buf_put(b, h, n);
}

void ts_cbor_uint(struct ts_buf *b, uint64_t v) { ts_cbor_head(b, 0, v); }

void ts_cbor_int(struct ts_buf *b, int64_t v)
{
	if (v >= 0)
		ts_cbor_head(b, 0, (uint64_t)v);
	else
		ts_cbor_head(b, 1, (uint64_t)(-1 - v));
}

void ts_cbor_bstr(struct ts_buf *b, const void *data, size_t len)
{
	ts_cbor_head(b, 2, len);
	ts_buf_put(b, data, len);
}

void ts_cbor_tstr(struct ts_buf *b, const char *s)
{
	size_t n = strlen(s);
	ts_cbor_head(b, 3, n);
	ts_buf_put(b, s, n);
}

int ts_cbor_next(struct ts_cbor_rd *r, struct ts_cbor_item *it)
{
	const uint8_t *p = r->p;
	uint64_t v = 0;
	unsigned ai, extra;

	if (p >= r->end)
		return -1;
	it->start = p;
	it->major = *p >> 5;
	ai = *p & 31;
	p++;
	if (ai < 24) {
		v = ai;
		extra = 0;
	} else if (ai <= 27) {
		extra = 1u << (ai - 24);
		if ((size_t)(r->end - p) < extra)
			return -1;
		for (unsigned i = 0; i < extra; i++)
			v = v << 8 | p[i];
		p += extra;
		/* shortest form only */
		if ((extra == 1 && v < 24) || (extra == 2 && v <= 0xff) || (extra == 4 && v <= 0xffff) ||
		    (extra == 8 && v <= 0xffffffffu))
			if (it->major != 7)
				return -1;
	} else {
		return -1; /* reserved or indefinite length */
	}
	it->val = v;
	it->data = NULL;
	if (it->major == 2 || it->major == 3) {
		if (v > (uint64_t)(r->end - p))
			return -1;
		it->data = p;
		p += v;
	}
	r->p = p;
	return 0;
}

static int skip_depth(struct ts_cbor_rd *r, int depth)
{
	struct ts_cbor_item it;
	if (depth > 16 || ts_cbor_next(r, &it) != 0)
		return -1;
	switch (it.major) {
	case 4:
		if (it.val > (uint64_t)(r->end - r->p))
			return -1;
		for (uint64_t i = 0; i < it.val; i++)
			if (skip_depth(r, depth + 1) != 0)
				return -1;
		return 0;
	case 5:
		if (it.val > (uint64_t)(r->end - r->p) / 2)
			return -1;
		for (uint64_t i = 0; i < 2 * it.val; i++)
			if (skip_depth(r, depth + 1) != 0)
				return -1;
		return 0;
	case 6:
		return skip_depth(r, depth + 1);
	default:
		return 0;
	}
}

int ts_cbor_skip(struct ts_cbor_rd *r) { return skip_depth(r, 0); }

int ts_cbor_as_int(const struct ts_cbor_item *it, int64_t *out)
{
	if (it->major == 0 && it->val <= INT64_MAX) {
		*out = (int64_t)it->val;
		return 0;
	}
	if (it->major == 1 && it->val <= INT64_MAX) {
		*out = -1 - (int64_t)it->val;
		return 0;
	}
	return -1;
}
