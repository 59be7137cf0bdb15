/* libquote pure functions: PCR selections and digests, TPM2B_PUBLIC / TPMS_ATTEST /
 * TPMT_SIGNATURE verification against a quote captured from swtpm (with tampered copies),
 * the PCR values file, the sluice event log, the TCG event log (synthetic logs: replay,
 * truncation at every byte, the event-type attacks), MakeCredential output shape. */
#include "quote/quote.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h) / 2;
	if (n > cap)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* Captured from swtpm: sluice quote --nonce 000102..0f --pcrs sha256:0,15 (PCRs all zero). */
static const char *AK_PUB = "00580023000b00050472000000100018000b0003001000203af8f1bbd5b8c297315f54b9539b5c023a45351f"
			    "1b5127beae64c05815c616610020b273175816875c69eadb02c816cd16429ac8d30980daf9637afe9509ae"
			    "f87196";
static const char *QUOTE_MSG = "ff54434780180022000b7e42a129f3b8dde979640ac79fdc8a2aa0ef9af25a61ee47014a5dc82d766a1c00"
			       "10000102030405060708090a0b0c0d0e0f00000000000001e10000000c00000000002019102300163636"
			       "00000001000b030180000020f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759"
			       "fb4b";
static const char *QUOTE_SIG = "0018000b0020f5f42619435d5479976c29d30de33385138130d14774d9ec09ee70ad3bbc4e8a00207e37a0"
			       "b37a7f0dd24ab740b9c43d3652d44d684a8ceb9d260bebbb701a442154";

static uint8_t ak[256], msg[512], sig[256], nonce[16];
static size_t akl, msgl, sigl;

static void load_vectors(void)
{
	akl = unhex(AK_PUB, ak, sizeof ak);
	msgl = unhex(QUOTE_MSG, msg, sizeof msg);
	sigl = unhex(QUOTE_SIG, sig, sizeof sig);
	for (int i = 0; i < 16; i++)
		nonce[i] = (uint8_t)i;
}

static struct quote_pcr_values *zero_pcrs(const char *sel)
{
	struct quote_pcr_values *v = calloc(1, sizeof *v);
	struct quote_pcr_selection s;
	if (quote_pcr_selection_parse(sel, &s) != QUOTE_OK)
		return v;
	v->sel = s; /* all values zero */
	return v;
}

static void test_selection_parse(void)
{
	struct quote_pcr_selection s;
	char buf[256];
	T_EQ_INT(quote_pcr_selection_parse("sha256:0,1,2,3,4,5,6,7,15", &s), QUOTE_OK);
	T_EQ_INT(s.n, 1);
	T_EQ_INT(s.bank[0].alg, QUOTE_ALG_SHA256);
	T_EQ_INT(s.bank[0].mask, 0x80ff);
	T_EQ_INT(quote_pcr_selection_parse("sha1:0-3+sha256:all", &s), QUOTE_OK);
	T_EQ_INT(s.n, 2);
	T_EQ_INT(s.bank[0].mask, 0xf);
	T_EQ_INT(s.bank[1].mask, 0xffffff);
	T_EQ_INT(quote_pcr_selection_count(&s), 28);
	T_EQ_INT(quote_pcr_selection_format(&s, buf, sizeof buf), QUOTE_OK);
	T_CHECK(strncmp(buf, "sha1:0,1,2,3+sha256:0,1,2", 25) == 0);
	T_EQ_INT(quote_pcr_selection_format(&s, buf, 10), QUOTE_ERR_TOO_LARGE);
	T_EQ_INT(quote_pcr_selection_parse("sha256:0x0f", &s), QUOTE_OK);
	T_EQ_INT(s.bank[0].mask, 1u << 15);
	/* bad ones */
	const char *bad[] = {"", "sha256", "sha256:", "md5:1", "sha256:24", "sha256:1,,2", "sha256:3-1",
			     "sha256:1+sha256:2", "sha256:1x", "sha256:1+", ":1", "sha256:-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (quote_pcr_selection_parse(bad[i], &s) != QUOTE_ERR_ARG) {
			printf("# accepted '%s'\n", bad[i]);
			T_CHECK(0);
		}
}

static void test_alg_names(void)
{
	T_EQ_INT(quote_alg_from_name("sha384"), QUOTE_ALG_SHA384);
	T_EQ_STR(quote_alg_name(QUOTE_ALG_SHA1), "sha1");
	T_EQ_INT(quote_alg_digest_len(QUOTE_ALG_SHA512), 64);
	T_EQ_INT(quote_alg_digest_len(0x9999), 0);
	T_CHECK(quote_alg_name(0x9999) == NULL);
	for (int e = 0; e <= QUOTE_ERR_IO; e++)
		T_CHECK(quote_strerror((enum quote_err)e)[0] != 0);
}

static void test_pcr_values(void)
{
	struct quote_pcr_values *v = calloc(1, sizeof *v);
	struct quote_pcr_selection s;
	struct quote_digest d;
	uint8_t zero[64] = {0}, one[32], buf[64];
	uint8_t *file = NULL;
	size_t fl = 0;

	quote_pcr_selection_parse("sha256:0,17,23", &s);
	quote_pcr_values_init(v, &s);
	T_CHECK(quote_pcr_value(v, QUOTE_ALG_SHA256, 17)[0] == 0xff);
	T_CHECK(quote_pcr_value(v, QUOTE_ALG_SHA256, 23)[0] == 0);
	T_CHECK(quote_pcr_value(v, QUOTE_ALG_SHA1, 0) == NULL);
	T_CHECK(quote_pcr_value(v, QUOTE_ALG_SHA256, 1) == NULL);
	/* extend by hand: SHA256(0^32 || 1^32) */
	memset(one, 1, sizeof one);
	T_EQ_INT(quote_pcr_value_extend(v, QUOTE_ALG_SHA256, 0, one, 32), QUOTE_OK);
	memcpy(buf, zero, 32);
	memcpy(buf + 32, one, 32);
	{
		uint8_t h[32];
		unsigned hl;
		EVP_Digest(buf, 64, h, &hl, EVP_sha256(), NULL);
		T_CHECK(memcmp(quote_pcr_value(v, QUOTE_ALG_SHA256, 0), h, 32) == 0);
	}
	T_EQ_INT(quote_pcr_value_extend(v, QUOTE_ALG_SHA256, 5, one, 32), QUOTE_ERR_ARG);
	T_EQ_INT(quote_pcr_value_extend(v, QUOTE_ALG_SHA256, 0, one, 20), QUOTE_ERR_ARG);
	T_EQ_INT(quote_pcr_value_set(v, QUOTE_ALG_SHA1, 3, one, 20), QUOTE_OK);
	T_EQ_INT(v->sel.n, 2);
	/* digest needs every selected value */
	quote_pcr_selection_parse("sha256:0,1", &s);
	T_EQ_INT(quote_pcr_digest(v, &s, QUOTE_ALG_SHA256, &d), QUOTE_ERR_PCR_SELECTION);
	quote_pcr_selection_parse("sha256:0+sha1:3", &s);
	T_EQ_INT(quote_pcr_digest(v, &s, QUOTE_ALG_SHA256, &d), QUOTE_OK);
	T_EQ_INT(d.len, 32);
	/* the PCR file round trip */
	{
		struct quote_pcr_values *w = calloc(1, sizeof *w);
		T_EQ_INT(quote_pcrs_file_encode(v, &file, &fl), QUOTE_OK);
		T_EQ_INT(fl, 668);
		T_EQ_INT(quote_pcrs_file_parse(file, fl, &v->sel, w), QUOTE_OK);
		T_CHECK(memcmp(quote_pcr_value(w, QUOTE_ALG_SHA256, 0), quote_pcr_value(v, QUOTE_ALG_SHA256, 0), 32) == 0);
		T_CHECK(memcmp(quote_pcr_value(w, QUOTE_ALG_SHA1, 3), one, 20) == 0);
		/* a file for another selection */
		T_EQ_INT(quote_pcrs_file_parse(file, fl, &s, w), QUOTE_ERR_PCR_SELECTION);
		T_EQ_INT(quote_pcrs_file_parse(file, fl - 1, &v->sel, w), QUOTE_ERR_FORMAT);
		free(w);
	}
	free(file);
	free(v);
}

static void test_public_parse(void)
{
	struct quote_public_info info;
	struct quote_diag d;
	uint8_t *der = NULL;
	size_t derl = 0;
	char *pem = NULL;

	load_vectors();
	T_EQ_INT(quote_public_parse(ak, akl, &info, &d), QUOTE_OK);
	T_EQ_INT(info.type, QUOTE_ALG_ECC);
	T_EQ_INT(info.curve, QUOTE_ECC_NIST_P256);
	T_EQ_INT(info.scheme, QUOTE_ALG_ECDSA);
	T_EQ_INT(info.name_len, 34);
	T_EQ_INT(quote_check_ak(&info, &d), QUOTE_OK);
	T_EQ_INT(quote_check_sk(&info, &d), QUOTE_ERR_KEY_ATTRS); /* restricted: not a statement key */
	T_EQ_INT(quote_public_to_der(ak, akl, &der, &derl), QUOTE_OK);
	T_EQ_INT(derl, 91);
	T_EQ_INT(quote_public_to_pem(ak, akl, &pem), QUOTE_OK);
	T_CHECK(pem && strstr(pem, "BEGIN PUBLIC KEY"));
	free(der);
	free(pem);
	/* every truncation fails cleanly; so does a trailing byte */
	for (size_t n = 0; n < akl; n++)
		T_CHECK(quote_public_parse(ak, n, &info, &d) != QUOTE_OK);
	{
		uint8_t longer[300];
		memcpy(longer, ak, akl);
		longer[akl] = 0;
		T_EQ_INT(quote_public_parse(longer, akl + 1, &info, &d), QUOTE_ERR_FORMAT);
	}
	/* attribute checks: clear fixedTPM (objectAttributes at offset 6..9, big endian) */
	{
		uint8_t m[256];
		memcpy(m, ak, akl);
		m[9] &= (uint8_t)~0x02;
		T_EQ_INT(quote_public_parse(m, akl, &info, &d), QUOTE_OK);
		T_EQ_INT(quote_check_ak(&info, &d), QUOTE_ERR_KEY_ATTRS);
		T_CHECK(strstr(d.detail, "fixedTPM") != NULL);
		memcpy(m, ak, akl);
		m[7] &= (uint8_t)~0x01; /* restricted (bit 16) */
		T_EQ_INT(quote_public_parse(m, akl, &info, &d), QUOTE_OK);
		T_EQ_INT(quote_check_ak(&info, &d), QUOTE_ERR_KEY_ATTRS);
		/* a point not on the curve cannot become a key */
		memcpy(m, ak, akl);
		m[akl - 1] ^= 1;
		T_CHECK(quote_public_to_der(m, akl, &der, &derl) != QUOTE_OK);
	}
}

static void test_quote_verify(void)
{
	struct quote_pcr_values *v = zero_pcrs("sha256:0,15");
	struct quote_attest_info info;
	struct quote_diag d;
	uint8_t m[512], s[256], bad_nonce[16];

	load_vectors();
	T_EQ_INT(quote_attest_parse(msg, msgl, &info, &d), QUOTE_OK);
	T_EQ_INT(info.type, QUOTE_ST_ATTEST_QUOTE);
	T_EQ_INT(info.extra_len, 16);
	T_EQ_INT(info.pcr_sel.bank[0].mask, 0x8001);
	T_EQ_INT(quote_verify(ak, akl, msg, msgl, sig, sigl, nonce, 16, v, &info, &d), QUOTE_OK);
	T_EQ_INT(quote_signature_verify(ak, akl, msg, msgl, sig, sigl, &d), QUOTE_OK);

	memcpy(bad_nonce, nonce, 16);
	bad_nonce[15] ^= 1;
	T_EQ_INT(quote_verify(ak, akl, msg, msgl, sig, sigl, bad_nonce, 16, v, NULL, &d), QUOTE_ERR_NONCE);
	T_EQ_INT(quote_verify(ak, akl, msg, msgl, sig, sigl, nonce, 15, v, NULL, &d), QUOTE_ERR_NONCE);
	/* changed PCR value */
	v->value[0][15][0] = 1;
	T_EQ_INT(quote_verify(ak, akl, msg, msgl, sig, sigl, nonce, 16, v, NULL, &d), QUOTE_ERR_PCR_DIGEST);
	v->value[0][15][0] = 0;
	/* other selection */
	{
		struct quote_pcr_values *w = zero_pcrs("sha256:0,14");
		T_EQ_INT(quote_verify(ak, akl, msg, msgl, sig, sigl, nonce, 16, w, NULL, &d), QUOTE_ERR_PCR_SELECTION);
		free(w);
		w = zero_pcrs("sha256:0,15+sha1:0");
		T_EQ_INT(quote_verify(ak, akl, msg, msgl, sig, sigl, nonce, 16, w, NULL, &d), QUOTE_ERR_PCR_SELECTION);
		free(w);
	}
	/* every byte of the message and of the signature matters */
	for (size_t i = 0; i < msgl; i++) {
		memcpy(m, msg, msgl);
		m[i] ^= 0x01;
		if (quote_verify(ak, akl, m, msgl, sig, sigl, nonce, 16, v, NULL, &d) == QUOTE_OK) {
			printf("# msg byte %zu flipped still verifies\n", i);
			T_CHECK(0);
		}
	}
	for (size_t i = 0; i < sigl; i++) {
		memcpy(s, sig, sigl);
		s[i] ^= 0x01;
		if (quote_verify(ak, akl, msg, msgl, s, sigl, nonce, 16, v, NULL, &d) == QUOTE_OK) {
			printf("# sig byte %zu flipped still verifies\n", i);
			T_CHECK(0);
		}
	}
	/* magic */
	memcpy(m, msg, msgl);
	m[0] = 0;
	T_EQ_INT(quote_attest_parse(m, msgl, &info, &d), QUOTE_ERR_MAGIC);
	/* a quote is not a certify */
	{
		uint8_t skpub[256];
		size_t skl = unhex(AK_PUB, skpub, sizeof skpub);
		T_EQ_INT(quote_certify_verify(ak, akl, msg, msgl, sig, sigl, skpub, skl, NULL, 0, NULL, &d),
			 QUOTE_ERR_ATTEST_TYPE);
	}
	/* truncations */
	for (size_t n = 0; n < msgl; n++)
		T_CHECK(quote_attest_parse(msg, n, &info, &d) != QUOTE_OK);
	/* the raw r||s of the signature */
	{
		uint8_t rs[64];
		size_t rl = 0;
		T_EQ_INT(quote_signature_ecdsa_raw(sig, sigl, rs, sizeof rs, &rl), QUOTE_OK);
		T_EQ_INT(rl, 64);
		T_CHECK(memcmp(rs, sig + 6, 32) == 0);
		T_EQ_INT(quote_signature_ecdsa_raw(sig, sigl, rs, 63, &rl), QUOTE_ERR_TOO_LARGE);
	}
	free(v);
}

static void test_slog(void)
{
	struct quote_slog *log = NULL, *back = NULL;
	struct quote_pcr_selection banks;
	struct quote_pcr_values *v = calloc(1, sizeof *v), *q = calloc(1, sizeof *q);
	struct quote_diag d;
	uint8_t *enc = NULL;
	size_t encl = 0;
	const uint8_t content[] = "rootfs sha256:abcd";

	quote_pcr_selection_parse("sha1:15+sha256:15", &banks);
	T_EQ_INT(quote_slog_new(&log), QUOTE_OK);
	T_EQ_INT(quote_slog_append(log, 15, QUOTE_SLOG_ROOTFS, content, sizeof content, &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_append(log, 15, QUOTE_SLOG_RELEASED, (const uint8_t *)"x", 1, &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_encode(log, &enc, &encl), QUOTE_OK);
	T_EQ_INT(enc[0], 0x82); /* array(2) */
	T_EQ_INT(enc[1], 0xa5); /* map(5) */
	T_EQ_INT(quote_slog_parse(enc, encl, &back, &d), QUOTE_OK);
	T_EQ_INT(quote_slog_count(back), 2);
	T_EQ_INT(quote_slog_get(back, 1)->type, QUOTE_SLOG_RELEASED);
	T_EQ_INT(quote_slog_get(back, 0)->content_len, sizeof content);
	/* re-encoding is byte-identical (deterministic) */
	{
		uint8_t *enc2 = NULL;
		size_t l2 = 0;
		T_EQ_INT(quote_slog_encode(back, &enc2, &l2), QUOTE_OK);
		T_CHECK(l2 == encl && memcmp(enc, enc2, l2) == 0);
		free(enc2);
	}
	/* replay = software extend of H(type_be || content) */
	quote_pcr_selection_parse("sha256:15", &banks);
	quote_pcr_values_init(v, &banks);
	T_EQ_INT(quote_slog_replay(back, v, &d), QUOTE_OK);
	quote_pcr_values_init(q, &banks);
	{
		struct quote_digest dd;
		quote_slog_event_digest(QUOTE_ALG_SHA256, QUOTE_SLOG_ROOTFS, content, sizeof content, &dd);
		quote_pcr_value_extend(q, QUOTE_ALG_SHA256, 15, dd.bytes, dd.len);
		quote_slog_event_digest(QUOTE_ALG_SHA256, QUOTE_SLOG_RELEASED, (const uint8_t *)"x", 1, &dd);
		quote_pcr_value_extend(q, QUOTE_ALG_SHA256, 15, dd.bytes, dd.len);
	}
	T_CHECK(memcmp(v->value[0][15], q->value[0][15], 32) == 0);
	T_EQ_INT(quote_replay_check(NULL, back, q, &d), QUOTE_OK);
	q->value[0][15][3] ^= 1;
	T_EQ_INT(quote_replay_check(NULL, back, q, &d), QUOTE_ERR_REPLAY);
	T_EQ_INT(d.pcr, 15);
	T_EQ_INT(d.event, 1);
	T_EQ_INT(d.alg, QUOTE_ALG_SHA256);
	/* a record whose type was changed no longer matches its digest */
	{
		uint8_t *m = malloc(encl);
		struct quote_slog *t = NULL;
		memcpy(m, enc, encl);
		/* find "03 01" (key 3, type 1) in record 0 and make it type 3 */
		for (size_t i = 2; i + 1 < encl; i++)
			if (m[i] == 0x03 && m[i + 1] == 0x01) {
				m[i + 1] = 0x03;
				break;
			}
		T_EQ_INT(quote_slog_parse(m, encl, &t, &d), QUOTE_OK);
		quote_pcr_values_init(v, &banks);
		T_EQ_INT(quote_slog_replay(t, v, &d), QUOTE_ERR_EVENT_TYPE);
		T_EQ_INT(d.event, 0);
		quote_slog_free(t);
		/* every truncation fails, none crashes */
		for (size_t n = 1; n < encl; n++) {
			t = NULL;
			T_CHECK(quote_slog_parse(enc, n, &t, &d) != QUOTE_OK);
			quote_slog_free(t);
		}
		free(m);
	}
	/* empty input is an empty log */
	{
		struct quote_slog *e = NULL;
		T_EQ_INT(quote_slog_parse(NULL, 0, &e, &d), QUOTE_OK);
		T_EQ_INT(quote_slog_count(e), 0);
		quote_slog_free(e);
	}
	free(enc);
	free(v);
	free(q);
	quote_slog_free(log);
	quote_slog_free(back);
}

/* Known answers for the sluice log encoder, computed independently with Python's cbor2
 * (cbor2.dumps(records, canonical=True), digests with hashlib over type_be || content):
 * the encoder's output must stay byte-identical deterministic CBOR whatever builds it. */
static const char slog_kat_small_hex[] =
	"82a50000010f0282820454d7a822d7ff9ebf1f4050bab109da0bd3064eee08820b582096a749eddd647fbb7cab4293b7ab6eff815786ceffd8cbb9a68ea32c7f0296af03010453726f6f746673207368613235363a6162636400a50001010f028282045458bae813b3ad8611d1ed1011f9bf4efe8a190de6820b5820e593402e8d12a952a65235cec3144178a6c0f4a6104fff945ef2e64d3cb73f890302044178";

static void test_slog_kat(void)
{
	static const uint32_t types[] = {0, 23, 24, 255, 256, 65535, 65536, 0xffffffffu};
	static const size_t lens[] = {0, 1, 23, 24, 300};
	struct quote_slog *log = NULL, *back = NULL;
	struct quote_pcr_selection banks;
	struct quote_diag d;
	uint8_t *enc = NULL, *enc2 = NULL, content[300], h[32];
	size_t encl = 0, l2 = 0;
	char hex[2 * 161 + 1];

	/* the two-record log of test_slog, byte for byte */
	T_EQ_INT(quote_pcr_selection_parse("sha1:15+sha256:15", &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_new(&log), QUOTE_OK);
	T_EQ_INT(quote_slog_append(log, 15, QUOTE_SLOG_ROOTFS, (const uint8_t *)"rootfs sha256:abcd", 19, &banks),
		 QUOTE_OK);
	T_EQ_INT(quote_slog_append(log, 15, QUOTE_SLOG_RELEASED, (const uint8_t *)"x", 1, &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_encode(log, &enc, &encl), QUOTE_OK);
	T_EQ_INT(encl, 161);
	for (size_t i = 0; i < encl && i < 161; i++)
		snprintf(hex + 2 * i, 3, "%02x", enc[i]);
	hex[2 * (encl < 161 ? encl : 161)] = 0;
	T_EQ_STR(hex, slog_kat_small_hex);
	free(enc);
	quote_slog_free(log);

	/* 30 records: recnum, pcr, type and content length cross every head size (0..23, 1, 2, 4 bytes) */
	T_EQ_INT(quote_pcr_selection_parse("sha1:0+sha256:0+sha384:0", &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_new(&log), QUOTE_OK);
	for (unsigned i = 0; i < 30; i++) {
		for (size_t j = 0; j < lens[i % 5]; j++)
			content[j] = (uint8_t)(i * 7 + j);
		T_EQ_INT(quote_slog_append(log, i % 24, types[i % 8], content, lens[i % 5], &banks), QUOTE_OK);
	}
	T_EQ_INT(quote_slog_encode(log, &enc, &encl), QUOTE_OK);
	T_EQ_INT(encl, 5822);
	SHA256(enc, encl, h);
	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	T_EQ_STR(hex, "ba8756f7e589cfd68de464a3bd49bf3ff6084fa40f2fc20c01bb5f08bb6ee27d");
	T_EQ_INT(quote_slog_parse(enc, encl, &back, &d), QUOTE_OK);
	T_EQ_INT(quote_slog_count(back), 30);
	T_EQ_INT(quote_slog_get(back, 7)->type, 0xffffffffu);
	T_EQ_INT(quote_slog_get(back, 29)->recnum, 29);
	T_EQ_INT(quote_slog_encode(back, &enc2, &l2), QUOTE_OK);
	T_CHECK(l2 == encl && memcmp(enc, enc2, l2) == 0);
	free(enc);
	free(enc2);
	quote_slog_free(log);
	quote_slog_free(back);
}

/* The sluice log parser refuses non-canonical, malformed and oversized-shape input. */
static void test_slog_reject(void)
{
	struct quote_slog *log = NULL, *t = NULL;
	struct quote_pcr_selection banks;
	struct quote_diag d;
	uint8_t *enc = NULL, *m;
	size_t encl = 0;

	T_EQ_INT(quote_pcr_selection_parse("sha256:15", &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_new(&log), QUOTE_OK);
	T_EQ_INT(quote_slog_append(log, 15, QUOTE_SLOG_NOTE, (const uint8_t *)"x", 1, &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_encode(log, &enc, &encl), QUOTE_OK);
	/* 81 a5 00 00 01 0f 02 81 82 0b 58 20 <32> 03 03 04 41 78 */
	T_EQ_INT(encl, 2 + 4 + 1 + 1 + 2 + 2 + 32 + 2 + 3);
	m = malloc(encl + 16);
	T_CHECK(m != NULL);
	if (!m)
		return;
	T_EQ_INT(quote_slog_parse(enc, encl, &t, &d), QUOTE_OK);
	quote_slog_free(t);
	t = NULL;
	/* pcr 15 written as a 1-byte-argument uint (18 0f): same value, not the shortest head */
	memcpy(m, enc, 5);
	m[5] = 0x18;
	memcpy(m + 6, enc + 5, encl - 5);
	T_EQ_INT(quote_slog_parse(m, encl + 1, &t, &d), QUOTE_ERR_EVENTLOG);
	T_CHECK(strstr(d.detail, "deterministic") != NULL);
	quote_slog_free(t);
	t = NULL;
	/* keys 0 and 1 swapped: a valid map, not in canonical order */
	memcpy(m, enc, encl);
	m[2] = 0x01, m[3] = 0x0f, m[4] = 0x00, m[5] = 0x00;
	T_EQ_INT(quote_slog_parse(m, encl, &t, &d), QUOTE_ERR_EVENTLOG);
	T_CHECK(strstr(d.detail, "deterministic") != NULL);
	quote_slog_free(t);
	t = NULL;
	/* indefinite-length log array (9f ... ff) */
	m[0] = 0x9f;
	memcpy(m + 1, enc + 1, encl - 1);
	m[encl] = 0xff;
	T_EQ_INT(quote_slog_parse(m, encl + 1, &t, &d), QUOTE_ERR_EVENTLOG);
	quote_slog_free(t);
	t = NULL;
	/* a tagged record */
	m[0] = 0x81, m[1] = 0xc1;
	memcpy(m + 2, enc + 1, encl - 1);
	T_EQ_INT(quote_slog_parse(m, encl + 1, &t, &d), QUOTE_ERR_EVENTLOG);
	quote_slog_free(t);
	t = NULL;
	/* trailing bytes */
	memcpy(m, enc, encl);
	m[encl] = 0x00;
	T_EQ_INT(quote_slog_parse(m, encl + 1, &t, &d), QUOTE_ERR_EVENTLOG);
	T_CHECK(strstr(d.detail, "trailing") != NULL);
	quote_slog_free(t);
	t = NULL;
	/* wrong recnum */
	memcpy(m, enc, encl);
	m[3] = 0x01;
	T_EQ_INT(quote_slog_parse(m, encl, &t, &d), QUOTE_ERR_EVENTLOG);
	T_CHECK(strstr(d.detail, "carries recnum") != NULL);
	quote_slog_free(t);
	t = NULL;
	/* a sha256 digest of 31 bytes (58 1f) */
	memcpy(m, enc, encl);
	m[11] = 0x1f;
	T_EQ_INT(quote_slog_parse(m, encl - 1, &t, &d), QUOTE_ERR_EVENTLOG);
	quote_slog_free(t);
	t = NULL;
	/* unknown key 5 in place of key 4 */
	memcpy(m, enc, encl);
	m[encl - 3] = 0x05;
	T_EQ_INT(quote_slog_parse(m, encl, &t, &d), QUOTE_ERR_EVENTLOG);
	quote_slog_free(t);
	t = NULL;
	free(m);
	/* wide or deep shapes are refused before libcbor builds a tree */
	{
		size_t n = 1 << 16;
		uint8_t *w = malloc(n + 8);
		T_CHECK(w != NULL);
		if (w) {
			/* [ [0, 0, 0, ...] ] : one "record" that is a 65536-wide array */
			w[0] = 0x81, w[1] = 0x9a, w[2] = 0, w[3] = 1, w[4] = 0, w[5] = 0;
			memset(w + 6, 0, n);
			T_EQ_INT(quote_slog_parse(w, n + 6, &t, &d), QUOTE_ERR_EVENTLOG);
			quote_slog_free(t);
			t = NULL;
			/* 81 81 81 ... 00: nested arrays */
			memset(w, 0x81, n);
			w[n] = 0x00;
			T_EQ_INT(quote_slog_parse(w, n + 1, &t, &d), QUOTE_ERR_EVENTLOG);
			quote_slog_free(t);
			t = NULL;
			/* an array claiming more records than bytes */
			w[0] = 0x9a, w[1] = 0x10, w[2] = 0, w[3] = 0, w[4] = 0;
			T_EQ_INT(quote_slog_parse(w, 5, &t, &d), QUOTE_ERR_EVENTLOG);
			quote_slog_free(t);
			t = NULL;
			free(w);
		}
	}
	free(enc);
	quote_slog_free(log);
}

/* ---- synthetic TCG logs ---- */

struct lb {
	uint8_t b[8192];
	size_t n;
};
static void put32(struct lb *l, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		l->b[l->n++] = (uint8_t)(v >> (8 * i));
}
static void put16(struct lb *l, uint16_t v)
{
	l->b[l->n++] = (uint8_t)v;
	l->b[l->n++] = (uint8_t)(v >> 8);
}
static void putb(struct lb *l, const void *p, size_t n)
{
	memcpy(l->b + l->n, p, n);
	l->n += n;
}
static void spec_header(struct lb *l)
{
	uint8_t zero[20] = {0};
	put32(l, 0);
	put32(l, 3); /* EV_NO_ACTION */
	putb(l, zero, 20);
	put32(l, 16 + 4 + 4 + 4 + 8 + 1);
	putb(l, "Spec ID Event03", 16);
	put32(l, 0);             /* platform class */
	l->b[l->n++] = 0;        /* minor */
	l->b[l->n++] = 2;        /* major */
	l->b[l->n++] = 0;        /* errata */
	l->b[l->n++] = 2;        /* uintn */
	put32(l, 2);
	put16(l, QUOTE_ALG_SHA1);
	put16(l, 20);
	put16(l, QUOTE_ALG_SHA256);
	put16(l, 32);
	l->b[l->n++] = 0; /* vendor info */
}
/* Event with digests = hash of data (or of other if given). */
static void event(struct lb *l, uint32_t pcr, uint32_t type, const void *data, size_t dl, const void *hashed,
		  size_t hl)
{
	uint8_t h1[20], h2[32];
	unsigned n;
	if (!hashed) {
		hashed = data;
		hl = dl;
	}
	EVP_Digest(hashed, hl, h1, &n, EVP_sha1(), NULL);
	EVP_Digest(hashed, hl, h2, &n, EVP_sha256(), NULL);
	put32(l, pcr);
	put32(l, type);
	put32(l, 2);
	put16(l, QUOTE_ALG_SHA1);
	putb(l, h1, 20);
	put16(l, QUOTE_ALG_SHA256);
	putb(l, h2, 32);
	put32(l, (uint32_t)dl);
	putb(l, data, dl);
}

static void build_log(struct lb *l)
{
	uint8_t sep[4] = {0};
	memset(l, 0, sizeof *l);
	spec_header(l);
	event(l, 0, 0x00000008, "SeaBIOS", 8, NULL, 0);                              /* EV_S_CRTM_VERSION */
	event(l, 0, 0x00000001, "POST CODE", 9, "rom bytes", 9);                      /* EV_POST_CODE */
	event(l, 4, 0x80000003, "\x01\x02", 2, "kernel image", 12);                   /* BOOT_SERVICES_APPLICATION */
	event(l, 4, 0x80000007, "Calling EFI Application from Boot Option", 40, NULL, 0); /* EV_EFI_ACTION */
	for (uint32_t p = 0; p < 8; p++)
		event(l, p, 0x00000004, sep, 4, NULL, 0); /* EV_SEPARATOR */
	event(l, 9, 0x0000000d, "initrd", 6, "initrd bytes", 12); /* EV_IPL on PCR 9 (OS-defined) */
}

static void test_eventlog(void)
{
	struct lb *l = malloc(sizeof *l);
	struct quote_eventlog *log = NULL;
	struct quote_pcr_values *v = calloc(1, sizeof *v), *q = calloc(1, sizeof *q);
	struct quote_pcr_selection sel, banks;
	struct quote_diag d;
	size_t boundaries[64], nb = 0;

	build_log(l);
	T_EQ_INT(quote_eventlog_parse(l->b, l->n, &log, &d), QUOTE_OK);
	T_EQ_INT(quote_eventlog_count(log), 14);
	quote_eventlog_banks(log, &banks);
	T_EQ_INT(banks.n, 2);
	T_EQ_STR(quote_event_type_name(quote_eventlog_get(log, 3)->type), "EV_EFI_BOOT_SERVICES_APPLICATION");
	T_EQ_INT(quote_eventlog_get(log, 4)->data_len, 40);
	/* replay by hand for PCR 4 sha256 */
	quote_pcr_selection_parse("sha256:0,4,9+sha1:4", &sel);
	quote_pcr_values_init(v, &sel);
	T_EQ_INT(quote_eventlog_replay(log, v, &d), QUOTE_OK);
	quote_pcr_values_init(q, &sel);
	for (size_t i = 1; i < quote_eventlog_count(log); i++) {
		const struct quote_tcg_event *e = quote_eventlog_get(log, i);
		if (e->pcr == 4 || e->pcr == 0 || e->pcr == 9)
			quote_pcr_value_extend(q, QUOTE_ALG_SHA256, e->pcr, e->digests[1].bytes, 32);
		if (e->pcr == 4)
			quote_pcr_value_extend(q, QUOTE_ALG_SHA1, 4, e->digests[0].bytes, 20);
	}
	T_CHECK(memcmp(v->value, q->value, sizeof v->value) == 0);
	T_EQ_INT(quote_replay_check(log, NULL, q, &d), QUOTE_OK);
	q->value[0][4][0] ^= 1;
	T_EQ_INT(quote_replay_check(log, NULL, q, &d), QUOTE_ERR_REPLAY);
	T_EQ_INT(d.pcr, 4);
	T_EQ_INT(d.event, 9); /* header, 4 events, separators for PCRs 0..7 from index 5 */
	q->value[0][4][0] ^= 1;
	T_EQ_INT(quote_eventlog_check_types(log, 0xffffff, &d), QUOTE_OK);
	quote_eventlog_free(log);

	/* truncation at every byte: fails cleanly unless it ends on an event boundary */
	{
		struct quote_eventlog *full = NULL;
		quote_eventlog_parse(l->b, l->n, &full, &d);
		for (size_t i = 1; i < quote_eventlog_count(full); i++)
			boundaries[nb++] = quote_eventlog_get(full, i)->offset;
		quote_eventlog_free(full);
	}
	for (size_t n = 1; n < l->n; n++) {
		int boundary = 0;
		enum quote_err e;
		for (size_t k = 0; k < nb; k++)
			boundary |= boundaries[k] == n;
		log = NULL;
		e = quote_eventlog_parse(l->b, n, &log, &d);
		if (boundary ? e != QUOTE_OK : e != QUOTE_ERR_EVENTLOG) {
			printf("# truncation at %zu: %d\n", n, e);
			T_CHECK(0);
		}
		quote_eventlog_free(log);
	}

	/* attack 1: relabel the kernel's EV_EFI_BOOT_SERVICES_APPLICATION as EV_EFI_ACTION
	 * (a verifier matching "actions" by data would skip it): the replay still matches,
	 * the type check catches it because an action's digest must be the hash of its data */
	{
		struct lb *m = malloc(sizeof *m);
		*m = *l;
		log = NULL;
		quote_eventlog_parse(l->b, l->n, &log, &d);
		size_t off = quote_eventlog_get(log, 3)->offset;
		quote_eventlog_free(log);
		m->b[off + 4] = 0x07; /* type 0x80000003 -> 0x80000007 */
		log = NULL;
		T_EQ_INT(quote_eventlog_parse(m->b, m->n, &log, &d), QUOTE_OK);
		T_EQ_INT(quote_replay_check(log, NULL, q, &d), QUOTE_OK);
		T_EQ_INT(quote_eventlog_check_types(log, 0xff, &d), QUOTE_ERR_EVENT_TYPE);
		T_EQ_INT(d.event, 3);
		T_EQ_INT(d.pcr, 4);
		/* on a PCR outside the policy the check does not care */
		T_EQ_INT(quote_eventlog_check_types(log, 0x01, &d), QUOTE_OK);
		quote_eventlog_free(log);
		/* attack 2: relabel it EV_NO_ACTION to hide it: the replay no longer matches */
		*m = *l;
		m->b[off + 4] = 0x03;
		m->b[off + 7] = 0x00;
		log = NULL;
		T_EQ_INT(quote_eventlog_parse(m->b, m->n, &log, &d), QUOTE_OK);
		T_EQ_INT(quote_replay_check(log, NULL, q, &d), QUOTE_ERR_REPLAY);
		T_EQ_INT(d.pcr, 4);
		quote_eventlog_free(log);
		/* attack 3: a type that does not belong on the PCR (VARIABLE_AUTHORITY on PCR 4) */
		*m = *l;
		m->b[off + 4] = 0xe0;
		log = NULL;
		T_EQ_INT(quote_eventlog_parse(m->b, m->n, &log, &d), QUOTE_OK);
		T_EQ_INT(quote_eventlog_check_types(log, 0xff, &d), QUOTE_ERR_EVENT_TYPE);
		T_CHECK(strstr(d.detail, "not allowed on PCR 4") != NULL);
		quote_eventlog_free(log);
		/* a separator whose data was changed */
		*m = *l;
		log = NULL;
		quote_eventlog_parse(l->b, l->n, &log, &d);
		off = quote_eventlog_get(log, 5)->offset;
		quote_eventlog_free(log);
		m->b[off + 12 + 22 + 34 + 4] = 1;
		log = NULL;
		T_EQ_INT(quote_eventlog_parse(m->b, m->n, &log, &d), QUOTE_OK);
		T_EQ_INT(quote_eventlog_check_types(log, 0xff, &d), QUOTE_ERR_EVENT_TYPE);
		quote_eventlog_free(log);
		/* a digest count above the declared banks, an undeclared algorithm */
		*m = *l;
		m->b[off + 8] = 3;
		log = NULL;
		T_EQ_INT(quote_eventlog_parse(m->b, m->n, &log, &d), QUOTE_ERR_EVENTLOG);
		*m = *l;
		m->b[off + 12] = 0x0c; /* sha384 not declared */
		T_EQ_INT(quote_eventlog_parse(m->b, m->n, &log, &d), QUOTE_ERR_EVENTLOG);
		T_EQ_INT(d.event, 5);
		/* an oversized data length */
		*m = *l;
		m->b[off + 12 + 22 + 34 + 3] = 0x7f;
		T_EQ_INT(quote_eventlog_parse(m->b, m->n, &log, &d), QUOTE_ERR_EVENTLOG);
		free(m);
	}
	/* empty log */
	log = NULL;
	T_EQ_INT(quote_eventlog_parse(NULL, 0, &log, &d), QUOTE_OK);
	T_EQ_INT(quote_eventlog_count(log), 0);
	quote_eventlog_free(log);
	free(v);
	free(q);
	free(l);
}

/* Captured EK publics from swtpm (RSA-2048 L-1 template, ECC P-384 swtpm). */
/* Review finding: on a sealed host, root extends PCR 15 with a fresh ROOTFS record and
 * presents the old ROOTFS and RELEASED records as firmware events on PCR 15, with a sluice
 * log holding only the fresh record. The replay matches; the check must refuse it. */
static void test_sealed_phase_moved_to_firmware_log(void)
{
	struct lb *l = malloc(sizeof *l);
	struct quote_eventlog *log = NULL;
	struct quote_slog *old = NULL, *fresh = NULL;
	struct quote_pcr_values *q = calloc(1, sizeof *q);
	struct quote_pcr_selection banks;
	struct quote_diag d;
	const uint8_t root[32] = {0xab};
	uint8_t sep[4] = {0};

	quote_pcr_selection_parse("sha1:15+sha256:15", &banks);
	/* What the sealed boot extended into PCR 15: ROOTFS then RELEASED. */
	T_EQ_INT(quote_slog_new(&old), QUOTE_OK);
	T_EQ_INT(quote_slog_append(old, 15, QUOTE_SLOG_ROOTFS, root, sizeof root, &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_append(old, 15, QUOTE_SLOG_RELEASED, (const uint8_t *)"x", 1, &banks), QUOTE_OK);
	T_EQ_INT(quote_slog_new(&fresh), QUOTE_OK);
	T_EQ_INT(quote_slog_append(fresh, 15, QUOTE_SLOG_ROOTFS, root, sizeof root, &banks), QUOTE_OK);

	/* The firmware log carries the old records' digests as EV_IPL events on PCR 15. */
	memset(l, 0, sizeof *l);
	spec_header(l);
	for (uint32_t p = 0; p < 8; p++)
		event(l, p, 0x00000004, sep, 4, NULL, 0);
	for (size_t i = 0; i < quote_slog_count(old); i++) {
		const struct quote_slog_rec *r = quote_slog_get(old, i);
		struct quote_digest h1, h2;
		T_EQ_INT(quote_slog_event_digest(QUOTE_ALG_SHA1, r->type, r->content, r->content_len, &h1), QUOTE_OK);
		T_EQ_INT(quote_slog_event_digest(QUOTE_ALG_SHA256, r->type, r->content, r->content_len, &h2),
			 QUOTE_OK);
		put32(l, 15);
		put32(l, 0x0000000d); /* EV_IPL */
		put32(l, 2);
		put16(l, QUOTE_ALG_SHA1);
		putb(l, h1.bytes, 20);
		put16(l, QUOTE_ALG_SHA256);
		putb(l, h2.bytes, 32);
		put32(l, 1);
		putb(l, "x", 1);
	}
	T_EQ_INT(quote_eventlog_parse(l->b, l->n, &log, &d), QUOTE_OK);

	/* The quoted PCR 15 = old records then the fresh one, as the attacker's TPM holds it. */
	quote_pcr_values_init(q, &banks);
	T_EQ_INT(quote_slog_replay(old, q, &d), QUOTE_OK);
	T_EQ_INT(quote_slog_replay(fresh, q, &d), QUOTE_OK);

	T_EQ_INT(quote_replay_check(log, fresh, q, &d), QUOTE_ERR_EVENT_TYPE);
	T_EQ_INT(d.pcr, 15);
	/* Without the firmware events the same fresh log simply does not replay. */
	T_EQ_INT(quote_replay_check(NULL, fresh, q, &d), QUOTE_ERR_REPLAY);

	quote_eventlog_free(log);
	quote_slog_free(old);
	quote_slog_free(fresh);
	free(q);
	free(l);
}

static void test_makecred_shape(void)
{
	/* built here from the AK vector: an AK is not an EK, so MakeCredential refuses it */
	uint8_t *id = NULL, *sec = NULL, name[34] = {0x00, 0x0b};
	size_t il = 0, sl = 0;
	struct quote_diag d;
	uint8_t cred[32] = {1};
	load_vectors();
	T_EQ_INT(quote_make_credential(ak, akl, name, sizeof name, cred, 32, &id, &il, &sec, &sl, &d),
		 QUOTE_ERR_KEY_ATTRS);
	T_EQ_INT(quote_make_credential(ak, akl, name, sizeof name, cred, 65, &id, &il, &sec, &sl, &d), QUOTE_ERR_ARG);
	/* file format round trip */
	{
		uint8_t a[] = {0, 2, 0xaa, 0xbb}, b[] = {0, 1, 0xcc};
		uint8_t *f = NULL;
		size_t fl = 0, xl = 0, yl = 0;
		const uint8_t *x, *y;
		T_EQ_INT(quote_credential_file_encode(a, 4, b, 3, &f, &fl), QUOTE_OK);
		T_EQ_INT(fl, 15);
		T_EQ_INT(quote_credential_file_parse(f, fl, &x, &xl, &y, &yl), QUOTE_OK);
		T_CHECK(xl == 4 && yl == 3 && x[2] == 0xaa && y[2] == 0xcc);
		T_EQ_INT(quote_credential_file_parse(f, fl - 1, &x, &xl, &y, &yl), QUOTE_ERR_FORMAT);
		f[0] = 0;
		T_EQ_INT(quote_credential_file_parse(f, fl, &x, &xl, &y, &yl), QUOTE_ERR_FORMAT);
		free(f);
	}
}

/* Opening fails cleanly, without a TPM, for bad configurations. */
static void test_ctx_config(void)
{
	struct quote_ctx *ctx = NULL;
	struct quote_diag d;
	struct quote_cfg cfg = {0};

	cfg.tcti = "swtpm:port=abc";
	T_EQ_INT(quote_ctx_new_diag(&cfg, &ctx, &d), QUOTE_ERR_ARG);
	T_CHECK(strstr(d.detail, "swtpm") != NULL);
	cfg.tcti = "swtpm:bogus=1";
	T_EQ_INT(quote_ctx_new(&cfg, &ctx), QUOTE_ERR_ARG);
	cfg.tcti = "swtpm:host=tpm.example.com";
	T_EQ_INT(quote_ctx_new(&cfg, &ctx), QUOTE_ERR_ARG); /* numeric addresses only */
	cfg.tcti = "device:/nonexistent/tpmrm0";
	T_EQ_INT(quote_ctx_new_diag(&cfg, &ctx, &d), QUOTE_ERR_TCTI);
	T_CHECK(strstr(d.detail, "/nonexistent/tpmrm0") != NULL);
	cfg.tcti = "swtpm:port=2321";
	cfg.ak_handle = 0x12345678;
	T_EQ_INT(quote_ctx_new(&cfg, &ctx), QUOTE_ERR_ARG);
	cfg.ak_handle = QUOTE_HANDLE_SK;
	T_EQ_INT(quote_ctx_new(&cfg, &ctx), QUOTE_ERR_ARG); /* AK and statement key on one handle */
	cfg.ak_handle = 0;
	cfg.ek_alg = QUOTE_ALG_SHA256;
	T_EQ_INT(quote_ctx_new(&cfg, &ctx), QUOTE_ERR_ARG);
	T_CHECK(ctx == NULL);
	quote_ctx_free(NULL);
	T_EQ_STR(quote_ctx_cause(NULL), "no TPM context");
}

int main(void)
{
	T_RUN(test_selection_parse);
	T_RUN(test_alg_names);
	T_RUN(test_pcr_values);
	T_RUN(test_public_parse);
	T_RUN(test_quote_verify);
	T_RUN(test_slog);
	T_RUN(test_slog_kat);
	T_RUN(test_slog_reject);
	T_RUN(test_eventlog);
	T_RUN(test_sealed_phase_moved_to_firmware_log);
	T_RUN(test_makecred_shape);
	T_RUN(test_ctx_config);
	return t_done();
}
