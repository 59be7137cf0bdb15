/* Request bodies for the verifier API. A request with Content-Type application/cbor carries the
 * same fields as the JSON one, as a CBOR map with text keys; binary fields are byte strings
 * (base64 strings in JSON). Answers are CBOR when the request's Accept names application/cbor;
 * problems are then concise problem details (RFC 9290, {-1: title, -2: detail}).
 * Internally everything is JSON: these functions convert at the edge. */
#include "verifier/verifier-int.h"
#include "bundle/bundle.h"

#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64

/* Fields carried as bytes in CBOR and as base64 strings in JSON. */
static int is_binary(const char *k)
{
	static const char *const names[] = {"evidence",  "statement",      "receipt",           "ek_public",
					    "ek_cert",   "ak_public",      "secret",            "credential",
					    "verdict",   "verdict_statement", "verdict_receipt", NULL};
	for (size_t i = 0; names[i]; i++)
		if (strcmp(k, names[i]) == 0)
			return 1;
	return 0;
}

/* One CBOR head at *off: major type and argument. Definite lengths only (the request shape has
 * no place for indefinite items); the caller checks lengths against what is left. */
static int head(const uint8_t *b, size_t len, size_t *off, int *mt, uint64_t *arg)
{
	uint8_t ib, ai;
	size_t n;
	if (*off >= len)
		return -1;
	ib = b[(*off)++];
	*mt = ib >> 5;
	ai = ib & 0x1f;
	if (ai < 24) {
		*arg = ai;
		return 0;
	}
	if (ai > 27)
		return -1;
	n = (size_t)1 << (ai - 24);
	if (len - *off < n)
		return -1;
	*arg = 0;
	for (size_t i = 0; i < n; i++)
		*arg = *arg << 8 | b[(*off)++];
	return 0;
}

/* The body is read in place, head by head, and refused at the first item that is not part of
 * a definite map of at most MAX_FIELDS short text keys with scalar values: nothing is
 * allocated for an item before it is known to fit that shape, so the memory a body costs is
 * bounded by the JSON object it becomes (about 4/3 of its size). */
json_t *verifier_cbor_to_json(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	json_t *out = NULL;
	size_t off = 0;
	uint64_t n, a;
	int mt;

	/* Well-formed, definite, bounded depth, declared lengths within the input. */
	if (bundle_cbor_check(buf, len, 0) != BUNDLE_OK) {
		snprintf(err, errlen, "not one well-formed CBOR item (%s)", bundle_last_cause());
		return NULL;
	}
	if (head(buf, len, &off, &mt, &n) || mt != 5 || n > MAX_FIELDS) {
		snprintf(err, errlen, "the body must be a definite CBOR map of at most %d fields", MAX_FIELDS);
		return NULL;
	}
	if (!(out = json_object()))
		goto bad;
	for (uint64_t i = 0; i < n; i++) {
		char key[64];
		json_t *jv = NULL;
		if (head(buf, len, &off, &mt, &a) || mt != 3 || a >= sizeof key || len - off < a) {
			snprintf(err, errlen, "map keys must be short text strings");
			goto bad;
		}
		memcpy(key, buf + off, (size_t)a);
		key[a] = 0;
		off += (size_t)a;
		if (memchr(key, 0, (size_t)a) || json_object_get(out, key)) {
			snprintf(err, errlen, "bad or duplicate key \"%s\"", key);
			goto bad;
		}
		if (head(buf, len, &off, &mt, &a) == 0) {
			if ((mt == 2 || mt == 3) && a <= len - off) {
				if (mt == 2) {
					char *b = verifier_b64_encode(buf + off, (size_t)a);
					jv = b ? json_string(b) : NULL;
					free(b);
				} else {
					jv = json_stringn((const char *)buf + off, (size_t)a);
				}
				off += (size_t)a;
			} else if (mt == 0 && a <= INT64_MAX) {
				jv = json_integer((json_int_t)a);
			} else if (mt == 7 && (a == 20 || a == 21)) {
				jv = json_boolean(a == 21);
			}
		}
		if (!jv) {
			snprintf(err, errlen, "field \"%s\": want a byte string, text string, unsigned integer or bool", key);
			goto bad;
		}
		json_object_set_new(out, key, jv);
	}
	if (off != len) {
		snprintf(err, errlen, "trailing bytes after the map");
		goto bad;
	}
	return out;
bad:
	if (!out)
		snprintf(err, errlen, "out of memory");
	json_decref(out);
	return NULL;
}

int verifier_json_shape_check(const char *buf, size_t len, char *err, size_t errlen)
{
	size_t i = 0, keys = 0;
	int depth = 0, in_str = 0, key_next = 1;

	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (i == len || buf[i] != '{') {
		snprintf(err, errlen, "body is not a JSON object");
		return -1;
	}
	for (; i < len; i++) {
		char c = buf[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		switch (c) {
		case '"':
			in_str = 1;
			if (depth == 1 && key_next) {
				if (++keys > MAX_FIELDS) {
					snprintf(err, errlen, "body is not a JSON object of at most %d fields", MAX_FIELDS);
					return -1;
				}
				key_next = 0;
			}
			break;
		case ',':
			key_next = 1;
			break;
		case '{':
		case '[':
			if (++depth > 1) {
				snprintf(err, errlen, "field values must be strings, numbers or booleans");
				return -1;
			}
			break;
		case '}':
		case ']':
			depth--;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Shortest-form integers (libcbor encodes with the width the item was built with). */
static cbor_item_t *build_int(json_int_t v)
{
	uint64_t u = v >= 0 ? (uint64_t)v : (uint64_t)(-1 - v);
	cbor_item_t *c;
	if (u <= UINT8_MAX)
		c = v >= 0 ? cbor_build_uint8((uint8_t)u) : cbor_build_negint8((uint8_t)u);
	else if (u <= UINT16_MAX)
		c = v >= 0 ? cbor_build_uint16((uint16_t)u) : cbor_build_negint16((uint16_t)u);
	else if (u <= UINT32_MAX)
		c = v >= 0 ? cbor_build_uint32((uint32_t)u) : cbor_build_negint32((uint32_t)u);
	else
		c = v >= 0 ? cbor_build_uint64(u) : cbor_build_negint64(u);
	return c;
}

static cbor_item_t *conv(json_t *j, const char *key)
{
	cbor_item_t *c = NULL;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		c = cbor_new_definite_map(json_object_size(j));
		json_object_foreach(j, k, v) {
			cbor_item_t *ck = cbor_build_string(k), *cv = conv(v, k);
			if (!c || !ck || !cv || !cbor_map_add(c, (struct cbor_pair){.key = ck, .value = cv})) {
				if (ck)
					cbor_decref(&ck);
				if (cv)
					cbor_decref(&cv);
				if (c)
					cbor_decref(&c);
				return NULL;
			}
			cbor_decref(&ck);
			cbor_decref(&cv);
		}
		return c;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		c = cbor_new_definite_array(json_array_size(j));
		json_array_foreach(j, i, v) {
			cbor_item_t *cv = conv(v, NULL);
			if (!c || !cv || !cbor_array_push(c, cv)) {
				if (cv)
					cbor_decref(&cv);
				if (c)
					cbor_decref(&c);
				return NULL;
			}
			cbor_decref(&cv);
		}
		return c;
	}
	case JSON_STRING:
		if (key && is_binary(key)) {
			uint8_t *b = NULL;
			size_t n = 0;
			if (verifier_b64_decode(json_string_value(j), 1u << 26, &b, &n) == 0) {
				c = cbor_build_bytestring(b, n);
				free(b);
				return c;
			}
		}
		return cbor_build_stringn(json_string_value(j), json_string_length(j));
	case JSON_INTEGER:
		return build_int(json_integer_value(j));
	case JSON_TRUE:
		return cbor_build_bool(true);
	case JSON_FALSE:
		return cbor_build_bool(false);
	case JSON_REAL:
		return cbor_build_float8(json_real_value(j));
	case JSON_NULL:
		return cbor_build_ctrl(CBOR_CTRL_NULL);
	}
	return NULL;
}

int verifier_json_to_cbor(json_t *j, uint8_t **ret, size_t *ret_len)
{
	cbor_item_t *c = conv(j, NULL);
	unsigned char *buf = NULL;
	size_t cap = 0, n;
	if (!c)
		return -1;
	n = cbor_serialize_alloc(c, &buf, &cap);
	cbor_decref(&c);
	if (!n) {
		free(buf);
		return -1;
	}
	*ret = buf;
	*ret_len = n;
	return 0;
}
