/* check.h - the minimal test harness of certfleet's unit tests: TAP-style lines, one per test. */
#ifndef CF_CHECK_H
#define CF_CHECK_H

#include <stdbool.h>
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

/* True when no octet of s is a control character (messages must never carry raw ones). */
static inline bool
check_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return false;
	return true;
}

/* True when msg is printable and contains needle; says what it got otherwise. */
static inline bool
check_says(const char *msg, const char *needle)
{
	if (strstr(msg, needle) != NULL && check_printable(msg))
		return true;
	fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", msg, needle);
	return false;
}

#endif
