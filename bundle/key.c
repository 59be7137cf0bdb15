/* Keys: P-256, P-384 and Ed25519 on OpenSSL 3; PEM / DER / COSE_Key in and out; RFC 9679
 * thumbprints; raw (r||s) ECDSA signatures converted to and from OpenSSL's DER. */
#include "bundle/bundle-int.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#define KID_MAX 256

struct bundle_key {
	EVP_PKEY *pkey;
	int alg;
	int has_priv;
	uint8_t kid[KID_MAX];
	size_t kid_len;
	uint8_t thumb[32];
	uint8_t spki_hash[32];
};

size_t bundle_alg_hash_len(int alg)
{
	return alg == BUNDLE_ALG_ES256 ? 32 : alg == BUNDLE_ALG_ES384 ? 48 : 0;
}

size_t bundle_alg_sig_len(int alg)
{
	return alg == BUNDLE_ALG_ES256 ? 64 : alg == BUNDLE_ALG_ES384 ? 96 : alg == BUNDLE_ALG_EDDSA ? 64 : 0;
}

bool bundle_alg_supported(int64_t alg)
{
	return alg == BUNDLE_ALG_ES256 || alg == BUNDLE_ALG_ES384 || alg == BUNDLE_ALG_EDDSA;
}

static size_t field_len(int alg)
{
	return alg == BUNDLE_ALG_ES256 ? 32 : alg == BUNDLE_ALG_ES384 ? 48 : 32;
}

static int crv_of(int alg)
{
	return alg == BUNDLE_ALG_ES256 ? 1 : alg == BUNDLE_ALG_ES384 ? 2 : 6;
}

/* The public coordinates: x (and y for EC2), field-size padded. */
static enum bundle_err coords(const struct bundle_key *k, uint8_t x[48], uint8_t y[48], size_t *flen)
{
	size_t fl = field_len(k->alg);
	*flen = fl;
	if (k->alg == BUNDLE_ALG_EDDSA) {
		size_t l = 32;
		if (EVP_PKEY_get_raw_public_key(k->pkey, x, &l) != 1 || l != 32)
			return bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "reading Ed25519 public key");
		return BUNDLE_OK;
	}
	BIGNUM *bx = NULL, *by = NULL;
	enum bundle_err e = BUNDLE_OK;
	if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
	    EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1 ||
	    BN_bn2binpad(bx, x, (int)fl) != (int)fl || BN_bn2binpad(by, y, (int)fl) != (int)fl)
		e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "reading EC public point");
	BN_free(bx);
	BN_free(by);
	return e;
}

/* Deterministic COSE_Key; thumbprint_only: just the RFC 9679 required members. */
static enum bundle_err cose_key_encode(const struct bundle_key *k, bool thumbprint_only, uint8_t **ret,
				       size_t *ret_len)
{
	uint8_t x[48], y[48];
	size_t fl;
	struct cw w;
	bool ec = k->alg != BUNDLE_ALG_EDDSA;
	enum bundle_err e = coords(k, x, y, &fl);
	if (e)
		return e;
	bundle_cw_init(&w, 4096);
	/* canonical order: 1, 2, 3, -1, -2, -3 */
	bundle_cw_map(&w, (ec ? 4 : 3) + (thumbprint_only ? 0 : 2));
	bundle_cw_uint(&w, 1);
	bundle_cw_uint(&w, ec ? 2 : 1);
	if (!thumbprint_only) {
		bundle_cw_uint(&w, 2);
		bundle_cw_bstr(&w, k->kid, k->kid_len);
		bundle_cw_uint(&w, 3);
		bundle_cw_int(&w, k->alg);
	}
	bundle_cw_int(&w, -1);
	bundle_cw_uint(&w, (uint64_t)crv_of(k->alg));
	bundle_cw_int(&w, -2);
	bundle_cw_bstr(&w, x, fl);
	if (ec) {
		bundle_cw_int(&w, -3);
		bundle_cw_bstr(&w, y, fl);
	}
	return bundle_cw_finish(&w, ret, ret_len);
}

/* Classify an EVP_PKEY and fill the derived fields. Takes ownership of pkey. */
static enum bundle_err wrap(EVP_PKEY *pkey, int has_priv, struct bundle_key **ret)
{
	struct bundle_key *k = NULL;
	uint8_t *der = NULL, *tp = NULL;
	size_t tpl = 0;
	int derlen;
	int alg = 0;
	enum bundle_err e = BUNDLE_OK;

	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		alg = BUNDLE_ALG_EDDSA;
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		char g[64] = "";
		size_t gl = 0;
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof g, &gl) != 1) {
			e = bundle_fail_ossl(BUNDLE_ERR_UNSUPPORTED, "EC key without a named curve");
			goto out;
		}
		if (!strcmp(g, "prime256v1") || !strcmp(g, "P-256"))
			alg = BUNDLE_ALG_ES256;
		else if (!strcmp(g, "secp384r1") || !strcmp(g, "P-384"))
			alg = BUNDLE_ALG_ES384;
		else {
			e = bundle_fail(BUNDLE_ERR_UNSUPPORTED, "EC curve %s (want P-256 or P-384)", g);
			goto out;
		}
	} else {
		e = bundle_fail(BUNDLE_ERR_UNSUPPORTED, "key type %s (want EC or Ed25519)",
				EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
		goto out;
	}
	if (!(k = calloc(1, sizeof *k))) {
		e = bundle_fail(BUNDLE_ERR_NOMEM, "key");
		goto out;
	}
	k->pkey = pkey;
	pkey = NULL;
	k->alg = alg;
	k->has_priv = has_priv;
	derlen = i2d_PUBKEY(k->pkey, &der);
	if (derlen <= 0) {
		e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "encoding SPKI");
		goto out;
	}
	bundle_sha256(der, (size_t)derlen, k->spki_hash);
	if ((e = cose_key_encode(k, true, &tp, &tpl)))
		goto out;
	bundle_sha256(tp, tpl, k->thumb);
	memcpy(k->kid, k->thumb, 32);
	k->kid_len = 32;
	*ret = k;
	k = NULL;
out:
	OPENSSL_free(der);
	free(tp);
	EVP_PKEY_free(pkey);
	bundle_key_free(k);
	return e;
}

void bundle_key_free(struct bundle_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	OPENSSL_cleanse(k, sizeof *k);
	free(k);
}

enum bundle_err bundle_key_generate(int alg, struct bundle_key **ret)
{
	EVP_PKEY *p = NULL;
	bundle_clear_cause();
	if (!ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL ret");
	if (alg == BUNDLE_ALG_ES256)
		p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (alg == BUNDLE_ALG_ES384)
		p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else if (alg == BUNDLE_ALG_EDDSA)
		p = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "alg %d", alg);
	if (!p)
		return bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "generating key");
	return wrap(p, 1, ret);
}

static int no_pass(char *buf, int size, int rw, void *u)
{
	(void)buf, (void)size, (void)rw, (void)u;
	return -1; /* encrypted keys are not supported: never prompt */
}

enum bundle_err bundle_key_load(const uint8_t *buf, size_t len, struct bundle_key **ret)
{
	size_t i = 0;
	bundle_clear_cause();
	if (!buf || !ret || len == 0 || len > (1u << 20))
		return bundle_fail(BUNDLE_ERR_INVAL, "empty or oversized key input");
	while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
		i++;
	if (len - i >= 10 && memcmp(buf + i, "-----BEGIN", 10) == 0) {
		EVP_PKEY *p = NULL;
		BIO *b = BIO_new_mem_buf(buf, (int)len);
		if (!b)
			return bundle_fail_ossl(BUNDLE_ERR_NOMEM, "BIO");
		p = PEM_read_bio_PrivateKey(b, NULL, no_pass, NULL);
		BIO_free(b);
		if (p)
			return wrap(p, 1, ret);
		ERR_clear_error();
		b = BIO_new_mem_buf(buf, (int)len);
		p = b ? PEM_read_bio_PUBKEY(b, NULL, no_pass, NULL) : NULL;
		BIO_free(b);
		if (p)
			return wrap(p, 0, ret);
		ERR_clear_error();
		b = BIO_new_mem_buf(buf, (int)len);
		X509 *x = b ? PEM_read_bio_X509(b, NULL, no_pass, NULL) : NULL;
		BIO_free(b);
		if (x) {
			p = X509_get_pubkey(x);
			X509_free(x);
			if (p)
				return wrap(p, 0, ret);
		}
		return bundle_fail_ossl(BUNDLE_ERR_KEY, "PEM holds no usable key or certificate");
	}
	if (buf[0] >= 0xa0 && buf[0] <= 0xbf)
		return bundle_key_from_cose(buf, len, ret);
	{
		const unsigned char *q = buf;
		EVP_PKEY *p = d2i_PUBKEY(NULL, &q, (long)len);
		if (p && q == buf + len)
			return wrap(p, 0, ret);
		EVP_PKEY_free(p);
		q = buf;
		X509 *x = d2i_X509(NULL, &q, (long)len);
		if (x && q == buf + len) {
			p = X509_get_pubkey(x);
			X509_free(x);
			if (p)
				return wrap(p, 0, ret);
		} else {
			X509_free(x);
		}
		ERR_clear_error();
	}
	return bundle_fail(BUNDLE_ERR_KEY, "not a PEM key/certificate, DER SPKI/certificate or COSE_Key");
}

enum bundle_err bundle_key_save_pem(const struct bundle_key *k, int with_private, uint8_t **ret, size_t *ret_len)
{
	BIO *b = NULL;
	BUF_MEM *m = NULL;
	uint8_t *out = NULL;
	enum bundle_err e = BUNDLE_OK;

	bundle_clear_cause();
	if (!k || !ret || !ret_len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (with_private && !k->has_priv)
		return bundle_fail(BUNDLE_ERR_KEY, "key has no private part");
	b = BIO_new(with_private ? BIO_s_secmem() : BIO_s_mem());
	if (!b)
		return bundle_fail_ossl(BUNDLE_ERR_NOMEM, "BIO");
	if ((with_private ? PEM_write_bio_PrivateKey(b, k->pkey, NULL, NULL, 0, NULL, NULL)
			  : PEM_write_bio_PUBKEY(b, k->pkey)) != 1) {
		e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "writing PEM");
		goto out;
	}
	BIO_get_mem_ptr(b, &m);
	if (!m || !(out = malloc(m->length + 1))) {
		e = bundle_fail(BUNDLE_ERR_NOMEM, "PEM");
		goto out;
	}
	memcpy(out, m->data, m->length);
	out[m->length] = 0;
	*ret = out;
	*ret_len = m->length;
out:
	BIO_free(b);
	return e;
}

enum bundle_err bundle_key_from_ec_point(int alg, const uint8_t *x, size_t xlen, const uint8_t *y, size_t ylen,
					 struct bundle_key **ret)
{
	uint8_t pt[1 + 2 * 48];
	size_t fl;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
	EVP_PKEY *p = NULL;
	enum bundle_err e = BUNDLE_OK;
	const char *group = alg == BUNDLE_ALG_ES256 ? "prime256v1" : "secp384r1";

	bundle_clear_cause();
	if (!ret || !x || !y)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (alg != BUNDLE_ALG_ES256 && alg != BUNDLE_ALG_ES384)
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "EC point for alg %d", alg);
	fl = field_len(alg);
	/* strip leading zeros beyond the field size, then left-pad */
	while (xlen > fl && *x == 0)
		x++, xlen--;
	while (ylen > fl && *y == 0)
		y++, ylen--;
	if (xlen > fl || ylen > fl || xlen == 0 || ylen == 0)
		return bundle_fail(BUNDLE_ERR_KEY, "EC coordinate longer than the field (%zu/%zu > %zu)", xlen, ylen, fl);
	memset(pt, 0, sizeof pt);
	pt[0] = 0x04;
	memcpy(pt + 1 + fl - xlen, x, xlen);
	memcpy(pt + 1 + 2 * fl - ylen, y, ylen);
	if (!(bld = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * fl) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) || !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &p, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		e = bundle_fail_ossl(BUNDLE_ERR_KEY, "EC point not usable");
		goto out;
	}
	if (!(chk = EVP_PKEY_CTX_new_from_pkey(NULL, p, NULL)) || EVP_PKEY_public_check(chk) != 1) {
		e = bundle_fail_ossl(BUNDLE_ERR_KEY, "EC point not on the curve");
		goto out;
	}
	e = wrap(p, 0, ret);
	p = NULL;
out:
	EVP_PKEY_free(p);
	EVP_PKEY_CTX_free(chk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return e;
}

enum bundle_err bundle_key_from_cose(const uint8_t *cbor, size_t len, struct bundle_key **ret)
{
	struct cr r;
	uint64_t n;
	int64_t kty = 0, crv = 0, alg = 0;
	struct bundle_bytes x = {0}, y = {0}, kid = {0};
	struct bundle_key *k = NULL;
	enum bundle_err e;

	bundle_clear_cause();
	if (!ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL ret");
	if (len > 65536)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "COSE_Key above 64 KiB");
	if ((e = bundle_cbor_check(cbor, len, 0)))
		return e;
	bundle_cr_init(&r, cbor, len);
	if ((e = bundle_cr_map(&r, &n, "COSE_Key")))
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key key;
		if ((e = bundle_cr_key(&r, &key)))
			return e;
		if (key.is_int && key.i == 1)
			e = bundle_cr_int(&r, &kty, "COSE_Key kty");
		else if (key.is_int && key.i == -1)
			e = bundle_cr_int(&r, &crv, "COSE_Key crv");
		else if (key.is_int && key.i == -2)
			e = bundle_cr_bstr(&r, &x, "COSE_Key x");
		else if (key.is_int && key.i == -3)
			e = bundle_cr_bstr(&r, &y, "COSE_Key y (compressed points are not supported)");
		else if (key.is_int && key.i == 2)
			e = bundle_cr_bstr(&r, &kid, "COSE_Key kid");
		else if (key.is_int && key.i == 3)
			e = bundle_cr_int(&r, &alg, "COSE_Key alg");
		else
			e = bundle_cr_skip(&r, NULL);
		if (e)
			return e;
	}
	if (kty == 2 && (crv == 1 || crv == 2)) {
		int a = crv == 1 ? BUNDLE_ALG_ES256 : BUNDLE_ALG_ES384;
		if (!x.ptr || !y.ptr || x.len != field_len(a) || y.len != field_len(a))
			return bundle_fail(BUNDLE_ERR_FORMAT, "COSE_Key EC2: x and y must be %zu-byte bstrs", field_len(a));
		if (alg && alg != a)
			return bundle_fail(BUNDLE_ERR_KEY, "COSE_Key alg %lld does not fit curve %lld", (long long)alg,
					   (long long)crv);
		e = bundle_key_from_ec_point(a, x.ptr, x.len, y.ptr, y.len, &k);
	} else if (kty == 1 && crv == 6) {
		EVP_PKEY *p;
		if (!x.ptr || x.len != 32)
			return bundle_fail(BUNDLE_ERR_FORMAT, "COSE_Key OKP: x must be a 32-byte bstr");
		if (alg && alg != BUNDLE_ALG_EDDSA)
			return bundle_fail(BUNDLE_ERR_KEY, "COSE_Key alg %lld does not fit Ed25519", (long long)alg);
		if (!(p = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x.ptr, 32)))
			return bundle_fail_ossl(BUNDLE_ERR_KEY, "Ed25519 public key");
		e = wrap(p, 0, &k);
	} else {
		return bundle_fail(BUNDLE_ERR_UNSUPPORTED, "COSE_Key kty %lld crv %lld", (long long)kty, (long long)crv);
	}
	if (e)
		return e;
	if (kid.ptr && kid.len && (e = bundle_key_set_kid(k, kid.ptr, kid.len))) {
		bundle_key_free(k);
		return e;
	}
	*ret = k;
	return BUNDLE_OK;
}

enum bundle_err bundle_key_to_cose(const struct bundle_key *k, uint8_t **ret, size_t *ret_len)
{
	bundle_clear_cause();
	if (!k || !ret || !ret_len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	return cose_key_encode(k, false, ret, ret_len);
}

enum bundle_err bundle_key_public(const struct bundle_key *k, struct bundle_key **ret)
{
	uint8_t *der = NULL;
	const unsigned char *q;
	int n;
	EVP_PKEY *p;
	enum bundle_err e;

	bundle_clear_cause();
	if (!k || !ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if ((n = i2d_PUBKEY(k->pkey, &der)) <= 0)
		return bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "encoding SPKI");
	q = der;
	p = d2i_PUBKEY(NULL, &q, n);
	OPENSSL_free(der);
	if (!p)
		return bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "decoding SPKI");
	if ((e = wrap(p, 0, ret)))
		return e;
	memcpy((*ret)->kid, k->kid, k->kid_len);
	(*ret)->kid_len = k->kid_len;
	return BUNDLE_OK;
}

int bundle_key_alg(const struct bundle_key *k)
{
	return k ? k->alg : 0;
}

int bundle_key_has_private(const struct bundle_key *k)
{
	return k ? k->has_priv : 0;
}

enum bundle_err bundle_key_thumbprint(const struct bundle_key *k, uint8_t out[32])
{
	if (!k || !out)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	memcpy(out, k->thumb, 32);
	return BUNDLE_OK;
}

struct bundle_bytes bundle_key_kid(const struct bundle_key *k)
{
	struct bundle_bytes b = {0};
	if (k) {
		b.ptr = k->kid;
		b.len = k->kid_len;
	}
	return b;
}

enum bundle_err bundle_key_set_kid(struct bundle_key *k, const uint8_t *kid, size_t len)
{
	if (!k || !kid || len == 0)
		return bundle_fail(BUNDLE_ERR_INVAL, "empty kid");
	if (len > KID_MAX)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "kid longer than %d bytes", KID_MAX);
	memcpy(k->kid, kid, len);
	k->kid_len = len;
	return BUNDLE_OK;
}

int bundle_key_matches_kid(const struct bundle_key *k, const uint8_t *kid, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	char hex[64];
	if (!k || !kid || !len)
		return 0;
	if (len == k->kid_len && CRYPTO_memcmp(kid, k->kid, len) == 0)
		return 1;
	if (len == 32 && (CRYPTO_memcmp(kid, k->thumb, 32) == 0 || CRYPTO_memcmp(kid, k->spki_hash, 32) == 0))
		return 1;
	if (len == 64) {
		for (int i = 0; i < 32; i++) {
			hex[2 * i] = hx[k->spki_hash[i] >> 4];
			hex[2 * i + 1] = hx[k->spki_hash[i] & 15];
		}
		if (CRYPTO_memcmp(kid, hex, 64) == 0)
			return 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* raw signatures */

static const EVP_MD *md_of(int alg)
{
	return alg == BUNDLE_ALG_ES256 ? EVP_sha256() : alg == BUNDLE_ALG_ES384 ? EVP_sha384() : NULL;
}

enum bundle_err bundle_key_sign_raw(const struct bundle_key *k, int alg, const uint8_t *msg, size_t msg_len,
				    uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	EVP_MD_CTX *m = NULL;
	uint8_t der[256];
	size_t dl = sizeof der;
	ECDSA_SIG *es = NULL;
	const unsigned char *q = der;
	enum bundle_err e = BUNDLE_OK;
	size_t want = bundle_alg_sig_len(alg);

	if (!k->has_priv)
		return bundle_fail(BUNDLE_ERR_KEY, "signing needs a private key");
	if (alg != k->alg)
		return bundle_fail(BUNDLE_ERR_KEY, "key is for alg %d, not %d", k->alg, alg);
	if (sig_cap < want)
		return bundle_fail(BUNDLE_ERR_INVAL, "signature buffer too small");
	if (!(m = EVP_MD_CTX_new()) || EVP_DigestSignInit(m, NULL, md_of(alg), NULL, k->pkey) != 1) {
		e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "sign init");
		goto out;
	}
	if (alg == BUNDLE_ALG_EDDSA) {
		size_t l = sig_cap;
		if (EVP_DigestSign(m, sig, &l, msg, msg_len) != 1 || l != 64) {
			e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "Ed25519 sign");
			goto out;
		}
		*sig_len = 64;
		goto out;
	}
	if (EVP_DigestSign(m, der, &dl, msg, msg_len) != 1 || !(es = d2i_ECDSA_SIG(NULL, &q, (long)dl))) {
		e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "ECDSA sign");
		goto out;
	}
	{
		const BIGNUM *r, *s;
		int fl = (int)field_len(alg);
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, sig, fl) != fl || BN_bn2binpad(s, sig + fl, fl) != fl) {
			e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "ECDSA r/s");
			goto out;
		}
		*sig_len = want;
	}
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(m);
	return e;
}

enum bundle_err bundle_key_verify_raw(const struct bundle_key *k, int alg, const uint8_t *msg, size_t msg_len,
				      const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *m = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	uint8_t *der = NULL;
	int dl = 0, rc;
	enum bundle_err e = BUNDLE_OK;

	if (alg != k->alg)
		return bundle_fail(BUNDLE_ERR_KEY, "object alg %d but key alg %d", alg, k->alg);
	if (sig_len != bundle_alg_sig_len(alg))
		return bundle_fail(BUNDLE_ERR_SIGNATURE, "signature is %zu bytes, alg %d needs %zu", sig_len, alg,
				   bundle_alg_sig_len(alg));
	if (!(m = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(m, NULL, md_of(alg), NULL, k->pkey) != 1) {
		e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "verify init");
		goto out;
	}
	if (alg == BUNDLE_ALG_EDDSA) {
		rc = EVP_DigestVerify(m, sig, sig_len, msg, msg_len);
	} else {
		size_t fl = sig_len / 2;
		if (!(es = ECDSA_SIG_new()) || !(r = BN_bin2bn(sig, (int)fl, NULL)) ||
		    !(s = BN_bin2bn(sig + fl, (int)fl, NULL)) || ECDSA_SIG_set0(es, r, s) != 1) {
			e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "ECDSA_SIG");
			goto out;
		}
		r = s = NULL;
		if ((dl = i2d_ECDSA_SIG(es, &der)) <= 0) {
			e = bundle_fail_ossl(BUNDLE_ERR_CRYPTO, "ECDSA DER");
			goto out;
		}
		rc = EVP_DigestVerify(m, der, (size_t)dl, msg, msg_len);
	}
	if (rc != 1) {
		ERR_clear_error();
		e = bundle_fail(BUNDLE_ERR_SIGNATURE, "signature does not verify with the %s key",
				alg == BUNDLE_ALG_EDDSA ? "Ed25519" : alg == BUNDLE_ALG_ES256 ? "P-256" : "P-384");
	}
out:
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(m);
	return e;
}

/* ---------------------------------------------------------------------------------------- */
/* signer backed by a key */

static int key_sign_cb(void *ud, int alg, const uint8_t *tbs, size_t tbs_len, const uint8_t *digest,
		       size_t digest_len, uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	(void)digest, (void)digest_len;
	return bundle_key_sign_raw(ud, alg, tbs, tbs_len, sig, sig_cap, sig_len) == BUNDLE_OK ? 0 : -1;
}

enum bundle_err bundle_signer_from_key(const struct bundle_key *k, struct bundle_signer *ret)
{
	bundle_clear_cause();
	if (!k || !ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (!k->has_priv)
		return bundle_fail(BUNDLE_ERR_KEY, "signer needs a private key");
	ret->alg = k->alg;
	ret->kid.ptr = k->kid;
	ret->kid.len = k->kid_len;
	ret->sign = key_sign_cb;
	ret->ud = (void *)k;
	return BUNDLE_OK;
}
