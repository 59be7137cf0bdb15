/* libmerkle: known-answer roots, the transparency-dev proof vectors (accept exactly the
 * wantErr=false cases), and generated proofs checked against the verifier for many sizes. */
#include "merkle/merkle.h"
#include "tests/unit/t.h"

#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static const char *shared_dir(void)
{
	const char *s = getenv("SHARED");
	return s && *s ? s : "../shared";
}

static void unhex(const char *hex, uint8_t *out)
{
	for (size_t i = 0; i < strlen(hex) / 2; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/* The classic CT test leaves. */
static const char *ct_leaves[] = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
				  "606162636465666768696a6b6c6d6e6f"};
static const char *ct_roots[] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void ct_leaf(unsigned i, uint8_t out[32])
{
	uint8_t buf[16];
	size_t n = strlen(ct_leaves[i]) / 2;
	unhex(ct_leaves[i], buf);
	merkle_leaf_hash(buf, n, out);
}

static void test_known_roots(void)
{
	uint8_t leaves[8][32], root[32], want[32];
	struct merkle_tree *t = NULL;
	struct merkle_stream s;

	T_CHECK(merkle_tree_new(&t) == MERKLE_OK);
	merkle_stream_init(&s);
	for (unsigned i = 0; i < 8; i++) {
		ct_leaf(i, leaves[i]);
		T_CHECK(merkle_tree_append(t, leaves[i]) == MERKLE_OK);
		merkle_stream_add(&s, leaves[i]);
		unhex(ct_roots[i], want);
		merkle_root(leaves, i + 1, root);
		T_CHECK(memcmp(root, want, 32) == 0);
		merkle_stream_root(&s, root);
		T_CHECK(memcmp(root, want, 32) == 0);
		T_CHECK(merkle_tree_root(t, i + 1, root) == MERKLE_OK);
		T_CHECK(memcmp(root, want, 32) == 0);
	}
	/* Earlier sizes stay answerable after later appends. */
	for (unsigned i = 0; i < 8; i++) {
		unhex(ct_roots[i], want);
		T_CHECK(merkle_tree_root(t, i + 1, root) == MERKLE_OK && memcmp(root, want, 32) == 0);
	}
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want);
	merkle_root(leaves, 0, root);
	T_CHECK(memcmp(root, want, 32) == 0);
	T_CHECK(merkle_tree_root(t, 0, root) == MERKLE_OK && memcmp(root, want, 32) == 0);
	T_CHECK(merkle_tree_root(t, 9, root) == MERKLE_ERR_INVAL);
	merkle_tree_free(t);
}

/* Decode a base64 JSON string; returns length or -1. */
static int b64(json_t *v, uint8_t *out, size_t cap)
{
	const char *s = json_string_value(v);
	size_t n;
	int r;
	if (!s)
		return -1;
	n = strlen(s);
	if (n == 0)
		return 0;
	if (n / 4 * 3 > cap)
		return -1;
	r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (r < 0)
		return -1;
	if (n >= 1 && s[n - 1] == '=')
		r--;
	if (n >= 2 && s[n - 2] == '=')
		r--;
	return r;
}

/* Sizes and indices: some vectors hold 2^64-1 (a wrapped -1), beyond json_int_t, so numbers are
 * decoded as reals; anything past 2^53 stands for "huge" and maps to UINT64_MAX. */
static int num(json_t *j, const char *key, uint64_t *out)
{
	double d = json_number_value(json_object_get(j, key));
	if (d < 0)
		return -1;
	*out = d > 9007199254740992.0 ? UINT64_MAX : (uint64_t)d;
	return 0;
}

/* Hashes go to the API as 32-byte arrays; a vector's hash of another length can only ever be
 * accepted when the proof is trivially empty (equal sizes) and both roots are identical. */
static int hash32(json_t *v, uint8_t out[32], int *len)
{
	uint8_t tmp[64];
	int n = b64(v, tmp, sizeof tmp);
	*len = n;
	if (n < 0 || n > 32)
		return -1;
	memset(out, 0, 32);
	memcpy(out, tmp, (size_t)n);
	return 0;
}

/* Returns 0 if the vector verified, -1 if it was rejected. */
static int run_vector(json_t *j, int consistency)
{
	uint8_t a[64], b[64], leaf[64], proof[MERKLE_MAX_PROOF][32];
	json_t *jp = json_object_get(j, "proof");
	size_t np = json_is_array(jp) ? json_array_size(jp) : 0;

	if (np > MERKLE_MAX_PROOF)
		return -1;
	for (size_t i = 0; i < np; i++) {
		uint8_t tmp[64];
		if (b64(json_array_get(jp, i), tmp, sizeof tmp) != 32)
			return -1;
		memcpy(proof[i], tmp, 32);
	}
	if (consistency) {
		uint64_t s1, s2;
		int l1, l2;
		if (num(j, "size1", &s1) || num(j, "size2", &s2) || hash32(json_object_get(j, "root1"), a, &l1) ||
		    hash32(json_object_get(j, "root2"), b, &l2))
			return -1;
		if (s1 != s2 && (l1 != 32 || l2 != 32))
			return -1;
		if (s1 == s2 && l1 != l2)
			return -1;
		return merkle_consistency_verify(s1, s2, a, b, (const uint8_t(*)[32])proof, np) == MERKLE_OK ? 0 : -1;
	}
	uint64_t idx, size;
	if (num(j, "leafIdx", &idx) || num(j, "treeSize", &size) || b64(json_object_get(j, "root"), a, sizeof a) != 32 ||
	    b64(json_object_get(j, "leafHash"), leaf, sizeof leaf) != 32)
		return -1;
	return merkle_inclusion_verify(idx, size, leaf, (const uint8_t(*)[32])proof, np, a) == MERKLE_OK ? 0 : -1;
}

static void walk(const char *dir, int consistency, int *count, int *accepted)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	T_CHECK(d != NULL);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[1024];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR) {
			walk(p, consistency, count, accepted);
			continue;
		}
		if (!strstr(e->d_name, ".json"))
			continue;
		json_error_t err;
		json_t *j = json_load_file(p, JSON_DECODE_INT_AS_REAL, &err);
		T_CHECK(j != NULL);
		if (!j)
			continue;
		int want_err = json_is_true(json_object_get(j, "wantErr"));
		int got = run_vector(j, consistency);
		if ((got != 0) != want_err) {
			printf("# %s: wantErr=%d but verification %s\n", p, want_err, got ? "failed" : "passed");
			t_case_failed = 1;
		}
		(*count)++;
		*accepted += got == 0;
		json_decref(j);
	}
	closedir(d);
}

static void test_inclusion_vectors(void)
{
	char dir[512];
	int count = 0, accepted = 0;
	snprintf(dir, sizeof dir, "%s/vectors/merkle/inclusion", shared_dir());
	walk(dir, 0, &count, &accepted);
	printf("# inclusion vectors: %d, accepted %d\n", count, accepted);
	T_CHECK(count > 50);
	T_CHECK(accepted > 0);
}

static void test_consistency_vectors(void)
{
	char dir[512];
	int count = 0, accepted = 0;
	snprintf(dir, sizeof dir, "%s/vectors/merkle/consistency", shared_dir());
	walk(dir, 1, &count, &accepted);
	printf("# consistency vectors: %d, accepted %d\n", count, accepted);
	T_CHECK(count > 50);
	T_CHECK(accepted > 0);
}

/* Every generated inclusion and consistency proof verifies; a flipped bit does not. */
static void test_generated_proofs(void)
{
	struct merkle_tree *t = NULL;
	uint8_t leaf[32], root[32], root1[32], path[MERKLE_MAX_PROOF][32];
	size_t len;
	const unsigned N = 70;

	T_CHECK(merkle_tree_new(&t) == MERKLE_OK);
	for (unsigned i = 0; i < N; i++) {
		merkle_leaf_hash(&i, sizeof i, leaf);
		T_CHECK(merkle_tree_append(t, leaf) == MERKLE_OK);
	}
	for (uint64_t n = 1; n <= N; n++) {
		T_CHECK(merkle_tree_root(t, n, root) == MERKLE_OK);
		for (uint64_t m = 0; m < n; m++) {
			T_CHECK(merkle_tree_inclusion(t, m, n, path, &len) == MERKLE_OK);
			T_CHECK(merkle_inclusion_verify(m, n, merkle_tree_leaf(t, m), (const uint8_t(*)[32])path, len,
							root) == MERKLE_OK);
			if (len) {
				path[len / 2][3] ^= 0x40;
				T_CHECK(merkle_inclusion_verify(m, n, merkle_tree_leaf(t, m),
								(const uint8_t(*)[32])path, len,
								root) == MERKLE_ERR_MISMATCH);
			}
			if (m + 1 < n) /* the wrong index does not verify */
				T_CHECK(merkle_inclusion_verify(m + 1, n, merkle_tree_leaf(t, m),
								(const uint8_t(*)[32])path, len, root) != MERKLE_OK);
			uint64_t s1 = m + 1;
			T_CHECK(merkle_tree_root(t, s1, root1) == MERKLE_OK);
			T_CHECK(merkle_tree_consistency(t, s1, n, path, &len) == MERKLE_OK);
			T_CHECK(merkle_consistency_verify(s1, n, root1, root, (const uint8_t(*)[32])path, len) ==
				MERKLE_OK);
			if (len) {
				path[0][0] ^= 1;
				T_CHECK(merkle_consistency_verify(s1, n, root1, root, (const uint8_t(*)[32])path,
								  len) != MERKLE_OK);
			}
		}
	}
	T_CHECK(merkle_tree_inclusion(t, 5, 5, path, &len) == MERKLE_ERR_INVAL);
	T_CHECK(merkle_tree_consistency(t, 0, 5, path, &len) == MERKLE_ERR_INVAL);
	T_CHECK(merkle_tree_consistency(t, 6, 5, path, &len) == MERKLE_ERR_INVAL);
	merkle_tree_free(t);
}

int main(void)
{
	T_RUN(test_known_roots);
	T_RUN(test_inclusion_vectors);
	T_RUN(test_consistency_vectors);
	T_RUN(test_generated_proofs);
	return t_done();
}
