/*
 * test_powerdns.c - unit tests of the PowerDNS provider's change planning (providers/powerdns.c):
 * rejections first, then what one PATCH says for ensure and remove against the RRsets a GET gave.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "powerdns.h"

#define N1 "_validation-persist.a.example.com"
#define N2 "_validation-persist.b.example.com"
#define V1 "letsencrypt.org; accounturi=https://ca.example/acct/1"
#define V2 "letsencrypt.org; accounturi=https://ca.example/acct/2; policy=wildcard"

/* A zone answer's "rrsets" from JSON text written with ' for " (readability). */
static json_t *
rrsets(const char *text)
{
	char *t = strdup(text);
	json_error_t je;
	json_t *j;

	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(t, 0, &je);
	if (j == NULL)
		fprintf(stderr, "  bad fixture %s: %s\n", t, je.text);
	free(t);
	return j;
}

/* True when planning action on recs against have (JSON, ' for ") gives want (JSON, ' for "). */
static bool
plan_gives(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const char *have, const char *want)
{
	json_t *h = rrsets(have), *w = rrsets(want), *got;
	cf_err e = { "" };
	bool ok;

	got = powerdns_plan(action, recs, nrec, h, 300, &e);
	ok = got != NULL && w != NULL && json_equal(got, w);
	if (!ok) {
		char *g = got ? json_dumps(got, JSON_COMPACT) : NULL;
		fprintf(stderr, "  got %s (%s)\n  want %s\n", g ? g : "NULL", e.msg, want);
		free(g);
	}
	json_decref(got);
	json_decref(h);
	json_decref(w);
	return ok;
}

/* True when planning fails with a message containing needle. */
static bool
plan_rejects(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const char *have, const char *needle)
{
	json_t *h = rrsets(have), *got;
	cf_err e = { "" };

	got = powerdns_plan(action, recs, nrec, h, 300, &e);
	json_decref(h);
	if (got != NULL) {
		char *g = json_dumps(got, JSON_COMPACT);
		fprintf(stderr, "  planned %s\n", g ? g : "?");
		free(g);
		json_decref(got);
		return false;
	}
	return check_says(e.msg, needle);
}

static void
test_rejects(void)
{
	struct provider_record ctl = { N1, "bad\nvalue" }, empty = { N1, "" }, ok = { N1, V1 };

	/* values that cannot be published */
	CHECK(plan_rejects(PROVIDER_ENSURE, &ctl, 1, "[]", "TXT value"));
	CHECK(plan_rejects(PROVIDER_ENSURE, &empty, 1, "[]", "TXT value"));
	/* an answer with a record that has no content, named */
	CHECK(plan_rejects(PROVIDER_ENSURE, &ok, 1,
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'records': [{'disabled': false}]}]", N1));
	CHECK(plan_rejects(PROVIDER_REMOVE, &ok, 1,
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'records': [{'content': 5}]}]", "no \"content\""));
}

static void
test_ensure_new(void)
{
	struct provider_record recs[] = { { N1, V1 }, { N2, V2 }, { N1, "second" }, { N1, V1 } };

	/* two names, one RRset each, in the order of the records; the duplicate once */
	CHECK(plan_gives(PROVIDER_ENSURE, recs, 4, "[]",
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 300, 'changetype': 'REPLACE', 'records': ["
	    "{'content': '\\'" V1 "\\'', 'disabled': false}, {'content': '\\'second\\'', 'disabled': false}]},"
	    " {'name': '" N2 ".', 'type': 'TXT', 'ttl': 300, 'changetype': 'REPLACE', 'records': ["
	    "{'content': '\\'" V2 "\\'', 'disabled': false}]}]"));
}

static void
test_ensure_present(void)
{
	struct provider_record recs[] = { { N1, "ab" }, { N1, "A\"" }, { N2, V2 } };

	/* present in other spellings, names in other case, with or without the dot: nothing to do */
	CHECK(plan_gives(PROVIDER_ENSURE, recs, 3,
	    "[{'name': '_Validation-Persist.A.example.com.', 'type': 'TXT', 'ttl': 60, 'records': ["
	    "{'content': '\\'a\\' \\'b\\'', 'disabled': false}, {'content': '\\'\\\\065\\\\\\'\\'', 'disabled': false}]},"
	    " {'name': '" N2 "', 'type': 'TXT', 'ttl': 60, 'records': [{'content': '\\'" V2 "\\''}]}]",
	    "[]"));
}

static void
test_ensure_keeps_others(void)
{
	struct provider_record recs[] = { { N1, V1 } };

	/* foreign values (even unparseable ones) kept verbatim, the RRset's TTL kept, ours added;
	 * other types at the name and other names are not touched */
	CHECK(plan_gives(PROVIDER_ENSURE, recs, 1,
	    "[{'name': '" N1 ".', 'type': 'CNAME', 'ttl': 5, 'records': [{'content': 'x.example.', 'disabled': false}]},"
	    " {'name': '" N2 ".', 'type': 'TXT', 'ttl': 5, 'records': [{'content': '\\'" V1 "\\'', 'disabled': false}]},"
	    " {'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'records': ["
	    "{'content': '\\'other; accounturi=x\\'', 'disabled': false},"
	    " {'content': '\\'unterminated', 'disabled': true}]}]",
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'changetype': 'REPLACE', 'records': ["
	    "{'content': '\\'other; accounturi=x\\'', 'disabled': false},"
	    " {'content': '\\'unterminated', 'disabled': true},"
	    " {'content': '\\'" V1 "\\'', 'disabled': false}]}]"));
}

static void
test_ensure_enables(void)
{
	struct provider_record recs[] = { { N1, V1 } };

	/* ours there but disabled: enabled in place, not added twice */
	CHECK(plan_gives(PROVIDER_ENSURE, recs, 1,
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'records': ["
	    "{'content': '\\'" V1 "\\'', 'disabled': true}, {'content': '\\'x\\'', 'disabled': true}]}]",
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'changetype': 'REPLACE', 'records': ["
	    "{'content': '\\'" V1 "\\'', 'disabled': false}, {'content': '\\'x\\'', 'disabled': true}]}]"));
}

static void
test_ensure_quotes(void)
{
	char value[301];
	struct provider_record recs[] = { { N1, "say \"hi\" \\o/" }, { N2, value } };
	char want[1024];

	memset(value, 'v', 300);
	value[300] = '\0';
	/* quotes and backslashes escaped; 300 octets in two character-strings of 255 and 45 */
	snprintf(want, sizeof(want),
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 300, 'changetype': 'REPLACE', 'records': ["
	    "{'content': '\\'say \\\\\\'hi\\\\\\' \\\\\\\\o/\\'', 'disabled': false}]},"
	    " {'name': '" N2 ".', 'type': 'TXT', 'ttl': 300, 'changetype': 'REPLACE', 'records': ["
	    "{'content': '\\'%.255s\\' \\'%.45s\\'', 'disabled': false}]}]", value, value);
	CHECK(plan_gives(PROVIDER_ENSURE, recs, 2, "[]", want));
}

static void
test_remove(void)
{
	struct provider_record recs[] = { { N1, V1 }, { N2, V2 } };

	/* only ours goes; an RRset left empty is deleted */
	CHECK(plan_gives(PROVIDER_REMOVE, recs, 2,
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'records': ["
	    "{'content': '\\'foreign\\'', 'disabled': false}, {'content': '\\'" V1 "\\'', 'disabled': false},"
	    " {'content': '\\'" V2 "\\'', 'disabled': false}]},"
	    " {'name': '" N2 ".', 'type': 'TXT', 'ttl': 60, 'records': [{'content': '\\'" V2 "\\'', 'disabled': true}]}]",
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'changetype': 'REPLACE', 'records': ["
	    "{'content': '\\'foreign\\'', 'disabled': false}, {'content': '\\'" V2 "\\'', 'disabled': false}]},"
	    " {'name': '" N2 ".', 'type': 'TXT', 'changetype': 'DELETE'}]"));
}

static void
test_remove_absent(void)
{
	struct provider_record recs[] = { { N1, V1 }, { N2, V2 } };

	/* nothing of ours there (another value, no RRset at all): no change */
	CHECK(plan_gives(PROVIDER_REMOVE, recs, 2,
	    "[{'name': '" N1 ".', 'type': 'TXT', 'ttl': 60, 'records': [{'content': '\\'" V2 "\\'', 'disabled': false}]}]",
	    "[]"));
	CHECK(plan_gives(PROVIDER_REMOVE, recs, 2, "[]", "[]"));
}

int
main(void)
{
	RUN(test_rejects);
	RUN(test_ensure_new);
	RUN(test_ensure_present);
	RUN(test_ensure_keeps_others);
	RUN(test_ensure_enables);
	RUN(test_ensure_quotes);
	RUN(test_remove);
	RUN(test_remove_absent);
	return CHECK_DONE();
}
