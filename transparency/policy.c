/* Registration policy of sluice-ts.
 *
 * A statement is accepted when:
 *   - it is at most max_statement bytes, exactly one CBOR item with shortest-form,
 *     definite-length heads (we log the bytes as given, so they must be unambiguous);
 *   - it is a tagged COSE_Sign1 (18) whose payload is attached (libbundle parses it);
 *   - the protected header has alg (1) from the allowlist, a kid (4) or an x5chain (33), and
 *     CWT claims (15) with iss (1) and sub (2) as text; no content type (3) with a hash envelope
 *     (258); crit (2), if present, lists only labels libbundle understands and that are present;
 *   - its signature verifies (libbundle) with the issuer key: the trust-store key that the kid
 *     names (RFC 9679 thumbprint, SHA-256 of the SPKI raw or as hex, or the file name), or, with
 *     open registration, the leaf certificate of an x5chain in the PROTECTED header.
 * The record that enters the log is libbundle's bundle_statement_record: the statement with its
 * unprotected header replaced by {} (the other items byte for byte). */
#include "bundle/bundle.h"
#include "transparency/ts-int.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRUST_KEYS 1024
#define MAX_KEY_FILE (64u << 10)

struct ts_policy {
	struct bundle_keyset *keys; /* trust store; NULL when empty */
	int open_registration;
	int64_t algs[16];
	size_t n_algs;
	size_t max_statement;
};

void ts_policy_free(struct ts_policy *p)
{
	if (!p)
		return;
	bundle_keyset_free(p->keys);
	free(p);
}

size_t ts_policy_key_count(const struct ts_policy *p) { return p->keys ? bundle_keyset_count(p->keys) : 0; }

static int read_small(const char *path, uint8_t **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	uint8_t *b = malloc(MAX_KEY_FILE + 1);
	size_t n = 0;
	int rc = -1;
	if (f && b) {
		n = fread(b, 1, MAX_KEY_FILE + 1, f);
		if (!ferror(f) && n > 0 && n <= MAX_KEY_FILE) {
			*ret = b;
			*ret_len = n;
			b = NULL;
			rc = 0;
		}
	}
	if (f)
		fclose(f);
	free(b);
	return rc;
}

/* Every *.pem in dir (public key or certificate) joins the key set; its file name (without
 * .pem) becomes its kid, besides the thumbprint and SPKI forms libbundle always matches. */
static int load_trust(const char *dir, struct bundle_keyset *ks, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = -1;

	if (!d) {
		snprintf(err, errlen, "trust store %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name), len = 0;
		char path[4096];
		uint8_t *buf = NULL;
		struct bundle_key *k = NULL;
		enum bundle_err e;

		if (n < 5 || strcmp(de->d_name + n - 4, ".pem") != 0)
			continue;
		if (bundle_keyset_count(ks) == MAX_TRUST_KEYS) {
			snprintf(err, errlen, "trust store %s: more than %d keys", dir, MAX_TRUST_KEYS);
			goto out;
		}
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (read_small(path, &buf, &len) != 0) {
			snprintf(err, errlen, "trust store: cannot read %s", path);
			goto out;
		}
		e = bundle_key_load(buf, len, &k);
		free(buf);
		if (e == BUNDLE_OK)
			e = bundle_key_set_kid(k, (const uint8_t *)de->d_name, n - 4);
		if (e == BUNDLE_OK && (e = bundle_keyset_add(ks, k)) == BUNDLE_OK)
			k = NULL;
		bundle_key_free(k);
		if (e != BUNDLE_OK) {
			snprintf(err, errlen, "trust store: %s: %s (%s)", path, bundle_strerror(e), bundle_last_cause());
			goto out;
		}
	}
	rc = 0;
out:
	closedir(d);
	return rc;
}

int ts_policy_new(const struct ts_policy_cfg *cfg, struct ts_policy **ret, char *err, size_t errlen)
{
	struct ts_policy *p = calloc(1, sizeof *p);
	int rc = -1;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->open_registration = cfg->open_registration;
	p->max_statement = cfg->max_statement ? cfg->max_statement : 256 * 1024;
	if (cfg->algs && cfg->n_algs) {
		if (cfg->n_algs > sizeof p->algs / sizeof p->algs[0]) {
			snprintf(err, errlen, "too many algorithms");
			goto out;
		}
		memcpy(p->algs, cfg->algs, cfg->n_algs * sizeof *p->algs);
		p->n_algs = cfg->n_algs;
	} else {
		p->algs[0] = BUNDLE_ALG_ES256;
		p->algs[1] = BUNDLE_ALG_ES384;
		p->n_algs = 2;
	}
	if (cfg->trust_dir) {
		if (bundle_keyset_new(&p->keys) != BUNDLE_OK) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		if (load_trust(cfg->trust_dir, p->keys, err, errlen) != 0)
			goto out;
	}
	if (!ts_policy_key_count(p) && !p->open_registration) {
		snprintf(err, errlen, "no issuer keys: give --trust-dir with *.pem keys, or --open-registration");
		goto out;
	}
	*ret = p;
	p = NULL;
	rc = 0;
out:
	ts_policy_free(p);
	return rc;
}

static int reject(struct ts_verdict *v, int status, const char *title, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int reject(struct ts_verdict *v, int status, const char *title, const char *fmt, ...)
{
	va_list ap;
	v->status = status;
	v->title = title;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof v->detail, fmt, ap);
	va_end(ap);
	return -1;
}

/* The leaf certificate of an x5chain item (a bstr, or an array whose first element is one). */
static int x5_leaf(struct bundle_bytes x5, const uint8_t **der, size_t *der_len)
{
	struct ts_cbor_rd r = {x5.ptr, x5.ptr + x5.len};
	struct ts_cbor_item it;
	if (ts_cbor_next(&r, &it) != 0)
		return -1;
	if (it.major == 4 && it.val > 0 && ts_cbor_next(&r, &it) != 0)
		return -1;
	if (it.major != 2 || it.val == 0)
		return -1;
	*der = it.data;
	*der_len = it.val;
	return 0;
}

int ts_policy_check(const struct ts_policy *p, const uint8_t *stmt, size_t len, uint8_t **ret_rec,
		    size_t *ret_rec_len, struct ts_verdict *v)
{
	struct ts_cbor_rd r = {stmt, stmt + len};
	struct bundle_cose c;
	struct bundle_key *owned = NULL;
	const struct bundle_key *key = NULL;
	enum bundle_err e;
	int alg_ok = 0, rc = -1;

	memset(v, 0, sizeof *v);
	if (len > p->max_statement)
		return reject(v, 413, "Payload Too Large", "statement of %zu bytes exceeds the limit of %zu", len,
			      p->max_statement);
	/* shortest-form, definite-length heads only, and exactly one item */
	if (!len || ts_cbor_skip(&r) != 0 || r.p != r.end)
		return reject(v, 400, "Malformed request",
			      "not exactly one CBOR item with shortest-form, definite-length heads");
	e = bundle_cose_parse(stmt, len, &c);
	if (e != BUNDLE_OK)
		return reject(v, e == BUNDLE_ERR_TOOBIG ? 413 : 400, e == BUNDLE_ERR_TOOBIG ? "Payload Too Large" : "Malformed request",
			      "not a COSE_Sign1: %s (%s)", bundle_strerror(e), bundle_last_cause());
	if (!c.tagged)
		return reject(v, 400, "Malformed request", "not a tagged COSE_Sign1 (want tag 18)");
	if (c.detached)
		return reject(v, 400, "Payload Missing", "detached payloads cannot be registered");
	if (c.crit_unknown)
		return reject(v, 400, "Unsupported critical header", "crit lists a label this service does not understand");
	if (!c.alg)
		return reject(v, 400, "Bad Signature Algorithm", "protected header has no alg (1)");
	for (size_t i = 0; i < p->n_algs; i++)
		alg_ok |= p->algs[i] == c.alg;
	if (!alg_ok)
		return reject(v, 400, "Bad Signature Algorithm", "algorithm %lld is not allowed here", (long long)c.alg);
	if (!c.kid.ptr && !c.x5chain.ptr)
		return reject(v, 400, "Confirmation Missing", "protected header has neither kid (4) nor x5chain (33)");
	if (!c.cwt_iss.ptr || !c.cwt_sub.ptr || !c.cwt_iss.len || !c.cwt_sub.len)
		return reject(v, 400, "Missing claims", "protected header needs CWT claims (15) with iss (1) and sub (2)");
	if (c.payload_hash_alg && (c.content_type.ptr || c.content_type_uint >= 0))
		return reject(v, 400, "Malformed request", "content type (3) must not appear in a hash envelope");
	if (c.kid.ptr && p->keys)
		key = bundle_keyset_find(p->keys, c.kid.ptr, c.kid.len);
	if (!key && p->open_registration && c.x5chain.ptr) {
		const uint8_t *der;
		size_t dl;
		/* only a key the issuer signed over: the x5chain must be in the protected header */
		if (c.x5chain.ptr < c.protected_bstr.ptr || c.x5chain.ptr >= c.protected_bstr.ptr + c.protected_bstr.len)
			return reject(v, 400, "Rejected", "open registration needs the x5chain in the protected header");
		if (x5_leaf(c.x5chain, &der, &dl) != 0 || bundle_key_load(der, dl, &owned) != BUNDLE_OK)
			return reject(v, 400, "Rejected", "x5chain leaf is not a usable certificate (%s)", bundle_last_cause());
		key = owned;
	}
	if (!key) {
		reject(v, 400, "Rejected",
		       p->open_registration ? "unknown issuer key and no protected x5chain to take the key from"
					    : "the kid does not name a key in the trust store");
		goto out;
	}
	e = bundle_cose_verify(stmt, len, key, NULL, 0);
	switch (e) {
	case BUNDLE_OK:
		break;
	case BUNDLE_ERR_SIGNATURE:
		reject(v, 400, "Bad Signature", "the statement signature does not verify with the issuer key");
		goto out;
	case BUNDLE_ERR_KEY:
	case BUNDLE_ERR_UNSUPPORTED:
	case BUNDLE_ERR_INVAL:
		reject(v, 400, "Bad Signature Algorithm", "the issuer key does not fit algorithm %lld (%s)", (long long)c.alg,
		       bundle_last_cause());
		goto out;
	case BUNDLE_ERR_NOMEM:
		reject(v, 503, "Service Unavailable", "out of memory");
		goto out;
	case BUNDLE_ERR_TOOBIG:
	case BUNDLE_ERR_CBOR:
	case BUNDLE_ERR_NONCANON:
	case BUNDLE_ERR_FORMAT:
	case BUNDLE_ERR_KID:
	case BUNDLE_ERR_PROOF:
	case BUNDLE_ERR_MISMATCH:
	case BUNDLE_ERR_EXPIRED:
	case BUNDLE_ERR_CRYPTO:
	case BUNDLE_ERR_SIGNER:
	case BUNDLE_ERR_ARCHIVE:
	case BUNDLE_ERR_NOTFOUND:
		reject(v, 400, "Bad Signature", "the signature could not be checked: %s (%s)", bundle_strerror(e),
		       bundle_last_cause());
		goto out;
	}
	e = bundle_statement_record(stmt, len, ret_rec, ret_rec_len);
	if (e != BUNDLE_OK) {
		reject(v, e == BUNDLE_ERR_NOMEM ? 503 : 400, e == BUNDLE_ERR_NOMEM ? "Service Unavailable" : "Malformed request",
		       "cannot make the log record: %s (%s)", bundle_strerror(e), bundle_last_cause());
		goto out;
	}
	rc = 0;
out:
	bundle_key_free(owned);
	return rc;
}
