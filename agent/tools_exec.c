/* Tool executors.
 *
 * Command: fork + execve of an absolute path, never a shell. The child gets its own process
 * group (so a timeout kills everything it started), stdin a pipe (the arguments as JSON, or
 * empty), stdout and stderr pipes, no other fds, and a minimal environment (PATH, LANG,
 * SLUICE_TOOL, and SLUICE_CREDENTIAL when the tool has a credential). Output beyond the
 * limit, or the timeout, kills the process group with SIGKILL.
 *
 * HTTP: libcurl, no redirects, http/https only, total timeout, body limit; the released
 * credential goes into a header and is wiped from memory afterwards. */
#include "agent/tools.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_STDERR (8u << 10)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void tools_secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

char *tools_credential_read(const char *dir, const char *name)
{
	char path[4096], buf[TOOLS_MAX_CREDENTIAL + 2];
	int fd;
	ssize_t n;
	size_t len = 0;
	char *out = NULL;

	if (!dir || !name || strchr(name, '/') || name[0] == '.') {
		errno = EINVAL;
		return NULL;
	}
	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > TOOLS_MAX_CREDENTIAL) {
		errno = EFBIG;
		goto out;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0 || memchr(buf, '\n', len) || memchr(buf, '\r', len) || memchr(buf, '\0', len)) {
		errno = EINVAL;
		goto out;
	}
	out = malloc(len + 1);
	if (out) {
		memcpy(out, buf, len);
		out[len] = '\0';
	}
out:
	OPENSSL_cleanse(buf, sizeof buf);
	return out;
}

void tools_output_clear(struct tools_output *out)
{
	if (!out)
		return;
	free(out->data);
	free(out->errtext);
	memset(out, 0, sizeof *out);
}

static enum tools_err set_err(struct tools_output *out, enum tools_err e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum tools_err set_err(struct tools_output *out, enum tools_err e, const char *fmt, ...)
{
	va_list ap;
	out->err = e;
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof out->detail, fmt, ap);
	va_end(ap);
	return e;
}

struct sink {
	char *p;
	size_t len, cap, max;
	int over;
};

static int sink_add(struct sink *s, const char *d, size_t n)
{
	if (s->len + n > s->max) {
		s->over = 1;
		n = s->max - s->len;
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *q;
		while (cap < s->len + n + 1)
			cap *= 2;
		q = realloc(s->p, cap);
		if (!q)
			return -1;
		s->p = q;
		s->cap = cap;
	}
	memcpy(s->p + s->len, d, n);
	s->len += n;
	s->p[s->len] = '\0';
	return s->over ? -1 : 0;
}

static void child_exec(char **argv, char **envp, int in, int outp, int errp)
{
	/* In the child: only async-signal-safe calls. */
	setpgid(0, 0);
	if (dup2(in, 0) < 0 || dup2(outp, 1) < 0 || dup2(errp, 2) < 0)
		_exit(127);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	signal(SIGPIPE, SIG_DFL);
	execve(argv[0], argv, envp);
	_exit(127);
}

static void free_vec(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static enum tools_err run_command(const struct tools_def *def, const json_t *args, const char *cred_dir,
				  struct tools_output *out)
{
	char **argv = calloc(def->argc + 1, sizeof *argv);
	size_t argc = 0;
	char *envp[6] = {0};
	char *cred = NULL, *input = NULL, *credenv = NULL, toolenv[200];
	size_t in_len = 0, in_off = 0;
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	pid_t pid = -1;
	struct sink so = {.max = def->max_output}, se = {.max = MAX_STDERR};
	double start = now_s(), deadline = start + def->timeout_ms / 1000.0;
	int status = 0, reaped = 0, killed_timeout = 0, killed_output = 0;

	out->exit_status = -1;
	if (!argv) {
		set_err(out, TOOLS_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < def->argc; i++) {
		/* An element that is exactly one placeholder for an absent argument is dropped. */
		const char *t = def->argv[i];
		size_t l = strlen(t);
		if (i > 0 && l > 2 && t[0] == '{' && t[l - 1] == '}' && !strchr(t + 1, '{')) {
			char key[128];
			snprintf(key, sizeof key, "%.*s", (int)(l - 2 < 127 ? l - 2 : 127), t + 1);
			if (!json_object_get(args, key))
				continue;
		}
		if (!(argv[argc] = tools_expand(t, args, NULL, 0))) {
			set_err(out, TOOLS_ERR_NOMEM, "argument expansion failed");
			goto out;
		}
		argc++;
	}
	if (def->credential) {
		cred = tools_credential_read(cred_dir, def->credential);
		if (!cred) {
			set_err(out, TOOLS_ERR_NO_CREDENTIAL, "credential %s not readable", def->credential);
			goto out;
		}
		if (asprintf(&credenv, "SLUICE_CREDENTIAL=%s", cred) < 0) {
			credenv = NULL;
			set_err(out, TOOLS_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	snprintf(toolenv, sizeof toolenv, "SLUICE_TOOL=%s", def->name);
	envp[0] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	envp[1] = "LANG=C.UTF-8";
	envp[2] = toolenv;
	envp[3] = credenv;
	if (def->stdin_json) {
		input = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
		if (!input) {
			set_err(out, TOOLS_ERR_NOMEM, "out of memory");
			goto out;
		}
		in_len = strlen(input);
	}
	if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0) {
		set_err(out, TOOLS_ERR_EXEC, "pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		set_err(out, TOOLS_ERR_EXEC, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, envp, pin[0], pout[1], perr[1]);
	setpgid(pid, pid); /* also from the parent, so the kill below never misses the group */
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	pin[0] = pout[1] = perr[1] = -1;
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	if (in_len == 0) {
		close(pin[1]);
		pin[1] = -1;
	}

	while (pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd pfd[3];
		nfds_t n = 0;
		int idx_out = -1, idx_err = -1, idx_in = -1, pr;
		double left = deadline - now_s();

		if (left <= 0) {
			killed_timeout = 1;
			break;
		}
		if (pout[0] >= 0)
			idx_out = (int)n, pfd[n++] = (struct pollfd){.fd = pout[0], .events = POLLIN};
		if (perr[0] >= 0)
			idx_err = (int)n, pfd[n++] = (struct pollfd){.fd = perr[0], .events = POLLIN};
		if (pin[1] >= 0)
			idx_in = (int)n, pfd[n++] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
		pr = poll(pfd, n, (int)(left * 1000) + 1);
		if (pr < 0 && errno != EINTR) {
			set_err(out, TOOLS_ERR_EXEC, "poll: %s", strerror(errno));
			killed_timeout = 1; /* kill it below */
			break;
		}
		if (pr <= 0)
			continue;
		if (idx_in >= 0 && pfd[idx_in].revents) {
			ssize_t w = write(pin[1], input + in_off, in_len - in_off);
			if (w > 0)
				in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
		for (int which = 0; which < 2; which++) {
			int idx = which ? idx_err : idx_out;
			int *fd = which ? &perr[0] : &pout[0];
			char buf[16384];
			ssize_t r;
			if (idx < 0 || !pfd[idx].revents)
				continue;
			r = read(*fd, buf, sizeof buf);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (which == 0) {
				if (sink_add(&so, buf, (size_t)r) != 0) {
					killed_output = 1;
					break;
				}
			} else {
				sink_add(&se, buf, (size_t)r); /* stderr is truncated, not fatal */
			}
		}
		if (killed_output)
			break;
	}
	/* Output closed: wait for the exit within what is left of the timeout. */
	while (!killed_timeout && !killed_output && !reaped) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			reaped = 1;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
		if (now_s() >= deadline) {
			killed_timeout = 1;
			break;
		}
		usleep(2000);
	}
	/* Whatever the outcome, nothing the tool started outlives the call. */
	kill(-pid, SIGKILL);
	if (!reaped)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	out->seconds = now_s() - start;
	out->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (killed_timeout && out->err == TOOLS_OK) {
		char d[64];
		snprintf(d, sizeof d, "%u ms", def->timeout_ms);
		set_err(out, TOOLS_ERR_TIMEOUT, "killed after %s", d);
	} else if (killed_output) {
		char d[64];
		snprintf(d, sizeof d, "%zu bytes", def->max_output);
		set_err(out, TOOLS_ERR_OUTPUT_LIMIT, "output exceeded %s; killed", d);
	} else if (out->err == TOOLS_OK && out->exit_status != 0) {
		char d[64];
		snprintf(d, sizeof d, "%d", out->exit_status);
		set_err(out, TOOLS_ERR_EXEC, "exit status %s", d);
		if (out->exit_status == 127 && so.len == 0 && se.len == 0)
			set_err(out, TOOLS_ERR_EXEC, "could not execute %s", def->argv[0]);
	}
out:
	if (!killed_output) {
		out->data = so.p ? so.p : strdup("");
		out->len = so.len;
	} else {
		free(so.p);
		out->data = strdup("");
		out->len = 0;
	}
	out->errtext = se.p;
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	free(input);
	free_vec(argv, argc);
	tools_secret_free(credenv);
	tools_secret_free(cred);
	return out->err;
}

struct http_ctx {
	struct sink body;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_ctx *c = ud;
	size_t n = size * nmemb;
	return sink_add(&c->body, ptr, n) == 0 ? n : 0; /* 0 aborts the transfer */
}

static void slist_wipe_free(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		if (p->data)
			OPENSSL_cleanse(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static enum tools_err run_http(const struct tools_def *def, const json_t *args, const char *cred_dir,
			       struct tools_output *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL, *tmp;
	struct http_ctx ctx = {.body = {.max = def->max_output}};
	char *url = NULL, *body = NULL, *cred = NULL, *credhdr = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	double start = now_s();
	CURLcode cc;

	if (!c) {
		set_err(out, TOOLS_ERR_NOMEM, "curl init failed");
		goto out;
	}
	url = tools_expand(def->url, args, NULL, 1);
	if (!url) {
		set_err(out, TOOLS_ERR_NOMEM, "URL expansion failed");
		goto out;
	}
	for (size_t i = 0; i < def->n_headers; i++) {
		char *h = tools_expand(def->headers[i], args, NULL, 0);
		if (!h || strpbrk(h, "\r\n")) {
			free(h);
			set_err(out, TOOLS_ERR_EXEC, "header %s expands to an invalid value", def->headers[i]);
			goto out;
		}
		tmp = curl_slist_append(hdrs, h);
		free(h);
		if (!tmp) {
			set_err(out, TOOLS_ERR_NOMEM, "out of memory");
			goto out;
		}
		hdrs = tmp;
	}
	if (def->credential) {
		cred = tools_credential_read(cred_dir, def->credential);
		if (!cred) {
			set_err(out, TOOLS_ERR_NO_CREDENTIAL, "credential %s not readable", def->credential);
			goto out;
		}
		credhdr = tools_expand(def->credential_header, args, cred, 0);
		if (!credhdr || strpbrk(credhdr, "\r\n") || !(tmp = curl_slist_append(hdrs, credhdr))) {
			set_err(out, TOOLS_ERR_EXEC, "credential header for %s is invalid", def->credential);
			goto out;
		}
		hdrs = tmp;
	}
	if (strcmp(def->method, "POST") == 0) {
		body = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
		tmp = body ? curl_slist_append(hdrs, "Content-Type: application/json") : NULL;
		if (!tmp) {
			set_err(out, TOOLS_ERR_NOMEM, "out of memory");
			goto out;
		}
		hdrs = tmp;
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)def->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)def->timeout_ms);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice-tools");
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)def->max_output);
	cc = curl_easy_perform(c);
	out->seconds = now_s() - start;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->http_status);
	if (ctx.body.over || cc == CURLE_FILESIZE_EXCEEDED) {
		char d[64];
		snprintf(d, sizeof d, "%zu bytes", def->max_output);
		set_err(out, TOOLS_ERR_OUTPUT_LIMIT, "response exceeded %s", d);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		char d[64];
		snprintf(d, sizeof d, "%u ms", def->timeout_ms);
		set_err(out, TOOLS_ERR_TIMEOUT, "no complete response within %s", d);
	} else if (cc != CURLE_OK) {
		set_err(out, TOOLS_ERR_HTTP, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else if (out->http_status < 200 || out->http_status > 299) {
		char d[32];
		snprintf(d, sizeof d, "%ld", out->http_status);
		set_err(out, TOOLS_ERR_HTTP, "HTTP status %s", d);
	}
out:
	if (!ctx.body.over && ctx.body.p) {
		out->data = ctx.body.p;
		out->len = ctx.body.len;
	} else {
		free(ctx.body.p);
		out->data = strdup("");
		out->len = 0;
	}
	if (c)
		curl_easy_cleanup(c);
	slist_wipe_free(hdrs);
	tools_secret_free(credhdr);
	tools_secret_free(cred);
	free(url);
	free(body);
	return out->err;
}

enum tools_err tools_run(const struct tools_def *def, const json_t *args, const char *cred_dir,
			 struct tools_output *out)
{
	memset(out, 0, sizeof *out);
	out->exit_status = -1;
	switch (def->kind) {
	case TOOLS_KIND_COMMAND:
		return run_command(def, args, cred_dir, out);
	case TOOLS_KIND_HTTP:
		return run_http(def, args, cred_dir, out);
	}
	return set_err(out, TOOLS_ERR_CONFIG, "unknown tool kind");
}
