/*
 * test_route53.c - unit tests of the pure parts of the Route 53 provider: malformed listings
 * first, then reading ListResourceRecordSets answers, Route 53's documented listing order (labels
 * reversed, trailing dot, ASCII), TXT values in Route 53's form (quoted, \ooo octal escapes),
 * what a change batch does given the sets that exist (foreign values kept byte for byte, an
 * emptied set deleted, a replaced set deleted and created in the same batch), the ChangeBatch
 * XML, and how error answers are judged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "route53.h"
#include "txtdata.h"
#include "xmlmini.h"

#define V1 "letsencrypt.org; accounturi=https://ca.example/acct/1"
#define V2 "letsencrypt.org; accounturi=https://ca.example/acct/1; policy=wildcard"
#define N1 "_validation-persist.a.example.com"
#define N2 "_validation-persist.b.example.com"
#define NS "xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\""

static int
parse(const char *xml, struct route53_page *page, cf_err *err)
{
	return route53_parse_rrsets(xml, strlen(xml), page, err);
}

static void
test_parse_rejects(void)
{
	static const char *const bad[] = {
		"", "<ListResourceRecordSetsResponse>", "<Other " NS "><ResourceRecordSets/></Other>",
		"<ListResourceRecordSetsResponse " NS "/>",
		"<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Type>TXT</Type>"
		"</ResourceRecordSet></ResourceRecordSets></ListResourceRecordSetsResponse>",
		"<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Name>a.</Name>"
		"<Type>TXT</Type><TTL>x</TTL></ResourceRecordSet></ResourceRecordSets>"
		"</ListResourceRecordSetsResponse>",
		"<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Name>a.</Name>"
		"<Type>TXT</Type><ResourceRecords><ResourceRecord/></ResourceRecords></ResourceRecordSet>"
		"</ResourceRecordSets></ListResourceRecordSetsResponse>",
		"<ListResourceRecordSetsResponse><ResourceRecordSets><ResourceRecordSet><Name>a.</Name>"
		"<Type>TXT</Type><ResourceRecords><ResourceRecord><Value>&bad;</Value></ResourceRecord>"
		"</ResourceRecords></ResourceRecordSet></ResourceRecordSets></ListResourceRecordSetsResponse>",
	};
	struct route53_page page;
	cf_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (parse(bad[i], &page, &err) == 0) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			CHECK(0);
			route53_page_clear(&page);
		}
		CHECK(err.msg[0] != '\0' && check_printable(err.msg));
		CHECK(page.sets == NULL && page.nsets == 0);
	}
}

static void
test_parse(void)
{
	const char *xml = "<?xml version=\"1.0\"?>\n<ListResourceRecordSetsResponse " NS ">"
	    "<ResourceRecordSets>"
	    "<ResourceRecordSet><Name>_Validation-Persist.A.example.com.</Name><Type>TXT</Type>"
	    "<TTL>300</TTL><ResourceRecords><ResourceRecord><Value>&quot;" V1 "&quot;</Value>"
	    "</ResourceRecord><ResourceRecord><Value>\"a&amp;b\" \"c\"</Value></ResourceRecord>"
	    "</ResourceRecords></ResourceRecordSet>"
	    "<ResourceRecordSet><Name>\\052.example.com.</Name><Type>TXT</Type><SetIdentifier>w1"
	    "</SetIdentifier><Weight>10</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord>"
	    "<Value>\"x\"</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"
	    "<ResourceRecordSet><Name>www.example.com.</Name><Type>A</Type><AliasTarget>"
	    "<HostedZoneId>Z2</HostedZoneId><DNSName>lb.example.net.</DNSName>"
	    "<EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget></ResourceRecordSet>"
	    "</ResourceRecordSets><IsTruncated>true</IsTruncated><NextRecordName>zz.example.com."
	    "</NextRecordName><NextRecordType>A</NextRecordType><MaxItems>3</MaxItems>"
	    "</ListResourceRecordSetsResponse>";
	struct route53_page page;
	cf_err err;

	CHECK(parse(xml, &page, &err) == 0);
	CHECK(page.nsets == 3 && page.truncated);
	if (page.nsets == 3) {
		CHECK_STR(page.sets[0].name, N1);
		CHECK_STR(page.sets[0].type, "TXT");
		CHECK(page.sets[0].ttl == 300 && page.sets[0].simple && page.sets[0].nvalues == 2);
		CHECK_STR(page.sets[0].values[0], "\"" V1 "\"");
		CHECK_STR(page.sets[0].values[1], "\"a&b\" \"c\"");
		CHECK_STR(page.sets[1].name, "*.example.com");
		CHECK(!page.sets[1].simple && page.sets[1].ttl == 60);
		CHECK(!page.sets[2].simple && page.sets[2].ttl == -1 && page.sets[2].nvalues == 0);
	}
	route53_page_clear(&page);
	CHECK(parse("<ListResourceRecordSetsResponse><ResourceRecordSets/><IsTruncated>false"
	    "</IsTruncated></ListResourceRecordSetsResponse>", &page, &err) == 0);
	CHECK(page.nsets == 0 && !page.truncated);
	route53_page_clear(&page);
}

static void
test_order(void)
{
	/* the documented example: com.example.www. ; then the trailing-dot rule for '-' < '.' */
	CHECK(route53_name_cmp("example.com", "www.example.com") < 0);
	CHECK(route53_name_cmp("www.example.com.", "www.example.com") == 0);
	CHECK(route53_name_cmp("WWW.Example.COM", "www.example.com") == 0);
	CHECK(route53_name_cmp("www.example.com", "_validation-persist.www.example.com") < 0);
	CHECK(route53_name_cmp("a-b.example.com", "a.example.com") < 0);  /* "a-b." < "a." */
	CHECK(route53_name_cmp("b.example.com", "a.b.example.com") < 0);
	CHECK(route53_name_cmp("z.example.com", "a.example.net") < 0);    /* com < net first */
	CHECK(route53_name_cmp("_x.example.com", "a.example.com") < 0);   /* '_' 0x5f < 'a' */
	CHECK(route53_name_cmp("a.example.com", "_x.example.com") > 0);
}

static void
test_route53_txt(void)
{
	char *u;
	cf_err err;

	u = txtdata_unquote("\"a\\073b\" \"\\\"c\\\\\"", 16, TXTDATA_ROUTE53, NULL, &err);
	CHECK_STR(u, "a;b\"c\\");                  /* \073 is octal: ';' */
	free(u);
	u = txtdata_unquote("unquoted words", 14, TXTDATA_ROUTE53, NULL, &err);
	CHECK_STR(u, "unquotedwords");             /* each word a character-string of its own */
	free(u);
	CHECK(txtdata_unquote("\"\\089\"", 6, TXTDATA_ROUTE53, NULL, &err) == NULL &&
	    check_says(err.msg, "octal"));
	CHECK(txtdata_equal("\"" V1 "\"", strlen(V1) + 2, TXTDATA_ROUTE53, V1));
}

static void
test_plan(void)
{
	char *fvals[] = { "\"google-site-verification=x\"", "\"" V1 "\"" };
	char *fvals2[] = { "\"google-site-verification=x\"" };
	char *ovals[] = { "\"letsencrypt.org; accounturi=https://ca.example/acct/1\"", "\"" V2 "\"" };
	struct route53_rrset foreign = { N1, "TXT", 600, true, fvals, 2 };
	struct route53_rrset only_foreign = { N1, "TXT", 600, true, fvals2, 1 };
	struct route53_rrset ours = { N2, "TXT", 60, true, ovals, 2 };
	struct route53_rrset weighted = { N1, "TXT", 60, false, fvals2, 1 };
	struct route53_edit *e;
	size_t n, recs_, chars;
	cf_err err;

	/* ensure: a new name is created; a held value is left; a set with a foreign value is
	 * replaced with the foreign value kept byte for byte */
	struct provider_record r1[] = { { N1, V1 }, { N2, V1 }, { N2, V1 } };
	struct route53_current c1[] = { { N1, &foreign }, { N2, NULL } };
	CHECK(route53_plan(PROVIDER_ENSURE, r1, 3, c1, 2, 300, &e, &n, &err) == 0);
	CHECK(n == 1);
	if (n == 1) {
		CHECK_STR(e[0].name, N2);
		CHECK(e[0].nold == 0 && e[0].nnew == 1 && e[0].new_ttl == 300);
		CHECK_STR(e[0].new_values[0], "\"" V1 "\"");
	}
	route53_edits_free(e, n);

	struct provider_record r2[] = { { N1, V2 } };
	struct route53_current c2[] = { { N1, &foreign } };
	CHECK(route53_plan(PROVIDER_ENSURE, r2, 1, c2, 1, 300, &e, &n, &err) == 0 && n == 1);
	if (n == 1) {
		CHECK(e[0].nold == 2 && e[0].old_ttl == 600 && e[0].nnew == 3 && e[0].new_ttl == 600);
		CHECK_STR(e[0].old_values[0], fvals[0]);
		CHECK_STR(e[0].new_values[0], fvals[0]);
		CHECK_STR(e[0].new_values[1], fvals[1]);
		CHECK_STR(e[0].new_values[2], "\"" V2 "\"");
		route53_edit_cost(&e[0], &recs_, &chars);
		CHECK(recs_ == 5);
		CHECK(chars == 2 * (strlen(fvals[0]) + strlen(fvals[1])) + strlen(V2) + 2);
	}
	route53_edits_free(e, n);

	/* remove: foreign values stay; an emptied set is only deleted; nothing ours, no edit */
	struct provider_record r3[] = { { N1, V1 }, { N2, V1 }, { N2, V2 } };
	struct route53_current c3[] = { { N1, &foreign }, { N2, &ours } };
	CHECK(route53_plan(PROVIDER_REMOVE, r3, 3, c3, 2, 300, &e, &n, &err) == 0 && n == 2);
	if (n == 2) {
		CHECK(e[0].nold == 2 && e[0].nnew == 1);
		CHECK_STR(e[0].new_values[0], fvals[0]);
		CHECK_STR(e[1].name, N2);
		CHECK(e[1].nold == 2 && e[1].old_ttl == 60 && e[1].nnew == 0);
	}
	route53_edits_free(e, n);
	struct route53_current c4[] = { { N1, &only_foreign }, { N2, NULL } };
	CHECK(route53_plan(PROVIDER_REMOVE, r3, 3, c4, 2, 300, &e, &n, &err) == 0 && n == 0);
	route53_edits_free(e, n);

	/* a routing-policy set is never touched */
	struct route53_current c5[] = { { N1, &weighted } };
	CHECK(route53_plan(PROVIDER_ENSURE, r2, 1, c5, 1, 300, &e, &n, &err) == -1);
	CHECK(check_says(err.msg, "record " N1) && check_says(err.msg, "routing policy"));
	CHECK(e == NULL && n == 0);
}

static void
test_change_batch(void)
{
	char *old[] = { "\"a&b\"" };
	char *new[] = { "\"a&b\"", "\"<v>\"" };
	struct route53_edit e[] = {
		{ N1, 600, old, 1, 600, new, 2 },
		{ N2, 0, NULL, 0, 300, new + 1, 1 },
	};
	struct xmlmini_node root, batch, changes, ch, set;
	cf_buf b = { 0 };
	size_t pos = 0, count = 0;
	char *t;
	cf_err err;

	CHECK(route53_change_batch(&b, e, 2, &err) == 0);
	CHECK(strstr(b.data, "<ChangeResourceRecordSetsRequest " NS "><ChangeBatch><Changes><Change>"
	    "<Action>DELETE</Action><ResourceRecordSet><Name>" N1 ".</Name><Type>TXT</Type>"
	    "<TTL>600</TTL><ResourceRecords><ResourceRecord><Value>&quot;a&amp;b&quot;</Value>"
	    "</ResourceRecord></ResourceRecords></ResourceRecordSet></Change>") != NULL);
	CHECK(xmlmini_root(b.data, b.len, &root, &err) == 0);
	CHECK(xmlmini_is(&root, "ChangeResourceRecordSetsRequest"));
	CHECK(xmlmini_child(&root, "ChangeBatch", &batch, &err) == 1);
	CHECK(xmlmini_child(&batch, "Changes", &changes, &err) == 1);
	while (xmlmini_next(&changes, &pos, &ch, &err) == 1) {
		static const char *const actions[] = { "DELETE", "CREATE", "CREATE" };

		t = xmlmini_child_text(&ch, "Action", &err);
		CHECK(count < 3 && t != NULL && strcmp(t, actions[count]) == 0);
		free(t);
		CHECK(xmlmini_child(&ch, "ResourceRecordSet", &set, &err) == 1);
		if (count == 2) {
			struct xmlmini_node rrs, rr;

			t = xmlmini_child_text(&set, "TTL", &err);
			CHECK_STR(t, "300");
			free(t);
			CHECK(xmlmini_child(&set, "ResourceRecords", &rrs, &err) == 1 &&
			    xmlmini_child(&rrs, "ResourceRecord", &rr, &err) == 1);
			t = xmlmini_child_text(&rr, "Value", &err);
			CHECK_STR(t, "\"<v>\"");
			free(t);
		}
		count++;
	}
	CHECK(count == 3);
	cf_buf_free(&b);
}

static void
test_judge(void)
{
	char why[300];
	const char *throttled = "<?xml version=\"1.0\"?>\n<ErrorResponse " NS "><Error><Type>Sender"
	    "</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1"
	    "</RequestId></ErrorResponse>";
	const char *prior = "<ErrorResponse><Error><Code>PriorRequestNotComplete</Code><Message>x"
	    "</Message></Error></ErrorResponse>";
	const char *sig = "<ErrorResponse " NS "><Error><Code>SignatureDoesNotMatch</Code><Message>"
	    "The request signature we calculated does not match</Message></Error></ErrorResponse>";
	const char *race = "<InvalidChangeBatch " NS "><Messages><Message>Tried to create resource "
	    "record set [name='a.', type='TXT'] but it already exists</Message></Messages>"
	    "</InvalidChangeBatch>";
	const char *invalid = "<InvalidChangeBatch " NS "><Messages><Message>Invalid Resource Record:"
	    " bad\x01value</Message></Messages></InvalidChangeBatch>";

	CHECK(route53_judge(200, "<x/>", 4, why, sizeof(why)) == ROUTE53_OK);
	CHECK(route53_judge(400, throttled, strlen(throttled), why, sizeof(why)) == ROUTE53_THROTTLED);
	CHECK_STR(why, "HTTP 400, Throttling: Rate exceeded");
	CHECK(route53_judge(400, prior, strlen(prior), why, sizeof(why)) == ROUTE53_THROTTLED);
	CHECK(route53_judge(403, sig, strlen(sig), why, sizeof(why)) == ROUTE53_CREDENTIALS);
	CHECK(check_says(why, "SignatureDoesNotMatch"));
	CHECK(route53_judge(403, "", 0, why, sizeof(why)) == ROUTE53_CREDENTIALS);
	CHECK_STR(why, "HTTP 403");
	CHECK(route53_judge(400, race, strlen(race), why, sizeof(why)) == ROUTE53_RETRYABLE);
	CHECK(route53_judge(400, invalid, strlen(invalid), why, sizeof(why)) == ROUTE53_FAILED);
	CHECK(check_says(why, "InvalidChangeBatch: Invalid Resource Record"));
	CHECK(route53_judge(500, "<html>", 6, why, sizeof(why)) == ROUTE53_RETRYABLE);
	CHECK(route53_judge(503, NULL, 0, why, sizeof(why)) == ROUTE53_RETRYABLE);
	CHECK(route53_judge(404, "<ErrorResponse><Error><Code>NoSuchHostedZone</Code></Error>"
	    "</ErrorResponse>", 66, why, sizeof(why)) == ROUTE53_FAILED);
	CHECK(route53_judge(400, throttled, strlen(throttled), why, 20) == ROUTE53_THROTTLED &&
	    strlen(why) == 19);
}

int
main(void)
{
	RUN(test_parse_rejects);
	RUN(test_parse);
	RUN(test_order);
	RUN(test_route53_txt);
	RUN(test_plan);
	RUN(test_change_batch);
	RUN(test_judge);
	return CHECK_DONE();
}
