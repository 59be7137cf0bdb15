/* Command executor (agent/tools_exec.c), credentials and the journal (agent/tools_journal.c).
 * Real processes; no network (the HTTP executor is covered by tests/integration/tools_*.sh). */
#include "agent/tools.h"
#include "tests/unit/t.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int def(struct tools_def *d, const char *argv_json, const char *extra)
{
	char buf[2048];
	json_t *j;
	char why[256] = "";
	enum tools_err e;
	snprintf(buf, sizeof buf,
		 "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\",\"properties\":"
		 "{\"symbol\":{\"type\":\"string\"},\"opt\":{\"type\":\"string\"}}},\"command\":{\"argv\":%s}%s}",
		 argv_json, extra ? extra : "");
	j = json_loads(buf, 0, NULL);
	e = tools_def_parse(j, d, why, sizeof why);
	if (e != TOOLS_OK)
		printf("# def: %s\n", why);
	json_decref(j);
	return e == TOOLS_OK ? 0 : -1;
}

static enum tools_err run(const char *argv_json, const char *extra, const char *args, struct tools_output *o)
{
	struct tools_def d;
	json_t *a = json_loads(args, 0, NULL);
	enum tools_err e;
	T_CHECK(def(&d, argv_json, extra) == 0);
	e = tools_run(&d, a, dir, o);
	tools_def_clear(&d);
	json_decref(a);
	return e;
}

static void test_argv_and_stdin(void)
{
	struct tools_output o;
	T_EQ_INT(run("[\"/bin/echo\",\"sym={symbol}\",\"{opt}\",\"end\"]", NULL,
		     "{\"symbol\":\"INTC; $(reboot)\"}", &o), TOOLS_OK);
	T_EQ_STR(o.data, "sym=INTC; $(reboot) end\n"); /* no shell; absent {opt} element dropped */
	T_EQ_INT(o.exit_status, 0);
	tools_output_clear(&o);
	T_EQ_INT(run("[\"/bin/cat\"]", NULL, "{\"symbol\":\"X\",\"opt\":\"y\"}", &o), TOOLS_OK);
	T_EQ_STR(o.data, "{\"opt\":\"y\",\"symbol\":\"X\"}");
	tools_output_clear(&o);
}

static void test_exit_status_and_stderr(void)
{
	struct tools_output o;
	T_EQ_INT(run("[\"/bin/sh\",\"-c\",\"echo out; echo oops >&2; exit 3\"]", NULL, "{}", &o), TOOLS_ERR_EXEC);
	T_EQ_INT(o.exit_status, 3);
	T_EQ_STR(o.errtext, "oops\n");
	T_EQ_STR(o.data, "out\n");
	tools_output_clear(&o);
	T_EQ_INT(run("[\"/nonexistent/tool\"]", NULL, "{}", &o), TOOLS_ERR_EXEC);
	T_EQ_INT(o.exit_status, 127);
	tools_output_clear(&o);
}

static void test_timeout_kills_group(void)
{
	struct tools_output o;
	char pidfile[128], cmd[512], buf[32] = "";
	FILE *f;
	pid_t bg = 0;

	snprintf(pidfile, sizeof pidfile, "%s/bg.pid", dir);
	/* the tool hangs, and leaves a background child holding its stdout */
	snprintf(cmd, sizeof cmd, "[\"/bin/sh\",\"-c\",\"sleep 30 & echo $! > %s; sleep 30\"]", pidfile);
	T_EQ_INT(run(cmd, ",\"timeoutMs\":300", "{}", &o), TOOLS_ERR_TIMEOUT);
	T_CHECK(o.seconds >= 0.29 && o.seconds < 3);
	T_CHECK(strstr(o.detail, "300 ms") != NULL);
	tools_output_clear(&o);
	f = fopen(pidfile, "r");
	T_CHECK(f != NULL);
	if (f) {
		if (fgets(buf, sizeof buf, f))
			bg = (pid_t)atoi(buf);
		fclose(f);
	}
	T_CHECK(bg > 0);
	if (bg > 0) {
		/* the grandchild was killed with the group (it may linger as a zombie of init) */
		usleep(100000);
		char st[256], state = '?';
		snprintf(st, sizeof st, "/proc/%d/stat", (int)bg);
		f = fopen(st, "r");
		if (f) {
			if (fscanf(f, "%*d %*s %c", &state) != 1)
				state = '?';
			fclose(f);
			T_CHECK(state == 'Z' || state == 'X');
		}
	}
	unlink(pidfile);
}

static void test_output_limit(void)
{
	struct tools_output o;
	T_EQ_INT(run("[\"/usr/bin/yes\"]", ",\"maxOutputBytes\":1000,\"timeoutMs\":5000", "{}", &o),
		 TOOLS_ERR_OUTPUT_LIMIT);
	T_CHECK(o.seconds < 3);
	T_EQ_INT(o.len, 0);
	tools_output_clear(&o);
}

static void write_file(const char *name, const char *content)
{
	char p[256];
	FILE *f;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	f = fopen(p, "w");
	fputs(content, f);
	fclose(f);
}

static void test_credentials(void)
{
	struct tools_output o;
	char *c;
	write_file("good", "s3cret\n");
	write_file("multi", "a\nb\n");
	write_file("empty", "");
	c = tools_credential_read(dir, "good");
	T_EQ_STR(c, "s3cret");
	tools_secret_free(c);
	T_CHECK(tools_credential_read(dir, "multi") == NULL);
	T_CHECK(tools_credential_read(dir, "empty") == NULL);
	T_CHECK(tools_credential_read(dir, "absent") == NULL);
	T_CHECK(tools_credential_read(dir, "../good") == NULL);
	/* the command gets it in its environment, and nothing else of ours */
	setenv("SLUICE_TEST_LEAK", "leaked", 1);
	T_EQ_INT(run("[\"/bin/sh\",\"-c\",\"printf '%s|%s|%s' \\\"$SLUICE_CREDENTIAL\\\" \\\"$SLUICE_TEST_LEAK\\\" \\\"$SLUICE_TOOL\\\"\"]",
		     ",\"credential\":\"good\"", "{}", &o), TOOLS_OK);
	T_EQ_STR(o.data, "s3cret||t");
	tools_output_clear(&o);
	T_EQ_INT(run("[\"/bin/true\"]", ",\"credential\":\"absent\"", "{}", &o), TOOLS_ERR_NO_CREDENTIAL);
	tools_output_clear(&o);
}

static int read_ok(const char *path)
{
	char why[256] = "";
	json_t *a = tools_journal_read(path, why, sizeof why);
	int ok = a != NULL;
	if (!ok)
		printf("# journal: %s\n", why);
	json_decref(a);
	return ok;
}

static void test_journal(void)
{
	char path[128], why[256];
	json_t *a;
	FILE *f;
	long size;
	char *all;

	snprintf(path, sizeof path, "%s/journal", dir);
	for (int i = 0; i < 3; i++) {
		json_t *r = json_pack("{s:s, s:i}", "type", "call", "i", i);
		T_EQ_INT(tools_journal_append(path, r), 0);
		json_decref(r);
	}
	a = tools_journal_read(path, why, sizeof why);
	T_EQ_INT(json_array_size(a), 3);
	T_EQ_INT(json_integer_value(json_object_get(json_array_get(a, 2), "seq")), 3);
	T_EQ_STR(json_string_value(json_object_get(json_array_get(a, 0), "prev")), "");
	T_EQ_INT(strlen(json_string_value(json_object_get(json_array_get(a, 1), "prev"))), 64);
	json_decref(a);
	T_CHECK(read_ok(path));

	/* edit one byte of the first line: the chain breaks at line 2 */
	f = fopen(path, "r+");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	all = calloc(1, (size_t)size + 1);
	fseek(f, 0, SEEK_SET);
	T_CHECK(fread(all, 1, (size_t)size, f) == (size_t)size);
	{
		char *p = strstr(all, "\"i\":0");
		p[4] = '7';
		fseek(f, 0, SEEK_SET);
		fwrite(all, 1, (size_t)size, f);
	}
	fclose(f);
	T_CHECK(!read_ok(path));
	/* remove the first line instead: seq no longer starts at 1 */
	f = fopen(path, "w");
	fputs(strchr(all, '\n') + 1, f);
	fclose(f);
	T_CHECK(!read_ok(path));
	free(all);
	/* a torn tail: appends are refused until an operator looks */
	f = fopen(path, "w");
	fputs("{\"seq\":1,\"prev\":\"\"", f);
	fclose(f);
	{
		json_t *r = json_object();
		errno = 0;
		T_EQ_INT(tools_journal_append(path, r), -1);
		T_EQ_INT(errno, EBADMSG);
		json_decref(r);
	}
	unlink(path);
	/* absent journal reads as empty */
	a = tools_journal_read(path, why, sizeof why);
	T_EQ_INT(json_array_size(a), 0);
	json_decref(a);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/sluice-tools-exec.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	T_RUN(test_argv_and_stdin);
	T_RUN(test_exit_status_and_stderr);
	T_RUN(test_timeout_kills_group);
	T_RUN(test_output_limit);
	T_RUN(test_credentials);
	T_RUN(test_journal);
	{
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return t_done();
}
