/*
 * test_xmlmini.c - unit tests of providers/xmlmini.c: malformed documents first (unclosed,
 * mismatched, DTDs, trailing content, too deep), then finding children, reading text with
 * entities and CDATA, and escaping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "xmlmini.h"

static int
root_of(const char *doc, struct xmlmini_node *root, cf_err *err)
{
	return xmlmini_root(doc, strlen(doc), root, err);
}

static void
test_malformed(void)
{
	static const char *const bad[] = {
		"", "   ", "text", "<a>", "<a></b>", "<a><b></a></b>", "<a/><b/>", "<a/>text",
		"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", "<!-- open <a/>", "<a x=1/>",
		"<a x=\"1/>", "<a><!-- unclosed </a>", "<a><![CDATA[ unclosed</a>", "<1a/>",
		"<a></a ", "<a><!ELEMENT b></a>",
	};
	struct xmlmini_node root;
	cf_err err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (root_of(bad[i], &root, &err) == 0) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
			CHECK(0);
		}
		CHECK(err.msg[0] != '\0' && check_printable(err.msg));
	}
	CHECK(xmlmini_root(NULL, 0, &root, &err) == -1);
	CHECK(root_of("<a></b>", &root, &err) == -1 && check_says(err.msg, "does not close"));
	CHECK(root_of("<!DOCTYPE a><a/>", &root, &err) == -1 && check_says(err.msg, "document type"));
}

static void
test_depth(void)
{
	char doc[4096];
	struct xmlmini_node root;
	cf_err err;
	size_t n = 0;
	int i;

	for (i = 0; i < XMLMINI_MAX_DEPTH; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "<e>");
	for (i = 0; i < XMLMINI_MAX_DEPTH; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "</e>");
	CHECK(root_of(doc, &root, &err) == 0);
	n = 0;
	for (i = 0; i < XMLMINI_MAX_DEPTH + 1; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "<e>");
	for (i = 0; i < XMLMINI_MAX_DEPTH + 1; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "</e>");
	CHECK(root_of(doc, &root, &err) == -1 && check_says(err.msg, "nested deeper"));
}

static void
test_children(void)
{
	const char *doc = "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- before -->\n"
	    "<r:Root xmlns:r=\"urn:x\" a='1 > 0'>\n  <Item>one</Item><!-- <Item>no</Item> -->\n"
	    "  <r:Item n=\"2\">two</r:Item>\n  <Empty/>\n  <Nested><Item>deep</Item></Nested>\n"
	    "</r:Root>\n<?pi after?>\n";
	struct xmlmini_node root, c;
	size_t pos = 0, count = 0;
	char *t;
	cf_err err;
	int r;

	CHECK(root_of(doc, &root, &err) == 0);
	CHECK(xmlmini_is(&root, "Root"));
	while ((r = xmlmini_next(&root, &pos, &c, &err)) == 1) {
		count++;
		if (count == 2) {
			CHECK(xmlmini_is(&c, "Item"));
			t = xmlmini_text(&c, NULL, &err);
			CHECK_STR(t, "two");
			free(t);
		}
	}
	CHECK(r == 0);
	CHECK(count == 4); /* Item, r:Item, Empty, Nested: the commented one and the deep one are not */
	CHECK(xmlmini_child(&root, "Empty", &c, &err) == 1 && c.bodylen == 0);
	CHECK(xmlmini_child(&root, "Missing", &c, &err) == 0);
	t = xmlmini_child_text(&root, "Missing", &err);
	CHECK(t == NULL && err.msg[0] == '\0');
	t = xmlmini_child_text(&root, "Nested", &err);
	CHECK(t == NULL && check_says(err.msg, "holds an element"));
	CHECK(xmlmini_child(&root, "Nested", &c, &err) == 1);
	t = xmlmini_child_text(&c, "Item", &err);
	CHECK_STR(t, "deep");
	free(t);
}

static void
test_text(void)
{
	const char *doc = "<v>&quot;a&amp;b&quot; &lt;c&gt; &apos;&#65;&#x42;&#xe9;&#x1F600;"
	    "<![CDATA[<raw & kept>]]><!-- gone -->end</v>";
	struct xmlmini_node root;
	size_t len;
	char *t;
	cf_err err;

	CHECK(root_of(doc, &root, &err) == 0);
	t = xmlmini_text(&root, &len, &err);
	CHECK_STR(t, "\"a&b\" <c> 'AB\xC3\xA9\xF0\x9F\x98\x80<raw & kept>end");
	CHECK(t != NULL && len == strlen(t));
	free(t);

	static const char *const bad[] = { "<v>&nbsp;</v>", "<v>&#0;</v>", "<v>&#xD800;</v>",
		"<v>&#x110000;</v>", "<v>& loose</v>", "<v>&#x;</v>", "<v>&#12a;</v>" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(root_of(bad[i], &root, &err) == 0);
		t = xmlmini_text(&root, NULL, &err);
		CHECK(t == NULL && check_printable(err.msg) && err.msg[0] != '\0');
		free(t);
	}
}

static void
test_escape(void)
{
	const char raw[] = "a&b<c>d\"e'f\0g";
	cf_buf b = { 0 };
	struct xmlmini_node root;
	char *t;
	size_t len;
	cf_err err;

	CHECK(cf_buf_append(&b, "<v>", 3) == 0);
	CHECK(xmlmini_escape(&b, raw, sizeof(raw) - 1) == 0);
	CHECK(cf_buf_append(&b, "</v>", 4) == 0);
	CHECK(memcmp(b.data, "<v>a&amp;b&lt;c&gt;d&quot;e&apos;f\0g</v>", b.len) == 0);
	CHECK(root_of("<v>plain</v>", &root, &err) == 0);
	cf_buf_reset(&b);
	CHECK(xmlmini_escape(&b, "x & y", 5) == 0 && cf_buf_append(&b, "", 0) == 0);
	CHECK_STR(b.data, "x &amp; y");
	cf_buf_reset(&b);
	CHECK(cf_buf_printf(&b, "<v>") == 0 && xmlmini_escape(&b, "<&>\"'", 5) == 0 &&
	    cf_buf_printf(&b, "</v>") == 0);
	CHECK(xmlmini_root(b.data, b.len, &root, &err) == 0);
	t = xmlmini_text(&root, &len, &err);
	CHECK_STR(t, "<&>\"'");
	free(t);
	cf_buf_free(&b);
}

int
main(void)
{
	RUN(test_malformed);
	RUN(test_depth);
	RUN(test_children);
	RUN(test_text);
	RUN(test_escape);
	return CHECK_DONE();
}
