/* test_txtzone.c - unit tests of lib/txtzone.c: escapes and 255-octet strings, read back by txtdata. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "txtdata.h"
#include "txtzone.h"

/* The presentation of the n octets of v (malloc'd), or NULL. */
static char *
quote(const char *v, size_t n)
{
	cf_buf b = { 0 };
	cf_err e = { "" };

	if (txtzone_quote(&b, (const unsigned char *)v, n, &e) != 0) {
		fprintf(stderr, "  txtzone_quote: %s\n", e.msg);
		cf_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* True when text reads back (RFC 1035, as the Cloudflare provider parses it) as the n octets of v. */
static bool
reads_back(const char *text, const char *v, size_t n)
{
	cf_err e = { "" };
	size_t len = 0;
	char *got = txtdata_unquote(text, strlen(text), TXTDATA_RFC1035, &len, &e);
	bool ok = got != NULL && len == n && memcmp(got, v, n) == 0;

	if (got == NULL)
		fprintf(stderr, "  txtdata_unquote(%s): %s\n", text, e.msg);
	free(got);
	return ok;
}

/* The number of character-strings in text: quotes not escaped, halved. */
static int
strings_in(const char *text)
{
	int q = 0;

	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			q++;
	}
	return q / 2;
}

static void
test_empty(void)
{
	char *t = quote("", 0);

	CHECK_STR(t, "\"\"");
	free(t);
}

static void
test_plain(void)
{
	const char *v = "pebble.letsencrypt.org; accounturi=http://localhost:14000/my-account/1; policy=wildcard";
	char *t = quote(v, strlen(v));
	cf_buf want = { 0 };

	CHECK(cf_buf_printf(&want, "\"%s\"", v) == 0);
	CHECK_STR(t, want.data);
	CHECK(t != NULL && reads_back(t, v, strlen(v)));
	cf_buf_free(&want);
	free(t);
}

static void
test_quote_and_backslash(void)
{
	char *t = quote("a\"b\\c", 5);

	CHECK_STR(t, "\"a\\\"b\\\\c\"");
	CHECK(t != NULL && reads_back(t, "a\"b\\c", 5));
	free(t);
}

static void
test_non_printable(void)
{
	/* a non-ASCII octet (UTF-8 of e-acute), a tab, a NUL and DEL */
	const char v[] = { 'x', (char)0xc3, (char)0xa9, '\t', '\0', 0x7f, 'y' };
	char *t = quote(v, sizeof(v));

	CHECK_STR(t, "\"x\\195\\169\\009\\000\\127y\"");
	CHECK(t != NULL && reads_back(t, v, sizeof(v)));
	free(t);
}

static void
test_exactly_255(void)
{
	char v[255];
	char *t;

	memset(v, 'a', sizeof(v));
	t = quote(v, sizeof(v));
	CHECK(t != NULL && strlen(t) == 257);
	CHECK(t != NULL && strings_in(t) == 1);
	CHECK(t != NULL && reads_back(t, v, sizeof(v)));
	free(t);
}

static void
test_256_splits(void)
{
	char v[256];
	char *t;

	memset(v, 'a', sizeof(v));
	v[255] = 'b';
	t = quote(v, sizeof(v));
	CHECK(t != NULL && strings_in(t) == 2);
	/* the second string holds the 256th octet alone */
	CHECK(t != NULL && strcmp(t + strlen(t) - 5, "\" \"b\"") == 0);
	CHECK(t != NULL && reads_back(t, v, sizeof(v)));
	free(t);
}

static void
test_escapes_do_not_count(void)
{
	/* 255 quotes: each written as two octets, still one character-string of 255 octets */
	char v[511];
	char *t;

	memset(v, '"', 255);
	t = quote(v, 255);
	CHECK(t != NULL && strings_in(t) == 1);
	CHECK(t != NULL && strlen(t) == 2 + 2 * 255);
	CHECK(t != NULL && reads_back(t, v, 255));
	free(t);
	/* 511 octets: 255 + 255 + 1 */
	memset(v, 0xff, sizeof(v));
	t = quote(v, sizeof(v));
	CHECK(t != NULL && strings_in(t) == 3);
	CHECK(t != NULL && reads_back(t, v, sizeof(v)));
	free(t);
}

int
main(void)
{
	RUN(test_empty);
	RUN(test_plain);
	RUN(test_quote_and_backslash);
	RUN(test_non_printable);
	RUN(test_exactly_255);
	RUN(test_256_splits);
	RUN(test_escapes_do_not_count);
	return CHECK_DONE();
}
