/* txtzone.c - TXT RDATA in zone-file presentation: what named-checkzone and nsupdate read back. */
#include "txtzone.h"

#include <stdio.h>

int
txtzone_quote(cf_buf *b, const unsigned char *value, size_t n, cf_err *err)
{
	char esc[5];

	if (cf_buf_append(b, "\"", 1) != 0)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = value[i];
		if (i > 0 && i % TXTZONE_STRING_MAX == 0 && cf_buf_append(b, "\" \"", 3) != 0)
			goto oom;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			if (cf_buf_append(b, esc, 2) != 0)
				goto oom;
		} else if (c < 0x20 || c > 0x7e) {
			/* \DDD keeps the zone file printable ASCII whatever the octet */
			snprintf(esc, sizeof(esc), "\\%03u", c);
			if (cf_buf_append(b, esc, 4) != 0)
				goto oom;
		} else if (cf_buf_append(b, (const char *)&value[i], 1) != 0) {
			goto oom;
		}
	}
	if (cf_buf_append(b, "\"", 1) != 0)
		goto oom;
	return 0;
oom:
	cf_errf(err, "TXT record of %zu octets: out of memory", n);
	return -1;
}
