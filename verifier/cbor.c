/* CBOR bodies for the verifier API. A request with Content-Type application/cbor carries the
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

json_t *verifier_cbor_to_json(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	struct cbor_load_result res;
	cbor_item_t *item = NULL;
	json_t *out = NULL;
	struct cbor_pair *pairs;
	size_t n;

	/* Well-formed, definite, bounded depth, declared lengths within the input: checked before
	 * libcbor allocates anything for it. */
	if (bundle_cbor_check(buf, len, 0) != BUNDLE_OK) {
		snprintf(err, errlen, "not one well-formed CBOR item (%s)", bundle_last_cause());
		return NULL;
	}
	item = cbor_load(buf, len, &res);
	if (!item || res.error.code != CBOR_ERR_NONE || res.read != len) {
		snprintf(err, errlen, "not one well-formed CBOR item");
		goto out;
	}
	if (!cbor_isa_map(item) || !cbor_map_is_definite(item) || (n = cbor_map_size(item)) > MAX_FIELDS) {
		snprintf(err, errlen, "the body must be a definite CBOR map of at most %d fields", MAX_FIELDS);
		goto out;
	}
	out = json_object();
	pairs = cbor_map_handle(item);
	for (size_t i = 0; i < n && out; i++) {
		cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
		char key[64];
		json_t *jv = NULL;
		if (!cbor_isa_string(k) || !cbor_string_is_definite(k) || cbor_string_length(k) >= sizeof key) {
			snprintf(err, errlen, "map keys must be short text strings");
			goto bad;
		}
		memcpy(key, cbor_string_handle(k), cbor_string_length(k));
		key[cbor_string_length(k)] = 0;
		if (memchr(key, 0, cbor_string_length(k)) || json_object_get(out, key)) {
			snprintf(err, errlen, "bad or duplicate key \"%s\"", key);
			goto bad;
		}
		if (cbor_isa_bytestring(v) && cbor_bytestring_is_definite(v)) {
			char *b = verifier_b64_encode(cbor_bytestring_handle(v), cbor_bytestring_length(v));
			jv = b ? json_string(b) : NULL;
			free(b);
		} else if (cbor_isa_string(v) && cbor_string_is_definite(v)) {
			jv = json_stringn((const char *)cbor_string_handle(v), cbor_string_length(v));
		} else if (cbor_isa_uint(v) && cbor_get_int(v) <= INT64_MAX) {
			jv = json_integer((json_int_t)cbor_get_int(v));
		} else if (cbor_isa_float_ctrl(v) && cbor_float_ctrl_is_ctrl(v) && cbor_is_bool(v)) {
			jv = json_boolean(cbor_get_bool(v));
		}
		if (!jv) {
			snprintf(err, errlen, "field \"%s\": want a byte string, text string, unsigned integer or bool", key);
			goto bad;
		}
		json_object_set_new(out, key, jv);
	}
	goto out;
bad:
	json_decref(out);
	out = NULL;
out:
	if (item)
		cbor_decref(&item);
	return out;
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
