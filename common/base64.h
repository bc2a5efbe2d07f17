/* base64.h - base64url (RFC 4648 section 5) without padding, the digits of both alphabets, hex digits. */
#ifndef CF_BASE64_H
#define CF_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "cf.h"

/* The 6-bit value of a base64 digit, or -1; url picks the base64url alphabet ('-', '_'). */
int b64_digit(unsigned char c, bool url);

/* The value of a hexadecimal digit (either case), or -1. */
int hex_digit(unsigned char c);

/* The length of the unpadded base64url of len octets. */
size_t b64url_len(size_t len);

/* Writes the unpadded base64url of in to dst (b64url_len(len) characters, no NUL); returns that. */
size_t b64url_put(char *dst, const unsigned char *in, size_t len);

/* Unpadded base64url (RFC 4648 section 5). Returns a malloc'd NUL-terminated string, or NULL. */
char *b64url_encode(const unsigned char *in, size_t len) CF_MUST;

/*
 * Decodes unpadded (or correctly padded) base64url; rejects any other character (including '+',
 * '/' and white space), a length that cannot be base64, and non-zero pad bits (RFC 4648 3.5).
 * *out is malloc'd (also for empty input) and must be freed; on failure *out is NULL.
 */
int b64url_decode(const char *in, unsigned char **out, size_t *outlen) CF_MUST;

#endif
