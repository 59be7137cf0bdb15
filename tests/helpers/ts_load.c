/* ts_load: make signed statements and drive sluice-ts with concurrent registrations.
 *
 *   ts_load sign KEY.pem OUT.cose [ISS [SUB]]      one ES256 hash-envelope statement
 *   ts_load bsign KEY.pem OUT.cose PREIMAGE        the same made by libbundle (sluice's own
 *                                                  bundle_statement_sign; kid = RFC 9679)
 *   ts_load run  --port P --key KEY.pem [-c CONNS] [-n TOTAL] [-d SECONDS] [--rate R/s]
 *                [--record DIR] [--stop-on-error] [--ready-file PATH]
 *
 * `run` pre-signs distinct statements (payload = SHA-256 of a counter and a random run id),
 * then CONNS threads each keep one HTTP/1.1 keep-alive connection to 127.0.0.1:P and POST
 * /entries back to back (or paced to R/s in total). It prints one line:
 *   sent N ok N fail N secs S rate R/s p50 Xms p90 Xms p99 Xms
 * With --record DIR, every 201 answer is appended to DIR/acked.<thread> as
 * [u32 len][statement][u32 len][receipt] (big endian), flushed per entry, so a crash test
 * can check later that every acknowledged receipt still verifies. The kid of the statements
 * is SHA-256 of the issuer key's SubjectPublicKeyInfo (one of the forms sluice-ts accepts).
 * --ready-file is created once the statements are signed, just before the load starts. */
#include "bundle/bundle.h"
#include "transparency/ts-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;
	if (!f)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static int sign_raw(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t dl = sizeof der;
	const uint8_t *p = der;
	ECDSA_SIG *es = NULL;
	const BIGNUM *r, *s;
	int rc = -1;
	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 || EVP_DigestSign(ctx, der, &dl, msg, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
	if (!es)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	BN_bn2binpad(r, sig, 32);
	BN_bn2binpad(s, sig + 32, 32);
	rc = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int make_statement(EVP_PKEY *k, const uint8_t kid[32], const char *iss, const char *sub,
			  const uint8_t payload[32], struct ts_buf *out)
{
	struct ts_buf prot = {0}, tbs = {0};
	uint8_t sig[64];
	int rc = -1;

	ts_cbor_head(&prot, 5, 5);
	ts_cbor_int(&prot, 1);
	ts_cbor_int(&prot, -7);
	ts_cbor_int(&prot, 4);
	ts_cbor_bstr(&prot, kid, 32);
	ts_cbor_int(&prot, 15);
	ts_cbor_head(&prot, 5, 2);
	ts_cbor_int(&prot, 1);
	ts_cbor_tstr(&prot, iss);
	ts_cbor_int(&prot, 2);
	ts_cbor_tstr(&prot, sub);
	ts_cbor_int(&prot, 258);
	ts_cbor_int(&prot, -16);
	ts_cbor_int(&prot, 259);
	ts_cbor_tstr(&prot, "application/vnd.sluice.evidence+cbor");

	ts_cbor_head(&tbs, 4, 4);
	ts_cbor_tstr(&tbs, "Signature1");
	ts_cbor_bstr(&tbs, prot.p, prot.len);
	ts_cbor_bstr(&tbs, NULL, 0);
	ts_cbor_bstr(&tbs, payload, 32);
	if (prot.oom || tbs.oom || sign_raw(k, tbs.p, tbs.len, sig) != 0)
		goto out;
	ts_cbor_head(out, 6, 18);
	ts_cbor_head(out, 4, 4);
	ts_cbor_bstr(out, prot.p, prot.len);
	ts_cbor_head(out, 5, 0);
	ts_cbor_bstr(out, payload, 32);
	ts_cbor_bstr(out, sig, 64);
	rc = out->oom ? -1 : 0;
out:
	ts_buf_free(&prot);
	ts_buf_free(&tbs);
	return rc;
}

static int key_kid(EVP_PKEY *k, uint8_t kid[32])
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	int ok = n > 0 && EVP_Digest(der, (size_t)n, kid, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok ? 0 : -1;
}

/* ---- run ------------------------------------------------------------------------------------ */

struct stmt {
	uint8_t *p;
	size_t len;
};

static struct {
	int port;
	unsigned conns;
	double rate;
	double duration;
	const char *record;
	int stop_on_error;
	struct stmt *stmts;
	size_t n_stmts;
	atomic_size_t next;
	atomic_ulong ok, fail, sent;
	double *lat; /* per statement index */
	atomic_int stop;
	double t_start;
} G;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_lo(void)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct timeval tv = {10, 0};
	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)G.port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Read one response; returns status, body in *body (malloc'd). */
static int read_resp(int fd, uint8_t **body, size_t *blen)
{
	char hdr[8192];
	size_t n = 0;
	char *end = NULL;
	long clen = 0;
	int status;
	uint8_t *b;
	size_t have;

	while (!end) {
		ssize_t r;
		if (n == sizeof hdr - 1)
			return -1;
		r = recv(fd, hdr + n, sizeof hdr - 1 - n, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		hdr[n] = 0;
		end = strstr(hdr, "\r\n\r\n");
	}
	if (sscanf(hdr, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	{
		char *p = strcasestr(hdr, "\r\ncontent-length:");
		if (p && p < end)
			clen = strtol(p + 17, NULL, 10);
	}
	if (clen < 0 || clen > (16 << 20))
		return -1;
	b = malloc((size_t)clen + 1);
	if (!b)
		return -1;
	have = n - (size_t)(end + 4 - hdr);
	if (have > (size_t)clen)
		have = (size_t)clen;
	memcpy(b, end + 4, have);
	while (have < (size_t)clen) {
		ssize_t r = recv(fd, b + have, (size_t)clen - have, 0);
		if (r <= 0) {
			free(b);
			return -1;
		}
		have += (size_t)r;
	}
	*body = b;
	*blen = (size_t)clen;
	return status;
}

static void put32(FILE *f, size_t v)
{
	uint8_t h[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	fwrite(h, 1, 4, f);
}

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	int fd = -1;
	FILE *rec = NULL;
	double interval = G.rate > 0 ? (double)G.conns / G.rate : 0, next_t = now_s();

	if (G.record) {
		char path[4096];
		snprintf(path, sizeof path, "%s/acked.%u", G.record, id);
		rec = fopen(path, "w");
		if (!rec) {
			perror(path);
			return NULL;
		}
	}
	while (!atomic_load(&G.stop)) {
		size_t i = atomic_fetch_add(&G.next, 1);
		char req[256];
		int hl, status;
		uint8_t *body = NULL;
		size_t blen = 0;
		double t0;

		if (i >= G.n_stmts || (G.duration > 0 && now_s() - G.t_start > G.duration))
			break;
		if (interval > 0) {
			double w = next_t - now_s();
			if (w > 0) {
				struct timespec ts = {(time_t)w, (long)((w - (double)(time_t)w) * 1e9)};
				nanosleep(&ts, NULL);
			}
			next_t += interval;
		}
		if (fd < 0 && (fd = connect_lo()) < 0) {
			atomic_fetch_add(&G.fail, 1);
			if (G.stop_on_error)
				break;
			usleep(10000);
			continue;
		}
		hl = snprintf(req, sizeof req,
			      "POST /entries HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/cose\r\n"
			      "Accept: application/cose\r\nContent-Length: %zu\r\n\r\n",
			      G.stmts[i].len);
		t0 = now_s();
		atomic_fetch_add(&G.sent, 1);
		if (send_all(fd, req, (size_t)hl) != 0 || send_all(fd, G.stmts[i].p, G.stmts[i].len) != 0 ||
		    (status = read_resp(fd, &body, &blen)) < 0) {
			close(fd);
			fd = -1;
			atomic_fetch_add(&G.fail, 1);
			if (G.stop_on_error)
				break;
			continue;
		}
		if (status == 201) {
			G.lat[i] = now_s() - t0;
			atomic_fetch_add(&G.ok, 1);
			if (rec) {
				put32(rec, G.stmts[i].len);
				fwrite(G.stmts[i].p, 1, G.stmts[i].len, rec);
				put32(rec, blen);
				fwrite(body, 1, blen, rec);
				fflush(rec);
			}
		} else {
			atomic_fetch_add(&G.fail, 1);
			if (G.stop_on_error) {
				free(body);
				break;
			}
		}
		free(body);
	}
	if (fd >= 0)
		close(fd);
	if (rec)
		fclose(rec);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int run(int argc, char **argv)
{
	const char *keyfile = NULL, *ready = NULL;
	size_t total = 0;
	EVP_PKEY *k;
	uint8_t kid[32], runid[8];
	pthread_t *th;
	double secs, *l;
	size_t nl = 0;

	G.conns = 16;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--stop-on-error") == 0) {
			G.stop_on_error = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "ts_load: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--port") == 0)
			G.port = atoi(v);
		else if (strcmp(a, "--key") == 0)
			keyfile = v;
		else if (strcmp(a, "-c") == 0)
			G.conns = (unsigned)atoi(v);
		else if (strcmp(a, "-n") == 0)
			total = (size_t)atol(v);
		else if (strcmp(a, "-d") == 0)
			G.duration = atof(v);
		else if (strcmp(a, "--rate") == 0)
			G.rate = atof(v);
		else if (strcmp(a, "--record") == 0)
			G.record = v;
		else if (strcmp(a, "--ready-file") == 0)
			ready = v;
		else {
			fprintf(stderr, "ts_load: unknown option %s\n", a);
			return 2;
		}
	}
	if (!G.port || !keyfile || !G.conns || G.conns > 1024 || (!total && G.duration <= 0)) {
		fprintf(stderr, "ts_load run: need --port, --key and -n or -d\n");
		return 2;
	}
	if (!total)
		total = (size_t)(G.duration * (G.rate > 0 ? G.rate * 1.2 : 12000)) + 1000;
	k = load_key(keyfile);
	if (!k || key_kid(k, kid) != 0) {
		fprintf(stderr, "ts_load: cannot load %s\n", keyfile);
		return 1;
	}
	RAND_bytes(runid, sizeof runid);
	G.stmts = calloc(total, sizeof *G.stmts);
	G.lat = calloc(total, sizeof *G.lat);
	if (!G.stmts || !G.lat)
		return 1;
	for (size_t i = 0; i < total; i++) {
		uint8_t pre[16], payload[32];
		struct ts_buf b = {0};
		memcpy(pre, runid, 8);
		for (int j = 0; j < 8; j++)
			pre[8 + j] = (uint8_t)(i >> (56 - 8 * j));
		EVP_Digest(pre, sizeof pre, payload, NULL, EVP_sha256(), NULL);
		if (make_statement(k, kid, "https://load.example", "load", payload, &b) != 0)
			return 1;
		G.stmts[i].p = b.p;
		G.stmts[i].len = b.len;
	}
	G.n_stmts = total;
	if (ready) {
		FILE *f = fopen(ready, "w");
		if (f)
			fclose(f);
	}
	th = calloc(G.conns, sizeof *th);
	G.t_start = now_s();
	for (unsigned i = 0; i < G.conns; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < G.conns; i++)
		pthread_join(th[i], NULL);
	secs = now_s() - G.t_start;
	l = calloc(total, sizeof *l);
	for (size_t i = 0; i < total; i++)
		if (G.lat[i] > 0)
			l[nl++] = G.lat[i];
	qsort(l, nl, sizeof *l, cmp_d);
	printf("sent %lu ok %lu fail %lu secs %.2f rate %.0f/s p50 %.2fms p90 %.2fms p99 %.2fms\n",
	       (unsigned long)atomic_load(&G.sent), (unsigned long)atomic_load(&G.ok),
	       (unsigned long)atomic_load(&G.fail), secs, (double)atomic_load(&G.ok) / secs,
	       nl ? l[nl / 2] * 1e3 : 0.0, nl ? l[nl * 9 / 10] * 1e3 : 0.0, nl ? l[nl * 99 / 100] * 1e3 : 0.0);
	EVP_PKEY_free(k);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "sign") == 0) {
		EVP_PKEY *k = load_key(argv[2]);
		uint8_t kid[32], payload[32];
		struct ts_buf b = {0};
		FILE *f;
		RAND_bytes(payload, sizeof payload);
		if (!k || key_kid(k, kid) != 0 ||
		    make_statement(k, kid, argc > 4 ? argv[4] : "https://host.example/agent", argc > 5 ? argv[5] : "rootfs:test",
				   payload, &b) != 0) {
			fprintf(stderr, "ts_load: cannot sign with %s\n", argv[2]);
			return 1;
		}
		f = fopen(argv[3], "w");
		if (!f || fwrite(b.p, 1, b.len, f) != b.len || fclose(f) != 0) {
			perror(argv[3]);
			return 1;
		}
		ts_buf_free(&b);
		EVP_PKEY_free(k);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "bsign") == 0) {
		FILE *f = fopen(argv[2], "r");
		uint8_t kbuf[8192], *out = NULL;
		size_t kl = f ? fread(kbuf, 1, sizeof kbuf, f) : 0;
		struct bundle_key *bk = NULL;
		struct bundle_signer sg;
		size_t ol = 0;
		if (f)
			fclose(f);
		if (!kl || bundle_key_load(kbuf, kl, &bk) != BUNDLE_OK || bundle_signer_from_key(bk, &sg) != BUNDLE_OK ||
		    bundle_statement_sign(&sg, "https://host.example/agent", "rootfs:test", NULL, (const uint8_t *)argv[4],
					  strlen(argv[4]), &out, &ol) != BUNDLE_OK) {
			fprintf(stderr, "ts_load: bundle signing failed: %s\n", bundle_last_cause());
			return 1;
		}
		f = fopen(argv[3], "w");
		if (!f || fwrite(out, 1, ol, f) != ol || fclose(f) != 0) {
			perror(argv[3]);
			return 1;
		}
		free(out);
		bundle_key_free(bk);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run(argc - 1, argv + 1);
	fprintf(stderr, "usage: ts_load sign KEY.pem OUT.cose [ISS [SUB]] | ts_load run --port P --key KEY.pem ...\n");
	return 2;
}
