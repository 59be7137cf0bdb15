/* Tool definitions (agent/tools_config.c) and the JSON Schema subset (agent/tools_schema.c). */
#include "agent/tools.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!j)
		printf("# bad test JSON: %s: %s\n", s, e.text);
	return j;
}

static int valid(const char *schema, const char *inst)
{
	json_t *s = J(schema), *i = J(inst);
	char why[256] = "";
	int rc;
	T_CHECK(tools_schema_check(s, why, sizeof why) == 0);
	rc = tools_schema_validate(s, i, why, sizeof why);
	json_decref(s);
	json_decref(i);
	return rc == 0;
}

#define SYM "{\"type\":\"object\",\"properties\":{\"symbol\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{1,5}$\"}," \
	    "\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10},\"f\":{\"type\":\"boolean\"}," \
	    "\"mode\":{\"enum\":[\"a\",\"b\"]},\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}}," \
	    "\"required\":[\"symbol\"],\"additionalProperties\":false}"

static void test_schema_validate(void)
{
	T_CHECK(valid(SYM, "{\"symbol\":\"INTC\"}"));
	T_CHECK(valid(SYM, "{\"symbol\":\"INTC\",\"n\":3,\"f\":true,\"mode\":\"b\",\"name\":\"\xc3\xa9t\xc3\xa9\"}"));
	T_CHECK(valid(SYM, "{\"symbol\":\"A\",\"n\":3.0}")); /* 3.0 is an integer in JSON Schema */
	T_CHECK(!valid(SYM, "{}"));                           /* required */
	T_CHECK(!valid(SYM, "{\"symbol\":\"intc\"}"));        /* pattern */
	T_CHECK(!valid(SYM, "{\"symbol\":\"INTC; rm -rf /\"}"));
	T_CHECK(!valid(SYM, "{\"symbol\":\"TOOLONG\"}"));
	T_CHECK(!valid(SYM, "{\"symbol\":1}"));               /* type */
	T_CHECK(!valid(SYM, "{\"symbol\":\"A\",\"x\":1}"));   /* additionalProperties */
	T_CHECK(!valid(SYM, "{\"symbol\":\"A\",\"n\":0}"));   /* minimum */
	T_CHECK(!valid(SYM, "{\"symbol\":\"A\",\"n\":11}"));  /* maximum */
	T_CHECK(!valid(SYM, "{\"symbol\":\"A\",\"n\":2.5}")); /* integer */
	T_CHECK(!valid(SYM, "{\"symbol\":\"A\",\"mode\":\"c\"}"));
	T_CHECK(!valid(SYM, "{\"symbol\":\"A\",\"name\":\"x\"}"));
	T_CHECK(!valid(SYM, "{\"symbol\":\"A\",\"name\":\"wxyz\"}"));
	T_CHECK(!valid(SYM, "[]"));
	T_CHECK(valid("{\"type\":[\"string\",\"null\"]}", "null"));
	T_CHECK(!valid("{\"type\":[\"string\",\"null\"]}", "1"));
	T_CHECK(valid("{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":2}", "[1,2.5]"));
	T_CHECK(!valid("{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":2}", "[1,2,3]"));
	T_CHECK(!valid("{\"type\":\"array\",\"items\":{\"type\":\"number\"}}", "[1,\"x\"]"));
	T_CHECK(valid("{\"exclusiveMinimum\":0,\"exclusiveMaximum\":1}", "0.5"));
	T_CHECK(!valid("{\"exclusiveMinimum\":0}", "0"));
	T_CHECK(!valid("{\"const\":\"x\"}", "\"y\""));
	T_CHECK(valid("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}", "{\"a\":\"b\"}"));
	T_CHECK(!valid("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}", "{\"a\":1}"));
	/* a NUL inside a string cannot slip past a pattern */
	T_CHECK(!valid("{\"type\":\"string\",\"pattern\":\"^[A-Z]+$\"}", "\"AB\\u0000;x\""));
}

static void test_schema_reason(void)
{
	json_t *s = J(SYM), *i = J("{\"symbol\":\"A\",\"x/y\":1}");
	char why[256] = "";
	T_CHECK(tools_schema_validate(s, i, why, sizeof why) != 0);
	T_EQ_STR(why, "/x~1y: property is not allowed");
	json_decref(i);
	i = J("{\"symbol\":\"abc\"}");
	T_CHECK(tools_schema_validate(s, i, why, sizeof why) != 0);
	T_CHECK(strncmp(why, "/symbol: does not match pattern", 31) == 0);
	json_decref(i);
	json_decref(s);
}

static void test_schema_check_rejects_unsupported(void)
{
	const char *bad[] = {
		"{\"type\":\"object\",\"oneOf\":[]}",          /* unsupported keyword */
		"{\"type\":\"bogus\"}",
		"{\"pattern\":\"([\"}",                        /* does not compile */
		"{\"minLength\":-1}",
		"{\"required\":\"x\"}",
		"{\"properties\":{\"a\":{\"$ref\":\"#\"}}}",
		"{\"enum\":[]}",
		"\"x\"",
	};
	char why[256];
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		json_t *s = J(bad[k]);
		if (!s) { /* "\"x\"" needs DECODE_ANY */
			s = json_loads(bad[k], JSON_DECODE_ANY, NULL);
		}
		T_CHECK(tools_schema_check(s, why, sizeof why) != 0);
		json_decref(s);
	}
	/* annotations are fine; deep nesting is bounded */
	{
		json_t *s = J("{\"title\":\"t\",\"description\":\"d\",\"$schema\":\"x\",\"format\":\"date\",\"default\":1}");
		char deep[4096] = "";
		T_CHECK(tools_schema_check(s, why, sizeof why) == 0);
		json_decref(s);
		for (int d = 0; d < 40; d++)
			strcat(deep, "{\"items\":");
		strcat(deep, "true");
		for (int d = 0; d < 40; d++)
			strcat(deep, "}");
		s = J(deep);
		T_CHECK(tools_schema_check(s, why, sizeof why) != 0);
		json_decref(s);
	}
}

#define GOOD_CMD "{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"command\":{\"argv\":[\"/bin/echo\",\"{symbol}\",\"--n={n}\"]}}"
#define GOOD_HTTP "{\"name\":\"stock_price\",\"description\":\"d\",\"inputSchema\":" SYM ",\"credential\":\"tok\"," \
		  "\"http\":{\"url\":\"http://127.0.0.1:1/q?s={symbol}\",\"headers\":[\"Accept: text/plain\"]},\"timeoutMs\":500}"

static enum tools_err parse(const char *s, struct tools_def *d, char *why, size_t n)
{
	json_t *j = J(s);
	enum tools_err e = tools_def_parse(j, d, why, n);
	json_decref(j);
	return e;
}

static void test_def_parse(void)
{
	struct tools_def d;
	char why[512];
	T_EQ_INT(parse(GOOD_CMD, &d, why, sizeof why), TOOLS_OK);
	T_EQ_INT(d.kind, TOOLS_KIND_COMMAND);
	T_EQ_INT(d.argc, 3);
	T_CHECK(d.stdin_json == 1);
	T_EQ_INT(d.timeout_ms, TOOLS_DEFAULT_TIMEOUT_MS);
	tools_def_clear(&d);
	T_EQ_INT(parse(GOOD_HTTP, &d, why, sizeof why), TOOLS_OK);
	T_EQ_INT(d.kind, TOOLS_KIND_HTTP);
	T_EQ_STR(d.method, "GET");
	T_EQ_STR(d.credential_header, "Authorization: Bearer {credential}");
	T_EQ_INT(d.timeout_ms, 500);
	tools_def_clear(&d);

	{
		const char *bad[] = {
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM "}", /* no executor */
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"command\":{\"argv\":[\"echo\"]}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"command\":{\"argv\":[\"/bin/echo\",\"{nope}\"]}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"command\":{\"argv\":[\"/bin/echo\"]},\"timeoutMS\":1}",
			"{\"name\":\"t t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"command\":{\"argv\":[\"/bin/echo\"]}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":{\"type\":\"string\"},\"command\":{\"argv\":[\"/bin/echo\"]}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"http\":{\"url\":\"http://{symbol}.example/\"}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"http\":{\"url\":\"file:///etc/passwd\"}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"http\":{\"url\":\"http://h/\",\"method\":\"DELETE\"}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"credential\":\"../x\",\"http\":{\"url\":\"http://h/\"}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"http\":{\"url\":\"http://h/\",\"credentialHeader\":\"X: {credential}\"}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"http\":{\"url\":\"http://h/\",\"headers\":[\"Bad Header\"]}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"command\":{\"argv\":[\"/bin/echo\"]},\"http\":{\"url\":\"http://h/\"}}",
			"{\"name\":\"t\",\"description\":\"d\",\"inputSchema\":" SYM ",\"command\":{\"argv\":[\"/bin/echo\"]},\"maxOutputBytes\":0}",
		};
		for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
			why[0] = '\0';
			if (parse(bad[k], &d, why, sizeof why) != TOOLS_ERR_CONFIG)
				printf("# accepted: %s\n", bad[k]);
			T_CHECK(why[0] != '\0');
		}
	}
}

static void test_expand(void)
{
	json_t *a = J("{\"symbol\":\"A B&c\",\"n\":3,\"f\":false}");
	char *s = tools_expand("q?s={symbol}&n={n}&f={f}&m={missing}&lit={not a placeholder}", a, NULL, 1);
	T_EQ_STR(s, "q?s=A%20B%26c&n=3&f=false&m=&lit={not a placeholder}");
	free(s);
	s = tools_expand("Authorization: Bearer {credential}", a, "sekrit", 0);
	T_EQ_STR(s, "Authorization: Bearer sekrit");
	free(s);
	s = tools_expand("{credential}", a, NULL, 0); /* no credential given: not substituted */
	T_EQ_STR(s, "");
	free(s);
	json_decref(a);
}

static void test_load_dir(void)
{
	char dir[] = "/tmp/sluice-tools-test.XXXXXX", p[256];
	struct tools_set *set = NULL;
	char why[512] = "";
	FILE *f;

	T_CHECK(mkdtemp(dir) != NULL);
	snprintf(p, sizeof p, "%s/b.json", dir);
	f = fopen(p, "w");
	fputs(GOOD_CMD, f);
	fclose(f);
	snprintf(p, sizeof p, "%s/a.json", dir);
	f = fopen(p, "w");
	fputs(GOOD_HTTP, f);
	fclose(f);
	snprintf(p, sizeof p, "%s/README", dir); /* not *.json: ignored */
	f = fopen(p, "w");
	fputs("x", f);
	fclose(f);
	T_EQ_INT(tools_load_dir(dir, &set, why, sizeof why), TOOLS_OK);
	T_EQ_INT(set ? set->n : 0, 2);
	T_CHECK(tools_find(set, "stock_price") == &set->defs[0]);
	T_CHECK(tools_find(set, "t") != NULL && tools_find(set, "x") == NULL);
	tools_set_free(set);
	set = NULL;
	/* a duplicate name fails the whole load */
	snprintf(p, sizeof p, "%s/c.json", dir);
	f = fopen(p, "w");
	fputs(GOOD_CMD, f);
	fclose(f);
	T_EQ_INT(tools_load_dir(dir, &set, why, sizeof why), TOOLS_ERR_CONFIG);
	T_CHECK(strstr(why, "defined twice") != NULL);
	/* broken JSON names the file and line */
	f = fopen(p, "w");
	fputs("{\n\"name\":", f);
	fclose(f);
	T_EQ_INT(tools_load_dir(dir, &set, why, sizeof why), TOOLS_ERR_CONFIG);
	T_CHECK(strstr(why, "c.json") != NULL);
	unlink(p);
	snprintf(p, sizeof p, "%s/a.json", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/b.json", dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/README", dir);
	unlink(p);
	rmdir(dir);
	/* a missing directory is an empty set */
	T_EQ_INT(tools_load_dir(dir, &set, why, sizeof why), TOOLS_OK);
	T_EQ_INT(set ? set->n : 99, 0);
	tools_set_free(set);
}

static void test_strerror_total(void)
{
	for (int e = TOOLS_OK; e <= TOOLS_ERR_NOT_CONFIGURED; e++) {
		T_CHECK(strcmp(tools_strerror((enum tools_err)e), "unknown error") != 0);
		T_CHECK(strcmp(tools_reason((enum tools_err)e), "unknown") != 0);
	}
}

int main(void)
{
	T_RUN(test_schema_validate);
	T_RUN(test_schema_reason);
	T_RUN(test_schema_check_rejects_unsupported);
	T_RUN(test_def_parse);
	T_RUN(test_expand);
	T_RUN(test_load_dir);
	T_RUN(test_strerror_total);
	return t_done();
}
