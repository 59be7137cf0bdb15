/* libscrapi without network: URL rule, problem details decoding, error strings, config checks. */
#include "scrapi/scrapi.h"
#include "tests/unit/t.h"

#include <stdlib.h>

static void test_url_rule(void)
{
	T_EQ_INT(scrapi_url_check("https://ts.example/", 0), SCRAPI_OK);
	T_EQ_INT(scrapi_url_check("http://127.0.0.1:8080", 0), SCRAPI_OK);
	T_EQ_INT(scrapi_url_check("http://127.3.4.5", 0), SCRAPI_OK);
	T_EQ_INT(scrapi_url_check("http://localhost:1/x", 0), SCRAPI_OK);
	T_EQ_INT(scrapi_url_check("http://[::1]:8080/", 0), SCRAPI_OK);
	T_EQ_INT(scrapi_url_check("http://ts.example/", 0), SCRAPI_ERR_INSECURE);
	T_EQ_INT(scrapi_url_check("http://127.0.0.1.evil.example/", 0), SCRAPI_ERR_INSECURE);
	T_EQ_INT(scrapi_url_check("http://10.0.2.100:8080", 0), SCRAPI_ERR_INSECURE);
	T_EQ_INT(scrapi_url_check("http://10.0.2.100:8080", 1), SCRAPI_OK);
	T_EQ_INT(scrapi_url_check("ftp://127.0.0.1/", 1), SCRAPI_ERR_INVAL);
	T_EQ_INT(scrapi_url_check("file:///etc/passwd", 1), SCRAPI_ERR_INVAL);
	T_EQ_INT(scrapi_url_check("not a url", 1), SCRAPI_ERR_INVAL);
	T_EQ_INT(scrapi_url_check(NULL, 1), SCRAPI_ERR_INVAL);
}

static void test_problem_details(void)
{
	/* {-1: "Rejected", -2: "bad\nissuer"} */
	static const uint8_t p[] = {0xa2, 0x20, 0x68, 'R', 'e', 'j', 'e', 'c', 't', 'e', 'd', 0x21, 0x6a,
				    'b',  'a',  'd',  '\n', 'i', 's', 's', 'u', 'e', 'r'};
	static const uint8_t arr[] = {0x82, 0x01, 0x02};
	char t[32], d[8];
	T_EQ_INT(scrapi_problem_decode(p, sizeof p, t, sizeof t, d, sizeof d), 0);
	T_EQ_STR(t, "Rejected");
	T_EQ_STR(d, "bad iss"); /* control character replaced, truncated to fit */
	T_EQ_INT(scrapi_problem_decode(p, sizeof p - 3, t, sizeof t, d, sizeof d), -1);
	T_EQ_INT(scrapi_problem_decode(arr, sizeof arr, t, sizeof t, d, sizeof d), -1);
	T_EQ_STR(t, "");
	T_EQ_INT(scrapi_problem_decode((const uint8_t *)"<html>", 6, t, sizeof t, d, sizeof d), -1);
}

static void test_strerror(void)
{
	for (int e = SCRAPI_OK; e <= SCRAPI_ERR_TLS; e++) {
		const char *s = scrapi_strerror((enum scrapi_err)e);
		T_CHECK(s && *s && strcmp(s, "unknown scrapi error") != 0);
	}
}

static void test_client_config(void)
{
	struct scrapi_client *c = NULL;
	struct scrapi_cfg cfg = {.url = "http://ts.example"};
	T_EQ_INT(scrapi_client_new(&cfg, &c), SCRAPI_ERR_INSECURE);
	T_CHECK(c == NULL);
	cfg.url = "";
	T_EQ_INT(scrapi_client_new(&cfg, &c), SCRAPI_ERR_INVAL);
	cfg.url = "https://ts.example///";
	T_EQ_INT(scrapi_client_new(&cfg, &c), SCRAPI_OK);
	T_EQ_STR(scrapi_last_cause(c), "");
	T_EQ_INT(scrapi_get_receipt(c, "../x", NULL, NULL), SCRAPI_ERR_INVAL);
	scrapi_client_free(c);
	scrapi_client_free(NULL);
}

int main(void)
{
	T_RUN(test_url_rule);
	T_RUN(test_problem_details);
	T_RUN(test_strerror);
	T_RUN(test_client_config);
	return t_done();
}
