/* test_log.c - log lines as text and as JSON: escaping, job fields, levels, and the live status line around them. */
#include <jansson.h>

#include "check.h"
#include "log.h"

/* Runs fn with the log going to a temporary file; returns what was written (caller frees). */
static char *
capture(void (*fn)(void))
{
	FILE *f = tmpfile();
	char *out = NULL;
	long n;

	if (f == NULL)
		return NULL;
	cf_log_set_stream(f);
	fn();
	cf_log_set_stream(NULL);
	fflush(f);
	n = ftell(f);
	rewind(f);
	if (n >= 0 && (out = calloc(1, (size_t)n + 1)) != NULL && fread(out, 1, (size_t)n, f) != (size_t)n) {
		free(out);
		out = NULL;
	}
	fclose(f);
	return out;
}

static void
test_escape_errors(void)
{
	char small[3], buf[64];

	/* a full buffer cuts at a whole character, never inside an escape or a UTF-8 sequence */
	CHECK(cf_log_json_escape(small, sizeof(small), "a\"b", 3) == 1);
	CHECK_STR(small, "a");
	CHECK(cf_log_json_escape(small, sizeof(small), "\xc3\xa9\xc3\xa9", 4) == 2);
	CHECK_STR(small, "\xc3\xa9");
	CHECK(cf_log_json_escape(buf, sizeof(buf), "", 0) == 0);
	CHECK_STR(buf, "");
	/* truncated, overlong, surrogate and out-of-range sequences: each octet one U+FFFD */
	cf_log_json_escape(buf, sizeof(buf), "x\xc3", 2);
	CHECK_STR(buf, "x\\ufffd");
	cf_log_json_escape(buf, sizeof(buf), "\xc0\xaf", 2);
	CHECK_STR(buf, "\\ufffd\\ufffd");
	cf_log_json_escape(buf, sizeof(buf), "\xed\xa0\x80", 3);
	CHECK_STR(buf, "\\ufffd\\ufffd\\ufffd");
	cf_log_json_escape(buf, sizeof(buf), "\xf4\x90\x80\x80", 4);
	CHECK_STR(buf, "\\ufffd\\ufffd\\ufffd\\ufffd");
	cf_log_json_escape(buf, sizeof(buf), "\xff", 1);
	CHECK_STR(buf, "\\ufffd");
}

static void
test_escape(void)
{
	char buf[128];

	cf_log_json_escape(buf, sizeof(buf), "q\"b\\n\nr\rt\t\x01\x1f\x7f", 13);
	CHECK_STR(buf, "q\\\"b\\\\n\\nr\\rt\\t\\u0001\\u001f\\u007f");
	/* valid UTF-8 passes through: two, three and four octets */
	cf_log_json_escape(buf, sizeof(buf), "\xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x94\x92", 11);
	CHECK_STR(buf, "\xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x94\x92");
	/* an embedded NUL is escaped, not an end */
	cf_log_json_escape(buf, sizeof(buf), "a\0b", 3);
	CHECK_STR(buf, "a\\u0000b");
}

static void
log_text_lines(void)
{
	cf_log_set_format(CF_LOG_TEXT);
	log_info("plain %d", 1);
	log_job(CF_LOG_WARN, &(struct cf_log_job){ .job_id = 7, .problem_type = "t" }, "job %d failed", 7);
	log_debug("not shown at info");
}

static void
test_text(void)
{
	char *out = capture(log_text_lines), *second;

	CHECK(out != NULL);
	if (out == NULL)
		return;
	/* "YYYY-MM-DDTHH:MM:SS.mmmZ level: message", the fields left out */
	CHECK(strlen(out) > 25 && out[4] == '-' && out[10] == 'T' && out[23] == 'Z');
	CHECK(strncmp(out + 24, " info: plain 1\n", 15) == 0);
	second = strchr(out, '\n');
	CHECK(second && strcmp(second + 1 + 24, " warn: job 7 failed\n") == 0);
	CHECK(strstr(out, "debug") == NULL);
	free(out);
}

static char *const names[] = { "a.example", "caf\xc3\xa9.example", "q\"\\.example" };

static void
log_json_lines(void)
{
	cf_log_set_format(CF_LOG_JSON);
	log_job(CF_LOG_INFO, &(struct cf_log_job){ .job_id = 42, .certificate_id = 9, .names = names, .nnames = 3,
		.problem_type = "urn:ietf:params:acme:error:rejectedIdentifier",
		.detail = "line\nbreak \"quoted\" \x01 bad\xff" }, "job %d: \"x\"\n\ty", 42);
	log_error("no job here");
	log_job(CF_LOG_WARN, NULL, "no fields");
	log_debug("not shown");
	cf_log_set_format(CF_LOG_TEXT);
}

static void
test_json(void)
{
	char *out = capture(log_json_lines), *line, *save = NULL;
	int lines = 0;

	CHECK(out != NULL);
	if (out == NULL)
		return;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		CHECK(o != NULL && json_is_object(o));
		if (o == NULL) {
			fprintf(stderr, "  not JSON: %s (%s)\n", line, je.text);
			continue;
		}
		CHECK(json_string_value(json_object_get(o, "time")) != NULL &&
		    strlen(json_string_value(json_object_get(o, "time"))) == 24);
		if (lines == 0) {
			json_t *n = json_object_get(o, "names");
			CHECK_STR(json_string_value(json_object_get(o, "level")), "info");
			CHECK_STR(json_string_value(json_object_get(o, "message")), "job 42: \"x\"\n\ty");
			CHECK(json_integer_value(json_object_get(o, "job_id")) == 42);
			CHECK(json_integer_value(json_object_get(o, "certificate_id")) == 9);
			CHECK(json_array_size(n) == 3);
			CHECK_STR(json_string_value(json_array_get(n, 0)), "a.example");
			CHECK_STR(json_string_value(json_array_get(n, 1)), "caf\xc3\xa9.example");
			CHECK_STR(json_string_value(json_array_get(n, 2)), "q\"\\.example");
			CHECK_STR(json_string_value(json_object_get(o, "problem_type")),
			    "urn:ietf:params:acme:error:rejectedIdentifier");
			CHECK_STR(json_string_value(json_object_get(o, "detail")),
			    "line\nbreak \"quoted\" \x01 bad\xef\xbf\xbd");
		} else {
			CHECK_STR(json_string_value(json_object_get(o, "level")), lines == 1 ? "error" : "warn");
			CHECK(json_object_get(o, "job_id") == NULL && json_object_get(o, "names") == NULL &&
			    json_object_get(o, "problem_type") == NULL);
		}
		json_decref(o);
	}
	CHECK(lines == 3);
	free(out);
}

static void
log_under_status(void)
{
	cf_log_set_format(CF_LOG_TEXT);
	cf_log_status("1 claimed");
	cf_log_status("2 claimed");
	log_warn("between");
	cf_log_status(NULL);
	log_warn("after");
}

static void
test_status(void)
{
	char *out = capture(log_under_status), *w;

	CHECK(out != NULL);
	if (out == NULL)
		return;
	CHECK(strncmp(out, "\r\033[K1 claimed\r\033[K2 claimed\r\033[K", 27) == 0);
	/* the log line, then the live line drawn again below it, then erased for good */
	w = strstr(out, " warn: between\n\r\033[K2 claimed\r\033[K");
	CHECK(w != NULL);
	CHECK(w && strstr(w + 1, " warn: after\n") != NULL);
	/* after the erase, no more carriage returns */
	CHECK(w && strchr(strstr(w, " warn: after"), '\r') == NULL);
	free(out);
}

static void
test_parse_format(void)
{
	enum cf_log_format f = CF_LOG_TEXT;

	CHECK(cf_log_parse_format(NULL, &f) == -1);
	CHECK(cf_log_parse_format("JSON", &f) == -1);
	CHECK(cf_log_parse_format("", &f) == -1);
	CHECK(cf_log_parse_format("json", &f) == 0 && f == CF_LOG_JSON);
	CHECK(cf_log_parse_format("text", &f) == 0 && f == CF_LOG_TEXT);
}

int
main(void)
{
	RUN(test_parse_format);
	RUN(test_escape_errors);
	RUN(test_escape);
	RUN(test_text);
	RUN(test_json);
	RUN(test_status);
	return CHECK_DONE();
}
