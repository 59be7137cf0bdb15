/* COSE_KeySet and the other places trusted keys come from (a single key file, a CCF trust
 * store JSON), matched by kid. */
#include "bundle/bundle-int.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct bundle_keyset {
	struct bundle_key *keys[BUNDLE_MAX_KEYSET];
	size_t n;
};

enum bundle_err bundle_keyset_new(struct bundle_keyset **ret)
{
	bundle_clear_cause();
	if (!ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL ret");
	if (!(*ret = calloc(1, sizeof **ret)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "keyset");
	return BUNDLE_OK;
}

void bundle_keyset_free(struct bundle_keyset *ks)
{
	if (!ks)
		return;
	for (size_t i = 0; i < ks->n; i++)
		bundle_key_free(ks->keys[i]);
	free(ks);
}

enum bundle_err bundle_keyset_add(struct bundle_keyset *ks, struct bundle_key *k)
{
	if (!ks || !k)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (ks->n >= BUNDLE_MAX_KEYSET)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "more than %d keys", BUNDLE_MAX_KEYSET);
	ks->keys[ks->n++] = k;
	return BUNDLE_OK;
}

size_t bundle_keyset_count(const struct bundle_keyset *ks)
{
	return ks ? ks->n : 0;
}

const struct bundle_key *bundle_keyset_get(const struct bundle_keyset *ks, size_t i)
{
	return ks && i < ks->n ? ks->keys[i] : NULL;
}

const struct bundle_key *bundle_keyset_find(const struct bundle_keyset *ks, const uint8_t *kid, size_t len)
{
	if (!ks || !kid || !len)
		return NULL;
	for (size_t i = 0; i < ks->n; i++)
		if (bundle_key_matches_kid(ks->keys[i], kid, len))
			return ks->keys[i];
	return NULL;
}

enum bundle_err bundle_keyset_encode(const struct bundle_keyset *ks, uint8_t **ret, size_t *ret_len)
{
	struct cw w;
	bundle_clear_cause();
	if (!ks || !ret || !ret_len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	bundle_cw_init(&w, 1u << 20);
	bundle_cw_array(&w, ks->n);
	for (size_t i = 0; i < ks->n; i++) {
		uint8_t *k = NULL;
		size_t kl = 0;
		enum bundle_err e = bundle_key_to_cose(ks->keys[i], &k, &kl);
		if (e) {
			bundle_cw_free(&w);
			return e;
		}
		bundle_cw_raw(&w, k, kl);
		free(k);
	}
	return bundle_cw_finish(&w, ret, ret_len);
}

enum bundle_err bundle_keyset_decode(const uint8_t *cbor, size_t len, struct bundle_keyset **ret)
{
	struct cr r;
	uint64_t n;
	struct bundle_keyset *ks = NULL;
	enum bundle_err e;

	bundle_clear_cause();
	if (!ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL ret");
	if (len > (1u << 20))
		return bundle_fail(BUNDLE_ERR_TOOBIG, "COSE_KeySet above 1 MiB");
	if ((e = bundle_cbor_check(cbor, len, 0)))
		return e;
	bundle_cr_init(&r, cbor, len);
	if ((e = bundle_cr_array(&r, &n, "COSE_KeySet")))
		return e;
	if (n > BUNDLE_MAX_KEYSET)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "COSE_KeySet with %llu keys (max %d)", (unsigned long long)n,
				   BUNDLE_MAX_KEYSET);
	if ((e = bundle_keyset_new(&ks)))
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_bytes item;
		struct bundle_key *k = NULL;
		if ((e = bundle_cr_skip(&r, &item)))
			goto out;
		if (bundle_key_from_cose(item.ptr, item.len, &k) == BUNDLE_OK)
			ks->keys[ks->n++] = k;
	}
	if (ks->n == 0) {
		e = bundle_fail(BUNDLE_ERR_UNSUPPORTED, "COSE_KeySet holds no usable key");
		goto out;
	}
	*ret = ks;
	ks = NULL;
out:
	bundle_keyset_free(ks);
	return e;
}

/* base64url (no padding) -> bytes; returns length or -1. */
static long b64url(const char *in, uint8_t *out, size_t cap)
{
	char tmp[256];
	size_t n = strlen(in), m = 0;
	int dl;
	if (n == 0 || n + 4 > sizeof tmp)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '=')
			break;
		tmp[m++] = c;
	}
	size_t pad = (4 - m % 4) % 4;
	if (pad == 3)
		return -1;
	for (size_t i = 0; i < pad; i++)
		tmp[m++] = '=';
	tmp[m] = 0;
	if ((m / 4) * 3 > cap + 2)
		return -1;
	uint8_t dec[192];
	dl = EVP_DecodeBlock(dec, (const unsigned char *)tmp, (int)m);
	if (dl < 0)
		return -1;
	dl -= (int)pad;
	if (dl < 0 || (size_t)dl > cap)
		return -1;
	memcpy(out, dec, (size_t)dl);
	return dl;
}

/* One JWK (EC P-256/P-384 or OKP Ed25519), kid kept as its UTF-8 bytes. */
static enum bundle_err jwk_key(json_t *j, struct bundle_key **ret)
{
	const char *kty = json_string_value(json_object_get(j, "kty"));
	const char *crv = json_string_value(json_object_get(j, "crv"));
	const char *xs = json_string_value(json_object_get(j, "x"));
	const char *ys = json_string_value(json_object_get(j, "y"));
	const char *kid = json_string_value(json_object_get(j, "kid"));
	uint8_t x[66], y[66];
	long xl, yl;
	struct bundle_key *k = NULL;
	enum bundle_err e;

	if (!kty || !crv || !xs)
		return bundle_fail(BUNDLE_ERR_FORMAT, "JWK without kty/crv/x");
	if ((xl = b64url(xs, x, sizeof x)) < 0)
		return bundle_fail(BUNDLE_ERR_FORMAT, "JWK x is not base64url");
	if (!strcmp(kty, "EC") && (!strcmp(crv, "P-256") || !strcmp(crv, "P-384"))) {
		if (!ys || (yl = b64url(ys, y, sizeof y)) < 0)
			return bundle_fail(BUNDLE_ERR_FORMAT, "JWK y is not base64url");
		e = bundle_key_from_ec_point(!strcmp(crv, "P-256") ? BUNDLE_ALG_ES256 : BUNDLE_ALG_ES384, x, (size_t)xl,
					     y, (size_t)yl, &k);
	} else if (!strcmp(kty, "OKP") && !strcmp(crv, "Ed25519") && xl == 32) {
		EVP_PKEY *p = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
		uint8_t cose[64] = {0xa3, 0x01, 0x01, 0x20, 0x06, 0x21, 0x58, 0x20};
		if (!p)
			return bundle_fail_ossl(BUNDLE_ERR_KEY, "JWK Ed25519");
		EVP_PKEY_free(p);
		memcpy(cose + 8, x, 32);
		e = bundle_key_from_cose(cose, 40, &k);
	} else {
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "JWK kty %s crv %s", kty, crv);
	}
	if (e)
		return e;
	if (kid && *kid && (e = bundle_key_set_kid(k, (const uint8_t *)kid, strlen(kid)))) {
		bundle_key_free(k);
		return e;
	}
	*ret = k;
	return BUNDLE_OK;
}

/* {"parameters": [{"serviceCertificate": "<base64 DER>"}, ...]} (CCF / scitt-ccf-ledger), a JWK,
 * or a JWKS {"keys": [...]}. */
static enum bundle_err load_ccf_json(const uint8_t *buf, size_t len, struct bundle_keyset **ret)
{
	json_error_t jerr;
	json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *params, *p;
	size_t i;
	struct bundle_keyset *ks = NULL;
	enum bundle_err e;

	if (!root)
		return bundle_fail(BUNDLE_ERR_FORMAT, "trust store JSON: %s (line %d)", jerr.text, jerr.line);
	if (json_object_get(root, "kty") || json_is_array(json_object_get(root, "keys"))) {
		json_t *keys = json_object_get(root, "keys");
		if ((e = bundle_keyset_new(&ks)))
			goto out;
		if (keys) {
			json_array_foreach(keys, i, p) {
				struct bundle_key *k = NULL;
				if (ks->n < BUNDLE_MAX_KEYSET && jwk_key(p, &k) == BUNDLE_OK)
					ks->keys[ks->n++] = k;
			}
		} else {
			struct bundle_key *k = NULL;
			if ((e = jwk_key(root, &k)))
				goto out;
			ks->keys[ks->n++] = k;
		}
		if (ks->n == 0) {
			e = bundle_fail(BUNDLE_ERR_UNSUPPORTED, "JWK set holds no usable key");
			goto out;
		}
		*ret = ks;
		ks = NULL;
		e = BUNDLE_OK;
		goto out;
	}
	params = json_object_get(root, "parameters");
	if (!json_is_array(params)) {
		e = bundle_fail(BUNDLE_ERR_FORMAT, "trust store JSON: no \"parameters\" array");
		goto out;
	}
	if ((e = bundle_keyset_new(&ks)))
		goto out;
	json_array_foreach(params, i, p) {
		const char *b64 = json_string_value(json_object_get(p, "serviceCertificate"));
		size_t bl;
		uint8_t *der;
		int dl;
		struct bundle_key *k = NULL;
		if (!b64 || (bl = strlen(b64)) == 0 || bl > 65536 || bl % 4)
			continue;
		if (!(der = malloc(bl)))
			continue;
		dl = EVP_DecodeBlock(der, (const unsigned char *)b64, (int)bl);
		if (dl > 0) {
			if (b64[bl - 1] == '=')
				dl--;
			if (b64[bl - 2] == '=')
				dl--;
			if (ks->n < BUNDLE_MAX_KEYSET && bundle_key_load(der, (size_t)dl, &k) == BUNDLE_OK)
				ks->keys[ks->n++] = k;
		}
		free(der);
	}
	if (ks->n == 0) {
		e = bundle_fail(BUNDLE_ERR_UNSUPPORTED, "trust store JSON holds no usable key");
		goto out;
	}
	*ret = ks;
	ks = NULL;
	e = BUNDLE_OK;
out:
	bundle_keyset_free(ks);
	json_decref(root);
	return e;
}

enum bundle_err bundle_keyset_load(const uint8_t *buf, size_t len, struct bundle_keyset **ret)
{
	size_t i = 0;
	struct bundle_key *k = NULL;
	enum bundle_err e;

	bundle_clear_cause();
	if (!buf || !len || !ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "empty key input");
	if (len > (1u << 20))
		return bundle_fail(BUNDLE_ERR_TOOBIG, "key file above 1 MiB");
	while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
		i++;
	if (i < len && buf[i] == '{')
		return load_ccf_json(buf, len, ret);
	if (buf[0] >= 0x80 && buf[0] <= 0x9f)
		return bundle_keyset_decode(buf, len, ret);
	if ((e = bundle_key_load(buf, len, &k)))
		return e;
	if ((e = bundle_keyset_new(ret))) {
		bundle_key_free(k);
		return e;
	}
	(*ret)->keys[(*ret)->n++] = k;
	return BUNDLE_OK;
}
