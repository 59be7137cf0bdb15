/* Registration policy of sluice-ts.
 *
 * A statement is accepted when:
 *   - it is at most max_statement bytes of deterministic-head CBOR, exactly one item;
 *   - it is a tagged COSE_Sign1 (18) whose payload is attached;
 *   - the protected header has alg (1) from the allowlist, a kid (4) or an x5chain (33), and
 *     CWT claims (15) with iss (1) and sub (2) as text; no content type (3) with a hash envelope
 *     (258); crit (2), if present, lists only labels we understand and that are present;
 *   - its signature verifies with the issuer key: the trust-store key that the kid names
 *     (RFC 9679 thumbprint, SHA-256 of the SPKI raw or as hex, or the file name), or, with
 *     open registration, the leaf certificate of a protected x5chain.
 * The record that enters the log is the statement with its unprotected header replaced by {}
 * (the other items are kept byte for byte).
 *
 * This is sluice-ts's own COSE check, independent of libbundle's (which the clients and the
 * tests use to verify what the service logged and signed), so each checks the other. */
#include "transparency/ts-int.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRUST_KEYS 1024

struct tkey {
	EVP_PKEY *pkey;
	uint8_t thumb[32], spki[32];
	char spki_hex[65];
	char name[64]; /* file name without .pem */
};

struct ts_policy {
	struct tkey *keys;
	size_t n_keys;
	int open_registration;
	int64_t algs[16];
	size_t n_algs;
	size_t max_statement;
};

void ts_policy_free(struct ts_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_keys; i++)
		EVP_PKEY_free(p->keys[i].pkey);
	free(p->keys);
	free(p);
}

size_t ts_policy_key_count(const struct ts_policy *p) { return p->n_keys; }

static void hexs(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = 0;
}

/* RFC 9679 thumbprint and SHA-256(SPKI DER). */
static int key_ids(EVP_PKEY *pk, uint8_t thumb[32], uint8_t spki[32])
{
	uint8_t *der = NULL;
	int derlen = i2d_PUBKEY(pk, &der);
	uint8_t pub[133];
	size_t publen = 0;
	struct ts_buf b = {0};
	int rc = -1;

	if (derlen <= 0 || !EVP_Digest(der, (size_t)derlen, spki, NULL, EVP_sha256(), NULL))
		goto out;
	if (EVP_PKEY_is_a(pk, "EC")) {
		char g[32];
		int crv;
		size_t fl;
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof g, NULL) ||
		    !EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, sizeof pub, &publen))
			goto out;
		if (strcmp(g, "prime256v1") == 0)
			crv = 1, fl = 32;
		else if (strcmp(g, "secp384r1") == 0)
			crv = 2, fl = 48;
		else if (strcmp(g, "secp521r1") == 0)
			crv = 3, fl = 66;
		else
			goto out;
		if (publen != 1 + 2 * fl || pub[0] != 4)
			goto out;
		ts_cbor_head(&b, 5, 4);
		ts_cbor_int(&b, 1);
		ts_cbor_int(&b, 2);
		ts_cbor_int(&b, -1);
		ts_cbor_int(&b, crv);
		ts_cbor_int(&b, -2);
		ts_cbor_bstr(&b, pub + 1, fl);
		ts_cbor_int(&b, -3);
		ts_cbor_bstr(&b, pub + 1 + fl, fl);
	} else if (EVP_PKEY_is_a(pk, "ED25519")) {
		publen = 32;
		if (!EVP_PKEY_get_raw_public_key(pk, pub, &publen))
			goto out;
		ts_cbor_head(&b, 5, 3);
		ts_cbor_int(&b, 1);
		ts_cbor_int(&b, 1);
		ts_cbor_int(&b, -1);
		ts_cbor_int(&b, 6);
		ts_cbor_int(&b, -2);
		ts_cbor_bstr(&b, pub, 32);
	} else {
		goto out;
	}
	if (b.oom || !EVP_Digest(b.p, b.len, thumb, NULL, EVP_sha256(), NULL))
		goto out;
	rc = 0;
out:
	ts_buf_free(&b);
	OPENSSL_free(der);
	return rc;
}

static EVP_PKEY *load_pem(const char *path)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	if (!f)
		return NULL;
	pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	if (!pk) {
		rewind(f);
		x = PEM_read_X509(f, NULL, NULL, NULL);
		if (x)
			pk = X509_get_pubkey(x);
		X509_free(x);
	}
	fclose(f);
	return pk;
}

int ts_policy_new(const struct ts_policy_cfg *cfg, struct ts_policy **ret, char *err, size_t errlen)
{
	struct ts_policy *p = calloc(1, sizeof *p);
	DIR *d = NULL;
	struct dirent *de;
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
		p->algs[0] = -7;
		p->algs[1] = -35;
		p->algs[2] = -36;
		p->n_algs = 3;
	}
	if (cfg->trust_dir) {
		d = opendir(cfg->trust_dir);
		if (!d) {
			snprintf(err, errlen, "trust store %s: %s", cfg->trust_dir, strerror(errno));
			goto out;
		}
		p->keys = calloc(MAX_TRUST_KEYS, sizeof *p->keys);
		if (!p->keys) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		while ((de = readdir(d))) {
			size_t n = strlen(de->d_name);
			char path[4096];
			struct tkey *k;
			if (n < 5 || strcmp(de->d_name + n - 4, ".pem") != 0)
				continue;
			if (p->n_keys == MAX_TRUST_KEYS) {
				snprintf(err, errlen, "trust store %s: more than %d keys", cfg->trust_dir, MAX_TRUST_KEYS);
				goto out;
			}
			snprintf(path, sizeof path, "%s/%s", cfg->trust_dir, de->d_name);
			k = &p->keys[p->n_keys];
			k->pkey = load_pem(path);
			if (!k->pkey || key_ids(k->pkey, k->thumb, k->spki) != 0) {
				EVP_PKEY_free(k->pkey);
				k->pkey = NULL;
				snprintf(err, errlen, "trust store: %s is not a usable public key or certificate", path);
				goto out;
			}
			hexs(k->spki, 32, k->spki_hex);
			snprintf(k->name, sizeof k->name, "%.*s", (int)(n - 4 < 63 ? n - 4 : 63), de->d_name);
			p->n_keys++;
		}
	}
	if (!p->n_keys && !p->open_registration) {
		snprintf(err, errlen, "no issuer keys: give --trust-dir with *.pem keys, or --open-registration");
		goto out;
	}
	*ret = p;
	p = NULL;
	rc = 0;
out:
	if (d)
		closedir(d);
	ts_policy_free(p);
	return rc;
}

static const struct tkey *find_key(const struct ts_policy *p, const uint8_t *kid, size_t len)
{
	for (size_t i = 0; i < p->n_keys; i++) {
		const struct tkey *k = &p->keys[i];
		if ((len == 32 && (CRYPTO_memcmp(kid, k->thumb, 32) == 0 || CRYPTO_memcmp(kid, k->spki, 32) == 0)) ||
		    (len == 64 && memcmp(kid, k->spki_hex, 64) == 0) ||
		    (len == strlen(k->name) && memcmp(kid, k->name, len) == 0))
			return k;
	}
	return NULL;
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

struct parsed {
	struct ts_cbor_item prot, unprot_start, payload, sig;
	const uint8_t *prot_item, *prot_end, *payload_item, *payload_end, *sig_item, *sig_end;
	int64_t alg;
	int has_alg, has_ct, has_258;
	const uint8_t *kid;
	size_t kid_len;
	const uint8_t *x5_leaf;
	size_t x5_len;
	int iss_ok, sub_ok;
	const uint8_t *crit;
	const uint8_t *crit_end;
};

static int known_label(int64_t l)
{
	switch (l) {
	case 1: case 2: case 3: case 4: case 15: case 16: case 33: case 34: case 258: case 259: case 260:
		return 1;
	default:
		return 0;
	}
}

/* Walk the protected header map. */
static int parse_protected(struct parsed *ps, struct ts_verdict *v)
{
	struct ts_cbor_rd r = {ps->prot.data, ps->prot.data + ps->prot.val};
	struct ts_cbor_item m, k, it;
	int64_t seen[64];
	size_t n_seen = 0;

	if (ts_cbor_next(&r, &m) != 0 || m.major != 5)
		return reject(v, 400, "Malformed request", "protected header is not a CBOR map");
	for (uint64_t i = 0; i < m.val; i++) {
		int64_t label;
		const uint8_t *vstart;
		if (ts_cbor_next(&r, &k) != 0)
			return reject(v, 400, "Malformed request", "truncated protected header");
		if (k.major == 3) { /* text labels: skip the value */
			if (ts_cbor_skip(&r) != 0)
				return reject(v, 400, "Malformed request", "truncated protected header");
			continue;
		}
		if (ts_cbor_as_int(&k, &label) != 0)
			return reject(v, 400, "Malformed request", "protected header label is not an int or text");
		for (size_t j = 0; j < n_seen; j++)
			if (seen[j] == label)
				return reject(v, 400, "Malformed request", "duplicate protected header label %lld",
					      (long long)label);
		if (n_seen < 64)
			seen[n_seen++] = label;
		vstart = r.p;
		switch (label) {
		case 1:
			if (ts_cbor_next(&r, &it) != 0 || ts_cbor_as_int(&it, &ps->alg) != 0)
				return reject(v, 400, "Malformed request", "alg (1) is not an integer");
			ps->has_alg = 1;
			break;
		case 3:
			ps->has_ct = 1;
			if (ts_cbor_skip(&r) != 0)
				return reject(v, 400, "Malformed request", "bad content type (3)");
			break;
		case 258:
			ps->has_258 = 1;
			if (ts_cbor_skip(&r) != 0)
				return reject(v, 400, "Malformed request", "bad payload-hash-alg (258)");
			break;
		case 4:
			if (ts_cbor_next(&r, &it) != 0 || (it.major != 2 && it.major != 3) || it.val == 0)
				return reject(v, 400, "Malformed request", "kid (4) is not a non-empty byte string");
			ps->kid = it.data;
			ps->kid_len = it.val;
			break;
		case 2:
			ps->crit = r.p;
			if (ts_cbor_skip(&r) != 0)
				return reject(v, 400, "Malformed request", "bad crit (2)");
			ps->crit_end = r.p;
			break;
		case 33:
			if (ts_cbor_next(&r, &it) != 0)
				return reject(v, 400, "Malformed request", "bad x5chain (33)");
			if (it.major == 4 && it.val > 0) {
				struct ts_cbor_item c;
				if (ts_cbor_next(&r, &c) != 0 || c.major != 2)
					return reject(v, 400, "Malformed request", "x5chain (33) holds a non-bstr");
				ps->x5_leaf = c.data;
				ps->x5_len = c.val;
				for (uint64_t j = 1; j < it.val; j++)
					if (ts_cbor_skip(&r) != 0)
						return reject(v, 400, "Malformed request", "bad x5chain (33)");
			} else if (it.major == 2) {
				ps->x5_leaf = it.data;
				ps->x5_len = it.val;
			} else {
				return reject(v, 400, "Malformed request", "x5chain (33) is not a bstr or array");
			}
			break;
		case 15: {
			if (ts_cbor_next(&r, &it) != 0 || it.major != 5)
				return reject(v, 400, "Malformed request", "CWT claims (15) is not a map");
			for (uint64_t j = 0; j < it.val; j++) {
				struct ts_cbor_item ck, cv;
				int64_t cl = 0;
				if (ts_cbor_next(&r, &ck) != 0)
					return reject(v, 400, "Malformed request", "truncated CWT claims");
				if (ts_cbor_as_int(&ck, &cl) == 0 && (cl == 1 || cl == 2)) {
					if (ts_cbor_next(&r, &cv) != 0 || cv.major != 3 || cv.val == 0 || cv.val > 8192)
						return reject(v, 400, "Missing claims",
							      "CWT claim %s must be a non-empty text string",
							      cl == 1 ? "iss (1)" : "sub (2)");
					if (cl == 1)
						ps->iss_ok = 1;
					else
						ps->sub_ok = 1;
				} else if (ts_cbor_skip(&r) != 0) {
					return reject(v, 400, "Malformed request", "truncated CWT claims");
				}
			}
			break;
		}
		default:
			if (ts_cbor_skip(&r) != 0)
				return reject(v, 400, "Malformed request", "truncated protected header");
			break;
		}
		(void)vstart;
	}
	if (r.p != r.end)
		return reject(v, 400, "Malformed request", "trailing bytes in the protected header");
	if (ps->crit) {
		struct ts_cbor_rd cr = {ps->crit, ps->crit_end};
		struct ts_cbor_item ca, ci;
		int64_t l;
		if (ts_cbor_next(&cr, &ca) != 0 || ca.major != 4 || ca.val == 0)
			return reject(v, 400, "Malformed request", "crit (2) must be a non-empty array");
		for (uint64_t j = 0; j < ca.val; j++) {
			int present = 0;
			if (ts_cbor_next(&cr, &ci) != 0 || ts_cbor_as_int(&ci, &l) != 0 || !known_label(l))
				return reject(v, 400, "Unsupported critical header",
					      "crit lists a label this service does not understand");
			for (size_t s = 0; s < n_seen; s++)
				present |= seen[s] == l;
			if (!present)
				return reject(v, 400, "Malformed request", "crit lists label %lld which is absent",
					      (long long)l);
		}
	}
	return 0;
}

static int parse(const uint8_t *buf, size_t len, struct parsed *ps, struct ts_verdict *v)
{
	struct ts_cbor_rd r = {buf, buf + len};
	struct ts_cbor_item it;

	memset(ps, 0, sizeof *ps);
	if (ts_cbor_next(&r, &it) != 0)
		return reject(v, 400, "Malformed request", "body is not well-formed deterministic CBOR");
	if (it.major != 6 || it.val != 18)
		return reject(v, 400, "Malformed request", "not a tagged COSE_Sign1 (want tag 18)");
	if (ts_cbor_next(&r, &it) != 0 || it.major != 4 || it.val != 4)
		return reject(v, 400, "Malformed request", "COSE_Sign1 must be an array of 4");
	ps->prot_item = r.p;
	if (ts_cbor_next(&r, &ps->prot) != 0 || ps->prot.major != 2)
		return reject(v, 400, "Malformed request", "protected header must be a byte string");
	ps->prot_end = r.p;
	if (ts_cbor_next(&r, &it) != 0 || it.major != 5)
		return reject(v, 400, "Malformed request", "unprotected header must be a map");
	r.p = it.start;
	if (ts_cbor_skip(&r) != 0)
		return reject(v, 400, "Malformed request", "unprotected header is not well-formed");
	ps->payload_item = r.p;
	if (ts_cbor_next(&r, &ps->payload) != 0)
		return reject(v, 400, "Malformed request", "truncated COSE_Sign1");
	if (ps->payload.major == 7 && ps->payload.val == 22)
		return reject(v, 400, "Payload Missing", "detached payloads cannot be registered");
	if (ps->payload.major != 2)
		return reject(v, 400, "Malformed request", "payload must be a byte string");
	ps->payload_end = r.p;
	ps->sig_item = r.p;
	if (ts_cbor_next(&r, &ps->sig) != 0 || ps->sig.major != 2)
		return reject(v, 400, "Malformed request", "signature must be a byte string");
	ps->sig_end = r.p;
	if (r.p != r.end)
		return reject(v, 400, "Malformed request", "trailing bytes after the COSE_Sign1");
	if (ps->prot.val == 0)
		return reject(v, 400, "Malformed request", "empty protected header");
	return parse_protected(ps, v);
}

static int verify_sig(EVP_PKEY *pk, const struct parsed *ps, struct ts_verdict *v)
{
	const EVP_MD *md = NULL;
	size_t fl = 0;
	struct ts_buf tbs = {0};
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	uint8_t *der = NULL;
	int derlen, ok = 0;
	const uint8_t *sig = ps->sig.data;
	size_t siglen = ps->sig.val;

	switch (ps->alg) {
	case -7: md = EVP_sha256(); fl = 32; break;
	case -35: md = EVP_sha384(); fl = 48; break;
	case -36: md = EVP_sha512(); fl = 66; break;
	case -8: break;
	default:
		return reject(v, 400, "Bad Signature Algorithm", "algorithm %lld is not supported", (long long)ps->alg);
	}
	if (ps->alg == -8 ? !EVP_PKEY_is_a(pk, "ED25519") : !EVP_PKEY_is_a(pk, "EC") ||
	    EVP_PKEY_get_bits(pk) != (int)(fl == 66 ? 521 : fl * 8))
		return reject(v, 400, "Bad Signature Algorithm", "the issuer key does not fit algorithm %lld",
			      (long long)ps->alg);
	ts_cbor_head(&tbs, 4, 4);
	ts_cbor_tstr(&tbs, "Signature1");
	ts_buf_put(&tbs, ps->prot_item, (size_t)(ps->prot_end - ps->prot_item));
	ts_cbor_bstr(&tbs, NULL, 0);
	ts_buf_put(&tbs, ps->payload_item, (size_t)(ps->payload_end - ps->payload_item));
	if (tbs.oom)
		goto out;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		goto out;
	if (ps->alg == -8) {
		if (siglen != 64)
			goto bad;
		ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
		     EVP_DigestVerify(ctx, sig, siglen, tbs.p, tbs.len) == 1;
	} else {
		BIGNUM *r = NULL, *s = NULL;
		if (siglen != 2 * fl)
			goto bad;
		es = ECDSA_SIG_new();
		r = BN_bin2bn(sig, (int)fl, NULL);
		s = BN_bin2bn(sig + fl, (int)fl, NULL);
		if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
			BN_free(r);
			BN_free(s);
			goto out;
		}
		derlen = i2d_ECDSA_SIG(es, &der);
		if (derlen <= 0)
			goto out;
		ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1 &&
		     EVP_DigestVerify(ctx, der, (size_t)derlen, tbs.p, tbs.len) == 1;
	}
bad:
	if (!ok)
		reject(v, 400, "Bad Signature", "the statement signature does not verify with the issuer key");
out:
	if (!ok && !v->status)
		reject(v, 500, "Internal error", "signature check failed to run");
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	ts_buf_free(&tbs);
	return ok ? 0 : -1;
}

int ts_policy_check(const struct ts_policy *p, const uint8_t *stmt, size_t len, uint8_t **ret_rec,
		    size_t *ret_rec_len, struct ts_verdict *v)
{
	struct parsed ps;
	EVP_PKEY *owned = NULL;
	EVP_PKEY *pk = NULL;
	int alg_ok = 0, rc = -1;
	uint8_t *rec = NULL;
	size_t rlen;

	memset(v, 0, sizeof *v);
	if (len > p->max_statement)
		return reject(v, 413, "Payload Too Large", "statement of %zu bytes exceeds the limit of %zu", len,
			      p->max_statement);
	if (parse(stmt, len, &ps, v) != 0)
		return -1;
	if (!ps.has_alg)
		return reject(v, 400, "Bad Signature Algorithm", "protected header has no alg (1)");
	for (size_t i = 0; i < p->n_algs; i++)
		alg_ok |= p->algs[i] == ps.alg;
	if (!alg_ok)
		return reject(v, 400, "Bad Signature Algorithm", "algorithm %lld is not allowed here",
			      (long long)ps.alg);
	if (!ps.kid && !ps.x5_leaf)
		return reject(v, 400, "Confirmation Missing", "protected header has neither kid (4) nor x5chain (33)");
	if (!ps.iss_ok || !ps.sub_ok)
		return reject(v, 400, "Missing claims", "protected header needs CWT claims (15) with iss (1) and sub (2)");
	if (ps.has_258 && ps.has_ct)
		return reject(v, 400, "Malformed request", "content type (3) must not appear in a hash envelope");
	if (ps.kid) {
		const struct tkey *k = find_key(p, ps.kid, ps.kid_len);
		if (k)
			pk = k->pkey;
	}
	if (!pk && p->open_registration && ps.x5_leaf) {
		const uint8_t *q = ps.x5_leaf;
		X509 *x = d2i_X509(NULL, &q, (long)ps.x5_len);
		if (x)
			owned = X509_get_pubkey(x);
		X509_free(x);
		if (!owned)
			return reject(v, 400, "Rejected", "x5chain leaf is not a usable certificate");
		pk = owned;
	}
	if (!pk) {
		if (p->open_registration)
			reject(v, 400, "Rejected", "unknown issuer key and no protected x5chain to take the key from");
		else
			reject(v, 400, "Rejected", "the kid does not name a key in the trust store");
		goto out;
	}
	if (verify_sig(pk, &ps, v) != 0)
		goto out;
	/* The record: tag, array head, protected item, {}, payload item, signature item. */
	rlen = 2 + (size_t)(ps.prot_end - ps.prot_item) + 1 + (size_t)(ps.payload_end - ps.payload_item) +
	       (size_t)(ps.sig_end - ps.sig_item);
	rec = malloc(rlen);
	if (!rec) {
		reject(v, 503, "Service Unavailable", "out of memory");
		goto out;
	}
	{
		uint8_t *w = rec;
		*w++ = 0xd2;
		*w++ = 0x84;
		memcpy(w, ps.prot_item, (size_t)(ps.prot_end - ps.prot_item));
		w += ps.prot_end - ps.prot_item;
		*w++ = 0xa0;
		memcpy(w, ps.payload_item, (size_t)(ps.payload_end - ps.payload_item));
		w += ps.payload_end - ps.payload_item;
		memcpy(w, ps.sig_item, (size_t)(ps.sig_end - ps.sig_item));
	}
	*ret_rec = rec;
	*ret_rec_len = rlen;
	rc = 0;
out:
	EVP_PKEY_free(owned);
	return rc;
}
