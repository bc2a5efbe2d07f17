/* log.h - thread-safe leveled logging to stderr, as text or JSON lines; callers never pass secrets to it. */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cf_log_level {
	CF_LOG_ERROR = 0,
	CF_LOG_WARN,
	CF_LOG_INFO,
	CF_LOG_DEBUG,
};

enum cf_log_format {
	CF_LOG_TEXT = 0,          /* "TIME level: message" (the default) */
	CF_LOG_JSON,              /* one JSON object per line */
};

/* What a log line about one job carries besides its message (JSON fields; the text leaves them out). */
struct cf_log_job {
	int64_t job_id;           /* 0: none */
	int64_t certificate_id;   /* 0: none */
	char *const *names;       /* the job's names, the primary first; NULL: none */
	size_t nnames;
	const char *problem_type; /* the CA's (or certfleet's) problem type, or NULL */
	const char *detail;       /* the problem's detail, or NULL */
};

void cf_log_set_level(enum cf_log_level level);
enum cf_log_level cf_log_get_level(void);
void cf_log_set_format(enum cf_log_format format);
enum cf_log_format cf_log_get_format(void);

/* "text" or "json" into *format; -1 for anything else. */
int cf_log_parse_format(const char *s, enum cf_log_format *format);

/* Where lines go (stderr unless set; for tests). */
void cf_log_set_stream(FILE *f);

void cf_log(enum cf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line about one job: as cf_log in text, with job's fields in JSON (job may be NULL). */
void cf_log_job(enum cf_log_level level, const struct cf_log_job *job, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The live status line of a terminal: drawn in place at the bottom (carriage return, erase to end
 * of line, no newline), and cleared and redrawn around every log line printed meanwhile, under
 * the log's lock. NULL erases it. Only for a terminal: the caller checks isatty.
 */
void cf_log_status(const char *line);

/*
 * Appends s (n octets) to dst (dstlen >= 6 * n + 1) as a JSON string's contents: '"', '\\' and
 * control characters escaped, valid UTF-8 as it is, each octet of invalid UTF-8 as \ufffd.
 * Returns the length written; the output is cut at a whole character when dst is full.
 */
size_t cf_log_json_escape(char *dst, size_t dstlen, const char *s, size_t n);

#define log_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define log_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define log_debug(...) cf_log(CF_LOG_DEBUG, __VA_ARGS__)
#define log_job(level, job, ...) cf_log_job(level, job, __VA_ARGS__)

#endif
