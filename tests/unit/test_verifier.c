/* Unit tests of the verifier's policy parser, SQLite store (nonces, enrolments, verdicts) and
 * small helpers. No TPM, no network: the full service runs in tests/integration/verifier_*.sh. */
#include "tests/unit/t.h"
#include "verifier/verifier-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

#define D64 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D64B "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"

static const char good[] =
	"{\"policy_id\": \"p1\", \"nonce_ttl\": 30,"
	" \"enrollment\": {\"allow_reenroll\": [\"h9\"], \"ek_public_keys\": [\"sha256:" D64 "\"]},"
	" \"groups\": ["
	"  {\"name\": \"web\", \"hosts\": [\"web-*\"], \"pcrs\": {\"sha256\": [0, 7, 15]},"
	"   \"pcr_values\": {\"0\": [\"" D64 "\"]}, \"rootfs\": [\"sha256:" D64B "\"],"
	"   \"release\": {\"token\": \"tok.txt\"}, \"tools\": [\"stock_price\"], \"verdict_lifetime\": 600},"
	"  {\"name\": \"rest\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [15]}, \"rootfs\": [], \"events\": []}"
	" ]}";

static int parse(const char *text, struct verifier_policy **p, char *err, size_t errlen)
{
	return verifier_policy_parse(text, strlen(text), tmpdir, p, err, errlen);
}

static void test_policy_good(void)
{
	struct verifier_policy *p = NULL;
	char err[256] = "";
	uint8_t d[32], d2[32];
	const struct verifier_group *g;

	T_EQ_INT(parse(good, &p, err, sizeof err), VERIFIER_OK);
	if (!p) {
		printf("# %s\n", err);
		return;
	}
	T_EQ_STR(p->id, "p1");
	T_EQ_INT(p->nonce_ttl, 30);
	T_EQ_INT(p->n_groups, 2);
	g = verifier_policy_group(p, "web-01");
	T_CHECK(g && strcmp(g->name, "web") == 0);
	T_EQ_INT(g->pcr_mask, (1u << 0) | (1u << 7) | (1u << 15));
	T_EQ_INT(g->lifetime, 600);
	T_EQ_INT(g->n_release, 1);
	T_CHECK(g->release[0].len == 6 && memcmp(g->release[0].data, "s3cret", 6) == 0);
	/* The payload an affirming verdict encrypts, encoded once at load (base64 of "s3cret"). */
	T_EQ_STR(g->release_pt, "{\"token\":\"czNjcmV0\"}");
	T_EQ_INT(g->release_pt_len, strlen("{\"token\":\"czNjcmV0\"}"));
	verifier_unhex(D64, d, 32);
	verifier_unhex(D64B, d2, 32);
	T_CHECK(verifier_group_pcr_value_ok(g, 0, d, 32));
	T_CHECK(!verifier_group_pcr_value_ok(g, 0, d2, 32));
	T_CHECK(verifier_group_pcr_value_ok(g, 7, d2, 32)); /* not constrained by value */
	T_CHECK(verifier_group_rootfs_ok(g, d2));
	T_CHECK(!verifier_group_rootfs_ok(g, d));
	T_CHECK(verifier_group_event_ok(g, d)); /* no "events": replay only */
	g = verifier_policy_group(p, "db-01");
	T_CHECK(g && strcmp(g->name, "rest") == 0);
	T_EQ_STR(g->release_pt, "{}"); /* no release: an empty payload */
	T_CHECK(!verifier_group_event_ok(g, d)); /* "events": [] accepts none */
	T_CHECK(!verifier_group_rootfs_ok(g, d2));
	T_CHECK(verifier_policy_reenroll_allowed(p, "h9"));
	T_CHECK(!verifier_policy_reenroll_allowed(p, "h1"));
	T_CHECK(verifier_policy_ek_pub_allowed(p, d));
	T_CHECK(!verifier_policy_ek_pub_allowed(p, d2));
	verifier_policy_free(p);
}

static void test_policy_bad(void)
{
	static const char *const bad[] = {
		"",                                   /* not JSON */
		"[]",                                 /* not an object */
		"{\"groups\": []}",                   /* no group */
		"{\"groupz\": []}",                   /* unknown key */
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [0]}}]}", /* no rootfs */
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha1\": [0]}, \"rootfs\": []}]}",
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [24]}, \"rootfs\": []}]}",
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1, 1]}, \"rootfs\": []}]}",
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1]}, \"rootfs\": [\"abc\"]}]}",
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1]}, \"rootfs\": [],"
		" \"pcr_values\": {\"2\": [\"" D64 "\"]}}]}", /* PCR not selected */
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1]}, \"rootfs\": [],"
		" \"release\": {\"x\": \"/nonexistent/file\"}}]}",
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1]}, \"rootfs\": [],"
		" \"release\": {\"../x\": \"tok.txt\"}}]}",
		"{\"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1]}, \"rootfs\": []},"
		" {\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1]}, \"rootfs\": []}]}", /* dup name */
		"{\"nonce_ttl\": 0, \"groups\": [{\"name\": \"a\", \"hosts\": [\"*\"], \"pcrs\": {\"sha256\": [1]}, \"rootfs\": []}]}",
		"{\"policy_id\": \"a\", \"policy_id\": \"b\", \"groups\": []}", /* duplicate key */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct verifier_policy *p = NULL;
		char err[256] = "";
		int rc = parse(bad[i], &p, err, sizeof err);
		if (rc == VERIFIER_OK)
			printf("# bad policy %zu accepted\n", i);
		T_CHECK(rc != VERIFIER_OK && p == NULL && err[0]);
	}
}

static void test_policy_reload_keeps_old(void)
{
	struct verifier_policy_holder h = {.mu = PTHREAD_MUTEX_INITIALIZER};
	char path[128], err[256];
	FILE *f;
	struct verifier_policy *p;

	snprintf(path, sizeof path, "%s/policy.json", tmpdir);
	f = fopen(path, "w");
	fputs(good, f);
	fclose(f);
	h.path = path;
	T_EQ_INT(verifier_policy_reload(&h, err, sizeof err), VERIFIER_OK);
	p = verifier_policy_get(&h);
	T_CHECK(p && strcmp(p->id, "p1") == 0);
	/* A bad file: rejected, the old policy (still held by p) stays current. */
	f = fopen(path, "w");
	fputs("{\"groups\": 1}", f);
	fclose(f);
	T_CHECK(verifier_policy_reload(&h, err, sizeof err) != VERIFIER_OK);
	T_CHECK(h.cur == p);
	verifier_policy_put(&h, p);
	T_CHECK(h.cur && strcmp(h.cur->id, "p1") == 0);
	verifier_policy_put(&h, h.cur);
}

static void test_store_nonces(void)
{
	struct verifier_store *s = NULL;
	uint8_t n1[32] = {1}, n2[32] = {2}, n3[32] = {3}, n4[32] = {4};
	enum nonce_state st;
	int64_t now = verifier_now();
	char dir[128];

	snprintf(dir, sizeof dir, "%s/state1", tmpdir);
	T_EQ_INT(verifier_store_open(dir, &s), VERIFIER_OK);
	if (!s)
		return;
	T_EQ_INT(verifier_store_nonce_put(s, n1, 32, "a", now + 60), VERIFIER_OK);
	T_EQ_INT(verifier_store_nonce_put(s, n2, 32, "a", now - 1), VERIFIER_OK);
	T_EQ_INT(verifier_store_nonce_put(s, n3, 32, "b", now + 60), VERIFIER_OK);
	T_CHECK(verifier_store_nonce_put(s, n1, 32, "a", now + 60) != VERIFIER_OK); /* unique */
	T_EQ_INT(verifier_store_nonce_consume(s, n1, 32, "a", now, &st), VERIFIER_OK);
	T_EQ_INT(st, NONCE_FRESH);
	T_EQ_INT(verifier_store_nonce_consume(s, n1, 32, "a", now, &st), VERIFIER_OK);
	T_EQ_INT(st, NONCE_REPLAYED);
	T_EQ_INT(verifier_store_nonce_consume(s, n2, 32, "a", now, &st), VERIFIER_OK);
	T_EQ_INT(st, NONCE_EXPIRED);
	T_EQ_INT(verifier_store_nonce_consume(s, n3, 32, "a", now, &st), VERIFIER_OK);
	T_EQ_INT(st, NONCE_OTHER_HOST);
	/* A nonce presented under the wrong host is spent: the right host cannot use it later. */
	T_EQ_INT(verifier_store_nonce_consume(s, n3, 32, "b", now, &st), VERIFIER_OK);
	T_EQ_INT(st, NONCE_REPLAYED);
	T_EQ_INT(verifier_store_nonce_consume(s, n4, 32, "a", now, &st), VERIFIER_OK);
	T_EQ_INT(st, NONCE_UNKNOWN);
	T_EQ_INT(verifier_store_nonce_purge(s, now + 1000), VERIFIER_OK);
	T_EQ_INT(verifier_store_nonce_consume(s, n1, 32, "a", now, &st), VERIFIER_OK);
	T_EQ_INT(st, NONCE_UNKNOWN);
	verifier_store_close(s);
}

/* The enrolments an appraisal reads by AK name (remembered in memory once read) follow every
 * change: re-enrolment with another AK, an AK moving to another host id, and a restart. */
static void test_store_host_keys_follow_enrolment(void)
{
	struct verifier_store *s = NULL;
	struct verifier_host h, got;
	uint8_t ek[] = {1, 2, 3}, ek2[] = {9, 8}, ak[] = {4, 5}, ak2[] = {6}, n1[34] = {0, 11, 1}, n2[34] = {0, 11, 2};
	char dir[128];

	snprintf(dir, sizeof dir, "%s/state-keys", tmpdir);
	T_EQ_INT(verifier_store_open(dir, &s), VERIFIER_OK);
	if (!s)
		return;
	memset(&h, 0, sizeof h);
	strcpy(h.host_id, "host-a");
	h.ek_pub = ek, h.ek_pub_len = sizeof ek, h.ak_pub = ak, h.ak_pub_len = sizeof ak;
	h.ak_name = n1, h.ak_name_len = sizeof n1, h.enrolled_at = 1;
	T_EQ_INT(verifier_store_host_keys_by_ak(s, n1, sizeof n1, &got), VERIFIER_ERR_NOTFOUND);
	T_EQ_INT(verifier_store_host_put(s, &h), VERIFIER_OK);
	for (int i = 0; i < 2; i++) { /* from the database, then from memory: the same */
		T_EQ_INT(verifier_store_host_keys_by_ak(s, n1, sizeof n1, &got), VERIFIER_OK);
		T_EQ_STR(got.host_id, "host-a");
		T_CHECK(got.ek_pub_len == 3 && memcmp(got.ek_pub, ek, 3) == 0 && got.ak_pub_len == 2 &&
			memcmp(got.ak_pub, ak, 2) == 0 && got.ak_name_len == 34 && memcmp(got.ak_name, n1, 34) == 0 &&
			got.ek_cert == NULL);
		verifier_host_clear(&got);
	}
	/* host-a re-enrols with another TPM: the old AK is no longer known, the new one is */
	h.ek_pub = ek2, h.ek_pub_len = sizeof ek2, h.ak_pub = ak2, h.ak_pub_len = sizeof ak2, h.ak_name = n2;
	T_EQ_INT(verifier_store_host_put(s, &h), VERIFIER_OK);
	T_EQ_INT(verifier_store_host_keys_by_ak(s, n1, sizeof n1, &got), VERIFIER_ERR_NOTFOUND);
	T_EQ_INT(verifier_store_host_keys_by_ak(s, n2, sizeof n2, &got), VERIFIER_OK);
	T_CHECK(got.ek_pub_len == 2 && memcmp(got.ek_pub, ek2, 2) == 0);
	verifier_host_clear(&got);
	/* that TPM moves to host-b: its AK now names host-b */
	strcpy(h.host_id, "host-b");
	T_EQ_INT(verifier_store_host_put(s, &h), VERIFIER_OK);
	T_EQ_INT(verifier_store_host_keys_by_ak(s, n2, sizeof n2, &got), VERIFIER_OK);
	T_EQ_STR(got.host_id, "host-b");
	verifier_host_clear(&got);
	/* an unknown name, a truncated one */
	T_EQ_INT(verifier_store_host_keys_by_ak(s, n2, sizeof n2 - 1, &got), VERIFIER_ERR_NOTFOUND);
	verifier_store_close(s);
	s = NULL;
	T_EQ_INT(verifier_store_open(dir, &s), VERIFIER_OK);
	T_EQ_INT(verifier_store_host_keys_by_ak(s, n2, sizeof n2, &got), VERIFIER_OK);
	T_EQ_STR(got.host_id, "host-b");
	verifier_host_clear(&got);
	verifier_store_close(s);
}

static void test_store_hosts(void)
{
	struct verifier_store *s = NULL;
	struct verifier_host h, got, p;
	uint8_t ek[] = {1, 2, 3}, ak[] = {4, 5}, name[] = {0, 11, 9, 9}, hash[32] = {7}, hash2[32];
	int64_t exp = 0;
	long long n = -1;
	char dir[128];

	snprintf(dir, sizeof dir, "%s/state2", tmpdir);
	T_EQ_INT(verifier_store_open(dir, &s), VERIFIER_OK);
	if (!s)
		return;
	memset(&h, 0, sizeof h);
	strcpy(h.host_id, "host-a");
	h.ek_pub = ek;
	h.ek_pub_len = sizeof ek;
	h.ak_pub = ak;
	h.ak_pub_len = sizeof ak;
	h.ak_name = name;
	h.ak_name_len = sizeof name;
	h.enrolled_at = 42;
	T_EQ_INT(verifier_store_pending_put(s, "id1", &h, hash, 99), VERIFIER_OK);
	T_EQ_INT(verifier_store_pending_take(s, "id1", &p, hash2, &exp), VERIFIER_OK);
	T_CHECK(memcmp(hash, hash2, 32) == 0 && exp == 99 && strcmp(p.host_id, "host-a") == 0 && p.ek_pub_len == 3);
	verifier_host_clear(&p);
	T_EQ_INT(verifier_store_pending_take(s, "id1", &p, hash2, &exp), VERIFIER_ERR_NOTFOUND); /* single use */
	T_EQ_INT(verifier_store_host_put(s, &h), VERIFIER_OK);
	T_EQ_INT(verifier_store_host_get(s, "host-a", &got), VERIFIER_OK);
	T_CHECK(got.enrolled_at == 42 && got.ak_name_len == 4 && got.ek_cert == NULL);
	verifier_host_clear(&got);
	T_EQ_INT(verifier_store_host_by_ak(s, name, sizeof name, &got), VERIFIER_OK);
	T_EQ_STR(got.host_id, "host-a");
	verifier_host_clear(&got);
	T_EQ_INT(verifier_store_host_by_ak(s, ak, sizeof ak, &got), VERIFIER_ERR_NOTFOUND);
	T_EQ_INT(verifier_store_verdict_add(s, "host-a", 100, "contraindicated", "[{\"type\":\"x\"}]", hash, 32,
					    ek, 3, ak, 2),
		 VERIFIER_OK);
	T_EQ_INT(verifier_store_host_get(s, "host-a", &got), VERIFIER_OK);
	T_EQ_STR(got.last_status, "contraindicated");
	T_CHECK(got.last_reasons && strstr(got.last_reasons, "\"x\""));
	verifier_host_clear(&got);
	T_EQ_INT(verifier_store_count(s, "verdicts", &n), VERIFIER_OK);
	T_EQ_INT(n, 1);
	verifier_store_close(s);
	/* Reopen: the enrolment persisted. */
	s = NULL;
	T_EQ_INT(verifier_store_open(dir, &s), VERIFIER_OK);
	T_EQ_INT(verifier_store_host_get(s, "host-a", &got), VERIFIER_OK);
	verifier_host_clear(&got);
	verifier_store_close(s);
}

static void test_b64_hex(void)
{
	uint8_t *out = NULL;
	size_t len = 0;
	char *e;
	uint8_t b[3] = {0xde, 0xad, 0xbe};
	T_EQ_INT(verifier_b64_decode("aGVsbG8=", 16, &out, &len), 0);
	T_CHECK(len == 5 && memcmp(out, "hello", 5) == 0);
	free(out);
	T_CHECK(verifier_b64_decode("aGVsbG8", 16, &out, &len) != 0);      /* bad length */
	T_CHECK(verifier_b64_decode("aGV\nbG8=", 16, &out, &len) != 0);    /* bad char */
	T_CHECK(verifier_b64_decode("aGVsbG8=", 4, &out, &len) != 0);      /* above max */
	T_EQ_INT(verifier_b64_decode("", 4, &out, &len), 0);
	T_EQ_INT(len, 0);
	free(out);
	e = verifier_b64_encode(b, 3);
	T_EQ_STR(e, "3q2+");
	free(e);
	T_EQ_INT(verifier_unhex("zz", b, 3), -1);
}

static void test_metrics(void)
{
	struct verifier_metrics m;
	char *t;
	verifier_metrics_init(&m);
	verifier_metrics_appraisal(&m, VR_AFFIRMING, 0.002);
	verifier_metrics_appraisal(&m, VR_CONTRAINDICATED, 0.2);
	t = verifier_metrics_render(&m, 3);
	T_CHECK(t && strstr(t, "sluice_verifier_appraisals_total{result=\"affirming\"} 1"));
	T_CHECK(t && strstr(t, "sluice_verifier_appraisal_seconds_bucket{le=\"+Inf\"} 2"));
	T_CHECK(t && strstr(t, "sluice_verifier_hosts 3"));
	free(t);
}

static void test_cbor_bodies(void)
{
	/* {"evidence": h'0102', "host_id": "x", "n": 5, "b": true} */
	static const uint8_t req[] = {0xa4, 0x68, 'e', 'v', 'i', 'd', 'e', 'n', 'c', 'e', 0x42, 0x01, 0x02, 0x67, 'h', 'o',
				      's', 't', '_', 'i', 'd', 0x61, 'x', 0x61, 'n', 0x05, 0x61, 'b', 0xf5};
	static const uint8_t dup[] = {0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02};
	static const uint8_t trailing[] = {0xa0, 0x00};
	char err[128];
	json_t *j = verifier_cbor_to_json(req, sizeof req, err, sizeof err), *ans;
	uint8_t *out = NULL;
	size_t len = 0;

	T_CHECK(j != NULL);
	T_EQ_STR(json_string_value(json_object_get(j, "evidence")), "AQI=");
	T_EQ_STR(json_string_value(json_object_get(j, "host_id")), "x");
	T_EQ_INT(json_integer_value(json_object_get(j, "n")), 5);
	T_CHECK(json_is_true(json_object_get(j, "b")));
	json_decref(j);
	T_CHECK(verifier_cbor_to_json(dup, sizeof dup, err, sizeof err) == NULL);
	T_CHECK(verifier_cbor_to_json(trailing, sizeof trailing, err, sizeof err) == NULL);
	T_CHECK(verifier_cbor_to_json((const uint8_t *)"\x83\x01\x02\x03", 4, err, sizeof err) == NULL); /* not a map */
	/* The bounded reader: nested values, non-text keys, negative ints and too many fields are
	 * refused; nothing is built for them. */
	T_CHECK(verifier_cbor_to_json((const uint8_t *)"\xa1\x61" "a\x82\x00\x00", 6, err, sizeof err) == NULL);
	T_CHECK(verifier_cbor_to_json((const uint8_t *)"\xa1\x61" "a\xa0", 4, err, sizeof err) == NULL);
	T_CHECK(verifier_cbor_to_json((const uint8_t *)"\xa1\x01\x00", 3, err, sizeof err) == NULL);
	T_CHECK(verifier_cbor_to_json((const uint8_t *)"\xa1\x61" "a\x20", 4, err, sizeof err) == NULL);
	{
		uint8_t m65[2 + 65 * 3] = {0xb8, 65}; /* 65 fields: refused by count, before any key */
		for (int i = 0; i < 65; i++) {
			m65[2 + 3 * i] = 0x61;
			m65[3 + 3 * i] = 'a';
			m65[4 + 3 * i] = 0x00;
		}
		T_CHECK(verifier_cbor_to_json(m65, sizeof m65, err, sizeof err) == NULL);
		T_CHECK(strstr(err, "at most 64 fields") != NULL);
	}
	/* JSON bodies: the same shape, checked before jansson builds anything. */
	T_EQ_INT(verifier_json_shape_check("{\"a\":\"[{\\\"\",\"b\":1}", 18, err, sizeof err), 0);
	T_EQ_INT(verifier_json_shape_check("{\"a\":[0]}", 9, err, sizeof err), -1);
	T_EQ_INT(verifier_json_shape_check("{\"a\":{}}", 8, err, sizeof err), -1);
	T_EQ_INT(verifier_json_shape_check("[0]", 3, err, sizeof err), -1);
	{
		char many[1024];
		size_t n = 1;
		many[0] = '{';
		for (int i = 0; i < 65; i++)
			n += (size_t)snprintf(many + n, sizeof many - n, "%s\"k%d\":0", i ? "," : "", i);
		many[n++] = '}';
		T_EQ_INT(verifier_json_shape_check(many, n, err, sizeof err), -1);
	}
	/* Answers: binary fields become byte strings, the rest keeps its type. */
	ans = json_pack("{s:s, s:i}", "verdict", "AQI=", "expires", -3);
	T_EQ_INT(verifier_json_to_cbor(ans, &out, &len), 0);
	/* {"verdict": h'0102', "expires": -3} in some key order */
	T_EQ_INT(len, 1 + 8 + 3 + 8 + 1);
	T_CHECK(out && memmem(out, len, "\x67" "verdict\x42\x01\x02", 11) != NULL);
	T_CHECK(out && memmem(out, len, "\x67" "expires\x22", 9) != NULL);
	free(out);
	json_decref(ans);
}

int main(void)
{
	char path[128];
	FILE *f;
	strcpy(tmpdir, "/tmp/test_verifier.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(path, sizeof path, "%s/tok.txt", tmpdir);
	f = fopen(path, "w");
	fputs("s3cret", f);
	fclose(f);
	T_RUN(test_policy_good);
	T_RUN(test_policy_bad);
	T_RUN(test_policy_reload_keeps_old);
	T_RUN(test_store_nonces);
	T_RUN(test_store_hosts);
	T_RUN(test_store_host_keys_follow_enrolment);
	T_RUN(test_b64_hex);
	T_RUN(test_metrics);
	T_RUN(test_cbor_bodies);
	{
		char cmd[160];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			return 1;
	}
	return t_done();
}
