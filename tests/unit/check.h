/* check.h - the minimal test harness of certfleet's unit tests: TAP-style lines, one per test. */
#ifndef CF_CHECK_H
#define CF_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures; /* failed assertions in the current test */
static int check_passed, check_failed;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                              \
		}                                                                      \
	} while (0)

#define CHECK_STR(a, b)                                                                \
	do {                                                                           \
		const char *check_a_ = (a), *check_b_ = (b);                           \
		if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) { \
			fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
			    check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
			check_failures++;                                              \
		}                                                                      \
	} while (0)

/* Runs one test function and prints "ok - name" or "not ok - name". */
#define RUN(fn)                                                                        \
	do {                                                                           \
		check_failures = 0;                                                    \
		fn();                                                                  \
		if (check_failures == 0) {                                             \
			check_passed++;                                                \
			printf("ok - %s\n", #fn);                                      \
		} else {                                                               \
			check_failed++;                                                \
			printf("not ok - %s\n", #fn);                                  \
		}                                                                      \
		fflush(stdout);                                                        \
	} while (0)

#define CHECK_DONE() (check_failed == 0 ? 0 : 1)

#endif
