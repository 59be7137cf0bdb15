/* Software TPM2_MakeCredential (TPM 2.0 Part 1 §24 "Credential Protection", Part 3
 * MakeCredential), so the verifier can wrap a secret to a host's EK + AK name without a
 * TPM. Built on OpenSSL: RSA-OAEP / ECDH, KDFa, KDFe, AES-CFB, HMAC. */
#include "quote/quote-int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <tss2/tss2_mu.h>

#define CRED_FILE_MAGIC 0xBADCC0DEu

/* A prepared EK (quote_ek_new): everything MakeCredential derives from the EK alone, built
 * once. Immutable afterwards, so several threads may use one at the same time (OpenSSL takes
 * its own lock the first time it caches the RSA key's Montgomery context). */
struct quote_ek {
	TPM2B_PUBLIC pub;
	EVP_PKEY *pkey;            /* the EK's public key */
	EVP_PKEY_CTX *oaep;        /* RSA: encryption set up (OAEP, nameAlg, label); copied per use */
	EVP_MAC *hmac;             /* HMAC, fetched once */
	const EVP_CIPHER *cipher;  /* AES-128/256-CFB from the EK's symmetric */
	size_t keybytes;
	char group[32];            /* ECC: the curve's OpenSSL name */
};

/* HMAC(alg, key, a || b). mac: a fetched HMAC, or NULL to fetch one for this call. */
static int hmac(EVP_MAC *fetched, uint16_t alg, const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
		const uint8_t *b, size_t blen, uint8_t *out, size_t *ret_len)
{
	const EVP_MD *md = quote_md_for_alg(alg);
	int rc = -1;
	EVP_MAC *mac = fetched ? fetched : EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *mc = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	if (!md || !mc)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(mc, key, klen, params) != 1 || (alen && EVP_MAC_update(mc, a, alen) != 1) ||
	    (blen && EVP_MAC_update(mc, b, blen) != 1) || EVP_MAC_final(mc, out, &outl, QUOTE_MAX_DIGEST) != 1)
		goto out;
	*ret_len = outl;
	rc = 0;
out:
	EVP_MAC_CTX_free(mc);
	if (!fetched)
		EVP_MAC_free(mac);
	return rc;
}

static int kdfa(EVP_MAC *mac, uint16_t hash, const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ulen,
	 const uint8_t *v, size_t vlen, uint8_t *out, size_t bytes)
{
	size_t done = 0, llen = strlen(label) + 1; /* label includes its terminating zero */
	uint32_t bits = (uint32_t)(bytes * 8);
	for (uint32_t i = 1; done < bytes; i++) {
		uint8_t msg[4 + 64 + 2 * QUOTE_NAME_MAX + 4 + 132];
		uint8_t h[QUOTE_MAX_DIGEST];
		size_t m = 0, hl = 0;
		if (llen > 64 || ulen > sizeof msg / 2 || vlen > sizeof msg / 2 || 8 + llen + ulen + vlen > sizeof msg)
			return -1;
		msg[m++] = (uint8_t)(i >> 24);
		msg[m++] = (uint8_t)(i >> 16);
		msg[m++] = (uint8_t)(i >> 8);
		msg[m++] = (uint8_t)i;
		memcpy(msg + m, label, llen);
		m += llen;
		if (ulen)
			memcpy(msg + m, u, ulen);
		m += ulen;
		if (vlen)
			memcpy(msg + m, v, vlen);
		m += vlen;
		msg[m++] = (uint8_t)(bits >> 24);
		msg[m++] = (uint8_t)(bits >> 16);
		msg[m++] = (uint8_t)(bits >> 8);
		msg[m++] = (uint8_t)bits;
		if (hmac(mac, hash, key, klen, msg, m, NULL, 0, h, &hl) != 0)
			return -1;
		memcpy(out + done, h, bytes - done < hl ? bytes - done : hl);
		done += bytes - done < hl ? bytes - done : hl;
		OPENSSL_cleanse(h, sizeof h);
	}
	return 0;
}

int quote_kdfa(uint16_t hash, const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ulen,
	       const uint8_t *v, size_t vlen, uint8_t *out, size_t bytes)
{
	return kdfa(NULL, hash, key, klen, label, u, ulen, v, vlen, out, bytes);
}

/* KDFe (Part 1 §11.4.10.3): H(counter || Z || label\0 || partyU || partyV) ... */
static int kdfe(uint16_t hash, const uint8_t *z, size_t zlen, const char *label, const uint8_t *u, size_t ulen,
		const uint8_t *v, size_t vlen, uint8_t *out, size_t bytes)
{
	const EVP_MD *md = quote_md_for_alg(hash);
	size_t done = 0;
	for (uint32_t i = 1; md && done < bytes; i++) {
		uint8_t cnt[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
		uint8_t h[QUOTE_MAX_DIGEST];
		unsigned hl = 0;
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		int ok = c && EVP_DigestInit_ex(c, md, NULL) == 1 && EVP_DigestUpdate(c, cnt, 4) == 1 &&
			 EVP_DigestUpdate(c, z, zlen) == 1 && EVP_DigestUpdate(c, label, strlen(label) + 1) == 1 &&
			 EVP_DigestUpdate(c, u, ulen) == 1 && EVP_DigestUpdate(c, v, vlen) == 1 &&
			 EVP_DigestFinal_ex(c, h, &hl) == 1;
		EVP_MD_CTX_free(c);
		if (!ok)
			return -1;
		memcpy(out + done, h, bytes - done < hl ? bytes - done : hl);
		done += bytes - done < hl ? bytes - done : hl;
		OPENSSL_cleanse(h, sizeof h);
	}
	return md ? 0 : -1;
}

/* RSA: the EK's OAEP(nameAlg, label "IDENTITY\0") encryption context, set up once. */
static EVP_PKEY_CTX *oaep_ctx(EVP_PKEY *pkey, uint16_t name_alg)
{
	EVP_PKEY_CTX *c = NULL;
	const EVP_MD *md = quote_md_for_alg(name_alg);
	char *label = NULL;

	if (!md || !(label = OPENSSL_malloc(9)))
		return NULL;
	memcpy(label, "IDENTITY", 9);
	if (!(c = EVP_PKEY_CTX_new(pkey, NULL)) || EVP_PKEY_encrypt_init(c) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) != 1 || EVP_PKEY_CTX_set_rsa_oaep_md(c, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) != 1 || EVP_PKEY_CTX_set0_rsa_oaep_label(c, label, 9) != 1) {
		OPENSSL_free(label);
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	return c; /* owns label */
}

/* RSA: seed random, encrypted with OAEP(nameAlg, label "IDENTITY\0"). */
static enum quote_err seed_rsa(const struct quote_ek *ek, uint8_t *seed, size_t seed_len, TPM2B_ENCRYPTED_SECRET *es,
			       struct quote_diag *diag)
{
	EVP_PKEY_CTX *c = NULL;
	size_t outl = sizeof es->secret;
	enum quote_err err = QUOTE_ERR_CRYPTO;

	if (RAND_bytes(seed, (int)seed_len) != 1 || !(c = EVP_PKEY_CTX_dup(ek->oaep)) ||
	    EVP_PKEY_encrypt(c, es->secret, &outl, seed, seed_len) != 1) {
		quote_diag_ssl(diag, "RSA-OAEP seed encryption");
		goto out;
	}
	es->size = (UINT16)outl;
	err = QUOTE_OK;
out:
	EVP_PKEY_CTX_free(c);
	return err;
}

/* ECC: ephemeral ECDH on the EK's curve; seed = KDFe(nameAlg, Z, "IDENTITY", Qe.x, QEK.x);
 * the encrypted secret is the marshalled ephemeral point (TPMS_ECC_POINT). */
static enum quote_err seed_ecc(const struct quote_ek *qek, uint8_t *seed, size_t seed_len,
			       TPM2B_ENCRYPTED_SECRET *es, struct quote_diag *diag)
{
	const TPMT_PUBLIC *ek = &qek->pub.publicArea;
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *c = NULL;
	uint8_t z[66], pt[1 + 2 * 66];
	size_t zlen = sizeof z, ptlen = 0, cb;
	TPMS_ECC_POINT q;
	size_t off = 0;
	enum quote_err err = QUOTE_ERR_CRYPTO;

	if (!(eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", qek->group)))
		goto ssl;
	if (!(c = EVP_PKEY_CTX_new(eph, NULL)) || EVP_PKEY_derive_init(c) != 1 ||
	    EVP_PKEY_derive_set_peer(c, qek->pkey) != 1 || EVP_PKEY_derive(c, z, &zlen) != 1)
		goto ssl;
	if (EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &ptlen) != 1 || ptlen < 3 ||
	    pt[0] != 0x04)
		goto ssl;
	cb = (ptlen - 1) / 2;
	if (cb != ek->unique.ecc.x.size || zlen != cb) {
		quote_diag_set(diag, "ECDH sizes inconsistent");
		goto out;
	}
	memset(&q, 0, sizeof q);
	q.x.size = (UINT16)cb;
	memcpy(q.x.buffer, pt + 1, cb);
	q.y.size = (UINT16)cb;
	memcpy(q.y.buffer, pt + 1 + cb, cb);
	if (kdfe(ek->nameAlg, z, zlen, "IDENTITY", q.x.buffer, cb, ek->unique.ecc.x.buffer, cb, seed, seed_len) != 0)
		goto ssl;
	if (Tss2_MU_TPMS_ECC_POINT_Marshal(&q, es->secret, sizeof es->secret, &off) != TSS2_RC_SUCCESS) {
		err = QUOTE_ERR_FORMAT;
		goto out;
	}
	es->size = (UINT16)off;
	err = QUOTE_OK;
	goto out;
ssl:
	quote_diag_ssl(diag, "ECDH seed");
out:
	OPENSSL_cleanse(z, sizeof z);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(eph);
	return err;
}

void quote_ek_free(struct quote_ek *ek)
{
	if (!ek)
		return;
	EVP_PKEY_CTX_free(ek->oaep);
	EVP_PKEY_free(ek->pkey);
	EVP_MAC_free(ek->hmac);
	free(ek);
}

enum quote_err quote_ek_new(const uint8_t *ek_pub, size_t ek_pub_len, struct quote_ek **ret, struct quote_diag *diag)
{
	struct quote_ek *k = NULL;
	const TPMT_PUBLIC *ek;
	uint16_t symalg, symbits, symmode;
	enum quote_err err;

	quote_diag_reset(diag);
	if (!ret)
		return QUOTE_ERR_ARG;
	if (!(k = calloc(1, sizeof *k)))
		return QUOTE_ERR_NOMEM;
	ek = &k->pub.publicArea;
	if ((err = quote_public_unmarshal(ek_pub, ek_pub_len, &k->pub, diag)) != QUOTE_OK)
		goto fail;
	if ((ek->objectAttributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) !=
	    (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) {
		quote_diag_set(diag, "EK is not a restricted decryption key");
		err = QUOTE_ERR_KEY_ATTRS;
		goto fail;
	}
	if (ek->type == TPM2_ALG_RSA) {
		symalg = ek->parameters.rsaDetail.symmetric.algorithm;
		symbits = ek->parameters.rsaDetail.symmetric.keyBits.aes;
		symmode = ek->parameters.rsaDetail.symmetric.mode.aes;
	} else {
		symalg = ek->parameters.eccDetail.symmetric.algorithm;
		symbits = ek->parameters.eccDetail.symmetric.keyBits.aes;
		symmode = ek->parameters.eccDetail.symmetric.mode.aes;
	}
	if (symalg != TPM2_ALG_AES || symmode != TPM2_ALG_CFB || (symbits != 128 && symbits != 256)) {
		quote_diag_set(diag, "EK symmetric 0x%04x/%u/0x%04x unsupported (AES-CFB only)", symalg, symbits, symmode);
		err = QUOTE_ERR_UNSUPPORTED;
		goto fail;
	}
	k->cipher = symbits == 128 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128();
	k->keybytes = symbits / 8;
	err = QUOTE_ERR_CRYPTO;
	if (!quote_md_for_alg(ek->nameAlg) || !(k->pkey = quote_pkey_from_tpmt(ek, diag)))
		goto fail;
	if (ek->type == TPM2_ALG_RSA && !(k->oaep = oaep_ctx(k->pkey, ek->nameAlg))) {
		quote_diag_ssl(diag, "RSA-OAEP set-up");
		goto fail;
	}
	if (ek->type == TPM2_ALG_ECC &&
	    EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, k->group, sizeof k->group, NULL) != 1) {
		quote_diag_ssl(diag, "EK curve");
		goto fail;
	}
	if (!(k->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
		quote_diag_ssl(diag, "HMAC");
		goto fail;
	}
	*ret = k;
	return QUOTE_OK;
fail:
	quote_ek_free(k);
	return err;
}

enum quote_err quote_ek_make_credential(const struct quote_ek *qek, const uint8_t *objname, size_t objname_len,
					const uint8_t *credential, size_t cred_len, uint8_t **ret_id_object,
					size_t *ret_id_len, uint8_t **ret_secret, size_t *ret_secret_len,
					struct quote_diag *diag)
{
	const TPMT_PUBLIC *ek;
	TPM2B_ENCRYPTED_SECRET es;
	uint8_t seed[QUOTE_MAX_DIGEST], symkey[32], hkey[QUOTE_MAX_DIGEST], mac[QUOTE_MAX_DIGEST];
	uint8_t plain[2 + 64], enc[2 + 64], blob[2 + 2 + QUOTE_MAX_DIGEST + 2 + 64];
	uint8_t *id = NULL, *sec = NULL;
	size_t dl, maclen = 0, bl = 0, sl = 0;
	EVP_CIPHER_CTX *cc = NULL;
	int outl = 0;
	enum quote_err err;

	quote_diag_reset(diag);
	if (!qek || !objname || objname_len < 2 || objname_len > QUOTE_NAME_MAX || !credential || cred_len == 0 ||
	    cred_len > 64 || !ret_id_object || !ret_id_len || !ret_secret || !ret_secret_len)
		return QUOTE_ERR_ARG;
	ek = &qek->pub.publicArea;
	dl = quote_alg_digest_len(ek->nameAlg);
	memset(&es, 0, sizeof es);
	err = ek->type == TPM2_ALG_RSA ? seed_rsa(qek, seed, dl, &es, diag) : seed_ecc(qek, seed, dl, &es, diag);
	if (err != QUOTE_OK)
		goto out;
	err = QUOTE_ERR_CRYPTO;
	/* symKey = KDFa(nameAlg, seed, "STORAGE", name, NULL, symbits) */
	if (kdfa(qek->hmac, ek->nameAlg, seed, dl, "STORAGE", objname, objname_len, NULL, 0, symkey, qek->keybytes) != 0 ||
	    kdfa(qek->hmac, ek->nameAlg, seed, dl, "INTEGRITY", NULL, 0, NULL, 0, hkey, dl) != 0) {
		quote_diag_ssl(diag, "KDFa");
		goto out;
	}
	/* encIdentity = AES-CFB(symKey, IV 0, TPM2B_DIGEST(credential)) */
	plain[0] = (uint8_t)(cred_len >> 8);
	plain[1] = (uint8_t)cred_len;
	memcpy(plain + 2, credential, cred_len);
	{
		uint8_t iv[16] = {0};
		int fl = 0;
		if (!(cc = EVP_CIPHER_CTX_new()) || EVP_EncryptInit_ex(cc, qek->cipher, NULL, symkey, iv) != 1 ||
		    EVP_EncryptUpdate(cc, enc, &outl, plain, (int)(2 + cred_len)) != 1 ||
		    EVP_EncryptFinal_ex(cc, enc + outl, &fl) != 1) {
			quote_diag_ssl(diag, "AES-CFB");
			goto out;
		}
		outl += fl;
	}
	/* outerHMAC = HMAC(nameAlg, HMACkey, encIdentity || name) */
	if (hmac(qek->hmac, ek->nameAlg, hkey, dl, enc, (size_t)outl, objname, objname_len, mac, &maclen) != 0) {
		quote_diag_ssl(diag, "HMAC");
		goto out;
	}
	/* TPM2B_ID_OBJECT = size || TPM2B_DIGEST(integrityHMAC) || encIdentity */
	bl = 2 + 2 + maclen + (size_t)outl;
	blob[0] = (uint8_t)((bl - 2) >> 8);
	blob[1] = (uint8_t)(bl - 2);
	blob[2] = (uint8_t)(maclen >> 8);
	blob[3] = (uint8_t)maclen;
	memcpy(blob + 4, mac, maclen);
	memcpy(blob + 4 + maclen, enc, (size_t)outl);
	err = QUOTE_ERR_NOMEM;
	if (!(id = malloc(bl)) || !(sec = malloc(2 + (size_t)es.size)))
		goto out;
	memcpy(id, blob, bl);
	sec[0] = (uint8_t)(es.size >> 8);
	sec[1] = (uint8_t)es.size;
	memcpy(sec + 2, es.secret, es.size);
	sl = 2 + (size_t)es.size;
	*ret_id_object = id;
	*ret_id_len = bl;
	*ret_secret = sec;
	*ret_secret_len = sl;
	id = sec = NULL;
	err = QUOTE_OK;
out:
	EVP_CIPHER_CTX_free(cc);
	OPENSSL_cleanse(seed, sizeof seed);
	OPENSSL_cleanse(symkey, sizeof symkey);
	OPENSSL_cleanse(hkey, sizeof hkey);
	OPENSSL_cleanse(plain, sizeof plain);
	free(id);
	free(sec);
	return err;
}

enum quote_err quote_make_credential(const uint8_t *ek_pub, size_t ek_pub_len, const uint8_t *objname,
				     size_t objname_len, const uint8_t *credential, size_t cred_len,
				     uint8_t **ret_id_object, size_t *ret_id_len, uint8_t **ret_secret,
				     size_t *ret_secret_len, struct quote_diag *diag)
{
	struct quote_ek *ek = NULL;
	enum quote_err err;

	quote_diag_reset(diag);
	if (!objname || objname_len < 2 || objname_len > QUOTE_NAME_MAX || !credential || cred_len == 0 ||
	    cred_len > 64 || !ret_id_object || !ret_id_len || !ret_secret || !ret_secret_len)
		return QUOTE_ERR_ARG;
	if ((err = quote_ek_new(ek_pub, ek_pub_len, &ek, diag)) != QUOTE_OK)
		return err;
	err = quote_ek_make_credential(ek, objname, objname_len, credential, cred_len, ret_id_object, ret_id_len,
				       ret_secret, ret_secret_len, diag);
	quote_ek_free(ek);
	return err;
}

enum quote_err quote_credential_file_encode(const uint8_t *id_object, size_t id_len, const uint8_t *secret,
					    size_t secret_len, uint8_t **ret, size_t *ret_len)
{
	uint8_t *b;
	if (!id_object || !secret || !ret || !ret_len || id_len < 2 || secret_len < 2 || id_len > 4096 ||
	    secret_len > 4096)
		return QUOTE_ERR_ARG;
	if (!(b = malloc(8 + id_len + secret_len)))
		return QUOTE_ERR_NOMEM;
	b[0] = 0xBA;
	b[1] = 0xDC;
	b[2] = 0xC0;
	b[3] = 0xDE;
	b[4] = b[5] = b[6] = 0;
	b[7] = 1;
	memcpy(b + 8, id_object, id_len);
	memcpy(b + 8 + id_len, secret, secret_len);
	*ret = b;
	*ret_len = 8 + id_len + secret_len;
	return QUOTE_OK;
}

enum quote_err quote_credential_file_parse(const uint8_t *buf, size_t len, const uint8_t **ret_id,
					   size_t *ret_id_len, const uint8_t **ret_secret, size_t *ret_secret_len)
{
	size_t il, sl;
	if (!buf || !ret_id || !ret_id_len || !ret_secret || !ret_secret_len)
		return QUOTE_ERR_ARG;
	if (len < 12 || ((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3]) != CRED_FILE_MAGIC ||
	    buf[4] || buf[5] || buf[6] || buf[7] != 1)
		return QUOTE_ERR_FORMAT;
	il = 2 + ((size_t)buf[8] << 8 | buf[9]);
	if (il > len - 8 - 2)
		return QUOTE_ERR_FORMAT;
	sl = 2 + ((size_t)buf[8 + il] << 8 | buf[9 + il]);
	if (8 + il + sl != len)
		return QUOTE_ERR_FORMAT;
	*ret_id = buf + 8;
	*ret_id_len = il;
	*ret_secret = buf + 8 + il;
	*ret_secret_len = sl;
	return QUOTE_OK;
}
