/* EK certificate validation: the chain must end at a CA in the trusted directory (TPM
 * manufacturer CAs; swtpm's local CA in tests). Every *.pem / *.crt / *.cer file in the directory
 * is loaded (PEM, possibly several certificates each); intermediates may live there too. */
#include "verifier/verifier-int.h"

#include <dirent.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct verifier_ekca {
	X509_STORE *store;
	size_t n;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

void verifier_ekca_free(struct verifier_ekca *ca)
{
	if (!ca)
		return;
	X509_STORE_free(ca->store);
	free(ca);
}

enum verifier_err verifier_ekca_load(const char *dir, struct verifier_ekca **ret, char *err, size_t errlen)
{
	struct verifier_ekca *ca = calloc(1, sizeof *ca);
	DIR *d = NULL;
	struct dirent *de;
	enum verifier_err rc = VERIFIER_ERR_CERT;

	if (!ca)
		return VERIFIER_ERR_NOMEM;
	if (!(ca->store = X509_STORE_new())) {
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	if (!(d = opendir(dir))) {
		seterr(err, errlen, "cannot open EK CA directory %s", dir);
		rc = VERIFIER_ERR_IO;
		goto out;
	}
	while ((de = readdir(d))) {
		char path[4096];
		FILE *f;
		X509 *x;
		if (!has_suffix(de->d_name, ".pem") && !has_suffix(de->d_name, ".crt") && !has_suffix(de->d_name, ".cer"))
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
			continue;
		if (!(f = fopen(path, "re")))
			continue;
		while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
			if (X509_STORE_add_cert(ca->store, x) == 1)
				ca->n++;
			X509_free(x);
		}
		ERR_clear_error();
		fclose(f);
	}
	if (ca->n == 0) {
		seterr(err, errlen, "no CA certificates (*.pem, *.crt, *.cer) in %s", dir);
		goto out;
	}
	*ret = ca;
	ca = NULL;
	rc = VERIFIER_OK;
out:
	if (d)
		closedir(d);
	verifier_ekca_free(ca);
	return rc;
}

/* TPM EK certificates carry extensions OpenSSL does not know (e.g. the TPM's subjectAltName
 * directory attributes, marked critical by some vendors). Those are part of the EK profile,
 * not a reason to reject: accept unhandled critical extensions on the leaf only. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION &&
	    X509_STORE_CTX_get_error_depth(ctx) == 0)
		return 1;
	return ok;
}

enum verifier_err verifier_ekca_verify(const struct verifier_ekca *ca, const uint8_t *der, size_t len,
				       uint8_t **ret_spki, size_t *ret_spki_len, char *err, size_t errlen)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	X509_STORE_CTX *ctx = NULL;
	EVP_PKEY *pk;
	unsigned char *spki = NULL;
	int n;
	enum verifier_err rc = VERIFIER_ERR_CERT;

	if (!ca || !der || len == 0 || len > 16384) {
		seterr(err, errlen, "no EK certificate or larger than 16 KiB");
		return VERIFIER_ERR_INVAL;
	}
	x = d2i_X509(NULL, &p, (long)len);
	if (!x || p != der + len) {
		seterr(err, errlen, "EK certificate is not one DER X.509 certificate");
		rc = VERIFIER_ERR_INVAL;
		goto out;
	}
	if (!(ctx = X509_STORE_CTX_new()) || X509_STORE_CTX_init(ctx, ca->store, x, NULL) != 1) {
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		seterr(err, errlen, "EK certificate chain: %s (depth %d)", X509_verify_cert_error_string(e),
		       X509_STORE_CTX_get_error_depth(ctx));
		goto out;
	}
	pk = X509_get0_pubkey(x);
	if (!pk || (n = i2d_PUBKEY(pk, &spki)) <= 0) {
		seterr(err, errlen, "EK certificate has no usable public key");
		goto out;
	}
	*ret_spki = malloc((size_t)n);
	if (!*ret_spki) {
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	memcpy(*ret_spki, spki, (size_t)n);
	*ret_spki_len = (size_t)n;
	rc = VERIFIER_OK;
out:
	OPENSSL_free(spki);
	X509_STORE_CTX_free(ctx);
	X509_free(x);
	ERR_clear_error();
	return rc;
}
