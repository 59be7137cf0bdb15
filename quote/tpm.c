/* The TPM side of libquote: one ESAPI context over a tctildr TCTI; EK, AK, statement key,
 * PCR read/extend, quote, certify, sign, activate credential.
 *
 * Every command goes through the asynchronous ESAPI calls with a deadline (RUN below), so
 * no command blocks longer than cfg.timeout_ms where the TCTI supports timeouts. After a
 * timeout the context is unusable (the command may still be in flight) and says so.
 * There may be no resource manager (swtpm TCTI): every transient object and session this
 * file creates is flushed on every path before the function returns. */
#include "quote/quote-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "quote/tcti-int.h"

struct quote_ctx {
	TSS2_TCTI_CONTEXT *tcti;
	int own_tcti;
	ESYS_CONTEXT *esys;
	unsigned timeout_ms;
	uint32_t ak_handle, sk_handle;
	uint16_t ek_alg;
	unsigned retries;
	int broken;          /* a command timed out: the context cannot be trusted any more */
	ESYS_TR ak_tr, sk_tr; /* ESYS_TR_NONE until loaded; persistent ones are closed, */
	int ak_transient, sk_transient; /* transient ones (could not persist) are flushed */
	struct quote_key ak, sk;
	int have_banks;
	struct quote_pcr_selection banks;
	uint32_t rc;
	char cause[256];
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void set_cause(struct quote_ctx *ctx, const char *what, TSS2_RC rc)
{
	ctx->rc = rc;
	snprintf(ctx->cause, sizeof ctx->cause, "%s: %s", what, rc ? Tss2_RC_Decode(rc) : "failed");
}

static void set_cause_msg(struct quote_ctx *ctx, const char *msg)
{
	ctx->rc = 0;
	snprintf(ctx->cause, sizeof ctx->cause, "%s", msg);
}

/* Map a TSS2_RC to our error after a command, recording the cause. */
static enum quote_err tss_err(struct quote_ctx *ctx, const char *what, TSS2_RC rc)
{
	if (rc == TSS2_RC_SUCCESS)
		return QUOTE_OK;
	set_cause(ctx, what, rc);
	if (rc == TSS2_ESYS_RC_TRY_AGAIN || rc == TSS2_TCTI_RC_TRY_AGAIN) {
		ctx->broken = 1;
		snprintf(ctx->cause, sizeof ctx->cause, "%s: no answer within %u ms", what, ctx->timeout_ms);
		return QUOTE_ERR_TIMEOUT;
	}
	if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER || rc == TSS2_ESYS_RC_NO_DECRYPT_PARAM ||
	    (rc & 0xffff) == TSS2_BASE_RC_IO_ERROR) {
		return QUOTE_ERR_TCTI;
	}
	if ((rc & 0xffff) == TSS2_BASE_RC_MEMORY)
		return QUOTE_ERR_NOMEM;
	return QUOTE_ERR_TPM;
}

/* Run one ESAPI command: ASYNC starts it, FINISH collects it until the deadline. */
#define RUN(ctx, rc, ASYNC, FINISH)                                                               \
	do {                                                                                      \
		if ((ctx)->broken) {                                                              \
			(rc) = TSS2_ESYS_RC_TRY_AGAIN;                                            \
			break;                                                                    \
		}                                                                                 \
		(rc) = (ASYNC);                                                                   \
		if ((rc) != TSS2_RC_SUCCESS)                                                      \
			break;                                                                    \
		double dl_ = now_ms() + (ctx)->timeout_ms;                                        \
		for (;;) {                                                                        \
			double left_ = dl_ - now_ms();                                            \
			Esys_SetTimeout((ctx)->esys, left_ > 1 ? (int32_t)left_ : 1);             \
			(rc) = (FINISH);                                                          \
			if ((rc) != TSS2_ESYS_RC_TRY_AGAIN || now_ms() >= dl_)                    \
				break;                                                            \
		}                                                                                 \
	} while (0)

static void flush(struct quote_ctx *ctx, ESYS_TR *tr)
{
	TSS2_RC rc;
	if (*tr == ESYS_TR_NONE)
		return;
	RUN(ctx, rc, Esys_FlushContext_Async(ctx->esys, *tr), Esys_FlushContext_Finish(ctx->esys));
	if (rc != TSS2_RC_SUCCESS)
		Esys_TR_Close(ctx->esys, tr); /* at least drop our metadata */
	*tr = ESYS_TR_NONE;
}

static void tr_close(struct quote_ctx *ctx, ESYS_TR *tr)
{
	if (*tr != ESYS_TR_NONE)
		Esys_TR_Close(ctx->esys, tr);
	*tr = ESYS_TR_NONE;
}

enum quote_err quote_ctx_new(const struct quote_cfg *cfg, struct quote_ctx **ret)
{
	return quote_ctx_new_diag(cfg, ret, NULL);
}

enum quote_err quote_ctx_new_diag(const struct quote_cfg *cfg, struct quote_ctx **ret, struct quote_diag *diag)
{
	struct quote_ctx *ctx;
	const char *tcti;
	TSS2_RC rc;
	enum quote_err err;

	if (!ret)
		return QUOTE_ERR_ARG;
	if (!(ctx = calloc(1, sizeof *ctx)))
		return QUOTE_ERR_NOMEM;
	tcti = cfg && cfg->tcti ? cfg->tcti : "device:/dev/tpmrm0";
	ctx->timeout_ms = cfg && cfg->timeout_ms ? cfg->timeout_ms : 30000;
	ctx->ak_handle = cfg && cfg->ak_handle ? cfg->ak_handle : QUOTE_HANDLE_AK;
	ctx->sk_handle = cfg && cfg->sk_handle ? cfg->sk_handle : QUOTE_HANDLE_SK;
	ctx->ek_alg = cfg ? cfg->ek_alg : 0;
	ctx->retries = cfg && cfg->quote_retries ? cfg->quote_retries : 3;
	ctx->ak_tr = ctx->sk_tr = ESYS_TR_NONE;
	if ((ctx->ak_handle >> 24) != 0x81 || (ctx->sk_handle >> 24) != 0x81 || ctx->ak_handle == ctx->sk_handle ||
	    (ctx->ek_alg && ctx->ek_alg != QUOTE_ALG_RSA && ctx->ek_alg != QUOTE_ALG_ECC)) {
		free(ctx);
		return QUOTE_ERR_ARG;
	}
	/* The TSS logs to stderr by default; a library must not. TSS2_LOG set by the user wins. */
	setenv("TSS2_LOG", "all+NONE", 0);

	err = quote_tcti_open(tcti, ctx->timeout_ms, &ctx->tcti, &ctx->own_tcti, ctx->cause, sizeof ctx->cause);
	if (err != QUOTE_OK)
		goto fail;
	rc = Esys_Initialize(&ctx->esys, ctx->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		set_cause(ctx, "Esys_Initialize", rc);
		err = QUOTE_ERR_TCTI;
		goto fail;
	}
	/* Simulators may need TPM2_Startup; an initialised TPM answers TPM_RC_INITIALIZE. */
	RUN(ctx, rc, Esys_Startup_Async(ctx->esys, TPM2_SU_CLEAR), Esys_Startup_Finish(ctx->esys));
	if (rc != TSS2_RC_SUCCESS && (rc & 0xfff) != TPM2_RC_INITIALIZE) {
		err = tss_err(ctx, "TPM2_Startup", rc);
		goto fail;
	}
	*ret = ctx;
	return QUOTE_OK;
fail:
	quote_diag_reset(diag);
	quote_diag_set(diag, "%s", ctx->cause);
	if (diag)
		diag->cause = ctx->rc;
	quote_ctx_free(ctx);
	return err;
}

void quote_ctx_free(struct quote_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->esys) {
		if (ctx->ak_transient)
			flush(ctx, &ctx->ak_tr);
		if (ctx->sk_transient)
			flush(ctx, &ctx->sk_tr);
		tr_close(ctx, &ctx->ak_tr);
		tr_close(ctx, &ctx->sk_tr);
		Esys_Finalize(&ctx->esys);
	}
	quote_tcti_close(&ctx->tcti, ctx->own_tcti);
	OPENSSL_cleanse(ctx, sizeof *ctx);
	free(ctx);
}

uint32_t quote_ctx_rc(const struct quote_ctx *ctx)
{
	return ctx ? ctx->rc : 0;
}

const char *quote_ctx_cause(const struct quote_ctx *ctx)
{
	if (!ctx)
		return "no TPM context";
	return ctx->cause[0] ? ctx->cause : "no error";
}

/* ---- capabilities ---- */

static enum quote_err get_cap(struct quote_ctx *ctx, TPM2_CAP cap, uint32_t prop, uint32_t count,
			      TPMS_CAPABILITY_DATA **ret)
{
	TPMI_YES_NO more = 0;
	TSS2_RC rc;
	*ret = NULL;
	RUN(ctx, rc,
	    Esys_GetCapability_Async(ctx->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, cap, prop, count),
	    Esys_GetCapability_Finish(ctx->esys, &more, ret));
	return tss_err(ctx, "TPM2_GetCapability", rc);
}

/* 1 if a persistent object or NV index exists at handle, 0 if not, -1 on error. */
static int handle_exists(struct quote_ctx *ctx, uint32_t handle)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	int found;
	if (get_cap(ctx, TPM2_CAP_HANDLES, handle, 1, &cap) != QUOTE_OK)
		return -1;
	found = cap->data.handles.count > 0 && cap->data.handles.handle[0] == handle;
	Esys_Free(cap);
	return found;
}

enum quote_err quote_pcr_banks(struct quote_ctx *ctx, struct quote_pcr_selection *ret)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	struct quote_pcr_selection sel;
	enum quote_err err;

	if (!ctx || !ret)
		return QUOTE_ERR_ARG;
	if (ctx->have_banks) {
		*ret = ctx->banks;
		return QUOTE_OK;
	}
	if ((err = get_cap(ctx, TPM2_CAP_PCRS, 0, 1, &cap)) != QUOTE_OK)
		return err;
	memset(&sel, 0, sizeof sel);
	for (UINT32 i = 0; i < cap->data.assignedPCR.count; i++) {
		const TPMS_PCR_SELECTION *s = &cap->data.assignedPCR.pcrSelections[i];
		uint32_t mask = 0;
		for (unsigned k = 0; k < s->sizeofSelect && k < 3; k++)
			mask |= (uint32_t)s->pcrSelect[k] << (8 * k);
		if (!mask || !quote_alg_digest_len(s->hash) || sel.n >= QUOTE_MAX_BANKS)
			continue; /* unallocated bank, or one we cannot hash */
		sel.bank[sel.n].alg = s->hash;
		sel.bank[sel.n].mask = mask;
		sel.n++;
	}
	Esys_Free(cap);
	ctx->banks = sel;
	ctx->have_banks = 1;
	*ret = sel;
	return QUOTE_OK;
}

static uint32_t cap_prop(const TPMS_CAPABILITY_DATA *cap, TPM2_PT pt)
{
	for (UINT32 i = 0; i < cap->data.tpmProperties.count; i++)
		if (cap->data.tpmProperties.tpmProperty[i].property == pt)
			return cap->data.tpmProperties.tpmProperty[i].value;
	return 0;
}

static void put_be32(char *out, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(v >> (24 - 8 * i));
		out[i] = c >= 0x20 && c < 0x7f ? c : (c ? '?' : ' ');
	}
}

/* forward */
static enum quote_err load_persistent(struct quote_ctx *ctx, uint32_t handle, ESYS_TR *ret_tr, TPM2B_PUBLIC **ret_pub);
static int is_ak_template(const TPMT_PUBLIC *p);
static int is_sk_template(const TPMT_PUBLIC *p);

static int key_matches(struct quote_ctx *ctx, uint32_t handle, int (*want)(const TPMT_PUBLIC *))
{
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_PUBLIC *pub = NULL;
	int r = 0;
	if (load_persistent(ctx, handle, &tr, &pub) == QUOTE_OK)
		r = want(&pub->publicArea);
	Esys_Free(pub);
	tr_close(ctx, &tr);
	return r;
}

enum quote_err quote_tpm_info(struct quote_ctx *ctx, struct quote_tpm_info *ret)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	struct quote_tpm_info info;
	enum quote_err err;
	int e;

	if (!ctx || !ret)
		return QUOTE_ERR_ARG;
	memset(&info, 0, sizeof info);
	if ((err = get_cap(ctx, TPM2_CAP_TPM_PROPERTIES, TPM2_PT_FIXED, TPM2_MAX_TPM_PROPERTIES, &cap)) != QUOTE_OK)
		return err;
	put_be32(info.manufacturer, cap_prop(cap, TPM2_PT_MANUFACTURER));
	put_be32(info.vendor, cap_prop(cap, TPM2_PT_VENDOR_STRING_1));
	put_be32(info.vendor + 4, cap_prop(cap, TPM2_PT_VENDOR_STRING_2));
	put_be32(info.vendor + 8, cap_prop(cap, TPM2_PT_VENDOR_STRING_3));
	put_be32(info.vendor + 12, cap_prop(cap, TPM2_PT_VENDOR_STRING_4));
	/* trim trailing blanks of the vendor string */
	for (int i = 15; i >= 0 && info.vendor[i] == ' '; i--)
		info.vendor[i] = 0;
	info.firmware[0] = cap_prop(cap, TPM2_PT_FIRMWARE_VERSION_1);
	info.firmware[1] = cap_prop(cap, TPM2_PT_FIRMWARE_VERSION_2);
	info.spec_level = cap_prop(cap, TPM2_PT_LEVEL);
	info.spec_revision = cap_prop(cap, TPM2_PT_REVISION);
	info.spec_year = cap_prop(cap, TPM2_PT_YEAR);
	Esys_Free(cap);
	if ((err = quote_pcr_banks(ctx, &info.banks)) != QUOTE_OK)
		return err;
	if ((e = handle_exists(ctx, QUOTE_HANDLE_EK_RSA)) < 0)
		return QUOTE_ERR_TPM;
	info.ek_rsa_persistent = e;
	info.ek_ecc_persistent = handle_exists(ctx, QUOTE_HANDLE_EK_ECC) == 1;
	info.ek_rsa_cert = handle_exists(ctx, QUOTE_NV_EK_CERT_RSA) == 1;
	info.ek_ecc_cert = handle_exists(ctx, QUOTE_NV_EK_CERT_ECC) == 1 || handle_exists(ctx, QUOTE_NV_EK_CERT_ECC384) == 1;
	info.ak_present = handle_exists(ctx, ctx->ak_handle) == 1 && key_matches(ctx, ctx->ak_handle, is_ak_template);
	info.sk_present = handle_exists(ctx, ctx->sk_handle) == 1 && key_matches(ctx, ctx->sk_handle, is_sk_template);
	*ret = info;
	return QUOTE_OK;
}

/* ---- key templates ---- */

static const uint8_t ek_policy_a_sha256[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
	0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
};

#define EK_ATTRS                                                                                      \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |           \
	 TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define AK_ATTRS                                                                                      \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |           \
	 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA)
#define SK_ATTRS                                                                                      \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |           \
	 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA)

/* TCG EK Credential Profile, templates L-1 (RSA 2048) and L-2 (ECC P-256). */
static void ek_template(uint16_t alg, TPM2B_PUBLIC *t)
{
	memset(t, 0, sizeof *t);
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = EK_ATTRS;
	t->publicArea.authPolicy.size = 32;
	memcpy(t->publicArea.authPolicy.buffer, ek_policy_a_sha256, 32);
	if (alg == QUOTE_ALG_RSA) {
		t->publicArea.type = TPM2_ALG_RSA;
		t->publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
		t->publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128;
		t->publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		t->publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
		t->publicArea.parameters.rsaDetail.keyBits = 2048;
		t->publicArea.parameters.rsaDetail.exponent = 0;
		t->publicArea.unique.rsa.size = 256;
	} else {
		t->publicArea.type = TPM2_ALG_ECC;
		t->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
		t->publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
		t->publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		t->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
		t->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		t->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		t->publicArea.unique.ecc.x.size = 32;
		t->publicArea.unique.ecc.y.size = 32;
	}
}

static void sign_template(TPM2B_PUBLIC *t, TPMA_OBJECT attrs, const char *unique)
{
	memset(t, 0, sizeof *t);
	t->publicArea.type = TPM2_ALG_ECC;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = attrs;
	t->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	t->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	t->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	t->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	t->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	/* a distinct unique value so our primaries differ from other software's */
	t->publicArea.unique.ecc.x.size = (UINT16)strlen(unique);
	memcpy(t->publicArea.unique.ecc.x.buffer, unique, strlen(unique));
}

static int is_sign_p256(const TPMT_PUBLIC *p, TPMA_OBJECT attrs)
{
	return p->type == TPM2_ALG_ECC && p->nameAlg == TPM2_ALG_SHA256 && p->objectAttributes == attrs &&
	       p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 &&
	       p->parameters.eccDetail.scheme.scheme == TPM2_ALG_ECDSA &&
	       p->parameters.eccDetail.scheme.details.ecdsa.hashAlg == TPM2_ALG_SHA256 && p->authPolicy.size == 0;
}
static int is_ak_template(const TPMT_PUBLIC *p) { return is_sign_p256(p, AK_ATTRS); }
static int is_sk_template(const TPMT_PUBLIC *p) { return is_sign_p256(p, SK_ATTRS); }

static enum quote_err load_persistent(struct quote_ctx *ctx, uint32_t handle, ESYS_TR *ret_tr, TPM2B_PUBLIC **ret_pub)
{
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_NAME *name = NULL, *qname = NULL;
	TSS2_RC rc;
	enum quote_err err;
	int e = handle_exists(ctx, handle);

	if (e < 0)
		return QUOTE_ERR_TPM;
	if (e == 0) {
		char msg[64];
		snprintf(msg, sizeof msg, "no object at handle 0x%08x", handle);
		set_cause_msg(ctx, msg);
		return QUOTE_ERR_NOT_FOUND;
	}
	RUN(ctx, rc,
	    Esys_TR_FromTPMPublic_Async(ctx->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE),
	    Esys_TR_FromTPMPublic_Finish(ctx->esys, &tr));
	if ((err = tss_err(ctx, "Esys_TR_FromTPMPublic", rc)) != QUOTE_OK)
		return err;
	if (ret_pub) {
		RUN(ctx, rc, Esys_ReadPublic_Async(ctx->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE),
		    Esys_ReadPublic_Finish(ctx->esys, &pub, &name, &qname));
		Esys_Free(name);
		Esys_Free(qname);
		if ((err = tss_err(ctx, "TPM2_ReadPublic", rc)) != QUOTE_OK) {
			tr_close(ctx, &tr);
			return err;
		}
		*ret_pub = pub;
	}
	*ret_tr = tr;
	return QUOTE_OK;
}

static enum quote_err key_from_tpm2b(const TPM2B_PUBLIC *pub, uint32_t handle, struct quote_key *ret)
{
	size_t off = 0;
	memset(ret, 0, sizeof *ret);
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, ret->pub, sizeof ret->pub, &off) != TSS2_RC_SUCCESS)
		return QUOTE_ERR_FORMAT;
	ret->pub_len = off;
	ret->handle = handle;
	return quote_name_of_tpmt(&pub->publicArea, ret->name, &ret->name_len);
}

/* Create a primary in hierarchy from template; transient handle in *ret_tr. */
static enum quote_err create_primary(struct quote_ctx *ctx, ESYS_TR hierarchy, const TPM2B_PUBLIC *tmpl,
				     ESYS_TR *ret_tr, TPM2B_PUBLIC **ret_pub)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_CREATION_DATA *cdata = NULL;
	TPM2B_DIGEST *chash = NULL;
	TPMT_TK_CREATION *ticket = NULL;
	TPM2B_PUBLIC *pub = NULL;
	ESYS_TR tr = ESYS_TR_NONE;
	TSS2_RC rc;
	enum quote_err err;

	memset(&sens, 0, sizeof sens);
	memset(&outside, 0, sizeof outside);
	memset(&pcrs, 0, sizeof pcrs);
	RUN(ctx, rc,
	    Esys_CreatePrimary_Async(ctx->esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, tmpl,
				     &outside, &pcrs),
	    Esys_CreatePrimary_Finish(ctx->esys, &tr, &pub, &cdata, &chash, &ticket));
	Esys_Free(cdata);
	Esys_Free(chash);
	Esys_Free(ticket);
	if ((err = tss_err(ctx, "TPM2_CreatePrimary", rc)) != QUOTE_OK)
		return err;
	*ret_tr = tr;
	if (ret_pub)
		*ret_pub = pub;
	else
		Esys_Free(pub);
	return QUOTE_OK;
}

/* Load the key at handle if it matches want(), else create it from tmpl and persist it. */
/* If the key cannot be persisted (EvictControl refused: owner authorisation set, NV full),
 * the transient primary is kept for this context instead (*transient = 1, flushed by
 * quote_ctx_free): it is the same key, re-derived from the endorsement seed each time. */
static enum quote_err ensure_key(struct quote_ctx *ctx, uint32_t handle, const TPM2B_PUBLIC *tmpl,
				 int (*want)(const TPMT_PUBLIC *), ESYS_TR *cache_tr, struct quote_key *cache,
				 int *transient, int *ret_created)
{
	ESYS_TR tr = ESYS_TR_NONE, tmp = ESYS_TR_NONE, pers = ESYS_TR_NONE;
	TPM2B_PUBLIC *pub = NULL;
	enum quote_err err;
	TSS2_RC rc;
	int created = 0;

	if (*cache_tr != ESYS_TR_NONE) {
		if (ret_created)
			*ret_created = 0;
		return QUOTE_OK;
	}
	err = load_persistent(ctx, handle, &tr, &pub);
	if (err == QUOTE_OK) {
		if (!want(&pub->publicArea)) {
			char msg[96];
			snprintf(msg, sizeof msg, "handle 0x%08x holds an object that is not sluice's key", handle);
			set_cause_msg(ctx, msg);
			err = QUOTE_ERR_HANDLE_IN_USE;
			goto out;
		}
	} else if (err == QUOTE_ERR_NOT_FOUND) {
		if ((err = create_primary(ctx, ESYS_TR_RH_ENDORSEMENT, tmpl, &tmp, &pub)) != QUOTE_OK)
			goto out;
		RUN(ctx, rc,
		    Esys_EvictControl_Async(ctx->esys, ESYS_TR_RH_OWNER, tmp, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					    ESYS_TR_NONE, handle),
		    Esys_EvictControl_Finish(ctx->esys, &pers));
		err = tss_err(ctx, "TPM2_EvictControl", rc);
		if (err == QUOTE_ERR_TPM) {
			/* keep the transient primary (cause stays recorded for the curious) */
			if ((err = key_from_tpm2b(pub, 0, cache)) != QUOTE_OK)
				goto out;
			*cache_tr = tmp;
			tmp = ESYS_TR_NONE;
			*transient = 1;
			if (ret_created)
				*ret_created = 1;
			goto out;
		}
		if (err != QUOTE_OK)
			goto out;
		tr = pers;
		created = 1;
	} else {
		goto out;
	}
	if ((err = key_from_tpm2b(pub, handle, cache)) != QUOTE_OK)
		goto out;
	*cache_tr = tr;
	tr = ESYS_TR_NONE;
	if (ret_created)
		*ret_created = created;
out:
	flush(ctx, &tmp);
	tr_close(ctx, &tr);
	Esys_Free(pub);
	return err;
}

enum quote_err quote_ak_ensure(struct quote_ctx *ctx, struct quote_key *ret, int *ret_created)
{
	TPM2B_PUBLIC t;
	enum quote_err err;
	if (!ctx)
		return QUOTE_ERR_ARG;
	sign_template(&t, AK_ATTRS, "sluice-ak");
	if ((err = ensure_key(ctx, ctx->ak_handle, &t, is_ak_template, &ctx->ak_tr, &ctx->ak, &ctx->ak_transient,
			      ret_created)) != QUOTE_OK)
		return err;
	if (ret)
		*ret = ctx->ak;
	return QUOTE_OK;
}

enum quote_err quote_sk_ensure(struct quote_ctx *ctx, struct quote_key *ret, int *ret_created)
{
	TPM2B_PUBLIC t;
	enum quote_err err;
	if (!ctx)
		return QUOTE_ERR_ARG;
	sign_template(&t, SK_ATTRS, "sluice-statement");
	if ((err = ensure_key(ctx, ctx->sk_handle, &t, is_sk_template, &ctx->sk_tr, &ctx->sk, &ctx->sk_transient,
			      ret_created)) != QUOTE_OK)
		return err;
	if (ret)
		*ret = ctx->sk;
	return QUOTE_OK;
}

enum quote_err quote_key_evict(struct quote_ctx *ctx, uint32_t handle)
{
	ESYS_TR tr = ESYS_TR_NONE, out = ESYS_TR_NONE;
	enum quote_err err;
	TSS2_RC rc;

	if (!ctx || (handle >> 24) != 0x81)
		return QUOTE_ERR_ARG;
	if (handle == ctx->ak_handle) {
		if (ctx->ak_transient)
			flush(ctx, &ctx->ak_tr);
		tr_close(ctx, &ctx->ak_tr);
		ctx->ak_transient = 0;
	}
	if (handle == ctx->sk_handle) {
		if (ctx->sk_transient)
			flush(ctx, &ctx->sk_tr);
		tr_close(ctx, &ctx->sk_tr);
		ctx->sk_transient = 0;
	}
	if ((err = load_persistent(ctx, handle, &tr, NULL)) != QUOTE_OK)
		return err;
	RUN(ctx, rc,
	    Esys_EvictControl_Async(ctx->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				    handle),
	    Esys_EvictControl_Finish(ctx->esys, &out));
	err = tss_err(ctx, "TPM2_EvictControl", rc);
	if (err != QUOTE_OK)
		tr_close(ctx, &tr); /* on success ESAPI already dropped tr */
	return err;
}

/* ---- EK ---- */

/* The EK of alg: persistent if there (ECC: swtpm's P-384 handle), else a transient primary
 * from the TCG template (*ret_transient = 1: the caller flushes it). */
static enum quote_err ek_load(struct quote_ctx *ctx, uint16_t alg, ESYS_TR *ret_tr, TPM2B_PUBLIC **ret_pub,
			      int *ret_transient)
{
	uint32_t h = alg == QUOTE_ALG_RSA ? QUOTE_HANDLE_EK_RSA : QUOTE_HANDLE_EK_ECC;
	TPM2B_PUBLIC t;
	enum quote_err err = load_persistent(ctx, h, ret_tr, ret_pub);

	if (err == QUOTE_OK) {
		const TPMT_PUBLIC *p = &(*ret_pub)->publicArea;
		if (p->type != (alg == QUOTE_ALG_RSA ? TPM2_ALG_RSA : TPM2_ALG_ECC) ||
		    (p->objectAttributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) !=
			    (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) {
			Esys_Free(*ret_pub);
			*ret_pub = NULL;
			tr_close(ctx, ret_tr);
			set_cause_msg(ctx, "persistent EK handle holds something that is not an EK");
			return QUOTE_ERR_HANDLE_IN_USE;
		}
		*ret_transient = 0;
		return QUOTE_OK;
	}
	if (err != QUOTE_ERR_NOT_FOUND)
		return err;
	ek_template(alg, &t);
	if ((err = create_primary(ctx, ESYS_TR_RH_ENDORSEMENT, &t, ret_tr, ret_pub)) != QUOTE_OK)
		return err;
	*ret_transient = 1;
	return QUOTE_OK;
}

static uint16_t ek_pick(struct quote_ctx *ctx)
{
	if (ctx->ek_alg)
		return ctx->ek_alg;
	if (handle_exists(ctx, QUOTE_HANDLE_EK_RSA) == 1)
		return QUOTE_ALG_RSA;
	if (handle_exists(ctx, QUOTE_HANDLE_EK_ECC) == 1)
		return QUOTE_ALG_ECC;
	return QUOTE_ALG_RSA;
}

enum quote_err quote_ek_public(struct quote_ctx *ctx, uint16_t alg, struct quote_key *ret)
{
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_PUBLIC *pub = NULL;
	int transient = 0;
	enum quote_err err;
	struct quote_key k;

	if (!ctx || !ret)
		return QUOTE_ERR_ARG;
	if (alg == 0)
		alg = ek_pick(ctx);
	if (alg != QUOTE_ALG_RSA && alg != QUOTE_ALG_ECC)
		return QUOTE_ERR_ARG;
	if ((err = ek_load(ctx, alg, &tr, &pub, &transient)) != QUOTE_OK)
		return err;
	err = key_from_tpm2b(pub, transient ? 0 : (alg == QUOTE_ALG_RSA ? QUOTE_HANDLE_EK_RSA : QUOTE_HANDLE_EK_ECC), &k);
	if (transient)
		flush(ctx, &tr);
	else
		tr_close(ctx, &tr);
	Esys_Free(pub);
	if (err == QUOTE_OK)
		*ret = k;
	return err;
}

static enum quote_err nv_read_all(struct quote_ctx *ctx, uint32_t index, uint8_t **ret, size_t *ret_len)
{
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_NV_PUBLIC *nvpub = NULL;
	TPM2B_NAME *nvname = NULL;
	uint8_t *buf = NULL;
	size_t size, off = 0;
	TSS2_RC rc;
	enum quote_err err;
	int e = handle_exists(ctx, index);

	if (e < 0)
		return QUOTE_ERR_TPM;
	if (e == 0) {
		set_cause_msg(ctx, "EK certificate NV index absent");
		return QUOTE_ERR_NOT_FOUND;
	}
	RUN(ctx, rc, Esys_TR_FromTPMPublic_Async(ctx->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE),
	    Esys_TR_FromTPMPublic_Finish(ctx->esys, &tr));
	if ((err = tss_err(ctx, "Esys_TR_FromTPMPublic", rc)) != QUOTE_OK)
		return err;
	RUN(ctx, rc, Esys_NV_ReadPublic_Async(ctx->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE),
	    Esys_NV_ReadPublic_Finish(ctx->esys, &nvpub, &nvname));
	if ((err = tss_err(ctx, "TPM2_NV_ReadPublic", rc)) != QUOTE_OK)
		goto out;
	size = nvpub->nvPublic.dataSize;
	if (size == 0 || size > QUOTE_CERT_MAX) {
		set_cause_msg(ctx, "EK certificate NV index has an implausible size");
		err = QUOTE_ERR_FORMAT;
		goto out;
	}
	err = QUOTE_ERR_NOMEM;
	if (!(buf = malloc(size)))
		goto out;
	while (off < size) {
		TPM2B_MAX_NV_BUFFER *data = NULL;
		UINT16 chunk = (UINT16)(size - off > 512 ? 512 : size - off);
		RUN(ctx, rc,
		    Esys_NV_Read_Async(ctx->esys, tr, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, chunk,
				       (UINT16)off),
		    Esys_NV_Read_Finish(ctx->esys, &data));
		if ((err = tss_err(ctx, "TPM2_NV_Read", rc)) != QUOTE_OK)
			goto out;
		if (data->size != chunk) {
			Esys_Free(data);
			err = QUOTE_ERR_FORMAT;
			goto out;
		}
		memcpy(buf + off, data->buffer, chunk);
		off += chunk;
		Esys_Free(data);
	}
	*ret = buf;
	*ret_len = size;
	buf = NULL;
	err = QUOTE_OK;
out:
	free(buf);
	Esys_Free(nvpub);
	Esys_Free(nvname);
	tr_close(ctx, &tr);
	return err;
}

enum quote_err quote_ek_cert(struct quote_ctx *ctx, uint16_t alg, uint8_t **ret_der, size_t *ret_len)
{
	enum quote_err err;
	if (!ctx || !ret_der || !ret_len)
		return QUOTE_ERR_ARG;
	if (alg == 0)
		alg = ek_pick(ctx);
	if (alg == QUOTE_ALG_RSA)
		return nv_read_all(ctx, QUOTE_NV_EK_CERT_RSA, ret_der, ret_len);
	if (alg != QUOTE_ALG_ECC)
		return QUOTE_ERR_ARG;
	/* the cert that matches the EK we use: swtpm's persistent EK is P-384 */
	if (handle_exists(ctx, QUOTE_HANDLE_EK_ECC) == 1) {
		err = nv_read_all(ctx, QUOTE_NV_EK_CERT_ECC384, ret_der, ret_len);
		if (err != QUOTE_ERR_NOT_FOUND)
			return err;
	}
	err = nv_read_all(ctx, QUOTE_NV_EK_CERT_ECC, ret_der, ret_len);
	if (err == QUOTE_ERR_NOT_FOUND)
		err = nv_read_all(ctx, QUOTE_NV_EK_CERT_ECC384, ret_der, ret_len);
	return err;
}

/* ---- signing ---- */

static enum quote_err marshal_attestation(const TPM2B_ATTEST *a, const TPMT_SIGNATURE *s, struct quote_attestation *ret)
{
	size_t off = 0;
	if (a->size > sizeof ret->attest)
		return QUOTE_ERR_TOO_LARGE;
	memcpy(ret->attest, a->attestationData, a->size);
	ret->attest_len = a->size;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(s, ret->sig, sizeof ret->sig, &off) != TSS2_RC_SUCCESS)
		return QUOTE_ERR_FORMAT;
	ret->sig_len = off;
	return QUOTE_OK;
}

enum quote_err quote_sk_certify(struct quote_ctx *ctx, const uint8_t *qualifying, size_t qlen,
				struct quote_attestation *ret)
{
	TPM2B_DATA q;
	TPMT_SIG_SCHEME scheme;
	TPM2B_ATTEST *a = NULL;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	enum quote_err err;

	if (!ctx || !ret || qlen > QUOTE_NONCE_MAX || (qlen && !qualifying))
		return QUOTE_ERR_ARG;
	if ((err = quote_ak_ensure(ctx, NULL, NULL)) != QUOTE_OK || (err = quote_sk_ensure(ctx, NULL, NULL)) != QUOTE_OK)
		return err;
	memset(&q, 0, sizeof q);
	q.size = (UINT16)qlen;
	if (qlen)
		memcpy(q.buffer, qualifying, qlen);
	memset(&scheme, 0, sizeof scheme);
	scheme.scheme = TPM2_ALG_NULL;
	RUN(ctx, rc,
	    Esys_Certify_Async(ctx->esys, ctx->sk_tr, ctx->ak_tr, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &q,
			       &scheme),
	    Esys_Certify_Finish(ctx->esys, &a, &s));
	if ((err = tss_err(ctx, "TPM2_Certify", rc)) == QUOTE_OK)
		err = marshal_attestation(a, s, ret);
	Esys_Free(a);
	Esys_Free(s);
	return err;
}

enum quote_err quote_sk_sign(struct quote_ctx *ctx, const uint8_t digest[32], uint8_t ret_sig[64])
{
	TPM2B_DIGEST d;
	TPMT_SIG_SCHEME scheme;
	TPMT_TK_HASHCHECK check;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	enum quote_err err;
	const TPMS_SIGNATURE_ECDSA *e;

	if (!ctx || !digest || !ret_sig)
		return QUOTE_ERR_ARG;
	if ((err = quote_sk_ensure(ctx, NULL, NULL)) != QUOTE_OK)
		return err;
	memset(&d, 0, sizeof d);
	d.size = 32;
	memcpy(d.buffer, digest, 32);
	memset(&scheme, 0, sizeof scheme);
	scheme.scheme = TPM2_ALG_ECDSA;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	memset(&check, 0, sizeof check);
	check.tag = TPM2_ST_HASHCHECK;
	check.hierarchy = TPM2_RH_NULL;
	RUN(ctx, rc,
	    Esys_Sign_Async(ctx->esys, ctx->sk_tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &check),
	    Esys_Sign_Finish(ctx->esys, &s));
	if ((err = tss_err(ctx, "TPM2_Sign", rc)) != QUOTE_OK)
		goto out;
	e = &s->signature.ecdsa;
	if (s->sigAlg != TPM2_ALG_ECDSA || e->signatureR.size > 32 || e->signatureS.size > 32) {
		set_cause_msg(ctx, "TPM2_Sign returned an unexpected signature");
		err = QUOTE_ERR_FORMAT;
		goto out;
	}
	memset(ret_sig, 0, 64);
	memcpy(ret_sig + 32 - e->signatureR.size, e->signatureR.buffer, e->signatureR.size);
	memcpy(ret_sig + 64 - e->signatureS.size, e->signatureS.buffer, e->signatureS.size);
out:
	Esys_Free(s);
	return err;
}

/* ---- PCRs ---- */

enum quote_err quote_pcr_read(struct quote_ctx *ctx, const struct quote_pcr_selection *sel, struct quote_pcr_values *ret)
{
	struct quote_pcr_values v;
	struct quote_pcr_selection left;
	enum quote_err err = QUOTE_OK;

	if (!ctx || !sel || !ret || sel->n == 0 || sel->n > QUOTE_MAX_BANKS)
		return QUOTE_ERR_ARG;
	for (int attempt = 0; attempt < 4; attempt++) {
		uint32_t counter0 = 0;
		int first = 1, restart = 0;
		memset(&v, 0, sizeof v);
		v.sel = *sel;
		left = *sel;
		while (quote_pcr_selection_count(&left) > 0) {
			TPML_PCR_SELECTION in, *out = NULL;
			TPML_DIGEST *vals = NULL;
			UINT32 counter = 0;
			struct quote_pcr_selection got;
			size_t k = 0, progress = 0;
			TSS2_RC rc;

			if ((err = quote_sel_to_tpml(&left, &in)) != QUOTE_OK)
				return err;
			RUN(ctx, rc, Esys_PCR_Read_Async(ctx->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in),
			    Esys_PCR_Read_Finish(ctx->esys, &counter, &out, &vals));
			if ((err = tss_err(ctx, "TPM2_PCR_Read", rc)) != QUOTE_OK)
				return err;
			if (first)
				counter0 = counter;
			else if (counter != counter0)
				restart = 1;
			first = 0;
			err = quote_sel_from_tpml(out, &got);
			for (size_t b = 0; err == QUOTE_OK && b < got.n; b++) {
				int lb = quote_sel_bank(&left, got.bank[b].alg);
				size_t dl = quote_alg_digest_len(got.bank[b].alg);
				for (unsigned i = 0; i < QUOTE_PCR_COUNT; i++) {
					if (!(got.bank[b].mask & (1u << i)))
						continue;
					if (lb < 0 || !(left.bank[lb].mask & (1u << i)) || k >= vals->count ||
					    vals->digests[k].size != dl) {
						err = QUOTE_ERR_FORMAT;
						break;
					}
					memcpy(v.value[quote_sel_bank(sel, got.bank[b].alg)][i], vals->digests[k].buffer, dl);
					left.bank[lb].mask &= ~(1u << i);
					k++;
					progress++;
				}
			}
			Esys_Free(out);
			Esys_Free(vals);
			if (err != QUOTE_OK) {
				set_cause_msg(ctx, "TPM2_PCR_Read returned an inconsistent answer");
				return err;
			}
			if (!progress) {
				set_cause_msg(ctx, "TPM2_PCR_Read: PCRs not allocated in this TPM");
				return QUOTE_ERR_PCR_SELECTION;
			}
			if (restart)
				break;
		}
		if (!restart) {
			*ret = v;
			return QUOTE_OK;
		}
	}
	set_cause_msg(ctx, "PCRs kept changing while being read");
	return QUOTE_ERR_PCR_CHANGED;
}

enum quote_err quote_pcr_extend(struct quote_ctx *ctx, unsigned pcr, uint32_t type, const uint8_t *content,
				size_t content_len, struct quote_slog *log)
{
	struct quote_pcr_selection banks;
	TPML_DIGEST_VALUES dv;
	TSS2_RC rc;
	enum quote_err err;

	if (!ctx || pcr >= QUOTE_PCR_COUNT || (!content && content_len))
		return QUOTE_ERR_ARG;
	if ((err = quote_pcr_banks(ctx, &banks)) != QUOTE_OK)
		return err;
	memset(&dv, 0, sizeof dv);
	for (size_t b = 0; b < banks.n; b++) {
		struct quote_digest d;
		if ((err = quote_slog_event_digest(banks.bank[b].alg, type, content, content_len, &d)) != QUOTE_OK)
			return err;
		dv.digests[dv.count].hashAlg = d.alg;
		memcpy(&dv.digests[dv.count].digest, d.bytes, d.len);
		dv.count++;
	}
	RUN(ctx, rc, Esys_PCR_Extend_Async(ctx->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &dv),
	    Esys_PCR_Extend_Finish(ctx->esys));
	if ((err = tss_err(ctx, "TPM2_PCR_Extend", rc)) != QUOTE_OK)
		return err;
	if (log && (err = quote_slog_append(log, pcr, type, content, content_len, &banks)) != QUOTE_OK) {
		set_cause_msg(ctx, "PCR extended but the event log record could not be appended");
		return err;
	}
	return QUOTE_OK;
}

enum quote_err quote_quote(struct quote_ctx *ctx, const struct quote_pcr_selection *sel, const uint8_t *nonce,
			   size_t nonce_len, struct quote_result *ret)
{
	TPML_PCR_SELECTION tsel;
	TPM2B_DATA q;
	TPMT_SIG_SCHEME scheme;
	enum quote_err err;

	if (!ctx || !sel || !ret || !nonce || nonce_len == 0 || nonce_len > QUOTE_NONCE_MAX)
		return QUOTE_ERR_ARG;
	if ((err = quote_sel_to_tpml(sel, &tsel)) != QUOTE_OK)
		return err;
	if ((err = quote_ak_ensure(ctx, NULL, NULL)) != QUOTE_OK)
		return err;
	memset(&q, 0, sizeof q);
	q.size = (UINT16)nonce_len;
	memcpy(q.buffer, nonce, nonce_len);
	memset(&scheme, 0, sizeof scheme);
	scheme.scheme = TPM2_ALG_NULL; /* the AK's own scheme: ECDSA/SHA-256 */
	memset(ret, 0, sizeof *ret);
	for (unsigned attempt = 1; attempt <= ctx->retries; attempt++) {
		TPM2B_ATTEST *a = NULL;
		TPMT_SIGNATURE *s = NULL;
		struct quote_attest_info info;
		struct quote_digest d;
		TSS2_RC rc;

		RUN(ctx, rc,
		    Esys_Quote_Async(ctx->esys, ctx->ak_tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &q, &scheme, &tsel),
		    Esys_Quote_Finish(ctx->esys, &a, &s));
		if ((err = tss_err(ctx, "TPM2_Quote", rc)) == QUOTE_OK)
			err = marshal_attestation(a, s, &ret->q);
		Esys_Free(a);
		Esys_Free(s);
		if (err != QUOTE_OK)
			return err;
		if ((err = quote_pcr_read(ctx, sel, &ret->pcrs)) != QUOTE_OK)
			return err;
		if ((err = quote_attest_parse(ret->q.attest, ret->q.attest_len, &info, NULL)) != QUOTE_OK) {
			set_cause_msg(ctx, "the TPM's quote does not parse");
			return err;
		}
		if ((err = quote_pcr_digest(&ret->pcrs, sel, TPM2_ALG_SHA256, &d)) != QUOTE_OK)
			return err;
		ret->attempts = attempt;
		if (d.len == info.pcr_digest.len && memcmp(d.bytes, info.pcr_digest.bytes, d.len) == 0)
			return QUOTE_OK;
	}
	set_cause_msg(ctx, "PCR values changed between quote and read on every attempt");
	return QUOTE_ERR_PCR_CHANGED;
}

/* ---- ActivateCredential ---- */

enum quote_err quote_activate_credential(struct quote_ctx *ctx, const uint8_t *credential, size_t cred_len,
					 const uint8_t *secret, size_t secret_len, uint8_t ret_out[64], size_t *ret_len)
{
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	TPM2B_DIGEST *cert = NULL;
	TPM2B_PUBLIC *ekpub = NULL;
	ESYS_TR ek = ESYS_TR_NONE, sess = ESYS_TR_NONE, ek_auth = ESYS_TR_PASSWORD;
	int transient = 0;
	size_t off = 0;
	TSS2_RC rc;
	enum quote_err err;

	if (!ctx || !credential || !secret || !ret_out || !ret_len)
		return QUOTE_ERR_ARG;
	memset(&id, 0, sizeof id);
	memset(&es, 0, sizeof es);
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(credential, cred_len, &off, &id) != TSS2_RC_SUCCESS || off != cred_len)
		return QUOTE_ERR_FORMAT;
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret, secret_len, &off, &es) != TSS2_RC_SUCCESS ||
	    off != secret_len)
		return QUOTE_ERR_FORMAT;
	if ((err = quote_ak_ensure(ctx, NULL, NULL)) != QUOTE_OK)
		return err;
	if ((err = ek_load(ctx, ek_pick(ctx), &ek, &ekpub, &transient)) != QUOTE_OK)
		return err;
	if (!(ekpub->publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH)) {
		/* The TCG EK: authorised by PolicySecret(TPM_RH_ENDORSEMENT) in a policy session
		 * of the EK's name algorithm. */
		TPMT_SYM_DEF sym;
		TPM2B_NONCE empty_nonce;
		TPM2B_DIGEST cphash;
		TPM2B_NONCE ref;
		TPM2B_TIMEOUT *to = NULL;
		TPMT_TK_AUTH *tk = NULL;

		memset(&sym, 0, sizeof sym);
		sym.algorithm = TPM2_ALG_NULL;
		memset(&empty_nonce, 0, sizeof empty_nonce);
		memset(&cphash, 0, sizeof cphash);
		memset(&ref, 0, sizeof ref);
		RUN(ctx, rc,
		    Esys_StartAuthSession_Async(ctx->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
						ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, ekpub->publicArea.nameAlg),
		    Esys_StartAuthSession_Finish(ctx->esys, &sess));
		if ((err = tss_err(ctx, "TPM2_StartAuthSession", rc)) != QUOTE_OK) {
			sess = ESYS_TR_NONE;
			goto out;
		}
		RUN(ctx, rc,
		    Esys_PolicySecret_Async(ctx->esys, ESYS_TR_RH_ENDORSEMENT, sess, ESYS_TR_PASSWORD, ESYS_TR_NONE,
					    ESYS_TR_NONE, &empty_nonce, &cphash, &ref, 0),
		    Esys_PolicySecret_Finish(ctx->esys, &to, &tk));
		Esys_Free(to);
		Esys_Free(tk);
		if ((err = tss_err(ctx, "TPM2_PolicySecret", rc)) != QUOTE_OK)
			goto out;
		ek_auth = sess;
	}
	RUN(ctx, rc,
	    Esys_ActivateCredential_Async(ctx->esys, ctx->ak_tr, ek, ESYS_TR_PASSWORD, ek_auth, ESYS_TR_NONE, &id, &es),
	    Esys_ActivateCredential_Finish(ctx->esys, &cert));
	if (rc != TSS2_RC_SUCCESS) {
		err = tss_err(ctx, "TPM2_ActivateCredential", rc);
		/* integrity / value / size failures: the blob is not for this TPM + AK */
		if (err == QUOTE_ERR_TPM) {
			TSS2_RC base = rc & ~(TPM2_RC_N_MASK);
			if ((rc & TPM2_RC_FMT1) &&
			    ((rc & 0x3f) == (TPM2_RC_INTEGRITY & 0x3f) || (rc & 0x3f) == (TPM2_RC_VALUE & 0x3f) ||
			     (rc & 0x3f) == (TPM2_RC_SIZE & 0x3f) || (rc & 0x3f) == (TPM2_RC_ECC_POINT & 0x3f) ||
			     (rc & 0x3f) == (TPM2_RC_SCHEME & 0x3f) || (rc & 0x3f) == (TPM2_RC_KEY & 0x3f)))
				err = QUOTE_ERR_CREDENTIAL;
			(void)base;
		}
		goto out;
	}
	if (cert->size > 64) {
		err = QUOTE_ERR_FORMAT;
		goto out;
	}
	memcpy(ret_out, cert->buffer, cert->size);
	*ret_len = cert->size;
	err = QUOTE_OK;
out:
	if (cert) {
		OPENSSL_cleanse(cert, sizeof *cert);
		Esys_Free(cert);
	}
	flush(ctx, &sess);
	if (transient)
		flush(ctx, &ek);
	else
		tr_close(ctx, &ek);
	Esys_Free(ekpub);
	return err;
}
