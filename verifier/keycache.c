/* A cache of parsed public keys (AKs and statement keys), so that an appraisal does not pay
 * OpenSSL 3's key construction (EVP_PKEY_fromdata, DER decoders: 100-300 us each) for keys it
 * has seen before. Keyed by the exact marshalled TPM2B_PUBLIC bytes, kept in the entry and
 * compared whole (a hash with a random seed only picks the slot: a lookup costs no SHA-256);
 * entries are immutable and live as long as the service (bounded: when full, new keys take
 * the slow path).
 *
 * With a cached AK, ECDSA quote and certify signatures are checked here directly
 * (TPMT_SIGNATURE ECDSA/SHA-256 -> DER; SHA-256 of the message, then EVP_PKEY_verify); anything
 * else falls back to libquote's quote_signature_verify / quote_certify_verify.
 *
 * Each cached EC key also keeps a verification context initialised once (EVP_PKEY_verify_init:
 * OpenSSL 3 fetches the signature implementation and the digest by name on every
 * EVP_DigestVerifyInit, ~5 us, and EVP_DigestVerifyFinal duplicates the context anyway). A
 * verification duplicates that template (EVP_PKEY_CTX_dup only reads it) and verifies the
 * SHA-256 digest with the copy: the same ECDSA check, on the same bytes. */
#include "verifier/verifier-int.h"
#include "bundle/bundle.h"
#include "quote/quote.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 16384 /* power of two; at most half used */

struct kc_entry {
	uint64_t h;        /* slot hash of pub */
	uint8_t *pub;      /* the TPM2B_PUBLIC bytes */
	size_t pub_len;
	EVP_PKEY *pkey;
	EVP_PKEY_CTX *vctx; /* EC keys: EVP_PKEY_verify_init done; duplicated per verification */
	struct bundle_key *bkey;
	struct quote_public_info info; /* quote_public_parse of the bytes (type, attributes, name) */
};

/* An enrolled EK prepared for MakeCredential (libquote's quote_ek), by its exact
 * TPM2B_PUBLIC: the release of every affirming appraisal is wrapped to it. */
struct kc_ek {
	uint64_t h;
	uint8_t *pub;
	size_t pub_len;
	struct quote_ek *ek;
};

struct verifier_keycache {
	pthread_rwlock_t lock;
	struct kc_entry *slots;
	size_t used;
	struct kc_ek *eks;
	size_t eks_used;
	uint64_t seed; /* random FNV offset: slot collisions cannot be planned from outside */
};

int verifier_keycache_new(struct verifier_keycache **ret)
{
	struct verifier_keycache *kc = calloc(1, sizeof *kc);
	if (!kc || !(kc->slots = calloc(SLOTS, sizeof *kc->slots)) || !(kc->eks = calloc(SLOTS, sizeof *kc->eks))) {
		if (kc)
			free(kc->slots);
		free(kc);
		return -1;
	}
	if (RAND_bytes((unsigned char *)&kc->seed, sizeof kc->seed) != 1)
		kc->seed = 0xcbf29ce484222325ull;
	pthread_rwlock_init(&kc->lock, NULL);
	*ret = kc;
	return 0;
}

void verifier_keycache_free(struct verifier_keycache *kc)
{
	if (!kc)
		return;
	for (size_t i = 0; i < SLOTS; i++) {
		EVP_PKEY_free(kc->slots[i].pkey);
		EVP_PKEY_CTX_free(kc->slots[i].vctx);
		bundle_key_free(kc->slots[i].bkey);
		free(kc->slots[i].pub);
		quote_ek_free(kc->eks[i].ek);
		free(kc->eks[i].pub);
	}
	free(kc->slots);
	free(kc->eks);
	pthread_rwlock_destroy(&kc->lock);
	free(kc);
}

static uint64_t fnv(const struct verifier_keycache *kc, const uint8_t *p, size_t n)
{
	uint64_t h = kc->seed;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static size_t slot_of(uint64_t h) { return (size_t)(h ^ h >> 32) & (SLOTS - 1); }

#define SAME(e, hh, p, n) ((e).h == (hh) && (e).pub_len == (n) && memcmp((e).pub, (p), (n)) == 0)

/* The entry for pub, created on first use if create. NULL if the key is unusable, not cached
 * (!create) or the cache is full (callers then take the slow path). Entries are never modified
 * after insertion. Only keys that passed a check are created (an enrolled AK whose quote
 * signature is being checked, a statement key its AK certified), so that anonymous requests
 * cannot fill the table. */
static const struct kc_entry *lookup(struct verifier_keycache *kc, const uint8_t *pub, size_t len, int create)
{
	uint64_t h;
	size_t i;
	const struct kc_entry *found = NULL;
	struct kc_entry n;
	uint8_t *der = NULL;
	size_t der_len = 0;
	const unsigned char *p;
	struct quote_public_info info;
	struct quote_diag d;

	if (!kc || !pub || !len)
		return NULL;
	h = fnv(kc, pub, len);
	pthread_rwlock_rdlock(&kc->lock);
	for (i = slot_of(h); kc->slots[i].pkey; i = (i + 1) & (SLOTS - 1))
		if (SAME(kc->slots[i], h, pub, len)) {
			found = &kc->slots[i];
			break;
		}
	pthread_rwlock_unlock(&kc->lock);
	if (found || !create)
		return found;

	/* Build outside the lock. */
	memset(&n, 0, sizeof n);
	n.h = h;
	if (quote_public_parse(pub, len, &info, &d) != QUOTE_OK || quote_public_to_der(pub, len, &der, &der_len) != QUOTE_OK)
		return NULL;
	if (!(n.pub = malloc(len))) {
		free(der);
		return NULL;
	}
	memcpy(n.pub, pub, len);
	n.pub_len = len;
	p = der;
	n.pkey = d2i_PUBKEY(NULL, &p, (long)der_len);
	if (info.type == QUOTE_ALG_ECC && bundle_key_load(der, der_len, &n.bkey) != BUNDLE_OK)
		n.bkey = NULL;
	free(der);
	if (!n.pkey) {
		bundle_key_free(n.bkey);
		free(n.pub);
		return NULL;
	}
	if (EVP_PKEY_is_a(n.pkey, "EC") && (!(n.vctx = EVP_PKEY_CTX_new_from_pkey(NULL, n.pkey, NULL)) ||
					     EVP_PKEY_verify_init(n.vctx) != 1)) {
		EVP_PKEY_CTX_free(n.vctx); /* verified through EVP_DigestVerify instead */
		n.vctx = NULL;
	}
	n.info = info;

	pthread_rwlock_wrlock(&kc->lock);
	for (i = slot_of(h); kc->slots[i].pkey; i = (i + 1) & (SLOTS - 1))
		if (SAME(kc->slots[i], h, pub, len)) {
			found = &kc->slots[i]; /* another thread won */
			break;
		}
	if (!found && kc->used < SLOTS / 2) {
		kc->slots[i] = n;
		kc->used++;
		found = &kc->slots[i];
		n.pkey = NULL;
		n.vctx = NULL;
		n.bkey = NULL;
		n.pub = NULL;
	}
	pthread_rwlock_unlock(&kc->lock);
	EVP_PKEY_free(n.pkey);
	EVP_PKEY_CTX_free(n.vctx);
	bundle_key_free(n.bkey);
	free(n.pub);
	return found;
}

/* An ECDSA/SHA-256 TPMT_SIGNATURE over msg by e's key: 1 valid, 0 invalid, -1 not handled here. */
static int ecdsa_verify(const struct kc_entry *e, const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len)
{
	size_t rl, sl;
	const uint8_t *r, *s;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *der = NULL;
	int der_len, rc = 0;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;

	if (sig_len < 8 || sig[0] != 0x00 || sig[1] != 0x18 /* ECDSA */ || sig[2] != 0x00 || sig[3] != 0x0b /* SHA256 */)
		return -1;
	rl = (size_t)sig[4] << 8 | sig[5];
	if (rl > 66 || 6 + rl + 2 > sig_len)
		return 0;
	r = sig + 6;
	sl = (size_t)sig[6 + rl] << 8 | sig[7 + rl];
	if (sl > 66 || 8 + rl + sl != sig_len)
		return 0;
	s = sig + 8 + rl;
	if (!(es = ECDSA_SIG_new()) || !(br = BN_bin2bn(r, (int)rl, NULL)) || !(bs = BN_bin2bn(s, (int)sl, NULL)) ||
	    ECDSA_SIG_set0(es, br, bs) != 1)
		goto out;
	br = bs = NULL;
	if ((der_len = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	if (e->vctx) {
		uint8_t dg[VERIFIER_HASH_LEN];
		if (!(pctx = EVP_PKEY_CTX_dup(e->vctx)) || verifier_sha256(msg, len, dg) != 0)
			goto out;
		rc = EVP_PKEY_verify(pctx, der, (size_t)der_len, dg, sizeof dg) == 1;
		goto out;
	}
	if (!(ctx = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, e->pkey) != 1)
		goto out;
	rc = EVP_DigestVerify(ctx, der, (size_t)der_len, msg, len) == 1;
out:
	EVP_PKEY_CTX_free(pctx);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int verifier_keycache_sig_verify(struct verifier_keycache *kc, const uint8_t *pub, size_t pub_len,
					   const uint8_t *msg, size_t msg_len, const uint8_t *sig, size_t sig_len,
					   struct quote_diag *diag)
{
	const struct kc_entry *e = lookup(kc, pub, pub_len, 1);
	int r = e ? ecdsa_verify(e, msg, msg_len, sig, sig_len) : -1;
	if (r < 0)
		return quote_signature_verify(pub, pub_len, msg, msg_len, sig, sig_len, diag);
	if (r == 0) {
		snprintf(diag->detail, sizeof diag->detail, "ECDSA signature does not verify with the AK");
		return QUOTE_ERR_SIGNATURE;
	}
	return QUOTE_OK;
}

/* quote_certify_verify with the AK's signature checked through the cache. The AK's own role
 * check (quote_check_ak) was done at enrolment. */
int verifier_keycache_certify_verify(struct verifier_keycache *kc, const uint8_t *ak_pub, size_t ak_len,
					       const uint8_t *attest, size_t attest_len, const uint8_t *sig,
					       size_t sig_len, const uint8_t *sk_pub, size_t sk_len,
					       const uint8_t *qualifying, size_t qlen, struct quote_diag *diag)
{
	const struct kc_entry *ak = lookup(kc, ak_pub, ak_len, 1);
	struct quote_attest_info ai;
	struct quote_public_info sk;
	enum quote_err qe;
	int r = ak ? ecdsa_verify(ak, attest, attest_len, sig, sig_len) : -1;

	if (r < 0)
		return quote_certify_verify(ak_pub, ak_len, attest, attest_len, sig, sig_len, sk_pub, sk_len, qualifying,
					    qlen, NULL, diag);
	if (r == 0) {
		snprintf(diag->detail, sizeof diag->detail, "the certification's signature does not verify with the AK");
		return QUOTE_ERR_SIGNATURE;
	}
	if ((qe = quote_attest_parse(attest, attest_len, &ai, diag)) != QUOTE_OK)
		return qe;
	if (ai.type != QUOTE_ST_ATTEST_CERTIFY) {
		snprintf(diag->detail, sizeof diag->detail, "not a TPM2_Certify attestation");
		return QUOTE_ERR_ATTEST_TYPE;
	}
	if (ai.extra_len != qlen || (qlen && CRYPTO_memcmp(ai.extra, qualifying, qlen) != 0)) {
		snprintf(diag->detail, sizeof diag->detail, "the certification is not for this nonce");
		return QUOTE_ERR_NONCE;
	}
	/* The statement key's name and attributes: from the cache when an earlier appraisal
	 * added it (step 11 adds it once this certification has passed), else parsed here. */
	{
		const struct kc_entry *ske = lookup(kc, sk_pub, sk_len, 0);
		if (ske)
			sk = ske->info;
		else if ((qe = quote_public_parse(sk_pub, sk_len, &sk, diag)) != QUOTE_OK)
			return qe;
	}
	if (ai.certified_name_len != sk.name_len || memcmp(ai.certified_name, sk.name, sk.name_len) != 0) {
		snprintf(diag->detail, sizeof diag->detail, "the certification is for another key");
		return QUOTE_ERR_NAME;
	}
	return quote_check_sk(&sk, diag);
}

int verifier_keycache_public_info(struct verifier_keycache *kc, const uint8_t *pub, size_t len,
					    struct quote_public_info *ret, struct quote_diag *diag)
{
	const struct kc_entry *e = lookup(kc, pub, len, 0);
	if (!e)
		return quote_public_parse(pub, len, ret, diag);
	*ret = e->info;
	return QUOTE_OK;
}

/* The statement key as a bundle_key (borrowed from the cache, valid while the service runs),
 * or NULL: then the caller builds one itself. */
const struct bundle_key *verifier_keycache_bundle_key(struct verifier_keycache *kc, const uint8_t *pub, size_t len)
{
	const struct kc_entry *e = lookup(kc, pub, len, 1);
	return e ? e->bkey : NULL;
}

/* The host's EK prepared for MakeCredential (borrowed from the cache, valid while the service
 * runs), or NULL (unusable EK or cache full): then the caller uses quote_make_credential. The
 * EK bytes come from the enrolment record, checked when the host enrolled. */
const struct quote_ek *verifier_keycache_ek(struct verifier_keycache *kc, const uint8_t *ek_pub, size_t len)
{
	uint64_t h;
	size_t i;
	struct quote_ek *found = NULL, *n = NULL;
	struct quote_diag d;
	uint8_t *copy = NULL;

	if (!kc || !ek_pub || !len)
		return NULL;
	h = fnv(kc, ek_pub, len);
	pthread_rwlock_rdlock(&kc->lock);
	for (i = slot_of(h); kc->eks[i].ek; i = (i + 1) & (SLOTS - 1))
		if (SAME(kc->eks[i], h, ek_pub, len)) {
			found = kc->eks[i].ek;
			break;
		}
	pthread_rwlock_unlock(&kc->lock);
	if (found)
		return found;
	if (quote_ek_new(ek_pub, len, &n, &d) != QUOTE_OK) /* outside the lock */
		return NULL;
	if (!(copy = malloc(len))) {
		quote_ek_free(n);
		return NULL;
	}
	memcpy(copy, ek_pub, len);
	pthread_rwlock_wrlock(&kc->lock);
	for (i = slot_of(h); kc->eks[i].ek; i = (i + 1) & (SLOTS - 1))
		if (SAME(kc->eks[i], h, ek_pub, len)) {
			found = kc->eks[i].ek; /* another thread won */
			break;
		}
	if (!found && kc->eks_used < SLOTS / 2) {
		kc->eks[i].h = h;
		kc->eks[i].pub = copy;
		kc->eks[i].pub_len = len;
		kc->eks[i].ek = found = n;
		kc->eks_used++;
		n = NULL;
		copy = NULL;
	}
	pthread_rwlock_unlock(&kc->lock);
	quote_ek_free(n);
	free(copy);
	return found;
}
