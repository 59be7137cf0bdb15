/* Load generator for bench/verifier.sh.
 *
 *   verifier_bench gen N OUT --tcti T --host-id H --verifier URL --verifier-key F --ts URL
 *                  --ts-key F --root DIR --out DIR [--eventlog F]
 *       N appraisal requests with fresh nonces (challenge, quote, statement, registration in
 *       swtpm and the TS), one JSON body per line in OUT.
 *   verifier_bench load FILE URL CONCURRENCY
 *       POST every body to URL/v1/attest (URL: http://IPv4:PORT) over CONCURRENCY keep-alive
 *       connections; prints "requests=N seconds=S rate=R p50_ms=A p99_ms=B affirming=K other=M
 *       errors=E client_cpu_ms=C" (C: the generator's own CPU per request).
 */
#include "agent/agent.h"
#include "agent/verifier-client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* The load side: one thread, CONCURRENCY keep-alive HTTP/1.1 connections on loopback driven
 * with epoll, each request pre-formatted once (wrk-style). The generator shares the 2 cores with
 * the verifier and sluice-ts, so it is kept cheap: a libcurl easy handle per thread cost ~0.15
 * ms of CPU per request, which the verifier then could not use. Its own CPU per request is
 * printed (client_cpu_ms) so the figure can be checked. */
struct conn {
	int fd;
	size_t req;     /* index of the request in flight, or SIZE_MAX when idle */
	size_t sent;    /* bytes of it written */
	char *in;       /* the answer so far */
	size_t in_len, in_cap;
	double t0;
};

struct load {
	char **reqs; /* full HTTP requests */
	size_t *req_len;
	size_t n, next;
	double *lat;
	int *status; /* 1 affirming, 2 other 200 answer, 0 error */
	struct sockaddr_in sa;
};

static int conn_open(struct load *l, struct conn *c, int ep)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	int one = 1;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&l->sa, sizeof l->sa) != 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_close(struct conn *c, int ep)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
}

/* Start the next request on c (or leave it idle when all are taken). */
static void conn_next(struct load *l, struct conn *c, int ep)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	c->req = SIZE_MAX;
	c->in_len = 0;
	if (l->next >= l->n)
		return;
	c->req = l->next++;
	c->sent = 0;
	c->t0 = agent_now();
	if (c->fd < 0 && conn_open(l, c, ep) != 0) {
		l->lat[c->req] = 0;
		l->status[c->req] = 0;
		conn_next(l, c, ep);
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A complete answer in c->in: 1 done (status set), 0 need more, -1 malformed. */
static int answer_done(struct load *l, struct conn *c, int *keep)
{
	char *eoh = memmem(c->in, c->in_len, "\r\n\r\n", 4), *p;
	long code = 0, clen = -1;
	size_t hlen;
	if (!eoh)
		return c->in_len > 65536 ? -1 : 0;
	*eoh = 0;
	hlen = (size_t)(eoh - c->in) + 4;
	if (sscanf(c->in, "HTTP/1.%*d %ld", &code) != 1)
		return -1;
	*keep = 1;
	for (p = strstr(c->in, "\r\n"); p && p < eoh; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, "content-length:", 15) == 0)
			clen = strtol(p + 17, NULL, 10);
		else if (strncasecmp(p + 2, "connection:", 11) == 0) {
			char *eol = strstr(p + 2, "\r\n"), *cl = strcasestr(p + 13, "close");
			if (cl && (!eol || cl < eol))
				*keep = 0;
		}
	}
	*eoh = '\r';
	if (clen < 0)
		return -1;
	if (c->in_len < hlen + (size_t)clen)
		return 0;
	{
		size_t look = (size_t)clen < 64 ? (size_t)clen : 64;
		char head[65];
		memcpy(head, c->in + hlen, look);
		head[look] = 0;
		l->status[c->req] = code == 200 ? (strstr(head, "\"affirming\"") ? 1 : 2) : 0;
	}
	return 1;
}

static void drive(struct load *l, int conc, double deadline)
{
	struct conn *cs = calloc((size_t)conc, sizeof *cs);
	struct epoll_event evs[64];
	size_t finished = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!cs || ep < 0) {
		free(cs);
		return;
	}
	for (int i = 0; i < conc; i++) {
		cs[i].fd = -1;
		conn_next(l, &cs[i], ep);
	}
	while (finished < l->n && agent_now() < deadline) {
		int k = epoll_wait(ep, evs, 64, 1000);
		for (int e = 0; e < k; e++) {
			struct conn *c = evs[e].data.ptr;
			int fail = 0, keep = 1, r = 0;
			if (c->req == SIZE_MAX)
				continue;
			if ((evs[e].events & EPOLLOUT) && c->sent < l->req_len[c->req]) {
				ssize_t w = send(c->fd, l->reqs[c->req] + c->sent, l->req_len[c->req] - c->sent, MSG_NOSIGNAL);
				if (w > 0)
					c->sent += (size_t)w;
				else if (w < 0 && errno != EAGAIN)
					fail = 1;
				if (!fail && c->sent == l->req_len[c->req]) {
					struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
			}
			if (!fail && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				for (;;) {
					ssize_t n;
					if (c->in_cap - c->in_len < 16384) {
						char *m = realloc(c->in, c->in_cap + 65536);
						if (!m) {
							fail = 1;
							break;
						}
						c->in = m;
						c->in_cap += 65536;
					}
					n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
					if (n > 0) {
						c->in_len += (size_t)n;
						continue;
					}
					if (n == 0 || errno != EAGAIN)
						fail = 1;
					break;
				}
				r = answer_done(l, c, &keep);
				if (r < 0)
					fail = 1;
			}
			if (fail && r != 1) {
				l->status[c->req] = 0;
				keep = 0;
				r = 1;
			}
			if (r == 1) {
				l->lat[c->req] = agent_now() - c->t0;
				finished++;
				if (!keep)
					conn_close(c, ep);
				conn_next(l, c, ep);
			}
		}
	}
	for (int i = 0; i < conc; i++) {
		conn_close(&cs[i], ep);
		free(cs[i].in);
	}
	close(ep);
	free(cs);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double cpu_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int load(const char *file, const char *base, int conc)
{
	FILE *f = fopen(file, "r");
	struct load l = {0};
	size_t cap = 0, aff = 0, other = 0, errs = 0;
	char *line = NULL, host[64];
	size_t lcap = 0;
	ssize_t r;
	unsigned port = 0;
	double t0, dt, c0, cpu;

	if (!f || conc < 1 || conc > 1024 || sscanf(base, "http://%63[0-9.]:%u", host, &port) != 2 || port > 65535)
		return 2;
	l.sa.sin_family = AF_INET;
	l.sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &l.sa.sin_addr) != 1)
		return 2;
	while ((r = getline(&line, &lcap, f)) > 0) {
		char hdr[256];
		int hl;
		if (l.n == cap) {
			cap = cap ? cap * 2 : 1024;
			l.reqs = realloc(l.reqs, cap * sizeof *l.reqs);
			l.req_len = realloc(l.req_len, cap * sizeof *l.req_len);
		}
		line[--r] = 0;
		hl = snprintf(hdr, sizeof hdr,
			      "POST /v1/attest HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/json\r\n"
			      "Content-Length: %zd\r\n\r\n",
			      host, port, r);
		l.reqs[l.n] = malloc((size_t)hl + (size_t)r);
		memcpy(l.reqs[l.n], hdr, (size_t)hl);
		memcpy(l.reqs[l.n] + hl, line, (size_t)r);
		l.req_len[l.n++] = (size_t)hl + (size_t)r;
	}
	fclose(f);
	free(line);
	if (l.n == 0)
		return 1;
	l.lat = calloc(l.n, sizeof *l.lat);
	l.status = calloc(l.n, sizeof *l.status);
	c0 = cpu_self();
	t0 = agent_now();
	drive(&l, conc, t0 + 600);
	dt = agent_now() - t0;
	cpu = cpu_self() - c0;
	for (size_t i = 0; i < l.n; i++) {
		aff += l.status[i] == 1;
		other += l.status[i] == 2;
		errs += l.status[i] == 0;
	}
	qsort(l.lat, l.n, sizeof *l.lat, cmp);
	printf("requests=%zu seconds=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f affirming=%zu other=%zu errors=%zu "
	       "client_cpu_ms=%.3f\n",
	       l.n, dt, (double)l.n / dt, l.lat[l.n / 2] * 1000, l.lat[(size_t)((double)l.n * 0.99)] * 1000, aff, other,
	       errs, cpu * 1000 / (double)l.n);
	for (size_t i = 0; i < l.n; i++)
		free(l.reqs[i]);
	free(l.reqs);
	free(l.req_len);
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
