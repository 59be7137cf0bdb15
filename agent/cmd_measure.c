/* sluice measure: measure a root tree or an image archive into a manifest and root digest;
 * diff two measurements; prove and verify that one record is under a root digest. */
#include "agent/agent.h"
#include "measure/measure.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#define MAX_PROOF_JSON (1u << 20)
#define DIGEST_HEX_LEN (2 * MEASURE_DIGEST_LEN)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice measure [OPTIONS] [ROOT]            measure a directory tree (default /)\n"
		"       sluice measure [OPTIONS] --archive FILE    measure a tar/cpio archive (gzip, xz, zstd, bzip2)\n"
		"       sluice measure [OPTIONS] --diff A B        what differs between two measurements\n"
		"       sluice measure --prove PATH --manifest FILE   inclusion proof of PATH's record\n"
		"       sluice measure --verify-proof FILE [--digest sha256:HEX] [--path PATH]\n"
		"\n"
		"Prints the root digest as sha256:<hex>: the RFC 9162 Merkle tree hash over one\n"
		"deterministic CBOR record [path, type, mode, uid, gid, size, digest] per entry, sorted by\n"
		"path. Symlinks are never followed, other file systems are not entered, time stamps are\n"
		"not measured. A tree and a tar/cpio archive of it give the same digest. See docs/measure.md.\n"
		"\n"
		"options:\n"
		"  --json               print {\"digest\", \"alg\", \"entries\", \"bytes\", \"excludes\", \"seconds\"}\n"
		"  --manifest FILE      write the manifest (CBOR records) to FILE (\"-\" = stdout);\n"
		"                       with --prove and no ROOT or --archive: the manifest to read\n"
		"  --archive FILE       measure an archive instead of a tree\n"
		"  --exclude PATH       also skip PATH (relative to the root, repeatable); the defaults are\n"
		"                       /proc /sys /dev /run /tmp /var/tmp /var/log /var/cache\n"
		"  --no-default-excludes  do not skip the default paths\n"
		"  --cross-mounts       descend into other file systems below ROOT\n"
		"  --jobs N             hashing threads (default: online CPUs)\n"
		"  --progress           files and bytes done on stderr while measuring\n"
		"  --diff A B           A and B are each a manifest file, a directory or an archive;\n"
		"                       prints '+ PATH', '- PATH', '~ PATH: what' lines; exit 1 if they differ\n"
		"  --prove PATH         print a JSON inclusion proof of PATH's record (use with --manifest,\n"
		"                       ROOT or --archive)\n"
		"  --verify-proof FILE  check a proof (\"-\" = stdin); --digest pins the root, --path the path\n"
		"\n"
		"exit status: 0 success (or no difference), 1 failure (or differences), 2 usage error\n");
}

/* Display form of a raw path: non-printable bytes as \xNN. */
static const char *disp(const void *p, size_t n, char *buf, size_t cap)
{
	const unsigned char *s = p;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		if (s[i] == '\\') {
			buf[o++] = '\\';
			buf[o++] = '\\';
		} else if (s[i] < 0x20 || s[i] >= 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", s[i]);
		} else {
			buf[o++] = (char)s[i];
		}
	}
	buf[o] = 0;
	return buf;
}

struct progress {
	int tty;
	unsigned calls;
};

static void on_progress(void *ud, uint64_t files, uint64_t bytes, uint64_t found, int final)
{
	struct progress *p = ud;
	p->calls++;
	if (p->tty) {
		fprintf(stderr, "\rsluice: measure: %" PRIu64 " files, %.1f MiB hashed, %" PRIu64 " entries found%s", files,
			(double)bytes / 1048576.0, found, final ? "\n" : "   ");
	} else if (final || p->calls % 8 == 0) {
		fprintf(stderr, "sluice: measure: %" PRIu64 " files, %.1f MiB hashed, %" PRIu64 " entries found%s\n", files,
			(double)bytes / 1048576.0, found, final ? " (done)" : "");
	}
	fflush(stderr);
}

static void report(const char *what, const struct measure_error *e)
{
	char line[4 * MEASURE_MAX_PATH + 512];
	measure_error_format(e, line, sizeof line);
	agent_log("failed to %s: %s", what, line);
}

static int looks_like_manifest(const char *file)
{
	FILE *f = fopen(file, "rb");
	uint8_t head[32];
	size_t n;
	if (!f)
		return 0;
	n = fread(head, 1, sizeof head, f);
	fclose(f);
	/* array head (1..9 bytes), then [ "sluice-manifest", ... */
	for (size_t i = 1; i + 17 <= n && i <= 9; i++)
		if (head[i] == 0x85 && head[i + 1] == 0x6f && memcmp(head + i + 2, "sluice-manifest", 15) == 0)
			return 1;
	return 0;
}

static int load_manifest_file(const char *file, struct measure_manifest **ret)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct measure_error e;
	memset(&e, 0, sizeof e);
	if (agent_read_file(file, MEASURE_MAX_MANIFEST, &buf, &len) != 0) {
		agent_log("failed to read manifest %s: %s", file, strerror(errno));
		return -1;
	}
	if (measure_manifest_decode(buf, len, ret, &e) != MEASURE_OK) {
		free(buf);
		snprintf(e.path, sizeof e.path, "%s", file);
		report("decode manifest", &e);
		return -1;
	}
	free(buf);
	return 0;
}

/* A manifest file, a directory, or an archive. */
static int load_any(const char *src, int is_archive, const struct measure_opts *o, struct measure_manifest **ret)
{
	struct measure_error e;
	struct stat st;
	enum measure_err rc;

	memset(&e, 0, sizeof e);
	if (!is_archive && stat(src, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = measure_tree(src, o, ret, &e);
	} else if (!is_archive && looks_like_manifest(src)) {
		return load_manifest_file(src, ret);
	} else {
		rc = measure_archive(src, o, ret, &e);
	}
	if (rc != MEASURE_OK) {
		char what[4200];
		snprintf(what, sizeof what, "measure %s", src);
		report(what, &e);
		return -1;
	}
	return 0;
}

static void digest_str(const uint8_t *d, char out[8 + DIGEST_HEX_LEN])
{
	memcpy(out, "sha256:", 7);
	agent_hex(d, MEASURE_DIGEST_LEN, out + 7);
}

static int print_change(void *ud, const struct measure_change *c)
{
	char a[4 * MEASURE_MAX_PATH + 8];
	unsigned *counts = ud;
	switch (c->kind) {
	case MEASURE_ADDED:
		printf("+ %s (%s)\n", disp(c->b.path, c->b.path_len, a, sizeof a), measure_type_name(c->b.type));
		counts[0]++;
		break;
	case MEASURE_REMOVED:
		printf("- %s (%s)\n", disp(c->a.path, c->a.path_len, a, sizeof a), measure_type_name(c->a.type));
		counts[1]++;
		break;
	case MEASURE_CHANGED: {
		const char *sep = "";
		printf("~ %s:", disp(c->a.path, c->a.path_len, a, sizeof a));
		if (c->what & MEASURE_CH_TYPE) {
			printf("%s type %s -> %s", sep, measure_type_name(c->a.type), measure_type_name(c->b.type));
			sep = ",";
		}
		if (c->what & MEASURE_CH_CONTENT) {
			printf("%s content", sep);
			if (c->a.size != c->b.size)
				printf(" (size %" PRIu64 " -> %" PRIu64 ")", c->a.size, c->b.size);
			sep = ",";
		}
		if (c->what & MEASURE_CH_TARGET) {
			printf("%s link target", sep);
			sep = ",";
		}
		if (c->what & MEASURE_CH_DEVICE) {
			printf("%s device number", sep);
			sep = ",";
		}
		if (c->what & MEASURE_CH_MODE) {
			printf("%s mode %04o -> %04o", sep, (unsigned)c->a.mode, (unsigned)c->b.mode);
			sep = ",";
		}
		if (c->what & MEASURE_CH_OWNER)
			printf("%s owner %u:%u -> %u:%u", sep, (unsigned)c->a.uid, (unsigned)c->a.gid, (unsigned)c->b.uid,
			       (unsigned)c->b.gid);
		printf("\n");
		counts[2]++;
		break;
	}
	}
	return 0;
}

static int same_excludes(const struct measure_manifest *a, const struct measure_manifest *b)
{
	size_t n = measure_manifest_n_excludes(a);
	if (n != measure_manifest_n_excludes(b))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(measure_manifest_exclude(a, i), measure_manifest_exclude(b, i)) != 0)
			return 0;
	return 1;
}

static void print_excludes(const char *label, const struct measure_manifest *m)
{
	char d[4 * MEASURE_MAX_PATH + 8];
	printf("%s", label);
	for (size_t i = 0; i < measure_manifest_n_excludes(m); i++) {
		const char *x = measure_manifest_exclude(m, i);
		printf(" %s", disp(x, strlen(x), d, sizeof d));
	}
	printf("\n");
}

static int do_diff(const char *a, const char *b, int is_archive, const struct measure_opts *o)
{
	struct measure_manifest *ma = NULL, *mb = NULL;
	unsigned counts[3] = {0, 0, 0};
	char da[8 + DIGEST_HEX_LEN], db[8 + DIGEST_HEX_LEN];
	int rc = 1;

	if (load_any(a, is_archive, o, &ma) != 0 || load_any(b, is_archive, o, &mb) != 0) {
		rc = 2;
		goto out;
	}
	digest_str(measure_manifest_digest(ma), da);
	digest_str(measure_manifest_digest(mb), db);
	measure_diff(ma, mb, print_change, counts);
	printf("# %s %s (%zu entries)\n# %s %s (%zu entries)\n# %u added, %u removed, %u changed\n", da, a,
	       measure_manifest_entries(ma), db, b, measure_manifest_entries(mb), counts[0], counts[1], counts[2]);
	if (!same_excludes(ma, mb)) {
		/* a digest means something only together with its excludes: say so */
		print_excludes("# excludes of A:", ma);
		print_excludes("# excludes of B:", mb);
	}
	rc = counts[0] || counts[1] || counts[2] || strcmp(da, db) != 0 ? 1 : 0;
out:
	measure_manifest_free(ma);
	measure_manifest_free(mb);
	return rc == 2 ? 1 : rc;
}

static int do_prove(struct measure_manifest *m, const char *path)
{
	struct measure_proof p;
	struct measure_error e;
	const uint8_t *rec;
	size_t rlen = 0;
	char *hex = NULL, root[8 + DIGEST_HEX_LEN], d[4 * MEASURE_MAX_PATH + 8];
	json_t *j = NULL, *arr = NULL;
	int rc = 1;

	memset(&e, 0, sizeof e);
	if (measure_manifest_prove(m, path, strlen(path), &p, &e) != MEASURE_OK) {
		report("prove", &e);
		return 1;
	}
	rec = measure_manifest_record_bytes(m, p.index, &rlen);
	if (!rec || !(hex = malloc(2 * rlen + 1)))
		goto out;
	agent_hex(rec, rlen, hex);
	digest_str(p.root, root);
	if (!(arr = json_array()))
		goto out;
	for (size_t i = 0; i < p.path_len; i++) {
		char h[DIGEST_HEX_LEN + 1];
		agent_hex(p.path[i], MEASURE_DIGEST_LEN, h);
		json_array_append_new(arr, json_string(h));
	}
	j = json_pack("{s:s, s:s, s:I, s:I, s:O, s:s}", "path", disp(path, strlen(path), d, sizeof d), "record", hex,
		      "index", (json_int_t)p.index, "tree_size", (json_int_t)p.tree_size, "proof", arr, "root", root);
	if (!j)
		goto out;
	if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
		goto out;
	printf("\n");
	rc = 0;
out:
	if (rc)
		agent_log("failed to write proof: out of memory");
	json_decref(j);
	json_decref(arr);
	free(hex);
	return rc;
}

static int parse_digest(const char *s, uint8_t out[MEASURE_DIGEST_LEN])
{
	if (strncmp(s, "sha256:", 7) == 0)
		s += 7;
	return strlen(s) == DIGEST_HEX_LEN && agent_unhex(s, out, MEASURE_DIGEST_LEN) == MEASURE_DIGEST_LEN ? 0 : -1;
}

static int do_verify_proof(const char *file, const char *want_digest, const char *want_path)
{
	uint8_t *buf = NULL, *rec = NULL, want[MEASURE_DIGEST_LEN];
	size_t len = 0;
	json_t *j = NULL, *arr;
	json_error_t je;
	const char *rec_hex = NULL, *root = NULL;
	json_int_t index = -1, size = -1;
	struct measure_proof p;
	struct measure_record r;
	struct measure_error e;
	long rlen;
	char d[4 * MEASURE_MAX_PATH + 8];
	int rc = 1;

	memset(&p, 0, sizeof p);
	memset(&e, 0, sizeof e);
	if (want_digest && parse_digest(want_digest, want) != 0) {
		agent_log("--digest: expected sha256:<64 hex digits>");
		return 2;
	}
	if (agent_read_file(file, MAX_PROOF_JSON, &buf, &len) != 0) {
		agent_log("failed to read proof %s: %s", file, strerror(errno));
		return 1;
	}
	if (!(j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je))) {
		agent_log("failed to parse proof %s: %s (line %d)", file, je.text, je.line);
		goto out;
	}
	if (json_unpack_ex(j, &je, 0, "{s:s, s:I, s:I, s:o, s:s}", "record", &rec_hex, "index", &index, "tree_size",
			   &size, "proof", &arr, "root", &root) != 0 ||
	    index < 0 || size < 1 || !json_is_array(arr) || json_array_size(arr) > MEASURE_MAX_PROOF ||
	    strlen(rec_hex) > 2 * (MEASURE_MAX_PATH + 64)) {
		agent_log("failed to read proof %s: missing or malformed fields", file);
		goto out;
	}
	if (!(rec = malloc(strlen(rec_hex) / 2 + 1)) ||
	    (rlen = agent_unhex(rec_hex, rec, strlen(rec_hex) / 2 + 1)) < 0 || parse_digest(root, p.root) != 0) {
		agent_log("failed to read proof %s: bad hex", file);
		goto out;
	}
	p.index = (uint64_t)index;
	p.tree_size = (uint64_t)size;
	p.path_len = json_array_size(arr);
	for (size_t i = 0; i < p.path_len; i++) {
		const char *h = json_string_value(json_array_get(arr, i));
		if (!h || strlen(h) != DIGEST_HEX_LEN || agent_unhex(h, p.path[i], MEASURE_DIGEST_LEN) != MEASURE_DIGEST_LEN) {
			agent_log("failed to read proof %s: proof[%zu] is not a 32-byte hex hash", file, i);
			goto out;
		}
	}
	if (measure_proof_verify(rec, (size_t)rlen, &p, &r, &e) != MEASURE_OK) {
		report("verify proof", &e);
		goto out;
	}
	if (want_digest && CRYPTO_memcmp(want, p.root, MEASURE_DIGEST_LEN) != 0) {
		agent_log("failed to verify proof: root %s is not the expected %s", root, want_digest);
		goto out;
	}
	if (want_path && (strlen(want_path) != r.path_len || memcmp(want_path, r.path, r.path_len) != 0)) {
		agent_log("failed to verify proof: the record is for %s, not %s", disp(r.path, r.path_len, d, sizeof d),
			  want_path);
		goto out;
	}
	printf("verified: %s (%s, mode %04o, owner %u:%u, size %" PRIu64 ") is record %" PRIu64 " of %" PRIu64 " under %s%s\n",
	       disp(r.path, r.path_len, d, sizeof d), measure_type_name(r.type), (unsigned)r.mode, (unsigned)r.uid,
	       (unsigned)r.gid, r.size, p.index, p.tree_size, root,
	       want_digest ? "" : " (root not pinned: pass --digest)");
	rc = 0;
out:
	json_decref(j);
	free(rec);
	free(buf);
	return rc;
}

static int print_result(const struct measure_manifest *m, int json, double seconds)
{
	char dg[8 + DIGEST_HEX_LEN];
	digest_str(measure_manifest_digest(m), dg);
	if (json) {
		json_t *ex = json_array(), *j;
		char d[4 * MEASURE_MAX_PATH + 8];
		int rc;
		for (size_t i = 0; ex && i < measure_manifest_n_excludes(m); i++) {
			const char *x = measure_manifest_exclude(m, i);
			json_array_append_new(ex, json_string(disp(x, strlen(x), d, sizeof d)));
		}
		j = json_pack("{s:s, s:s, s:I, s:I, s:o, s:f}", "digest", dg, "alg", measure_manifest_alg(m), "entries",
			      (json_int_t)measure_manifest_entries(m), "bytes", (json_int_t)measure_manifest_bytes(m),
			      "excludes", ex, "seconds", seconds);
		if (!j)
			return 1;
		rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("\n");
		json_decref(j);
		return rc ? 1 : 0;
	}
	printf("%s\n", dg);
	return 0;
}

enum { OPT_JSON = 256, OPT_NO_DEFAULT, OPT_CROSS, OPT_PROGRESS, OPT_DIFF, OPT_PROVE, OPT_VERIFY, OPT_DIGEST, OPT_PATH };

int cmd_measure(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"manifest", required_argument, NULL, 'm'},
		{"archive", required_argument, NULL, 'a'},
		{"exclude", required_argument, NULL, 'x'},
		{"no-default-excludes", no_argument, NULL, OPT_NO_DEFAULT},
		{"cross-mounts", no_argument, NULL, OPT_CROSS},
		{"jobs", required_argument, NULL, 'j'},
		{"progress", no_argument, NULL, OPT_PROGRESS},
		{"diff", no_argument, NULL, OPT_DIFF},
		{"prove", required_argument, NULL, OPT_PROVE},
		{"verify-proof", required_argument, NULL, OPT_VERIFY},
		{"digest", required_argument, NULL, OPT_DIGEST},
		{"path", required_argument, NULL, OPT_PATH},
		{NULL, 0, NULL, 0},
	};
	const char *manifest = NULL, *archive = NULL, *prove = NULL, *verify = NULL, *digest = NULL, *path = NULL;
	const char **excludes = NULL;
	size_t n_ex = 0;
	int json = 0, diff = 0, c, rc = 1;
	struct measure_opts o;
	struct progress prog = {0, 0};
	struct measure_manifest *m = NULL;
	struct measure_error e;
	double t0;

	memset(&o, 0, sizeof o);
	memset(&e, 0, sizeof e);
	if (!(excludes = calloc((size_t)argc + 1, sizeof *excludes))) {
		agent_log("out of memory");
		return 1;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case OPT_JSON: json = 1; break;
		case 'm': manifest = optarg; break;
		case 'a': archive = optarg; break;
		case 'x':
			if (n_ex >= MEASURE_MAX_EXCLUDES) {
				agent_log("measure: at most %u --exclude", MEASURE_MAX_EXCLUDES);
				rc = 2;
				goto out;
			}
			excludes[n_ex++] = optarg;
			break;
		case OPT_NO_DEFAULT: o.no_default_excludes = 1; break;
		case OPT_CROSS: o.cross_mounts = 1; break;
		case 'j': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > 256) {
				agent_log("measure: --jobs takes 1..256");
				rc = 2;
				goto out;
			}
			o.jobs = (unsigned)v;
			break;
		}
		case OPT_PROGRESS:
			o.progress = on_progress;
			o.ud = &prog;
			prog.tty = isatty(STDERR_FILENO);
			break;
		case OPT_DIFF: diff = 1; break;
		case OPT_PROVE: prove = optarg; break;
		case OPT_VERIFY: verify = optarg; break;
		case OPT_DIGEST: digest = optarg; break;
		case OPT_PATH: path = optarg; break;
		default:
			usage(stderr);
			rc = 2;
			goto out;
		}
	}
	o.excludes = excludes;
	o.n_excludes = n_ex;

	if (verify) {
		if (optind != argc || diff || prove) {
			usage(stderr);
			rc = 2;
			goto out;
		}
		rc = do_verify_proof(verify, digest, path);
		goto out;
	}
	if (diff) {
		if (argc - optind != 2 || prove || manifest || archive) {
			agent_log("measure: --diff takes two arguments (manifest, directory or archive each)");
			rc = 2;
			goto out;
		}
		rc = do_diff(argv[optind], argv[optind + 1], 0, &o);
		goto out;
	}
	if (argc - optind > 1 || (archive && argc - optind > 0) || digest || path) {
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (prove && manifest && !archive && optind == argc) {
		if (load_manifest_file(manifest, &m) != 0)
			goto out;
		rc = do_prove(m, prove);
		goto out;
	}
	t0 = agent_now();
	if (archive) {
		if (measure_archive(archive, &o, &m, &e) != MEASURE_OK) {
			report("measure archive", &e);
			goto out;
		}
	} else {
		const char *root = optind < argc ? argv[optind] : "/";
		if (measure_tree(root, &o, &m, &e) != MEASURE_OK) {
			report("measure tree", &e);
			goto out;
		}
	}
	if (manifest) {
		size_t len;
		const uint8_t *enc = measure_manifest_encoded(m, &len);
		if (agent_write_file(manifest, enc, len, 0644) != 0) {
			agent_log("failed to write manifest %s: %s", manifest, strerror(errno));
			goto out;
		}
	}
	if (prove) {
		rc = do_prove(m, prove);
		goto out;
	}
	if (measure_manifest_sockets(m))
		agent_log("measure: %" PRIu64 " sockets not measured", measure_manifest_sockets(m));
	rc = manifest && strcmp(manifest, "-") == 0 ? 0 : print_result(m, json, agent_now() - t0);
out:
	measure_manifest_free(m);
	free(excludes);
	return rc;
}
