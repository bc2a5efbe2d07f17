/*
 * fuzz_xmlmini.c - fuzz target of the Route 53 XML reader: providers/xmlmini.c (the document
 * walk and text decoding) and route53.c's readers of its answers (route53_parse_rrsets,
 * route53_judge). Any octets as a document: every node found lies inside its parent, every text
 * is NUL-terminated, and a text escaped with xmlmini_escape and read back is the same octets; the
 * judge's message is NUL-terminated, printable and within its buffer. A difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"

#include "route53.h"
#include "xmlmini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn))
fail(const char *what)
{
	fprintf(stderr, "fuzz_xmlmini: %s\n", what);
	abort();
}

static int
inside(const char *p, size_t n, const char *outer, size_t outerlen)
{
	return p >= outer && n <= outerlen && (size_t)(p - outer) <= outerlen - n;
}

/* text (len octets) escaped in an element and read back must be itself. */
static void
check_text_round_trip(const char *text, size_t len)
{
	cf_buf b = { 0 };
	cf_err err = { { 0 } };
	struct xmlmini_node root;
	size_t len2;
	char *back;

	if (cf_buf_append(&b, "<v>", 3) != 0 || xmlmini_escape(&b, text, len) != 0 ||
	    cf_buf_append(&b, "</v>", 4) != 0) {
		cf_buf_free(&b);
		return;
	}
	if (xmlmini_root(b.data, b.len, &root, &err) != 0)
		fail("an escaped text does not read as a document");
	if ((back = xmlmini_text(&root, &len2, &err)) == NULL)
		fail("an escaped text does not read back");
	if (len2 != len || memcmp(back, text, len) != 0)
		fail("escape then read changed the text");
	free(back);
	cf_buf_free(&b);
}

static void
walk(const struct xmlmini_node *node, int depth)
{
	struct xmlmini_node child;
	cf_err err = { { 0 } };
	size_t pos = 0, len;
	char *text;
	int r;

	if (depth > XMLMINI_MAX_DEPTH + 1)
		fail("deeper than XMLMINI_MAX_DEPTH");
	while ((r = xmlmini_next(node, &pos, &child, &err)) == 1) {
		/* the local name may be empty: "<c:/>" is read as "c:" with its prefix ignored */
		if (!inside(child.name, child.namelen, node->body, node->bodylen) ||
		    !inside(child.body, child.bodylen, node->body, node->bodylen))
			fail("a child lies outside its parent");
		if (pos > node->bodylen)
			fail("the position ran past the parent");
		walk(&child, depth + 1);
	}
	if (r == -1 && err.msg[0] == '\0')
		fail("xmlmini_next refused without saying why");
	if ((text = xmlmini_text(node, &len, &err)) != NULL) {
		if (text[len] != '\0')
			fail("a text is not NUL-terminated");
		check_text_round_trip(text, len);
		free(text);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data;
	struct xmlmini_node root;
	struct route53_page page;
	cf_err err = { { 0 } };
	char why[200];
	size_t n;

	if (xmlmini_root(doc, size, &root, &err) == 0) {
		if (!inside(root.name, root.namelen, doc, size) ||
		    !inside(root.body, root.bodylen, doc, size))
			fail("the root lies outside the document");
		walk(&root, 0);
	} else if (err.msg[0] == '\0') {
		fail("xmlmini_root refused without saying why");
	}

	memset(&page, 0, sizeof(page));
	if (route53_parse_rrsets(doc, size, &page, &err) == 0) {
		for (size_t i = 0; i < page.nsets; i++) {
			const struct route53_rrset *s = &page.sets[i];

			if (s->name == NULL || s->type == NULL)
				fail("a record set without name or type");
			for (size_t k = 0; k < s->nvalues; k++)
				if (s->values[k] == NULL)
					fail("a NULL value");
		}
	}
	route53_page_clear(&page);

	memset(why, 'x', sizeof(why));
	route53_judge(400, doc, size, why, sizeof(why));
	if ((n = strnlen(why, sizeof(why))) == sizeof(why))
		fail("route53_judge's message is not NUL-terminated");
	for (size_t i = 0; i < n; i++)
		if (!printable(why, n, i))
			fail("route53_judge's message is not printable");
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_xmlmini"
#include "replay.h"
