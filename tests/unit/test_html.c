/* test_html.c - unit tests of lib/html.c: every special character escaped, controls replaced. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "html.h"

static void
test_escape(void)
{
	cf_buf b = { 0 };

	CHECK(html_escape(&b, "<script>alert(\"x\" & 'y')</script>") == 0);
	CHECK_STR(b.data, "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
	cf_buf_reset(&b);
	CHECK(html_escape(&b, "a\x01\x7f\tb\nc") == 0);
	CHECK_STR(b.data, "a\xef\xbf\xbd\xef\xbf\xbd\tb\nc");
	cf_buf_reset(&b);
	CHECK(html_escape(&b, "plain, caf\xc3\xa9") == 0);
	CHECK_STR(b.data, "plain, caf\xc3\xa9");
	cf_buf_free(&b);
}

static void
test_escape_empty(void)
{
	cf_buf b = { 0 };

	CHECK(html_escape(&b, "") == 0);
	CHECK(b.len == 0);
	cf_buf_free(&b);
}

int
main(void)
{
	RUN(test_escape);
	RUN(test_escape_empty);
	return CHECK_DONE();
}
