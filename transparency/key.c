/* The service key of sluice-ts (libbundle keys): ECDSA P-256, created on first start as
 * STATE/service-key.pem (PKCS#8, mode 0600, written atomically), its COSE_Key and kid (RFC 9679
 * thumbprint), and raw r||s ES256 signatures. */
#include "bundle/bundle.h"
#include "transparency/ts-int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_KEY_FILE (16u << 10)

struct ts_key {
	struct bundle_key *k;
	struct bundle_signer sg;
	uint8_t kid[TS_KID_LEN];
	uint8_t *cose;
	size_t cose_len;
};

void ts_key_free(struct ts_key *k)
{
	if (!k)
		return;
	bundle_key_free(k->k);
	free(k->cose);
	free(k);
}

static int create_key(const char *path, const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8] = "";
	struct bundle_key *k = NULL;
	uint8_t *pem = NULL;
	size_t pemlen = 0;
	enum bundle_err e;
	int fd = -1, rc = -1;

	if ((e = bundle_key_generate(BUNDLE_ALG_ES256, &k)) != BUNDLE_OK ||
	    (e = bundle_key_save_pem(k, 1, &pem, &pemlen)) != BUNDLE_OK) {
		snprintf(err, errlen, "generate the service key: %s (%s)", bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "path too long");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || ts_write_all(fd, pem, pemlen) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		fsync(fd);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0 && tmp[0])
		unlink(tmp);
	if (pem) {
		OPENSSL_cleanse(pem, pemlen);
		free(pem);
	}
	bundle_key_free(k);
	return rc;
}

static int read_key_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t n = 0;
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap)
			break;
	}
	close(fd);
	if (n == 0 || n == cap)
		return -1;
	*len = n;
	return 0;
}

int ts_key_load_or_create(const char *dir, struct ts_key **ret, int *created, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct ts_key *k = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	enum bundle_err e;
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
	buf = malloc(MAX_KEY_FILE);
	if (!k || !buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (read_key_file(path, buf, MAX_KEY_FILE, &len) != 0) {
		snprintf(err, errlen, "cannot read %s", path);
		goto out;
	}
	if ((e = bundle_key_load(buf, len, &k->k)) != BUNDLE_OK) {
		snprintf(err, errlen, "%s: %s (%s)", path, bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	if (bundle_key_alg(k->k) != BUNDLE_ALG_ES256 || !bundle_key_has_private(k->k)) {
		snprintf(err, errlen, "%s: the service key must be a P-256 private key", path);
		goto out;
	}
	if ((e = bundle_key_thumbprint(k->k, k->kid)) != BUNDLE_OK ||
	    (e = bundle_key_set_kid(k->k, k->kid, TS_KID_LEN)) != BUNDLE_OK ||
	    (e = bundle_key_to_cose(k->k, &k->cose, &k->cose_len)) != BUNDLE_OK ||
	    (e = bundle_signer_from_key(k->k, &k->sg)) != BUNDLE_OK) {
		snprintf(err, errlen, "%s: %s (%s)", path, bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	*ret = k;
	k = NULL;
	rc = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, MAX_KEY_FILE);
		free(buf);
	}
	ts_key_free(k);
	return rc;
}

const uint8_t *ts_key_kid(const struct ts_key *k) { return k->kid; }

const struct bundle_signer *ts_key_signer(const struct ts_key *k) { return &k->sg; }

void ts_key_cose(const struct ts_key *k, struct ts_buf *b) { ts_buf_put(b, k->cose, k->cose_len); }

int ts_key_sign(const struct ts_key *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	uint8_t out[BUNDLE_MAX_SIG];
	size_t n = 0;
	if (k->sg.sign(k->sg.ud, BUNDLE_ALG_ES256, msg, len, NULL, 0, out, sizeof out, &n) != 0 || n != 64)
		return -1;
	memcpy(sig, out, 64);
	return 0;
}
