/*
 * fuzz_txtdata.c - fuzz target of providers/txtdata.c, which reads the TXT data DNS provider APIs
 * return (txtdata_unquote, in both dialects) and writes the values certfleet publishes
 * (txtdata_quote). Any octets as an API's text: whatever unquotes to a value that may be
 * published must quote to text that unquotes back to the same octets in every dialect and that
 * txtdata_equal finds equal. Any octets as a value: quote, then unquote, gives it back. A
 * difference aborts. Any octets as a record of a zone file (lib/txtzone.c): printable ASCII that
 * unquotes (RFC 1035) to the same octets, in strings of at most 255 octets.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txtdata.h"
#include "txtzone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum txtdata_dialect dialects[] = { TXTDATA_RFC1035, TXTDATA_ROUTE53 };

static void __attribute__((noreturn))
fail(const char *what, const char *text, size_t n)
{
	fprintf(stderr, "fuzz_txtdata: %s: \"%.*s\"\n", what, (int)n, text);
	abort();
}

/* value (txtdata_value_ok) quoted, then unquoted in every dialect: the same octets. */
static void
check_round_trip(const char *value)
{
	cf_buf b = { 0 };
	cf_err err = { { 0 } };
	size_t len, n = strlen(value);
	char *back;

	if (txtdata_quote(&b, value, &err) != 0)
		fail("txtdata_quote refused a value txtdata_value_ok accepts", value, n);
	for (size_t k = 0; k < sizeof(dialects) / sizeof(dialects[0]); k++) {
		if ((back = txtdata_unquote(b.data, b.len, dialects[k], &len, &err)) == NULL)
			fail("the quoted text does not unquote", b.data, b.len);
		if (len != n || memcmp(back, value, n) != 0)
			fail("quote then unquote changed the value", b.data, b.len);
		if (!txtdata_equal(b.data, b.len, dialects[k], value))
			fail("txtdata_equal differs from txtdata_unquote", b.data, b.len);
		free(back);
	}
	cf_buf_free(&b);
}

/* the n octets of data in zone-file presentation: printable, and read back as themselves */
static void
check_zone(const uint8_t *data, size_t n)
{
	cf_buf b = { 0 };
	cf_err err = { { 0 } };
	size_t len;
	char *back;

	if (txtzone_quote(&b, data, n, &err) != 0)
		fail("txtzone_quote failed", (const char *)data, n);
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || (unsigned char)b.data[i] > 0x7e)
			fail("the zone form is not printable ASCII", b.data, b.len);
	/* txtdata_unquote refuses a string longer than 255 octets */
	if ((back = txtdata_unquote(b.data, b.len, TXTDATA_RFC1035, &len, &err)) == NULL)
		fail("the zone form does not unquote", b.data, b.len);
	if (len != n || memcmp(back, data, n) != 0)
		fail("the zone form unquotes to other octets", b.data, b.len);
	free(back);
	cf_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char *value, *copy;
	size_t len;

	for (size_t k = 0; k < sizeof(dialects) / sizeof(dialects[0]); k++) {
		cf_err err = { { 0 } };

		if ((value = txtdata_unquote(text, size, dialects[k], &len, &err)) == NULL) {
			if (err.msg[0] == '\0')
				fail("refused without saying why", text, size);
			continue;
		}
		if (value[len] != '\0')
			fail("the value is not NUL-terminated", text, size);
		if (memchr(value, '\0', len) == NULL && txtdata_value_ok(value)) {
			if (!txtdata_equal(text, size, dialects[k], value))
				fail("txtdata_equal differs from txtdata_unquote", text, size);
			check_round_trip(value);
		}
		free(value);
	}
	check_zone(data, size);
	/* the input itself as a value to publish */
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (txtdata_value_ok(copy))
		check_round_trip(copy);
	free(copy);
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_txtdata"
#include "replay.h"
