/* test_dnsname.c - unit tests of lib/dnsname.c: rejections first, then normalization. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "dnsname.h"

/* True when in is rejected, out is left empty and the message contains needle. */
static bool
rejects(const char *in, const char *needle)
{
	char out[DNSNAME_MAX] = "garbage";
	cf_err e = { "" };

	if (dnsname_normalize(in, out, &e) != -1) {
		fprintf(stderr, "  accepted \"%s\" as \"%s\"\n", in ? in : "(null)", out);
		return false;
	}
	if (out[0] != '\0' || strstr(e.msg, needle) == NULL || !check_printable(e.msg)) {
		fprintf(stderr, "  message \"%s\" lacks \"%s\" (or out not empty)\n", e.msg, needle);
		return false;
	}
	return true;
}

/* True when in normalizes to want. */
static bool
gives(const char *in, const char *want)
{
	char out[DNSNAME_MAX];
	cf_err e = { "" };

	if (dnsname_normalize(in, out, &e) != 0) {
		fprintf(stderr, "  rejected \"%s\": %s\n", in, e.msg);
		return false;
	}
	if (strcmp(out, want) != 0) {
		fprintf(stderr, "  \"%s\" gave \"%s\", want \"%s\"\n", in, out, want);
		return false;
	}
	return true;
}

/* Fills buf with n copies of c and a NUL. */
static char *
fill(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static void
test_null_and_empty(void)
{
	char out[DNSNAME_MAX];
	cf_err e;

	CHECK(rejects(NULL, "empty name"));
	CHECK(rejects("", "empty name"));
	CHECK(dnsname_normalize("example.com", NULL, &e) == -1);
	CHECK(strstr(e.msg, "no output buffer") != NULL);
	CHECK(dnsname_normalize("", out, NULL) == -1); /* a NULL err is allowed */
}

static void
test_empty_labels(void)
{
	cf_err e;
	char out[DNSNAME_MAX];

	CHECK(dnsname_normalize("foo..example.com", out, &e) == -1);
	CHECK_STR(e.msg, "invalid name \"foo..example.com\": empty label");
	CHECK(rejects(".example.com", "empty label"));
	CHECK(rejects(".", "empty label"));
	CHECK(rejects("..", "empty label"));
	CHECK(rejects("example.com..", "empty label")); /* only one trailing dot is removed */
	CHECK(rejects("*..example.com", "empty label"));
	CHECK(rejects("b\xc3\xbc" "cher..example", "empty label"));
}

static void
test_label_length(void)
{
	char label[80], name[128];
	cf_err e;
	char out[DNSNAME_MAX];

	snprintf(name, sizeof(name), "%s.example.com", fill(label, 'a', 64));
	CHECK(dnsname_normalize(name, out, &e) == -1);
	CHECK(strstr(e.msg, "label \"aaaaaaaaaaaaaaaaaaaa\xe2\x80\xa6\" is 64 octets (max 63)") !=
	    NULL);
	snprintf(name, sizeof(name), "www.%s.com", fill(label, 'b', 64));
	CHECK(rejects(name, "is 64 octets (max 63)"));

	snprintf(name, sizeof(name), "%s.example.com", fill(label, 'a', 63));
	CHECK(gives(name, name));
}

static void
test_name_length(void)
{
	char l63[64], l62[63], l61[62], l60[61], l59[60], name[300];

	fill(l63, 'a', 63);
	fill(l62, 'c', 62);
	fill(l61, 'b', 61);
	fill(l60, 'd', 60);
	fill(l59, 'e', 59);

	/* 63+1+63+1+63+1+62 = 254 */
	snprintf(name, sizeof(name), "%s.%s.%s.%s", l63, l63, l63, l62);
	CHECK(strlen(name) == 254);
	CHECK(rejects(name, "name is 254 octets (max 253)"));
	/* the trailing dot does not count; 255 with it */
	snprintf(name, sizeof(name), "%s.%s.%s.%s.", l63, l63, l63, l62);
	CHECK(rejects(name, "name is 254 octets (max 253)"));
	/* "*." counts: 2+63+1+63+1+63+1+60 = 254 */
	snprintf(name, sizeof(name), "*.%s.%s.%s.%s", l63, l63, l63, l60);
	CHECK(rejects(name, "name is 254 octets (max 253)"));

	/* 63+1+63+1+63+1+61 = 253 */
	snprintf(name, sizeof(name), "%s.%s.%s.%s", l63, l63, l63, l61);
	CHECK(strlen(name) == 253);
	CHECK(gives(name, name));
	snprintf(name, sizeof(name), "*.%s.%s.%s.%s", l63, l63, l63, l59);
	CHECK(strlen(name) == 253);
	CHECK(gives(name, name));

	/* absurdly long input is refused before any work */
	{
		char big[2000];

		fill(big, 'x', sizeof(big) - 1);
		CHECK(rejects(big, "octets (max 253)"));
	}
}

static void
test_wildcard_position(void)
{
	cf_err e;
	char out[DNSNAME_MAX];

	CHECK(dnsname_normalize("a.*.example.com", out, &e) == -1);
	CHECK_STR(e.msg, "invalid name \"a.*.example.com\": wildcard must be the leftmost label");
	CHECK(rejects("example.com.*", "wildcard must be the leftmost label"));
	CHECK(rejects("*a.example.com", "wildcard must be the whole leftmost label \"*\""));
	CHECK(rejects("a*.example.com", "wildcard must be the whole leftmost label \"*\""));
	CHECK(rejects("**.example.com", "wildcard must be the whole leftmost label \"*\""));
	CHECK(rejects("*.*.example.com", "wildcard must be the leftmost label"));
	CHECK(rejects("*", "at least two labels after \"*\""));
	CHECK(rejects("*.", "at least two labels after \"*\""));
	CHECK(rejects("*.com", "at least two labels after \"*\""));
	CHECK(rejects("*.com.", "at least two labels after \"*\""));
	CHECK(rejects("*.192.168.1", "all-numeric"));
}

static void
test_space_and_control(void)
{
	cf_err e;
	char out[DNSNAME_MAX];

	CHECK(rejects("a b.example.com", "contains a space"));
	CHECK(rejects(" example.com", "contains a space"));
	CHECK(rejects("example.com ", "contains a space"));
	CHECK(dnsname_normalize("a\tb.example.com", out, &e) == -1);
	CHECK_STR(e.msg, "invalid name \"a\\tb.example.com\": contains control character \\t");
	CHECK(dnsname_normalize("a\x01" "b.example.com", out, &e) == -1);
	CHECK_STR(e.msg, "invalid name \"a\\x01b.example.com\": contains control character \\x01");
	CHECK(rejects("a\x7f" "b.example.com", "contains control character \\x7f"));
	CHECK(rejects("example.com\n", "contains control character \\n"));
	CHECK(rejects("example.com\r", "contains control character \\r"));
	CHECK(rejects("\x1b[31mexample.com", "contains control character \\x1b"));
	/* a quote or backslash in the input is escaped, not left to end the quoted string */
	CHECK(dnsname_normalize("a\"b.example.com", out, &e) == -1);
	CHECK(strstr(e.msg, "invalid name \"a\\\"b.example.com\"") != NULL);
}

static void
test_bad_characters(void)
{
	CHECK(rejects("a_b.example.com", "label \"a_b\" contains '_'"));
	CHECK(rejects("_acme-challenge.example.com", "contains '_'"));
	CHECK(rejects("ex!ample.com", "contains '!'"));
	CHECK(rejects("exa/mple.com", "contains '/'"));
	CHECK(rejects("-a.example.com", "label \"-a\" begins with a hyphen"));
	CHECK(rejects("a-.example.com", "label \"a-\" ends with a hyphen"));
	CHECK(rejects("example.-", "begins with a hyphen"));
}

static void
test_ip_and_single_label(void)
{
	CHECK(rejects("192.168.1.1", "top-level label \"1\" is all-numeric"));
	CHECK(rejects("10.0.0.1.", "all-numeric"));
	CHECK(rejects("example.123", "all-numeric"));
	CHECK(rejects("localhost", "at least two labels"));
	CHECK(rejects("com.", "at least two labels"));
	CHECK(rejects("[::1]", "contains '['"));
	CHECK(rejects("::1", "contains ':'"));
	CHECK(gives("123.example", "123.example"));
	CHECK(gives("1.2.3.example", "1.2.3.example"));
	CHECK(gives("example.c0m", "example.c0m"));
}

static void
test_idn_errors(void)
{
	cf_err e;
	char out[DNSNAME_MAX];

	/* U+2603 SNOWMAN: disallowed in IDNA2008 (no transitional fallback to xn--n3h) */
	CHECK(rejects("\xe2\x98\x83.example", "not a valid IDNA2008 name"));
	/* U+200D ZERO WIDTH JOINER: CONTEXTJ fails; transitional would silently drop it */
	CHECK(rejects("a\xe2\x80\x8d" "b.example", "not a valid IDNA2008 name"));
	/* invalid UTF-8, shown escaped */
	CHECK(dnsname_normalize("\xff.example", out, &e) == -1);
	CHECK_STR(e.msg, "invalid name \"\\xff.example\": not a valid IDNA2008 name: "
	    "the name is not valid UTF-8");
	/* an A-label that is not valid Punycode, and a reserved "ab--" label */
	CHECK(rejects("xn--zz.example", "not a valid IDNA2008 name"));
	CHECK(rejects("xn--.example", "label \"xn--\" ends with a hyphen"));
	CHECK(rejects("xn--a.example", "not a valid IDNA2008 name"));
	/* an A-label whose U-label holds U+00A0, alone and beside a U-label libidn2 converts */
	CHECK(rejects("xn--bchaaaaaaacomaaeraaafa-kva.example", "A-label is not in normal form"));
	CHECK(rejects("xn--bchaaaaaaacomaaeraaafa-kva.b\xc3\xbc" "cher.example", "A-label is not in normal form"));
	CHECK(rejects("ab--cd.example", "not a valid IDNA2008 name"));
	/* a U-label whose A-label is longer than 63 octets */
	{
		char name[200] = "\xc3\xbc"; /* u-umlaut then 62 ASCII letters */

		memset(name + 2, 'a', 62);
		snprintf(name + 64, sizeof(name) - 64, ".example");
		CHECK(rejects(name, "longer than 63 octets after IDNA conversion"));
	}
	/* characters outside LDH that libidn2 lets through are caught afterwards */
	CHECK(rejects("b\xc3\xbc" "cher_x.example", "contains '_'"));
}

static void
test_normalize(void)
{
	CHECK(gives("example.com", "example.com"));
	CHECK(gives("EXAMPLE.COM", "example.com"));
	CHECK(gives("WwW.Example.Com", "www.example.com"));
	CHECK(gives("example.com.", "example.com"));
	CHECK(gives("a-b.example.com", "a-b.example.com"));
	CHECK(gives("*.example.com", "*.example.com"));
	CHECK(gives("*.EXAMPLE.com.", "*.example.com"));
	CHECK(gives("b\xc3\xbc" "cher.example", "xn--bcher-kva.example"));
	CHECK(gives("B\xc3\x9c" "CHER.example", "xn--bcher-kva.example"));
	CHECK(gives("*.b\xc3\xbc" "cher.example", "*.xn--bcher-kva.example"));
	CHECK(gives("xn--bcher-kva.example", "xn--bcher-kva.example"));
	CHECK(gives("XN--BCHER-KVA.example", "xn--bcher-kva.example"));
	/* non-transitional: "ss" is not substituted for sharp s */
	CHECK(gives("stra\xc3\x9f" "e.de", "xn--strae-oqa.de"));
	/* U+3002 IDEOGRAPHIC FULL STOP is a label separator */
	CHECK(gives("b\xc3\xbc" "cher\xe3\x80\x82" "example", "xn--bcher-kva.example"));
	/*
	 * The draft's example (-02 section 9.2) is inconsistent: "üÑICODE-example.com." case-folds
	 * to "üñicode-...", not to the "ünicode-..." it shows, and its result
	 * "xn--nicode-example-9jb.com" decodes to "énicode-example.com". Checked here: what each
	 * of those inputs really gives.
	 */
	CHECK(gives("\xc3\xbcNICODE-example.com.", "xn--nicode-example-fsb.com"));
	CHECK(gives("\xc3\x89NICODE-example.com.", "xn--nicode-example-9jb.com"));
	CHECK(gives("\xc3\xbc\xc3\x91ICODE-example.com.", "xn--icode-example-hkb8n.com"));
}

static void
test_wildcard_helpers(void)
{
	CHECK(dnsname_is_wildcard("*.example.com"));
	CHECK(!dnsname_is_wildcard("example.com"));
	CHECK(!dnsname_is_wildcard("*"));
	CHECK(!dnsname_is_wildcard(NULL));
	CHECK_STR(dnsname_base("*.example.com"), "example.com");
	CHECK_STR(dnsname_base("www.example.com"), "www.example.com");
	CHECK(dnsname_base(NULL) == NULL);
}

int
main(void)
{
	RUN(test_null_and_empty);
	RUN(test_empty_labels);
	RUN(test_label_length);
	RUN(test_name_length);
	RUN(test_wildcard_position);
	RUN(test_space_and_control);
	RUN(test_bad_characters);
	RUN(test_ip_and_single_label);
	RUN(test_idn_errors);
	RUN(test_normalize);
	RUN(test_wildcard_helpers);
	return CHECK_DONE();
}
