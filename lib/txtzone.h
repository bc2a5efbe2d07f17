/* txtzone.h - TXT RDATA in zone-file presentation (RFC 1035 5.1): quoted, escaped character-strings. */
#ifndef CF_TXTZONE_H
#define CF_TXTZONE_H

#include <stddef.h>

#include "cf.h"

#define TXTZONE_STRING_MAX 255 /* octets of one character-string (RFC 1035 3.3) */

/*
 * Appends the n octets of value to b as the RDATA of one TXT record in a zone file: a new quoted
 * character-string every 255 octets of the value (escapes do not count), separated by one space;
 * '"' and '\' escaped with '\'; octets outside 0x20-0x7e as \DDD (three decimal digits). An empty
 * value is one empty string (""). -1 with err set when out of memory.
 */
int txtzone_quote(cf_buf *b, const unsigned char *value, size_t n, cf_err *err) CF_MUST;

#endif
