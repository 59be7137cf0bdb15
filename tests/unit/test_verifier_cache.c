/* Unit tests of the verifier's key cache: the prepared EK of an enrolled host
 * (verifier_keycache_ek -> libquote's quote_ek) wraps credentials that the EK's private key
 * recovers, exactly like quote_make_credential; tampered blobs or another AK name do not
 * unwrap; keys that are not EKs are not cached. ECDSA signatures checked through a cached
 * AK (a verification context prepared once, duplicated per check) give the same answer as
 * libquote's quote_signature_verify, refuse a changed message, a changed signature and
 * another key's signature, also from several threads at once; a statement key's certification
 * is judged the same whether the key's parsed public is read from the cache or not. No TPM: the EK is a software RSA key, and
 * the unwrapping is TPM2_ActivateCredential's arithmetic (Part 1 §24) written out with
 * OpenSSL here (the real TPM does it in tests/integration/verifier_e2e.sh). */
#include "tests/unit/t.h"
#include "verifier/verifier-int.h"
#include "quote/quote.h"

#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

static EVP_PKEY *ek_priv;
static uint8_t ek_pub[1024];
static size_t ek_pub_len;

/* A TPM2B_PUBLIC for a software RSA-2048 key with the EK template's attributes (attrs) and
 * AES-128-CFB symmetric. */
static size_t make_ek_pub(EVP_PKEY *k, uint32_t attrs, uint8_t *out, size_t cap)
{
	TPM2B_PUBLIC p;
	TPMT_PUBLIC *t = &p.publicArea;
	BIGNUM *n = NULL;
	size_t off = 0;

	memset(&p, 0, sizeof p);
	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) != 1)
		return 0;
	t->type = TPM2_ALG_RSA;
	t->nameAlg = TPM2_ALG_SHA256;
	t->objectAttributes = attrs;
	t->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	t->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	t->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	t->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	t->parameters.rsaDetail.keyBits = 2048;
	t->unique.rsa.size = 256;
	BN_bn2binpad(n, t->unique.rsa.buffer, 256);
	BN_free(n);
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&p, out, cap, &off) != TSS2_RC_SUCCESS)
		return 0;
	return off;
}

/* KDFa(SHA-256, key, label, u, NULL, bytes <= 32). */
static void kdfa(const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ulen, uint8_t *out,
		 size_t bytes)
{
	uint8_t msg[256], h[32];
	unsigned hl = 0;
	size_t m = 0, ll = strlen(label) + 1;
	uint32_t bits = (uint32_t)bytes * 8;
	msg[m++] = 0, msg[m++] = 0, msg[m++] = 0, msg[m++] = 1;
	memcpy(msg + m, label, ll);
	m += ll;
	if (ulen)
		memcpy(msg + m, u, ulen);
	m += ulen;
	msg[m++] = (uint8_t)(bits >> 24), msg[m++] = (uint8_t)(bits >> 16), msg[m++] = (uint8_t)(bits >> 8);
	msg[m++] = (uint8_t)bits;
	HMAC(EVP_sha256(), key, (int)klen, msg, m, h, &hl);
	memcpy(out, h, bytes);
}

/* TPM2_ActivateCredential in software: 0 and the credential if the blob unwraps for name. */
static int activate(const uint8_t *id, size_t id_len, const uint8_t *sec, size_t sec_len, const uint8_t *name,
		    size_t name_len, uint8_t *cred, size_t *cred_len)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ek_priv, NULL);
	char *label = OPENSSL_malloc(9);
	uint8_t seed[512], symkey[16], hkey[32], mac[32], plain[80], iv[16] = {0};
	size_t seed_len = sizeof seed;
	unsigned ml = 0;
	int outl = 0, rc = -1;
	EVP_CIPHER_CTX *cc = NULL;
	const uint8_t *enc;
	size_t enc_len;

	if (!c || !label || sec_len < 2 || id_len < 4 + 32 || (size_t)(id[0] << 8 | id[1]) != id_len - 2 ||
	    (id[2] << 8 | id[3]) != 32)
		goto out;
	memcpy(label, "IDENTITY", 9);
	if (EVP_PKEY_decrypt_init(c) != 1 || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(c, label, 9) != 1)
		goto out;
	label = NULL;
	if (EVP_PKEY_decrypt(c, seed, &seed_len, sec + 2, sec_len - 2) != 1 || seed_len != 32)
		goto out;
	kdfa(seed, 32, "STORAGE", name, name_len, symkey, sizeof symkey);
	kdfa(seed, 32, "INTEGRITY", NULL, 0, hkey, sizeof hkey);
	enc = id + 4 + 32;
	enc_len = id_len - 4 - 32;
	{
		uint8_t both[128];
		if (enc_len + name_len > sizeof both)
			goto out;
		memcpy(both, enc, enc_len);
		memcpy(both + enc_len, name, name_len);
		HMAC(EVP_sha256(), hkey, 32, both, enc_len + name_len, mac, &ml);
	}
	if (ml != 32 || CRYPTO_memcmp(mac, id + 4, 32) != 0 || enc_len > sizeof plain)
		goto out;
	if (!(cc = EVP_CIPHER_CTX_new()) || EVP_DecryptInit_ex(cc, EVP_aes_128_cfb128(), NULL, symkey, iv) != 1 ||
	    EVP_DecryptUpdate(cc, plain, &outl, enc, (int)enc_len) != 1 || outl < 2 ||
	    (size_t)(plain[0] << 8 | plain[1]) != (size_t)outl - 2)
		goto out;
	*cred_len = (size_t)outl - 2;
	memcpy(cred, plain + 2, *cred_len);
	rc = 0;
out:
	OPENSSL_free(label);
	EVP_PKEY_CTX_free(c);
	EVP_CIPHER_CTX_free(cc);
	return rc;
}

static const uint8_t ak_name[34] = {0x00, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t cred_in[32] = {0xc0, 0xff, 0xee, 1, 2, 3};

static void test_prepared_ek_wraps_like_make_credential(void)
{
	struct verifier_keycache *kc = NULL;
	const struct quote_ek *ek, *again;
	struct quote_diag d;
	uint8_t *id = NULL, *sec = NULL, out[64], other[34];
	size_t il = 0, sl = 0, ol = 0;

	T_EQ_INT(verifier_keycache_new(&kc), 0);
	ek = verifier_keycache_ek(kc, ek_pub, ek_pub_len);
	T_CHECK(ek != NULL);
	again = verifier_keycache_ek(kc, ek_pub, ek_pub_len);
	T_CHECK(again == ek); /* prepared once */
	/* Used three times: every blob unwraps with the EK's private key, for this AK name only. */
	for (int i = 0; i < 3 && ek; i++) {
		T_EQ_INT(quote_ek_make_credential(ek, ak_name, sizeof ak_name, cred_in, sizeof cred_in, &id, &il, &sec, &sl,
						  &d),
			 QUOTE_OK);
		T_EQ_INT(activate(id, il, sec, sl, ak_name, sizeof ak_name, out, &ol), 0);
		T_EQ_INT(ol, sizeof cred_in);
		T_CHECK(memcmp(out, cred_in, sizeof cred_in) == 0);
		memcpy(other, ak_name, sizeof other);
		other[33] ^= 1;
		T_EQ_INT(activate(id, il, sec, sl, other, sizeof other, out, &ol), -1); /* another AK */
		id[il - 1] ^= 0x40;
		T_EQ_INT(activate(id, il, sec, sl, ak_name, sizeof ak_name, out, &ol), -1); /* tampered */
		free(id);
		free(sec);
		id = sec = NULL;
	}
	/* The one-shot libquote call gives the same kind of blob. */
	T_EQ_INT(quote_make_credential(ek_pub, ek_pub_len, ak_name, sizeof ak_name, cred_in, sizeof cred_in, &id, &il, &sec,
				       &sl, &d),
		 QUOTE_OK);
	T_EQ_INT(activate(id, il, sec, sl, ak_name, sizeof ak_name, out, &ol), 0);
	T_CHECK(ol == sizeof cred_in && memcmp(out, cred_in, sizeof cred_in) == 0);
	free(id);
	free(sec);
	verifier_keycache_free(kc);
}

static void test_prepared_ek_refuses_what_make_credential_refuses(void)
{
	struct verifier_keycache *kc = NULL;
	struct quote_ek *ek = NULL;
	struct quote_diag d;
	uint8_t signer[1024], *id = NULL, *sec = NULL;
	size_t n, il = 0, sl = 0;

	T_EQ_INT(verifier_keycache_new(&kc), 0);
	/* A signing key (not restricted + decrypt) is no EK: same error both ways, nothing cached. */
	n = make_ek_pub(ek_priv, TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT, signer,
			sizeof signer);
	T_CHECK(n > 0);
	T_EQ_INT(quote_ek_new(signer, n, &ek, &d), QUOTE_ERR_KEY_ATTRS);
	T_CHECK(ek == NULL);
	T_EQ_INT(quote_make_credential(signer, n, ak_name, sizeof ak_name, cred_in, sizeof cred_in, &id, &il, &sec, &sl,
				       &d),
		 QUOTE_ERR_KEY_ATTRS);
	T_CHECK(verifier_keycache_ek(kc, signer, n) == NULL);
	/* Truncated bytes do not unmarshal. */
	T_EQ_INT(quote_ek_new(ek_pub, ek_pub_len - 1, &ek, &d), QUOTE_ERR_FORMAT);
	T_CHECK(verifier_keycache_ek(kc, ek_pub, ek_pub_len - 1) == NULL);
	/* Bad arguments to the prepared call. */
	T_EQ_INT(quote_ek_new(ek_pub, ek_pub_len, &ek, &d), QUOTE_OK);
	T_EQ_INT(quote_ek_make_credential(ek, ak_name, sizeof ak_name, cred_in, 65, &id, &il, &sec, &sl, &d),
		 QUOTE_ERR_ARG);
	T_EQ_INT(quote_ek_make_credential(NULL, ak_name, sizeof ak_name, cred_in, 32, &id, &il, &sec, &sl, &d),
		 QUOTE_ERR_ARG);
	quote_ek_free(ek);
	quote_ek_free(NULL);
	verifier_keycache_free(kc);
}

/* ---- ECDSA through a cached AK ---- */

/* A TPM2B_PUBLIC for a software P-256 key with an AK's attributes (restricted signing,
 * ECDSA/SHA-256). */
#define AK_ATTRS                                                                                                       \
	(TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |            \
	 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH)
#define SK_ATTRS                                                                                                       \
	(TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |   \
	 TPMA_OBJECT_USERWITHAUTH)

static size_t make_ecc_pub(EVP_PKEY *k, uint32_t attrs, uint8_t *out, size_t cap);
static size_t make_ak_pub(EVP_PKEY *k, uint8_t *out, size_t cap) { return make_ecc_pub(k, AK_ATTRS, out, cap); }

/* A TPM2B_PUBLIC for a software P-256 key with attributes attrs, ECDSA/SHA-256. */
static size_t make_ecc_pub(EVP_PKEY *k, uint32_t attrs, uint8_t *out, size_t cap)
{
	TPM2B_PUBLIC p;
	TPMT_PUBLIC *t = &p.publicArea;
	BIGNUM *x = NULL, *y = NULL;
	size_t off = 0;

	memset(&p, 0, sizeof p);
	if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
	    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
		BN_free(x);
		return 0;
	}
	t->type = TPM2_ALG_ECC;
	t->nameAlg = TPM2_ALG_SHA256;
	t->objectAttributes = attrs;
	t->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	t->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	t->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	t->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	t->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	t->unique.ecc.x.size = 32;
	t->unique.ecc.y.size = 32;
	BN_bn2binpad(x, t->unique.ecc.x.buffer, 32);
	BN_bn2binpad(y, t->unique.ecc.y.buffer, 32);
	BN_free(x);
	BN_free(y);
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&p, out, cap, &off) != TSS2_RC_SUCCESS)
		return 0;
	return off;
}

/* A marshalled TPMT_SIGNATURE (ECDSA, SHA-256) by k over msg: 72 bytes. */
static size_t ecdsa_sign_tpm(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t out[72])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t der_len = sizeof der;
	const unsigned char *p = der;
	ECDSA_SIG *es = NULL;
	size_t n = 0;

	if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
	    EVP_DigestSign(ctx, der, &der_len, msg, len) == 1 && (es = d2i_ECDSA_SIG(NULL, &p, (long)der_len))) {
		out[0] = 0x00, out[1] = 0x18, out[2] = 0x00, out[3] = 0x0b;
		out[4] = 0, out[5] = 32;
		BN_bn2binpad(ECDSA_SIG_get0_r(es), out + 6, 32);
		out[38] = 0, out[39] = 32;
		BN_bn2binpad(ECDSA_SIG_get0_s(es), out + 40, 32);
		n = 72;
	}
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return n;
}

static EVP_PKEY *ak_priv, *other_priv;
static uint8_t ak_pub[512];
static size_t ak_pub_len;
static const uint8_t quoted[] = "\xff" "TCG" "a TPMS_ATTEST stand-in: the bytes are what is signed";

/* keycache and libquote, same verdict; returns the keycache's. */
static int both(struct verifier_keycache *kc, const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
	struct quote_diag d1, d2;
	int a, b;
	memset(&d1, 0, sizeof d1);
	memset(&d2, 0, sizeof d2);
	a = verifier_keycache_sig_verify(kc, ak_pub, ak_pub_len, msg, len, sig, sig_len, &d1);
	b = quote_signature_verify(ak_pub, ak_pub_len, msg, len, sig, sig_len, &d2);
	T_EQ_INT(a == QUOTE_OK, b == QUOTE_OK);
	return a;
}

static void test_cached_ak_ecdsa_accepts_and_refuses_like_libquote(void)
{
	struct verifier_keycache *kc = NULL;
	uint8_t sig[72], bad[72], msg[sizeof quoted];

	T_EQ_INT(verifier_keycache_new(&kc), 0);
	T_EQ_INT(ecdsa_sign_tpm(ak_priv, quoted, sizeof quoted, sig), 72);
	/* first use builds the entry, the second uses it */
	T_EQ_INT(both(kc, quoted, sizeof quoted, sig, sizeof sig), QUOTE_OK);
	T_EQ_INT(both(kc, quoted, sizeof quoted, sig, sizeof sig), QUOTE_OK);
	/* one bit of the message */
	memcpy(msg, quoted, sizeof msg);
	msg[10] ^= 0x01;
	T_EQ_INT(both(kc, msg, sizeof msg, sig, sizeof sig), QUOTE_ERR_SIGNATURE);
	/* a truncated message */
	T_EQ_INT(both(kc, quoted, sizeof quoted - 1, sig, sizeof sig), QUOTE_ERR_SIGNATURE);
	/* one bit of s, then of r */
	memcpy(bad, sig, sizeof bad);
	bad[71] ^= 0x01;
	T_EQ_INT(both(kc, quoted, sizeof quoted, bad, sizeof bad), QUOTE_ERR_SIGNATURE);
	memcpy(bad, sig, sizeof bad);
	bad[6] ^= 0x80;
	T_EQ_INT(both(kc, quoted, sizeof quoted, bad, sizeof bad), QUOTE_ERR_SIGNATURE);
	/* another key's valid signature over the same bytes */
	T_EQ_INT(ecdsa_sign_tpm(other_priv, quoted, sizeof quoted, bad), 72);
	T_EQ_INT(both(kc, quoted, sizeof quoted, bad, sizeof bad), QUOTE_ERR_SIGNATURE);
	/* and the good one still verifies after the failures (the template is not consumed) */
	T_EQ_INT(both(kc, quoted, sizeof quoted, sig, sizeof sig), QUOTE_OK);
	/* a certification through the same cached key: a signature that does not verify stops it */
	{
		struct quote_diag d;
		memset(&d, 0, sizeof d);
		T_EQ_INT(verifier_keycache_certify_verify(kc, ak_pub, ak_pub_len, msg, sizeof msg, sig, sizeof sig, ak_pub,
							  ak_pub_len, NULL, 0, &d),
			 QUOTE_ERR_SIGNATURE);
	}
	verifier_keycache_free(kc);
}

/* A marshalled TPMS_ATTEST of TPM2_Certify: signer ak, extraData nonce, certified name. */
static size_t make_certify(const uint8_t *nonce, size_t nlen, const uint8_t *name, size_t name_len, uint8_t *out,
			   size_t cap)
{
	TPMS_ATTEST a;
	struct quote_public_info ak;
	struct quote_diag d;
	size_t off = 0;

	memset(&a, 0, sizeof a);
	if (quote_public_parse(ak_pub, ak_pub_len, &ak, &d) != QUOTE_OK)
		return 0;
	a.magic = TPM2_GENERATED_VALUE;
	a.type = TPM2_ST_ATTEST_CERTIFY;
	a.qualifiedSigner.size = (UINT16)ak.name_len;
	memcpy(a.qualifiedSigner.name, ak.name, ak.name_len);
	a.extraData.size = (UINT16)nlen;
	memcpy(a.extraData.buffer, nonce, nlen);
	a.attested.certify.name.size = (UINT16)name_len;
	memcpy(a.attested.certify.name.name, name, name_len);
	if (Tss2_MU_TPMS_ATTEST_Marshal(&a, out, cap, &off) != TSS2_RC_SUCCESS)
		return 0;
	return off;
}

/* The statement key's certification through the cache: same answers whether the statement key
 * is cached (its name and attributes read from the entry) or not (parsed). */
static void test_cached_certification_checks_name_nonce_and_key(void)
{
	struct verifier_keycache *kc = NULL;
	EVP_PKEY *sk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *sk2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t sk_pub[512], sk2_pub[512], sk3_pub[512], rsk_pub[512], att[512], ratt[512], sig[72], rsig[72];
	size_t skl, sk2l, sk3l, rskl, al, ral;
	struct quote_public_info info;
	struct quote_diag d;
	static const uint8_t nonce[32] = {7, 7, 7}, other_nonce[32] = {8};

	T_CHECK(sk && sk2);
	skl = make_ecc_pub(sk, SK_ATTRS, sk_pub, sizeof sk_pub);
	sk2l = make_ecc_pub(sk2, SK_ATTRS, sk2_pub, sizeof sk2_pub);
	sk3l = make_ecc_pub(other_priv, SK_ATTRS, sk3_pub, sizeof sk3_pub);
	rskl = make_ecc_pub(sk2, SK_ATTRS | TPMA_OBJECT_RESTRICTED, rsk_pub, sizeof rsk_pub); /* not a statement key */
	T_CHECK(skl && sk2l && sk3l && rskl);
	memset(&d, 0, sizeof d);
	T_EQ_INT(quote_public_parse(sk_pub, skl, &info, &d), QUOTE_OK);
	al = make_certify(nonce, sizeof nonce, info.name, info.name_len, att, sizeof att);
	T_EQ_INT(quote_public_parse(rsk_pub, rskl, &info, &d), QUOTE_OK);
	ral = make_certify(nonce, sizeof nonce, info.name, info.name_len, ratt, sizeof ratt);
	T_CHECK(al && ral);
	T_EQ_INT(ecdsa_sign_tpm(ak_priv, att, al, sig), 72);
	T_EQ_INT(ecdsa_sign_tpm(ak_priv, ratt, ral, rsig), 72);
	T_EQ_INT(verifier_keycache_new(&kc), 0);
#define CERTIFY(a, al_, s, pub, publ, n)                                                                               \
	(memset(&d, 0, sizeof d),                                                                                      \
	 verifier_keycache_certify_verify(kc, ak_pub, ak_pub_len, a, al_, s, 72, pub, publ, n, sizeof n, &d))
	for (int cached = 0; cached < 2; cached++) {
		T_EQ_INT(CERTIFY(att, al, sig, sk_pub, skl, nonce), QUOTE_OK);
		/* a certification of sk presented with another key (cached or not) */
		T_EQ_INT(CERTIFY(att, al, sig, sk2_pub, sk2l, nonce), QUOTE_ERR_NAME);
		T_EQ_INT(CERTIFY(att, al, sig, sk3_pub, sk3l, nonce), QUOTE_ERR_NAME);
		/* for another nonce */
		T_EQ_INT(CERTIFY(att, al, sig, sk_pub, skl, other_nonce), QUOTE_ERR_NONCE);
		/* a certified key that is no statement key */
		T_EQ_INT(CERTIFY(ratt, ral, rsig, rsk_pub, rskl, nonce), QUOTE_ERR_KEY_ATTRS);
		/* the AK's signature over a changed certification */
		att[al - 1] ^= 1;
		T_EQ_INT(CERTIFY(att, al, sig, sk_pub, skl, nonce), QUOTE_ERR_SIGNATURE);
		att[al - 1] ^= 1;
		/* as step 11 does once a certification passed: the keys enter the cache */
		T_CHECK(verifier_keycache_bundle_key(kc, sk_pub, skl) != NULL);
		T_CHECK(verifier_keycache_bundle_key(kc, sk2_pub, sk2l) != NULL);
		T_CHECK(verifier_keycache_bundle_key(kc, rsk_pub, rskl) != NULL);
		/* and the public info read from the cache is the parsed one */
		{
			struct quote_public_info a, b;
			memset(&a, 0, sizeof a);
			memset(&b, 0, sizeof b);
			T_EQ_INT(verifier_keycache_public_info(kc, sk_pub, skl, &a, &d), QUOTE_OK);
			T_EQ_INT(quote_public_parse(sk_pub, skl, &b, &d), QUOTE_OK);
			T_CHECK(a.name_len == b.name_len && memcmp(a.name, b.name, a.name_len) == 0 &&
				a.attributes == b.attributes && a.type == b.type);
			/* malformed bytes are refused, not cached */
			T_CHECK(verifier_keycache_public_info(kc, sk_pub, skl - 1, &a, &d) != QUOTE_OK);
		}
	}
#undef CERTIFY
	verifier_keycache_free(kc);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(sk2);
}

struct worker {
	struct verifier_keycache *kc;
	const uint8_t *good, *bad;
	int wrong; /* answers that were not the expected one */
};

static void *verify_many(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 200; i++) {
		struct quote_diag d;
		int want_ok = i % 2 == 0;
		int r;
		memset(&d, 0, sizeof d);
		r = verifier_keycache_sig_verify(w->kc, ak_pub, ak_pub_len, quoted, sizeof quoted, want_ok ? w->good : w->bad,
						 72, &d);
		if ((r == QUOTE_OK) != want_ok)
			w->wrong++;
	}
	return NULL;
}

static void test_cached_ak_ecdsa_from_several_threads(void)
{
	struct verifier_keycache *kc = NULL;
	uint8_t sig[72], bad[72];
	pthread_t th[4];
	struct worker w[4];

	T_EQ_INT(verifier_keycache_new(&kc), 0);
	T_EQ_INT(ecdsa_sign_tpm(ak_priv, quoted, sizeof quoted, sig), 72);
	memcpy(bad, sig, sizeof bad);
	bad[50] ^= 0x04;
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.kc = kc, .good = sig, .bad = bad};
		T_EQ_INT(pthread_create(&th[i], NULL, verify_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		T_EQ_INT(w[i].wrong, 0);
	}
	verifier_keycache_free(kc);
}

int main(void)
{
	ek_priv = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (!ek_priv)
		return 1;
	ek_pub_len = make_ek_pub(ek_priv,
				 TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY,
				 ek_pub, sizeof ek_pub);
	if (!ek_pub_len)
		return 1;
	T_RUN(test_prepared_ek_wraps_like_make_credential);
	T_RUN(test_prepared_ek_refuses_what_make_credential_refuses);
	ak_priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!ak_priv || !other_priv || !(ak_pub_len = make_ak_pub(ak_priv, ak_pub, sizeof ak_pub)))
		return 1;
	T_RUN(test_cached_ak_ecdsa_accepts_and_refuses_like_libquote);
	T_RUN(test_cached_ak_ecdsa_from_several_threads);
	T_RUN(test_cached_certification_checks_name_nonce_and_key);
	EVP_PKEY_free(ak_priv);
	EVP_PKEY_free(other_priv);
	EVP_PKEY_free(ek_priv);
	return t_done();
}
