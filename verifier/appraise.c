/* POST /v1/attest: the appraisal pipeline. Steps run in this order and stop at the first
 * failure, which becomes one typed reason {type, detail} in a contraindicated verdict:
 *
 *   1 ak          the AK in the evidence is enrolled, for this host     ak.unknown, ak.host.mismatch
 *   2 quote.sig   the quote's signature verifies with that AK           quote.signature
 *   3 quote.form  TPM_GENERATED magic, type quote                        quote.magic, quote.type
 *   4 pcr.sel     the quoted selection is the group's                   pcr.selection
 *   5 pcr.digest  the PCR values hash to the quoted digest              pcr.digest
 *   6 nonce       known, this host's, unused, unexpired; = extraData    nonce.unknown, nonce.replayed,
 *                                                                       nonce.host, nonce.expired, nonce.mismatch
 *   7 tcg log     TCG event log parses, replays, event types legal      eventlog.malformed, pcr.mismatch,
 *   8 sluice log  sluice log parses and replays onto the quoted PCRs    event.type, slog.sealed
 *   9 reference   accepted PCR values / accepted event digests          pcr.value.unknown, event.unknown
 *  10 rootfs      the measured rootfs digest is accepted               rootfs.unmeasured, rootfs.digest.unknown
 *  11 statement   signed by the statement key the AK certified          statement.key.uncertified,
 *                                                                       statement.signature
 *  12 envelope    the statement's hash envelope is this evidence        statement.evidence.mismatch
 *  13 receipt     valid under a trusted transparency service key        receipt.untrusted, receipt.invalid
 *
 * A failure in steps 1-2 (before the quote is shown to be signed by the AK enrolled for this
 * host) is answered with a 403 problem whose title is the typed reason and whose detail is the
 * reason's detail as JSON: anyone can send such evidence, so it gets no signed verdict, no
 * transparency registration and no row in the store (and the host's last status is kept).
 * From step 2's signature check on, every verdict (EAR, signed by the verifier) is registered
 * with the transparency service and returned with its receipt. An affirming verdict carries the group's release payload: a fresh
 * 32-byte key wrapped with MakeCredential to the enrolled EK + AK name, and the payload
 * encrypted with it (AES-256-GCM). */
#include "verifier/verifier-int.h"
#include "bundle/bundle.h"
#include "quote/quote.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STATEMENT BUNDLE_MAX_COSE
#define MAX_RECEIPT (64u << 10)
#define RELEASE_MAGIC "SLR1"
#define RELEASE_AAD "sluice-release-v1"

struct appraisal {
	struct verifier_svc *svc;
	struct verifier_policy *pol;
	const struct verifier_group *g;
	const char *host_id;
	json_t *reason;    /* the failure, or NULL */
	int tv_index;      /* trustworthiness claim the failure concerns */
	uint8_t *ev_bytes, *stmt, *receipt;
	size_t ev_len, stmt_len, receipt_len;
	struct bundle_evidence *ev;
	struct verifier_host host;
	int host_loaded;
	int authentic;     /* the quote verified under the AK enrolled for host_id */
	struct quote_attest_info qi;
	struct quote_pcr_values pcrs;
	struct quote_eventlog *tcg;
	struct quote_slog *slog;
	uint8_t stmt_hash[32];
	uint8_t rootfs[32];
};

static int fail(struct appraisal *a, int tv, json_t *reason)
{
	a->reason = reason;
	a->tv_index = tv;
	return -1;
}

static json_t *hexj(const uint8_t *b, size_t n)
{
	return verifier_hexstr(b, n);
}

/* 1: the AK is enrolled, and for the host the request names. */
static int step_ak(struct appraisal *a)
{
	struct quote_public_info info;
	struct quote_diag d;
	enum verifier_err ve;

	memset(&d, 0, sizeof d);
	if (verifier_keycache_public_info(a->svc->keys, a->ev->ak_public.ptr, a->ev->ak_public.len, &info, &d) != QUOTE_OK)
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("ak.unknown", "{s:s}", "why", d.detail[0] ? d.detail : "AK public malformed"));
	ve = verifier_store_host_keys_by_ak(a->svc->store, info.name, info.name_len, &a->host);
	if (ve == VERIFIER_ERR_NOTFOUND)
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("ak.unknown", "{s:o}", "ak_name", hexj(info.name, info.name_len)));
	if (ve != VERIFIER_OK)
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("internal", "{s:s}", "why", verifier_store_last_cause(a->svc->store)));
	a->host_loaded = 1;
	if (strcmp(a->host.host_id, a->host_id) != 0 || strcmp(a->ev->host_id, a->host_id) != 0)
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("ak.host.mismatch", "{s:s, s:s, s:s}", "claimed", a->host_id, "evidence",
					    a->ev->host_id, "enrolled", a->host.host_id));
	if (a->host.ak_pub_len != a->ev->ak_public.len ||
	    memcmp(a->host.ak_pub, a->ev->ak_public.ptr, a->host.ak_pub_len) != 0)
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("ak.unknown", "{s:s}", "why", "AK public differs from the enrolled one"));
	return 0;
}

/* 2-5: signature, form, selection, digest. */
static int step_quote(struct appraisal *a)
{
	struct quote_diag d;
	enum quote_err qe;
	struct quote_pcr_selection want = {.n = 1, .bank = {{QUOTE_ALG_SHA256, a->g->pcr_mask}}};
	struct quote_digest dg;

	memset(&d, 0, sizeof d);
	qe = (enum quote_err)verifier_keycache_sig_verify(a->svc->keys, a->host.ak_pub, a->host.ak_pub_len,
							  a->ev->quote.ptr, a->ev->quote.len, a->ev->quote_sig.ptr,
							  a->ev->quote_sig.len, &d);
	if (qe != QUOTE_OK)
		return fail(a, BUNDLE_TV_HARDWARE,
			    verifier_reason("quote.signature", "{s:s, s:s}", "error", quote_strerror(qe), "why", d.detail));
	a->authentic = 1;
	qe = quote_attest_parse(a->ev->quote.ptr, a->ev->quote.len, &a->qi, &d);
	if (qe == QUOTE_ERR_MAGIC)
		return fail(a, BUNDLE_TV_HARDWARE, verifier_reason("quote.magic", "{s:s}", "why", d.detail));
	if (qe != QUOTE_OK || a->qi.type != QUOTE_ST_ATTEST_QUOTE)
		return fail(a, BUNDLE_TV_HARDWARE,
			    verifier_reason("quote.type", "{s:s, s:s}", "error", quote_strerror(qe), "why", d.detail));
	/* 4: the quoted selection must be exactly the group's (sha256 bank). */
	if (a->qi.pcr_sel.n != 1 || a->qi.pcr_sel.bank[0].alg != QUOTE_ALG_SHA256 ||
	    a->qi.pcr_sel.bank[0].mask != a->g->pcr_mask) {
		char wbuf[160] = "", gbuf[160] = "";
		quote_pcr_selection_format(&want, wbuf, sizeof wbuf);
		quote_pcr_selection_format(&a->qi.pcr_sel, gbuf, sizeof gbuf);
		return fail(a, BUNDLE_TV_CONFIGURATION,
			    verifier_reason("pcr.selection", "{s:s, s:s}", "want", wbuf, "got", gbuf));
	}
	/* The values the evidence carries, for exactly that selection. */
	quote_pcr_values_init(&a->pcrs, &a->qi.pcr_sel);
	{
		uint32_t seen = 0;
		for (size_t i = 0; i < a->ev->n_pcrs; i++) {
			const struct bundle_pcr *p = &a->ev->pcrs[i];
			if (p->alg != QUOTE_ALG_SHA256 || p->index >= QUOTE_PCR_COUNT ||
			    !(a->g->pcr_mask & (1u << p->index)) || p->value.len != 32 || (seen & (1u << p->index)))
				return fail(a, BUNDLE_TV_CONFIGURATION,
					    verifier_reason("pcr.selection", "{s:s, s:i, s:i}", "why",
							    "evidence PCR value outside the quoted selection or repeated",
							    "alg", p->alg, "pcr", p->index));
			quote_pcr_value_set(&a->pcrs, p->alg, p->index, p->value.ptr, p->value.len);
			seen |= 1u << p->index;
		}
		if (seen != a->g->pcr_mask)
			return fail(a, BUNDLE_TV_CONFIGURATION,
				    verifier_reason("pcr.selection", "{s:s}", "why",
						    "evidence lacks values for some quoted PCRs"));
	}
	/* 5: the digest. */
	qe = quote_pcr_digest(&a->pcrs, &a->qi.pcr_sel, QUOTE_ALG_SHA256, &dg);
	if (qe != QUOTE_OK || dg.len != a->qi.pcr_digest.len ||
	    CRYPTO_memcmp(dg.bytes, a->qi.pcr_digest.bytes, dg.len) != 0)
		return fail(a, BUNDLE_TV_CONFIGURATION,
			    verifier_reason("pcr.digest", "{s:o, s:o}", "want", hexj(a->qi.pcr_digest.bytes, a->qi.pcr_digest.len),
					    "got", hexj(dg.bytes, dg.len)));
	return 0;
}

/* 6: the nonce. */
static int step_nonce(struct appraisal *a)
{
	enum nonce_state st = NONCE_UNKNOWN;
	const struct bundle_bytes *n = &a->ev->nonce;

	if (n->len != a->qi.extra_len || n->len == 0 || CRYPTO_memcmp(n->ptr, a->qi.extra, n->len) != 0)
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("nonce.mismatch", "{s:o, s:o}", "evidence", hexj(n->ptr, n->len), "quoted",
					    hexj(a->qi.extra, a->qi.extra_len)));
	if (verifier_store_nonce_consume(a->svc->store, n->ptr, n->len, a->host_id, verifier_now(), &st) != VERIFIER_OK)
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("internal", "{s:s}", "why", verifier_store_last_cause(a->svc->store)));
	switch (st) {
	case NONCE_FRESH:
		return 0;
	case NONCE_UNKNOWN:
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("nonce.unknown", "{s:o}", "nonce", hexj(n->ptr, n->len)));
	case NONCE_REPLAYED:
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("nonce.replayed", "{s:o}", "nonce", hexj(n->ptr, n->len)));
	case NONCE_OTHER_HOST:
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("nonce.host", "{s:o}", "nonce", hexj(n->ptr, n->len)));
	case NONCE_EXPIRED:
		return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
			    verifier_reason("nonce.expired", "{s:o}", "nonce", hexj(n->ptr, n->len)));
	}
	return fail(a, BUNDLE_TV_INSTANCE_IDENTITY, verifier_reason("internal", NULL));
}

static json_t *diag_reason(const char *type, const struct quote_diag *d)
{
	json_t *r = verifier_reason(type, "{s:s}", "why", d->detail);
	json_t *det = json_object_get(r, "detail");
	if (d->pcr >= 0)
		json_object_set_new(det, "pcr", json_integer(d->pcr));
	if (d->event >= 0)
		json_object_set_new(det, "event", json_integer(d->event));
	if (d->digest_len) {
		json_object_set_new(det, "want", hexj(d->want, d->digest_len));
		json_object_set_new(det, "got", hexj(d->got, d->digest_len));
	}
	return r;
}

static void diag_init(struct quote_diag *d)
{
	memset(d, 0, sizeof *d);
	d->pcr = -1;
	d->event = -1;
}

/* 7-8: the logs replay onto the quoted PCRs; event types are legal; the phase is not sealed. */
static int step_logs(struct appraisal *a)
{
	struct quote_diag d;
	enum quote_err qe;

	diag_init(&d);
	if (a->ev->fw_eventlog.len) {
		qe = quote_eventlog_parse(a->ev->fw_eventlog.ptr, a->ev->fw_eventlog.len, &a->tcg, &d);
		if (qe != QUOTE_OK)
			return fail(a, BUNDLE_TV_EXECUTABLES, diag_reason("eventlog.malformed", &d));
	}
	diag_init(&d);
	qe = quote_slog_parse(a->ev->sluice_eventlog.ptr, a->ev->sluice_eventlog.len, &a->slog, &d);
	if (qe != QUOTE_OK)
		return fail(a, BUNDLE_TV_FILE_SYSTEM, diag_reason("slog.malformed", &d));
	diag_init(&d);
	qe = quote_replay_check(a->tcg, a->slog, &a->pcrs, &d);
	if (qe == QUOTE_ERR_REPLAY)
		return fail(a, BUNDLE_TV_EXECUTABLES, diag_reason("pcr.mismatch", &d));
	if (qe == QUOTE_ERR_EVENT_TYPE)
		return fail(a, BUNDLE_TV_EXECUTABLES, diag_reason("event.type", &d));
	if (qe != QUOTE_OK)
		return fail(a, BUNDLE_TV_EXECUTABLES, diag_reason("eventlog.malformed", &d));
	if (a->tcg) {
		diag_init(&d);
		qe = quote_eventlog_check_types(a->tcg, a->g->pcr_mask, &d);
		if (qe != QUOTE_OK)
			return fail(a, BUNDLE_TV_EXECUTABLES, diag_reason("event.type", &d));
	}
	for (size_t i = 0; i < quote_slog_count(a->slog); i++) {
		const struct quote_slog_rec *r = quote_slog_get(a->slog, i);
		if (r->type == QUOTE_SLOG_RELEASED)
			return fail(a, BUNDLE_TV_INSTANCE_IDENTITY,
				    verifier_reason("slog.sealed", "{s:i, s:i}", "event", (int)i, "pcr", r->pcr));
	}
	return 0;
}

/* 9: reference values of the group. */
static int step_reference(struct appraisal *a)
{
	for (unsigned p = 0; p < VERIFIER_MAX_PCR; p++) {
		const uint8_t *v;
		if (!(a->g->pcr_mask & (1u << p)) || !a->g->pcr_values[p].n)
			continue;
		v = quote_pcr_value(&a->pcrs, QUOTE_ALG_SHA256, p);
		if (!v || !verifier_group_pcr_value_ok(a->g, p, v, 32))
			return fail(a, BUNDLE_TV_CONFIGURATION,
				    verifier_reason("pcr.value.unknown", "{s:i, s:o}", "pcr", p, "got",
						    v ? hexj(v, 32) : json_null()));
	}
	if (a->g->events_set && a->tcg) {
		for (size_t i = 0; i < quote_eventlog_count(a->tcg); i++) {
			const struct quote_tcg_event *e = quote_eventlog_get(a->tcg, i);
			const struct quote_digest *dg = NULL;
			if (e->type == 0x00000003 /* EV_NO_ACTION */ || !(a->g->pcr_mask & (1u << e->pcr)))
				continue;
			for (size_t j = 0; j < e->n_digests; j++)
				if (e->digests[j].alg == QUOTE_ALG_SHA256)
					dg = &e->digests[j];
			if (!dg || dg->len != 32 || !verifier_group_event_ok(a->g, dg->bytes))
				return fail(a, BUNDLE_TV_EXECUTABLES,
					    verifier_reason("event.unknown", "{s:i, s:i, s:s, s:o}", "event", (int)i, "pcr",
							    e->pcr, "type", quote_event_type_name(e->type), "digest",
							    dg ? hexj(dg->bytes, dg->len) : json_null()));
		}
	}
	return 0;
}

/* 10: the rootfs digest the evidence claims is the one measured into a quoted PCR (the last
 * rootfs record of the sluice log), and the group accepts it. */
static int step_rootfs(struct appraisal *a)
{
	const struct quote_slog_rec *last = NULL;
	for (size_t i = 0; i < quote_slog_count(a->slog); i++) {
		const struct quote_slog_rec *r = quote_slog_get(a->slog, i);
		if (r->type == QUOTE_SLOG_ROOTFS && (a->g->pcr_mask & (1u << r->pcr)))
			last = r;
	}
	if (!last || last->content_len != 32)
		return fail(a, BUNDLE_TV_FILE_SYSTEM,
			    verifier_reason("rootfs.unmeasured", "{s:s}", "why",
					    "no rootfs record on a quoted PCR in the sluice event log"));
	if (a->ev->rootfs_digest.len != 32 || CRYPTO_memcmp(a->ev->rootfs_digest.ptr, last->content, 32) != 0)
		return fail(a, BUNDLE_TV_FILE_SYSTEM,
			    verifier_reason("rootfs.unmeasured", "{s:s, s:o, s:o}", "why",
					    "the evidence's rootfs digest is not the measured one", "measured",
					    hexj(last->content, 32), "claimed",
					    hexj(a->ev->rootfs_digest.ptr, a->ev->rootfs_digest.len)));
	memcpy(a->rootfs, last->content, 32);
	if (!verifier_group_rootfs_ok(a->g, a->rootfs)) {
		char hex[65], buf[80];
		verifier_hex(a->rootfs, 32, hex);
		snprintf(buf, sizeof buf, "sha256:%s", hex);
		return fail(a, BUNDLE_TV_FILE_SYSTEM,
			    verifier_reason("rootfs.digest.unknown", "{s:s, s:s}", "digest", buf, "group", a->g->name));
	}
	return 0;
}

/* 11-12: the statement. */
static int step_statement(struct appraisal *a)
{
	struct quote_diag d;
	enum quote_err qe;
	enum bundle_err be;
	uint8_t *der = NULL;
	size_t der_len = 0;
	struct bundle_key *sk = NULL;
	const struct bundle_key *csk;
	struct bundle_cose c;
	int rc = -1;

	diag_init(&d);
	qe = (enum quote_err)verifier_keycache_certify_verify(
		a->svc->keys, a->host.ak_pub, a->host.ak_pub_len, a->ev->stmt_key_certify.ptr, a->ev->stmt_key_certify.len,
		a->ev->stmt_key_certify_sig.ptr, a->ev->stmt_key_certify_sig.len, a->ev->stmt_key_public.ptr,
		a->ev->stmt_key_public.len, a->ev->nonce.ptr, a->ev->nonce.len, &d);
	if (qe != QUOTE_OK)
		return fail(a, BUNDLE_TV_SOURCED_DATA,
			    verifier_reason("statement.key.uncertified", "{s:s, s:s}", "error", quote_strerror(qe), "why",
					    d.detail));
	csk = verifier_keycache_bundle_key(a->svc->keys, a->ev->stmt_key_public.ptr, a->ev->stmt_key_public.len);
	if (!csk && (quote_public_to_der(a->ev->stmt_key_public.ptr, a->ev->stmt_key_public.len, &der, &der_len) !=
			     QUOTE_OK ||
		     bundle_key_load(der, der_len, &sk) != BUNDLE_OK)) {
		fail(a, BUNDLE_TV_SOURCED_DATA,
		     verifier_reason("statement.key.uncertified", "{s:s}", "why", "statement key unusable"));
		goto out;
	}
	be = bundle_statement_check(a->stmt, a->stmt_len, &c);
	if (be == BUNDLE_OK)
		be = bundle_cose_verify(a->stmt, a->stmt_len, csk ? csk : sk, NULL, 0);
	if (be != BUNDLE_OK) {
		fail(a, BUNDLE_TV_SOURCED_DATA,
		     verifier_reason("statement.signature", "{s:s, s:s}", "error", bundle_strerror(be), "why",
				     bundle_last_cause()));
		goto out;
	}
	be = bundle_statement_check_preimage(a->stmt, a->stmt_len, a->ev_bytes, a->ev_len);
	if (be != BUNDLE_OK || c.cwt_sub.len != strlen(a->host_id) ||
	    memcmp(c.cwt_sub.ptr, a->host_id, c.cwt_sub.len) != 0) {
		fail(a, BUNDLE_TV_SOURCED_DATA,
		     verifier_reason("statement.evidence.mismatch", "{s:s}", "why",
				     be != BUNDLE_OK ? "the statement's payload is not SHA-256 of this evidence"
						     : "the statement's subject is not this host"));
		goto out;
	}
	rc = 0;
out:
	free(der);
	bundle_key_free(sk);
	return rc;
}

/* 13: the receipt. */
static int step_receipt(struct appraisal *a)
{
	struct bundle_receipt_info info;
	enum bundle_err be;

	const struct bundle_key *key = NULL;
	struct bundle_cose rc;

	memset(&info, 0, sizeof info);
	/* The receipt's kid names a trusted key directly (the common case): skip the key set's
	 * matching, which derives thumbprints per key. Otherwise the key set decides. */
	if (bundle_cose_parse(a->receipt, a->receipt_len, &rc) == BUNDLE_OK && rc.kid.ptr)
		for (size_t i = 0; i < bundle_keyset_count(a->svc->trusted_ts) && !key; i++) {
			const struct bundle_key *k = bundle_keyset_get(a->svc->trusted_ts, i);
			struct bundle_bytes kid = bundle_key_kid(k);
			if (kid.len == rc.kid.len && memcmp(kid.ptr, rc.kid.ptr, kid.len) == 0)
				key = k;
		}
	be = bundle_receipt_verify(a->receipt, a->receipt_len, a->stmt, a->stmt_len, key, key ? NULL : a->svc->trusted_ts,
				   &info);
	if (be == BUNDLE_ERR_KID)
		return fail(a, BUNDLE_TV_SOURCED_DATA,
			    verifier_reason("receipt.untrusted", "{s:o}", "kid",
					    info.kid.ptr ? hexj(info.kid.ptr, info.kid.len) : json_null()));
	if (be != BUNDLE_OK)
		return fail(a, BUNDLE_TV_SOURCED_DATA,
			    verifier_reason("receipt.invalid", "{s:s, s:s}", "error", bundle_strerror(be), "why",
					    bundle_last_cause()));
	return 0;
}

/* The release: key = 32 random bytes, wrapped by MakeCredential to (EK, AK name); payload =
 * {"name": base64(content), ...} encrypted with AES-256-GCM under that key, AAD "sluice-release-v1" ||
 * statement hash. Blob: "SLR1" || u32 len || credential file || iv(12) || u32 len || ciphertext || tag(16). */
static int make_release(struct appraisal *a, uint8_t **ret, size_t *ret_len)
{
	uint8_t rnd[32 + 12], tag[16]; /* key || iv, one RAND_bytes call */
	uint8_t *key = rnd, *iv = rnd + 32;
	uint8_t *id = NULL, *sec = NULL, *cred = NULL, *out = NULL;
	const uint8_t *pt = (const uint8_t *)a->g->release_pt;
	size_t id_len = 0, sec_len = 0, cred_len = 0, pt_len = a->g->release_pt_len, off = 0;
	EVP_CIPHER_CTX *ctx = NULL;
	int outl = 0, rc = -1;
	struct quote_diag d;
	uint8_t aad[sizeof RELEASE_AAD - 1 + 32];
	const struct quote_ek *ek;

	diag_init(&d);
	if (!pt)
		goto out;
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		goto out;
	ek = verifier_keycache_ek(a->svc->keys, a->host.ek_pub, a->host.ek_pub_len);
	if ((ek ? quote_ek_make_credential(ek, a->host.ak_name, a->host.ak_name_len, key, 32, &id, &id_len,
					   &sec, &sec_len, &d)
		: quote_make_credential(a->host.ek_pub, a->host.ek_pub_len, a->host.ak_name, a->host.ak_name_len, key,
					32, &id, &id_len, &sec, &sec_len, &d)) != QUOTE_OK ||
	    quote_credential_file_encode(id, id_len, sec, sec_len, &cred, &cred_len) != QUOTE_OK)
		goto out;
	memcpy(aad, RELEASE_AAD, sizeof RELEASE_AAD - 1);
	memcpy(aad + sizeof RELEASE_AAD - 1, a->stmt_hash, 32);
	out = malloc(4 + 4 + cred_len + 12 + 4 + pt_len + 16);
	if (!out || !(ctx = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex(ctx, verifier_aes256gcm(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)sizeof aad) != 1)
		goto out;
	memcpy(out, RELEASE_MAGIC, 4);
	off = 4;
	out[off++] = (uint8_t)(cred_len >> 24);
	out[off++] = (uint8_t)(cred_len >> 16);
	out[off++] = (uint8_t)(cred_len >> 8);
	out[off++] = (uint8_t)cred_len;
	memcpy(out + off, cred, cred_len);
	off += cred_len;
	memcpy(out + off, iv, 12);
	off += 12;
	out[off++] = (uint8_t)(pt_len >> 24);
	out[off++] = (uint8_t)(pt_len >> 16);
	out[off++] = (uint8_t)(pt_len >> 8);
	out[off++] = (uint8_t)pt_len;
	if (EVP_EncryptUpdate(ctx, out + off, &outl, pt, (int)pt_len) != 1)
		goto out;
	off += (size_t)outl;
	if (EVP_EncryptFinal_ex(ctx, out + off, &outl) != 1)
		goto out;
	off += (size_t)outl;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
		goto out;
	memcpy(out + off, tag, 16);
	off += 16;
	*ret = out;
	*ret_len = off;
	out = NULL;
	rc = 0;
out:
	OPENSSL_cleanse(rnd, sizeof rnd);
	EVP_CIPHER_CTX_free(ctx);
	free(id);
	free(sec);
	free(cred);
	free(out);
	return rc;
}

static void appraisal_clear(struct appraisal *a)
{
	free(a->ev_bytes);
	free(a->stmt);
	free(a->receipt);
	bundle_evidence_free(a->ev);
	verifier_host_clear(&a->host);
	quote_eventlog_free(a->tcg);
	quote_slog_free(a->slog);
	json_decref(a->reason);
	if (a->pol)
		verifier_policy_put(&a->svc->pol, a->pol);
}

/* A JSON string of base64 text (NULL: ""), without jansson's UTF-8 check. */
static json_t *ascii(const char *b64)
{
	return json_stringn_nocheck(b64 ? b64 : "", b64 ? strlen(b64) : 0);
}

static int get_b64(json_t *req, const char *name, size_t max, uint8_t **ret, size_t *len)
{
	json_t *v = json_object_get(req, name);
	if (!json_is_string(v))
		return -1;
	return verifier_b64_decode(json_string_value(v), max, ret, len);
}

json_t *verifier_attest(struct verifier_svc *svc, json_t *req, int *status)
{
	struct appraisal a;
	double t0 = verifier_mono();
	json_t *ans = NULL, *reasons = NULL;
	struct bundle_ear ear;
	struct bundle_ear_reason er;
	struct bundle_signer signer;
	uint8_t *release = NULL, *verdict = NULL, *vstmt = NULL, *vreceipt = NULL;
	size_t release_len = 0, verdict_len = 0, vstmt_len = 0, vreceipt_len = 0;
	char *detail_text = NULL, *reasons_text = NULL, *b1 = NULL, *b2 = NULL, *b3 = NULL;
	char err[512] = "";
	enum bundle_err be;
	enum verifier_result result;

	memset(&a, 0, sizeof a);
	a.svc = svc;
	a.pol = verifier_policy_get(&svc->pol);
	a.host_id = json_string_value(json_object_get(req, "host_id"));
	if (!a.host_id || !verifier_host_id_valid(a.host_id)) {
		ans = verifier_problem(400, status, "Malformed request", "host_id: required, [A-Za-z0-9._:@-]{1,%d}",
				       VERIFIER_MAX_HOST_ID);
		goto out;
	}
	if (get_b64(req, "evidence", BUNDLE_MAX_EVIDENCE, &a.ev_bytes, &a.ev_len) ||
	    get_b64(req, "statement", MAX_STATEMENT, &a.stmt, &a.stmt_len) ||
	    get_b64(req, "receipt", MAX_RECEIPT, &a.receipt, &a.receipt_len)) {
		ans = verifier_problem(400, status, "Malformed request",
				       "host_id, evidence, statement and receipt (base64) are required");
		goto out;
	}
	if ((be = bundle_evidence_decode(a.ev_bytes, a.ev_len, &a.ev)) != BUNDLE_OK) {
		ans = verifier_problem(400, status, "evidence.malformed", "%s (%s)", bundle_strerror(be),
				       bundle_last_cause());
		goto out;
	}
	if (!(a.g = verifier_policy_group(a.pol, a.host_id))) {
		ans = verifier_problem(403, status, "host.group.none", "no policy group matches host id %s", a.host_id);
		goto out;
	}
	verifier_sha256(a.stmt, a.stmt_len, a.stmt_hash);

	/* The pipeline, in order, stopping at the first failure. */
	if (step_ak(&a) == 0 && step_quote(&a) == 0 && step_nonce(&a) == 0 && step_logs(&a) == 0 &&
	    step_reference(&a) == 0 && step_rootfs(&a) == 0 && step_statement(&a) == 0 && step_receipt(&a) == 0 &&
	    make_release(&a, &release, &release_len) != 0)
		fail(&a, BUNDLE_TV_INSTANCE_IDENTITY, verifier_reason("internal", "{s:s}", "why", "cannot wrap the release"));
	if (a.reason && !a.authentic) {
		/* Not shown to come from the enrolled TPM: a problem, nothing signed, registered or stored. */
		const char *type = json_string_value(json_object_get(a.reason, "type"));
		int internal = type && strcmp(type, "internal") == 0;
		detail_text = json_dumps(json_object_get(a.reason, "detail"), JSON_COMPACT | JSON_SORT_KEYS);
		ans = verifier_problem(internal ? 500 : 403, status, type ? type : "internal", "%s",
				       detail_text ? detail_text : "");
		result = internal ? VR_ERROR : VR_REFUSED;
		goto record;
	}

	memset(&ear, 0, sizeof ear);
	ear.iat = verifier_now();
	ear.exp = ear.iat + a.g->lifetime;
	ear.nonce = a.ev->nonce;
	ear.verifier_developer = svc->cfg.verifier_id;
	ear.verifier_build = "sluice-verifier " "0.1.0";
	ear.policy_id = a.pol->id;
	ear.host_id = a.host_id;
	ear.has_statement_hash = 1;
	memcpy(ear.statement_hash, a.stmt_hash, 32);
	for (int i = 0; i < BUNDLE_TV_COUNT; i++)
		ear.tv[i] = BUNDLE_TV_ABSENT;
	if (!a.reason) {
		ear.status = BUNDLE_EAR_AFFIRMING;
		ear.tv[BUNDLE_TV_INSTANCE_IDENTITY] = 2;
		ear.tv[BUNDLE_TV_CONFIGURATION] = 2;
		ear.tv[BUNDLE_TV_EXECUTABLES] = 2;
		ear.tv[BUNDLE_TV_FILE_SYSTEM] = 2;
		ear.tv[BUNDLE_TV_HARDWARE] = 2;
		ear.tv[BUNDLE_TV_SOURCED_DATA] = 2;
		ear.tools = (const char *const *)a.g->tools;
		ear.n_tools = a.g->n_tools;
		if (release) {
			ear.credential.ptr = release;
			ear.credential.len = release_len;
		}
		reasons = json_array();
		result = VR_AFFIRMING;
	} else {
		ear.status = BUNDLE_EAR_CONTRAINDICATED;
		ear.tv[a.tv_index] = 96;
		er.type = json_string_value(json_object_get(a.reason, "type"));
		detail_text = json_dumps(json_object_get(a.reason, "detail"), JSON_COMPACT | JSON_SORT_KEYS);
		er.detail = detail_text ? detail_text : "";
		ear.reasons = &er;
		ear.n_reasons = 1;
		reasons = json_pack("[O]", a.reason);
		result = VR_CONTRAINDICATED;
	}
	if ((be = bundle_signer_from_key(svc->key, &signer)) != BUNDLE_OK ||
	    (be = bundle_ear_sign(&signer, &ear, &verdict, &verdict_len)) != BUNDLE_OK ||
	    (be = bundle_statement_sign(&signer, svc->cfg.verifier_id, a.host_id, BUNDLE_MT_EAR, verdict, verdict_len,
					&vstmt, &vstmt_len)) != BUNDLE_OK) {
		ans = verifier_problem(500, status, "Internal Server Error", "cannot sign the verdict: %s (%s)",
				       bundle_strerror(be), bundle_last_cause());
		result = VR_ERROR;
		goto record;
	}
	if (verifier_ts_register(svc, vstmt, vstmt_len, &vreceipt, &vreceipt_len, err, sizeof err) != VERIFIER_OK) {
		ans = verifier_problem(502, status, "ts.unavailable", "cannot register the verdict: %s", err);
		result = VR_ERROR;
		goto record;
	}
	reasons_text = json_dumps(reasons, JSON_COMPACT);
	if (verifier_store_verdict_add(svc->store, a.host_id, ear.iat, result == VR_AFFIRMING ? "affirming" : "contraindicated",
				       reasons_text, a.stmt_hash, 32, verdict, verdict_len, vreceipt, vreceipt_len) !=
	    VERIFIER_OK) {
		ans = verifier_problem(500, status, "Internal Server Error", "database: %s",
				       verifier_store_last_cause(svc->store));
		result = VR_ERROR;
		goto record;
	}
	b1 = verifier_b64_encode(verdict, verdict_len);
	b2 = verifier_b64_encode(vstmt, vstmt_len);
	b3 = verifier_b64_encode(vreceipt, vreceipt_len);
	*status = 200;
	/* base64 is ASCII: no UTF-8 validation pass over the three strings (json_pack's "s" does one) */
	ans = json_pack("{s:s, s:o, s:o, s:o, s:O, s:I}", "status",
			result == VR_AFFIRMING ? "affirming" : "contraindicated", "verdict", ascii(b1),
			"verdict_statement", ascii(b2), "verdict_receipt", ascii(b3), "reasons", reasons,
			"expires", (json_int_t)ear.exp);
record:
	{
		double dt = verifier_mono() - t0;
		verifier_metrics_appraisal(&svc->metrics, result, dt);
		verifier_svc_log(svc, "appraise %s: %s%s%s%s%s (%.1f ms)", a.host_id,
				 result == VR_AFFIRMING	  ? "affirming"
				 : result == VR_ERROR	  ? "error"
				 : result == VR_REFUSED ? "refused"
							: "contraindicated",
				 a.reason ? " " : "", a.reason ? json_string_value(json_object_get(a.reason, "type")) : "",
				 a.reason && detail_text ? " " : "", a.reason && detail_text ? detail_text : "", dt * 1000);
	}
out:
	if (release) {
		OPENSSL_cleanse(release, release_len);
		free(release);
	}
	json_decref(reasons);
	free(detail_text);
	free(reasons_text);
	free(verdict);
	free(vstmt);
	free(vreceipt);
	free(b1);
	free(b2);
	free(b3);
	appraisal_clear(&a);
	return ans;
}
