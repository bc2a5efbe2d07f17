/*
 * test_records.c - unit tests of orchestrator/records.c: the record form a CA's directory says it
 * speaks (errors first, then -01, then -02 with the draft's vectors), and the three formats.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "records.h"
#include "txtdata.h"

/* draft-ietf-acme-dns-persist-02 section 10.2 */
#define TP "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
#define ACCT "https://ca.example/acct/123"
#define PREFIX "https://ca.example/account-hash/"
#define HASH_EXAMPLE "5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"

/* A CA as records_load leaves it: the account's fields, the directory not read yet. */
static void
ca_init(struct records_ca *ca, const char *account_url, const char *issuer)
{
	memset(ca, 0, sizeof(*ca));
	ca->account_id = 7;
	ca->directory_url = strdup("https://ca.example/dir");
	ca->account_url = strdup(account_url);
	ca->thumbprint = strdup(TP);
	ca->issuer = strdup(issuer);
}

static int
read_dir(struct records_ca *ca, const char *doc, cf_err *e)
{
	return records_ca_read_directory(ca, doc, strlen(doc), e);
}

/* The value of one entry for ca at base (wildcard or not). malloc'd, NULL on failure. */
static char *
value_of(const struct records_ca *ca, const char *base, bool wildcard, int64_t until, char *fqdn, size_t len)
{
	int64_t id = 1;
	struct records_entry e = { .ca = ca, .base = (char *)base, .wildcard = wildcard, .cert_ids = &id, .ncert = 1 };
	cf_err err = { "" };
	char *v = NULL;

	if (records_entry_compose(&e, until, fqdn, len, &v, &err) != 0)
		fprintf(stderr, "  compose: %s\n", err.msg);
	return v;
}

static void
test_format_parse(void)
{
	enum records_format f = RECORDS_TSV;
	cf_err e = { "" };

	CHECK(records_format_parse("yaml", &f, &e) == -1 && check_says(e.msg, "--format \"yaml\"") && f == RECORDS_TSV);
	CHECK(records_format_parse("ZONE", &f, &e) == -1);
	CHECK(records_format_parse("zone", &f, &e) == 0 && f == RECORDS_ZONE);
	CHECK(records_format_parse("tsv", &f, &e) == 0 && f == RECORDS_TSV);
	CHECK(records_format_parse("json", &f, &e) == 0 && f == RECORDS_JSON);
}

static void
test_directory_errors(void)
{
	struct records_ca ca;
	cf_err e = { "" };

	ca_init(&ca, ACCT, "ca.example");
	CHECK(read_dir(&ca, "", &e) == -1 && check_says(e.msg, "https://ca.example/dir"));
	CHECK(read_dir(&ca, "[1]", &e) == -1 && check_says(e.msg, "not a JSON object"));
	CHECK(read_dir(&ca, "{\"meta\":", &e) == -1);
	CHECK(ca.variant == 0 && ca.hash_prefix == NULL);
	CHECK_STR(ca.issuer, "ca.example");
	records_ca_clear(&ca);
	records_ca_clear(NULL);
}

static void
test_draft01(void)
{
	struct records_ca ca;
	cf_err e = { "" };
	char fqdn[300], *v;

	/* no meta at all: -01, the account's issuer */
	ca_init(&ca, ACCT, "ca.example");
	CHECK(read_dir(&ca, "{\"newOrder\":\"https://ca.example/new-order\"}", &e) == 0);
	CHECK(ca.variant == PERSIST_DRAFT01 && ca.hash_prefix == NULL);
	v = value_of(&ca, "example.com", false, 0, fqdn, sizeof(fqdn));
	CHECK_STR(v, "ca.example; accounturi=" ACCT);
	CHECK_STR(fqdn, "_validation-persist.example.com");
	free(v);
	v = value_of(&ca, "example.com", true, 1893456000, fqdn, sizeof(fqdn));
	CHECK_STR(v, "ca.example; accounturi=" ACCT "; policy=wildcard; persistUntil=1893456000");
	free(v);
	/* the CA lists the account's issuer second: kept */
	CHECK(read_dir(&ca, "{\"meta\":{\"caaIdentities\":[\"other.example\",\"ca.example\"]}}", &e) == 0);
	CHECK_STR(ca.issuer, "ca.example");
	/* the CA no longer lists it: its first, as run picks from the challenge */
	CHECK(read_dir(&ca, "{\"meta\":{\"caaIdentities\":[\"new.example\"]}}", &e) == 0);
	CHECK_STR(ca.issuer, "new.example");
	records_ca_clear(&ca);
}

static void
test_draft02(void)
{
	struct records_ca ca;
	cf_err e = { "" };
	char fqdn[300], *v;

	ca_init(&ca, ACCT, "ca.example");
	CHECK(read_dir(&ca, "{\"meta\":{\"accountHashPrefix\":\"" PREFIX "\","
	    "\"issuerDomainNames\":[\"ca.example\"],\"caaIdentities\":[\"x.example\"]}}", &e) == 0);
	CHECK(ca.variant == PERSIST_DRAFT02);
	CHECK_STR(ca.hash_prefix, PREFIX);
	CHECK_STR(ca.issuer, "ca.example");
	v = value_of(&ca, "example.com", false, 0, fqdn, sizeof(fqdn));
	CHECK_STR(v, "ca.example; accounturi=" PREFIX "sha-256/" HASH_EXAMPLE);
	free(v);
	/* a directory read again with -01 drops the prefix */
	CHECK(read_dir(&ca, "{}", &e) == 0 && ca.variant == PERSIST_DRAFT01 && ca.hash_prefix == NULL);
	records_ca_clear(&ca);
}

/* The zone output of one entry whose account URL makes the value longer than 255 octets. */
static void
test_write_zone_splits(void)
{
	char url[400], fqdn[300];
	struct records_ca ca;
	int64_t ids[] = { 3, 4 };
	struct records_entry e = { .ca = &ca, .base = "example.com", .wildcard = true, .cert_ids = ids, .ncert = 2 };
	cf_buf out = { 0 };
	cf_err err = { "" };
	char *want, *line, *rdata, *back;
	size_t blen = 0;

	snprintf(url, sizeof(url), "https://ca.example/acct/%0300d", 5);
	ca_init(&ca, url, "ca.example");
	CHECK(read_dir(&ca, "{}", &err) == 0);
	want = value_of(&ca, "example.com", true, 0, fqdn, sizeof(fqdn));
	CHECK(want != NULL && strlen(want) > 255);
	CHECK(records_write(&out, RECORDS_ZONE, &e, 1, 0, &err) == 0);
	line = out.data ? strchr(out.data, '\n') : NULL;
	CHECK(out.data != NULL && strncmp(out.data, "; account 7 https://ca.example/acct/", 36) == 0);
	CHECK(line != NULL && strncmp(line + 1, "_validation-persist.example.com. IN TXT \"", 41) == 0);
	rdata = line ? strstr(line, "IN TXT ") : NULL;
	CHECK(rdata != NULL && strstr(rdata, "\" \"") != NULL);
	if (rdata != NULL && want != NULL) {
		rdata += 7;
		back = txtdata_unquote(rdata, strcspn(rdata, "\n"), TXTDATA_RFC1035, &blen, &err);
		CHECK(back != NULL && blen == strlen(want) && memcmp(back, want, blen) == 0);
		free(back);
	}
	free(want);
	cf_buf_free(&out);
	records_ca_clear(&ca);
}

static void
test_write_tsv_json(void)
{
	struct records_ca ca;
	int64_t ids_a[] = { 1 }, ids_w[] = { 2, 5 };
	struct records_entry e[] = {
		{ .ca = &ca, .base = "a.example", .wildcard = false, .cert_ids = ids_a, .ncert = 1 },
		{ .ca = &ca, .base = "w.example", .wildcard = true, .cert_ids = ids_w, .ncert = 2 },
	};
	cf_buf out = { 0 };
	cf_err err = { "" };
	json_t *doc, *w;

	ca_init(&ca, ACCT, "ca.example");
	CHECK(read_dir(&ca, "{}", &err) == 0);
	CHECK(records_write(&out, RECORDS_TSV, e, 2, 1893456000, &err) == 0);
	CHECK_STR(out.data, "_validation-persist.a.example\tca.example; accounturi=" ACCT "; persistUntil=1893456000\n"
	    "_validation-persist.w.example\tca.example; accounturi=" ACCT "; policy=wildcard; persistUntil=1893456000\n");
	cf_buf_reset(&out);
	CHECK(records_write(&out, RECORDS_JSON, e, 2, 0, &err) == 0);
	doc = out.data ? json_loads(out.data, 0, NULL) : NULL;
	CHECK(json_is_array(doc) && json_array_size(doc) == 2);
	w = json_array_get(doc, 1);
	CHECK_STR(json_string_value(json_object_get(w, "fqdn")), "_validation-persist.w.example");
	CHECK_STR(json_string_value(json_object_get(w, "value")), "ca.example; accounturi=" ACCT "; policy=wildcard");
	CHECK_STR(json_string_value(json_object_get(w, "issuer")), "ca.example");
	CHECK_STR(json_string_value(json_object_get(w, "account")), ACCT);
	CHECK_STR(json_string_value(json_object_get(w, "directory")), "https://ca.example/dir");
	CHECK(json_integer_value(json_object_get(w, "account_id")) == 7);
	CHECK(json_integer_value(json_object_get(w, "draft")) == 1);
	CHECK(json_is_true(json_object_get(w, "wildcard")));
	CHECK(json_is_null(json_object_get(w, "persist_until")));
	CHECK(json_array_size(json_object_get(w, "certificates")) == 2 &&
	    json_integer_value(json_array_get(json_object_get(w, "certificates"), 1)) == 5);
	json_decref(doc);
	/* no records: an empty array, and an empty zone */
	cf_buf_reset(&out);
	CHECK(records_write(&out, RECORDS_JSON, NULL, 0, 0, &err) == 0);
	CHECK_STR(out.data, "[]\n");
	cf_buf_reset(&out);
	CHECK(records_write(&out, RECORDS_ZONE, NULL, 0, 0, &err) == 0 && out.len == 0);
	cf_buf_free(&out);
	records_ca_clear(&ca);
}

int
main(void)
{
	RUN(test_format_parse);
	RUN(test_directory_errors);
	RUN(test_draft01);
	RUN(test_draft02);
	RUN(test_write_zone_splits);
	RUN(test_write_tsv_json);
	return CHECK_DONE();
}
