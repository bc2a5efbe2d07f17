/* html.h - HTML text: escaping values for element content and quoted attributes. */
#ifndef CF_HTML_H
#define CF_HTML_H

#include "cf.h"

/* Appends s to b with & < > " ' escaped, safe in element content and in quoted attributes.
 * Bytes below 0x20 other than tab and newline, and DEL, become U+FFFD. 0, or -1 out of memory. */
int html_escape(cf_buf *b, const char *s) CF_MUST;

#endif
