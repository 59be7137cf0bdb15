/* Minimal unit-test harness: TAP-like lines that tests/run.sh counts.
 *
 *   #include "tests/unit/t.h"
 *   static void test_x(void) { T_CHECK(1 + 1 == 2); T_EQ_INT(f(), 3); }
 *   int main(void) { T_RUN(test_x); return t_done(); }
 *
 * Each T_RUN prints "ok NAME" or "not ok NAME: file:line: expr". */
#ifndef SLUICE_TESTS_T_H
#define SLUICE_TESTS_T_H

#include <stdio.h>
#include <string.h>

static int t_failed_cases;
static int t_case_failed;

#define T_CHECK(cond)                                                                     \
	do {                                                                              \
		if (!(cond)) {                                                            \
			if (!t_case_failed)                                               \
				printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			t_case_failed = 1;                                                \
		}                                                                         \
	} while (0)

#define T_EQ_INT(a, b)                                                                    \
	do {                                                                              \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                   \
		if (t_a_ != t_b_) {                                                       \
			printf("# %s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, \
			       t_a_, t_b_);                                               \
			t_case_failed = 1;                                                \
		}                                                                         \
	} while (0)

#define T_EQ_STR(a, b)                                                                    \
	do {                                                                              \
		const char *t_a_ = (a), *t_b_ = (b);                                      \
		if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                          \
			printf("# %s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
			       #a, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");       \
			t_case_failed = 1;                                                \
		}                                                                         \
	} while (0)

#define T_RUN(fn)                                                                         \
	do {                                                                              \
		t_case_failed = 0;                                                        \
		fn();                                                                     \
		if (t_case_failed) {                                                      \
			printf("not ok %s\n", #fn);                                       \
			t_failed_cases++;                                                 \
		} else {                                                                  \
			printf("ok %s\n", #fn);                                           \
		}                                                                         \
		fflush(stdout);                                                           \
	} while (0)

static inline int t_done(void) { return t_failed_cases ? 1 : 0; }

#endif
