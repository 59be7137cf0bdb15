/* The measured record: deterministic CBOR [path, type, mode, uid, gid, size, digest].
 * Encoding uses libcbor's head encoders (always the shortest form); decoding uses libcbor's
 * streaming decoder (no allocation, data borrowed from the input) and then re-encodes the
 * record and compares, so only the one canonical encoding of a record is accepted. */
#include "measure/measure-int.h"

#include <string.h>

#include <cbor.h>

int record_path_valid(const uint8_t *p, size_t n)
{
	size_t i = 1;

	if (n < 1 || n > MEASURE_MAX_PATH || p[0] != '/')
		return 0;
	if (n == 1)
		return 1; /* the root "/" */
	while (i <= n) {
		size_t s = i;
		while (i < n && p[i] != '/') {
			if (p[i] == 0)
				return 0;
			i++;
		}
		/* component p[s..i) */
		if (i == s)
			return 0; /* empty: "//" or trailing "/" */
		if ((i - s == 1 && p[s] == '.') || (i - s == 2 && p[s] == '.' && p[s + 1] == '.'))
			return 0;
		i++;
	}
	return 1;
}

static size_t want_digest_len(unsigned type)
{
	switch (type) {
	case MEASURE_TYPE_REG:
	case MEASURE_TYPE_SYMLINK:
	case MEASURE_TYPE_CHR:
	case MEASURE_TYPE_BLK:
		return MEASURE_DIGEST_LEN;
	case MEASURE_TYPE_DIR:
	case MEASURE_TYPE_FIFO:
		return 0;
	default:
		return (size_t)-1;
	}
}

int record_fields_valid(const struct measure_record *r)
{
	if (!record_path_valid(r->path, r->path_len))
		return 0;
	if (want_digest_len(r->type) != r->digest_len)
		return 0;
	if (r->mode > 07777)
		return 0;
	if (r->size && r->type != MEASURE_TYPE_REG && r->type != MEASURE_TYPE_SYMLINK)
		return 0;
	return 1;
}

size_t measure_record_encode(const struct measure_record *r, uint8_t *buf, size_t cap)
{
	size_t o = 0, n;

	if (!r || !buf || !record_fields_valid(r))
		return 0;
#define PUT(call)                  \
	do {                       \
		if (!(n = (call))) \
			return 0;  \
		o += n;            \
	} while (0)
	PUT(cbor_encode_array_start(7, buf + o, cap - o));
	PUT(cbor_encode_bytestring_start(r->path_len, buf + o, cap - o));
	if (cap - o < r->path_len)
		return 0;
	memcpy(buf + o, r->path, r->path_len);
	o += r->path_len;
	PUT(cbor_encode_uint(r->type, buf + o, cap - o));
	PUT(cbor_encode_uint(r->mode, buf + o, cap - o));
	PUT(cbor_encode_uint(r->uid, buf + o, cap - o));
	PUT(cbor_encode_uint(r->gid, buf + o, cap - o));
	PUT(cbor_encode_uint(r->size, buf + o, cap - o));
	PUT(cbor_encode_bytestring_start(r->digest_len, buf + o, cap - o));
	if (cap - o < r->digest_len)
		return 0;
	memcpy(buf + o, r->digest, r->digest_len);
	o += r->digest_len;
#undef PUT
	return o;
}

/* Streaming decoder glue: each call decodes one head (or one definite string). */
static void on_uint8(void *c, uint8_t v) { struct item *it = c; it->kind = ITEM_UINT; it->u = v; }
static void on_uint16(void *c, uint16_t v) { struct item *it = c; it->kind = ITEM_UINT; it->u = v; }
static void on_uint32(void *c, uint32_t v) { struct item *it = c; it->kind = ITEM_UINT; it->u = v; }
static void on_uint64(void *c, uint64_t v) { struct item *it = c; it->kind = ITEM_UINT; it->u = v; }
static void on_bstr(void *c, cbor_data d, size_t n) { struct item *it = c; it->kind = ITEM_BSTR; it->data = d; it->u = n; }
static void on_tstr(void *c, cbor_data d, size_t n) { struct item *it = c; it->kind = ITEM_TSTR; it->data = d; it->u = n; }
static void on_array(void *c, size_t n) { struct item *it = c; it->kind = ITEM_ARRAY; it->u = n; }

/* Every slot set: libcbor calls each without a NULL check. Items we do not expect keep
 * kind ITEM_NONE and are rejected. */
static const struct cbor_callbacks callbacks = {
	.uint8 = on_uint8,
	.uint16 = on_uint16,
	.uint32 = on_uint32,
	.uint64 = on_uint64,
	.negint8 = cbor_null_negint8_callback,
	.negint16 = cbor_null_negint16_callback,
	.negint32 = cbor_null_negint32_callback,
	.negint64 = cbor_null_negint64_callback,
	.byte_string_start = cbor_null_byte_string_start_callback,
	.byte_string = on_bstr,
	.string = on_tstr,
	.string_start = cbor_null_string_start_callback,
	.indef_array_start = cbor_null_indef_array_start_callback,
	.array_start = on_array,
	.indef_map_start = cbor_null_indef_map_start_callback,
	.map_start = cbor_null_map_start_callback,
	.tag = cbor_null_tag_callback,
	.float2 = cbor_null_float2_callback,
	.float4 = cbor_null_float4_callback,
	.float8 = cbor_null_float8_callback,
	.undefined = cbor_null_undefined_callback,
	.null = cbor_null_null_callback,
	.boolean = cbor_null_boolean_callback,
	.indef_break = cbor_null_indef_break_callback,
};

int item_next(const uint8_t *buf, size_t len, size_t *pos, struct item *it)
{
	struct cbor_decoder_result r;

	memset(it, 0, sizeof *it);
	if (*pos >= len)
		return -1;
	r = cbor_stream_decode(buf + *pos, len - *pos, &callbacks, it);
	if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || it->kind == ITEM_NONE)
		return -1;
	*pos += r.read;
	return 0;
}

enum measure_err record_decode_prefix(const uint8_t *buf, size_t len, struct measure_record *out, size_t *used)
{
	struct item it;
	size_t pos = 0;
	uint64_t v[5];
	struct measure_record r;
	uint8_t again[MEASURE_MAX_PATH + 64];
	size_t n;

	memset(&r, 0, sizeof r);
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_ARRAY || it.u != 7)
		return MEASURE_ERR_MANIFEST;
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_BSTR || it.u > MEASURE_MAX_PATH)
		return MEASURE_ERR_MANIFEST;
	r.path = it.data;
	r.path_len = it.u;
	for (int i = 0; i < 5; i++) {
		if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_UINT)
			return MEASURE_ERR_MANIFEST;
		v[i] = it.u;
	}
	if (v[0] > 255 || v[1] > 07777 || v[2] > UINT32_MAX || v[3] > UINT32_MAX)
		return MEASURE_ERR_MANIFEST;
	r.type = (unsigned)v[0];
	r.mode = (uint32_t)v[1];
	r.uid = (uint32_t)v[2];
	r.gid = (uint32_t)v[3];
	r.size = v[4];
	if (item_next(buf, len, &pos, &it) != 0 || it.kind != ITEM_BSTR || it.u > MEASURE_DIGEST_LEN)
		return MEASURE_ERR_MANIFEST;
	r.digest_len = it.u;
	memcpy(r.digest, it.data, it.u);
	if (!record_fields_valid(&r))
		return MEASURE_ERR_MANIFEST;
	n = measure_record_encode(&r, again, sizeof again);
	if (n != pos || memcmp(again, buf, n) != 0)
		return MEASURE_ERR_MANIFEST; /* not the canonical encoding */
	*out = r;
	*used = pos;
	return MEASURE_OK;
}

enum measure_err measure_record_decode(const uint8_t *buf, size_t len, struct measure_record *out)
{
	struct measure_record r;
	size_t used = 0;
	enum measure_err e;

	if (!buf || !out)
		return MEASURE_ERR_INVAL;
	e = record_decode_prefix(buf, len, &r, &used);
	if (e != MEASURE_OK)
		return e;
	if (used != len)
		return MEASURE_ERR_MANIFEST;
	*out = r;
	return MEASURE_OK;
}
