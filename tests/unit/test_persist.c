/* test_persist.c - unit tests of lib/persist.c: rejections first, then the draft's vectors. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "persist.h"

/* draft-ietf-acme-dns-persist-02 section 10.2 */
#define TP "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define ACCT "https://ca.example/acct/123"
#define PREFIX "https://ca.example/account-hash/"
#define HASH_EXAMPLE "5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"
#define HASH_STAR "NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug"

/* True when persist_record_value(p) fails with a message containing needle. */
static bool
value_rejects(const struct persist_params *p, const char *needle)
{
	cf_err e = { "" };
	char *v = persist_record_value(p, &e);

	if (v != NULL) {
		fprintf(stderr, "  accepted: \"%s\"\n", v);
		free(v);
		return false;
	}
	return check_says(e.msg, needle);
}

/* True when persist_record_value(p) gives want. */
static bool
value_gives(const struct persist_params *p, const char *want)
{
	cf_err e = { "" };
	char *v = persist_record_value(p, &e);
	bool ok = v != NULL && strcmp(v, want) == 0;

	if (!ok)
		fprintf(stderr, "  got \"%s\" (%s), want \"%s\"\n", v ? v : "(null)", e.msg, want);
	free(v);
	return ok;
}

/* True when the parser rejects value with a message containing needle and a zeroed result. */
static bool
parse_rejects(const char *value, const char *needle)
{
	struct persist_parsed p, zero;
	cf_err e = { "" };

	memset(&zero, 0, sizeof(zero));
	if (persist_record_parse(value, &p, &e) != -1) {
		fprintf(stderr, "  parsed \"%s\"\n", value);
		return false;
	}
	if (memcmp(&p, &zero, sizeof(p)) != 0) {
		fprintf(stderr, "  result not cleared for \"%s\"\n", value);
		return false;
	}
	return check_says(e.msg, needle);
}

static bool
parse_ok(const char *value, struct persist_parsed *p)
{
	cf_err e = { "" };

	if (persist_record_parse(value, p, &e) == 0)
		return true;
	fprintf(stderr, "  rejected \"%s\": %s\n", value, e.msg);
	return false;
}

static struct persist_params
draft01(void)
{
	struct persist_params p = {
		.variant = PERSIST_DRAFT01,
		.issuer = "pebble.letsencrypt.org",
		.account_url = "https://localhost:14000/my-account/1",
	};
	return p;
}

static struct persist_params
draft02(void)
{
	struct persist_params p = {
		.variant = PERSIST_DRAFT02,
		.issuer = "authority.example",
		.account_url = ACCT,
		.hash_prefix = PREFIX,
		.thumbprint = TP,
		.hash_domain = "example.com",
	};
	return p;
}

static void
test_record_name_errors(void)
{
	char out[300], small[10], l63[64], name[300];
	cf_err e;

	CHECK(persist_record_name(NULL, out, sizeof(out), &e) == -1);
	CHECK(check_says(e.msg, "no name given"));
	CHECK(persist_record_name("example.com", NULL, 0, &e) == -1);
	CHECK(check_says(e.msg, "no output buffer"));
	CHECK(persist_record_name("Example.COM", out, sizeof(out), &e) == -1);
	CHECK(check_says(e.msg, "not normalized (expected \"example.com\")"));
	CHECK(out[0] == '\0');
	CHECK(persist_record_name("example.com.", out, sizeof(out), &e) == -1);
	CHECK(persist_record_name("a..example.com", out, sizeof(out), &e) == -1);
	CHECK(check_says(e.msg, "empty label"));
	CHECK(persist_record_name("a\x01.example.com", out, sizeof(out), &e) == -1);
	CHECK(check_says(e.msg, "control character \\x01"));
	CHECK(persist_record_name("example.com", small, sizeof(small), &e) == -1);
	CHECK(check_says(e.msg, "needs 32 octets, buffer has 10"));
	/* a valid 253-octet name leaves no room for "_validation-persist." */
	memset(l63, 'a', 63);
	l63[63] = '\0';
	snprintf(name, sizeof(name), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	CHECK(persist_record_name(name, out, sizeof(out), &e) == -1);
	CHECK(check_says(e.msg, "would be 273 octets (max 253)"));
}

static void
test_record_name(void)
{
	char out[300];
	cf_err e;

	CHECK(persist_record_name("example.com", out, sizeof(out), &e) == 0);
	CHECK_STR(out, "_validation-persist.example.com");
	CHECK(persist_record_name("*.example.com", out, sizeof(out), &e) == 0);
	CHECK_STR(out, "_validation-persist.example.com");
	CHECK(persist_record_name("*.www.example.com", out, sizeof(out), &e) == 0);
	CHECK_STR(out, "_validation-persist.www.example.com");
	CHECK(persist_record_name("xn--bcher-kva.example", out, sizeof(out), &e) == 0);
	CHECK_STR(out, "_validation-persist.xn--bcher-kva.example");
	/* exactly big enough */
	CHECK(persist_record_name("example.com", out, 32, &e) == 0);
	CHECK_STR(out, "_validation-persist.example.com");
}

static void
test_value_errors(void)
{
	struct persist_params p;
	cf_err e;

	CHECK(persist_record_value(NULL, &e) == NULL);
	CHECK(check_says(e.msg, "no parameters"));

	p = draft01();
	p.issuer = NULL;
	CHECK(value_rejects(&p, "issuer domain name \"\" is not a valid domain name"));
	p.issuer = "ca example";
	CHECK(value_rejects(&p, "issuer domain name \"ca example\" is not"));
	p.issuer = "ca..example";
	CHECK(value_rejects(&p, "is not a valid domain name"));
	p.issuer = "ca.example;";
	CHECK(value_rejects(&p, "is not a valid domain name"));
	p.issuer = "-ca.example";
	CHECK(value_rejects(&p, "is not a valid domain name"));

	p = draft01();
	p.account_url = NULL;
	CHECK(value_rejects(&p, "account URL is empty"));
	p.account_url = "";
	CHECK(value_rejects(&p, "account URL is empty"));
	p.account_url = "https://ca.example/acct/1 2";
	CHECK(value_rejects(&p, "account URL \"https://ca.example/acct/1 2\": character ' ' at "
	    "offset 25 is not allowed"));
	p.account_url = "https://ca.example/acct;1";
	CHECK(value_rejects(&p, "character ';' at offset 23 is not allowed"));
	p.account_url = "https://ca.example/acct/\x01";
	CHECK(value_rejects(&p, "character '\\x01'"));
	p.account_url = "https://ca.example/\xc3\xa9";
	CHECK(value_rejects(&p, "character '\\xc3'"));

	p = draft01();
	p.persist_until = -1;
	CHECK(value_rejects(&p, "persistUntil -1 is negative"));
	p = draft01();
	p.variant = 3;
	CHECK(value_rejects(&p, "unknown draft variant 3"));
	p.variant = 0;
	CHECK(value_rejects(&p, "unknown draft variant 0"));

	p = draft02();
	p.hash_prefix = NULL;
	CHECK(value_rejects(&p, "accountHashPrefix is empty"));
	p.hash_prefix = "https://ca.example/account hash/";
	CHECK(value_rejects(&p, "accountHashPrefix \"https://ca.example/account hash/\""));
	p = draft02();
	p.thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X";
	CHECK(value_rejects(&p, "is not 43 base64url characters"));
	p.thumbprint = "NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs";
	CHECK(value_rejects(&p, "is not 43 base64url characters"));
	p.thumbprint = NULL;
	CHECK(value_rejects(&p, "thumbprint \"\" is not 43"));
	p = draft02();
	p.hash_domain = NULL;
	CHECK(value_rejects(&p, "no name given"));
	p.hash_domain = "*.example.com";
	CHECK(value_rejects(&p, "is a wildcard; use the base name"));
	p.hash_domain = "Example.com";
	CHECK(value_rejects(&p, "not normalized (expected \"example.com\")"));
	p.hash_domain = "**";
	CHECK(value_rejects(&p, "wildcard must be the whole leftmost label"));
	p = draft02();
	p.account_url = "https://ca.example/acct/1 2";
	CHECK(value_rejects(&p, "not printable US-ASCII at offset 25"));
	p.account_url = "";
	CHECK(value_rejects(&p, "account URL is empty"));
}

static void
test_value_draft01(void)
{
	struct persist_params p = draft01();

	CHECK(value_gives(&p, "pebble.letsencrypt.org; "
	    "accounturi=https://localhost:14000/my-account/1"));
	p.wildcard = true;
	CHECK(value_gives(&p, "pebble.letsencrypt.org; "
	    "accounturi=https://localhost:14000/my-account/1; policy=wildcard"));
	p.persist_until = 1721952000;
	CHECK(value_gives(&p, "pebble.letsencrypt.org; "
	    "accounturi=https://localhost:14000/my-account/1; policy=wildcard; "
	    "persistUntil=1721952000"));
	p.wildcard = false;
	CHECK(value_gives(&p, "pebble.letsencrypt.org; "
	    "accounturi=https://localhost:14000/my-account/1; persistUntil=1721952000"));
	/* the -02 fields are not used by -01 */
	p = draft01();
	p.thumbprint = "bad";
	p.hash_prefix = "bad prefix";
	CHECK(value_gives(&p, "pebble.letsencrypt.org; "
	    "accounturi=https://localhost:14000/my-account/1"));
	/* an issuer is written as given: Pebble compares it byte for byte */
	p.issuer = "Pebble.LetsEncrypt.org";
	CHECK(value_gives(&p, "Pebble.LetsEncrypt.org; "
	    "accounturi=https://localhost:14000/my-account/1"));
}

static void
test_account_hash_errors(void)
{
	char out[44];
	cf_err e;

	CHECK(persist_account_hash("example.com", TP, ACCT, NULL, &e) == -1);
	CHECK(check_says(e.msg, "no output buffer"));
	CHECK(persist_account_hash(NULL, TP, ACCT, out, &e) == -1);
	CHECK(out[0] == '\0');
	CHECK(persist_account_hash("", TP, ACCT, out, &e) == -1);
	CHECK(check_says(e.msg, "empty name"));
	CHECK(persist_account_hash("example.com.", TP, ACCT, out, &e) == -1);
	CHECK(check_says(e.msg, "not normalized"));
	CHECK(persist_account_hash("*.example.com", TP, ACCT, out, &e) == -1);
	CHECK(check_says(e.msg, "is a wildcard"));
	CHECK(persist_account_hash("example.com", TP "=", ACCT, out, &e) == -1);
	CHECK(check_says(e.msg, "is not 43 base64url characters"));
	CHECK(persist_account_hash("example.com", "", ACCT, out, &e) == -1);
	CHECK(persist_account_hash("example.com", TP, NULL, out, &e) == -1);
	CHECK(check_says(e.msg, "account URL is empty"));
	CHECK(persist_account_hash("example.com", TP, "https://ca.example/\tx", out, &e) == -1);
	CHECK(check_says(e.msg, "account URL \"https://ca.example/\\tx\""));
}

static void
test_account_hash_vectors(void)
{
	char out[44];
	cf_err e;

	CHECK(persist_account_hash("example.com", TP, ACCT, out, &e) == 0);
	CHECK_STR(out, HASH_EXAMPLE);
	CHECK(persist_account_hash("*", TP, ACCT, out, &e) == 0);
	CHECK_STR(out, HASH_STAR);
	/* ';' is legal in a URL and the URL is only hashed under -02 */
	CHECK(persist_account_hash("example.com", TP, "https://ca.example/a;b", out, &e) == 0);
	CHECK(strlen(out) == 43);
}

static void
test_value_draft02(void)
{
	struct persist_params p = draft02();

	/* section 10.2, Figure 5 (the three character-strings joined) */
	CHECK(value_gives(&p, "authority.example; accounturi=" PREFIX "sha-256/" HASH_EXAMPLE));
	/* section 10.6, Figure 10 */
	p.wildcard = true;
	p.persist_until = 1721952000;
	CHECK(value_gives(&p, "authority.example; accounturi=" PREFIX "sha-256/" HASH_EXAMPLE
	    "; policy=wildcard; persistUntil=1721952000"));
	/* the domain opt-out */
	p = draft02();
	p.hash_domain = "*";
	CHECK(value_gives(&p, "authority.example; accounturi=" PREFIX "sha-256/" HASH_STAR));
	/* the prefix is used as given: the draft puts nothing between it and "sha-256" */
	p.hash_prefix = "urn:example:acct-hash:";
	CHECK(value_gives(&p, "authority.example; accounturi=urn:example:acct-hash:sha-256/"
	    HASH_STAR));
}

static void
test_parse_errors(void)
{
	struct persist_parsed p;
	cf_err e;

	CHECK(persist_record_parse(NULL, &p, &e) == -1);
	CHECK(check_says(e.msg, "no value"));
	CHECK(persist_record_parse("ca.example; accounturi=x", NULL, &e) == -1);
	CHECK(check_says(e.msg, "no output"));

	CHECK(parse_rejects("", "missing issuer-domain-name"));
	CHECK(parse_rejects("   ", "missing issuer-domain-name"));
	CHECK(parse_rejects("; accounturi=https://ca.example/acct/1", "missing issuer-domain-name"));
	CHECK(parse_rejects("ca example; accounturi=x", "issuer-domain-name \"ca example\" is not"));
	CHECK(parse_rejects("ca.example.; accounturi=x", "is not a valid domain name"));

	CHECK(parse_rejects("ca.example; accounturi=a; accounturi=b", "duplicate tag \"accounturi\""));
	CHECK(parse_rejects("ca.example; accounturi=a; AccountURI=b", "duplicate tag \"accounturi\""));
	CHECK(parse_rejects("ca.example; accounturi=a; policy=wildcard; POLICY=x",
	    "duplicate tag \"policy\""));
	CHECK(parse_rejects("ca.example; accounturi=a; foo=1; Foo=2", "duplicate tag \"foo\""));

	CHECK(parse_rejects("ca.example;; accounturi=a", "empty parameter or trailing ';'"));
	CHECK(parse_rejects("ca.example; ; accounturi=a", "empty parameter or trailing ';'"));
	CHECK(parse_rejects("ca.example; accounturi=a;", "empty parameter or trailing ';'"));
	CHECK(parse_rejects("ca.example; accounturi=a; \t", "empty parameter or trailing ';'"));
	CHECK(parse_rejects("ca.example;", "empty parameter or trailing ';'"));

	CHECK(parse_rejects("ca.example; accounturi", "parameter \"accounturi\" is not tag=value"));
	CHECK(parse_rejects("ca.example; accounturi=a; policy", "parameter \"policy\" is not"));
	CHECK(parse_rejects("ca.example; =a; accounturi=b", "parameter \"=a\" has an empty tag"));
	CHECK(parse_rejects("ca.example; account_uri=a; accounturi=b", "has an invalid tag"));
	CHECK(parse_rejects("ca.example; account uri=a", "has an invalid tag"));

	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=soon",
	    "persistUntil \"soon\" is not a base-10 integer"));
	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=", "persistUntil \"\" is not"));
	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=1.5", "is not a base-10"));
	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=1e9", "is not a base-10"));
	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=0x10", "is not a base-10"));
	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=+", "is not a base-10"));
	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=9223372036854775808",
	    "is not a base-10"));
	CHECK(parse_rejects("ca.example; accounturi=a; persistUntil=-9223372036854775809",
	    "is not a base-10"));

	CHECK(parse_rejects("ca.example; accounturi=a b", "character ' ' is not allowed"));
	CHECK(parse_rejects("ca.example; accounturi=a\x01", "character '\\x01' is not allowed"));
	CHECK(parse_rejects("ca.example; accounturi=a\x7f", "character '\\x7f' is not allowed"));
	CHECK(parse_rejects("ca.example; accounturi=\xc3\xa9", "character '\\xc3' is not allowed"));
	CHECK(parse_rejects("ca.example; accounturi=a; foo=b\"c d", "character ' ' is not"));

	CHECK(parse_rejects("ca.example; accounturi=", "empty accounturi"));
	CHECK(parse_rejects("ca.example; accounturi= \t", "empty accounturi"));
	CHECK(parse_rejects("ca.example", "missing mandatory accounturi"));
	CHECK(parse_rejects("ca.example; policy=wildcard", "missing mandatory accounturi"));

	{
		char big[5000], acct[600];

		memset(acct, 'a', 512);
		acct[512] = '\0';
		snprintf(big, sizeof(big), "ca.example; accounturi=%s", acct);
		CHECK(parse_rejects(big, "accounturi is 512 octets (max 511)"));
		memset(big, 'a', 4097);
		big[4097] = '\0';
		CHECK(parse_rejects(big, "4097 octets (max 4096)"));
	}
}

static void
test_parse(void)
{
	struct persist_parsed p;

	CHECK(parse_ok("pebble.letsencrypt.org; accounturi=https://localhost:14000/my-account/1",
	    &p));
	CHECK_STR(p.issuer, "pebble.letsencrypt.org");
	CHECK_STR(p.accounturi, "https://localhost:14000/my-account/1");
	CHECK(!p.policy_wildcard);
	CHECK(!p.has_persist_until);

	/* tags in any case; policy value in any case */
	CHECK(parse_ok("ca.example; ACCOUNTURI=https://ca.example/acct/1; Policy=WILDCARD; "
	    "PERSISTUNTIL=1721952000", &p));
	CHECK_STR(p.accounturi, "https://ca.example/acct/1");
	CHECK(p.policy_wildcard);
	CHECK(p.has_persist_until);
	CHECK(p.persist_until == 1721952000);

	/* space and tab around every part; no space after ';' */
	CHECK(parse_ok(" \tca.example ;accounturi = https://ca.example/acct/1\t;\tpolicy=wildcard ",
	    &p));
	CHECK_STR(p.issuer, "ca.example");
	CHECK_STR(p.accounturi, "https://ca.example/acct/1");
	CHECK(p.policy_wildcard);

	/* unknown tags are ignored, even with an empty value; '=' may appear in a value */
	CHECK(parse_ok("ca.example; foo=bar; accounturi=https://ca.example/a?b=c; x-y=; z9=1=2", &p));
	CHECK_STR(p.accounturi, "https://ca.example/a?b=c");
	CHECK(!p.policy_wildcard);

	/* a policy other than wildcard counts as absent */
	CHECK(parse_ok("ca.example; accounturi=a; policy=other", &p));
	CHECK(!p.policy_wildcard);
	CHECK(parse_ok("ca.example; accounturi=a; policy=", &p));
	CHECK(!p.policy_wildcard);
	CHECK(parse_ok("ca.example; accounturi=a; policy=wildcards", &p));
	CHECK(!p.policy_wildcard);

	/* persistUntil as Go's strconv.ParseInt reads it (Pebble) */
	CHECK(parse_ok("ca.example; accounturi=a; persistUntil=0", &p));
	CHECK(p.has_persist_until && p.persist_until == 0);
	CHECK(parse_ok("ca.example; accounturi=a; persistUntil=-1", &p));
	CHECK(p.persist_until == -1);
	CHECK(parse_ok("ca.example; accounturi=a; persistUntil=+0017", &p));
	CHECK(p.persist_until == 17);
	CHECK(parse_ok("ca.example; accounturi=a; persistUntil=9223372036854775807", &p));
	CHECK(p.persist_until == INT64_MAX);
	CHECK(parse_ok("ca.example; accounturi=a; persistUntil=-9223372036854775808", &p));
	CHECK(p.persist_until == INT64_MIN);

	/* the issuer keeps its case (the CA compares it exactly) */
	CHECK(parse_ok("CA.Example; accounturi=a", &p));
	CHECK_STR(p.issuer, "CA.Example");
}

static void
test_parse_round_trip(void)
{
	struct persist_params in = draft02();
	struct persist_parsed p;
	cf_err e;
	char *v;

	in.wildcard = true;
	in.persist_until = 1721952000;
	v = persist_record_value(&in, &e);
	CHECK(v != NULL);
	CHECK(v != NULL && parse_ok(v, &p));
	CHECK_STR(p.issuer, "authority.example");
	CHECK_STR(p.accounturi, PREFIX "sha-256/" HASH_EXAMPLE);
	CHECK(p.policy_wildcard);
	CHECK(p.has_persist_until && p.persist_until == 1721952000);
	free(v);

	in = draft01();
	v = persist_record_value(&in, &e);
	CHECK(v != NULL && parse_ok(v, &p));
	CHECK_STR(p.accounturi, "https://localhost:14000/my-account/1");
	CHECK(!p.policy_wildcard && !p.has_persist_until);
	free(v);
}

static void
test_until_parse_errors(void)
{
	static const char *const bad[] = { "", "0", "-5", "+5", "12a", "2027-13-01", "2027-02-30", "2027-1-01",
		"2027-01-01T00:00:00", "2027-01-01 00:00:00Z", "2027-01-01T25:00:00Z", "10000-01-01",
		"253402300800", "99999999999999999999", "tomorrow" };
	int64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cf_err e = { "" };
		v = 7;
		if (persist_until_parse("CERTFLEET_PERSIST_UNTIL", bad[i], &v, &e) != -1) {
			fprintf(stderr, "  accepted \"%s\" as %lld\n", bad[i], (long long)v);
			CHECK(false);
			continue;
		}
		CHECK(check_says(e.msg, "CERTFLEET_PERSIST_UNTIL"));
		CHECK(v == 7);
	}
}

static void
test_until_parse(void)
{
	cf_err e = { "" };
	int64_t v = 0;

	CHECK(persist_until_parse("x", "1893456000", &v, &e) == 0 && v == 1893456000);
	CHECK(persist_until_parse("x", "2030-01-01", &v, &e) == 0 && v == 1893456000);
	CHECK(persist_until_parse("x", "2030-01-01T01:02:03Z", &v, &e) == 0 && v == 1893456000 + 3723);
	CHECK(persist_until_parse("x", "2028-02-29", &v, &e) == 0 && v == 1835395200);
	CHECK(persist_until_parse("x", "253402300799", &v, &e) == 0 && v == INT64_C(253402300799));
}

static void
test_until_lapse(void)
{
	CHECK(persist_until_lapse(0, 1000, 100) == PERSIST_LASTS);
	CHECK(persist_until_lapse(1101, 1000, 100) == PERSIST_LASTS);
	CHECK(persist_until_lapse(1100, 1000, 100) == PERSIST_LAPSING);
	CHECK(persist_until_lapse(1001, 1000, 100) == PERSIST_LAPSING);
	CHECK(persist_until_lapse(1000, 1000, 100) == PERSIST_LAPSED);
	CHECK(persist_until_lapse(1, 1000, 100) == PERSIST_LAPSED);
}

int
main(void)
{
	RUN(test_record_name_errors);
	RUN(test_record_name);
	RUN(test_value_errors);
	RUN(test_value_draft01);
	RUN(test_account_hash_errors);
	RUN(test_account_hash_vectors);
	RUN(test_value_draft02);
	RUN(test_parse_errors);
	RUN(test_parse);
	RUN(test_parse_round_trip);
	RUN(test_until_parse_errors);
	RUN(test_until_parse);
	RUN(test_until_lapse);
	return CHECK_DONE();
}
