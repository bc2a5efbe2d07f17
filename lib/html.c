/* html.c - HTML text: escaping values for element content and quoted attributes. */
#include <string.h>

#include "html.h"

int
html_escape(cf_buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		const char *rep = NULL;
		switch (*p) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
				rep = "\xef\xbf\xbd";
		}
		if (rep != NULL ? cf_buf_append(b, rep, strlen(rep)) != 0 : cf_buf_append(b, p, 1) != 0)
			return -1;
	}
	return 0;
}
