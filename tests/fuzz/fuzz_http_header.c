/*
 * fuzz_http_header.c - fuzz target of lib/http.c's response header reading
 * (http_req_parse_header: Replay-Nonce, Location, Content-Type, Link rel="up", Retry-After), the
 * first thing certfleet reads of what a CA or an API sends. Any octets as a header block, cut
 * into lines after each LF as libcurl hands them over. After every line: retry_after_s is -1 or
 * within [0, HTTP_RETRY_AFTER_MAX_S], and every string read is NUL-terminated without CR or LF.
 * A violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_req *req;

static void __attribute__((noreturn))
fail(const char *what, const char *line, size_t n)
{
	fprintf(stderr, "fuzz_http_header: %s after line \"%.*s\"\n", what, (int)n, line);
	abort();
}

static void
check_string(const char *s, const char *line, size_t n)
{
	/* NUL-terminated: strlen reads it whole (ASan catches a missing NUL) */
	if (s != NULL && strpbrk(s, "\r\n") != NULL)
		fail("a header value holds CR or LF", line, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_settings settings = { .timeout_ms = 1000, .connect_timeout_ms = 1000 };
	cf_err err = { { 0 } };
	size_t off = 0;

	if (req == NULL && (req = http_req_new(&settings, "https://ca.example/acme/dir", NULL, NULL,
	    false, &err)) == NULL) {
		fprintf(stderr, "fuzz_http_header: %s\n", err.msg);
		abort();
	}
	/* a fresh response: what the previous input left is forgotten */
	http_req_parse_header(req, "HTTP/1.1 200 OK\r\n", 17);
	while (off < size) {
		const uint8_t *lf = memchr(data + off, '\n', size - off);
		size_t n = lf ? (size_t)(lf - (data + off)) + 1 : size - off;
		/* a copy of exactly the line, so that ASan sees any read past it */
		char *line = malloc(n ? n : 1);

		if (line == NULL)
			return 0;
		memcpy(line, data + off, n);
		http_req_parse_header(req, line, n);
		if (req->retry_after_s != -1 &&
		    (req->retry_after_s < 0 || req->retry_after_s > HTTP_RETRY_AFTER_MAX_S))
			fail("retry_after_s out of range", line, n);
		check_string(req->nonce, line, n);
		check_string(req->location, line, n);
		check_string(req->content_type, line, n);
		check_string(req->link_up, line, n);
		if (req->nlink_alternates > HTTP_LINK_ALTERNATES_MAX)
			fail("more alternate links than kept", line, n);
		for (size_t i = 0; i < req->nlink_alternates; i++)
			check_string(req->link_alternates[i], line, n);
		free(line);
		off += n;
	}
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_http_header"
#include "replay.h"
