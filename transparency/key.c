/* The service key of sluice-ts: ECDSA P-256, created on first start as STATE/service-key.pem
 * (mode 0600, written atomically), its COSE_Key and kid (RFC 9679 thumbprint), and raw
 * r||s ES256 signatures. */
#include "transparency/ts-int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ts_key {
	EVP_PKEY *pkey;
	uint8_t x[32], y[32];
	uint8_t kid[TS_KID_LEN];
};

void ts_key_free(struct ts_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

static int create_key(const char *path, const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8] = "";
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	FILE *f = NULL;
	int fd = -1, rc = -1;

	if (!pkey) {
		snprintf(err, errlen, "generate P-256 key failed");
		goto out;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "path too long");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(err, errlen, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "write %s failed", tmp);
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		fsync(fd);
	rc = 0;
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	EVP_PKEY_free(pkey);
	return rc;
}

int ts_key_load_or_create(const char *dir, struct ts_key **ret, int *created, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct ts_key *k = NULL;
	FILE *f = NULL;
	uint8_t pub[65];
	size_t publen = 0;
	char name[32];
	int rc = -1;

	*created = 0;
	if (snprintf(path, sizeof path, "%s/service-key.pem", dir) >= (int)sizeof path) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	if (access(path, F_OK) != 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
		if (create_key(path, dir, err, errlen) != 0)
			return -1;
		*created = 1;
	}
	k = calloc(1, sizeof *k);
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		goto out;
	}
	k->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	if (!k->pkey) {
		snprintf(err, errlen, "%s: not a PEM private key", path);
		goto out;
	}
	if (!EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, NULL) ||
	    strcmp(name, "prime256v1") != 0) {
		snprintf(err, errlen, "%s: service key must be ECDSA P-256", path);
		goto out;
	}
	if (!EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof pub, &publen) ||
	    publen != 65 || pub[0] != 4) {
		snprintf(err, errlen, "%s: cannot read the public point", path);
		goto out;
	}
	memcpy(k->x, pub + 1, 32);
	memcpy(k->y, pub + 33, 32);
	{
		/* RFC 9679: thumbprint over the required members only, deterministic CBOR. */
		struct ts_buf b = {0};
		unsigned int mdlen = 0;
		ts_cbor_head(&b, 5, 4);
		ts_cbor_int(&b, 1);
		ts_cbor_int(&b, 2);
		ts_cbor_int(&b, -1);
		ts_cbor_int(&b, 1);
		ts_cbor_int(&b, -2);
		ts_cbor_bstr(&b, k->x, 32);
		ts_cbor_int(&b, -3);
		ts_cbor_bstr(&b, k->y, 32);
		if (b.oom || !EVP_Digest(b.p, b.len, k->kid, &mdlen, EVP_sha256(), NULL)) {
			ts_buf_free(&b);
			snprintf(err, errlen, "compute kid failed");
			goto out;
		}
		ts_buf_free(&b);
	}
	*ret = k;
	k = NULL;
	rc = 0;
out:
	if (f)
		fclose(f);
	ts_key_free(k);
	return rc;
}

const uint8_t *ts_key_kid(const struct ts_key *k) { return k->kid; }

void ts_key_cose(const struct ts_key *k, struct ts_buf *b)
{
	ts_cbor_head(b, 5, 6);
	ts_cbor_int(b, 1);
	ts_cbor_int(b, 2); /* kty EC2 */
	ts_cbor_int(b, 2);
	ts_cbor_bstr(b, k->kid, TS_KID_LEN);
	ts_cbor_int(b, 3);
	ts_cbor_int(b, -7); /* ES256 */
	ts_cbor_int(b, -1);
	ts_cbor_int(b, 1); /* P-256 */
	ts_cbor_int(b, -2);
	ts_cbor_bstr(b, k->x, 32);
	ts_cbor_int(b, -3);
	ts_cbor_bstr(b, k->y, 32);
}

int ts_key_sign(const struct ts_key *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t derlen = sizeof der;
	const uint8_t *p = der;
	ECDSA_SIG *es = NULL;
	const BIGNUM *r, *s;
	int rc = -1;

	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, der, &derlen, msg, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (!es)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
		goto out;
	rc = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return rc;
}
