/* TPM2_MakeCredential (TPM 2.0 Part 1 §24) for the release, with the EK's OpenSSL key taken
 * from the key cache: libquote's quote_make_credential rebuilds the EK key from its
 * TPM2B_PUBLIC on every call (EVP_PKEY_fromdata plus a fresh RSA Montgomery context), which
 * was ~30 us of the ~60 us it cost per affirming appraisal. Same construction and output
 * as quote_make_credential: seed = random, RSA-OAEP(nameAlg, label "IDENTITY\0") to the EK;
 * symKey = KDFa(nameAlg, seed, "STORAGE", AK name, -, symBits); HMACkey = KDFa(nameAlg, seed,
 * "INTEGRITY", -, -, digest bits); encIdentity = AES-CFB(symKey, IV 0, TPM2B(credential));
 * TPM2B_ID_OBJECT = TPM2B(HMAC(HMACkey, encIdentity || AK name)) || encIdentity.
 * ECC EKs, and anything this file does not handle, go to quote_make_credential. */
#include "verifier/verifier-int.h"
#include "quote/quote.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

static const EVP_MD *md_of(uint16_t alg)
{
	switch (alg) {
	case TPM2_ALG_SHA256: return EVP_sha256();
	case TPM2_ALG_SHA384: return EVP_sha384();
	case TPM2_ALG_SHA512: return EVP_sha512();
	default: return NULL;
	}
}

/* KDFa (Part 1 §11.4.10.2) with HMAC(md): counter || label\0 || u || v || bits. */
static int kdfa(const EVP_MD *md, const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ulen,
		uint8_t *out, size_t bytes)
{
	size_t done = 0, llen = strlen(label) + 1;
	uint32_t bits = (uint32_t)(bytes * 8);
	uint8_t msg[4 + 16 + QUOTE_NAME_MAX + 4];
	if (llen > 16 || ulen > QUOTE_NAME_MAX)
		return -1;
	for (uint32_t i = 1; done < bytes; i++) {
		uint8_t h[EVP_MAX_MD_SIZE];
		unsigned hl = 0;
		size_t m = 0, n;
		msg[m++] = (uint8_t)(i >> 24);
		msg[m++] = (uint8_t)(i >> 16);
		msg[m++] = (uint8_t)(i >> 8);
		msg[m++] = (uint8_t)i;
		memcpy(msg + m, label, llen);
		m += llen;
		if (ulen)
			memcpy(msg + m, u, ulen);
		m += ulen;
		msg[m++] = (uint8_t)(bits >> 24);
		msg[m++] = (uint8_t)(bits >> 16);
		msg[m++] = (uint8_t)(bits >> 8);
		msg[m++] = (uint8_t)bits;
		if (!HMAC(md, key, (int)klen, msg, m, h, &hl))
			return -1;
		n = bytes - done < hl ? bytes - done : hl;
		memcpy(out + done, h, n);
		done += n;
		OPENSSL_cleanse(h, sizeof h);
	}
	return 0;
}

static int seed_rsa(EVP_PKEY *pkey, const EVP_MD *md, uint8_t *seed, size_t seed_len, uint8_t *out, size_t *out_len)
{
	EVP_PKEY_CTX *c = NULL;
	char *label = NULL;
	int rc = -1;

	if (RAND_bytes(seed, (int)seed_len) != 1 || !(label = OPENSSL_malloc(9)))
		goto out;
	memcpy(label, "IDENTITY", 9);
	if (!(c = EVP_PKEY_CTX_new(pkey, NULL)) || EVP_PKEY_encrypt_init(c) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) != 1 || EVP_PKEY_CTX_set_rsa_oaep_md(c, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) != 1 || EVP_PKEY_CTX_set0_rsa_oaep_label(c, label, 9) != 1)
		goto out;
	label = NULL; /* owned by c */
	if (EVP_PKEY_encrypt(c, out, out_len, seed, seed_len) == 1)
		rc = 0;
out:
	OPENSSL_free(label);
	EVP_PKEY_CTX_free(c);
	return rc;
}

int verifier_make_credential(struct verifier_keycache *kc, const uint8_t *ek_pub, size_t ek_len, const uint8_t *objname,
			     size_t objname_len, const uint8_t *cred, size_t cred_len, uint8_t **ret_id, size_t *ret_id_len,
			     uint8_t **ret_sec, size_t *ret_sec_len, struct quote_diag *diag)
{
	TPM2B_PUBLIC p;
	const TPMT_PUBLIC *ek = &p.publicArea;
	const EVP_MD *md;
	const EVP_CIPHER *cipher;
	EVP_PKEY *pkey;
	EVP_CIPHER_CTX *cc = NULL;
	uint8_t seed[EVP_MAX_MD_SIZE], symkey[32], hkey[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
	uint8_t plain[2 + 64], enc[2 + 64], secret[2 + sizeof(TPMU_ENCRYPTED_SECRET)], iv[16] = {0};
	uint8_t *id = NULL, *sec = NULL;
	size_t off = 0, dl, slen = sizeof secret - 2, bl;
	unsigned maclen = 0;
	int outl = 0, fl = 0, rc = QUOTE_ERR_CRYPTO;

	memset(&p, 0, sizeof p);
	if (!objname || objname_len < 2 || objname_len > QUOTE_NAME_MAX || !cred || cred_len == 0 || cred_len > 64 ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(ek_pub, ek_len, &off, &p) != TSS2_RC_SUCCESS || off != ek_len ||
	    ek->type != TPM2_ALG_RSA || !(md = md_of(ek->nameAlg)) ||
	    (ek->objectAttributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) !=
		    (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT) ||
	    ek->parameters.rsaDetail.symmetric.algorithm != TPM2_ALG_AES ||
	    ek->parameters.rsaDetail.symmetric.mode.aes != TPM2_ALG_CFB ||
	    (ek->parameters.rsaDetail.symmetric.keyBits.aes != 128 && ek->parameters.rsaDetail.symmetric.keyBits.aes != 256) ||
	    !(pkey = verifier_keycache_pkey(kc, ek_pub, ek_len)))
		return quote_make_credential(ek_pub, ek_len, objname, objname_len, cred, cred_len, ret_id, ret_id_len,
					     ret_sec, ret_sec_len, diag);
	cipher = ek->parameters.rsaDetail.symmetric.keyBits.aes == 128 ? EVP_aes_128_cfb128() : EVP_aes_256_cfb128();
	dl = (size_t)EVP_MD_get_size(md);
	if (seed_rsa(pkey, md, seed, dl, secret + 2, &slen) != 0 ||
	    kdfa(md, seed, dl, "STORAGE", objname, objname_len, symkey, (size_t)EVP_CIPHER_get_key_length(cipher)) != 0 ||
	    kdfa(md, seed, dl, "INTEGRITY", NULL, 0, hkey, dl) != 0)
		goto out;
	plain[0] = (uint8_t)(cred_len >> 8);
	plain[1] = (uint8_t)cred_len;
	memcpy(plain + 2, cred, cred_len);
	if (!(cc = EVP_CIPHER_CTX_new()) || EVP_EncryptInit_ex(cc, cipher, NULL, symkey, iv) != 1 ||
	    EVP_EncryptUpdate(cc, enc, &outl, plain, (int)(2 + cred_len)) != 1 || EVP_EncryptFinal_ex(cc, enc + outl, &fl) != 1)
		goto out;
	outl += fl;
	{ /* outerHMAC = HMAC(HMACkey, encIdentity || name) */
		uint8_t buf[2 + 64 + QUOTE_NAME_MAX];
		memcpy(buf, enc, (size_t)outl);
		memcpy(buf + outl, objname, objname_len);
		if (!HMAC(md, hkey, (int)dl, buf, (size_t)outl + objname_len, mac, &maclen))
			goto out;
	}
	bl = 2 + 2 + maclen + (size_t)outl;
	rc = QUOTE_ERR_NOMEM;
	if (!(id = malloc(bl)) || !(sec = malloc(2 + slen)))
		goto out;
	id[0] = (uint8_t)((bl - 2) >> 8);
	id[1] = (uint8_t)(bl - 2);
	id[2] = (uint8_t)(maclen >> 8);
	id[3] = (uint8_t)maclen;
	memcpy(id + 4, mac, maclen);
	memcpy(id + 4 + maclen, enc, (size_t)outl);
	secret[0] = (uint8_t)(slen >> 8);
	secret[1] = (uint8_t)slen;
	memcpy(sec, secret, 2 + slen);
	*ret_id = id;
	*ret_id_len = bl;
	*ret_sec = sec;
	*ret_sec_len = 2 + slen;
	id = sec = NULL;
	rc = QUOTE_OK;
out:
	if (rc == QUOTE_ERR_CRYPTO && diag)
		snprintf(diag->detail, sizeof diag->detail, "MakeCredential: OpenSSL failure");
	EVP_CIPHER_CTX_free(cc);
	OPENSSL_cleanse(seed, sizeof seed);
	OPENSSL_cleanse(symkey, sizeof symkey);
	OPENSSL_cleanse(hkey, sizeof hkey);
	OPENSSL_cleanse(plain, sizeof plain);
	free(id);
	free(sec);
	return rc;
}
