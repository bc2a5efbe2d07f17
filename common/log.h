/* log.h - thread-safe leveled logging to stderr; callers never pass secrets to it. */
#ifndef CF_LOG_H
#define CF_LOG_H

enum cf_log_level {
	CF_LOG_ERROR = 0,
	CF_LOG_WARN,
	CF_LOG_INFO,
	CF_LOG_DEBUG,
};

void cf_log_set_level(enum cf_log_level level);
enum cf_log_level cf_log_get_level(void);
void cf_log(enum cf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define log_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define log_debug(...) cf_log(CF_LOG_DEBUG, __VA_ARGS__)

#endif
