/* libbundle: every byte format that leaves or enters a sluice host.
 *
 *   - deterministic CBOR (RFC 8949 §4.2.1) and bounded decoding of untrusted CBOR
 *   - keys: P-256 / P-384 / Ed25519, PEM, DER, COSE_Key, COSE_KeySet, RFC 9679 thumbprints
 *   - COSE_Sign1 (RFC 9052): ES256, ES384 (raw r||s), EdDSA; signing through a callback
 *   - SCITT signed statements (hash envelope, DESIGN.md step 6) and transparent statements (394)
 *   - SCITT receipts: issue + verify vds=1 (RFC9162_SHA256), verify vds=2 (CCF_LEDGER_SHA256)
 *   - EAR verdicts (draft-fv-rats-ear claims in a COSE_Sign1) with the sluice claims
 *   - evidence (DESIGN.md step 5), evidence bundles (tar), concise problem details (RFC 9290)
 *
 * Conventions of this header:
 *   - Everything is plain bytes in, plain bytes out. Buffers returned through `uint8_t **ret`
 *     are malloc'd and owned by the caller (free()). `ret_` out-parameters are written only
 *     on success.
 *   - "Parse" functions return borrowed pointers INTO the caller's input (struct bundle_bytes);
 *     they stay valid as long as that input does. Strings borrowed this way are NOT
 *     NUL-terminated. "Decode" functions that return a struct allocate it (one block) and
 *     have a matching _free().
 *   - Untrusted input is bounded: see the BUNDLE_MAX_* limits. All CBOR input is checked to be
 *     well formed, definite-length, at most BUNDLE_MAX_DEPTH deep, with no trailing bytes,
 *     before anything is allocated for it.
 *   - Errors: enum bundle_err; the low-level cause of the last failure on this thread (OpenSSL
 *     error string, errno text, libarchive message, which field was wrong) is kept for
 *     bundle_last_cause(). Nothing here prints, logs or exits.
 *   - COSE algorithm values are the IANA ones: BUNDLE_ALG_ES256 (-7), _ES384 (-35), _EDDSA (-8).
 */
#ifndef SLUICE_BUNDLE_H
#define SLUICE_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------- */
/* Errors (stable values)                                                                     */

enum bundle_err {
	BUNDLE_OK = 0,
	BUNDLE_ERR_INVAL = 1,       /* bad argument (NULL where not allowed, alg 0, empty kid) */
	BUNDLE_ERR_NOMEM = 2,       /* allocation failed */
	BUNDLE_ERR_TOOBIG = 3,      /* input or output above a BUNDLE_MAX_* limit */
	BUNDLE_ERR_CBOR = 4,        /* not well-formed CBOR: truncated, trailing bytes, reserved
	                             * additional info, indefinite length, nesting > BUNDLE_MAX_DEPTH */
	BUNDLE_ERR_NONCANON = 5,    /* well-formed but not deterministic CBOR where it must be
	                             * (non-shortest head, unsorted or duplicate map keys) */
	BUNDLE_ERR_FORMAT = 6,      /* CBOR fine, structure wrong: missing/mistyped field, not a
	                             * COSE_Sign1, missing tag 18 where required, bad lengths */
	BUNDLE_ERR_UNSUPPORTED = 7, /* unknown alg, curve, key type, vds, hash alg, proof type, or a
	                             * crit label we do not understand */
	BUNDLE_ERR_KEY = 8,         /* key unusable for the operation: wrong curve for alg, public
	                             * key where a private one is needed, point not on curve */
	BUNDLE_ERR_SIGNATURE = 9,   /* signature does not verify (the one "forged" answer) */
	BUNDLE_ERR_KID = 10,        /* no key in the key set matches the kid of the object */
	BUNDLE_ERR_PROOF = 11,      /* receipt inclusion proof malformed or leaf not in tree */
	BUNDLE_ERR_MISMATCH = 12,   /* object is not bound to the given data: statement payload !=
	                             * hash of the preimage, EAR nonce / statement hash differ */
	BUNDLE_ERR_EXPIRED = 13,    /* EAR: now >= exp, or iat in the future beyond the skew */
	BUNDLE_ERR_CRYPTO = 14,     /* OpenSSL failed unexpectedly (cause: OpenSSL error queue) */
	BUNDLE_ERR_SIGNER = 15,     /* the signing callback returned non-zero (cause: its value) */
	BUNDLE_ERR_ARCHIVE = 16,    /* bundle tar malformed or unsafe: bad name, duplicate, too many
	                             * entries, not a regular file, index digest mismatch */
	BUNDLE_ERR_NOTFOUND = 17,   /* requested entry / field absent (bundle entry, receipt) */
};

const char *bundle_strerror(enum bundle_err err);
/* The cause of the last failure on the calling thread ("" if none). Valid until the next
 * libbundle call on this thread. */
const char *bundle_last_cause(void);

/* ---------------------------------------------------------------------------------------- */
/* Limits                                                                                     */

#define BUNDLE_MAX_DEPTH 16               /* CBOR nesting */
#define BUNDLE_MAX_COSE (1u << 20)        /* one COSE_Sign1 (statement, receipt, verdict) */
#define BUNDLE_MAX_EVIDENCE (16u << 20)   /* evidence CBOR (event logs can be large) */
#define BUNDLE_MAX_KEYSET 64              /* keys in a COSE_KeySet */
#define BUNDLE_MAX_RECEIPTS 16            /* receipts in a transparent statement (394) */
#define BUNDLE_MAX_BUNDLE (64u << 20)     /* a whole evidence bundle tar */
#define BUNDLE_MAX_ENTRIES 32             /* entries in an evidence bundle tar */
#define BUNDLE_MAX_PATH 64                /* inclusion proof length (= MERKLE_MAX_PROOF) */

#define BUNDLE_ALG_ES256 (-7)
#define BUNDLE_ALG_ES384 (-35)
#define BUNDLE_ALG_EDDSA (-8)
#define BUNDLE_HASH_SHA256 (-16)          /* COSE hash alg id, for 258 payload-hash-alg */
#define BUNDLE_MAX_SIG 132                /* largest raw signature we produce or accept */

#define BUNDLE_MT_EVIDENCE "application/vnd.sluice.evidence+cbor"
#define BUNDLE_MT_EAR "application/eat+cwt"

/* A borrowed byte range (pointer into an input the caller owns). ptr NULL <=> absent. */
struct bundle_bytes {
	const uint8_t *ptr;
	size_t len;
};

/* ---------------------------------------------------------------------------------------- */
/* Deterministic CBOR helpers                                                                 */

/* BUNDLE_OK if buf is exactly one well-formed CBOR item within the limits (BUNDLE_ERR_CBOR
 * otherwise); with `deterministic`, also requires RFC 8949 §4.2.1 encoding (BUNDLE_ERR_NONCANON). */
enum bundle_err bundle_cbor_check(const uint8_t *buf, size_t len, int deterministic);
/* Render one CBOR item as JSON text for humans (bstr -> "h'hex'", tags -> {"tag":N,"value":..},
 * non-text map keys -> their decimal/JSON text). NUL-terminated, malloc'd. */
enum bundle_err bundle_cbor_to_json(const uint8_t *buf, size_t len, char **ret);

/* ---------------------------------------------------------------------------------------- */
/* Keys                                                                                        */

struct bundle_key;    /* opaque: a public key, or a private key (with its public part) */
struct bundle_keyset; /* opaque: a list of public keys */

/* Generate a fresh private key for alg (ES256 -> P-256, ES384 -> P-384, EdDSA -> Ed25519). */
enum bundle_err bundle_key_generate(int alg, struct bundle_key **ret);
/* Load a key from any of: PEM private key, PEM public key, PEM certificate, DER SPKI, DER
 * certificate, COSE_Key (CBOR). Unsupported curves/types -> BUNDLE_ERR_UNSUPPORTED. */
enum bundle_err bundle_key_load(const uint8_t *buf, size_t len, struct bundle_key **ret);
/* PEM text (NUL-terminated; *ret_len excludes the NUL). with_private: PKCS#8 private key,
 * else SubjectPublicKeyInfo. BUNDLE_ERR_KEY if with_private and the key is public only.
 * A private PEM is a secret: OPENSSL_cleanse(*ret, *ret_len) before free(). */
enum bundle_err bundle_key_save_pem(const struct bundle_key *k, int with_private, uint8_t **ret,
				    size_t *ret_len);
/* Public key from a COSE_Key map ({1:2,-1:crv,-2:x,-3:y} or {1:1,-1:6,-2:x}); kid (2) kept. */
enum bundle_err bundle_key_from_cose(const uint8_t *cbor, size_t len, struct bundle_key **ret);
/* Deterministic COSE_Key of the PUBLIC part, with 2: kid and 3: alg. */
enum bundle_err bundle_key_to_cose(const struct bundle_key *k, uint8_t **ret, size_t *ret_len);
/* Public EC key from affine coordinates (e.g. a TPM-resident key's TPMS_ECC_POINT). alg picks
 * the curve; x and y are big-endian, left-padded or not (at most the field size). */
enum bundle_err bundle_key_from_ec_point(int alg, const uint8_t *x, size_t xlen, const uint8_t *y,
					 size_t ylen, struct bundle_key **ret);
/* Public key only copy. */
enum bundle_err bundle_key_public(const struct bundle_key *k, struct bundle_key **ret);
void bundle_key_free(struct bundle_key *k);
int bundle_key_alg(const struct bundle_key *k);          /* BUNDLE_ALG_* */
int bundle_key_has_private(const struct bundle_key *k);
/* RFC 9679 COSE Key Thumbprint (SHA-256 over the deterministic required-members map). */
enum bundle_err bundle_key_thumbprint(const struct bundle_key *k, uint8_t out[32]);
/* The key's kid: the one set with bundle_key_set_kid or read from a COSE_Key, else the RFC 9679
 * thumbprint (32 bytes). Borrowed, valid while k lives. */
struct bundle_bytes bundle_key_kid(const struct bundle_key *k);
enum bundle_err bundle_key_set_kid(struct bundle_key *k, const uint8_t *kid, size_t len);
/* True if the kid of an object names this key: equal to bundle_key_kid(k), or to the RFC 9679
 * thumbprint, or to SHA-256(SPKI DER) raw or as lower-case hex (CCF's kid convention). */
int bundle_key_matches_kid(const struct bundle_key *k, const uint8_t *kid, size_t len);

enum bundle_err bundle_keyset_new(struct bundle_keyset **ret);
/* Takes ownership of k on success. */
enum bundle_err bundle_keyset_add(struct bundle_keyset *ks, struct bundle_key *k);
/* COSE_KeySet = CBOR array of COSE_Key (public parts, deterministic). */
enum bundle_err bundle_keyset_encode(const struct bundle_keyset *ks, uint8_t **ret, size_t *ret_len);
/* Keys of unsupported type are skipped; zero usable keys -> BUNDLE_ERR_UNSUPPORTED. */
enum bundle_err bundle_keyset_decode(const uint8_t *cbor, size_t len, struct bundle_keyset **ret);
/* Load a file's bytes as a key set: COSE_KeySet, or one key in any bundle_key_load format, or
 * a CCF trust store JSON ({"parameters":[{"serviceCertificate": base64 DER}...]}), or a JWK
 * / JWK set {"keys":[...]} (EC P-256/P-384, OKP Ed25519; the JWK "kid" string becomes the kid). */
enum bundle_err bundle_keyset_load(const uint8_t *buf, size_t len, struct bundle_keyset **ret);
size_t bundle_keyset_count(const struct bundle_keyset *ks);
const struct bundle_key *bundle_keyset_get(const struct bundle_keyset *ks, size_t i);
/* First key that bundle_key_matches_kid(), or NULL. */
const struct bundle_key *bundle_keyset_find(const struct bundle_keyset *ks, const uint8_t *kid,
					    size_t len);
void bundle_keyset_free(struct bundle_keyset *ks);

/* ---------------------------------------------------------------------------------------- */
/* Signing                                                                                    */

/* The signing callback. tbs is the CBOR Sig_structure ("ToBeSigned"); digest is its hash
 * with the alg's hash (SHA-256 for ES256, SHA-384 for ES384; NULL/0 for EdDSA, which signs
 * tbs itself). Write the RAW signature (ECDSA: r||s, each left-padded to the field size, 64 or
 * 96 bytes; Ed25519: 64 bytes) to sig (sig_cap >= BUNDLE_MAX_SIG) and set *sig_len. Return 0
 * on success; any other value fails the operation with BUNDLE_ERR_SIGNER (value in the cause).
 * A TPM signer signs `digest` with TPM2_Sign and concatenates the padded r and s. */
typedef int (*bundle_sign_fn)(void *ud, int alg, const uint8_t *tbs, size_t tbs_len,
			      const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t sig_cap,
			      size_t *sig_len);

struct bundle_signer {
	int alg;              /* BUNDLE_ALG_* */
	struct bundle_bytes kid; /* goes to protected label 4; required for statements/receipts */
	bundle_sign_fn sign;
	void *ud;
};

/* A signer backed by a private bundle_key (k must outlive the signer); kid = bundle_key_kid(k). */
enum bundle_err bundle_signer_from_key(const struct bundle_key *k, struct bundle_signer *ret);

/* ---------------------------------------------------------------------------------------- */
/* COSE_Sign1                                                                                 */

/* Protected header contents for signing. Absent fields: NULL / 0. alg and kid come from the
 * signer. Encoded deterministically (keys in canonical order). */
struct bundle_cose_hdr {
	const char *content_type;          /* 3 (tstr); must be NULL in a hash envelope */
	const char *cwt_iss, *cwt_sub;     /* 15: {1: iss, 2: sub} (RFC 9597) */
	int64_t cwt_iat;                   /* 15: {6: iat} when non-zero */
	const char *typ;                   /* 16 */
	int payload_hash_alg;              /* 258 (hash envelope) when non-zero */
	const char *preimage_content_type; /* 259 */
	int vds;                           /* 395 when non-zero (receipts) */
};

/* Sign a COSE_Sign1 (always tagged 18, unprotected {}). detached: the payload is signed but
 * encoded as nil. */
enum bundle_err bundle_cose_sign1(const struct bundle_signer *s, const struct bundle_cose_hdr *hdr,
				  const uint8_t *payload, size_t payload_len, int detached, uint8_t **ret,
				  size_t *ret_len);

/* A parsed COSE_Sign1; every pointer borrows from the input. */
struct bundle_cose {
	int tagged;                        /* had tag 18 */
	struct bundle_bytes protected_bstr;   /* content of the protected bstr (the encoded map) */
	struct bundle_bytes protected_item;   /* the whole protected bstr item (head + content) */
	struct bundle_bytes unprotected;      /* the encoded unprotected map */
	struct bundle_bytes payload;          /* ptr NULL when detached (nil) */
	int detached;
	struct bundle_bytes signature;
	/* decoded protected header (kid may come from unprotected if absent in protected) */
	int64_t alg;                       /* 0 = absent */
	struct bundle_bytes kid;           /* bstr, or tstr bytes (SCRAPI examples use tstr) */
	struct bundle_bytes content_type;  /* 3 as tstr; content_type_uint if uint */
	int64_t content_type_uint;         /* -1 when not a uint */
	struct bundle_bytes cwt_iss, cwt_sub; /* 15 -> 1, 2 */
	int64_t cwt_iat;                   /* 15 -> 6 (also accepts tag 1(int)); 0 absent */
	struct bundle_bytes typ;           /* 16 */
	int64_t payload_hash_alg;          /* 258; 0 absent */
	struct bundle_bytes preimage_content_type; /* 259 (tstr) */
	int64_t vds;                       /* 395; 0 absent */
	struct bundle_bytes x5chain;       /* 33, raw CBOR item (protected or unprotected) */
	struct bundle_bytes crit;          /* 2, raw CBOR array */
	struct bundle_bytes receipts;      /* unprotected 394, raw CBOR array */
	struct bundle_bytes vdp;           /* unprotected 396, raw CBOR map */
	int crit_unknown;                  /* crit (2) lists a label we do not understand */
};

/* Structure only, no crypto. Accepts untagged input (tagged = 0). A crit listing a label
 * outside {1,2,3,4,15,16,33,34,258,259,260,395} sets crit_unknown (so such objects can still be
 * inspected); verification and bundle_statement_check then refuse them with
 * BUNDLE_ERR_UNSUPPORTED (RFC 9052 §3.1). A known label listed in crit but absent is
 * BUNDLE_ERR_FORMAT. Input at most BUNDLE_MAX_COSE. */
enum bundle_err bundle_cose_parse(const uint8_t *buf, size_t len, struct bundle_cose *ret);
/* Verify the signature with key (its alg must equal the object's alg). detached_payload is
 * used when the object's payload is nil (required then; ignored otherwise).
 * BUNDLE_ERR_SIGNATURE when it does not verify. */
enum bundle_err bundle_cose_verify(const uint8_t *buf, size_t len, const struct bundle_key *key,
				   const uint8_t *detached_payload, size_t detached_len);
/* The same, the key chosen from ks by the object's kid (BUNDLE_ERR_KID if none matches). */
enum bundle_err bundle_cose_verify_keyset(const uint8_t *buf, size_t len,
					  const struct bundle_keyset *ks,
					  const uint8_t *detached_payload, size_t detached_len);

/* ---------------------------------------------------------------------------------------- */
/* SCITT signed statements and transparent statements                                        */

/* Hash envelope per DESIGN.md step 6: payload = SHA-256(preimage), protected
 * {1: alg, 4: kid, 15: {1: iss, 2: sub}, 258: -16, 259: preimage_content_type}, unprotected {}.
 * preimage_content_type NULL -> BUNDLE_MT_EVIDENCE. */
enum bundle_err bundle_statement_sign(const struct bundle_signer *s, const char *iss,
				      const char *sub, const char *preimage_content_type,
				      const uint8_t *preimage, size_t preimage_len, uint8_t **ret,
				      size_t *ret_len);
/* SCITT registration checks, no crypto: tagged COSE_Sign1, alg present, kid (or x5chain)
 * present, 15 with iss and sub, 3 absent when 258 is present. Fills ret (optional). */
enum bundle_err bundle_statement_check(const uint8_t *buf, size_t len, struct bundle_cose *ret);
/* BUNDLE_OK if the statement is a SHA-256 hash envelope whose payload is SHA-256(preimage);
 * BUNDLE_ERR_MISMATCH if not (BUNDLE_ERR_UNSUPPORTED for another hash alg). */
enum bundle_err bundle_statement_check_preimage(const uint8_t *buf, size_t len,
						const uint8_t *preimage, size_t preimage_len);
/* The log record: 0xD2 0x84 || protected item || 0xA0 || payload item || signature item
 * (the statement with its unprotected header replaced by {}; bytes kept as received). */
enum bundle_err bundle_statement_record(const uint8_t *buf, size_t len, uint8_t **ret,
					size_t *ret_len);
/* RFC 9162 leaf hash of the record: SHA-256(0x00 || record). */
enum bundle_err bundle_statement_leaf_hash(const uint8_t *buf, size_t len, uint8_t out[32]);
/* Transparent statement: the record with unprotected {394: [bstr receipt...]}. */
enum bundle_err bundle_transparent_make(const uint8_t *stmt, size_t stmt_len,
					const struct bundle_bytes *receipts, size_t n_receipts,
					uint8_t **ret, size_t *ret_len);
/* Borrow the receipts under 394 (up to cap; *ret_n gets the count, BUNDLE_ERR_TOOBIG if more
 * than cap). A statement without 394 gives *ret_n = 0. */
enum bundle_err bundle_transparent_receipts(const uint8_t *buf, size_t len, struct bundle_bytes *out,
					    size_t cap, size_t *ret_n);

/* ---------------------------------------------------------------------------------------- */
/* Receipts                                                                                   */

struct bundle_receipt_info {
	int64_t vds;                     /* 1 RFC9162_SHA256, 2 CCF_LEDGER_SHA256 */
	int64_t alg;
	struct bundle_bytes kid;         /* borrowed from the receipt */
	struct bundle_bytes iss, sub;    /* 15 -> 1, 2 (may be absent) */
	int64_t iat;                     /* 15 -> 6, 0 absent */
	uint64_t tree_size, leaf_index;  /* vds 1 only */
	size_t path_len;
	uint8_t root[32];                /* the root the proof computes (the signed payload) */
	uint8_t leaf[32];                /* the leaf hash computed from the statement */
};

/* Verify a receipt for a statement (signed or transparent: the record rule strips 394). One
 * answer for proof + signature: BUNDLE_OK only if the statement's leaf is in the tree whose
 * root the receipt's key signed. Key: key if non-NULL, else the key in ks matching the
 * receipt's kid. vds 1 and 2 supported; others BUNDLE_ERR_UNSUPPORTED. info optional (filled
 * on success; also on BUNDLE_ERR_SIGNATURE/_PROOF/_KID for diagnostics). */
enum bundle_err bundle_receipt_verify(const uint8_t *receipt, size_t receipt_len, const uint8_t *stmt,
				      size_t stmt_len, const struct bundle_key *key,
				      const struct bundle_keyset *ks, struct bundle_receipt_info *info);

/* Structure only, no statement and no key: vds, alg, kid, iss/sub/iat and (vds 1) tree_size,
 * leaf_index, path_len; (vds 2) path_len. root and leaf are left zero. For display. */
enum bundle_err bundle_receipt_parse(const uint8_t *receipt, size_t receipt_len, struct bundle_receipt_info *info);

/* Issuing (transparency service). One signature over (protected header, root) serves every
 * receipt of that tree head: sign the head once, then issue per leaf. */
struct bundle_receipt_head; /* opaque: protected bstr + root + tree_size + signature */
struct bundle_receipt_hdr {
	const char *iss, *sub;      /* 15 -> 1, 2 (optional) */
	int64_t iat;                /* 15 -> 6 when non-zero */
};
enum bundle_err bundle_receipt_sign_head(const struct bundle_signer *s, const struct bundle_receipt_hdr *hdr,
					 uint64_t tree_size, const uint8_t root[32],
					 struct bundle_receipt_head **ret);
/* Encode a vds=1 receipt for leaf_index of that head (path from merkle_tree_inclusion). */
enum bundle_err bundle_receipt_issue(const struct bundle_receipt_head *h, uint64_t leaf_index,
				     const uint8_t (*path)[32], size_t path_len, uint8_t **ret,
				     size_t *ret_len);
void bundle_receipt_head_free(struct bundle_receipt_head *h);

/* ---------------------------------------------------------------------------------------- */
/* EAR verdicts (draft-fv-rats-ear, CBOR claims)                                              */
/* Claims: 265 eat_profile, 6 iat, 4 exp, 10 eat_nonce, 1004 ear.verifier-id {0: developer,
 * 1: build}, 266 submods {name: {1000 ear.status, 1001 ear.trustworthiness-vector
 * {0 instance-identity, 1 configuration, 2 executables, 3 file-system, 4 hardware,
 * 5 runtime-opaque, 6 storage-opaque, 7 sourced-data}, 1003 ear.appraisal-policy-id}}; sluice
 * claims (text keys at top level): "sluice.host-id", "sluice.statement-hash" (bstr 32),
 * "sluice.tools" [tstr], "sluice.credential" (bstr), "sluice.reasons" [{"type", "detail"}]. */

#define BUNDLE_EAR_PROFILE "tag:github.com,2023:veraison/ear"
#define BUNDLE_EAR_SUBMOD "sluice"

enum bundle_ear_status {
	BUNDLE_EAR_NONE = 0,
	BUNDLE_EAR_AFFIRMING = 2,
	BUNDLE_EAR_WARNING = 32,
	BUNDLE_EAR_CONTRAINDICATED = 96,
};
enum bundle_ear_tv { /* trustworthiness-vector claim indexes */
	BUNDLE_TV_INSTANCE_IDENTITY = 0,
	BUNDLE_TV_CONFIGURATION,
	BUNDLE_TV_EXECUTABLES,
	BUNDLE_TV_FILE_SYSTEM,
	BUNDLE_TV_HARDWARE,
	BUNDLE_TV_RUNTIME_OPAQUE,
	BUNDLE_TV_STORAGE_OPAQUE,
	BUNDLE_TV_SOURCED_DATA,
	BUNDLE_TV_COUNT
};
#define BUNDLE_TV_ABSENT (-128) /* value for a claim left out of the vector */

struct bundle_ear_reason {
	const char *type;   /* e.g. "pcr.mismatch", "rootfs.digest.unknown" */
	const char *detail; /* free text, e.g. "pcr 4 event 12 want ab.. got cd.." */
};

struct bundle_ear {
	const char *profile;              /* NULL -> BUNDLE_EAR_PROFILE when encoding */
	int64_t iat, exp;
	struct bundle_bytes nonce;
	const char *verifier_developer, *verifier_build;
	int status;                       /* enum bundle_ear_status */
	int8_t tv[BUNDLE_TV_COUNT];       /* -128..127; BUNDLE_TV_ABSENT = not present */
	const char *policy_id;
	const char *host_id;
	int has_statement_hash;
	uint8_t statement_hash[32];       /* SHA-256 of the statement bytes as registered */
	const char *const *tools;
	size_t n_tools;
	struct bundle_bytes credential;   /* wrapped release credential blob (opaque here) */
	const struct bundle_ear_reason *reasons;
	size_t n_reasons;
};

/* Deterministic CBOR of the claims set. */
enum bundle_err bundle_ear_encode(const struct bundle_ear *e, uint8_t **ret, size_t *ret_len);
/* Decode into an allocated struct (strings NUL-terminated, bytes copied); bundle_ear_free.
 * Unknown claims are ignored; wrong types of known claims -> BUNDLE_ERR_FORMAT. */
enum bundle_err bundle_ear_decode(const uint8_t *buf, size_t len, struct bundle_ear **ret);
void bundle_ear_free(struct bundle_ear *e);
/* Relying-party checks: profile, now within [iat - skew, exp), nonce equal (if nonce non-NULL),
 * statement hash equal (if stmt_hash non-NULL). BUNDLE_ERR_EXPIRED / BUNDLE_ERR_MISMATCH /
 * BUNDLE_ERR_FORMAT. Does not judge the status: callers decide what they accept. */
enum bundle_err bundle_ear_validate(const struct bundle_ear *e, int64_t now, int64_t skew,
				    const uint8_t *nonce, size_t nonce_len, const uint8_t *stmt_hash);
/* COSE_Sign1 (attached) with protected {1: alg, 3: BUNDLE_MT_EAR, 4: kid}. */
enum bundle_err bundle_ear_sign(const struct bundle_signer *s, const struct bundle_ear *e, uint8_t **ret,
				size_t *ret_len);
/* Verify the signature (key, or ks by kid) then decode. */
enum bundle_err bundle_ear_verify(const uint8_t *cose, size_t len, const struct bundle_key *key,
				  const struct bundle_keyset *ks, struct bundle_ear **ret);

/* ---------------------------------------------------------------------------------------- */
/* Evidence (DESIGN.md step 5): a deterministic CBOR map with int keys 1..15 (see docs/formats.md).
 * TPM structures are carried as their marshalled bytes; nothing here interprets them. */

struct bundle_pcr {
	uint16_t alg;            /* TPM_ALG_ID of the bank (0x000b sha256, 0x000c sha384, 0x0004 sha1) */
	uint8_t index;           /* 0..23 */
	struct bundle_bytes value;
};

#define BUNDLE_MAX_PCRS 96
#define BUNDLE_MAX_EXCLUDES 256

struct bundle_evidence {
	const char *host_id;                  /* 1 */
	struct bundle_bytes nonce;            /* 2 */
	struct bundle_bytes ak_public;        /* 3 TPM2B_PUBLIC (marshalled) */
	struct bundle_bytes quote;            /* 4 TPMS_ATTEST (marshalled TPM2B_ATTEST content) */
	struct bundle_bytes quote_sig;        /* 5 TPMT_SIGNATURE (marshalled) */
	const struct bundle_pcr *pcrs;        /* 6 [[alg, index, value]...] */
	size_t n_pcrs;
	struct bundle_bytes fw_eventlog;      /* 7 TCG event log (may be empty) */
	struct bundle_bytes sluice_eventlog;  /* 8 sluice CEL-style CBOR log */
	struct bundle_bytes rootfs_digest;    /* 9 {1: digest, 2: alg, 3: entries, 4: bytes, 5: excludes} */
	const char *rootfs_alg;
	uint64_t rootfs_entries, rootfs_bytes;
	const char *const *rootfs_excludes;
	size_t n_rootfs_excludes;
	struct bundle_bytes stmt_key_public;  /* 10 TPM2B_PUBLIC of the statement key */
	struct bundle_bytes stmt_key_certify; /* 11 TPMS_ATTEST of TPM2_Certify by the AK */
	struct bundle_bytes stmt_key_certify_sig; /* 12 TPMT_SIGNATURE */
	struct bundle_bytes ek_cert;          /* 13 DER, optional */
	int64_t time;                         /* 14 host clock (seconds), optional (0 absent) */
};

enum bundle_err bundle_evidence_encode(const struct bundle_evidence *ev, uint8_t **ret, size_t *ret_len);
/* Decode into an allocated struct (strings NUL-terminated, byte fields copied);
 * bundle_evidence_free. Required: 1, 2, 3, 4, 5, 6, 9. */
enum bundle_err bundle_evidence_decode(const uint8_t *buf, size_t len, struct bundle_evidence **ret);
void bundle_evidence_free(struct bundle_evidence *ev);

/* ---------------------------------------------------------------------------------------- */
/* Evidence bundles: a ustar archive of named entries plus index.cbor
 * ({name: {1: size, 2: sha256}}), written last. Reading is bounded (BUNDLE_MAX_BUNDLE,
 * BUNDLE_MAX_ENTRIES), names must be plain [A-Za-z0-9._-]{1,64} (no "/", no ".."), regular
 * files only, no duplicates, and every entry must match the index. */

#define BUNDLE_F_EVIDENCE "evidence.cbor"
#define BUNDLE_F_STATEMENT "statement.cose"
#define BUNDLE_F_RECEIPT "receipt.cose"
#define BUNDLE_F_VERDICT "verdict.cose"
#define BUNDLE_F_VERDICT_RECEIPT "verdict-receipt.cose" /* receipt of the verdict statement */
/* The verifier's signed statement (hash envelope) over verdict.cose: what it registers. */
#define BUNDLE_F_VERDICT_STATEMENT "verdict-statement.cose"
#define BUNDLE_F_MANIFEST "manifest.cbor"
#define BUNDLE_F_INDEX "index.cbor"

struct bundle_entry {
	const char *name;
	struct bundle_bytes data;
};

enum bundle_err bundle_archive_write(const struct bundle_entry *entries, size_t n, uint8_t **ret,
				     size_t *ret_len);
struct bundle_archive; /* opaque: the entries read from a bundle */
enum bundle_err bundle_archive_read(const uint8_t *buf, size_t len, struct bundle_archive **ret);
/* Borrow an entry's bytes (valid while a lives): BUNDLE_ERR_NOTFOUND if absent. */
enum bundle_err bundle_archive_get(const struct bundle_archive *a, const char *name,
				   struct bundle_bytes *ret);
size_t bundle_archive_count(const struct bundle_archive *a);
const char *bundle_archive_name(const struct bundle_archive *a, size_t i);
void bundle_archive_free(struct bundle_archive *a);

/* ---------------------------------------------------------------------------------------- */
/* Concise problem details (RFC 9290): {-1: title, -2: detail} (+ -4 response-code if > 0). */

enum bundle_err bundle_problem_encode(const char *title, const char *detail, int status,
				      uint8_t **ret, size_t *ret_len);
/* Copies (truncating, always NUL-terminated) title and detail; either buffer may be NULL. */
enum bundle_err bundle_problem_decode(const uint8_t *buf, size_t len, char *title, size_t title_cap,
				      char *detail, size_t detail_cap);

#endif
