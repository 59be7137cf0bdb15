/* libquote: everything sluice does with a TPM 2.0 (through tpm2-tss ESAPI), plus the pure
 * verification code the verifier and `sluice audit` need (no TPM required for those).
 *
 * Two halves:
 *   - TPM side (needs a struct quote_ctx): EK, AK, statement key, PCR read/extend, quote,
 *     certify, sign, activate credential. Opened by a TCTI string; every TPM command has a
 *     timeout; the TSS's own logging is silenced; the TSS2_RC of the last failure is kept
 *     in the context (quote_ctx_rc / quote_ctx_cause, with Tss2_RC_Decode text).
 *   - Pure side (no context): TPM2B_PUBLIC / TPMS_ATTEST / TPMT_SIGNATURE parsing and
 *     checks, PCR digests, the TCG PC Client event log (parse, replay, event-type checks),
 *     the sluice event log (CBOR encode/parse/replay), software TPM2_MakeCredential.
 *     These take an optional struct quote_diag that says exactly what failed.
 *
 * Wire formats: all TPM structures are exchanged as their TPM-marshalled bytes (big
 * endian, as tpm2-tools writes them with -o / -m / -s):
 *   public key  = TPM2B_PUBLIC (2-byte size + TPMT_PUBLIC)
 *   quote/cert  = TPMS_ATTEST (the contents of TPM2B_ATTEST, without its size prefix;
 *                 exactly what `tpm2_quote -m` writes and `tpm2_checkquote -m` reads)
 *   signature   = TPMT_SIGNATURE (`tpm2_quote -s`, `tpm2_checkquote -s`)
 *   name        = TPM2B_NAME contents: 2-byte nameAlg + digest of TPMT_PUBLIC
 *   credential  = TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET (each with its size prefix)
 * Algorithm ids are TPM_ALG_ID values (QUOTE_ALG_SHA256 = 0x000B, ...).
 *
 * Ownership: out-parameters named ret* are written only on success, except the large
 * caller-owned result structs of quote_quote and quote_sk_certify, which are used as scratch
 * and are unspecified on failure; "uint8_t **ret_x" outputs are malloc'd and freed by the
 * caller with free(). Destructors accept NULL.
 * Foreign types (ESYS_*, TPM2B_*, EVP_*) never appear here. Not thread-safe per context;
 * distinct contexts and all pure functions may be used from different threads.
 */
#ifndef SLUICE_QUOTE_H
#define SLUICE_QUOTE_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------
 * Errors (stable values)
 * ------------------------------------------------------------------------------------- */
enum quote_err {
	QUOTE_OK = 0,
	QUOTE_ERR_ARG = 1,           /* invalid argument (NULL, out of range, bad string) */
	QUOTE_ERR_NOMEM = 2,
	QUOTE_ERR_TCTI = 3,          /* the TCTI could not be loaded or opened */
	QUOTE_ERR_TPM = 4,           /* a TPM command failed; cause in quote_ctx_rc/_cause */
	QUOTE_ERR_TIMEOUT = 5,       /* the TPM did not answer within the timeout */
	QUOTE_ERR_NOT_FOUND = 6,     /* persistent object / NV index / EK cert absent */
	QUOTE_ERR_HANDLE_IN_USE = 7, /* a configured persistent handle holds a foreign object */
	QUOTE_ERR_FORMAT = 8,        /* malformed input structure (truncated, bad tag, ...) */
	QUOTE_ERR_TOO_LARGE = 9,     /* input above its stated maximum */
	QUOTE_ERR_UNSUPPORTED = 10,  /* algorithm, curve, key type or event not supported */
	QUOTE_ERR_CRYPTO = 11,       /* OpenSSL failure (cause: OpenSSL error code) */
	QUOTE_ERR_SIGNATURE = 12,    /* a signature does not verify */
	QUOTE_ERR_MAGIC = 13,        /* TPMS_ATTEST.magic != TPM_GENERATED_VALUE */
	QUOTE_ERR_ATTEST_TYPE = 14,  /* TPMS_ATTEST of the wrong type (quote vs certify) */
	QUOTE_ERR_NONCE = 15,        /* extraData differs from the expected nonce */
	QUOTE_ERR_PCR_SELECTION = 16,/* quoted selection differs from the supplied PCR values */
	QUOTE_ERR_PCR_DIGEST = 17,   /* quoted PCR digest differs from the supplied PCR values */
	QUOTE_ERR_KEY_ATTRS = 18,    /* key attributes / template not acceptable for its role */
	QUOTE_ERR_NAME = 19,         /* a name (signer, certified object) does not match */
	QUOTE_ERR_EVENTLOG = 20,     /* event log malformed */
	QUOTE_ERR_REPLAY = 21,       /* event log replay does not match the PCR values */
	QUOTE_ERR_EVENT_TYPE = 22,   /* event type not allowed on that PCR / data not matching
				      * its digest ("event type not covered by the digest") */
	QUOTE_ERR_PCR_CHANGED = 23,  /* PCRs kept changing between read and quote (retries spent) */
	QUOTE_ERR_CREDENTIAL = 24,   /* ActivateCredential refused the blob (other TPM/AK, tampered) */
	QUOTE_ERR_IO = 25,           /* file / socket error (cause: errno) */
};

const char *quote_strerror(enum quote_err err);

/* ---------------------------------------------------------------------------------------
 * Algorithms, limits, small value types
 * ------------------------------------------------------------------------------------- */
#define QUOTE_ALG_RSA 0x0001
#define QUOTE_ALG_SHA1 0x0004
#define QUOTE_ALG_SHA256 0x000B
#define QUOTE_ALG_SHA384 0x000C
#define QUOTE_ALG_SHA512 0x000D
#define QUOTE_ALG_SM3_256 0x0012
#define QUOTE_ALG_ECC 0x0023
#define QUOTE_ALG_ECDSA 0x0018
#define QUOTE_ALG_RSASSA 0x0014
#define QUOTE_ALG_RSAPSS 0x0016

#define QUOTE_ECC_NIST_P256 0x0003
#define QUOTE_ECC_NIST_P384 0x0004

#define QUOTE_PCR_COUNT 24       /* PCRs 0..23 (PC Client) */
#define QUOTE_MAX_BANKS 5        /* sha1, sha256, sha384, sha512, sm3_256 */
#define QUOTE_MAX_DIGEST 64      /* bytes, SHA-512 */
#define QUOTE_NAME_MAX 66        /* 2-byte nameAlg + SHA-512 */
#define QUOTE_PUBLIC_MAX 1280    /* marshalled TPM2B_PUBLIC, with room for RSA-4096 */
#define QUOTE_ATTEST_MAX 2048    /* marshalled TPMS_ATTEST */
#define QUOTE_SIG_MAX 1024       /* marshalled TPMT_SIGNATURE */
#define QUOTE_NONCE_MAX 64       /* TPM2B_DATA for qualifying data */
#define QUOTE_EVENTLOG_MAX (16u << 20)  /* largest TCG / sluice event log accepted */
#define QUOTE_EVENT_DATA_MAX (1u << 20) /* largest single event's data */
#define QUOTE_CERT_MAX 4096      /* EK certificate DER */

/* Default persistent handles. */
#define QUOTE_HANDLE_EK_RSA 0x81010001u
#define QUOTE_HANDLE_EK_ECC 0x81010016u    /* where swtpm_setup persists its P-384 EK */
#define QUOTE_HANDLE_AK 0x81010002u
#define QUOTE_HANDLE_SK 0x81010003u        /* statement key */
/* EK certificate NV indices (TCG EK Credential Profile; 0x01c00016 is swtpm's P-384). */
#define QUOTE_NV_EK_CERT_RSA 0x01c00002u
#define QUOTE_NV_EK_CERT_ECC 0x01c0000au
#define QUOTE_NV_EK_CERT_ECC384 0x01c00016u

/* Algorithm names as tpm2-tools spells them ("sha1", "sha256", "sha384", "sha512",
 * "sm3_256"); NULL / 0 when unknown. */
const char *quote_alg_name(uint16_t alg);
uint16_t quote_alg_from_name(const char *name);
/* Digest length of a hash algorithm, 0 if not a supported hash. */
size_t quote_alg_digest_len(uint16_t alg);

struct quote_digest {
	uint16_t alg;
	size_t len;
	uint8_t bytes[QUOTE_MAX_DIGEST];
};

/* Exact detail of a failure, filled by the pure functions (and the TPM ones where useful)
 * when the caller passes one. Fields not concerned are -1 / 0 / empty. */
struct quote_diag {
	char detail[256];   /* one line, e.g. "PCR 4 (sha256) differs after event 12" */
	int pcr;            /* PCR index concerned, or -1 */
	long event;         /* event index (0-based, in log order) concerned, or -1 */
	uint16_t alg;       /* bank concerned, or 0 */
	size_t digest_len;  /* length of want/got when set */
	uint8_t want[QUOTE_MAX_DIGEST]; /* the expected value (e.g. quoted PCR) */
	uint8_t got[QUOTE_MAX_DIGEST];  /* the computed value (e.g. replayed PCR) */
	unsigned long cause;            /* OpenSSL error code, errno or TSS2_RC, or 0 */
};

/* ---------------------------------------------------------------------------------------
 * PCR selections and values
 * ------------------------------------------------------------------------------------- */
struct quote_pcr_bank_sel {
	uint16_t alg;   /* hash algorithm of the bank */
	uint32_t mask;  /* bit i = PCR i, i < QUOTE_PCR_COUNT */
};
struct quote_pcr_selection {
	size_t n;       /* banks used, <= QUOTE_MAX_BANKS; each alg appears once */
	struct quote_pcr_bank_sel bank[QUOTE_MAX_BANKS];
};

/* Parse "sha256:0,1,2,3,4,5,6,7,15" (tpm2-tools syntax): banks separated by '+', PCRs by
 * ',', ranges "0-7" and "all" accepted, e.g. "sha1:0-7+sha256:all". Bank order is kept. */
enum quote_err quote_pcr_selection_parse(const char *s, struct quote_pcr_selection *ret);
/* The inverse, canonical form ("sha256:0,1,2"); QUOTE_ERR_TOO_LARGE if buf is too small. */
enum quote_err quote_pcr_selection_format(const struct quote_pcr_selection *sel, char *buf, size_t len);
/* Number of PCRs selected over all banks. */
size_t quote_pcr_selection_count(const struct quote_pcr_selection *sel);

struct quote_pcr_values {
	struct quote_pcr_selection sel;  /* which values below are meaningful */
	/* value[b][i]: bank sel.bank[b], PCR i; digest length = quote_alg_digest_len(alg) */
	uint8_t value[QUOTE_MAX_BANKS][QUOTE_PCR_COUNT][QUOTE_MAX_DIGEST];
};

/* Value of one PCR, NULL if (alg, pcr) is not in v->sel. */
const uint8_t *quote_pcr_value(const struct quote_pcr_values *v, uint16_t alg, unsigned pcr);
/* Set one PCR value, adding (alg, pcr) to the selection (QUOTE_ERR_ARG if no bank slot). */
enum quote_err quote_pcr_value_set(struct quote_pcr_values *v, uint16_t alg, unsigned pcr,
				   const uint8_t *digest, size_t len);
/* Initialise v for sel with the reset values (all zero; PCRs 17-22 all 0xff per PC Client). */
void quote_pcr_values_init(struct quote_pcr_values *v, const struct quote_pcr_selection *sel);
/* Software extend: value = H(value || digest) for (alg, pcr), which must be selected. */
enum quote_err quote_pcr_value_extend(struct quote_pcr_values *v, uint16_t alg, unsigned pcr,
				      const uint8_t *digest, size_t len);
/* The TPM2_Quote pcrDigest: hash_alg over the concatenation of the values selected by sel
 * (bank order as in sel, PCR ascending). QUOTE_ERR_PCR_SELECTION if v lacks one of them. */
enum quote_err quote_pcr_digest(const struct quote_pcr_values *v, const struct quote_pcr_selection *sel,
				uint16_t hash_alg, struct quote_digest *ret);

/* The PCR values file that `tpm2_quote -o` writes and `tpm2_checkquote -f` reads (tpm2-tools'
 * default "serialized" format: TPML_PCR_SELECTION, UINT32 n, TPML_DIGEST[n] as C structs of a
 * little-endian host). */
enum quote_err quote_pcrs_file_encode(const struct quote_pcr_values *v, uint8_t **ret, size_t *ret_len);
/* Parse such a file (or the "values" format: the selected digests concatenated, bank order
 * of sel, PCR ascending) for the selection sel taken from the quote; a serialized file
 * must carry exactly sel (else QUOTE_ERR_PCR_SELECTION). Fills ret. */
enum quote_err quote_pcrs_file_parse(const uint8_t *buf, size_t len, const struct quote_pcr_selection *sel,
				     struct quote_pcr_values *ret);

/* ---------------------------------------------------------------------------------------
 * Opening a TPM
 * ------------------------------------------------------------------------------------- */
struct quote_ctx;

struct quote_cfg {
	/* "device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321", "swtpm:path=SOCK",
	 * "mssim:...", or any tctildr string. NULL: "device:/dev/tpmrm0". */
	const char *tcti;
	unsigned timeout_ms;  /* per TPM command; 0: 30000 */
	uint32_t ak_handle;   /* 0: QUOTE_HANDLE_AK */
	uint32_t sk_handle;   /* 0: QUOTE_HANDLE_SK */
	/* The EK used by ActivateCredential: QUOTE_ALG_RSA, QUOTE_ALG_ECC, or 0 = RSA if an RSA
	 * EK is persistent (else created from the TCG template), else ECC. */
	uint16_t ek_alg;
	unsigned quote_retries; /* PCR-changed retries of quote_quote; 0: 3 */
};

enum quote_err quote_ctx_new(const struct quote_cfg *cfg, struct quote_ctx **ret);
/* The same, and when opening fails diag (may be NULL) gets the reason: detail = "cannot open
 * TCTI ...: <Tss2_RC_Decode text>", cause = the TSS2_RC. */
enum quote_err quote_ctx_new_diag(const struct quote_cfg *cfg, struct quote_ctx **ret, struct quote_diag *diag);
/* Flushes anything transient still loaded, closes the TCTI. */
void quote_ctx_free(struct quote_ctx *ctx);
/* Last failure in this context: the raw TSS2_RC (0 if none or not a TSS error), and a line
 * "<TPM command>: <Tss2_RC_Decode text>" (or the errno / OpenSSL text). Never NULL. */
uint32_t quote_ctx_rc(const struct quote_ctx *ctx);
const char *quote_ctx_cause(const struct quote_ctx *ctx);

struct quote_tpm_info {
	char manufacturer[5];       /* TPM_PT_MANUFACTURER as 4 ASCII chars, e.g. "IBM " */
	char vendor[17];            /* TPM_PT_VENDOR_STRING_1..4 */
	uint32_t firmware[2];       /* TPM_PT_FIRMWARE_VERSION_1, _2 */
	uint32_t spec_level, spec_revision, spec_year;
	struct quote_pcr_selection banks; /* active PCR banks with their allocated PCRs */
	int ek_rsa_persistent;      /* 1 if QUOTE_HANDLE_EK_RSA holds a key */
	int ek_ecc_persistent;      /* 1 if an ECC EK is persistent (P-256 or P-384 handle) */
	int ek_rsa_cert, ek_ecc_cert; /* 1 if the EK certificate NV index exists */
	int ak_present;             /* 1 if the configured AK handle holds our AK */
	int sk_present;             /* 1 if the configured statement-key handle holds our key */
};
enum quote_err quote_tpm_info(struct quote_ctx *ctx, struct quote_tpm_info *ret);

/* ---------------------------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------------------------- */
struct quote_key {
	uint8_t pub[QUOTE_PUBLIC_MAX];  /* marshalled TPM2B_PUBLIC */
	size_t pub_len;
	uint8_t name[QUOTE_NAME_MAX];   /* TPM name (nameAlg || H(TPMT_PUBLIC)) */
	size_t name_len;
	uint32_t handle;                /* persistent handle, or 0 if transient */
};

/* EK public of the given type (QUOTE_ALG_RSA or QUOTE_ALG_ECC): the persistent EK if
 * present, else created from the TCG default template (RSA-2048, ECC P-256) and flushed. */
enum quote_err quote_ek_public(struct quote_ctx *ctx, uint16_t alg, struct quote_key *ret);
/* EK certificate (DER) from its NV index: RSA 0x01c00002; ECC 0x01c0000a then 0x01c00016.
 * QUOTE_ERR_NOT_FOUND if absent. */
enum quote_err quote_ek_cert(struct quote_ctx *ctx, uint16_t alg, uint8_t **ret_der, size_t *ret_len);

/* The AK: a restricted ECC P-256 ECDSA/SHA-256 signing key (fixedTPM, fixedParent,
 * sensitiveDataOrigin, userWithAuth, restricted, sign), a primary of the endorsement
 * hierarchy, persisted at cfg.ak_handle. Loaded if present (and checked to be an AK;
 * QUOTE_ERR_HANDLE_IN_USE if the handle holds something else), else created and persisted
 * (needs the owner hierarchy's empty auth). *ret_created (may be NULL) says which. If the
 * TPM refuses to persist it (owner authorisation set, no NV space), the same key is kept as
 * a transient object for this context (ret->handle = 0, flushed by quote_ctx_free). */
enum quote_err quote_ak_ensure(struct quote_ctx *ctx, struct quote_key *ret, int *ret_created);

/* The statement key: an unrestricted ECC P-256 ECDSA/SHA-256 signing key (fixedTPM,
 * fixedParent, sensitiveDataOrigin, userWithAuth, sign), persisted at cfg.sk_handle;
 * same create-or-load rules as the AK. */
enum quote_err quote_sk_ensure(struct quote_ctx *ctx, struct quote_key *ret, int *ret_created);

/* Attestation structures as produced by the TPM. */
struct quote_attestation {
	uint8_t attest[QUOTE_ATTEST_MAX];  /* marshalled TPMS_ATTEST */
	size_t attest_len;
	uint8_t sig[QUOTE_SIG_MAX];        /* marshalled TPMT_SIGNATURE */
	size_t sig_len;
};

/* TPM2_Certify of the statement key by the AK (both ensured first), qualifying data =
 * qualifying (may be NULL/0, at most QUOTE_NONCE_MAX bytes). */
enum quote_err quote_sk_certify(struct quote_ctx *ctx, const uint8_t *qualifying, size_t qlen,
				struct quote_attestation *ret);

/* TPM2_Sign with the statement key over a SHA-256 digest: the ECDSA signature as raw
 * r || s (32 + 32 bytes, left-padded), as COSE ES256 wants it. */
enum quote_err quote_sk_sign(struct quote_ctx *ctx, const uint8_t digest[32], uint8_t ret_sig[64]);

/* Remove the AK / statement key from their persistent handles (tests, re-provisioning). */
enum quote_err quote_key_evict(struct quote_ctx *ctx, uint32_t handle);

/* ---------------------------------------------------------------------------------------
 * PCRs and quotes
 * ------------------------------------------------------------------------------------- */
/* Active banks and their allocated PCRs. */
enum quote_err quote_pcr_banks(struct quote_ctx *ctx, struct quote_pcr_selection *ret);
/* Read the PCRs of sel (several PCR_Read calls as needed; consistent update counter). */
enum quote_err quote_pcr_read(struct quote_ctx *ctx, const struct quote_pcr_selection *sel,
			      struct quote_pcr_values *ret);

struct quote_result {
	struct quote_attestation q;      /* TPMS_ATTEST (type quote) + TPMT_SIGNATURE by the AK */
	struct quote_pcr_values pcrs;    /* values matching the quoted digest */
	unsigned attempts;               /* 1 unless PCRs changed in between */
};
/* TPM2_Quote with the AK (ensured first) over sel, qualifying data = nonce (1..64 bytes),
 * signature scheme ECDSA/SHA-256. The PCR values are read in the same step and checked
 * against the quoted pcrDigest; if they changed in between it retries (cfg.quote_retries),
 * then QUOTE_ERR_PCR_CHANGED. */
enum quote_err quote_quote(struct quote_ctx *ctx, const struct quote_pcr_selection *sel, const uint8_t *nonce,
			   size_t nonce_len, struct quote_result *ret);

/* ActivateCredential: recover the secret MakeCredential wrapped for (EK of cfg.ek_alg, AK
 * name). credential = marshalled TPM2B_ID_OBJECT, secret = marshalled TPM2B_ENCRYPTED_SECRET.
 * The EK is authorised with a PolicySecret(TPM_RH_ENDORSEMENT) session. The recovered
 * certInfo (at most 64 bytes) goes to ret_out; *ret_len its length. Wipe it after use.
 * QUOTE_ERR_CREDENTIAL if the TPM refuses the blob (integrity failure: wrong TPM / AK). */
enum quote_err quote_activate_credential(struct quote_ctx *ctx, const uint8_t *credential, size_t cred_len,
					 const uint8_t *secret, size_t secret_len, uint8_t ret_out[64],
					 size_t *ret_len);

/* ---------------------------------------------------------------------------------------
 * Sluice event log (DESIGN.md): a CBOR array of records
 *   {0: recnum, 1: pcr, 2: [[alg, digest], ...], 3: type, 4: content}
 * modelled on TCG's Canonical Event Log. The digest extended into each bank is
 *   H_alg( uint32_be(type) || content )
 * so the type is covered by the digest (no "event type not covered" games).
 * ------------------------------------------------------------------------------------- */
enum quote_slog_type {
	QUOTE_SLOG_ROOTFS = 1,    /* content: the rootfs measurement record (libmeasure) */
	QUOTE_SLOG_RELEASED = 2,  /* content: the verdict's statement hash; seals the phase */
	QUOTE_SLOG_NOTE = 3,      /* content: free-form bytes (tests, operators) */
};

struct quote_slog_rec {
	uint64_t recnum;
	unsigned pcr;
	uint32_t type;
	size_t n_digests;
	struct quote_digest digests[QUOTE_MAX_BANKS];
	const uint8_t *content;   /* borrowed from the log */
	size_t content_len;
};

struct quote_slog;
enum quote_err quote_slog_new(struct quote_slog **ret);
void quote_slog_free(struct quote_slog *log);
/* Parse (bounded: QUOTE_EVENTLOG_MAX bytes; deterministic or not, definite lengths). An
 * empty input is an empty log. Records must be numbered 0, 1, 2, ... */
enum quote_err quote_slog_parse(const uint8_t *buf, size_t len, struct quote_slog **ret, struct quote_diag *diag);
/* Deterministic CBOR of the whole log. */
enum quote_err quote_slog_encode(const struct quote_slog *log, uint8_t **ret, size_t *ret_len);
size_t quote_slog_count(const struct quote_slog *log);
const struct quote_slog_rec *quote_slog_get(const struct quote_slog *log, size_t i);
/* Append a record computing its digests for the banks in sel (recnum = count). */
enum quote_err quote_slog_append(struct quote_slog *log, unsigned pcr, uint32_t type, const uint8_t *content,
				 size_t content_len, const struct quote_pcr_selection *banks);
/* The digest of one record for alg: H_alg(uint32_be(type) || content). */
enum quote_err quote_slog_event_digest(uint16_t alg, uint32_t type, const uint8_t *content, size_t len,
				       struct quote_digest *ret);
/* Check every record's digests against its type + content (QUOTE_ERR_EVENT_TYPE names the
 * record), then extend them onto v (for the banks/PCRs selected in v; others ignored). */
enum quote_err quote_slog_replay(const struct quote_slog *log, struct quote_pcr_values *v, struct quote_diag *diag);

/* TPM side: extend PCR pcr in every active bank with the record's digest and append the
 * record to log (only after the TPM accepted the extend). log may be NULL (no record). */
enum quote_err quote_pcr_extend(struct quote_ctx *ctx, unsigned pcr, uint32_t type, const uint8_t *content,
				size_t content_len, struct quote_slog *log);

/* ---------------------------------------------------------------------------------------
 * TCG PC Client firmware event log (crypto-agile TCG_PCR_EVENT2 after the SHA-1
 * Spec ID Event; a SHA-1-only legacy log is accepted too).
 * ------------------------------------------------------------------------------------- */
struct quote_tcg_event {
	size_t index;             /* 0-based position (the Spec ID header event is index 0) */
	size_t offset;            /* byte offset of the event in the log */
	unsigned pcr;
	uint32_t type;            /* EV_* */
	size_t n_digests;
	struct quote_digest digests[QUOTE_MAX_BANKS];
	const uint8_t *data;      /* borrowed from the log buffer passed to parse */
	size_t data_len;
};

struct quote_eventlog;
/* Parse a binary_bios_measurements log; buf must outlive the result (events borrow it).
 * Bounded by QUOTE_EVENTLOG_MAX / QUOTE_EVENT_DATA_MAX; truncated or inconsistent input
 * gives QUOTE_ERR_EVENTLOG with diag->event and offset in detail. */
enum quote_err quote_eventlog_parse(const uint8_t *buf, size_t len, struct quote_eventlog **ret,
				    struct quote_diag *diag);
void quote_eventlog_free(struct quote_eventlog *log);
size_t quote_eventlog_count(const struct quote_eventlog *log);
const struct quote_tcg_event *quote_eventlog_get(const struct quote_eventlog *log, size_t i);
/* Banks the log declares in its Spec ID event (mask unused: 0). */
void quote_eventlog_banks(const struct quote_eventlog *log, struct quote_pcr_selection *ret);
/* "EV_POST_CODE", "EV_EFI_BOOT_SERVICES_APPLICATION", ...; "EV_UNKNOWN" if unknown. */
const char *quote_event_type_name(uint32_t type);
/* Replay onto v (call quote_pcr_values_init first): every event except EV_NO_ACTION
 * extends its PCR in every bank selected in v; a StartupLocality EV_NO_ACTION sets PCR 0's
 * initial value. QUOTE_ERR_EVENTLOG if an event lacks a digest for a selected bank. */
enum quote_err quote_eventlog_replay(const struct quote_eventlog *log, struct quote_pcr_values *v,
				     struct quote_diag *diag);
/* The "event type is not covered by the digest" check, for the PCRs in pcr_mask: each
 * event's type must be one the PC Client spec allows on that PCR, and where the spec
 * defines the digest as the hash of the event data (EV_SEPARATOR, EV_EFI_VARIABLE_*,
 * EV_ACTION, EV_EFI_ACTION, EV_EFI_GPT_EVENT, EV_OMIT_BOOT_DEVICE_EVENTS) the data must
 * hash to it; EV_SEPARATOR data must be 00000000 or ffffffff; a PCR 0-7 in the mask that has
 * events must have an EV_SEPARATOR. First offending event in diag; QUOTE_ERR_EVENT_TYPE. */
enum quote_err quote_eventlog_check_types(const struct quote_eventlog *log, uint32_t pcr_mask,
					  struct quote_diag *diag);

/* Full replay check for the verifier: start from reset values, replay the TCG log (may be
 * NULL), then the sluice log (may be NULL), and compare with quoted for every PCR in
 * quoted->sel. QUOTE_ERR_REPLAY on the first mismatching (bank order, PCR ascending) PCR:
 * diag gets pcr, alg, want (quoted), got (replayed), and event = index of the last event
 * that extended that PCR (TCG index; sluice records count on after the TCG events).
 * QUOTE_ERR_EVENT_TYPE if a TCG event extends a PCR that the sluice log extends: that PCR
 * is sluice's alone (otherwise old sluice records could be passed off as firmware events,
 * hiding a sealed phase). diag names the PCR and the TCG event. */
enum quote_err quote_replay_check(const struct quote_eventlog *tcg, const struct quote_slog *slog,
				  const struct quote_pcr_values *quoted, struct quote_diag *diag);

/* ---------------------------------------------------------------------------------------
 * Keys and attestation structures, pure verification
 * ------------------------------------------------------------------------------------- */
struct quote_public_info {
	uint16_t type;            /* QUOTE_ALG_RSA or QUOTE_ALG_ECC */
	uint16_t name_alg;
	uint32_t attributes;      /* TPMA_OBJECT bits (QUOTE_ATTR_*) */
	uint16_t scheme;          /* QUOTE_ALG_ECDSA, _RSASSA, _RSAPSS, or 0 (TPM_ALG_NULL) */
	uint16_t scheme_hash;
	uint16_t curve;           /* ECC: QUOTE_ECC_NIST_P256 ...; RSA: 0 */
	uint16_t rsa_bits;        /* RSA: key bits; ECC: 0 */
	uint16_t sym_alg, sym_bits; /* symmetric of a storage/EK key; 0 if TPM_ALG_NULL */
	size_t auth_policy_len;
	uint8_t auth_policy[QUOTE_MAX_DIGEST];
	uint8_t name[QUOTE_NAME_MAX];
	size_t name_len;
};
#define QUOTE_ATTR_FIXED_TPM (1u << 1)
#define QUOTE_ATTR_ST_CLEAR (1u << 2)
#define QUOTE_ATTR_FIXED_PARENT (1u << 4)
#define QUOTE_ATTR_SENSITIVE_DATA_ORIGIN (1u << 5)
#define QUOTE_ATTR_USER_WITH_AUTH (1u << 6)
#define QUOTE_ATTR_ADMIN_WITH_POLICY (1u << 7)
#define QUOTE_ATTR_NO_DA (1u << 10)
#define QUOTE_ATTR_RESTRICTED (1u << 16)
#define QUOTE_ATTR_DECRYPT (1u << 17)
#define QUOTE_ATTR_SIGN (1u << 18)

/* Parse a marshalled TPM2B_PUBLIC (bounded, every field checked; RSA and ECC only) and
 * compute its name. */
enum quote_err quote_public_parse(const uint8_t *pub, size_t len, struct quote_public_info *ret,
				  struct quote_diag *diag);
/* The public key as DER SubjectPublicKeyInfo (load with d2i_PUBKEY) or PEM text. */
enum quote_err quote_public_to_der(const uint8_t *pub, size_t len, uint8_t **ret_der, size_t *ret_len);
enum quote_err quote_public_to_pem(const uint8_t *pub, size_t len, char **ret_pem);
/* AK role check: fixedTPM, fixedParent, sensitiveDataOrigin, restricted, sign, not
 * decrypt, a signing scheme with a hash (or NULL scheme), RSA >= 2048 or ECC P-256/P-384.
 * QUOTE_ERR_KEY_ATTRS with the first missing attribute in diag. */
enum quote_err quote_check_ak(const struct quote_public_info *ak, struct quote_diag *diag);
/* Statement-key role check: fixedTPM, fixedParent, sensitiveDataOrigin, sign, not
 * decrypt, not restricted, ECC P-256 (ES256). */
enum quote_err quote_check_sk(const struct quote_public_info *sk, struct quote_diag *diag);

struct quote_attest_info {
	uint16_t type;                 /* QUOTE_ST_ATTEST_QUOTE or QUOTE_ST_ATTEST_CERTIFY */
	uint8_t signer[QUOTE_NAME_MAX];/* qualifiedSigner */
	size_t signer_len;
	uint8_t extra[QUOTE_NONCE_MAX];/* extraData (the nonce) */
	size_t extra_len;
	uint64_t clock;
	uint32_t reset_count, restart_count;
	uint8_t safe;
	uint64_t firmware_version;
	/* type quote: */
	struct quote_pcr_selection pcr_sel;
	struct quote_digest pcr_digest; /* alg = 0: the length tells; verify sets it */
	/* type certify: */
	uint8_t certified_name[QUOTE_NAME_MAX];
	size_t certified_name_len;
	uint8_t certified_qname[QUOTE_NAME_MAX];
	size_t certified_qname_len;
};
#define QUOTE_ST_ATTEST_CERTIFY 0x8017
#define QUOTE_ST_ATTEST_QUOTE 0x8018

/* Parse a marshalled TPMS_ATTEST (bounded; magic must be TPM_GENERATED_VALUE; types quote
 * and certify; other types QUOTE_ERR_ATTEST_TYPE). Trailing bytes are QUOTE_ERR_FORMAT. */
enum quote_err quote_attest_parse(const uint8_t *attest, size_t len, struct quote_attest_info *ret,
				  struct quote_diag *diag);
/* Verify a marshalled TPMT_SIGNATURE (ECDSA or RSASSA/RSAPSS) over msg with the key in pub
 * (TPM2B_PUBLIC): hashes msg with the signature's hash algorithm. */
enum quote_err quote_signature_verify(const uint8_t *pub, size_t pub_len, const uint8_t *msg, size_t msg_len,
				      const uint8_t *sig, size_t sig_len, struct quote_diag *diag);
/* Convert a marshalled ECDSA TPMT_SIGNATURE to raw r || s of the curve size (64 for P-256). */
enum quote_err quote_signature_ecdsa_raw(const uint8_t *sig, size_t sig_len, uint8_t *ret_rs, size_t cap,
					 size_t *ret_len);

/* Everything the verifier checks about a quote:
 *   ak_pub parses and passes quote_check_ak; the signature verifies; magic; type quote;
 *   extraData == nonce (constant time); the quoted selection equals pcrs->sel (same banks
 *   in the same order, same PCRs); the quoted pcrDigest equals the digest of pcrs (hash of
 *   the signature scheme). ret_info (may be NULL) gets the parsed quote. */
enum quote_err quote_verify(const uint8_t *ak_pub, size_t ak_pub_len, const uint8_t *attest, size_t attest_len,
			    const uint8_t *sig, size_t sig_len, const uint8_t *nonce, size_t nonce_len,
			    const struct quote_pcr_values *pcrs, struct quote_attest_info *ret_info,
			    struct quote_diag *diag);

/* Everything the verifier checks about the statement key's certification: ak_pub passes
 * quote_check_ak; the signature verifies; magic; type certify; extraData == qualifying
 * (qlen may be 0); the certified name equals the name of sk_pub; sk_pub passes
 * quote_check_sk. */
enum quote_err quote_certify_verify(const uint8_t *ak_pub, size_t ak_pub_len, const uint8_t *attest,
				    size_t attest_len, const uint8_t *sig, size_t sig_len, const uint8_t *sk_pub,
				    size_t sk_pub_len, const uint8_t *qualifying, size_t qlen,
				    struct quote_attest_info *ret_info, struct quote_diag *diag);

/* Software TPM2_MakeCredential (TPM 2.0 Part 1 §24): a fresh seed is encrypted to the EK
 * (RSA: OAEP with label "IDENTITY\0"; ECC: one-pass ECDH, KDFe), the credential is wrapped
 * with AES-128-CFB (KDFa "STORAGE") and an HMAC (KDFa "INTEGRITY") over it and objname.
 * ek_pub: TPM2B_PUBLIC of the EK (its symmetric + nameAlg are used). objname: the AK's name.
 * credential: 1..64 bytes (e.g. a 32-byte key). Outputs: marshalled TPM2B_ID_OBJECT and
 * TPM2B_ENCRYPTED_SECRET, for quote_activate_credential / tpm2_activatecredential. */
enum quote_err quote_make_credential(const uint8_t *ek_pub, size_t ek_pub_len, const uint8_t *objname,
				     size_t objname_len, const uint8_t *credential, size_t cred_len,
				     uint8_t **ret_id_object, size_t *ret_id_len, uint8_t **ret_secret,
				     size_t *ret_secret_len, struct quote_diag *diag);
/* The same with the EK prepared once, for callers that wrap to one EK again and again (the
 * verifier, at every appraisal of an enrolled host): quote_ek_new unmarshals ek_pub, makes
 * quote_make_credential's checks on it (restricted decryption key, AES-CFB symmetric, key
 * usable) and builds its OpenSSL key; quote_ek_make_credential then only wraps. The output is
 * quote_make_credential's for the same EK (which is quote_ek_new + quote_ek_make_credential +
 * quote_ek_free). A prepared EK is immutable: one may be used by several threads at once.
 * quote_ek_free accepts NULL. */
struct quote_ek;
enum quote_err quote_ek_new(const uint8_t *ek_pub, size_t ek_pub_len, struct quote_ek **ret, struct quote_diag *diag);
enum quote_err quote_ek_make_credential(const struct quote_ek *ek, const uint8_t *objname, size_t objname_len,
					const uint8_t *credential, size_t cred_len, uint8_t **ret_id_object,
					size_t *ret_id_len, uint8_t **ret_secret, size_t *ret_secret_len,
					struct quote_diag *diag);
void quote_ek_free(struct quote_ek *ek);
/* The file format of `tpm2_makecredential -o` / `tpm2_activatecredential -i`: magic
 * 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
enum quote_err quote_credential_file_encode(const uint8_t *id_object, size_t id_len, const uint8_t *secret,
					    size_t secret_len, uint8_t **ret, size_t *ret_len);
/* Split such a file; the pointers borrow buf. */
enum quote_err quote_credential_file_parse(const uint8_t *buf, size_t len, const uint8_t **ret_id,
					   size_t *ret_id_len, const uint8_t **ret_secret, size_t *ret_secret_len);

#endif
