/*
 * fuzz_provider_json.c - fuzz target of the readers of the DNS provider APIs' JSON answers:
 * cloudflare.c's judge of an API v4 answer (cloudflare_judge) and its batch planning from a
 * record listing (cloudflare_plan, fed as cfl_keep feeds it), and powerdns.c's planning from a
 * zone's "rrsets" (powerdns_plan). Any octets as an answer. The judge's message is NUL-terminated,
 * printable and within its buffer. A plan, when made, does what it promises: after an ensure
 * every value is present and enabled (already, or by a post or REPLACE that holds it), after a
 * remove none is left (every record holding one is deleted, every REPLACE is free of them), and
 * nothing else is deleted. A violation aborts.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_text.h"

#include "cloudflare.h"
#include "powerdns.h"
#include "txtdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N1 "_validation-persist.a.example.com"
#define N2 "_validation-persist.b.example.com"
#define V1 "letsencrypt.org; accounturi=https://ca.example/acct/1"
#define V2 "A\"b\\c"
#define V3 "x" /* with V1, one name with two values */

static struct provider_record recs[] = { { N1, V1 }, { N2, V2 }, { N1, V3 }, { N1, V1 } };
#define NREC (sizeof(recs) / sizeof(recs[0]))

static void __attribute__((noreturn))
fail(const char *what)
{
	fprintf(stderr, "fuzz_provider_json: %s\n", what);
	abort();
}

static bool
holds(const char *content, const char *value)
{
	return content != NULL && txtdata_equal(content, strlen(content), TXTDATA_RFC1035, value);
}

static void
check_judge(const json_t *root)
{
	static const long statuses[] = { 0, 200, 201, 400, 401, 403, 404, 429, 500, 503 };
	char why[96];

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		enum cloudflare_verdict v;
		size_t n;

		memset(why, 'x', sizeof(why));
		v = cloudflare_judge(statuses[i], root, why, 64); /* the rest of why is a canary */
		if (v != CLOUDFLARE_OK && v != CLOUDFLARE_CREDENTIALS && v != CLOUDFLARE_RETRYABLE &&
		    v != CLOUDFLARE_FAILED)
			fail("cloudflare_judge: no verdict");
		if ((n = strnlen(why, 64)) == 64)
			fail("cloudflare_judge: message not NUL-terminated within its buffer");
		for (size_t k = 64; k < sizeof(why); k++)
			if (why[k] != 'x')
				fail("cloudflare_judge: wrote past its buffer");
		for (size_t k = 0; k < n; k++)
			if (!printable(why, n, k))
				fail("cloudflare_judge: message not printable");
		if (v == CLOUDFLARE_OK && (statuses[i] < 200 || statuses[i] > 299))
			fail("cloudflare_judge: OK for a status that is not 2xx");
	}
}

/* The records of a list answer's "result" that the provider keeps (as cfl_keep does). */
static size_t
cloudflare_existing_of(const json_t *result, struct cloudflare_existing *ex, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; json_is_array(result) && i < json_array_size(result) && n < max; i++) {
		const json_t *r = json_array_get(result, i);
		const char *id = json_string_value(json_object_get(r, "id"));
		const char *name = json_string_value(json_object_get(r, "name"));
		const char *type = json_string_value(json_object_get(r, "type"));
		const char *content = json_string_value(json_object_get(r, "content"));

		if (id == NULL || name == NULL || content == NULL || type == NULL ||
		    strcmp(type, "TXT") != 0 || (strcasecmp(name, N1) != 0 && strcasecmp(name, N2) != 0))
			continue;
		ex[n].id = (char *)id;
		ex[n].name = provider_zone_name(name);
		ex[n].content = (char *)content;
		if (ex[n].name == NULL)
			fail("out of memory");
		n++;
	}
	return n;
}

static void
check_cloudflare(const json_t *root)
{
	struct cloudflare_existing ex[64];
	size_t nex = cloudflare_existing_of(json_object_get(root, "result"), ex, 64);
	cf_err err = { { 0 } };
	json_t *ops;

	if ((ops = cloudflare_plan(PROVIDER_ENSURE, recs, NREC, ex, nex, 60, &err)) == NULL)
		fail("cloudflare_plan (ensure) failed on values that can be published");
	for (size_t i = 0; i < NREC; i++) {
		bool there = false;

		for (size_t k = 0; k < nex && !there; k++)
			there = strcasecmp(ex[k].name, recs[i].fqdn) == 0 && holds(ex[k].content, recs[i].value);
		for (size_t k = 0; k < json_array_size(ops) && !there; k++) {
			const json_t *op = json_array_get(ops, k);

			there = strcmp(json_string_value(json_object_get(op, "name")), recs[i].fqdn) == 0 &&
			    holds(json_string_value(json_object_get(op, "content")), recs[i].value);
		}
		if (!there)
			fail("cloudflare_plan (ensure) leaves a value out");
	}
	json_decref(ops);

	if ((ops = cloudflare_plan(PROVIDER_REMOVE, recs, NREC, ex, nex, 60, &err)) == NULL)
		fail("cloudflare_plan (remove) failed");
	for (size_t k = 0; k < nex; k++) {
		bool ours = false, deleted = false, twice = false;

		/* an id listed twice (the API would not) is not judged */
		for (size_t j = 0; j < nex && !twice; j++)
			twice = j != k && strcmp(ex[j].id, ex[k].id) == 0;
		if (twice)
			continue;
		for (size_t i = 0; i < NREC && !ours; i++)
			ours = strcasecmp(ex[k].name, recs[i].fqdn) == 0 && holds(ex[k].content, recs[i].value);
		for (size_t j = 0; j < json_array_size(ops) && !deleted; j++)
			deleted = strcmp(json_string_value(json_object_get(json_array_get(ops, j), "id")),
			    ex[k].id) == 0;
		if (ours != deleted)
			fail(ours ? "cloudflare_plan (remove) keeps one of our records" :
			    "cloudflare_plan (remove) deletes a record that is not ours");
	}
	json_decref(ops);
	for (size_t k = 0; k < nex; k++)
		free(ex[k].name);
}

/* The first TXT RRset at fqdn among rrsets, as PowerDNS names them (any case, trailing dot). */
static const json_t *
rrset_at(const json_t *rrsets, const char *fqdn)
{
	size_t n = strlen(fqdn);

	for (size_t i = 0; i < json_array_size(rrsets); i++) {
		const json_t *rr = json_array_get(rrsets, i);
		const char *name = json_string_value(json_object_get(rr, "name"));
		const char *type = json_string_value(json_object_get(rr, "type"));

		if (name && type && strcmp(type, "TXT") == 0 && strncasecmp(name, fqdn, n) == 0 &&
		    (name[n] == '\0' || (name[n] == '.' && name[n + 1] == '\0')))
			return rr;
	}
	return NULL;
}

/* The change for fqdn among changes, or NULL. */
static const json_t *
change_at(const json_t *changes, const char *fqdn)
{
	size_t n = strlen(fqdn);

	for (size_t i = 0; i < json_array_size(changes); i++) {
		const json_t *c = json_array_get(changes, i);
		const char *name = json_string_value(json_object_get(c, "name"));

		if (name == NULL)
			fail("powerdns_plan: a change without a name");
		if (strncmp(name, fqdn, n) == 0 && strcmp(name + n, ".") == 0)
			return c;
	}
	return NULL;
}

/* Whether records (PowerDNS's) hold value, enabled. */
static bool
records_hold(const json_t *records, const char *value)
{
	for (size_t i = 0; i < json_array_size(records); i++) {
		const json_t *r = json_array_get(records, i);

		if (!json_is_true(json_object_get(r, "disabled")) &&
		    holds(json_string_value(json_object_get(r, "content")), value))
			return true;
	}
	return false;
}

static bool
records_hold_any(const json_t *records, const char *value)
{
	for (size_t i = 0; i < json_array_size(records); i++)
		if (holds(json_string_value(json_object_get(json_array_get(records, i), "content")), value))
			return true;
	return false;
}

static void
check_powerdns(const json_t *root)
{
	const json_t *rrsets = json_object_get(root, "rrsets");
	cf_err err = { { 0 } };
	json_t *changes;

	if (!json_is_array(rrsets))
		return; /* pdns_got refuses such an answer before planning */
	if ((changes = powerdns_plan(PROVIDER_ENSURE, recs, NREC, rrsets, 300, &err)) != NULL) {
		for (size_t i = 0; i < NREC; i++) {
			const json_t *c = change_at(changes, recs[i].fqdn);
			const json_t *records = c ? json_object_get(c, "records") :
			    json_object_get(rrset_at(rrsets, recs[i].fqdn), "records");

			if (c && strcmp(json_string_value(json_object_get(c, "changetype")), "REPLACE") != 0)
				fail("powerdns_plan (ensure) deletes");
			if (!records_hold(records, recs[i].value))
				fail("powerdns_plan (ensure) leaves a value out or disabled");
		}
		json_decref(changes);
	} else if (err.msg[0] == '\0') {
		fail("powerdns_plan (ensure) refused without saying why");
	}
	if ((changes = powerdns_plan(PROVIDER_REMOVE, recs, NREC, rrsets, 300, &err)) != NULL) {
		for (size_t i = 0; i < NREC; i++) {
			const json_t *c = change_at(changes, recs[i].fqdn);
			const json_t *records = c ? json_object_get(c, "records") :
			    json_object_get(rrset_at(rrsets, recs[i].fqdn), "records");

			if (records_hold_any(records, recs[i].value))
				fail("powerdns_plan (remove) leaves a value");
		}
		json_decref(changes);
	} else if (err.msg[0] == '\0') {
		fail("powerdns_plan (remove) refused without saying why");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, 0, NULL);

	check_judge(root);
	check_cloudflare(root);
	check_powerdns(root);
	json_decref(root);
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_provider_json"
#include "replay.h"
