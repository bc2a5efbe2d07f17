/*
 * xmlmini.h - a minimal, strict reader of the small XML documents that REST APIs answer with
 * (Route 53): find child elements by local name, read an element's text with entities decoded,
 * and escape text for writing. No DTD (a document with <!DOCTYPE is refused, so no entity can
 * expand), no namespaces beyond ignoring a "prefix:", no attributes read.
 */
#ifndef CF_XMLMINI_H
#define CF_XMLMINI_H

#include <stddef.h>

#include "cf.h"

#define XMLMINI_MAX_DEPTH 32 /* deeper nesting is refused as malformed */

/*
 * One element of a document: its local name (the part after any "prefix:") and its content,
 * the octets between the end of the start tag and the start of the end tag (empty for <a/>).
 * Both point into the caller's document, which must outlive the node.
 */
struct xmlmini_node {
	const char *name;
	size_t namelen;
	const char *body;
	size_t bodylen;
};

/*
 * The root element of doc (len octets): skips an XML declaration, comments, processing
 * instructions and white space around it, and checks that every tag of the whole document is
 * closed in order. Returns 0, or -1 with err saying what is malformed and at which offset.
 */
int xmlmini_root(const char *doc, size_t len, struct xmlmini_node *root, cf_err *err) CF_MUST;

/*
 * The next child element of parent after *pos (start with *pos = 0): 1 with *child filled and
 * *pos advanced, 0 when there is none left, -1 with err when the content is malformed.
 */
int xmlmini_next(const struct xmlmini_node *parent, size_t *pos, struct xmlmini_node *child,
    cf_err *err) CF_MUST;

/* The first child of parent whose local name is name: 1 found, 0 none, -1 malformed (err set). */
int xmlmini_child(const struct xmlmini_node *parent, const char *name, struct xmlmini_node *child,
    cf_err *err) CF_MUST;

/* True when node's local name is name. */
int xmlmini_is(const struct xmlmini_node *node, const char *name);

/*
 * node's text, malloc'd and NUL-terminated: character data and CDATA sections joined, comments
 * dropped, the five predefined entities and character references (&#65; &#x41;) decoded to
 * UTF-8. NULL with err when node has a child element, an unknown entity or a reference to NUL,
 * a surrogate or a code point above U+10FFFF, or when out of memory. *len (may be NULL) gets
 * the length.
 */
char *xmlmini_text(const struct xmlmini_node *node, size_t *len, cf_err *err) CF_MUST;

/*
 * The text of the first child named name, as xmlmini_text; NULL with err unset (err->msg[0] ==
 * '\0') when there is no such child, NULL with err set when malformed.
 */
char *xmlmini_child_text(const struct xmlmini_node *parent, const char *name, cf_err *err) CF_MUST;

/* Appends s (n octets) to b with & < > " ' escaped as entities; 0, or -1 when out of memory. */
int xmlmini_escape(cf_buf *b, const char *s, size_t n) CF_MUST;

#endif
