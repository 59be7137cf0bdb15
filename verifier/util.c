/* Small shared pieces of the verifier: error strings, hex/base64, typed reasons, clocks, metrics. */
#include "verifier/verifier-int.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *verifier_strerror(enum verifier_err err)
{
	switch (err) {
	case VERIFIER_OK: return "success";
	case VERIFIER_ERR_INVAL: return "invalid input";
	case VERIFIER_ERR_NOMEM: return "out of memory";
	case VERIFIER_ERR_IO: return "I/O error";
	case VERIFIER_ERR_POLICY: return "invalid policy";
	case VERIFIER_ERR_NOTFOUND: return "not found";
	case VERIFIER_ERR_CONFLICT: return "conflict";
	case VERIFIER_ERR_EXPIRED: return "expired";
	case VERIFIER_ERR_CERT: return "certificate did not validate";
	case VERIFIER_ERR_CRYPTO: return "cryptographic failure";
	case VERIFIER_ERR_DB: return "database error";
	}
	return "unknown error";
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

int verifier_sha256(const void *buf, size_t len, uint8_t out[VERIFIER_HASH_LEN])
{
	unsigned n = 0;
	pthread_once(&sha256_once, sha256_fetch);
	if (EVP_Digest(buf, len, out, &n, sha256_md ? sha256_md : EVP_sha256(), NULL) != 1 || n != VERIFIER_HASH_LEN)
		return -1;
	return 0;
}

static EVP_CIPHER *gcm_cipher;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static void gcm_fetch(void) { gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL); }

const EVP_CIPHER *verifier_aes256gcm(void)
{
	pthread_once(&gcm_once, gcm_fetch);
	return gcm_cipher ? gcm_cipher : EVP_aes_256_gcm();
}

void verifier_hex(const uint8_t *in, size_t len, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * len] = 0;
}

static int nib(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long verifier_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

json_t *verifier_hexstr(const uint8_t *b, size_t len)
{
	char *s = malloc(2 * len + 1);
	json_t *j;
	if (!s)
		return NULL;
	verifier_hex(b, len, s);
	j = json_string(s);
	free(s);
	return j;
}

int verifier_b64_decode(const char *in, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(in), pad = 0;
	uint8_t *out;
	int r;

	if (n % 4 || n / 4 * 3 > max + 2)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		      c == '/' || (c == '=' && i >= n - 2)))
			return -1;
	}
	if (n && in[n - 1] == '=')
		pad++;
	if (n > 1 && in[n - 2] == '=')
		pad++;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -1;
	r = n ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) : 0;
	if (r < 0 || (size_t)r < pad || (size_t)r - pad > max) {
		free(out);
		return -1;
	}
	*ret = out;
	*ret_len = (size_t)r - pad;
	return 0;
}

char *verifier_b64_encode(const uint8_t *in, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* verifier_reason("pcr.mismatch", "{s:i, s:i, s:o, s:o}", ...) -- fmt is a jansson pack format
 * for the detail object, or NULL for an empty detail. */
json_t *verifier_reason(const char *type, const char *fmt, ...)
{
	json_t *detail = NULL;
	json_error_t e;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		detail = json_vpack_ex(&e, 0, fmt, ap);
		va_end(ap);
	}
	if (!detail)
		detail = json_object();
	return json_pack("{s:s, s:o}", "type", type, "detail", detail);
}

int64_t verifier_now(void)
{
	return (int64_t)time(NULL);
}

double verifier_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- metrics ---- */
static const double bucket_le[12] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

void verifier_metrics_init(struct verifier_metrics *m)
{
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->mu, NULL);
}

void verifier_metrics_appraisal(struct verifier_metrics *m, enum verifier_result r, double seconds)
{
	pthread_mutex_lock(&m->mu);
	m->appraisals[r]++;
	for (size_t i = 0; i < 12; i++)
		if (seconds <= bucket_le[i]) {
			m->buckets[i]++;
			break;
		}
	m->sum += seconds;
	m->count++;
	pthread_mutex_unlock(&m->mu);
}

char *verifier_metrics_render(struct verifier_metrics *m, long long hosts)
{
	static const char *names[VR__N] = {"affirming", "contraindicated", "error", "refused"};
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	unsigned long long cum = 0;

	if (!out)
		return NULL;
#define EMIT(...) len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, __VA_ARGS__)
	pthread_mutex_lock(&m->mu);
	EMIT("# HELP sluice_verifier_appraisals_total Appraisals by result.\n"
	     "# TYPE sluice_verifier_appraisals_total counter\n");
	for (int i = 0; i < VR__N; i++)
		EMIT("sluice_verifier_appraisals_total{result=\"%s\"} %llu\n", names[i], m->appraisals[i]);
	EMIT("# HELP sluice_verifier_appraisal_seconds Appraisal latency.\n"
	     "# TYPE sluice_verifier_appraisal_seconds histogram\n");
	for (size_t i = 0; i < 12; i++) {
		cum += m->buckets[i];
		EMIT("sluice_verifier_appraisal_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i], cum);
	}
	EMIT("sluice_verifier_appraisal_seconds_bucket{le=\"+Inf\"} %llu\n", m->count);
	EMIT("sluice_verifier_appraisal_seconds_sum %.6f\n", m->sum);
	EMIT("sluice_verifier_appraisal_seconds_count %llu\n", m->count);
	EMIT("# TYPE sluice_verifier_enrolments_total counter\nsluice_verifier_enrolments_total %llu\n",
	     m->enrolments);
	EMIT("# TYPE sluice_verifier_challenges_total counter\nsluice_verifier_challenges_total %llu\n",
	     m->challenges);
	EMIT("# TYPE sluice_verifier_rejected_busy_total counter\nsluice_verifier_rejected_busy_total %llu\n",
	     m->rejected_busy);
	EMIT("# TYPE sluice_verifier_http_requests_total counter\nsluice_verifier_http_requests_total %llu\n",
	     m->http_requests);
	EMIT("# TYPE sluice_verifier_hosts gauge\nsluice_verifier_hosts %lld\n", hosts);
	pthread_mutex_unlock(&m->mu);
#undef EMIT
	if (len >= cap) {
		free(out);
		return NULL;
	}
	return out;
}
