/* Evidence bundles: a ustar archive (libarchive) of a few named files plus index.cbor.
 * Writing is deterministic (mtime 0, uid/gid 0, mode 0444, names in the given order, index
 * last). Reading is bounded and refuses anything that is not a plain file with a plain name. */
#include "bundle/bundle-int.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct bundle_archive {
	size_t n;
	char *names[BUNDLE_MAX_ENTRIES];
	uint8_t *data[BUNDLE_MAX_ENTRIES];
	size_t len[BUNDLE_MAX_ENTRIES];
};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return strstr(s, "..") == NULL;
}

/* canonical order of text keys: shorter first, then bytewise */
static int namecmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x, y);
}

struct idx_ent {
	const char *name;
	size_t len;
	const uint8_t *data;
};

static int idxcmp(const void *a, const void *b)
{
	return namecmp(&((const struct idx_ent *)a)->name, &((const struct idx_ent *)b)->name);
}

static enum bundle_err make_index(const struct bundle_entry *entries, size_t n, uint8_t **ret, size_t *ret_len)
{
	struct idx_ent ie[BUNDLE_MAX_ENTRIES];
	struct cw w;
	for (size_t i = 0; i < n; i++) {
		ie[i].name = entries[i].name;
		ie[i].len = entries[i].data.len;
		ie[i].data = entries[i].data.ptr;
	}
	qsort(ie, n, sizeof ie[0], idxcmp);
	bundle_cw_init(&w, 1u << 20);
	bundle_cw_map(&w, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t h[32];
		bundle_sha256(ie[i].data ? ie[i].data : (const uint8_t *)"", ie[i].len, h);
		bundle_cw_tstr(&w, ie[i].name);
		bundle_cw_map(&w, 2);
		bundle_cw_uint(&w, 1);
		bundle_cw_uint(&w, ie[i].len);
		bundle_cw_uint(&w, 2);
		bundle_cw_bstr(&w, h, 32);
	}
	return bundle_cw_finish(&w, ret, ret_len);
}

static la_ssize_t wr_cb(struct archive *a, void *ud, const void *buf, size_t n)
{
	struct cw *w = ud;
	(void)a;
	bundle_cw_raw(w, buf, n);
	return w->err ? -1 : (la_ssize_t)n;
}

static int write_one(struct archive *a, const char *name, const uint8_t *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();
	int rc = ARCHIVE_FATAL;
	if (!e)
		return rc;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0444);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(a, e) == ARCHIVE_OK &&
	    (len == 0 || archive_write_data(a, data, len) == (la_ssize_t)len))
		rc = ARCHIVE_OK;
	archive_entry_free(e);
	return rc;
}

enum bundle_err bundle_archive_write(const struct bundle_entry *entries, size_t n, uint8_t **ret, size_t *ret_len)
{
	struct archive *a = NULL;
	struct cw w;
	uint8_t *idx = NULL;
	size_t il = 0, total = 0;
	enum bundle_err e;

	bundle_clear_cause();
	if (!ret || !ret_len || (!entries && n))
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (n + 1 > BUNDLE_MAX_ENTRIES)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "%zu entries (max %d)", n, BUNDLE_MAX_ENTRIES - 1);
	for (size_t i = 0; i < n; i++) {
		if (!entries[i].name || !name_ok(entries[i].name) || !strcmp(entries[i].name, BUNDLE_F_INDEX))
			return bundle_fail(BUNDLE_ERR_INVAL, "bad entry name '%s'", entries[i].name ? entries[i].name : "");
		for (size_t j = 0; j < i; j++)
			if (!strcmp(entries[i].name, entries[j].name))
				return bundle_fail(BUNDLE_ERR_INVAL, "duplicate entry '%s'", entries[i].name);
		total += entries[i].data.len + 1024;
		if (total > BUNDLE_MAX_BUNDLE)
			return bundle_fail(BUNDLE_ERR_TOOBIG, "bundle above %u bytes", BUNDLE_MAX_BUNDLE);
	}
	if ((e = make_index(entries, n, &idx, &il)))
		return e;
	bundle_cw_init(&w, BUNDLE_MAX_BUNDLE);
	if (!(a = archive_write_new()) || archive_write_set_format_ustar(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 512) != ARCHIVE_OK ||
	    archive_write_open(a, &w, NULL, wr_cb, NULL) != ARCHIVE_OK) {
		e = bundle_fail(BUNDLE_ERR_ARCHIVE, "libarchive: %s", a ? archive_error_string(a) : "no memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (write_one(a, entries[i].name, entries[i].data.ptr, entries[i].data.len) != ARCHIVE_OK) {
			e = bundle_fail(BUNDLE_ERR_ARCHIVE, "writing %s: %s", entries[i].name, archive_error_string(a));
			goto out;
		}
	if (write_one(a, BUNDLE_F_INDEX, idx, il) != ARCHIVE_OK || archive_write_close(a) != ARCHIVE_OK) {
		e = bundle_fail(BUNDLE_ERR_ARCHIVE, "finishing bundle: %s", archive_error_string(a));
		goto out;
	}
	archive_write_free(a);
	a = NULL;
	free(idx);
	return bundle_cw_finish(&w, ret, ret_len);
out:
	if (a)
		archive_write_free(a);
	free(idx);
	bundle_cw_free(&w);
	return e;
}

void bundle_archive_free(struct bundle_archive *ar)
{
	if (!ar)
		return;
	for (size_t i = 0; i < ar->n; i++) {
		free(ar->names[i]);
		free(ar->data[i]);
	}
	free(ar);
}

static enum bundle_err check_index(const struct bundle_archive *ar)
{
	struct bundle_bytes idx;
	struct cr r;
	uint64_t n;
	enum bundle_err e;
	bool listed[BUNDLE_MAX_ENTRIES] = {false};

	if (bundle_archive_get(ar, BUNDLE_F_INDEX, &idx) != BUNDLE_OK)
		return bundle_fail(BUNDLE_ERR_ARCHIVE, "bundle without %s", BUNDLE_F_INDEX);
	if ((e = bundle_cbor_check(idx.ptr, idx.len, 0)))
		return bundle_fail(BUNDLE_ERR_ARCHIVE, "%s: %s", BUNDLE_F_INDEX, bundle_last_cause());
	bundle_cr_init(&r, idx.ptr, idx.len);
	if ((e = bundle_cr_map(&r, &n, "index")))
		return bundle_fail(BUNDLE_ERR_ARCHIVE, "%s: %s", BUNDLE_F_INDEX, bundle_last_cause());
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_bytes name;
		uint64_t m, size = UINT64_MAX;
		struct bundle_bytes h = {0};
		size_t j;
		if ((e = bundle_cr_tstr(&r, &name, "index name")) || (e = bundle_cr_map(&r, &m, "index entry")))
			return bundle_fail(BUNDLE_ERR_ARCHIVE, "%s: %s", BUNDLE_F_INDEX, bundle_last_cause());
		for (uint64_t k = 0; k < m; k++) {
			struct bundle_cr_key key;
			if ((e = bundle_cr_key(&r, &key)))
				return bundle_fail(BUNDLE_ERR_ARCHIVE, "%s: %s", BUNDLE_F_INDEX, bundle_last_cause());
			if (key.is_int && key.i == 1)
				e = bundle_cr_uint(&r, &size, "index size");
			else if (key.is_int && key.i == 2)
				e = bundle_cr_bstr(&r, &h, "index digest");
			else
				e = bundle_cr_skip(&r, NULL);
			if (e)
				return bundle_fail(BUNDLE_ERR_ARCHIVE, "%s: %s", BUNDLE_F_INDEX, bundle_last_cause());
		}
		for (j = 0; j < ar->n; j++)
			if (strlen(ar->names[j]) == name.len && memcmp(ar->names[j], name.ptr, name.len) == 0)
				break;
		if (j == ar->n || !strcmp(ar->names[j], BUNDLE_F_INDEX))
			return bundle_fail(BUNDLE_ERR_ARCHIVE, "index lists '%.*s' which is not in the bundle",
					   (int)(name.len > 64 ? 64 : name.len), (const char *)name.ptr);
		if (listed[j])
			return bundle_fail(BUNDLE_ERR_ARCHIVE, "index lists %s twice", ar->names[j]);
		listed[j] = true;
		uint8_t d[32];
		bundle_sha256(ar->data[j], ar->len[j], d);
		if (size != ar->len[j] || h.len != 32 || CRYPTO_memcmp(h.ptr, d, 32) != 0)
			return bundle_fail(BUNDLE_ERR_ARCHIVE, "%s does not match its index entry (size or SHA-256)",
					   ar->names[j]);
	}
	for (size_t j = 0; j < ar->n; j++)
		if (!listed[j] && strcmp(ar->names[j], BUNDLE_F_INDEX))
			return bundle_fail(BUNDLE_ERR_ARCHIVE, "%s is not listed in the index", ar->names[j]);
	return BUNDLE_OK;
}

enum bundle_err bundle_archive_read(const uint8_t *buf, size_t len, struct bundle_archive **ret)
{
	struct archive *a = NULL;
	struct archive_entry *ent;
	struct bundle_archive *ar = NULL;
	size_t total = 0;
	enum bundle_err e = BUNDLE_OK;
	int rc;

	bundle_clear_cause();
	if (!buf || !ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	if (len > BUNDLE_MAX_BUNDLE)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "bundle of %zu bytes (max %u)", len, BUNDLE_MAX_BUNDLE);
	if (!(ar = calloc(1, sizeof *ar)))
		return bundle_fail(BUNDLE_ERR_NOMEM, "bundle");
	if (!(a = archive_read_new()) || archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
		e = bundle_fail(BUNDLE_ERR_ARCHIVE, "not a tar archive: %s", a ? archive_error_string(a) : "no memory");
		goto out;
	}
	while ((rc = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ent);
		la_int64_t sz = archive_entry_size(ent);
		if (ar->n >= BUNDLE_MAX_ENTRIES) {
			e = bundle_fail(BUNDLE_ERR_ARCHIVE, "more than %d entries", BUNDLE_MAX_ENTRIES);
			goto out;
		}
		if (!name || !name_ok(name)) {
			e = bundle_fail(BUNDLE_ERR_ARCHIVE, "unsafe entry name '%.64s'", name ? name : "");
			goto out;
		}
		if (archive_entry_filetype(ent) != AE_IFREG || archive_entry_hardlink(ent) || archive_entry_symlink(ent)) {
			e = bundle_fail(BUNDLE_ERR_ARCHIVE, "%s is not a regular file", name);
			goto out;
		}
		for (size_t i = 0; i < ar->n; i++)
			if (!strcmp(ar->names[i], name)) {
				e = bundle_fail(BUNDLE_ERR_ARCHIVE, "duplicate entry %s", name);
				goto out;
			}
		if (!archive_entry_size_is_set(ent) || sz < 0 || (uint64_t)sz > len || total + (size_t)sz > len) {
			e = bundle_fail(BUNDLE_ERR_ARCHIVE, "%s: size %lld exceeds the bundle", name, (long long)sz);
			goto out;
		}
		if (!(ar->names[ar->n] = strdup(name)) || !(ar->data[ar->n] = malloc((size_t)sz + 1))) {
			free(ar->names[ar->n]);
			ar->names[ar->n] = NULL;
			e = bundle_fail(BUNDLE_ERR_NOMEM, "entry %s", name);
			goto out;
		}
		ar->len[ar->n] = (size_t)sz;
		ar->n++;
		if (sz > 0 && archive_read_data(a, ar->data[ar->n - 1], (size_t)sz) != (la_ssize_t)sz) {
			e = bundle_fail(BUNDLE_ERR_ARCHIVE, "%s: short read: %s", name, archive_error_string(a));
			goto out;
		}
		total += (size_t)sz;
	}
	if (rc != ARCHIVE_EOF) {
		e = bundle_fail(BUNDLE_ERR_ARCHIVE, "reading bundle: %s", archive_error_string(a));
		goto out;
	}
	if ((e = check_index(ar)))
		goto out;
	*ret = ar;
	ar = NULL;
out:
	if (a)
		archive_read_free(a);
	bundle_archive_free(ar);
	return e;
}

enum bundle_err bundle_archive_get(const struct bundle_archive *ar, const char *name, struct bundle_bytes *ret)
{
	if (!ar || !name || !ret)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	for (size_t i = 0; i < ar->n; i++)
		if (!strcmp(ar->names[i], name)) {
			ret->ptr = ar->data[i];
			ret->len = ar->len[i];
			return BUNDLE_OK;
		}
	return bundle_fail(BUNDLE_ERR_NOTFOUND, "no %s in the bundle", name);
}

size_t bundle_archive_count(const struct bundle_archive *ar)
{
	return ar ? ar->n : 0;
}

const char *bundle_archive_name(const struct bundle_archive *ar, size_t i)
{
	return ar && i < ar->n ? ar->names[i] : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* concise problem details (RFC 9290) */

enum bundle_err bundle_problem_encode(const char *title, const char *detail, int status, uint8_t **ret,
				      size_t *ret_len)
{
	struct cw w;
	bundle_clear_cause();
	if (!ret || !ret_len)
		return bundle_fail(BUNDLE_ERR_INVAL, "NULL argument");
	bundle_cw_init(&w, 65536);
	bundle_cw_map(&w, (uint64_t)(!!title + !!detail + (status > 0)));
	if (title) {
		bundle_cw_int(&w, -1);
		bundle_cw_tstr(&w, title);
	}
	if (detail) {
		bundle_cw_int(&w, -2);
		bundle_cw_tstr(&w, detail);
	}
	if (status > 0) {
		bundle_cw_int(&w, -4);
		bundle_cw_uint(&w, (uint64_t)status);
	}
	return bundle_cw_finish(&w, ret, ret_len);
}

static void copy_trunc(char *dst, size_t cap, struct bundle_bytes s)
{
	size_t n;
	if (!dst || !cap)
		return;
	n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = 0;
	for (size_t i = 0; i < n; i++) /* keep it printable for logs */
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

enum bundle_err bundle_problem_decode(const uint8_t *buf, size_t len, char *title, size_t title_cap, char *detail,
				      size_t detail_cap)
{
	struct cr r;
	uint64_t n;
	struct bundle_bytes t = {(const uint8_t *)"", 0}, d = {(const uint8_t *)"", 0};
	enum bundle_err e;

	bundle_clear_cause();
	if (len > 65536)
		return bundle_fail(BUNDLE_ERR_TOOBIG, "problem details of %zu bytes", len);
	if ((e = bundle_cbor_check(buf, len, 0)))
		return e;
	bundle_cr_init(&r, buf, len);
	if ((e = bundle_cr_map(&r, &n, "problem details")))
		return e;
	for (uint64_t i = 0; i < n; i++) {
		struct bundle_cr_key k;
		if ((e = bundle_cr_key(&r, &k)))
			return e;
		if (k.is_int && k.i == -1)
			e = bundle_cr_tstr(&r, &t, "title (-1)");
		else if (k.is_int && k.i == -2)
			e = bundle_cr_tstr(&r, &d, "detail (-2)");
		else
			e = bundle_cr_skip(&r, NULL);
		if (e)
			return e;
	}
	copy_trunc(title, title_cap, t);
	copy_trunc(detail, detail_cap, d);
	return BUNDLE_OK;
}
