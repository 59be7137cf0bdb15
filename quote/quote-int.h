/* libquote private helpers shared by the files of quote/. Not installed, not for others. */
#ifndef SLUICE_QUOTE_INT_H
#define SLUICE_QUOTE_INT_H

#include "quote/quote.h"

#include <stdarg.h>
#include <tss2/tss2_tpm2_types.h>

/* diag helpers: all accept diag == NULL. */
void quote_diag_reset(struct quote_diag *diag);
void quote_diag_set(struct quote_diag *diag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void quote_diag_values(struct quote_diag *diag, const uint8_t *want, const uint8_t *got, size_t len);
/* Record the current OpenSSL error (and clear the queue). */
void quote_diag_ssl(struct quote_diag *diag, const char *what);

/* Hash one buffer (or two concatenated) with a TPM hash alg; 0 on success. */
int quote_hash_buf(uint16_t alg, const void *a, size_t alen, const void *b, size_t blen, uint8_t *out, size_t *ret_len);
/* EVP_MD for a TPM hash alg (const EVP_MD *, as void * to keep this header light). */
const void *quote_md_for_alg(uint16_t alg);

/* Convert between our selection and TPML_PCR_SELECTION. */
enum quote_err quote_sel_to_tpml(const struct quote_pcr_selection *sel, TPML_PCR_SELECTION *out);
enum quote_err quote_sel_from_tpml(const TPML_PCR_SELECTION *in, struct quote_pcr_selection *out);
/* Bank index of alg in sel, or -1. */
int quote_sel_bank(const struct quote_pcr_selection *sel, uint16_t alg);

/* TPMT_PUBLIC -> EVP_PKEY (returned as void *; caller EVP_PKEY_free). */
void *quote_pkey_from_tpmt(const TPMT_PUBLIC *pub, struct quote_diag *diag);
/* Name of a TPMT_PUBLIC: nameAlg || H(marshalled TPMT_PUBLIC). */
enum quote_err quote_name_of_tpmt(const TPMT_PUBLIC *pub, uint8_t *out, size_t *ret_len);
/* Unmarshal a TPM2B_PUBLIC from exactly len bytes. */
enum quote_err quote_public_unmarshal(const uint8_t *buf, size_t len, TPM2B_PUBLIC *out, struct quote_diag *diag);

/* KDFa (TPM 2.0 Part 1, 11.4.10.2) with HMAC-hash; bits must be a multiple of 8. */
int quote_kdfa(uint16_t hash, const uint8_t *key, size_t klen, const char *label, const uint8_t *u, size_t ulen,
	 const uint8_t *v, size_t vlen, uint8_t *out, size_t bytes);

#endif
