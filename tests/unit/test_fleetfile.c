/* test_fleetfile.c - unit tests of orchestrator/fleetfile.c: bad input first, then the shapes. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fleetfile.h"

/* True when text is refused as bad input (1), f left empty, and the message names needle. */
static bool
refuses(const char *text, const char *needle)
{
	struct fleet f = { 0 };
	cf_err e = { "" };
	int r = fleet_parse("f.json", text, strlen(text), &f, &e);

	if (r != 1 || f.n != 0 || f.certs != NULL) {
		fprintf(stderr, "  %s: returned %d with %zu certificates\n", text, r, f.n);
		fleet_free(&f);
		return false;
	}
	return check_says(e.msg, "f.json") && check_says(e.msg, needle);
}

static void
test_not_the_shape(void)
{
	CHECK(refuses("", "not JSON"));
	CHECK(refuses("{\"certificates\": [", "not JSON"));
	CHECK(refuses("[]", "not a JSON object"));
	CHECK(refuses("{}", "no \"certificates\" member"));
	CHECK(refuses("{\"certificates\": {}}", "\"certificates\" is not an array"));
	CHECK(refuses("{\"certificates\": [], \"x\": 1}", "top level: unknown member \"x\""));
	CHECK(refuses("{\"certificates\": [], \"certificates\": []}", "duplicate"));
	CHECK(refuses("{\"value\": {\"certificates\": []}, \"kind\": 1}", "terraform output: unknown member \"kind\""));
	CHECK(refuses("{\"certfleet\": {\"type\": \"x\"}}", "\"certfleet\" is not a terraform output"));
	CHECK(refuses("{\"other\": {\"value\": {\"certificates\": []}}}", "unknown member \"other\""));
	CHECK(refuses("{\"certificates\": [], \"a\\nb\": 1}", "unknown member \"a?b\""));
}

static void
test_bad_certificates(void)
{
	CHECK(refuses("{\"certificates\": [[]]}", "certificates[0]: not an object"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"]}, {}]}", "certificates[1].names: missing"));
	CHECK(refuses("{\"certificates\": [{\"names\": []}]}", "certificates[0].names: empty"));
	CHECK(refuses("{\"certificates\": [{\"names\": \"a.example\"}]}", "certificates[0].names: not an array"));
	CHECK(refuses("{\"certificates\": [{\"names\": [1]}]}", "certificates[0].names[0]: not a name"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\", \"a..example\"]}]}", "certificates[0].names[1]"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a\\u0000.example\"]}]}", "not JSON"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"], \"keytype\": \"x\"}]}",
	    "certificates[0]: unknown member \"keytype\""));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"], \"key_type\": null}]}",
	    "certificates[0].key_type: not a string"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"], \"key_type\": \"dsa\\n\"}]}",
	    "certificates[0].key_type: contains a control character"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"], \"key_type\": \"dsa\"}]}",
	    "certificates[0].key_type: unknown key type \"dsa\""));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"], \"provider\": \"\"}]}",
	    "certificates[0].provider: empty"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"], \"profile\": \"bad name!\"}]}",
	    "certificates[0].profile"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\"], \"ca\": \"\"}]}", "certificates[0].ca: empty"));
	CHECK(refuses("{\"certificates\": [{\"names\": [\"a.example\", \"b.example\"]}, {\"names\": [\"c.example\"]}, "
	    "{\"names\": [\"B.example.\", \"a.example\", \"a.example\"]}]}",
	    "certificates[0] and certificates[2] have the same names (a.example,b.example)"));
}

static void
test_own_shape(void)
{
	const char *text = "{\"certificates\": [{\"names\": [\"WWW.Example.com\", \"example.com\", \"www.example.com\"], "
	    "\"key_type\": \"rsa-2048\", \"provider\": \"dns-prod\", \"profile\": \"\", \"ca\": \"https://ca.example/dir\"}, "
	    "{\"names\": [\"*.apps.example.com\"]}]}";
	struct fleet f = { 0 };
	cf_err e = { "" };

	CHECK(fleet_parse("f.json", text, strlen(text), &f, &e) == 0);
	CHECK(f.n == 2);
	if (f.n == 2) {
		CHECK(f.certs[0].nnames == 2);
		CHECK_STR(f.certs[0].names[0], "www.example.com");
		CHECK_STR(f.certs[0].names_key, "example.com,www.example.com");
		CHECK_STR(f.certs[0].key_type, "rsa-2048");
		CHECK_STR(f.certs[0].provider, "dns-prod");
		CHECK_STR(f.certs[0].profile, "");
		CHECK_STR(f.certs[0].ca, "https://ca.example/dir");
		CHECK(f.certs[1].index == 1);
		CHECK_STR(f.certs[1].names_key, "*.apps.example.com");
		CHECK(f.certs[1].key_type == NULL && f.certs[1].provider == NULL && f.certs[1].profile == NULL &&
		    f.certs[1].ca == NULL);
	}
	fleet_free(&f);
	fleet_free(&f); /* a freed fleet is empty */
	fleet_free(NULL);
}

static void
test_terraform_shapes(void)
{
	const char *one = "{\"sensitive\": false, \"type\": [\"object\", {}], \"value\": "
	    "{\"certificates\": [{\"names\": [\"a.example\"]}]}}";
	const char *all = "{\"zone\": {\"value\": \"x\", \"type\": \"string\", \"sensitive\": false}, "
	    "\"certfleet\": {\"value\": {\"certificates\": [{\"names\": [\"b.example\"]}, {\"names\": [\"c.example\"]}]}, "
	    "\"type\": \"object\", \"sensitive\": true}}";
	struct fleet f = { 0 };
	cf_err e = { "" };

	CHECK(fleet_parse("f.json", one, strlen(one), &f, &e) == 0);
	CHECK(f.n == 1 && strcmp(f.certs[0].names_key, "a.example") == 0);
	fleet_free(&f);
	CHECK(fleet_parse("f.json", all, strlen(all), &f, &e) == 0);
	CHECK(f.n == 2 && strcmp(f.certs[1].names_key, "c.example") == 0);
	fleet_free(&f);
}

static void
test_read(void)
{
	struct fleet f = { 0 };
	cf_err e = { "" };

	CHECK(fleet_read("/nonexistent/fleet.json", &f, &e) == 1);
	CHECK(check_says(e.msg, "cannot open /nonexistent/fleet.json"));
}

int
main(void)
{
	RUN(test_not_the_shape);
	RUN(test_bad_certificates);
	RUN(test_own_shape);
	RUN(test_terraform_shapes);
	RUN(test_read);
	return CHECK_DONE();
}
