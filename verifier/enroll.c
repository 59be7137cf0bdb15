/* Enrolment (POST /v1/enroll, /v1/enroll/finish), challenges (POST /v1/challenge) and the
 * operator's host view (GET /v1/hosts/{id}).
 *
 * Enrolment proves that the AK lives in the same TPM as an endorsed EK: the verifier wraps a
 * random secret with TPM2 MakeCredential to (EK, AK name); only that TPM can recover it with
 * ActivateCredential, and /v1/enroll/finish compares it (constant time). */
#include "verifier/verifier-int.h"
#include "quote/quote.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_TTL 300

/* A base64 field of req: 0 ok (or absent and optional: *ret NULL), -1 bad. */
static int get_b64(json_t *req, const char *name, size_t max, uint8_t **ret, size_t *len)
{
	json_t *v = json_object_get(req, name);
	*ret = NULL;
	*len = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	return verifier_b64_decode(json_string_value(v), max, ret, len);
}

int verifier_host_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > VERIFIER_MAX_HOST_ID)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.' || c == ':' || c == '@'))
			return 0;
	}
	return 1;
}

static const char *get_host_id(json_t *req)
{
	const char *h = json_string_value(json_object_get(req, "host_id"));
	return h && verifier_host_id_valid(h) ? h : NULL;
}

/* SHA-256 of the SubjectPublicKeyInfo DER of a TPM2B_PUBLIC. */
static int spki_of(const uint8_t *pub, size_t len, uint8_t **der, size_t *der_len)
{
	return quote_public_to_der(pub, len, der, der_len) == QUOTE_OK ? 0 : -1;
}

json_t *verifier_enroll(struct verifier_svc *svc, json_t *req, int *status)
{
	const char *host_id = get_host_id(req);
	uint8_t *ek_cert = NULL, *ek_pub = NULL, *ak_pub = NULL, *ek_spki = NULL, *cert_spki = NULL;
	size_t ek_cert_len = 0, ek_pub_len = 0, ak_pub_len = 0, ek_spki_len = 0, cert_spki_len = 0;
	uint8_t *id_obj = NULL, *enc_secret = NULL, *credfile = NULL;
	size_t id_len = 0, enc_len = 0, credfile_len = 0;
	struct quote_public_info ek_info, ak_info;
	struct quote_diag diag;
	struct verifier_host existing, h;
	struct verifier_policy *pol = verifier_policy_get(&svc->pol);
	uint8_t secret[32], secret_hash[VERIFIER_HASH_LEN], idb[16];
	char id[33], why[512] = "";
	char *b64 = NULL;
	json_t *ans = NULL;
	enum quote_err qe;
	enum verifier_err ve;
	unsigned mdlen;

	memset(&existing, 0, sizeof existing);
	memset(&h, 0, sizeof h);
	memset(&diag, 0, sizeof diag);
	if (!host_id) {
		ans = verifier_problem(400, status, "Malformed request", "host_id: required, [A-Za-z0-9._:@-]{1,128}");
		goto out;
	}
	if (get_b64(req, "ek_cert", QUOTE_CERT_MAX, &ek_cert, &ek_cert_len) ||
	    get_b64(req, "ek_public", QUOTE_PUBLIC_MAX, &ek_pub, &ek_pub_len) || !ek_pub ||
	    get_b64(req, "ak_public", QUOTE_PUBLIC_MAX, &ak_pub, &ak_pub_len) || !ak_pub) {
		ans = verifier_problem(400, status, "Malformed request",
				       "ek_public and ak_public (base64 TPM2B_PUBLIC) are required; ek_cert (base64 DER) "
				       "is optional; each within its size limit");
		goto out;
	}
	if ((qe = quote_public_parse(ek_pub, ek_pub_len, &ek_info, &diag)) != QUOTE_OK) {
		ans = verifier_problem(400, status, "ek.public.malformed", "%s: %s", quote_strerror(qe), diag.detail);
		goto out;
	}
	if ((qe = quote_public_parse(ak_pub, ak_pub_len, &ak_info, &diag)) != QUOTE_OK ||
	    (qe = quote_check_ak(&ak_info, &diag)) != QUOTE_OK) {
		ans = verifier_problem(400, status, "ak.attributes", "the AK is not a restricted TPM signing key: %s (%s)",
				       quote_strerror(qe), diag.detail);
		goto out;
	}
	if (!verifier_policy_group(pol, host_id)) {
		ans = verifier_problem(403, status, "host.group.none", "no policy group matches host id %s", host_id);
		goto out;
	}
	if (spki_of(ek_pub, ek_pub_len, &ek_spki, &ek_spki_len)) {
		ans = verifier_problem(400, status, "ek.public.malformed", "EK public key unusable");
		goto out;
	}
	/* Endorsement: a certificate chaining to a trusted TPM CA, or a pre-registered EK key. */
	if (ek_cert) {
		if (!svc->ekca) {
			ans = verifier_problem(403, status, "ek.cert.untrusted", "no EK CA directory configured (--ek-ca)");
			goto out;
		}
		if (verifier_ekca_verify(svc->ekca, ek_cert, ek_cert_len, &cert_spki, &cert_spki_len, why, sizeof why) !=
		    VERIFIER_OK) {
			ans = verifier_problem(403, status, "ek.cert.untrusted", "%s", why);
			goto out;
		}
		if (cert_spki_len != ek_spki_len || CRYPTO_memcmp(cert_spki, ek_spki, ek_spki_len) != 0) {
			ans = verifier_problem(403, status, "ek.cert.mismatch",
					       "the EK certificate is for another key than ek_public");
			goto out;
		}
	} else {
		uint8_t hsh[VERIFIER_HASH_LEN];
		char hex[2 * VERIFIER_HASH_LEN + 1];
		EVP_Digest(ek_spki, ek_spki_len, hsh, &mdlen, EVP_sha256(), NULL);
		if (!verifier_policy_ek_pub_allowed(pol, hsh)) {
			verifier_hex(hsh, sizeof hsh, hex);
			ans = verifier_problem(403, status, "ek.unendorsed",
					       "no EK certificate and EK key sha256:%s is not pre-registered in the policy",
					       hex);
			goto out;
		}
	}
	/* A host id is bound to its EK unless the operator allows re-enrolment. */
	ve = verifier_store_host_get(svc->store, host_id, &existing);
	if (ve == VERIFIER_OK) {
		uint8_t *old_spki = NULL;
		size_t old_len = 0;
		int same = spki_of(existing.ek_pub, existing.ek_pub_len, &old_spki, &old_len) == 0 &&
			   old_len == ek_spki_len && CRYPTO_memcmp(old_spki, ek_spki, old_len) == 0;
		free(old_spki);
		if (!same && !verifier_policy_reenroll_allowed(pol, host_id)) {
			ans = verifier_problem(409, status, "enroll.ek.mismatch",
					       "host %s is enrolled with another EK; re-enrolment needs operator approval "
					       "(policy enrollment.allow_reenroll)",
					       host_id);
			goto out;
		}
	} else if (ve != VERIFIER_ERR_NOTFOUND) {
		ans = verifier_problem(500, status, "Internal Server Error", "database: %s",
				       verifier_store_last_cause(svc->store));
		goto out;
	}
	/* One TPM, one host: an AK enrolled under another host id moves only with operator approval
	 * (the old binding is dropped when the enrolment completes). */
	verifier_host_clear(&existing);
	ve = verifier_store_host_by_ak(svc->store, ak_info.name, ak_info.name_len, &existing);
	if (ve == VERIFIER_OK && strcmp(existing.host_id, host_id) != 0 && !verifier_policy_reenroll_allowed(pol, host_id)) {
		ans = verifier_problem(409, status, "enroll.ak.taken",
				       "this TPM's AK is enrolled as host %s; moving it needs operator approval "
				       "(policy enrollment.allow_reenroll)",
				       existing.host_id);
		goto out;
	}
	/* The challenge. */
	if (RAND_bytes(secret, sizeof secret) != 1 || RAND_bytes(idb, sizeof idb) != 1) {
		ans = verifier_problem(500, status, "Internal Server Error", "no randomness");
		goto out;
	}
	qe = quote_make_credential(ek_pub, ek_pub_len, ak_info.name, ak_info.name_len, secret, sizeof secret, &id_obj,
				   &id_len, &enc_secret, &enc_len, &diag);
	if (qe == QUOTE_OK)
		qe = quote_credential_file_encode(id_obj, id_len, enc_secret, enc_len, &credfile, &credfile_len);
	if (qe != QUOTE_OK) {
		ans = verifier_problem(400, status, "ek.public.unsupported", "MakeCredential: %s (%s)", quote_strerror(qe),
				       diag.detail);
		goto out;
	}
	EVP_Digest(secret, sizeof secret, secret_hash, &mdlen, EVP_sha256(), NULL);
	verifier_hex(idb, sizeof idb, id);
	snprintf(h.host_id, sizeof h.host_id, "%s", host_id);
	h.ek_pub = ek_pub;
	h.ek_pub_len = ek_pub_len;
	h.ek_cert = ek_cert;
	h.ek_cert_len = ek_cert_len;
	h.ak_pub = ak_pub;
	h.ak_pub_len = ak_pub_len;
	h.ak_name = ak_info.name;
	h.ak_name_len = ak_info.name_len;
	if (verifier_store_pending_put(svc->store, id, &h, secret_hash, verifier_now() + PENDING_TTL) != VERIFIER_OK) {
		ans = verifier_problem(500, status, "Internal Server Error", "database: %s",
				       verifier_store_last_cause(svc->store));
		goto out;
	}
	b64 = verifier_b64_encode(credfile, credfile_len);
	*status = 200;
	ans = json_pack("{s:s, s:s, s:I}", "enroll_id", id, "credential", b64 ? b64 : "", "expires",
			(json_int_t)(verifier_now() + PENDING_TTL));
	verifier_svc_log(svc, "enroll %s: challenge issued (%s EK%s)", host_id,
			 ek_info.type == QUOTE_ALG_RSA ? "RSA" : "ECC", ek_cert ? ", certificate valid" : ", pre-registered");
out:
	OPENSSL_cleanse(secret, sizeof secret);
	free(b64);
	free(ek_cert);
	free(ek_pub);
	free(ak_pub);
	free(ek_spki);
	free(cert_spki);
	free(id_obj);
	free(enc_secret);
	free(credfile);
	verifier_host_clear(&existing);
	verifier_policy_put(&svc->pol, pol);
	return ans;
}

json_t *verifier_enroll_finish(struct verifier_svc *svc, json_t *req, int *status)
{
	const char *id = json_string_value(json_object_get(req, "enroll_id"));
	uint8_t *secret = NULL, want[VERIFIER_HASH_LEN], got[VERIFIER_HASH_LEN];
	size_t secret_len = 0;
	struct verifier_host h;
	int64_t expires = 0;
	json_t *ans = NULL;
	enum verifier_err ve;
	unsigned mdlen;

	memset(&h, 0, sizeof h);
	if (!id || strlen(id) != 32 || get_b64(req, "secret", 64, &secret, &secret_len) || !secret) {
		ans = verifier_problem(400, status, "Malformed request", "enroll_id and secret (base64) are required");
		goto out;
	}
	ve = verifier_store_pending_take(svc->store, id, &h, want, &expires);
	if (ve == VERIFIER_ERR_NOTFOUND) {
		ans = verifier_problem(404, status, "enroll.unknown", "no pending enrolment %s (finished or expired)", id);
		goto out;
	}
	if (ve != VERIFIER_OK) {
		ans = verifier_problem(500, status, "Internal Server Error", "database: %s",
				       verifier_store_last_cause(svc->store));
		goto out;
	}
	if (verifier_now() > expires) {
		ans = verifier_problem(410, status, "enroll.expired", "the enrolment challenge expired; enrol again");
		goto out;
	}
	EVP_Digest(secret, secret_len, got, &mdlen, EVP_sha256(), NULL);
	if (CRYPTO_memcmp(want, got, sizeof want) != 0) {
		ans = verifier_problem(403, status, "enroll.secret.mismatch",
				       "the activated secret is wrong: the AK and the EK are not in the same TPM");
		verifier_svc_log(svc, "enroll %s: rejected, wrong activated secret", h.host_id);
		goto out;
	}
	h.enrolled_at = verifier_now();
	if (verifier_store_host_put(svc->store, &h) != VERIFIER_OK) {
		ans = verifier_problem(500, status, "Internal Server Error", "database: %s",
				       verifier_store_last_cause(svc->store));
		goto out;
	}
	pthread_mutex_lock(&svc->metrics.mu);
	svc->metrics.enrolments++;
	pthread_mutex_unlock(&svc->metrics.mu);
	verifier_svc_log(svc, "enroll %s: enrolled", h.host_id);
	*status = 200;
	ans = json_pack("{s:s, s:b}", "host_id", h.host_id, "enrolled", 1);
out:
	if (secret) {
		OPENSSL_cleanse(secret, secret_len);
		free(secret);
	}
	verifier_host_clear(&h);
	return ans;
}

json_t *verifier_challenge(struct verifier_svc *svc, json_t *req, int *status)
{
	const char *host_id = get_host_id(req);
	struct verifier_policy *pol = verifier_policy_get(&svc->pol);
	const struct verifier_group *g;
	struct verifier_host h;
	uint8_t nonce[VERIFIER_NONCE_LEN];
	char hex[2 * VERIFIER_NONCE_LEN + 1], sel[160];
	size_t off;
	int64_t exp;
	json_t *ans = NULL;
	enum verifier_err ve;

	memset(&h, 0, sizeof h);
	if (!host_id) {
		ans = verifier_problem(400, status, "Malformed request", "host_id: required");
		goto out;
	}
	ve = verifier_store_host_get(svc->store, host_id, &h);
	if (ve == VERIFIER_ERR_NOTFOUND) {
		ans = verifier_problem(404, status, "host.unknown", "host %s is not enrolled", host_id);
		goto out;
	}
	if (ve != VERIFIER_OK) {
		ans = verifier_problem(500, status, "Internal Server Error", "database: %s",
				       verifier_store_last_cause(svc->store));
		goto out;
	}
	if (!(g = verifier_policy_group(pol, host_id))) {
		ans = verifier_problem(403, status, "host.group.none", "no policy group matches host id %s", host_id);
		goto out;
	}
	if (RAND_bytes(nonce, sizeof nonce) != 1) {
		ans = verifier_problem(500, status, "Internal Server Error", "no randomness");
		goto out;
	}
	exp = verifier_now() + pol->nonce_ttl;
	if (verifier_store_nonce_put(svc->store, nonce, sizeof nonce, host_id, exp) != VERIFIER_OK) {
		ans = verifier_problem(500, status, "Internal Server Error", "database: %s",
				       verifier_store_last_cause(svc->store));
		goto out;
	}
	off = (size_t)snprintf(sel, sizeof sel, "sha256:");
	for (unsigned i = 0; i < VERIFIER_MAX_PCR; i++)
		if (g->pcr_mask & (1u << i))
			off += (size_t)snprintf(sel + off, sizeof sel - off, "%s%u", sel[off - 1] == ':' ? "" : ",", i);
	verifier_hex(nonce, sizeof nonce, hex);
	pthread_mutex_lock(&svc->metrics.mu);
	svc->metrics.challenges++;
	pthread_mutex_unlock(&svc->metrics.mu);
	*status = 200;
	ans = json_pack("{s:s, s:I, s:s, s:s}", "nonce", hex, "expires", (json_int_t)exp, "pcrs", sel, "group",
			g->name);
out:
	verifier_host_clear(&h);
	verifier_policy_put(&svc->pol, pol);
	return ans;
}

json_t *verifier_host_info(struct verifier_svc *svc, const char *host_id, int *status)
{
	struct verifier_host h;
	struct verifier_policy *pol = NULL;
	const struct verifier_group *g;
	json_t *ans = NULL, *reasons = NULL;
	enum verifier_err ve;

	memset(&h, 0, sizeof h);
	if (!verifier_host_id_valid(host_id))
		return verifier_problem(400, status, "Malformed request", "bad host id");
	ve = verifier_store_host_get(svc->store, host_id, &h);
	if (ve == VERIFIER_ERR_NOTFOUND)
		return verifier_problem(404, status, "host.unknown", "host %s is not enrolled", host_id);
	if (ve != VERIFIER_OK)
		return verifier_problem(500, status, "Internal Server Error", "database: %s",
					verifier_store_last_cause(svc->store));
	pol = verifier_policy_get(&svc->pol);
	g = verifier_policy_group(pol, host_id);
	if (h.last_reasons)
		reasons = json_loads(h.last_reasons, 0, NULL);
	*status = 200;
	ans = json_pack("{s:s, s:s?, s:I, s:o, s:o, s:{s:s?, s:I, s:o}}", "host_id", h.host_id, "group",
			g ? g->name : NULL, "enrolled_at", (json_int_t)h.enrolled_at, "ak_name",
			verifier_hexstr(h.ak_name, h.ak_name_len), "ek_certificate", json_boolean(h.ek_cert != NULL),
			"last_verdict", "status", h.last_status[0] ? h.last_status : NULL, "at", (json_int_t)h.last_at,
			"reasons", reasons ? reasons : json_array());
	verifier_policy_put(&svc->pol, pol);
	verifier_host_clear(&h);
	return ans;
}
