/*
 * test_cloudflare.c - unit tests of the pure parts of the Cloudflare provider: TXT content as
 * Cloudflare documents it (quoted character-strings of at most 255 octets, RFC 1035 escapes;
 * legacy unquoted content compared as it is), what a batch creates or deletes given the records
 * that exist (never a value certfleet was not asked about), and how API answers are judged.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cloudflare.h"
#include "txtdata.h"

#define V1 "letsencrypt.org; accounturi=https://ca.example/acct/1"
#define V2 "letsencrypt.org; accounturi=https://ca.example/acct/1; policy=wildcard"
#define N1 "_validation-persist.a.example.com"
#define N2 "_validation-persist.b.example.com"

static char *
quote(const char *v)
{
	cf_buf b = { 0 };

	if (txtdata_quote(&b, v, NULL) != 0) {
		cf_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static char *
unquote(const char *t)
{
	return txtdata_unquote(t, strlen(t), TXTDATA_RFC1035, NULL, NULL);
}

static void
test_quote_rejects(void)
{
	char big[4002];
	cf_err err;
	cf_buf b = { 0 };

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(!txtdata_value_ok(NULL));
	CHECK(!txtdata_value_ok(""));
	CHECK(!txtdata_value_ok("tab\there"));
	CHECK(!txtdata_value_ok("caf\xC3\xA9"));
	CHECK(!txtdata_value_ok(big));
	big[4000] = '\0';
	CHECK(txtdata_value_ok(big));
	CHECK(txtdata_quote(&b, "new\nline", &err) == -1 && check_says(err.msg, "printable ASCII"));
	cf_buf_free(&b);
}

static void
test_unquote_rejects(void)
{
	static const char *const bad[] = { "\"open", "\"a\\", "\"\\25\"", "\"\\256\"", "\"a\"\"b\"",
		"\"a\"x" };
	char s256[300];
	cf_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *v = txtdata_unquote(bad[i], strlen(bad[i]), TXTDATA_RFC1035, NULL, &err);

		if (v != NULL)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(v == NULL && check_printable(err.msg));
		free(v);
	}
	s256[0] = '"';
	memset(s256 + 1, 'x', 256);
	s256[257] = '"';
	s256[258] = '\0';
	CHECK(txtdata_unquote(s256, strlen(s256), TXTDATA_RFC1035, NULL, &err) == NULL &&
	    check_says(err.msg, "256 octets"));
}

static void
test_quote(void)
{
	char v255[256], v256[257], *q, *u;

	q = quote(V1);
	CHECK_STR(q, "\"" V1 "\"");
	free(q);
	q = quote("say \"hi\" \\o/");
	CHECK_STR(q, "\"say \\\"hi\\\" \\\\o/\"");
	u = unquote(q);
	CHECK_STR(u, "say \"hi\" \\o/");
	free(q);
	free(u);

	memset(v255, 'a', 255);
	v255[255] = '\0';
	q = quote(v255);
	CHECK(q != NULL && strlen(q) == 257 && strchr(q + 1, '"') == q + 256); /* one string */
	free(q);
	memset(v256, 'b', 256);
	v256[255] = 'c';
	v256[256] = '\0';
	q = quote(v256);
	CHECK(q != NULL && strlen(q) == 256 + 5 && strcmp(q + 255, "b\" \"c\"") == 0);
	u = unquote(q);
	CHECK_STR(u, v256);
	free(q);
	free(u);
}

static void
test_unquote_forms(void)
{
	char *u;

	u = unquote("\"abc\" \"def\"");
	CHECK_STR(u, "abcdef");
	free(u);
	u = unquote("\"a\\059b\\\"\"");        /* \DDD is decimal in RFC 1035: 059 is ';' */
	CHECK_STR(u, "a;b\"");
	free(u);
	u = unquote(V1);                         /* legacy unquoted content: the text itself */
	CHECK_STR(u, V1);
	free(u);
	u = unquote("");
	CHECK_STR(u, "");
	free(u);
	CHECK(txtdata_equal("\"" V1 "\"", strlen(V1) + 2, TXTDATA_RFC1035, V1));
	CHECK(txtdata_equal(V1, strlen(V1), TXTDATA_RFC1035, V1));
	CHECK(!txtdata_equal("\"" V1 "x\"", strlen(V1) + 3, TXTDATA_RFC1035, V1));
	CHECK(!txtdata_equal("\"" V1, strlen(V1) + 1, TXTDATA_RFC1035, V1));
}

static void
test_plan_ensure(void)
{
	struct provider_record recs[] = { { N1, V1 }, { N2, V1 }, { N1, V1 }, { N1, V2 } };
	struct cloudflare_existing ex[] = {
		{ "id-foreign", N1, "\"google-site-verification=abc\"" },
		{ "id-legacy", N2, V1 },             /* ours, written unquoted by someone */
	};
	json_t *ops, *op;
	cf_err err;

	ops = cloudflare_plan(PROVIDER_ENSURE, recs, 4, NULL, 0, 300, &err);
	CHECK(ops != NULL && json_array_size(ops) == 3); /* the duplicate N1/V1 once */
	op = json_array_get(ops, 0);
	CHECK_STR(json_string_value(json_object_get(op, "type")), "TXT");
	CHECK_STR(json_string_value(json_object_get(op, "name")), N1);
	CHECK_STR(json_string_value(json_object_get(op, "content")), "\"" V1 "\"");
	CHECK(json_integer_value(json_object_get(op, "ttl")) == 300);
	CHECK_STR(json_string_value(json_object_get(op, "comment")), "certfleet");
	CHECK(json_object_size(op) == 5);
	json_decref(ops);

	ops = cloudflare_plan(PROVIDER_ENSURE, recs, 4, ex, 2, 1, &err);
	CHECK(ops != NULL && json_array_size(ops) == 2); /* N2/V1 exists (unquoted) */
	CHECK_STR(json_string_value(json_object_get(json_array_get(ops, 0), "name")), N1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(ops, 1), "content")), "\"" V2 "\"");
	CHECK(json_integer_value(json_object_get(json_array_get(ops, 1), "ttl")) == 1);
	json_decref(ops);

	struct provider_record bad = { N1, "ctl\x01" };
	CHECK(cloudflare_plan(PROVIDER_ENSURE, &bad, 1, NULL, 0, 300, &err) == NULL &&
	    check_says(err.msg, "printable ASCII"));
}

static void
test_plan_remove(void)
{
	struct provider_record recs[] = { { N1, V1 }, { N2, V2 } };
	struct cloudflare_existing ex[] = {
		{ "id-foreign", N1, "\"google-site-verification=abc\"" },
		{ "id-ours", N1, "\"" V1 "\"" },
		{ "id-ours-dup", N1, V1 },
		{ "id-other-name", N2, "\"" V1 "\"" }, /* V1 but asked to remove V2 there */
		{ "id-ours-2", "_validation-persist.B.example.com", "\"letsencrypt.org; accounturi=https://"
		    "ca.example/acct/1; \" \"policy=wildcard\"" },
	};
	json_t *ops;
	cf_err err;

	ops = cloudflare_plan(PROVIDER_REMOVE, recs, 2, ex, 5, 300, &err);
	CHECK(ops != NULL && json_array_size(ops) == 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(ops, 0), "id")), "id-ours");
	CHECK_STR(json_string_value(json_object_get(json_array_get(ops, 1), "id")), "id-ours-dup");
	CHECK_STR(json_string_value(json_object_get(json_array_get(ops, 2), "id")), "id-ours-2");
	CHECK(json_object_size(json_array_get(ops, 0)) == 1);
	json_decref(ops);
	ops = cloudflare_plan(PROVIDER_REMOVE, recs, 2, ex, 1, 300, &err);
	CHECK(ops != NULL && json_array_size(ops) == 0);
	json_decref(ops);
}

static enum cloudflare_verdict
judge(long status, const char *body, char *why, size_t len)
{
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	enum cloudflare_verdict v = cloudflare_judge(status, j, why, len);

	json_decref(j);
	return v;
}

static void
test_judge(void)
{
	char why[300];

	CHECK(judge(200, "{\"success\": true, \"errors\": [], \"result\": []}", why, sizeof(why)) ==
	    CLOUDFLARE_OK);
	CHECK(judge(200, "{\"success\": false, \"errors\": []}", why, sizeof(why)) == CLOUDFLARE_FAILED);
	CHECK(judge(200, "not json", why, sizeof(why)) == CLOUDFLARE_FAILED &&
	    check_says(why, "not a JSON object"));
	CHECK(judge(403, "{\"success\": false, \"errors\": [{\"code\": 10000, \"message\": "
	    "\"Authentication error\"}]}", why, sizeof(why)) == CLOUDFLARE_CREDENTIALS);
	CHECK_STR(why, "HTTP 403, code 10000 \"Authentication error\"");
	CHECK(judge(400, "{\"success\": false, \"errors\": [{\"code\": 9109, \"message\": "
	    "\"Invalid access token\"}]}", why, sizeof(why)) == CLOUDFLARE_CREDENTIALS);
	CHECK(judge(401, NULL, why, sizeof(why)) == CLOUDFLARE_CREDENTIALS);
	CHECK(judge(429, "{\"success\": false, \"errors\": [{\"code\": 971, \"message\": "
	    "\"Please wait\"}]}", why, sizeof(why)) == CLOUDFLARE_RETRYABLE);
	CHECK(judge(502, "<html>bad gateway</html>", why, sizeof(why)) == CLOUDFLARE_RETRYABLE);
	CHECK_STR(why, "HTTP 502");
	CHECK(judge(400, "{\"success\": false, \"errors\": [{\"code\": 81058, \"message\": "
	    "\"An identical record already exists.\"}]}", why, sizeof(why)) == CLOUDFLARE_RETRYABLE);
	CHECK(judge(400, "{\"success\": false, \"errors\": [{\"code\": 1004, \"message\": "
	    "\"DNS Validation Error\"}, {\"code\": 9005, \"message\": \"Content\\nwith\\u0001control\"}]}",
	    why, sizeof(why)) == CLOUDFLARE_FAILED);
	CHECK(check_says(why, "code 1004 \"DNS Validation Error\", code 9005"));
	/* a long answer is cut, never overflows */
	CHECK(judge(400, "{\"errors\": [{\"code\": 1, \"message\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]}", why, 40) == CLOUDFLARE_FAILED);
	CHECK(strlen(why) == 39 && check_printable(why));
}

int
main(void)
{
	RUN(test_quote_rejects);
	RUN(test_unquote_rejects);
	RUN(test_quote);
	RUN(test_unquote_forms);
	RUN(test_plan_ensure);
	RUN(test_plan_remove);
	RUN(test_judge);
	return CHECK_DONE();
}
