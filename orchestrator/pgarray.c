/* pgarray.c - PostgreSQL array literals: every element double-quoted, '"' and '\' escaped. */
#include "pgarray.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void
put(struct pgarray *a, const char *p, size_t n)
{
	if (!a->failed && cf_buf_append(&a->buf, p, n) != 0)
		a->failed = 1;
}

static void
sep(struct pgarray *a)
{
	put(a, a->n++ == 0 ? "{" : ",", 1);
}

void
pgarray_add(struct pgarray *a, const char *s)
{
	sep(a);
	if (s == NULL) {
		put(a, "NULL", 4);
		return;
	}
	put(a, "\"", 1);
	while (*s) {
		size_t run = strcspn(s, "\"\\");
		put(a, s, run);
		s += run;
		if (*s) {
			put(a, "\\", 1);
			put(a, s, 1);
			s++;
		}
	}
	put(a, "\"", 1);
}

void
pgarray_add_i64(struct pgarray *a, int64_t v)
{
	char num[24];

	sep(a);
	put(a, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v));
}

void
pgarray_add_bool(struct pgarray *a, int v)
{
	sep(a);
	put(a, v ? "t" : "f", 1);
}

const char *
pgarray_finish(struct pgarray *a)
{
	put(a, a->n == 0 ? "{}" : "}", a->n == 0 ? 2 : 1);
	return a->failed ? NULL : a->buf.data;
}

void
pgarray_free(struct pgarray *a)
{
	cf_buf_free(&a->buf);
	a->n = 0;
	a->failed = 0;
}
