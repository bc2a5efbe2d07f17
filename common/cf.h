/* cf.h - certfleet's shared conventions: error reporting, growable buffers, clocks. */
#ifndef CF_H
#define CF_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

/*
 * Writes the n octets of s to dst (dstlen >= 4 * max + 8) as they may appear between double
 * quotes in a message: printable ASCII as it is, '"' and '\\' escaped, every other octet (control
 * characters, DEL, UTF-8) as \t, \n, \r or \xNN, and cut after max octets with an ellipsis.
 */
void cf_quote(char *dst, size_t dstlen, const char *s, size_t n, size_t max);

/* The time wait_ms from now on clock, for pthread_cond_timedwait. */
void cf_timespec_after(struct timespec *ts, clockid_t clock, int wait_ms);

/* Adds one to *n unless it is at cap already: true when it did. Thread-safe. */
bool cf_count_take(atomic_long *n, long cap);

/*
 * Wipes a NUL-terminated secret (a key PEM, a token) and frees it; NULL is fine. The wipe is
 * explicit_bzero, which the compiler may not drop as a dead store before free (memset may be).
 */
void cf_secret_free(char *s);

/* strdup that returns NULL for NULL. */
char *cf_strdup(const char *s);

#endif
