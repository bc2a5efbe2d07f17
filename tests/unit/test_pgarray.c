/* test_pgarray.c - PostgreSQL array literals: quoting, escaping, NULL, empty arrays. */
#include "check.h"
#include "pgarray.h"

static void
test_empty(void)
{
	struct pgarray a = { 0 };

	CHECK_STR(pgarray_finish(&a), "{}");
	pgarray_free(&a);
}

static void
test_escaping(void)
{
	struct pgarray a = { 0 };

	pgarray_add(&a, "plain");
	pgarray_add(&a, "with \"quotes\" and \\ backslash");
	pgarray_add(&a, NULL);
	pgarray_add(&a, "");
	pgarray_add(&a, "a,b {c}");
	pgarray_add(&a, "-----BEGIN X-----\nline\n-----END X-----\n");
	CHECK_STR(pgarray_finish(&a),
	    "{\"plain\",\"with \\\"quotes\\\" and \\\\ backslash\",NULL,\"\",\"a,b {c}\","
	    "\"-----BEGIN X-----\nline\n-----END X-----\n\"}");
	pgarray_free(&a);
}

static void
test_numbers_and_bools(void)
{
	struct pgarray n = { 0 }, b = { 0 };

	pgarray_add_i64(&n, 0);
	pgarray_add_i64(&n, -42);
	pgarray_add_i64(&n, INT64_MAX);
	CHECK_STR(pgarray_finish(&n), "{0,-42,9223372036854775807}");
	pgarray_add_bool(&b, 1);
	pgarray_add_bool(&b, 0);
	CHECK_STR(pgarray_finish(&b), "{t,f}");
	pgarray_free(&n);
	pgarray_free(&b);
}

int
main(void)
{
	RUN(test_empty);
	RUN(test_escaping);
	RUN(test_numbers_and_bools);
	return CHECK_DONE();
}
