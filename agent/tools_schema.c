/* The JSON Schema subset the gateway enforces on tool arguments (docs/tools.md lists it).
 *
 * Keywords: type (one name or an array of names: object, string, number, integer, boolean,
 * array, null), properties, required, additionalProperties (boolean or schema), enum, const,
 * pattern (POSIX extended regular expression, unanchored search as in JSON Schema),
 * minLength/maxLength (Unicode code points), minimum/maximum/exclusiveMinimum/exclusiveMaximum
 * (numbers, 2020-12 form), items, minItems/maxItems. Annotations that do not constrain
 * (title, description, default, examples, $schema, $id, $comment, format) are accepted and
 * ignored. Anything else is rejected when the definition is loaded, so a constraint the
 * operator wrote is never silently unenforced. Nesting is limited to 32 levels. */
#include "agent/tools.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 32

static const char *const annotations[] = {"title", "description", "default", "examples", "$schema",
					  "$id", "$comment", "format", NULL};
static const char *const keywords[] = {"type", "properties", "required", "additionalProperties", "enum",
				       "const", "pattern", "minLength", "maxLength", "minimum", "maximum",
				       "exclusiveMinimum", "exclusiveMaximum", "items", "minItems",
				       "maxItems", NULL};
static const char *const type_names[] = {"object", "string", "number", "integer", "boolean", "array",
					 "null", NULL};

static int in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

static int fail(char *why, size_t whylen, const char *ptr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *why, size_t whylen, const char *ptr, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (why && whylen)
		snprintf(why, whylen, "%s: %s", ptr[0] ? ptr : "/", msg);
	return -1;
}

/* Append "/token" (RFC 6901 escaping) to a JSON pointer. */
static void ptr_push(char *dst, size_t cap, const char *base, const char *tok)
{
	size_t n = (size_t)snprintf(dst, cap, "%s/", base);
	for (const char *p = tok; *p && n + 3 < cap; p++) {
		if (*p == '~') {
			dst[n++] = '~';
			dst[n++] = '0';
		} else if (*p == '/') {
			dst[n++] = '~';
			dst[n++] = '1';
		} else {
			dst[n++] = *p;
		}
	}
	if (n < cap)
		dst[n] = '\0';
}

static int nonneg_int(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

static int check(const json_t *s, const char *ptr, int depth, char *why, size_t whylen)
{
	const char *k;
	json_t *v;

	if (depth > MAX_DEPTH)
		return fail(why, whylen, ptr, "nested deeper than %d", MAX_DEPTH);
	if (json_is_boolean(s))
		return 0;
	if (!json_is_object(s))
		return fail(why, whylen, ptr, "a schema must be an object or a boolean");
	json_object_foreach((json_t *)s, k, v) {
		char sub[512];
		if (in_list(k, annotations))
			continue;
		if (!in_list(k, keywords))
			return fail(why, whylen, ptr, "keyword \"%s\" is not supported", k);
		if (strcmp(k, "type") == 0) {
			size_t i;
			json_t *t;
			if (json_is_string(v)) {
				if (!in_list(json_string_value(v), type_names))
					return fail(why, whylen, ptr, "unknown type \"%s\"", json_string_value(v));
			} else if (json_is_array(v) && json_array_size(v) > 0) {
				json_array_foreach(v, i, t) if (!json_is_string(t) ||
								!in_list(json_string_value(t), type_names)) return fail(why, whylen, ptr, "type: unknown type name");
			} else {
				return fail(why, whylen, ptr, "type must be a name or an array of names");
			}
		} else if (strcmp(k, "properties") == 0) {
			const char *pk;
			json_t *pv;
			if (!json_is_object(v))
				return fail(why, whylen, ptr, "properties must be an object");
			json_object_foreach(v, pk, pv) {
				ptr_push(sub, sizeof sub, ptr, pk);
				if (check(pv, sub, depth + 1, why, whylen) != 0)
					return -1;
			}
		} else if (strcmp(k, "required") == 0) {
			size_t i;
			json_t *t;
			if (!json_is_array(v))
				return fail(why, whylen, ptr, "required must be an array of strings");
			json_array_foreach(v, i, t) if (!json_is_string(t)) return fail(why, whylen, ptr, "required must be an array of strings");
		} else if (strcmp(k, "additionalProperties") == 0 || strcmp(k, "items") == 0) {
			ptr_push(sub, sizeof sub, ptr, k);
			if (check(v, sub, depth + 1, why, whylen) != 0)
				return -1;
		} else if (strcmp(k, "enum") == 0) {
			if (!json_is_array(v) || json_array_size(v) == 0)
				return fail(why, whylen, ptr, "enum must be a non-empty array");
		} else if (strcmp(k, "pattern") == 0) {
			regex_t re;
			int rc;
			if (!json_is_string(v))
				return fail(why, whylen, ptr, "pattern must be a string");
			rc = regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB);
			if (rc != 0) {
				char e[128];
				regerror(rc, &re, e, sizeof e);
				return fail(why, whylen, ptr, "pattern does not compile as a POSIX ERE: %s", e);
			}
			regfree(&re);
		} else if (strcmp(k, "minLength") == 0 || strcmp(k, "maxLength") == 0 ||
			   strcmp(k, "minItems") == 0 || strcmp(k, "maxItems") == 0) {
			if (!nonneg_int(v))
				return fail(why, whylen, ptr, "%s must be a non-negative integer", k);
		} else if (strcmp(k, "const") != 0) {
			/* minimum, maximum, exclusiveMinimum, exclusiveMaximum */
			if (!json_is_number(v))
				return fail(why, whylen, ptr, "%s must be a number", k);
		}
	}
	return 0;
}

int tools_schema_check(const json_t *schema, char *why, size_t whylen)
{
	return check(schema, "", 0, why, whylen);
}

static int is_type(const json_t *x, const char *t)
{
	if (strcmp(t, "object") == 0)
		return json_is_object(x);
	if (strcmp(t, "string") == 0)
		return json_is_string(x);
	if (strcmp(t, "number") == 0)
		return json_is_number(x);
	if (strcmp(t, "integer") == 0)
		return json_is_integer(x) || (json_is_real(x) && isfinite(json_real_value(x)) &&
					      floor(json_real_value(x)) == json_real_value(x));
	if (strcmp(t, "boolean") == 0)
		return json_is_boolean(x);
	if (strcmp(t, "array") == 0)
		return json_is_array(x);
	if (strcmp(t, "null") == 0)
		return json_is_null(x);
	return 0;
}

/* Code points in valid UTF-8 (jansson guarantees validity). */
static size_t utf8_len(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

static int validate(const json_t *s, const json_t *x, const char *ptr, int depth, char *why, size_t whylen)
{
	json_t *v;

	if (depth > MAX_DEPTH)
		return fail(why, whylen, ptr, "nested deeper than %d", MAX_DEPTH);
	if (json_is_true(s))
		return 0;
	if (!json_is_object(s))
		return fail(why, whylen, ptr, "no value is allowed here");

	if ((v = json_object_get(s, "type")) != NULL) {
		int ok = 0;
		if (json_is_string(v)) {
			ok = is_type(x, json_string_value(v));
		} else {
			size_t i;
			json_t *t;
			json_array_foreach(v, i, t) if (is_type(x, json_string_value(t))) ok = 1;
		}
		if (!ok)
			return fail(why, whylen, ptr, "wrong type (want %s)",
				    json_is_string(v) ? json_string_value(v) : "one of the listed types");
	}
	if ((v = json_object_get(s, "enum")) != NULL) {
		size_t i;
		json_t *e;
		int ok = 0;
		json_array_foreach(v, i, e) if (json_equal((json_t *)x, e)) ok = 1;
		if (!ok)
			return fail(why, whylen, ptr, "not one of the allowed values");
	}
	if ((v = json_object_get(s, "const")) != NULL && !json_equal((json_t *)x, v))
		return fail(why, whylen, ptr, "not the required constant");

	if (json_is_string(x)) {
		const char *str = json_string_value(x);
		size_t n = utf8_len(str, json_string_length(x));
		if ((v = json_object_get(s, "minLength")) && n < (size_t)json_integer_value(v))
			return fail(why, whylen, ptr, "shorter than %lld characters", (long long)json_integer_value(v));
		if ((v = json_object_get(s, "maxLength")) && n > (size_t)json_integer_value(v))
			return fail(why, whylen, ptr, "longer than %lld characters", (long long)json_integer_value(v));
		if ((v = json_object_get(s, "pattern")) != NULL) {
			regex_t re;
			int m;
			/* A string with an embedded NUL cannot be matched by regexec: reject it. */
			if (strlen(str) != json_string_length(x))
				return fail(why, whylen, ptr, "contains a NUL character");
			if (regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB) != 0)
				return fail(why, whylen, ptr, "pattern does not compile");
			m = regexec(&re, str, 0, NULL, 0);
			regfree(&re);
			if (m != 0)
				return fail(why, whylen, ptr, "does not match pattern %s", json_string_value(v));
		}
	}
	if (json_is_number(x)) {
		double d = json_number_value(x);
		if ((v = json_object_get(s, "minimum")) && d < json_number_value(v))
			return fail(why, whylen, ptr, "less than the minimum %g", json_number_value(v));
		if ((v = json_object_get(s, "maximum")) && d > json_number_value(v))
			return fail(why, whylen, ptr, "greater than the maximum %g", json_number_value(v));
		if ((v = json_object_get(s, "exclusiveMinimum")) && d <= json_number_value(v))
			return fail(why, whylen, ptr, "not greater than %g", json_number_value(v));
		if ((v = json_object_get(s, "exclusiveMaximum")) && d >= json_number_value(v))
			return fail(why, whylen, ptr, "not less than %g", json_number_value(v));
	}
	if (json_is_array(x)) {
		size_t i, n = json_array_size(x);
		json_t *e;
		if ((v = json_object_get(s, "minItems")) && n < (size_t)json_integer_value(v))
			return fail(why, whylen, ptr, "fewer than %lld items", (long long)json_integer_value(v));
		if ((v = json_object_get(s, "maxItems")) && n > (size_t)json_integer_value(v))
			return fail(why, whylen, ptr, "more than %lld items", (long long)json_integer_value(v));
		if ((v = json_object_get(s, "items")) != NULL) {
			json_array_foreach(x, i, e) {
				char sub[512], idx[32];
				snprintf(idx, sizeof idx, "%zu", i);
				ptr_push(sub, sizeof sub, ptr, idx);
				if (validate(v, e, sub, depth + 1, why, whylen) != 0)
					return -1;
			}
		}
	}
	if (json_is_object(x)) {
		json_t *props = json_object_get(s, "properties"), *addl = json_object_get(s, "additionalProperties");
		json_t *req = json_object_get(s, "required"), *e;
		const char *k;
		size_t i;

		json_array_foreach(req, i, e) if (!json_object_get(x, json_string_value(e))) return fail(why, whylen, ptr, "missing required property \"%s\"", json_string_value(e));
		json_object_foreach((json_t *)x, k, e) {
			char sub[512];
			json_t *ps = props ? json_object_get(props, k) : NULL;
			ptr_push(sub, sizeof sub, ptr, k);
			if (ps) {
				if (validate(ps, e, sub, depth + 1, why, whylen) != 0)
					return -1;
			} else if (json_is_false(addl)) {
				return fail(why, whylen, sub, "property is not allowed");
			} else if (json_is_object(addl)) {
				if (validate(addl, e, sub, depth + 1, why, whylen) != 0)
					return -1;
			}
		}
	}
	return 0;
}

int tools_schema_validate(const json_t *schema, const json_t *instance, char *why, size_t whylen)
{
	if (json_is_false(schema))
		return fail(why, whylen, "", "no value is allowed");
	return validate(schema, instance, "", 0, why, whylen);
}
