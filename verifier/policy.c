/* The verifier's policy: a JSON file of host groups (docs/policy.md). Parsed strictly (unknown
 * keys, duplicate keys, bad digests and unreadable release files are errors), so that a typo
 * never silently widens what is accepted. Swapped atomically on SIGHUP; a bad file keeps the
 * old policy. */
#include "verifier/verifier-int.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TPM_ALG_SHA256 0x000b

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

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void group_clear(struct verifier_group *g)
{
	free(g->name);
	free_strv(g->hosts, g->n_hosts);
	for (size_t i = 0; i < VERIFIER_MAX_PCR; i++)
		free(g->pcr_values[i].vals);
	free(g->events);
	free(g->rootfs);
	free_strv(g->tools, g->n_tools);
	for (size_t i = 0; i < g->n_release; i++) {
		free(g->release[i].name);
		if (g->release[i].data)
			OPENSSL_cleanse(g->release[i].data, g->release[i].len);
		free(g->release[i].data);
	}
	free(g->release);
	if (g->release_pt) {
		OPENSSL_cleanse(g->release_pt, g->release_pt_len);
		free(g->release_pt);
	}
}

/* The release payload every affirming verdict of the group encrypts: {"name": base64(content)}
 * with sorted keys, compact. It depends on the policy only, so it is encoded here once rather
 * than at every appraisal. Every copy of the secret made on the way is wiped. */
static int release_plaintext(struct verifier_group *g)
{
	json_t *obj = json_object();
	const char *k;
	json_t *v;
	int rc = -1;

	for (size_t i = 0; i < g->n_release && obj; i++) {
		char *b = verifier_b64_encode(g->release[i].data, g->release[i].len);
		if (!b)
			goto out;
		json_object_set_new(obj, g->release[i].name, json_string(b));
		OPENSSL_cleanse(b, strlen(b));
		free(b);
	}
	if (!obj || !(g->release_pt = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS)))
		goto out;
	g->release_pt_len = strlen(g->release_pt);
	rc = 0;
out:
	if (obj)
		json_object_foreach(obj, k, v) {
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
		}
	json_decref(obj);
	return rc;
}

void verifier_policy_free(struct verifier_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_groups; i++)
		group_clear(&p->groups[i]);
	free(p->groups);
	free(p->id);
	free_strv(p->reenroll_hosts, p->n_reenroll_hosts);
	free(p->ek_pub_allowed);
	free(p);
}

/* Only the listed keys may appear in obj. */
static int only_keys(json_t *obj, const char *const *keys, const char *where, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v) {
		int found = 0;
		for (size_t i = 0; keys[i]; i++)
			if (strcmp(k, keys[i]) == 0)
				found = 1;
		if (!found) {
			seterr(err, errlen, "%s: unknown key \"%s\"", where, k);
			return -1;
		}
	}
	return 0;
}

static int strv(json_t *arr, char ***ret, size_t *n, size_t maxlen, const char *where, char *err, size_t errlen)
{
	size_t i;
	json_t *v;
	char **out;

	if (!json_is_array(arr)) {
		seterr(err, errlen, "%s: must be an array of strings", where);
		return -1;
	}
	out = calloc(json_array_size(arr) + 1, sizeof *out);
	if (!out)
		return -1;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > maxlen) {
			seterr(err, errlen, "%s[%zu]: must be a non-empty string of at most %zu bytes", where, i, maxlen);
			free_strv(out, i);
			return -1;
		}
		out[i] = strdup(json_string_value(v));
		if (!out[i]) {
			free_strv(out, i);
			return -1;
		}
	}
	*ret = out;
	*n = json_array_size(arr);
	return 0;
}

/* A SHA-256 digest: 64 hex digits, optionally prefixed "sha256:". */
static int digest(const char *s, uint8_t out[VERIFIER_HASH_LEN])
{
	if (strncmp(s, "sha256:", 7) == 0)
		s += 7;
	return strlen(s) == 64 && verifier_unhex(s, out, VERIFIER_HASH_LEN) == VERIFIER_HASH_LEN ? 0 : -1;
}

static int digests(json_t *arr, uint8_t (**ret)[VERIFIER_HASH_LEN], size_t *n, const char *where, char *err,
		   size_t errlen)
{
	size_t i;
	json_t *v;
	uint8_t(*out)[VERIFIER_HASH_LEN];

	if (!json_is_array(arr)) {
		seterr(err, errlen, "%s: must be an array of sha256 digests", where);
		return -1;
	}
	out = calloc(json_array_size(arr) + 1, sizeof *out);
	if (!out)
		return -1;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || digest(json_string_value(v), out[i]) != 0) {
			seterr(err, errlen, "%s[%zu]: not a sha256 digest (64 hex digits, optional \"sha256:\" prefix)",
			       where, i);
			free(out);
			return -1;
		}
	}
	*ret = out;
	*n = json_array_size(arr);
	return 0;
}

static int load_file(const char *basedir, const char *name, uint8_t **ret, size_t *ret_len, size_t max,
		     char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd = -1, rc = -1;
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;

	if (name[0] == '/' || !basedir)
		snprintf(path, sizeof path, "%s", name);
	else if (snprintf(path, sizeof path, "%s/%s", basedir, name) >= (int)sizeof path) {
		seterr(err, errlen, "release file path too long: %s", name);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		seterr(err, errlen, "cannot read release file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		seterr(err, errlen, "release file %s: not a regular file of at most %zu bytes", path, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto out;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			seterr(err, errlen, "cannot read release file %s: %s", path, r ? strerror(errno) : "short read");
			goto out;
		}
		got += (size_t)r;
	}
	*ret = buf;
	*ret_len = got;
	buf = NULL;
	rc = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, got);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

static int valid_cred_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static int parse_group(json_t *jg, size_t idx, const char *basedir, struct verifier_group *g, char *err,
		       size_t errlen)
{
	static const char *const keys[] = {"name", "hosts", "pcrs", "pcr_values", "events", "rootfs",
					   "release", "tools", "verdict_lifetime", NULL};
	char where[96];
	json_t *v, *pcrs, *arr;
	const char *k;
	size_t i, total = 0;

	snprintf(where, sizeof where, "groups[%zu]", idx);
	if (!json_is_object(jg)) {
		seterr(err, errlen, "%s: must be an object", where);
		return -1;
	}
	if (only_keys(jg, keys, where, err, errlen))
		return -1;
	v = json_object_get(jg, "name");
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 64) {
		seterr(err, errlen, "%s.name: required, a string of 1..64 bytes", where);
		return -1;
	}
	if (!(g->name = strdup(json_string_value(v))))
		return -1;
	snprintf(where, sizeof where, "group \"%s\"", g->name);

	v = json_object_get(jg, "hosts");
	if (!v) {
		seterr(err, errlen, "%s.hosts: required (host id patterns, e.g. [\"web-*\"])", where);
		return -1;
	}
	if (strv(v, &g->hosts, &g->n_hosts, VERIFIER_MAX_HOST_ID, where, err, errlen))
		return -1;

	pcrs = json_object_get(jg, "pcrs");
	if (!json_is_object(pcrs) || json_object_size(pcrs) != 1 || !(arr = json_object_get(pcrs, "sha256"))) {
		seterr(err, errlen, "%s.pcrs: required, {\"sha256\": [PCR indexes]} (sha256 is the one supported bank)",
		       where);
		return -1;
	}
	g->pcr_alg = TPM_ALG_SHA256;
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		seterr(err, errlen, "%s.pcrs.sha256: a non-empty array of PCR indexes", where);
		return -1;
	}
	json_array_foreach(arr, i, v) {
		json_int_t p = json_is_integer(v) ? json_integer_value(v) : -1;
		if (p < 0 || p >= VERIFIER_MAX_PCR || (g->pcr_mask & (1u << p))) {
			seterr(err, errlen, "%s.pcrs.sha256[%zu]: PCR index 0..23, each once", where, i);
			return -1;
		}
		g->pcr_mask |= 1u << p;
	}

	v = json_object_get(jg, "pcr_values");
	if (v) {
		if (!json_is_object(v)) {
			seterr(err, errlen, "%s.pcr_values: an object {\"PCR\": [accepted sha256 values]}", where);
			return -1;
		}
		json_object_foreach(v, k, arr) {
			char *end;
			long p = strtol(k, &end, 10);
			char w2[192];
			if (*k == 0 || *end || p < 0 || p >= VERIFIER_MAX_PCR || !(g->pcr_mask & (1u << p))) {
				seterr(err, errlen, "%s.pcr_values: key \"%s\" is not a PCR of the selection", where, k);
				return -1;
			}
			snprintf(w2, sizeof w2, "%s.pcr_values.%s", where, k);
			if (digests(arr, &g->pcr_values[p].vals, &g->pcr_values[p].n, w2, err, errlen))
				return -1;
			if (g->pcr_values[p].n == 0) {
				seterr(err, errlen, "%s: empty list (would accept nothing)", w2);
				return -1;
			}
		}
	}

	v = json_object_get(jg, "events");
	if (v) {
		char w2[192];
		snprintf(w2, sizeof w2, "%s.events", where);
		if (digests(v, &g->events, &g->n_events, w2, err, errlen))
			return -1;
		g->events_set = 1;
	}

	v = json_object_get(jg, "rootfs");
	{
		char w2[192];
		snprintf(w2, sizeof w2, "%s.rootfs", where);
		if (!v) {
			seterr(err, errlen, "%s: required (accepted root digests from `sluice measure --archive`)", w2);
			return -1;
		}
		if (digests(v, &g->rootfs, &g->n_rootfs, w2, err, errlen))
			return -1;
	}

	v = json_object_get(jg, "tools");
	if (v && strv(v, &g->tools, &g->n_tools, 64, where, err, errlen))
		return -1;

	v = json_object_get(jg, "release");
	if (v) {
		if (!json_is_object(v)) {
			seterr(err, errlen, "%s.release: an object {\"credential-name\": \"file\"}", where);
			return -1;
		}
		g->release = calloc(json_object_size(v) + 1, sizeof *g->release);
		if (!g->release)
			return -1;
		json_object_foreach(v, k, arr) {
			struct verifier_release_file *f = &g->release[g->n_release];
			if (!valid_cred_name(k) || !json_is_string(arr)) {
				seterr(err, errlen,
				       "%s.release: \"%s\": names are [A-Za-z0-9._-]{1,64} (no leading dot), values file paths",
				       where, k);
				return -1;
			}
			if (!(f->name = strdup(k)))
				return -1;
			g->n_release++;
			if (load_file(basedir, json_string_value(arr), &f->data, &f->len, VERIFIER_MAX_RELEASE, err,
				      errlen))
				return -1;
			total += f->len;
			if (total > VERIFIER_MAX_RELEASE) {
				seterr(err, errlen, "%s.release: more than %u bytes in all", where, VERIFIER_MAX_RELEASE);
				return -1;
			}
		}
	}

	if (release_plaintext(g) != 0) {
		seterr(err, errlen, "%s.release: out of memory", where);
		return -1;
	}

	g->lifetime = 3600;
	v = json_object_get(jg, "verdict_lifetime");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 31 * 86400) {
			seterr(err, errlen, "%s.verdict_lifetime: seconds, 1..2678400", where);
			return -1;
		}
		g->lifetime = json_integer_value(v);
	}
	return 0;
}

enum verifier_err verifier_policy_parse(const char *text, size_t len, const char *basedir,
					struct verifier_policy **ret, char *err, size_t errlen)
{
	static const char *const keys[] = {"policy_id", "nonce_ttl", "enrollment", "groups", NULL};
	static const char *const ekeys[] = {"allow_reenroll", "ek_public_keys", NULL};
	json_error_t je;
	json_t *root = NULL, *v, *groups;
	struct verifier_policy *p = NULL;
	enum verifier_err rc = VERIFIER_ERR_POLICY;
	size_t i;
	char hex[2 * VERIFIER_HASH_LEN + 1];
	unsigned int mdlen = 0;

	if (len > VERIFIER_MAX_POLICY) {
		seterr(err, errlen, "policy larger than %u bytes", VERIFIER_MAX_POLICY);
		return VERIFIER_ERR_POLICY;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		seterr(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
		return VERIFIER_ERR_POLICY;
	}
	if (!json_is_object(root)) {
		seterr(err, errlen, "the policy must be a JSON object");
		goto out;
	}
	if (only_keys(root, keys, "policy", err, errlen))
		goto out;
	if (!(p = calloc(1, sizeof *p))) {
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	if (!EVP_Digest(text, len, p->file_hash, &mdlen, EVP_sha256(), NULL)) {
		rc = VERIFIER_ERR_CRYPTO;
		goto out;
	}
	v = json_object_get(root, "policy_id");
	if (v && (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 128)) {
		seterr(err, errlen, "policy_id: a string of 1..128 bytes");
		goto out;
	}
	if (v)
		p->id = strdup(json_string_value(v));
	else {
		char buf[8 + sizeof hex];
		verifier_hex(p->file_hash, VERIFIER_HASH_LEN, hex);
		snprintf(buf, sizeof buf, "sha256:%s", hex);
		p->id = strdup(buf);
	}
	if (!p->id) {
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	p->nonce_ttl = 60;
	v = json_object_get(root, "nonce_ttl");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 3600) {
			seterr(err, errlen, "nonce_ttl: seconds, 1..3600");
			goto out;
		}
		p->nonce_ttl = json_integer_value(v);
	}
	v = json_object_get(root, "enrollment");
	if (v) {
		json_t *a;
		if (!json_is_object(v) || only_keys(v, ekeys, "enrollment", err, errlen)) {
			if (!json_is_object(v))
				seterr(err, errlen, "enrollment: must be an object");
			goto out;
		}
		a = json_object_get(v, "allow_reenroll");
		if (json_is_boolean(a))
			p->allow_reenroll_any = json_is_true(a);
		else if (a && strv(a, &p->reenroll_hosts, &p->n_reenroll_hosts, VERIFIER_MAX_HOST_ID,
				   "enrollment.allow_reenroll", err, errlen))
			goto out;
		a = json_object_get(v, "ek_public_keys");
		if (a && digests(a, &p->ek_pub_allowed, &p->n_ek_pub_allowed, "enrollment.ek_public_keys", err, errlen))
			goto out;
	}
	groups = json_object_get(root, "groups");
	if (!json_is_array(groups) || json_array_size(groups) == 0 || json_array_size(groups) > 1024) {
		seterr(err, errlen, "groups: required, a non-empty array (at most 1024)");
		goto out;
	}
	if (!(p->groups = calloc(json_array_size(groups), sizeof *p->groups))) {
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	json_array_foreach(groups, i, v) {
		p->n_groups = i + 1;
		if (parse_group(v, i, basedir, &p->groups[i], err, errlen))
			goto out;
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->groups[j].name, p->groups[i].name) == 0) {
				seterr(err, errlen, "groups[%zu]: duplicate group name \"%s\"", i, p->groups[i].name);
				goto out;
			}
	}
	*ret = p;
	p = NULL;
	rc = VERIFIER_OK;
out:
	verifier_policy_free(p);
	json_decref(root);
	return rc;
}

enum verifier_err verifier_policy_load(const char *path, struct verifier_policy **ret, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL, *dir = NULL, *slash;
	size_t len = 0;
	enum verifier_err rc;

	if (!f) {
		seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return VERIFIER_ERR_IO;
	}
	buf = malloc(VERIFIER_MAX_POLICY + 1);
	if (!buf) {
		fclose(f);
		return VERIFIER_ERR_NOMEM;
	}
	len = fread(buf, 1, VERIFIER_MAX_POLICY + 1, f);
	if (ferror(f)) {
		seterr(err, errlen, "cannot read %s: %s", path, strerror(errno));
		rc = VERIFIER_ERR_IO;
		goto out;
	}
	dir = strdup(path);
	if (!dir) {
		rc = VERIFIER_ERR_NOMEM;
		goto out;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		strcpy(dir, ".");
	rc = verifier_policy_parse(buf, len, dir, ret, err, errlen);
out:
	fclose(f);
	free(buf);
	free(dir);
	return rc;
}

const struct verifier_group *verifier_policy_group(const struct verifier_policy *p, const char *host_id)
{
	for (size_t i = 0; i < p->n_groups; i++)
		for (size_t j = 0; j < p->groups[i].n_hosts; j++)
			if (fnmatch(p->groups[i].hosts[j], host_id, 0) == 0)
				return &p->groups[i];
	return NULL;
}

const struct verifier_group *verifier_policy_group_by_name(const struct verifier_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_groups; i++)
		if (strcmp(p->groups[i].name, name) == 0)
			return &p->groups[i];
	return NULL;
}

int verifier_policy_reenroll_allowed(const struct verifier_policy *p, const char *host_id)
{
	if (p->allow_reenroll_any)
		return 1;
	for (size_t i = 0; i < p->n_reenroll_hosts; i++)
		if (strcmp(p->reenroll_hosts[i], host_id) == 0)
			return 1;
	return 0;
}

static int in_set(const uint8_t (*set)[VERIFIER_HASH_LEN], size_t n, const uint8_t *d)
{
	for (size_t i = 0; i < n; i++)
		if (CRYPTO_memcmp(set[i], d, VERIFIER_HASH_LEN) == 0)
			return 1;
	return 0;
}

int verifier_policy_ek_pub_allowed(const struct verifier_policy *p, const uint8_t spki_hash[VERIFIER_HASH_LEN])
{
	return in_set((const uint8_t(*)[VERIFIER_HASH_LEN])p->ek_pub_allowed, p->n_ek_pub_allowed, spki_hash);
}

int verifier_group_rootfs_ok(const struct verifier_group *g, const uint8_t d[VERIFIER_HASH_LEN])
{
	return in_set((const uint8_t(*)[VERIFIER_HASH_LEN])g->rootfs, g->n_rootfs, d);
}

int verifier_group_event_ok(const struct verifier_group *g, const uint8_t d[VERIFIER_HASH_LEN])
{
	if (!g->events_set)
		return 1;
	return in_set((const uint8_t(*)[VERIFIER_HASH_LEN])g->events, g->n_events, d);
}

int verifier_group_pcr_value_ok(const struct verifier_group *g, unsigned pcr, const uint8_t *val, size_t len)
{
	if (pcr >= VERIFIER_MAX_PCR || !g->pcr_values[pcr].n)
		return 1;
	if (len != VERIFIER_HASH_LEN)
		return 0;
	return in_set((const uint8_t(*)[VERIFIER_HASH_LEN])g->pcr_values[pcr].vals, g->pcr_values[pcr].n, val);
}

/* ---- the holder ---- */
struct verifier_policy *verifier_policy_get(struct verifier_policy_holder *h)
{
	struct verifier_policy *p;
	pthread_mutex_lock(&h->mu);
	p = h->cur;
	if (p)
		p->refs++;
	pthread_mutex_unlock(&h->mu);
	return p;
}

void verifier_policy_put(struct verifier_policy_holder *h, struct verifier_policy *p)
{
	int last;
	if (!p)
		return;
	pthread_mutex_lock(&h->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&h->mu);
	if (last)
		verifier_policy_free(p);
}

enum verifier_err verifier_policy_reload(struct verifier_policy_holder *h, char *err, size_t errlen)
{
	struct verifier_policy *np = NULL, *old;
	enum verifier_err rc = verifier_policy_load(h->path, &np, err, errlen);
	if (rc != VERIFIER_OK)
		return rc;
	np->refs = 1; /* the holder's reference */
	pthread_mutex_lock(&h->mu);
	old = h->cur;
	h->cur = np;
	pthread_mutex_unlock(&h->mu);
	verifier_policy_put(h, old);
	return VERIFIER_OK;
}
