/*
 * fuzz_dnsname.c - fuzz target of lib/dnsname.c's normalizer (dnsname_normalize), which reads
 * the names operators type. Any octets as a name. Whatever it accepts: the result is lowercase
 * LDH labels of 1 to 63 octets (a leftmost "*" only), at most 253 octets, no trailing dot;
 * normalizing the result gives the result again; every A-label of it decodes with libidn2 to a
 * U-label that libidn2 (IDNA2008, non-transitional) encodes back to the same A-label; and a plain
 * ASCII input without A-labels comes out as itself, lower case, without its trailing dot.
 * A difference aborts.
 */
#include <idn2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn))
fail(const char *what, const char *in, const char *out)
{
	fprintf(stderr, "fuzz_dnsname: %s: \"%s\" -> \"%s\"\n", what, in, out);
	abort();
}

static bool
ascii_plain(const char *s)
{
	for (size_t i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] >= 0x80 ||
		    (s[i + 1] != '\0' && s[i + 2] != '\0' && s[i + 2] == '-' && s[i + 3] == '-'))
			return false;
	return true;
}

/* The form of a normalized name, checked without certfleet's code. */
static void
check_form(const char *in, const char *out)
{
	const char *p = out;
	size_t n = strlen(out), labels = 0;

	if (n == 0 || n > 253 || out[n - 1] == '.')
		fail("bad length or trailing dot", in, out);
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		if (len == 0 || len > 63 || p[0] == '-' || p[len - 1] == '-')
			fail("bad label", in, out);
		for (size_t i = 0; i < len; i++)
			if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
				fail("a label holds something other than lowercase LDH", in, out);
		if (len > 4 && strncmp(p, "xn--", 4) == 0) {
			char label[64], *u = NULL, *a = NULL;

			memcpy(label, p, len);
			label[len] = '\0';
			if (idn2_to_unicode_8z8z(label, &u, 0) != IDN2_OK ||
			    idn2_to_ascii_8z(u, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK ||
			    strcmp(a, label) != 0)
				fail("an A-label libidn2 does not encode back to itself", in, out);
			idn2_free(u);
			idn2_free(a);
		}
		labels++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (labels < 2 || strspn(p, "0123456789") == strlen(p))
		fail("one label, or an all-numeric top label", in, out);
	if (dnsname_is_wildcard(out) != (strncmp(out, "*.", 2) == 0))
		fail("dnsname_is_wildcard differs", in, out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[DNSNAME_MAX], again[DNSNAME_MAX];
	cf_err err = { { 0 } };
	char *in;

	if ((in = malloc(size + 1)) == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (dnsname_normalize(in, out, &err) != 0) {
		if (err.msg[0] == '\0' || out[0] != '\0')
			fail("refused without saying why, or with an output", in, out);
		goto done;
	}
	check_form(in, out);
	if (dnsname_normalize(out, again, &err) != 0 || strcmp(again, out) != 0)
		fail("normalize is not idempotent", in, out);
	if (ascii_plain(in)) {
		size_t n = strlen(in);

		if (n > 0 && in[n - 1] == '.')
			n--;
		if (strlen(out) != n || strncasecmp(in, out, n) != 0)
			fail("a plain ASCII name changed beyond case and trailing dot", in, out);
	}
done:
	free(in);
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_dnsname"
#include "replay.h"
