/* libmeasure: record encoding known answers (shortest integer heads), strict decoding,
 * manifests (round trip, every tampered byte rejected), diff, inclusion proofs (and forged
 * ones), the tree walk on a small fixture (stable across jobs) and the archive walk on an
 * in-memory tar checked against a root computed independently from records + libmerkle. */
#include "measure/measure.h"
#include "merkle/merkle.h"
#include "tests/unit/t.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void sha(const void *p, size_t n, uint8_t out[32])
{
	unsigned int l = 0;
	EVP_Digest(p, n, out, &l, EVP_sha256(), NULL);
}

static struct measure_record rec(const char *path, unsigned type, uint32_t mode, uint32_t uid, uint32_t gid,
				 uint64_t size)
{
	struct measure_record r;
	memset(&r, 0, sizeof r);
	r.path = (const uint8_t *)path;
	r.path_len = strlen(path);
	r.type = type;
	r.mode = mode;
	r.uid = uid;
	r.gid = gid;
	r.size = size;
	r.digest_len = type == MEASURE_TYPE_DIR || type == MEASURE_TYPE_FIFO ? 0 : 32;
	memset(r.digest, 0xab, r.digest_len);
	return r;
}

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	for (; h[0] && h[1]; h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void test_record_known_answer(void)
{
	uint8_t buf[256], want[128];
	struct measure_record r = rec("/a", MEASURE_TYPE_REG, 0644, 0, 0, 5), d;
	size_t n, wn;

	sha("hello", 5, r.digest);
	n = measure_record_encode(&r, buf, sizeof buf);
	/* [h'2f61', 1, 420, 0, 0, 5, h'<sha256("hello")>'] */
	wn = unhex("87422f61011901a40000055820"
		   "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		   want);
	T_EQ_INT(n, wn);
	T_CHECK(memcmp(buf, want, wn) == 0);
	T_EQ_INT(measure_record_decode(buf, n, &d), MEASURE_OK);
	T_EQ_INT(d.path_len, 2);
	T_EQ_INT(d.mode, 0644);
	T_EQ_INT(d.size, 5);
	T_CHECK(memcmp(d.digest, r.digest, 32) == 0);
}

/* Every integer takes its shortest head. */
static void test_record_shortest_integers(void)
{
	static const struct {
		uint64_t v;
		const char *hex;
	} cases[] = {
		{0, "00"},		{23, "17"},		  {24, "1818"},		{255, "18ff"},
		{256, "190100"},	{65535, "19ffff"},	  {65536, "1a00010000"}, {4294967295u, "1affffffff"},
		{4294967296ull, "1b0000000100000000"}, {UINT64_MAX, "1bffffffffffffffff"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t buf[128], want[16];
		size_t wn = unhex(cases[i].hex, want), n;
		struct measure_record r = rec("/", MEASURE_TYPE_REG, 0, 0, 0, cases[i].v), d;
		/* size is the 6th item: after 81 41 2f 01 00 00 00 */
		n = measure_record_encode(&r, buf, sizeof buf);
		T_CHECK(n == 7 + wn + 2 + 32);
		T_CHECK(memcmp(buf + 7, want, wn) == 0);
		T_EQ_INT(measure_record_decode(buf, n, &d), MEASURE_OK);
		T_CHECK(d.size == cases[i].v);
		if (cases[i].v <= UINT32_MAX) {
			r = rec("/", MEASURE_TYPE_DIR, 0, (uint32_t)cases[i].v, 0, 0);
			n = measure_record_encode(&r, buf, sizeof buf);
			T_CHECK(n == 8 + wn);
			T_CHECK(memcmp(buf + 5, want, wn) == 0); /* uid: after 87 41 2f 02 00 */
		}
	}
}

static void test_record_decode_rejects(void)
{
	uint8_t buf[256], bad[256];
	struct measure_record r = rec("/etc/f", MEASURE_TYPE_REG, 0644, 1, 2, 3), d;
	size_t n = measure_record_encode(&r, buf, sizeof buf);
	static const char *bad_paths[] = {"", "a", "/a/", "//", "/a//b", "/./a", "/a/.", "/..", "/a/../b"};
	T_CHECK(n > 0);

	/* non-canonical: type 1 as 0x18 0x01 */
	memcpy(bad, buf, 8);
	T_EQ_INT(buf[8], 0x01);
	bad[8] = 0x18;
	bad[9] = 0x01;
	memcpy(bad + 10, buf + 9, n - 9);
	T_EQ_INT(measure_record_decode(bad, n + 1, &d), MEASURE_ERR_MANIFEST);
	/* indefinite-length array */
	memcpy(bad, buf, n);
	bad[0] = 0x9f;
	bad[n] = 0xff;
	T_EQ_INT(measure_record_decode(bad, n + 1, &d), MEASURE_ERR_MANIFEST);
	/* wrong array length */
	memcpy(bad, buf, n);
	bad[0] = 0x86;
	T_EQ_INT(measure_record_decode(bad, n, &d), MEASURE_ERR_MANIFEST);
	/* text string path */
	memcpy(bad, buf, n);
	bad[1] = (uint8_t)(0x60 | 6);
	T_EQ_INT(measure_record_decode(bad, n, &d), MEASURE_ERR_MANIFEST);
	/* trailing byte, truncation */
	memcpy(bad, buf, n);
	bad[n] = 0;
	T_EQ_INT(measure_record_decode(bad, n + 1, &d), MEASURE_ERR_MANIFEST);
	for (size_t k = 0; k < n; k++)
		T_CHECK(measure_record_decode(buf, k, &d) != MEASURE_OK);
	/* invalid field combinations are neither encoded nor decoded */
	for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
		struct measure_record x = rec(bad_paths[i], MEASURE_TYPE_DIR, 0, 0, 0, 0);
		T_EQ_INT(measure_record_encode(&x, buf, sizeof buf), 0);
	}
	{
		struct measure_record x = rec("/a", MEASURE_TYPE_DIR, 010000, 0, 0, 0);
		T_EQ_INT(measure_record_encode(&x, buf, sizeof buf), 0);
		x = rec("/a", MEASURE_TYPE_DIR, 0, 0, 0, 5); /* directories have size 0 */
		T_EQ_INT(measure_record_encode(&x, buf, sizeof buf), 0);
		x = rec("/a", MEASURE_TYPE_FIFO, 0, 0, 0, 0);
		x.digest_len = 32;
		T_EQ_INT(measure_record_encode(&x, buf, sizeof buf), 0);
		x = rec("/a", 7, 0, 0, 0, 0);
		T_EQ_INT(measure_record_encode(&x, buf, sizeof buf), 0);
		x = rec("/a", MEASURE_TYPE_REG, 0, 0, 0, 0);
		x.digest_len = 0;
		T_EQ_INT(measure_record_encode(&x, buf, sizeof buf), 0);
		uint8_t nul[] = {'/', 'a', 0, 'b'};
		x.path = nul;
		x.path_len = 4;
		x.digest_len = 32;
		T_EQ_INT(measure_record_encode(&x, buf, sizeof buf), 0);
	}
	/* hand-made record with a 0x02 type and 32-byte digest decodes as invalid (dir + digest) */
	r = rec("/d", MEASURE_TYPE_REG, 0, 0, 0, 0);
	n = measure_record_encode(&r, buf, sizeof buf);
	buf[4] = MEASURE_TYPE_DIR;
	T_EQ_INT(measure_record_decode(buf, n, &d), MEASURE_ERR_MANIFEST);
}

/* ---- fixture tree ---- */
static char fixture[64];

static void put(const char *rel, const char *content, mode_t mode)
{
	char p[512];
	int fd;
	snprintf(p, sizeof p, "%s/%s", fixture, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd >= 0) {
		if (write(fd, content, strlen(content)) < 0)
			perror("write");
		fchmod(fd, mode);
		close(fd);
	}
}

static void mk(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", fixture, rel);
	mkdir(p, 0755);
	chmod(p, 0755);
}

static void make_fixture(void)
{
	char p[512], q[512];
	strcpy(fixture, "/tmp/sluice-test-measure.XXXXXX");
	if (!mkdtemp(fixture))
		abort();
	chmod(fixture, 0755);
	mk("etc");
	mk("usr");
	mk("usr/bin");
	mk("tmp");
	put("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
	put("etc/shadow", "root:*:1::::::\n", 0640);
	put("usr/bin/tool", "#!/bin/sh\necho tool\n", 0755);
	put("empty", "", 0600);
	put("tmp/ignored", "excluded by default\n", 0644);
	snprintf(p, sizeof p, "%s/usr/bin/link", fixture);
	if (symlink("tool", p) != 0)
		perror("symlink");
	snprintf(p, sizeof p, "%s/etc/passwd", fixture);
	snprintf(q, sizeof q, "%s/etc/passwd-hard", fixture);
	if (link(p, q) != 0)
		perror("link");
	snprintf(p, sizeof p, "%s/fifo", fixture);
	mkfifo(p, 0644);
	chmod(p, 0644);
}

static void rm_fixture(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fixture);
	if (system(cmd) != 0)
		perror("rm");
}

static struct measure_manifest *measure_fixture(unsigned jobs)
{
	struct measure_opts o;
	struct measure_manifest *m = NULL;
	struct measure_error e;
	memset(&o, 0, sizeof o);
	o.jobs = jobs;
	if (measure_tree(fixture, &o, &m, &e) != MEASURE_OK) {
		char line[600];
		measure_error_format(&e, line, sizeof line);
		printf("# measure_tree: %s\n", line);
		return NULL;
	}
	return m;
}

static void test_tree_stable_across_jobs(void)
{
	struct measure_manifest *a = measure_fixture(1), *b;
	T_CHECK(a != NULL);
	if (!a)
		return;
	/* / etc etc/passwd etc/passwd-hard etc/shadow usr usr/bin usr/bin/tool usr/bin/link empty fifo */
	T_EQ_INT(measure_manifest_entries(a), 11);
	for (unsigned j = 2; j <= 5; j++) {
		b = measure_fixture(j);
		T_CHECK(b && memcmp(measure_manifest_digest(a), measure_manifest_digest(b), 32) == 0);
		measure_manifest_free(b);
	}
	T_CHECK(measure_manifest_find(a, "/tmp", 4) < 0);
	T_CHECK(measure_manifest_find(a, "/etc/passwd", 11) >= 0);
	measure_manifest_free(a);
}

/* Root = MTH over the records, independently of manifest_build. */
static void test_tree_root_is_mth_of_records(void)
{
	struct measure_manifest *m = measure_fixture(0);
	uint8_t (*leaves)[32], root[32];
	size_t n;
	T_CHECK(m != NULL);
	if (!m)
		return;
	n = measure_manifest_entries(m);
	leaves = calloc(n, 32);
	for (size_t i = 0; i < n; i++) {
		struct measure_record r;
		uint8_t buf[4200];
		size_t len;
		T_EQ_INT(measure_manifest_record(m, i, &r), 0);
		len = measure_record_encode(&r, buf, sizeof buf);
		merkle_leaf_hash(buf, len, leaves[i]);
		if (i) {
			struct measure_record p;
			measure_manifest_record(m, i - 1, &p);
			T_CHECK(memcmp(p.path, r.path, p.path_len < r.path_len ? p.path_len : r.path_len) <= 0);
		}
	}
	merkle_root((const uint8_t(*)[32])leaves, n, root);
	T_CHECK(memcmp(root, measure_manifest_digest(m), 32) == 0);
	free(leaves);
	measure_manifest_free(m);
}

static void test_manifest_round_trip_and_tamper(void)
{
	struct measure_manifest *m = measure_fixture(0), *d = NULL;
	const uint8_t *enc, *r0;
	uint8_t *copy;
	size_t len, r0len, start, rejected = 0, tried = 0;
	struct measure_error e;
	T_CHECK(m != NULL);
	if (!m)
		return;
	enc = measure_manifest_encoded(m, &len);
	T_EQ_INT(measure_manifest_decode(enc, len, &d, &e), MEASURE_OK);
	T_CHECK(d && memcmp(measure_manifest_digest(d), measure_manifest_digest(m), 32) == 0);
	T_CHECK(d && measure_manifest_entries(d) == measure_manifest_entries(m));
	T_CHECK(d && measure_manifest_n_excludes(d) == measure_manifest_n_excludes(m));
	measure_manifest_free(d);
	/* Any flipped bit in the root or the records is rejected. */
	r0 = measure_manifest_record_bytes(m, 0, &r0len);
	start = (size_t)(r0 - enc);
	copy = malloc(len);
	for (size_t i = 0; i < len; i++) {
		int in_root = i >= 1 && i < start && memcmp(enc + i, measure_manifest_digest(m), 32) == 0;
		if (i < start && !in_root)
			continue;
		for (size_t k = 0; k < (in_root ? 32 : 1); k++) {
			memcpy(copy, enc, len);
			copy[i + k] ^= 0x01;
			d = NULL;
			tried++;
			if (measure_manifest_decode(copy, len, &d, &e) != MEASURE_OK)
				rejected++;
			measure_manifest_free(d);
		}
		if (in_root)
			i += 31;
	}
	T_CHECK(tried > 100);
	T_EQ_INT(rejected, tried);
	/* truncation, trailing garbage */
	for (size_t k = 0; k < len; k += 7)
		T_CHECK(measure_manifest_decode(enc, k, &d, &e) != MEASURE_OK);
	copy = realloc(copy, len + 1);
	memcpy(copy, enc, len);
	copy[len] = 0;
	T_EQ_INT(measure_manifest_decode(copy, len + 1, &d, &e), MEASURE_ERR_MANIFEST);
	free(copy);
	measure_manifest_free(m);
}

static int collect(void *ud, const struct measure_change *c)
{
	char *out = ud;
	size_t o = strlen(out);
	const struct measure_record *r = c->kind == MEASURE_ADDED ? &c->b : &c->a;
	snprintf(out + o, 1024 - o, "%c%.*s:%u ", c->kind == MEASURE_ADDED ? '+' : c->kind == MEASURE_REMOVED ? '-' : '~',
		 (int)r->path_len, (const char *)r->path, c->what);
	return 0;
}

static void test_diff(void)
{
	struct measure_manifest *a = measure_fixture(0), *b;
	char out[1024] = "", p[512];
	put("etc/passwd", "root:x:0:0::/root:/bin/bash\n", 0600); /* content + mode */
	put("new", "", 0644);
	snprintf(p, sizeof p, "%s/empty", fixture);
	unlink(p);
	snprintf(p, sizeof p, "%s/usr/bin/link", fixture);
	unlink(p);
	if (symlink("other", p) != 0)
		perror("symlink");
	b = measure_fixture(0);
	T_CHECK(a && b);
	if (a && b) {
		T_EQ_INT(measure_diff(a, b, collect, out), 5);
		T_EQ_STR(out, "-/empty:0 ~/etc/passwd:18 ~/etc/passwd-hard:18 +/new:0 ~/usr/bin/link:4 ");
		T_EQ_INT(measure_diff(a, a, NULL, NULL), 0);
	}
	measure_manifest_free(a);
	measure_manifest_free(b);
}

static void test_proofs(void)
{
	struct measure_manifest *m = measure_fixture(0);
	size_t n;
	T_CHECK(m != NULL);
	if (!m)
		return;
	n = measure_manifest_entries(m);
	for (size_t i = 0; i < n; i++) {
		struct measure_record r, got;
		struct measure_proof p, q;
		struct measure_error e;
		const uint8_t *rb, *other;
		size_t rl, ol;
		measure_manifest_record(m, i, &r);
		T_EQ_INT(measure_manifest_prove(m, r.path, r.path_len, &p, &e), MEASURE_OK);
		T_EQ_INT(p.index, i);
		T_EQ_INT(p.tree_size, n);
		rb = measure_manifest_record_bytes(m, i, &rl);
		T_EQ_INT(measure_proof_verify(rb, rl, &p, &got, &e), MEASURE_OK);
		T_CHECK(got.path_len == r.path_len && memcmp(got.path, r.path, r.path_len) == 0);
		/* another record under the same proof */
		other = measure_manifest_record_bytes(m, (i + 1) % n, &ol);
		T_EQ_INT(measure_proof_verify(other, ol, &p, NULL, &e), MEASURE_ERR_PROOF);
		/* forged root, path hash, index, size, length */
		q = p;
		q.root[5] ^= 1;
		T_EQ_INT(measure_proof_verify(rb, rl, &q, NULL, &e), MEASURE_ERR_PROOF);
		if (p.path_len) {
			q = p;
			q.path[0][0] ^= 0x80;
			T_EQ_INT(measure_proof_verify(rb, rl, &q, NULL, &e), MEASURE_ERR_PROOF);
			q = p;
			q.path_len--;
			T_EQ_INT(measure_proof_verify(rb, rl, &q, NULL, &e), MEASURE_ERR_PROOF);
		}
		q = p;
		q.index = (i + 1) % n;
		T_EQ_INT(measure_proof_verify(rb, rl, &q, NULL, &e), MEASURE_ERR_PROOF);
		/* (a larger tree_size with the same path and root can still verify in RFC 9162:
		 * the root is what binds; an index outside the tree cannot) */
		q = p;
		q.tree_size = p.index;
		T_EQ_INT(measure_proof_verify(rb, rl, &q, NULL, &e), MEASURE_ERR_PROOF);
	}
	{
		struct measure_proof p;
		struct measure_error e;
		T_EQ_INT(measure_manifest_prove(m, "/nope", 5, &p, &e), MEASURE_ERR_NOT_FOUND);
		T_EQ_STR(e.path, "/nope");
	}
	measure_manifest_free(m);
}

static void test_excludes(void)
{
	const char *ex[] = {"usr//bin/", "/etc/shadow"};
	const char *bad[] = {"/a/../b"};
	struct measure_opts o;
	struct measure_manifest *m = NULL;
	struct measure_error e;
	memset(&o, 0, sizeof o);
	o.excludes = ex;
	o.n_excludes = 2;
	T_EQ_INT(measure_tree(fixture, &o, &m, &e), MEASURE_OK);
	T_CHECK(m && measure_manifest_find(m, "/usr/bin/tool", 13) < 0 && measure_manifest_find(m, "/usr", 4) >= 0);
	T_CHECK(m && measure_manifest_find(m, "/etc/shadow", 11) < 0);
	T_CHECK(m && measure_manifest_n_excludes(m) == measure_n_default_excludes + 2);
	T_EQ_STR(m ? measure_manifest_exclude(m, 1) : NULL, "/etc/shadow");
	measure_manifest_free(m);
	m = NULL;
	o.excludes = bad;
	o.n_excludes = 1;
	T_EQ_INT(measure_tree(fixture, &o, &m, &e), MEASURE_ERR_INVAL);
	T_CHECK(m == NULL);
	o.n_excludes = 0;
	o.no_default_excludes = 1;
	T_EQ_INT(measure_tree(fixture, &o, &m, &e), MEASURE_OK);
	T_CHECK(m && measure_manifest_find(m, "/tmp/ignored", 12) >= 0 && measure_manifest_n_excludes(m) == 0);
	measure_manifest_free(m);
}

static void test_errors_name_the_path(void)
{
	struct measure_manifest *m = NULL;
	struct measure_error e;
	char line[700];
	T_EQ_INT(measure_tree("/nonexistent/sluice", NULL, &m, &e), MEASURE_ERR_IO);
	T_EQ_STR(e.path, "/nonexistent/sluice");
	T_EQ_INT(e.sys_errno, ENOENT);
	memset(&e, 0, sizeof e);
	e.code = MEASURE_ERR_IO;
	e.sys_errno = EACCES;
	strcpy(e.path, "/etc/new\nline\xff");
	strcpy(e.detail, "open");
	measure_error_format(&e, line, sizeof line);
	T_EQ_STR(line, "/etc/new\\x0aline\\xff: cannot read (open: Permission denied)");
	for (int c = 0; c <= MEASURE_ERR_THREAD; c++)
		T_CHECK(strcmp(measure_strerror((enum measure_err)c), "unknown error") != 0);
}

/* ---- archives built in memory with libarchive's writer ---- */
struct aent {
	const char *name;
	unsigned type; /* AE_IF* */
	const char *data;
	const char *link; /* symlink target or hardlink target */
	int hard;
};

static size_t make_tar(const struct aent *v, size_t n, uint8_t *buf, size_t cap)
{
	struct archive *a = archive_write_new();
	size_t used = 0;
	archive_write_set_format_gnutar(a);
	archive_write_open_memory(a, buf, cap, &used);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, v[i].name);
		archive_entry_set_filetype(e, v[i].type);
		archive_entry_set_perm(e, v[i].type == AE_IFDIR ? 0755 : 0644);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		if (v[i].hard)
			archive_entry_set_hardlink(e, v[i].link);
		else if (v[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, v[i].link);
		if (v[i].data && !v[i].hard)
			archive_entry_set_size(e, (la_int64_t)strlen(v[i].data));
		archive_write_header(a, e);
		if (v[i].data && !v[i].hard)
			archive_write_data(a, v[i].data, strlen(v[i].data));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	return used;
}

static void test_archive_known_answer(void)
{
	static const struct aent v[] = {
		{"./", AE_IFDIR, NULL, NULL, 0},
		{"./etc/", AE_IFDIR, NULL, NULL, 0},
		{"./etc/hosts", AE_IFREG, "127.0.0.1 localhost\n", NULL, 0},
		{"./etc/hosts2", AE_IFREG, NULL, "./etc/hosts", 1},
		{"./etc/l", AE_IFLNK, NULL, "hosts", 0},
		{"./tmp/x", AE_IFREG, "excluded", NULL, 0},
	};
	uint8_t *buf = malloc(1 << 16), enc[5][256], leaves[5][32], root[32];
	size_t len = make_tar(v, sizeof v / sizeof v[0], buf, 1 << 16);
	struct measure_record r[5];
	struct measure_manifest *m = NULL;
	struct measure_error e;

	/* the records, sorted: / /etc /etc/hosts /etc/hosts2 /etc/l */
	r[0] = rec("/", MEASURE_TYPE_DIR, 0755, 0, 0, 0);
	r[1] = rec("/etc", MEASURE_TYPE_DIR, 0755, 0, 0, 0);
	r[2] = rec("/etc/hosts", MEASURE_TYPE_REG, 0644, 0, 0, 20);
	sha("127.0.0.1 localhost\n", 20, r[2].digest);
	r[3] = r[2];
	r[3].path = (const uint8_t *)"/etc/hosts2";
	r[3].path_len = 11;
	r[4] = rec("/etc/l", MEASURE_TYPE_SYMLINK, 0644, 0, 0, 5);
	sha("hosts", 5, r[4].digest);
	for (int i = 0; i < 5; i++)
		merkle_leaf_hash(enc[i], measure_record_encode(&r[i], enc[i], sizeof enc[i]), leaves[i]);
	merkle_root((const uint8_t(*)[32])leaves, 5, root);
	T_EQ_INT(measure_archive_mem(buf, len, NULL, &m, &e), MEASURE_OK);
	T_CHECK(m && measure_manifest_entries(m) == 5);
	T_CHECK(m && memcmp(measure_manifest_digest(m), root, 32) == 0);
	measure_manifest_free(m);
	free(buf);
}

static void test_archive_rejects(void)
{
	static const struct {
		struct aent v[3];
		enum measure_err want;
		const char *path;
	} cases[] = {
		{{{"./", AE_IFDIR, NULL, NULL, 0}, {"/etc/passwd", AE_IFREG, "x", NULL, 0}}, MEASURE_ERR_BAD_PATH, "/etc/passwd"},
		{{{"./", AE_IFDIR, NULL, NULL, 0}, {"../x", AE_IFREG, "x", NULL, 0}}, MEASURE_ERR_BAD_PATH, "../x"},
		{{{"./", AE_IFDIR, NULL, NULL, 0}, {"a/../../x", AE_IFREG, "x", NULL, 0}}, MEASURE_ERR_BAD_PATH, "a/../../x"},
		{{{"./x", AE_IFREG, "1", NULL, 0}, {"x", AE_IFREG, "2", NULL, 0}}, MEASURE_ERR_DUPLICATE, "/x"},
		{{{"./", AE_IFDIR, NULL, NULL, 0}, {"./h", AE_IFREG, NULL, "./missing", 1}}, MEASURE_ERR_HARDLINK, "/h"},
		{{{"./d", AE_IFDIR, NULL, NULL, 0}, {"./h", AE_IFREG, NULL, "./d", 1}}, MEASURE_ERR_HARDLINK, "/h"},
	};
	uint8_t *buf = malloc(1 << 16);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = make_tar(cases[i].v, 2, buf, 1 << 16);
		struct measure_manifest *m = NULL;
		struct measure_error e;
		memset(&e, 0, sizeof e);
		T_EQ_INT(measure_archive_mem(buf, len, NULL, &m, &e), cases[i].want);
		T_EQ_STR(e.path, cases[i].path);
		T_CHECK(m == NULL);
	}
	{
		struct measure_manifest *m = NULL;
		struct measure_error e;
		memset(buf, 0x42, 4096);
		T_EQ_INT(measure_archive_mem(buf, 4096, NULL, &m, &e), MEASURE_ERR_ARCHIVE);
	}
	free(buf);
}

/* More records than one chunk of the two-thread encoder (4096 records): the root made from
 * chunk roots must equal the serial one that decoding recomputes leaf by leaf, at and around
 * chunk boundaries (a short last chunk, one record over, several full chunks, five chunks).
 * (In-memory archives: creating this many files is slow.) */
static void test_large_manifest_root_pipelined(void)
{
	static const int sizes[] = {4096, 4097, 8192, 9000, 16385};
	enum { NMAX = 16385 };
	struct aent *v = calloc(NMAX, sizeof *v);
	char (*names)[16] = calloc(NMAX, 16);
	size_t cap = (size_t)(NMAX + 4) * 1024, len;
	uint8_t *buf = malloc(cap);
	struct measure_error e;
	const uint8_t *enc;
	size_t elen;

	v[0] = (struct aent){"./", AE_IFDIR, NULL, NULL, 0};
	for (int i = 1; i < NMAX; i++) {
		snprintf(names[i], 16, "./d%05d", i);
		v[i] = (struct aent){names[i], AE_IFDIR, NULL, NULL, 0};
	}
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		struct measure_manifest *m = NULL, *back = NULL;
		int n = sizes[s];
		len = make_tar(v, (size_t)n, buf, cap);
		T_EQ_INT(measure_archive_mem(buf, len, NULL, &m, &e), MEASURE_OK);
		T_CHECK(m && measure_manifest_entries(m) == (size_t)n);
		if (m) {
			enc = measure_manifest_encoded(m, &elen);
			T_EQ_INT(measure_manifest_decode(enc, elen, &back, &e), MEASURE_OK);
			T_CHECK(back && memcmp(measure_manifest_digest(back), measure_manifest_digest(m), 32) == 0);
			T_CHECK(back && measure_manifest_entries(back) == (size_t)n);
		}
		measure_manifest_free(back);
		measure_manifest_free(m);
	}
	free(buf);
	free(names);
	free(v);
}

/* ---- the walker opens files and hands the descriptors to the hashing threads ---- */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void mkfiles(const char *dir, int n)
{
	char p[600], body[64];
	mkdir(dir, 0755);
	for (int i = 0; i < n; i++) {
		int fd;
		snprintf(p, sizeof p, "%s/f%03d", dir, i);
		snprintf(body, sizeof body, "file %d\n", i * 7919);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
			if (write(fd, body, strlen(body)) < 0)
				perror("write");
			close(fd);
		}
	}
}

static struct measure_manifest *measure_dir(const char *dir, unsigned jobs, enum measure_err *rc)
{
	struct measure_opts o;
	struct measure_manifest *m = NULL;
	struct measure_error e;
	memset(&o, 0, sizeof o);
	o.jobs = jobs;
	*rc = measure_tree(dir, &o, &m, &e);
	return m;
}

/* With RLIMIT_NOFILE at 64 the walker may keep only 30 files open for the hashing threads
 * (at 12, only 4), so it must keep stopping until they catch up: same digest as without the
 * limit, for one and for several threads, and no descriptor left open. */
static void test_tree_descriptor_budget(void)
{
	char root[64] = "/tmp/sluice-test-budget.XXXXXX", p[128];
	struct rlimit saved, low;
	struct measure_manifest *a, *b;
	enum measure_err rc;
	int fds;

	if (!mkdtemp(root)) {
		T_CHECK(0);
		return;
	}
	mkfiles(root, 150);
	snprintf(p, sizeof p, "%s/sub", root);
	mkfiles(p, 150);
	fds = count_fds();
	a = measure_dir(root, 2, &rc);
	T_EQ_INT(rc, MEASURE_OK);
	T_CHECK(a && measure_manifest_entries(a) == 302);
	T_CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	low = saved;
	for (unsigned jobs = 1; jobs <= 4; jobs += 3)
		for (rlim_t lim = 12; lim <= 64; lim += 52) {
			low.rlim_cur = lim;
			T_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
			b = measure_dir(root, jobs, &rc);
			T_EQ_INT(rc, MEASURE_OK);
			T_CHECK(a && b && memcmp(measure_manifest_digest(a), measure_manifest_digest(b), 32) == 0);
			measure_manifest_free(b);
		}
	T_CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
	T_EQ_INT(count_fds(), fds);
	measure_manifest_free(a);
	snprintf(p, sizeof p, "rm -rf '%s'", root);
	if (system(p) != 0)
		perror("rm");
}

/* A walk that fails (a path longer than PATH_MAX, found after many files were opened for
 * hashing, some behind 256 MiB of holes) closes every descriptor it opened. */
static void test_tree_failure_closes_descriptors(void)
{
	char root[64] = "/tmp/sluice-test-fdfail.XXXXXX", p[128], name[251];
	struct measure_manifest *m;
	enum measure_err rc;
	int fds, dfd, fd;

	if (!mkdtemp(root)) {
		T_CHECK(0);
		return;
	}
	mkfiles(root, 200);
	snprintf(p, sizeof p, "%s/a_holes", root);
	if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
		T_CHECK(ftruncate(fd, 256 << 20) == 0);
		close(fd);
	}
	memset(name, 'x', 250);
	name[250] = 0;
	dfd = open(root, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < 17 && dfd >= 0; i++) { /* 17 * 251 bytes > PATH_MAX */
		int next;
		T_CHECK(mkdirat(dfd, name, 0755) == 0);
		next = openat(dfd, name, O_RDONLY | O_DIRECTORY);
		close(dfd);
		dfd = next;
	}
	T_CHECK(dfd >= 0);
	if (dfd >= 0) {
		if ((fd = openat(dfd, "f", O_WRONLY | O_CREAT, 0644)) >= 0)
			close(fd);
		close(dfd);
	}
	fds = count_fds();
	for (unsigned jobs = 1; jobs <= 2; jobs++) {
		m = measure_dir(root, jobs, &rc);
		T_EQ_INT(rc, MEASURE_ERR_PATH_TOO_LONG);
		T_CHECK(m == NULL);
		T_EQ_INT(count_fds(), fds);
	}
	snprintf(p, sizeof p, "rm -rf '%s'", root);
	if (system(p) != 0)
		perror("rm");
}

/* A file whose size is not what fstat said (sysfs: 4096 claimed, fewer bytes read), with a
 * low descriptor limit so that the walker hashes small files itself once the hashing thread
 * has work queued: the error names the file (whichever thread hashed it) and no descriptor is
 * left open. Skipped where the kernel has no transparent_hugepage directory. */
static void test_tree_small_file_changed(void)
{
	const char *dir = "/sys/kernel/mm/transparent_hugepage";
	struct rlimit saved, low;
	struct measure_manifest *m = NULL;
	struct measure_opts o;
	struct measure_error e;
	int fds = count_fds();

	if (access(dir, R_OK) != 0) {
		printf("# skipped: no %s\n", dir);
		return;
	}
	memset(&o, 0, sizeof o);
	o.jobs = 1;
	T_CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	low = saved;
	low.rlim_cur = 12;
	T_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	for (int i = 0; i < 5; i++) {
		memset(&e, 0, sizeof e);
		T_EQ_INT(measure_tree(dir, &o, &m, &e), MEASURE_ERR_CHANGED);
		T_CHECK(m == NULL && e.path[0] == '/' && strstr(e.detail, "size changed while hashing") != NULL);
		T_EQ_INT(count_fds(), fds);
	}
	T_CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
}

/* The walker waits for the hashing threads inside one large directory (30 descriptors at
 * most): progress must still be reported while it waits, not only between directories.
 * 160 sparse files of 8 MiB: about 0.7 s of hashing zeros on one thread. */
struct progress_seen {
	unsigned calls, during_walk;
};

static void on_progress(void *ud, uint64_t files_done, uint64_t bytes_done, uint64_t files_found, int done)
{
	struct progress_seen *p = ud;
	(void)files_done;
	(void)bytes_done;
	p->calls++;
	if (!done && files_found < 161)
		p->during_walk++;
}

static void test_tree_progress_while_waiting(void)
{
	char root[64] = "/tmp/sluice-test-progress.XXXXXX", p[128];
	struct rlimit saved, low;
	struct measure_opts o;
	struct measure_manifest *m = NULL;
	struct measure_error e;
	struct progress_seen seen = {0, 0};

	if (!mkdtemp(root)) {
		T_CHECK(0);
		return;
	}
	for (int i = 0; i < 160; i++) {
		int fd;
		snprintf(p, sizeof p, "%s/s%03d", root, i);
		if ((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
			T_CHECK(ftruncate(fd, 8 << 20) == 0);
			close(fd);
		}
	}
	memset(&o, 0, sizeof o);
	o.jobs = 1;
	o.progress = on_progress;
	o.ud = &seen;
	T_CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	low = saved;
	low.rlim_cur = 64;
	T_CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	T_EQ_INT(measure_tree(root, &o, &m, &e), MEASURE_OK);
	T_CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
	T_CHECK(m && measure_manifest_entries(m) == 161 && measure_manifest_bytes(m) == 160ull << 23);
	T_CHECK(seen.during_walk > 0);
	measure_manifest_free(m);
	snprintf(p, sizeof p, "rm -rf '%s'", root);
	if (system(p) != 0)
		perror("rm");
}

int main(void)
{
	make_fixture();
	T_RUN(test_record_known_answer);
	T_RUN(test_record_shortest_integers);
	T_RUN(test_record_decode_rejects);
	T_RUN(test_tree_stable_across_jobs);
	T_RUN(test_tree_root_is_mth_of_records);
	T_RUN(test_manifest_round_trip_and_tamper);
	T_RUN(test_proofs);
	T_RUN(test_excludes);
	T_RUN(test_errors_name_the_path);
	T_RUN(test_archive_known_answer);
	T_RUN(test_archive_rejects);
	T_RUN(test_large_manifest_root_pipelined);
	T_RUN(test_tree_descriptor_budget);
	T_RUN(test_tree_failure_closes_descriptors);
	T_RUN(test_tree_progress_while_waiting);
	T_RUN(test_tree_small_file_changed);
	T_RUN(test_diff); /* last: modifies the fixture */
	rm_fixture();
	return t_done();
}
