/*
 * txtdata.h - TXT record data as DNS provider APIs write it: a value as quoted character-strings
 * of at most 255 octets ("part one" "part two"), and the value back from what an API returns.
 */
#ifndef CF_TXTDATA_H
#define CF_TXTDATA_H

#include <stdbool.h>
#include <stddef.h>

#include "cf.h"

#define TXTDATA_STRING_MAX 255 /* octets of one character-string (RFC 1035 3.3) */

/* How an API writes escapes and text outside quotes. */
enum txtdata_dialect {
	/*
	 * RFC 1035 master-file form, as Cloudflare documents its TXT "content": \X for X, \DDD a
	 * decimal octet; text that does not start with '"' is a legacy unquoted value, taken whole.
	 */
	TXTDATA_RFC1035,
	/*
	 * Route 53 "Value": \X for X, \ooo an octal octet; unquoted words are character-strings of
	 * their own, separated by white space.
	 */
	TXTDATA_ROUTE53,
};

/*
 * True when value may be published by certfleet: 1 to 4000 octets of printable ASCII (0x20 to
 * 0x7e). Every dialect then writes it the same way, with only '"' and '\' escaped.
 */
bool txtdata_value_ok(const char *value);

/*
 * Appends value (txtdata_value_ok) as quoted character-strings to b: cut every 255 octets of the
 * value, '"' and '\' escaped with '\', the strings separated by one space. -1 when out of memory
 * or when value is not acceptable (err says which).
 */
int txtdata_quote(cf_buf *b, const char *value, cf_err *err) CF_MUST;

/*
 * The value that text (n octets, as an API returned it) stands for: its character-strings
 * unescaped and joined with nothing between them. malloc'd with *len its length (a value may
 * hold a NUL octet); NULL with err when malformed (an unclosed quote, a bad escape, a string
 * longer than 255 octets) or out of memory.
 */
char *txtdata_unquote(const char *text, size_t n, enum txtdata_dialect d, size_t *len,
    cf_err *err) CF_MUST;

/* True when text (an API's form) stands for exactly value. False when text is malformed. */
bool txtdata_equal(const char *text, size_t n, enum txtdata_dialect d, const char *value);

#endif
