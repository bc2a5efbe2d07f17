/* pgarray.h - building PostgreSQL array literals ('{"a","b",NULL}') for multi-row statements. */
#ifndef CF_PGARRAY_H
#define CF_PGARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "cf.h"

struct pgarray {
	cf_buf buf;
	size_t n;
	int failed;               /* out of memory at some point: the literal is unusable */
};

/* Appends s (NULL becomes SQL NULL), quoted and escaped. */
void pgarray_add(struct pgarray *a, const char *s);
void pgarray_add_i64(struct pgarray *a, int64_t v);
void pgarray_add_bool(struct pgarray *a, int v);

/* The finished literal ("{}" when empty), or NULL after an allocation failure. Call once. */
const char *pgarray_finish(struct pgarray *a);
void pgarray_free(struct pgarray *a);

#endif
