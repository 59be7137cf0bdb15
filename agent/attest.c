/* The attestation flow, DESIGN.md boot flow steps 1-9 (used by `sluice attest` and `sluice boot`):
 *
 *   measure    measure the root (libmeasure) -> root digest + manifest
 *   extend     extend the digest into the measurement PCR; append a rootfs record to the sluice
 *              event log (kept in OUT/sluice-eventlog.cbor, so repeated runs without a reboot still
 *              replay: the verifier uses the last rootfs record)
 *   challenge  POST /v1/challenge -> nonce + the PCR selection the policy wants
 *   quote      TPM2_Quote over that selection with the nonce; TPM2_Certify of the statement key
 *              (qualifying data = the nonce)
 *   statement  evidence (CBOR) in a COSE hash envelope signed by the TPM statement key
 *   register   SCRAPI registration; the receipt is verified against the pinned TS key
 *   appraise   POST /v1/attest; the verdict's signature (pinned verifier key), nonce, statement
 *              hash, expiry, status, and the verdict's own transparency receipt are checked
 *   release    ActivateCredential recovers the key of the released payload; credentials are
 *              written 0400 into the credential dir; verdict, receipts and the evidence bundle
 *              into the output dir.
 *
 * The rootfs record's content in the sluice event log is the 32-byte root digest.
 *
 * agent_attest_run fetches the challenge while the root is measured: the nonce request does not
 * depend on the digest, and under emulation its round trip (plus the first connection's set-up)
 * is time the gate would otherwise wait. A child process does only the HTTP exchange and the
 * parsing, and hands the result back over a pipe. The measurement's failure wins: its error is
 * reported, the child is killed and its nonce dropped unused. A nonce older than
 * EARLY_NONCE_MAX_AGE (or a quarter of its lifetime, when that is shorter) when the measurement
 * is done (a large or slow root) is dropped too and a fresh one fetched, so the overlap makes
 * the evidence at most that much later in the nonce's lifetime. The wait for the child is
 * bounded by its HTTP timeout plus a grace. */
#include "agent/agent.h"
#include "agent/verifier-client.h"
#include "bundle/bundle.h"
#include "measure/measure.h"
#include "quote/quote.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_EVENTLOG "/sys/kernel/security/tpm0/binary_bios_measurements"
#define SLOG_FILE "sluice-eventlog.cbor"
#define EARLY_NONCE_MAX_AGE 5.0 /* seconds: an overlapped challenge older than this is refetched */
#define CHALLENGE_GRACE 2.0     /* seconds past the child's HTTP timeout before it is stopped */

struct agent_attest_state {
	struct agent_attest_cfg cfg;
	struct agent_http_opts http;
	struct quote_ctx *q;
	struct bundle_keyset *ts_keys;
	struct bundle_keyset *verifier_keys;
	struct quote_slog *slog;
	struct measure_manifest *manifest;
	uint8_t rootfs[32];
	struct quote_pcr_selection sel;
	uint8_t *part[6];
	size_t part_len[6];
	json_t *answer;
	struct bundle_ear *ear;
	uint8_t stmt_hash[32];
	double t0, deadline;
};

static void step_done(struct agent_attest_state *s, const char *step, const char *detail)
{
	double now = agent_now();
	if (s->cfg.on_step)
		s->cfg.on_step(s->cfg.ud, step, now - s->t0, detail);
	s->t0 = now;
}

static double remaining(const struct agent_attest_state *s)
{
	double r = s->deadline - agent_now();
	return r > 0.5 ? r : 0.5;
}

static int set_part(struct agent_attest_state *s, enum agent_attest_part p, uint8_t *buf, size_t len)
{
	free(s->part[p]);
	s->part[p] = buf;
	s->part_len[p] = len;
	return 0;
}

const uint8_t *agent_attest_get(const struct agent_attest_state *s, enum agent_attest_part p, size_t *len)
{
	*len = s->part_len[p];
	return s->part[p];
}

int agent_attest_set(struct agent_attest_state *s, enum agent_attest_part p, const uint8_t *buf, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	if (!c)
		return -1;
	memcpy(c, buf, len);
	return set_part(s, p, c, len);
}

json_t *agent_attest_answer(const struct agent_attest_state *s)
{
	return s->answer;
}

struct quote_ctx *agent_attest_tpm(const struct agent_attest_state *s)
{
	return s->q;
}

void agent_attest_state_free(struct agent_attest_state *s)
{
	if (!s)
		return;
	quote_ctx_free(s->q);
	bundle_keyset_free(s->ts_keys);
	bundle_keyset_free(s->verifier_keys);
	quote_slog_free(s->slog);
	measure_manifest_free(s->manifest);
	for (size_t i = 0; i < 6; i++)
		free(s->part[i]);
	json_decref(s->answer);
	bundle_ear_free(s->ear);
	free(s);
}

static const char *out_dir(const struct agent_attest_state *s)
{
	return s->cfg.out_dir ? s->cfg.out_dir : "/run/sluice";
}

int agent_attest_state_new(const struct agent_attest_cfg *cfg, struct agent_attest_state **ret, char *why,
			   size_t whylen)
{
	struct agent_attest_state *s = calloc(1, sizeof *s);
	struct quote_cfg qc = {0};
	char err[512];
	enum quote_err qe;
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;

	if (!s) {
		snprintf(why, whylen, "attest: out of memory");
		return -1;
	}
	s->cfg = *cfg;
	s->t0 = agent_now();
	s->deadline = s->t0 + (cfg->budget > 0 ? cfg->budget : 60);
	s->http.ca_file = cfg->ca_file;
	s->http.insecure_http = cfg->insecure_http;
	if (!cfg->host_id || !cfg->verifier_url || !cfg->ts_url || !cfg->verifier_key || !cfg->ts_key) {
		snprintf(why, whylen, "attest: host id, verifier URL + key and transparency service URL + key are required");
		goto fail;
	}
	if (agent_load_keyset(cfg->ts_key, &s->ts_keys, err, sizeof err) ||
	    agent_load_keyset(cfg->verifier_key, &s->verifier_keys, err, sizeof err)) {
		snprintf(why, whylen, "attest: %s", err);
		goto fail;
	}
	qc.tcti = cfg->tcti;
	if ((qe = quote_ctx_new(&qc, &s->q)) != QUOTE_OK) {
		snprintf(why, whylen, "quote: cannot open the TPM (%s): %s", cfg->tcti ? cfg->tcti : "default",
			 quote_strerror(qe));
		goto fail;
	}
	if (mkdir(out_dir(s), 0700) != 0 && errno != EEXIST) {
		snprintf(why, whylen, "attest: cannot create %s: %s", out_dir(s), strerror(errno));
		goto fail;
	}
	/* The sluice event log so far (PCR state since the last reset). */
	snprintf(path, sizeof path, "%s/%s", out_dir(s), SLOG_FILE);
	if (agent_read_file(path, QUOTE_EVENTLOG_MAX, &buf, &len) == 0 && len) {
		struct quote_diag d;
		memset(&d, 0, sizeof d);
		qe = quote_slog_parse(buf, len, &s->slog, &d);
		free(buf);
		if (qe != QUOTE_OK) {
			snprintf(why, whylen, "extend: %s is not a sluice event log: %s (%s)", path, quote_strerror(qe),
				 d.detail);
			goto fail;
		}
	} else {
		free(buf);
		if (quote_slog_new(&s->slog) != QUOTE_OK) {
			snprintf(why, whylen, "attest: out of memory");
			goto fail;
		}
	}
	*ret = s;
	return 0;
fail:
	agent_attest_state_free(s);
	return -1;
}

int agent_attest_measure(struct agent_attest_state *s, char *why, size_t whylen)
{
	struct measure_opts mo = {.excludes = s->cfg.excludes, .n_excludes = s->cfg.n_excludes};
	struct measure_error me;
	enum measure_err merr;
	char hex[65], line[512];
	unsigned pcr = s->cfg.pcr ? s->cfg.pcr : 15;

	memset(&me, 0, sizeof me);
	merr = measure_tree(s->cfg.root ? s->cfg.root : "/", &mo, &s->manifest, &me);
	if (merr != MEASURE_OK) {
		measure_error_format(&me, line, sizeof line);
		snprintf(why, whylen, "measure: %s", line);
		return -1;
	}
	memcpy(s->rootfs, measure_manifest_digest(s->manifest), 32);
	agent_hex(s->rootfs, 32, hex);
	snprintf(line, sizeof line, "sha256:%s, %zu entries", hex, measure_manifest_entries(s->manifest));
	step_done(s, "measure", line);

	if (agent_attest_extend(s, QUOTE_SLOG_ROOTFS, s->rootfs, 32, why, whylen))
		return -1;
	snprintf(line, sizeof line, "PCR %u", pcr);
	step_done(s, "extend", line);
	return 0;
}

int agent_attest_set_pcrs(struct agent_attest_state *s, const char *sel)
{
	return quote_pcr_selection_parse(sel, &s->sel) == QUOTE_OK ? 0 : -1;
}

static int save_slog(struct agent_attest_state *s, char *why, size_t whylen)
{
	char path[PATH_MAX];
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	snprintf(path, sizeof path, "%s/%s", out_dir(s), SLOG_FILE);
	if (quote_slog_encode(s->slog, &enc, &enc_len) != QUOTE_OK || agent_write_file(path, enc, enc_len, 0644) != 0) {
		snprintf(why, whylen, "extend: cannot save the sluice event log to %s: %s", path, strerror(errno));
		free(enc);
		return -1;
	}
	free(enc);
	return 0;
}

int agent_attest_extend(struct agent_attest_state *s, uint32_t type, const uint8_t *content, size_t len, char *why,
			size_t whylen)
{
	unsigned pcr = s->cfg.pcr ? s->cfg.pcr : 15;
	enum quote_err qe = quote_pcr_extend(s->q, pcr, type, content, len, s->slog);
	if (qe != QUOTE_OK) {
		snprintf(why, whylen, "extend: PCR %u: %s (%s)", pcr, quote_strerror(qe), quote_ctx_cause(s->q));
		return -1;
	}
	return save_slog(s, why, whylen);
}

/* One challenge exchange; touches nothing but *c (so the challenge process may run it). */
struct challenge {
	struct agent_http_opts http;
	const char *url, *host_id;
	int rc; /* 0: nonce + sel valid; else why */
	uint8_t nonce[QUOTE_NONCE_MAX];
	size_t nonce_len;
	struct quote_pcr_selection sel;
	char pcrs[160]; /* the selection as the verifier wrote it (for the progress line) */
	char why[1024];
	double started, seconds;
	double ttl; /* the nonce's lifetime by the verifier's "expires" and our clock; 0 unknown */
};

static void challenge_fetch(struct challenge *c)
{
	json_t *req = json_pack("{s:s}", "host_id", c->host_id), *ans = NULL;
	char err[768], title[128];
	const char *nonce, *pcrs;
	long n;

	c->rc = -1;
	c->started = agent_now();
	if (!req) {
		snprintf(c->why, sizeof c->why, "challenge: out of memory");
		goto out;
	}
	if (agent_vc_post(&c->http, c->url, "/v1/challenge", req, &ans, title, sizeof title, err, sizeof err) != 200) {
		snprintf(c->why, sizeof c->why, "challenge: %s", err);
		goto out;
	}
	nonce = json_string_value(json_object_get(ans, "nonce"));
	pcrs = json_string_value(json_object_get(ans, "pcrs"));
	if (!nonce || !pcrs || (n = agent_unhex(nonce, c->nonce, sizeof c->nonce)) < 8 ||
	    quote_pcr_selection_parse(pcrs, &c->sel) != QUOTE_OK) {
		snprintf(c->why, sizeof c->why,
			 "challenge: the verifier's answer lacks a nonce (8..64 bytes hex) or a PCR selection");
		goto out;
	}
	c->nonce_len = (size_t)n;
	snprintf(c->pcrs, sizeof c->pcrs, "%s", pcrs);
	if (json_is_integer(json_object_get(ans, "expires"))) {
		/* only an estimate (our wall clock against the verifier's); it only ever makes an
		 * early nonce count as old sooner */
		double ttl = (double)(json_integer_value(json_object_get(ans, "expires")) - (json_int_t)time(NULL));
		c->ttl = ttl > 0 && ttl <= 3600 ? ttl : 0;
	}
	c->rc = 0;
out:
	c->seconds = agent_now() - c->started;
	json_decref(req);
	json_decref(ans);
}

/* Take a fetched challenge into the state (or its failure into why). */
static int challenge_apply(struct agent_attest_state *s, const struct challenge *c, const char *note, char *why,
			   size_t whylen)
{
	char line[256];
	if (c->rc != 0) {
		snprintf(why, whylen, "%s", c->why);
		return -1;
	}
	if (agent_attest_set(s, AGENT_PART_NONCE, c->nonce, c->nonce_len) != 0) {
		snprintf(why, whylen, "challenge: out of memory");
		return -1;
	}
	s->sel = c->sel;
	snprintf(line, sizeof line, "%s%s", c->pcrs, note ? note : "");
	step_done(s, "challenge", line);
	return 0;
}

static void challenge_init(struct agent_attest_state *s, struct challenge *c)
{
	memset(c, 0, sizeof *c);
	c->http = s->http;
	c->http.timeout = remaining(s);
	c->url = s->cfg.verifier_url;
	c->host_id = s->cfg.host_id;
}

int agent_attest_challenge(struct agent_attest_state *s, char *why, size_t whylen)
{
	struct challenge c;
	challenge_init(s, &c);
	challenge_fetch(&c);
	return challenge_apply(s, &c, NULL, why, whylen);
}

/* The challenge in a child process, overlapping the measurement: it runs challenge_fetch and
 * writes the result (a fixed-size struct, less than PIPE_BUF: one atomic write) into a pipe.
 * A process rather than a thread, so it can be stopped at any moment (SIGKILL) without leaving
 * a thread inside libcurl or OpenSSL while the caller returns and exits. Called while the
 * process is single-threaded (`sluice attest`, the `sluice boot` child). */
struct challenge_job {
	pid_t pid;
	int fd;
	double timeout;
};

static void challenge_drop(struct challenge_job *j)
{
	kill(j->pid, SIGKILL);
	close(j->fd);
	while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(j);
}

/* Start the child; NULL when it cannot be started (the caller then fetches in line). */
static struct challenge_job *challenge_start(struct agent_attest_state *s)
{
	struct challenge_job *j = calloc(1, sizeof *j);
	pid_t parent;
	int p[2];

	if (!j)
		return NULL;
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(j);
		return NULL;
	}
	fflush(NULL); /* nothing buffered is written twice */
	parent = getpid();
	j->pid = fork();
	if (j->pid < 0) {
		close(p[0]);
		close(p[1]);
		free(j);
		return NULL;
	}
	if (j->pid == 0) {
		struct challenge c;
		const char *b = (const char *)&c;
		size_t off = 0;
		close(p[0]);
		/* dies with its parent (a crash there must not leave it holding inherited pipes) */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(1);
		challenge_init(s, &c);
		challenge_fetch(&c);
		while (off < sizeof c) {
			ssize_t w = write(p[1], b + off, sizeof c - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		_exit(0);
	}
	close(p[1]);
	j->fd = p[0];
	j->timeout = remaining(s);
	return j;
}

/* Wait (bounded: the child's HTTP timeout plus a grace) for the child's challenge and take it;
 * consumes the job. */
static int challenge_finish(struct agent_attest_state *s, struct challenge_job *j, char *why, size_t whylen)
{
	double limit = j->timeout + CHALLENGE_GRACE, until = agent_now() + limit, max_age;
	struct challenge c;
	char *b = (char *)&c, note[96];
	size_t off = 0;

	memset(&c, 0, sizeof c);
	while (off < sizeof c) {
		struct pollfd pfd = {.fd = j->fd, .events = POLLIN};
		double left = until - agent_now();
		ssize_t r;
		int pr;
		if (left <= 0) {
			challenge_drop(j);
			snprintf(why, whylen, "challenge: %s: no answer within %.0fs", s->cfg.verifier_url, limit);
			return -1;
		}
		pr = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue; /* timeout: the loop head decides */
		r = read(j->fd, b + off, sizeof c - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			challenge_drop(j);
			snprintf(why, whylen, "challenge: the challenge process ended without an answer");
			return -1;
		}
		off += (size_t)r;
	}
	challenge_drop(j);
	/* only the results count (the pointers are the child's); bounds as if untrusted */
	c.why[sizeof c.why - 1] = 0;
	c.pcrs[sizeof c.pcrs - 1] = 0;
	if (c.rc == 0 && (c.nonce_len < 8 || c.nonce_len > sizeof c.nonce)) {
		snprintf(why, whylen, "challenge: the challenge process returned a malformed nonce");
		return -1;
	}
	max_age = EARLY_NONCE_MAX_AGE;
	if (c.ttl > 0 && c.ttl / 4 < max_age) /* a short nonce_ttl: at most a quarter of it */
		max_age = c.ttl / 4;
	if (c.rc == 0 && agent_now() - c.started > max_age)
		/* the measurement took long: a fresh nonce, so the evidence is not later in the nonce's
		 * lifetime than without the overlap */
		return agent_attest_challenge(s, why, whylen);
	snprintf(note, sizeof note, " (fetched while measuring: %.2fs)", c.seconds);
	return challenge_apply(s, &c, note, why, whylen);
}

struct tpm_signer {
	struct quote_ctx *q;
	int err;
};

static int tpm_sign(void *ud, int alg, const uint8_t *tbs, size_t tbs_len, const uint8_t *digest, size_t digest_len,
		    uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	struct tpm_signer *t = ud;
	(void)tbs;
	(void)tbs_len;
	if (alg != BUNDLE_ALG_ES256 || digest_len != 32 || sig_cap < 64)
		return 1;
	if (quote_sk_sign(t->q, digest, sig) != QUOTE_OK) {
		t->err = 1;
		return 2;
	}
	*sig_len = 64;
	return 0;
}

int agent_attest_evidence(struct agent_attest_state *s, char *why, size_t whylen)
{
	struct quote_key ak, sk;
	struct quote_result qr;
	struct quote_attestation cert;
	struct bundle_evidence ev;
	struct bundle_pcr pcrs[BUNDLE_MAX_PCRS];
	size_t n_pcrs = 0, nonce_len = 0, fw_len = 0, slog_len = 0, ev_len = 0;
	const uint8_t *nonce = agent_attest_get(s, AGENT_PART_NONCE, &nonce_len);
	uint8_t *fw = NULL, *slog = NULL, *evb = NULL;
	const char *excl[MEASURE_MAX_EXCLUDES];
	char line[128];
	enum quote_err qe;
	enum bundle_err be;
	int rc = -1;

	memset(&ev, 0, sizeof ev);
	if ((qe = quote_ak_ensure(s->q, &ak, NULL)) != QUOTE_OK || (qe = quote_sk_ensure(s->q, &sk, NULL)) != QUOTE_OK) {
		snprintf(why, whylen, "quote: AK / statement key: %s (%s)", quote_strerror(qe), quote_ctx_cause(s->q));
		goto out;
	}
	if ((qe = quote_quote(s->q, &s->sel, nonce, nonce_len, &qr)) != QUOTE_OK) {
		snprintf(why, whylen, "quote: %s (%s)", quote_strerror(qe), quote_ctx_cause(s->q));
		goto out;
	}
	if ((qe = quote_sk_certify(s->q, nonce, nonce_len, &cert)) != QUOTE_OK) {
		snprintf(why, whylen, "quote: certify the statement key: %s (%s)", quote_strerror(qe), quote_ctx_cause(s->q));
		goto out;
	}
	for (size_t b = 0; b < qr.pcrs.sel.n; b++)
		for (unsigned i = 0; i < QUOTE_PCR_COUNT && n_pcrs < BUNDLE_MAX_PCRS; i++) {
			uint16_t alg = qr.pcrs.sel.bank[b].alg;
			if (!(qr.pcrs.sel.bank[b].mask & (1u << i)))
				continue;
			pcrs[n_pcrs].alg = alg;
			pcrs[n_pcrs].index = (uint8_t)i;
			pcrs[n_pcrs].value.ptr = quote_pcr_value(&qr.pcrs, alg, i);
			pcrs[n_pcrs].value.len = quote_alg_digest_len(alg);
			n_pcrs++;
		}
	/* The firmware event log: absent on machines without one (swtpm on a host). */
	if (agent_read_file(s->cfg.eventlog ? s->cfg.eventlog : DEFAULT_EVENTLOG, QUOTE_EVENTLOG_MAX, &fw, &fw_len) != 0) {
		if (s->cfg.eventlog && errno != ENOENT) {
			snprintf(why, whylen, "quote: cannot read the event log %s: %s", s->cfg.eventlog, strerror(errno));
			goto out;
		}
		fw = NULL;
		fw_len = 0;
	}
	if (quote_slog_encode(s->slog, &slog, &slog_len) != QUOTE_OK) {
		snprintf(why, whylen, "quote: cannot encode the sluice event log");
		goto out;
	}
	ev.host_id = s->cfg.host_id;
	ev.nonce.ptr = nonce;
	ev.nonce.len = nonce_len;
	ev.ak_public.ptr = ak.pub;
	ev.ak_public.len = ak.pub_len;
	ev.quote.ptr = qr.q.attest;
	ev.quote.len = qr.q.attest_len;
	ev.quote_sig.ptr = qr.q.sig;
	ev.quote_sig.len = qr.q.sig_len;
	ev.pcrs = pcrs;
	ev.n_pcrs = n_pcrs;
	ev.fw_eventlog.ptr = fw;
	ev.fw_eventlog.len = fw_len;
	ev.sluice_eventlog.ptr = slog;
	ev.sluice_eventlog.len = slog_len;
	ev.rootfs_digest.ptr = s->rootfs;
	ev.rootfs_digest.len = 32;
	ev.rootfs_alg = "sha256";
	if (s->manifest) {
		ev.rootfs_entries = measure_manifest_entries(s->manifest);
		ev.rootfs_bytes = measure_manifest_bytes(s->manifest);
		ev.n_rootfs_excludes = measure_manifest_n_excludes(s->manifest);
		if (ev.n_rootfs_excludes > MEASURE_MAX_EXCLUDES)
			ev.n_rootfs_excludes = MEASURE_MAX_EXCLUDES;
		for (size_t i = 0; i < ev.n_rootfs_excludes; i++)
			excl[i] = measure_manifest_exclude(s->manifest, i);
		ev.rootfs_excludes = excl;
	}
	ev.stmt_key_public.ptr = sk.pub;
	ev.stmt_key_public.len = sk.pub_len;
	ev.stmt_key_certify.ptr = cert.attest;
	ev.stmt_key_certify.len = cert.attest_len;
	ev.stmt_key_certify_sig.ptr = cert.sig;
	ev.stmt_key_certify_sig.len = cert.sig_len;
	ev.time = (int64_t)time(NULL);
	if ((be = bundle_evidence_encode(&ev, &evb, &ev_len)) != BUNDLE_OK) {
		snprintf(why, whylen, "statement: cannot encode the evidence: %s (%s)", bundle_strerror(be),
			 bundle_last_cause());
		goto out;
	}
	snprintf(line, sizeof line, "%zu PCRs, attempt %u", n_pcrs, qr.attempts);
	step_done(s, "quote", line);

	set_part(s, AGENT_PART_EVIDENCE, evb, ev_len);
	evb = NULL;
	rc = agent_attest_statement(s, why, whylen);
out:
	free(fw);
	free(slog);
	free(evb);
	return rc;
}

/* The statement: a hash envelope over the current evidence, signed in the TPM. */
int agent_attest_statement(struct agent_attest_state *s, char *why, size_t whylen)
{
	struct quote_key sk;
	struct bundle_key *skk = NULL;
	struct bundle_signer signer;
	struct tpm_signer ts = {.q = s->q};
	size_t ev_len = 0, stmt_len = 0, der_len = 0;
	const uint8_t *evb = agent_attest_get(s, AGENT_PART_EVIDENCE, &ev_len);
	uint8_t *stmt = NULL, *der = NULL;
	char iss[256];
	enum quote_err qe;
	enum bundle_err be;
	int rc = -1;

	if ((qe = quote_sk_ensure(s->q, &sk, NULL)) != QUOTE_OK) {
		snprintf(why, whylen, "statement: statement key: %s (%s)", quote_strerror(qe), quote_ctx_cause(s->q));
		goto out;
	}
	if (quote_public_to_der(sk.pub, sk.pub_len, &der, &der_len) != QUOTE_OK ||
	    bundle_key_load(der, der_len, &skk) != BUNDLE_OK) {
		snprintf(why, whylen, "statement: the statement key is unusable");
		goto out;
	}
	signer.alg = BUNDLE_ALG_ES256;
	signer.kid = bundle_key_kid(skk);
	signer.sign = tpm_sign;
	signer.ud = &ts;
	snprintf(iss, sizeof iss, "urn:sluice:host:%s", s->cfg.host_id);
	be = bundle_statement_sign(&signer, iss, s->cfg.host_id, BUNDLE_MT_EVIDENCE, evb, ev_len, &stmt, &stmt_len);
	if (be != BUNDLE_OK) {
		snprintf(why, whylen, "statement: %s (%s)", bundle_strerror(be),
			 ts.err ? quote_ctx_cause(s->q) : bundle_last_cause());
		goto out;
	}
	set_part(s, AGENT_PART_STATEMENT, stmt, stmt_len);
	stmt = NULL;
	step_done(s, "statement", NULL);
	rc = 0;
out:
	free(stmt);
	free(der);
	bundle_key_free(skk);
	return rc;
}

int agent_attest_register(struct agent_attest_state *s, char *why, size_t whylen)
{
	size_t stmt_len = 0, r_len = 0;
	const uint8_t *stmt = agent_attest_get(s, AGENT_PART_STATEMENT, &stmt_len);
	uint8_t *r = NULL;
	char err[768];

	s->http.timeout = remaining(s);
	if (agent_ts_register(&s->http, s->cfg.ts_url, s->ts_keys, stmt, stmt_len, remaining(s), &r, &r_len, err,
			      sizeof err)) {
		snprintf(why, whylen, "register: %s", err);
		return -1;
	}
	set_part(s, AGENT_PART_RECEIPT, r, r_len);
	step_done(s, "register", NULL);
	return 0;
}

static int b64field(json_t *ans, const char *name, uint8_t **ret, size_t *len)
{
	const char *v = json_string_value(json_object_get(ans, name));
	return v ? agent_unb64(v, BUNDLE_MAX_COSE, ret, len) : -1;
}

int agent_attest_appraise(struct agent_attest_state *s, char *why, size_t whylen)
{
	size_t ev_len, stmt_len, r_len, n_len, v_len = 0, vs_len = 0, vr_len = 0;
	const uint8_t *ev = agent_attest_get(s, AGENT_PART_EVIDENCE, &ev_len);
	const uint8_t *stmt = agent_attest_get(s, AGENT_PART_STATEMENT, &stmt_len);
	const uint8_t *rcpt = agent_attest_get(s, AGENT_PART_RECEIPT, &r_len);
	const uint8_t *nonce = agent_attest_get(s, AGENT_PART_NONCE, &n_len);
	char *b1 = agent_b64(ev, ev_len), *b2 = agent_b64(stmt, stmt_len), *b3 = agent_b64(rcpt, r_len);
	uint8_t *v = NULL, *vs = NULL, *vr = NULL;
	json_t *req = NULL, *ans = NULL;
	char err[768], title[128], path[PATH_MAX];
	enum bundle_err be;
	unsigned mdlen;
	int rc = -1;

	json_decref(s->answer);
	s->answer = NULL;
	bundle_ear_free(s->ear);
	s->ear = NULL;
	EVP_Digest(stmt, stmt_len, s->stmt_hash, &mdlen, EVP_sha256(), NULL);
	req = json_pack("{s:s, s:s, s:s, s:s}", "host_id", s->cfg.host_id, "evidence", b1 ? b1 : "", "statement",
			b2 ? b2 : "", "receipt", b3 ? b3 : "");
	s->http.timeout = remaining(s);
	if (agent_vc_post(&s->http, s->cfg.verifier_url, "/v1/attest", req, &ans, title, sizeof title, err,
			  sizeof err) != 200) {
		snprintf(why, whylen, "appraise: %s", err);
		goto out;
	}
	s->answer = json_incref(ans);
	if (b64field(ans, "verdict", &v, &v_len) || b64field(ans, "verdict_statement", &vs, &vs_len) ||
	    b64field(ans, "verdict_receipt", &vr, &vr_len)) {
		snprintf(why, whylen, "appraise: the verifier's answer lacks the verdict, its statement or its receipt");
		goto out;
	}
	/* The verdict: signed by the pinned verifier key, for this nonce and this statement, not expired. */
	if ((be = bundle_ear_verify(v, v_len, NULL, s->verifier_keys, &s->ear)) != BUNDLE_OK) {
		snprintf(why, whylen, "appraise: the verdict does not verify with the pinned verifier key: %s (%s)",
			 bundle_strerror(be), bundle_last_cause());
		goto out;
	}
	if ((be = bundle_ear_validate(s->ear, (int64_t)time(NULL), 300, nonce, n_len, s->stmt_hash)) != BUNDLE_OK) {
		snprintf(why, whylen, "appraise: the verdict is not for this evidence or has expired: %s (%s)",
			 bundle_strerror(be), bundle_last_cause());
		goto out;
	}
	/* The verdict is transparent: its statement (signed by the verifier) covers it, and the
	 * receipt is valid under the pinned transparency service key. */
	if ((be = bundle_cose_verify_keyset(vs, vs_len, s->verifier_keys, NULL, 0)) != BUNDLE_OK ||
	    (be = bundle_statement_check_preimage(vs, vs_len, v, v_len)) != BUNDLE_OK ||
	    (be = bundle_receipt_verify(vr, vr_len, vs, vs_len, NULL, s->ts_keys, NULL)) != BUNDLE_OK) {
		snprintf(why, whylen, "appraise: the verdict's transparency receipt does not verify: %s (%s)",
			 bundle_strerror(be), bundle_last_cause());
		goto out;
	}
	set_part(s, AGENT_PART_VERDICT, v, v_len);
	v = NULL;
	snprintf(path, sizeof path, "%s/verdict.cose", out_dir(s));
	agent_write_file(path, s->part[AGENT_PART_VERDICT], s->part_len[AGENT_PART_VERDICT], 0644);
	snprintf(path, sizeof path, "%s/verdict-statement.cose", out_dir(s));
	agent_write_file(path, vs, vs_len, 0644);
	snprintf(path, sizeof path, "%s/verdict-receipt.cose", out_dir(s));
	agent_write_file(path, vr, vr_len, 0644);
	if (s->ear->status != BUNDLE_EAR_AFFIRMING) {
		if (s->ear->n_reasons)
			snprintf(why, whylen, "appraise: %s (%s)", s->ear->reasons[0].type,
				 s->ear->reasons[0].detail ? s->ear->reasons[0].detail : "");
		else
			snprintf(why, whylen, "appraise: verdict status %d, not affirming", s->ear->status);
		goto out;
	}
	rc = 0;
	step_done(s, "appraise", "affirming");
	{
		/* The verdict's receipt is for the verifier's statement of the verdict, so the
		 * statement travels in the bundle too: the bundle alone then audits offline. */
		struct bundle_entry e[] = {
			{BUNDLE_F_EVIDENCE, {ev, ev_len}},
			{BUNDLE_F_STATEMENT, {stmt, stmt_len}},
			{BUNDLE_F_RECEIPT, {rcpt, r_len}},
			{BUNDLE_F_VERDICT, {s->part[AGENT_PART_VERDICT], s->part_len[AGENT_PART_VERDICT]}},
			{BUNDLE_F_VERDICT_STATEMENT, {vs, vs_len}},
			{BUNDLE_F_VERDICT_RECEIPT, {vr, vr_len}},
		};
		uint8_t *tar = NULL;
		size_t tar_len = 0;
		snprintf(path, sizeof path, "%s/bundle.tar", out_dir(s));
		if (bundle_archive_write(e, sizeof e / sizeof e[0], &tar, &tar_len) == BUNDLE_OK)
			agent_write_file(path, tar, tar_len, 0644);
		free(tar);
	}
out:
	free(b1);
	free(b2);
	free(b3);
	free(v);
	free(vs);
	free(vr);
	json_decref(req);
	json_decref(ans);
	return rc;
}

int agent_attest_release(struct agent_attest_state *s, char *why, size_t whylen)
{
	json_t *payload = NULL;
	size_t n = 0;
	char line[64];
	const char *dir = s->cfg.cred_dir ? s->cfg.cred_dir : "/run/credentials/@initrd";

	if (!s->ear || !s->ear->credential.ptr || !s->ear->credential.len) {
		snprintf(why, whylen, "release: the affirming verdict carries no credential");
		return -1;
	}
	agent_attest_set(s, AGENT_PART_CREDENTIAL, s->ear->credential.ptr, s->ear->credential.len);
	if (agent_release_unwrap(s->q, s->ear->credential.ptr, s->ear->credential.len, s->stmt_hash, &payload, why,
				 whylen))
		return -1;
	if (agent_release_write(payload, dir, &n, why, whylen)) {
		agent_release_wipe(payload);
		json_decref(payload);
		return -1;
	}
	agent_release_wipe(payload);
	json_decref(payload);
	snprintf(line, sizeof line, "%zu credential(s)", n);
	step_done(s, "release", line);
	return 0;
}

int agent_attest_run(const struct agent_attest_cfg *cfg, char *why, size_t whylen)
{
	struct agent_attest_state *s = NULL;
	struct challenge_job *job;
	int rc = 1;

	if (whylen)
		why[0] = 0;
	if (agent_attest_state_new(cfg, &s, why, whylen))
		return 1;
	/* the challenge overlaps the measurement (see the top of this file) */
	job = challenge_start(s);
	if (agent_attest_measure(s, why, whylen) != 0) {
		if (job) /* the measurement's error is the one that counts; the nonce goes unused */
			challenge_drop(job);
		goto out;
	}
	if ((job ? challenge_finish(s, job, why, whylen) : agent_attest_challenge(s, why, whylen)) == 0 &&
	    agent_attest_evidence(s, why, whylen) == 0 && agent_attest_register(s, why, whylen) == 0 &&
	    agent_attest_appraise(s, why, whylen) == 0 && agent_attest_release(s, why, whylen) == 0)
		rc = 0;
out:
	agent_attest_state_free(s);
	return rc;
}
