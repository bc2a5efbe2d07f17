/* cf.c - shared conventions: error messages, growable buffers, clocks. */
#include "cf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
cf_errf(cf_err *e, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

int
cf_buf_append(cf_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (d == NULL)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
cf_buf_printf(cf_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[512];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return cf_buf_append(b, small, (size_t)n);

	char *big = malloc((size_t)n + 1);
	if (big == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = cf_buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

void
cf_buf_reset(cf_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
cf_buf_free(cf_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int64_t
cf_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
cf_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cf_quote(char *dst, size_t dstlen, const char *s, size_t n, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[5];

		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c == '\t')
			snprintf(esc, sizeof(esc), "\\t");
		else if (c == '\n')
			snprintf(esc, sizeof(esc), "\\n");
		else if (c == '\r')
			snprintf(esc, sizeof(esc), "\\r");
		else if (c < 0x20 || c >= 0x7f)
			snprintf(esc, sizeof(esc), "\\x%02x", c);
		else
			snprintf(esc, sizeof(esc), "%c", c);
		if (o + strlen(esc) + 1 > dstlen)
			break;
		memcpy(dst + o, esc, strlen(esc));
		o += strlen(esc);
	}
	if (n > max && o + 4 <= dstlen) {
		memcpy(dst + o, "\xe2\x80\xa6", 3); /* U+2026 HORIZONTAL ELLIPSIS */
		o += 3;
	}
	dst[o] = '\0';
}

void
cf_timespec_after(struct timespec *ts, clockid_t clock, int wait_ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += wait_ms / 1000;
	ts->tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

char *
cf_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

void
cf_secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

bool
cf_count_take(atomic_long *n, long cap)
{
	long v = atomic_load(n);

	while (v < cap)
		if (atomic_compare_exchange_weak(n, &v, v + 1))
			return true;
	return false;
}
