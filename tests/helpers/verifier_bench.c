/* Load generator for bench/verifier.sh.
 *
 *   verifier_bench gen N OUT --tcti T --host-id H --verifier URL --verifier-key F --ts URL
 *                  --ts-key F --root DIR --out DIR [--eventlog F]
 *       N appraisal requests with fresh nonces (challenge, quote, statement, registration in
 *       swtpm and the TS), one JSON body per line in OUT.
 *   verifier_bench load FILE URL CONCURRENCY
 *       POST every body to URL/v1/attest over CONCURRENCY keep-alive connections; prints
 *       "requests=N seconds=S rate=R p50_ms=A p99_ms=B affirming=K other=M errors=E".
 */
#include "agent/agent.h"
#include "agent/verifier-client.h"

#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"tcti", required_argument, NULL, 't'},     {"host-id", required_argument, NULL, 'H'},
		{"verifier", required_argument, NULL, 'v'}, {"verifier-key", required_argument, NULL, 'V'},
		{"ts", required_argument, NULL, 's'},       {"ts-key", required_argument, NULL, 'S'},
		{"root", required_argument, NULL, 'r'},     {"out", required_argument, NULL, 'o'},
		{"eventlog", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0},
	};
	struct agent_attest_cfg cfg = {.budget = 600, .eventlog = "/nonexistent"};
	struct agent_attest_state *s = NULL;
	long n = strtol(argv[1], NULL, 10);
	FILE *f = fopen(argv[2], "w");
	char why[1024] = "";
	int c, rc = 1;

	optind = 3;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': cfg.tcti = optarg; break;
		case 'H': cfg.host_id = optarg; break;
		case 'v': cfg.verifier_url = optarg; break;
		case 'V': cfg.verifier_key = optarg; break;
		case 's': cfg.ts_url = optarg; break;
		case 'S': cfg.ts_key = optarg; break;
		case 'r': cfg.root = optarg; break;
		case 'o': cfg.out_dir = optarg; break;
		case 'e': cfg.eventlog = optarg; break;
		default: return 2;
		}
	}
	if (!f || n <= 0)
		return 2;
	if (agent_attest_state_new(&cfg, &s, why, sizeof why) || agent_attest_measure(s, why, sizeof why))
		goto out;
	for (long i = 0; i < n; i++) {
		size_t el, sl, rl;
		const uint8_t *e, *st, *r;
		char *b1, *b2, *b3;
		if (agent_attest_challenge(s, why, sizeof why) || agent_attest_evidence(s, why, sizeof why) ||
		    agent_attest_register(s, why, sizeof why))
			goto out;
		e = agent_attest_get(s, AGENT_PART_EVIDENCE, &el);
		st = agent_attest_get(s, AGENT_PART_STATEMENT, &sl);
		r = agent_attest_get(s, AGENT_PART_RECEIPT, &rl);
		b1 = agent_b64(e, el);
		b2 = agent_b64(st, sl);
		b3 = agent_b64(r, rl);
		fprintf(f, "{\"host_id\":\"%s\",\"evidence\":\"%s\",\"statement\":\"%s\",\"receipt\":\"%s\"}\n", cfg.host_id,
			b1, b2, b3);
		free(b1);
		free(b2);
		free(b3);
	}
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "verifier_bench: gen: %s\n", why);
	agent_attest_state_free(s);
	if (f && fclose(f) != 0)
		rc = 1;
	return rc;
}

struct load {
	char **bodies;
	size_t n;
	size_t next; /* atomic */
	const char *url;
	double *lat;
	int *status;
};

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
	struct { char buf[64]; size_t len; } *b = ud;
	size_t k = sz * n;
	if (b->len < sizeof b->buf - 1) {
		size_t c = k < sizeof b->buf - 1 - b->len ? k : sizeof b->buf - 1 - b->len;
		memcpy(b->buf + b->len, p, c);
		b->len += c;
		b->buf[b->len] = 0;
	}
	return k;
}

static void *worker(void *arg)
{
	struct load *l = arg;
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, l->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	for (;;) {
		size_t i = __atomic_fetch_add(&l->next, 1, __ATOMIC_SEQ_CST);
		struct { char buf[64]; size_t len; } b = {.len = 0};
		long code = 0;
		double t0;
		if (i >= l->n)
			break;
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, l->bodies[i]);
		t0 = agent_now();
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		l->lat[i] = agent_now() - t0;
		l->status[i] = code == 200 ? (strstr(b.buf, "\"affirming\"") ? 1 : 2) : 0;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int load(const char *file, const char *base, int conc)
{
	FILE *f = fopen(file, "r");
	struct load l = {0};
	size_t cap = 0, aff = 0, other = 0, errs = 0;
	char *line = NULL, url[1024];
	size_t lcap = 0;
	ssize_t r;
	pthread_t th[256];
	double t0, dt;

	if (!f || conc < 1 || conc > 256)
		return 2;
	while ((r = getline(&line, &lcap, f)) > 0) {
		if (l.n == cap) {
			cap = cap ? cap * 2 : 1024;
			l.bodies = realloc(l.bodies, cap * sizeof *l.bodies);
		}
		line[r - 1] = 0;
		l.bodies[l.n++] = strdup(line);
	}
	fclose(f);
	free(line);
	if (l.n == 0)
		return 1;
	snprintf(url, sizeof url, "%s/v1/attest", base);
	l.url = url;
	l.lat = calloc(l.n, sizeof *l.lat);
	l.status = calloc(l.n, sizeof *l.status);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t0 = agent_now();
	for (int i = 0; i < conc; i++)
		pthread_create(&th[i], NULL, worker, &l);
	for (int i = 0; i < conc; i++)
		pthread_join(th[i], NULL);
	dt = agent_now() - t0;
	for (size_t i = 0; i < l.n; i++) {
		aff += l.status[i] == 1;
		other += l.status[i] == 2;
		errs += l.status[i] == 0;
	}
	qsort(l.lat, l.n, sizeof *l.lat, cmp);
	printf("requests=%zu seconds=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f affirming=%zu other=%zu errors=%zu\n", l.n,
	       dt, (double)l.n / dt, l.lat[l.n / 2] * 1000, l.lat[(size_t)((double)l.n * 0.99)] * 1000, aff, other, errs);
	for (size_t i = 0; i < l.n; i++)
		free(l.bodies[i]);
	free(l.bodies);
	free(l.lat);
	free(l.status);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "gen") == 0)
		return gen(argc - 1, argv + 1);
	if (argc == 5 && strcmp(argv[1], "load") == 0)
		return load(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: verifier_bench gen N OUT [options] | load FILE URL CONCURRENCY\n");
	return 2;
}
