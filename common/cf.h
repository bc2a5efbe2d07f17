/* cf.h - certfleet's shared conventions: error reporting, growable buffers, clocks. */
#ifndef CF_H
#define CF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Functions whose failure must be handled. */
#define CF_MUST __attribute__((warn_unused_result))

/*
 * The one error convention: a function that can fail returns int (0 on success, -1 on failure)
 * or a pointer (NULL on failure) and, when given a non-NULL cf_err, leaves there a message that
 * names the call that failed and the object it failed on.
 */
typedef struct cf_err {
	char msg[512];
} cf_err;

void cf_errf(cf_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable byte buffer, always NUL-terminated when data != NULL. */
typedef struct cf_buf {
	char *data;
	size_t len;
	size_t cap;
} cf_buf;

int cf_buf_append(cf_buf *b, const void *p, size_t n) CF_MUST;
int cf_buf_printf(cf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3))) CF_MUST;
void cf_buf_reset(cf_buf *b);
void cf_buf_free(cf_buf *b);

/* Monotonic milliseconds (for timers and latencies) and wall-clock milliseconds since the epoch. */
int64_t cf_mono_ms(void);
int64_t cf_wall_ms(void);

/* strdup that returns NULL for NULL. */
char *cf_strdup(const char *s);

#endif
