/* log.c - thread-safe leveled logging to stderr, as text or JSON lines, below a terminal's live line. */
#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define STATUS_MAX 256

static enum cf_log_level log_level = CF_LOG_INFO;
static enum cf_log_format log_format = CF_LOG_TEXT;
static FILE *log_stream;                  /* NULL: stderr */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char status_line[STATUS_MAX];      /* the live line shown, "" when none (under log_lock) */
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
cf_log_set_level(enum cf_log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum cf_log_level
cf_log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
cf_log_set_format(enum cf_log_format format)
{
	__atomic_store_n(&log_format, format, __ATOMIC_RELAXED);
}

enum cf_log_format
cf_log_get_format(void)
{
	return __atomic_load_n(&log_format, __ATOMIC_RELAXED);
}

int
cf_log_parse_format(const char *s, enum cf_log_format *format)
{
	if (s != NULL && strcmp(s, "text") == 0)
		*format = CF_LOG_TEXT;
	else if (s != NULL && strcmp(s, "json") == 0)
		*format = CF_LOG_JSON;
	else
		return -1;
	return 0;
}

void
cf_log_set_stream(FILE *f)
{
	pthread_mutex_lock(&log_lock);
	log_stream = f;
	pthread_mutex_unlock(&log_lock);
}

static FILE *
stream(void)
{
	return log_stream ? log_stream : stderr;
}

/* The length of the valid UTF-8 sequence at s (at most n octets), 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates and beyond U+10FFFF are not UTF-8 */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t
cf_log_json_escape(char *dst, size_t dstlen, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		char esc[8];
		const char *out = esc;
		size_t len = utf8_len(u + i, n - i), outlen;

		if (len == 0) {
			out = "\\ufffd";
			len = 1;
		} else if (u[i] == '"' || u[i] == '\\') {
			snprintf(esc, sizeof(esc), "\\%c", u[i]);
		} else if (u[i] == '\n') {
			out = "\\n";
		} else if (u[i] == '\r') {
			out = "\\r";
		} else if (u[i] == '\t') {
			out = "\\t";
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
		} else {
			out = s + i;
		}
		outlen = out == s + i ? len : strlen(out);
		if (o + outlen + 1 > dstlen)
			break;
		memcpy(dst + o, out, outlen);
		o += outlen;
		i += len;
	}
	if (dstlen > 0)
		dst[o] = '\0';
	return o;
}

/* Writes "key":"s" (JSON-escaped) to f, after a comma. */
static void
json_field(FILE *f, const char *key, const char *s)
{
	size_t n = strlen(s);
	char stackbuf[1024], *buf = 6 * n + 1 <= sizeof(stackbuf) ? stackbuf : malloc(6 * n + 1);

	if (buf == NULL)
		return;
	cf_log_json_escape(buf, 6 * n + 1, s, n);
	fprintf(f, ",\"%s\":\"%s\"", key, buf);
	if (buf != stackbuf)
		free(buf);
}

/*
 * Draws the live line (under log_lock), cut to the terminal's width: a line that wrapped would
 * leave its first row behind at every redraw, as the carriage return goes back one row only.
 */
static void
status_draw(FILE *f)
{
	struct winsize ws;
	int len = (int)strlen(status_line);

	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && len > ws.ws_col - 1)
		len = ws.ws_col - 1;
	fprintf(f, "\r\033[K%.*s", len, status_line);
}

/* Writes one line (under log_lock): the live line, if any, is cleared first and drawn again after. */
static void
log_write(enum cf_log_level level, const struct cf_log_job *job, const char *msg)
{
	char stamp[32], when[48];
	struct timespec ts;
	struct tm tm;
	FILE *f;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when, sizeof(when), "%s.%03ldZ", stamp, ts.tv_nsec / 1000000);
	pthread_mutex_lock(&log_lock);
	f = stream();
	if (status_line[0])
		fputs("\r\033[K", f);
	if (cf_log_get_format() == CF_LOG_JSON) {
		fprintf(f, "{\"time\":\"%s\",\"level\":\"%s\"", when, level_names[level]);
		json_field(f, "message", msg);
		if (job && job->job_id > 0)
			fprintf(f, ",\"job_id\":%" PRId64, job->job_id);
		if (job && job->certificate_id > 0)
			fprintf(f, ",\"certificate_id\":%" PRId64, job->certificate_id);
		if (job && job->names && job->nnames > 0) {
			fputs(",\"names\":[", f);
			for (size_t i = 0; i < job->nnames; i++) {
				size_t n = strlen(job->names[i]);
				char *buf = malloc(6 * n + 1);
				if (buf == NULL)
					break;
				cf_log_json_escape(buf, 6 * n + 1, job->names[i], n);
				fprintf(f, "%s\"%s\"", i ? "," : "", buf);
				free(buf);
			}
			fputc(']', f);
		}
		if (job && job->problem_type)
			json_field(f, "problem_type", job->problem_type);
		if (job && job->detail)
			json_field(f, "detail", job->detail);
		fputs("}\n", f);
	} else {
		fprintf(f, "%s %s: %s\n", when, level_names[level], msg);
	}
	if (status_line[0])
		status_draw(f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}

void
cf_log(enum cf_log_level level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (level > cf_log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_write(level, NULL, line);
}

void
cf_log_job(enum cf_log_level level, const struct cf_log_job *job, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (level > cf_log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_write(level, job, line);
}

void
cf_log_status(const char *line)
{
	FILE *f;

	pthread_mutex_lock(&log_lock);
	f = stream();
	if (line == NULL || line[0] == '\0') {
		if (status_line[0])
			fputs("\r\033[K", f);
		status_line[0] = '\0';
	} else {
		snprintf(status_line, sizeof(status_line), "%s", line);
		status_draw(f);
	}
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}
