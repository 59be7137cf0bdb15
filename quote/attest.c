/* Pure verification of TPM structures: TPM2B_PUBLIC (parse, name, OpenSSL key, role
 * checks), TPMT_SIGNATURE, TPMS_ATTEST (quote and certify). Bounded unmarshalling is done
 * with libtss2-mu; every field we rely on is checked here. */
#include "quote/quote-int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <tss2/tss2_mu.h>

enum quote_err quote_public_unmarshal(const uint8_t *buf, size_t len, TPM2B_PUBLIC *out, struct quote_diag *diag)
{
	size_t off = 0;
	TSS2_RC rc;

	memset(out, 0, sizeof *out);
	if (!buf)
		return QUOTE_ERR_ARG;
	if (len > QUOTE_PUBLIC_MAX) {
		quote_diag_set(diag, "TPM2B_PUBLIC of %zu bytes (max %u)", len, QUOTE_PUBLIC_MAX);
		return QUOTE_ERR_TOO_LARGE;
	}
	rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, out);
	if (rc != TSS2_RC_SUCCESS) {
		if (diag)
			diag->cause = rc;
		quote_diag_set(diag, "TPM2B_PUBLIC does not unmarshal (rc 0x%x)", rc);
		return QUOTE_ERR_FORMAT;
	}
	if (off != len) {
		quote_diag_set(diag, "TPM2B_PUBLIC: %zu trailing bytes", len - off);
		return QUOTE_ERR_FORMAT;
	}
	if (out->publicArea.type != TPM2_ALG_RSA && out->publicArea.type != TPM2_ALG_ECC) {
		quote_diag_set(diag, "key type 0x%04x is not RSA or ECC", out->publicArea.type);
		return QUOTE_ERR_UNSUPPORTED;
	}
	if (!quote_alg_digest_len(out->publicArea.nameAlg)) {
		quote_diag_set(diag, "nameAlg 0x%04x unsupported", out->publicArea.nameAlg);
		return QUOTE_ERR_UNSUPPORTED;
	}
	return QUOTE_OK;
}

enum quote_err quote_name_of_tpmt(const TPMT_PUBLIC *pub, uint8_t *out, size_t *ret_len)
{
	uint8_t buf[sizeof(TPMT_PUBLIC) + 16];
	size_t off = 0, n = 0;
	uint16_t alg = pub->nameAlg;

	if (!quote_alg_digest_len(alg))
		return QUOTE_ERR_UNSUPPORTED;
	if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof buf, &off) != TSS2_RC_SUCCESS)
		return QUOTE_ERR_FORMAT;
	out[0] = (uint8_t)(alg >> 8);
	out[1] = (uint8_t)alg;
	if (quote_hash_buf(alg, buf, off, NULL, 0, out + 2, &n) != 0)
		return QUOTE_ERR_CRYPTO;
	*ret_len = n + 2;
	return QUOTE_OK;
}

static const char *curve_group(uint16_t curve, size_t *ret_bytes)
{
	switch (curve) {
	case TPM2_ECC_NIST_P256: *ret_bytes = 32; return "P-256";
	case TPM2_ECC_NIST_P384: *ret_bytes = 48; return "P-384";
	case TPM2_ECC_NIST_P521: *ret_bytes = 66; return "P-521";
	default: return NULL;
	}
}

void *quote_pkey_from_tpmt(const TPMT_PUBLIC *pub, struct quote_diag *diag)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t point[1 + 2 * 66];

	if (!(bld = OSSL_PARAM_BLD_new()))
		goto out;
	if (pub->type == TPM2_ALG_RSA) {
		uint32_t exp = pub->parameters.rsaDetail.exponent ? pub->parameters.rsaDetail.exponent : 65537;
		if (pub->unique.rsa.size == 0 || pub->unique.rsa.size * 8u != pub->parameters.rsaDetail.keyBits) {
			quote_diag_set(diag, "RSA modulus of %u bytes for %u-bit key", pub->unique.rsa.size,
				 pub->parameters.rsaDetail.keyBits);
			goto out;
		}
		n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size, NULL);
		e = BN_new();
		if (!n || !e || !BN_set_word(e, exp) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto ssl;
		pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else if (pub->type == TPM2_ALG_ECC) {
		size_t cb = 0;
		const char *group = curve_group(pub->parameters.eccDetail.curveID, &cb);
		if (!group) {
			quote_diag_set(diag, "ECC curve 0x%04x unsupported", pub->parameters.eccDetail.curveID);
			goto out;
		}
		if (pub->unique.ecc.x.size != cb || pub->unique.ecc.y.size != cb) {
			quote_diag_set(diag, "ECC point coordinates of %u/%u bytes, want %zu", pub->unique.ecc.x.size,
				 pub->unique.ecc.y.size, cb);
			goto out;
		}
		point[0] = 0x04;
		memcpy(point + 1, pub->unique.ecc.x.buffer, cb);
		memcpy(point + 1 + cb, pub->unique.ecc.y.buffer, cb);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * cb))
			goto ssl;
		pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	} else {
		quote_diag_set(diag, "key type 0x%04x unsupported", pub->type);
		goto out;
	}
	if (!pctx || !(params = OSSL_PARAM_BLD_to_param(bld)) || EVP_PKEY_fromdata_init(pctx) != 1 ||
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto ssl;
	if (pub->type == TPM2_ALG_ECC) {
		/* reject points not on the curve */
		EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		int okp = chk && EVP_PKEY_public_check(chk) == 1;
		EVP_PKEY_CTX_free(chk);
		if (!okp) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
			quote_diag_ssl(diag, "ECC public point invalid");
			goto out;
		}
	}
	goto out;
ssl:
	quote_diag_ssl(diag, "cannot build the public key");
out:
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pctx);
	return pkey;
}

enum quote_err quote_public_parse(const uint8_t *pub, size_t len, struct quote_public_info *ret,
				  struct quote_diag *diag)
{
	TPM2B_PUBLIC p;
	struct quote_public_info info;
	enum quote_err err;
	const TPMT_PUBLIC *t = &p.publicArea;

	quote_diag_reset(diag);
	if (!ret)
		return QUOTE_ERR_ARG;
	if ((err = quote_public_unmarshal(pub, len, &p, diag)) != QUOTE_OK)
		return err;
	memset(&info, 0, sizeof info);
	info.type = t->type;
	info.name_alg = t->nameAlg;
	info.attributes = t->objectAttributes;
	if (t->authPolicy.size > QUOTE_MAX_DIGEST) {
		quote_diag_set(diag, "authPolicy of %u bytes", t->authPolicy.size);
		return QUOTE_ERR_FORMAT;
	}
	info.auth_policy_len = t->authPolicy.size;
	memcpy(info.auth_policy, t->authPolicy.buffer, t->authPolicy.size);
	if (t->type == TPM2_ALG_RSA) {
		const TPMS_RSA_PARMS *r = &t->parameters.rsaDetail;
		info.rsa_bits = r->keyBits;
		info.scheme = r->scheme.scheme == TPM2_ALG_NULL ? 0 : r->scheme.scheme;
		info.scheme_hash = info.scheme ? r->scheme.details.anySig.hashAlg : 0;
		info.sym_alg = r->symmetric.algorithm == TPM2_ALG_NULL ? 0 : r->symmetric.algorithm;
		info.sym_bits = info.sym_alg ? r->symmetric.keyBits.sym : 0;
	} else {
		const TPMS_ECC_PARMS *e = &t->parameters.eccDetail;
		info.curve = e->curveID;
		info.scheme = e->scheme.scheme == TPM2_ALG_NULL ? 0 : e->scheme.scheme;
		info.scheme_hash = info.scheme ? e->scheme.details.anySig.hashAlg : 0;
		info.sym_alg = e->symmetric.algorithm == TPM2_ALG_NULL ? 0 : e->symmetric.algorithm;
		info.sym_bits = info.sym_alg ? e->symmetric.keyBits.sym : 0;
	}
	if ((err = quote_name_of_tpmt(t, info.name, &info.name_len)) != QUOTE_OK) {
		quote_diag_set(diag, "cannot compute the key's name");
		return err;
	}
	*ret = info;
	return QUOTE_OK;
}

enum quote_err quote_public_to_der(const uint8_t *pub, size_t len, uint8_t **ret_der, size_t *ret_len)
{
	TPM2B_PUBLIC p;
	EVP_PKEY *pkey = NULL;
	unsigned char *der = NULL;
	int n;
	enum quote_err err;

	if (!ret_der || !ret_len)
		return QUOTE_ERR_ARG;
	if ((err = quote_public_unmarshal(pub, len, &p, NULL)) != QUOTE_OK)
		return err;
	if (!(pkey = quote_pkey_from_tpmt(&p.publicArea, NULL)))
		return QUOTE_ERR_UNSUPPORTED;
	n = i2d_PUBKEY(pkey, &der);
	EVP_PKEY_free(pkey);
	if (n <= 0)
		return QUOTE_ERR_CRYPTO;
	*ret_der = malloc((size_t)n);
	if (!*ret_der) {
		OPENSSL_free(der);
		return QUOTE_ERR_NOMEM;
	}
	memcpy(*ret_der, der, (size_t)n);
	OPENSSL_free(der);
	*ret_len = (size_t)n;
	return QUOTE_OK;
}

enum quote_err quote_public_to_pem(const uint8_t *pub, size_t len, char **ret_pem)
{
	TPM2B_PUBLIC p;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *data = NULL, *out = NULL;
	long n;
	enum quote_err err;

	if (!ret_pem)
		return QUOTE_ERR_ARG;
	if ((err = quote_public_unmarshal(pub, len, &p, NULL)) != QUOTE_OK)
		return err;
	if (!(pkey = quote_pkey_from_tpmt(&p.publicArea, NULL)))
		return QUOTE_ERR_UNSUPPORTED;
	err = QUOTE_ERR_CRYPTO;
	if (!(bio = BIO_new(BIO_s_mem())) || PEM_write_bio_PUBKEY(bio, pkey) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		goto out;
	err = QUOTE_ERR_NOMEM;
	if (!(out = malloc((size_t)n + 1)))
		goto out;
	memcpy(out, data, (size_t)n);
	out[n] = 0;
	*ret_pem = out;
	err = QUOTE_OK;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return err;
}

static enum quote_err need_attr(const struct quote_public_info *k, uint32_t bit, int want, const char *name,
				struct quote_diag *diag)
{
	if (!!(k->attributes & bit) == want)
		return QUOTE_OK;
	quote_diag_set(diag, "key attribute %s must be %s", name, want ? "set" : "clear");
	return QUOTE_ERR_KEY_ATTRS;
}

#define NEED(bit, want, name)                                              \
	do {                                                               \
		if ((err = need_attr(k, bit, want, name, diag)) != QUOTE_OK) \
			return err;                                        \
	} while (0)

enum quote_err quote_check_ak(const struct quote_public_info *k, struct quote_diag *diag)
{
	enum quote_err err;
	if (!k)
		return QUOTE_ERR_ARG;
	NEED(QUOTE_ATTR_FIXED_TPM, 1, "fixedTPM");
	NEED(QUOTE_ATTR_FIXED_PARENT, 1, "fixedParent");
	NEED(QUOTE_ATTR_SENSITIVE_DATA_ORIGIN, 1, "sensitiveDataOrigin");
	NEED(QUOTE_ATTR_RESTRICTED, 1, "restricted");
	NEED(QUOTE_ATTR_SIGN, 1, "sign");
	NEED(QUOTE_ATTR_DECRYPT, 0, "decrypt");
	if (k->type == QUOTE_ALG_RSA) {
		if (k->rsa_bits < 2048) {
			quote_diag_set(diag, "RSA key of %u bits (min 2048)", k->rsa_bits);
			return QUOTE_ERR_KEY_ATTRS;
		}
		if (k->scheme && k->scheme != QUOTE_ALG_RSASSA && k->scheme != QUOTE_ALG_RSAPSS) {
			quote_diag_set(diag, "RSA scheme 0x%04x is not a signing scheme", k->scheme);
			return QUOTE_ERR_KEY_ATTRS;
		}
	} else if (k->type == QUOTE_ALG_ECC) {
		if (k->curve != QUOTE_ECC_NIST_P256 && k->curve != QUOTE_ECC_NIST_P384) {
			quote_diag_set(diag, "ECC curve 0x%04x not accepted (P-256, P-384)", k->curve);
			return QUOTE_ERR_KEY_ATTRS;
		}
		if (k->scheme && k->scheme != QUOTE_ALG_ECDSA) {
			quote_diag_set(diag, "ECC scheme 0x%04x is not ECDSA", k->scheme);
			return QUOTE_ERR_KEY_ATTRS;
		}
	} else {
		quote_diag_set(diag, "key type 0x%04x", k->type);
		return QUOTE_ERR_KEY_ATTRS;
	}
	if (k->scheme && !quote_alg_digest_len(k->scheme_hash)) {
		quote_diag_set(diag, "scheme hash 0x%04x unsupported", k->scheme_hash);
		return QUOTE_ERR_KEY_ATTRS;
	}
	return QUOTE_OK;
}

enum quote_err quote_check_sk(const struct quote_public_info *k, struct quote_diag *diag)
{
	enum quote_err err;
	if (!k)
		return QUOTE_ERR_ARG;
	NEED(QUOTE_ATTR_FIXED_TPM, 1, "fixedTPM");
	NEED(QUOTE_ATTR_FIXED_PARENT, 1, "fixedParent");
	NEED(QUOTE_ATTR_SENSITIVE_DATA_ORIGIN, 1, "sensitiveDataOrigin");
	NEED(QUOTE_ATTR_SIGN, 1, "sign");
	NEED(QUOTE_ATTR_DECRYPT, 0, "decrypt");
	NEED(QUOTE_ATTR_RESTRICTED, 0, "restricted");
	if (k->type != QUOTE_ALG_ECC || k->curve != QUOTE_ECC_NIST_P256) {
		quote_diag_set(diag, "statement key must be ECC P-256 (ES256)");
		return QUOTE_ERR_KEY_ATTRS;
	}
	if (k->scheme && (k->scheme != QUOTE_ALG_ECDSA || k->scheme_hash != QUOTE_ALG_SHA256)) {
		quote_diag_set(diag, "statement key scheme must be ECDSA/SHA-256 or NULL");
		return QUOTE_ERR_KEY_ATTRS;
	}
	return QUOTE_OK;
}

/* ---- signatures ---- */

static enum quote_err sig_unmarshal(const uint8_t *sig, size_t len, TPMT_SIGNATURE *out, struct quote_diag *diag)
{
	size_t off = 0;
	TSS2_RC rc;
	memset(out, 0, sizeof *out);
	if (!sig)
		return QUOTE_ERR_ARG;
	if (len > QUOTE_SIG_MAX) {
		quote_diag_set(diag, "signature of %zu bytes (max %u)", len, QUOTE_SIG_MAX);
		return QUOTE_ERR_TOO_LARGE;
	}
	rc = Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, len, &off, out);
	if (rc != TSS2_RC_SUCCESS || off != len) {
		if (diag)
			diag->cause = rc;
		quote_diag_set(diag, "TPMT_SIGNATURE malformed");
		return QUOTE_ERR_FORMAT;
	}
	return QUOTE_OK;
}

/* DER ECDSA-Sig-Value from r, s. */
static int ecdsa_der(const TPMS_SIGNATURE_ECC *e, unsigned char **der, int *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
	BIGNUM *ss = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
	int rc = -1;
	if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
		BN_free(r);
		BN_free(ss);
		goto out;
	}
	*der = NULL;
	*der_len = i2d_ECDSA_SIG(s, der);
	rc = *der_len > 0 ? 0 : -1;
out:
	ECDSA_SIG_free(s);
	return rc;
}

static enum quote_err verify_with(const TPMT_PUBLIC *pub, const uint8_t *msg, size_t msg_len,
				  const TPMT_SIGNATURE *sig, struct quote_diag *diag)
{
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *mctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md;
	unsigned char *der = NULL;
	int der_len = 0, vr;
	const unsigned char *sigp;
	size_t sig_len;
	enum quote_err err = QUOTE_ERR_SIGNATURE;
	uint16_t hash;

	switch (sig->sigAlg) {
	case TPM2_ALG_ECDSA:
		if (pub->type != TPM2_ALG_ECC) {
			quote_diag_set(diag, "ECDSA signature but the key is not ECC");
			return QUOTE_ERR_SIGNATURE;
		}
		hash = sig->signature.ecdsa.hash;
		break;
	case TPM2_ALG_RSASSA:
	case TPM2_ALG_RSAPSS:
		if (pub->type != TPM2_ALG_RSA) {
			quote_diag_set(diag, "RSA signature but the key is not RSA");
			return QUOTE_ERR_SIGNATURE;
		}
		hash = sig->signature.rsassa.hash;
		break;
	default:
		quote_diag_set(diag, "signature algorithm 0x%04x unsupported", sig->sigAlg);
		return QUOTE_ERR_UNSUPPORTED;
	}
	/* A key with a fixed scheme must have been used with that scheme. */
	{
		uint16_t ks = pub->type == TPM2_ALG_RSA ? pub->parameters.rsaDetail.scheme.scheme
							: pub->parameters.eccDetail.scheme.scheme;
		uint16_t kh = pub->type == TPM2_ALG_RSA ? pub->parameters.rsaDetail.scheme.details.anySig.hashAlg
							: pub->parameters.eccDetail.scheme.details.anySig.hashAlg;
		if (ks != TPM2_ALG_NULL && (ks != sig->sigAlg || kh != hash)) {
			quote_diag_set(diag, "signature scheme differs from the key's scheme");
			return QUOTE_ERR_SIGNATURE;
		}
	}
	if (!(md = quote_md_for_alg(hash)) || hash == TPM2_ALG_SHA1) {
		quote_diag_set(diag, "signature hash 0x%04x not accepted", hash);
		return QUOTE_ERR_UNSUPPORTED;
	}
	if (!(pkey = quote_pkey_from_tpmt(pub, diag)))
		return QUOTE_ERR_UNSUPPORTED;
	if (sig->sigAlg == TPM2_ALG_ECDSA) {
		if (ecdsa_der(&sig->signature.ecdsa, &der, &der_len) != 0) {
			quote_diag_ssl(diag, "ECDSA signature encoding");
			goto out;
		}
		sigp = der;
		sig_len = (size_t)der_len;
	} else {
		sigp = sig->signature.rsassa.sig.buffer;
		sig_len = sig->signature.rsassa.sig.size;
	}
	err = QUOTE_ERR_CRYPTO;
	if (!(mctx = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pkey) != 1) {
		quote_diag_ssl(diag, "verify init");
		goto out;
	}
	if (sig->sigAlg == TPM2_ALG_RSAPSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)) {
		quote_diag_ssl(diag, "PSS setup");
		goto out;
	}
	vr = EVP_DigestVerify(mctx, sigp, sig_len, msg, msg_len);
	if (vr != 1) {
		ERR_clear_error();
		quote_diag_set(diag, "signature does not verify with the given key");
		err = QUOTE_ERR_SIGNATURE;
		goto out;
	}
	err = QUOTE_OK;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(pkey);
	return err;
}

enum quote_err quote_signature_verify(const uint8_t *pub, size_t pub_len, const uint8_t *msg, size_t msg_len,
				      const uint8_t *sig, size_t sig_len, struct quote_diag *diag)
{
	TPM2B_PUBLIC p;
	TPMT_SIGNATURE s;
	enum quote_err err;

	quote_diag_reset(diag);
	if (!msg && msg_len)
		return QUOTE_ERR_ARG;
	if ((err = quote_public_unmarshal(pub, pub_len, &p, diag)) != QUOTE_OK)
		return err;
	if ((err = sig_unmarshal(sig, sig_len, &s, diag)) != QUOTE_OK)
		return err;
	return verify_with(&p.publicArea, msg, msg_len, &s, diag);
}

enum quote_err quote_signature_ecdsa_raw(const uint8_t *sig, size_t sig_len, uint8_t *ret_rs, size_t cap,
					 size_t *ret_len)
{
	TPMT_SIGNATURE s;
	enum quote_err err;
	size_t n;
	const TPM2B_ECC_PARAMETER *r, *ss;

	if (!ret_rs || !ret_len)
		return QUOTE_ERR_ARG;
	if ((err = sig_unmarshal(sig, sig_len, &s, NULL)) != QUOTE_OK)
		return err;
	if (s.sigAlg != TPM2_ALG_ECDSA)
		return QUOTE_ERR_UNSUPPORTED;
	r = &s.signature.ecdsa.signatureR;
	ss = &s.signature.ecdsa.signatureS;
	n = r->size > ss->size ? r->size : ss->size;
	n = n <= 32 ? 32 : n <= 48 ? 48 : 66;
	if (r->size > n || ss->size > n)
		return QUOTE_ERR_FORMAT;
	if (2 * n > cap)
		return QUOTE_ERR_TOO_LARGE;
	memset(ret_rs, 0, 2 * n);
	memcpy(ret_rs + n - r->size, r->buffer, r->size);
	memcpy(ret_rs + 2 * n - ss->size, ss->buffer, ss->size);
	*ret_len = 2 * n;
	return QUOTE_OK;
}

/* ---- TPMS_ATTEST ---- */

static enum quote_err attest_unmarshal(const uint8_t *attest, size_t len, TPMS_ATTEST *out, struct quote_diag *diag)
{
	size_t off = 0;
	TSS2_RC rc;
	memset(out, 0, sizeof *out);
	if (!attest)
		return QUOTE_ERR_ARG;
	if (len > QUOTE_ATTEST_MAX) {
		quote_diag_set(diag, "TPMS_ATTEST of %zu bytes (max %u)", len, QUOTE_ATTEST_MAX);
		return QUOTE_ERR_TOO_LARGE;
	}
	/* The magic first: anything else is not TPM-generated, whatever it parses to. */
	if (len < 6) {
		quote_diag_set(diag, "TPMS_ATTEST truncated (%zu bytes)", len);
		return QUOTE_ERR_FORMAT;
	}
	if (((uint32_t)attest[0] << 24 | (uint32_t)attest[1] << 16 | (uint32_t)attest[2] << 8 | attest[3]) !=
	    TPM2_GENERATED_VALUE) {
		quote_diag_set(diag, "magic is not TPM_GENERATED_VALUE");
		return QUOTE_ERR_MAGIC;
	}
	rc = Tss2_MU_TPMS_ATTEST_Unmarshal(attest, len, &off, out);
	if (rc != TSS2_RC_SUCCESS) {
		uint16_t type = (uint16_t)(attest[4] << 8 | attest[5]);
		if (diag)
			diag->cause = rc;
		if (type != TPM2_ST_ATTEST_QUOTE && type != TPM2_ST_ATTEST_CERTIFY && (type & 0xff00) == 0x8000 &&
		    type >= TPM2_ST_ATTEST_NV && type <= 0x801f) {
			quote_diag_set(diag, "attestation type 0x%04x unsupported", type);
			return QUOTE_ERR_ATTEST_TYPE;
		}
		quote_diag_set(diag, "TPMS_ATTEST malformed (rc 0x%x)", rc);
		return QUOTE_ERR_FORMAT;
	}
	if (off != len) {
		quote_diag_set(diag, "TPMS_ATTEST: %zu trailing bytes", len - off);
		return QUOTE_ERR_FORMAT;
	}
	return QUOTE_OK;
}

enum quote_err quote_attest_parse(const uint8_t *attest, size_t len, struct quote_attest_info *ret,
				  struct quote_diag *diag)
{
	TPMS_ATTEST a;
	struct quote_attest_info info;
	enum quote_err err;

	quote_diag_reset(diag);
	if (!ret)
		return QUOTE_ERR_ARG;
	if ((err = attest_unmarshal(attest, len, &a, diag)) != QUOTE_OK)
		return err;
	memset(&info, 0, sizeof info);
	info.type = a.type;
	if (a.type != TPM2_ST_ATTEST_QUOTE && a.type != TPM2_ST_ATTEST_CERTIFY) {
		quote_diag_set(diag, "attestation type 0x%04x unsupported", a.type);
		return QUOTE_ERR_ATTEST_TYPE;
	}
	if (a.qualifiedSigner.size > QUOTE_NAME_MAX || a.extraData.size > QUOTE_NONCE_MAX) {
		quote_diag_set(diag, "qualifiedSigner or extraData too long");
		return QUOTE_ERR_FORMAT;
	}
	memcpy(info.signer, a.qualifiedSigner.name, a.qualifiedSigner.size);
	info.signer_len = a.qualifiedSigner.size;
	memcpy(info.extra, a.extraData.buffer, a.extraData.size);
	info.extra_len = a.extraData.size;
	info.clock = a.clockInfo.clock;
	info.reset_count = a.clockInfo.resetCount;
	info.restart_count = a.clockInfo.restartCount;
	info.safe = a.clockInfo.safe;
	info.firmware_version = a.firmwareVersion;
	if (a.type == TPM2_ST_ATTEST_QUOTE) {
		const TPMS_QUOTE_INFO *q = &a.attested.quote;
		if ((err = quote_sel_from_tpml(&q->pcrSelect, &info.pcr_sel)) != QUOTE_OK) {
			quote_diag_set(diag, "quoted PCR selection unsupported or malformed");
			return err;
		}
		if (q->pcrDigest.size > QUOTE_MAX_DIGEST || q->pcrDigest.size == 0) {
			quote_diag_set(diag, "pcrDigest of %u bytes", q->pcrDigest.size);
			return QUOTE_ERR_FORMAT;
		}
		memcpy(info.pcr_digest.bytes, q->pcrDigest.buffer, q->pcrDigest.size);
		info.pcr_digest.len = q->pcrDigest.size;
	} else {
		const TPMS_CERTIFY_INFO *c = &a.attested.certify;
		if (c->name.size > QUOTE_NAME_MAX || c->qualifiedName.size > QUOTE_NAME_MAX) {
			quote_diag_set(diag, "certified name too long");
			return QUOTE_ERR_FORMAT;
		}
		memcpy(info.certified_name, c->name.name, c->name.size);
		info.certified_name_len = c->name.size;
		memcpy(info.certified_qname, c->qualifiedName.name, c->qualifiedName.size);
		info.certified_qname_len = c->qualifiedName.size;
	}
	*ret = info;
	return QUOTE_OK;
}

/* Shared front half of quote_verify and quote_certify_verify: AK role, signature, parse. */
static enum quote_err verify_signed_attest(const uint8_t *ak_pub, size_t ak_pub_len, const uint8_t *attest,
					   size_t attest_len, const uint8_t *sig, size_t sig_len, uint16_t want_type,
					   struct quote_attest_info *info, uint16_t *ret_hash, struct quote_diag *diag)
{
	TPM2B_PUBLIC p;
	TPMT_SIGNATURE s;
	struct quote_public_info ak;
	enum quote_err err;

	if ((err = quote_public_parse(ak_pub, ak_pub_len, &ak, diag)) != QUOTE_OK)
		return err;
	if ((err = quote_check_ak(&ak, diag)) != QUOTE_OK)
		return err;
	if ((err = quote_public_unmarshal(ak_pub, ak_pub_len, &p, diag)) != QUOTE_OK)
		return err;
	if ((err = sig_unmarshal(sig, sig_len, &s, diag)) != QUOTE_OK)
		return err;
	if (!attest || attest_len > QUOTE_ATTEST_MAX) {
		quote_diag_set(diag, "attestation missing or too large");
		return attest ? QUOTE_ERR_TOO_LARGE : QUOTE_ERR_ARG;
	}
	if ((err = verify_with(&p.publicArea, attest, attest_len, &s, diag)) != QUOTE_OK)
		return err;
	if ((err = quote_attest_parse(attest, attest_len, info, diag)) != QUOTE_OK)
		return err;
	if (info->type != want_type) {
		quote_diag_set(diag, "attestation type 0x%04x, want 0x%04x", info->type, want_type);
		return QUOTE_ERR_ATTEST_TYPE;
	}
	*ret_hash = s.signature.any.hashAlg;
	return QUOTE_OK;
}

static enum quote_err check_extra(const struct quote_attest_info *info, const uint8_t *nonce, size_t nonce_len,
				  struct quote_diag *diag)
{
	if (nonce_len > QUOTE_NONCE_MAX || (nonce_len && !nonce))
		return QUOTE_ERR_ARG;
	if (info->extra_len != nonce_len || (nonce_len && CRYPTO_memcmp(info->extra, nonce, nonce_len) != 0)) {
		quote_diag_set(diag, "extraData (%zu bytes) is not the expected nonce (%zu bytes)", info->extra_len,
			 nonce_len);
		return QUOTE_ERR_NONCE;
	}
	return QUOTE_OK;
}

enum quote_err quote_verify(const uint8_t *ak_pub, size_t ak_pub_len, const uint8_t *attest, size_t attest_len,
			    const uint8_t *sig, size_t sig_len, const uint8_t *nonce, size_t nonce_len,
			    const struct quote_pcr_values *pcrs, struct quote_attest_info *ret_info,
			    struct quote_diag *diag)
{
	struct quote_attest_info info;
	struct quote_digest d;
	uint16_t hash = 0;
	enum quote_err err;

	quote_diag_reset(diag);
	if (!pcrs)
		return QUOTE_ERR_ARG;
	err = verify_signed_attest(ak_pub, ak_pub_len, attest, attest_len, sig, sig_len, QUOTE_ST_ATTEST_QUOTE, &info,
				   &hash, diag);
	if (err != QUOTE_OK)
		return err;
	if ((err = check_extra(&info, nonce, nonce_len, diag)) != QUOTE_OK)
		return err;
	/* The selection must be the same, bank by bank in the same order (the digest is over
	 * the values in the quoted order, so "equal as sets" is not enough). */
	if (info.pcr_sel.n != pcrs->sel.n) {
		quote_diag_set(diag, "quote covers %zu banks, PCR values %zu", info.pcr_sel.n, pcrs->sel.n);
		return QUOTE_ERR_PCR_SELECTION;
	}
	for (size_t b = 0; b < info.pcr_sel.n; b++) {
		if (info.pcr_sel.bank[b].alg != pcrs->sel.bank[b].alg ||
		    info.pcr_sel.bank[b].mask != pcrs->sel.bank[b].mask) {
			char q[160] = "", v[160] = "";
			quote_pcr_selection_format(&info.pcr_sel, q, sizeof q);
			quote_pcr_selection_format(&pcrs->sel, v, sizeof v);
			quote_diag_set(diag, "quoted selection %s, PCR values for %s", q, v);
			if (diag)
				diag->alg = info.pcr_sel.bank[b].alg;
			return QUOTE_ERR_PCR_SELECTION;
		}
	}
	if ((err = quote_pcr_digest(pcrs, &info.pcr_sel, hash, &d)) != QUOTE_OK) {
		quote_diag_set(diag, "cannot compute the PCR digest");
		return err;
	}
	info.pcr_digest.alg = hash;
	if (d.len != info.pcr_digest.len || CRYPTO_memcmp(d.bytes, info.pcr_digest.bytes, d.len) != 0) {
		quote_diag_set(diag, "quoted PCR digest differs from the digest of the supplied PCR values");
		quote_diag_values(diag, info.pcr_digest.bytes, d.bytes, d.len == info.pcr_digest.len ? d.len : 0);
		return QUOTE_ERR_PCR_DIGEST;
	}
	if (ret_info)
		*ret_info = info;
	return QUOTE_OK;
}

enum quote_err quote_certify_verify(const uint8_t *ak_pub, size_t ak_pub_len, const uint8_t *attest,
				    size_t attest_len, const uint8_t *sig, size_t sig_len, const uint8_t *sk_pub,
				    size_t sk_pub_len, const uint8_t *qualifying, size_t qlen,
				    struct quote_attest_info *ret_info, struct quote_diag *diag)
{
	struct quote_attest_info info;
	struct quote_public_info sk;
	uint16_t hash = 0;
	enum quote_err err;

	quote_diag_reset(diag);
	err = verify_signed_attest(ak_pub, ak_pub_len, attest, attest_len, sig, sig_len, QUOTE_ST_ATTEST_CERTIFY,
				   &info, &hash, diag);
	if (err != QUOTE_OK)
		return err;
	if ((err = check_extra(&info, qualifying, qlen, diag)) != QUOTE_OK)
		return err;
	if ((err = quote_public_parse(sk_pub, sk_pub_len, &sk, diag)) != QUOTE_OK)
		return err;
	if (info.certified_name_len != sk.name_len ||
	    CRYPTO_memcmp(info.certified_name, sk.name, sk.name_len) != 0) {
		quote_diag_set(diag, "certified name is not the statement key's name");
		return QUOTE_ERR_NAME;
	}
	if ((err = quote_check_sk(&sk, diag)) != QUOTE_OK)
		return err;
	if (ret_info)
		*ret_info = info;
	return QUOTE_OK;
}
