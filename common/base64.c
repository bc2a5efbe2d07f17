/* base64.c - base64url (RFC 4648 section 5) without padding, the digits of both alphabets, hex digits. */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
b64_digit(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
b64url_put(char *dst, const unsigned char *in, size_t len)
{
	char *p = dst;
	uint32_t v;
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
		*p++ = b64url_alphabet[(v >> 6) & 0x3f];
		*p++ = b64url_alphabet[v & 0x3f];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = b64url_alphabet[(v >> 18) & 0x3f];
		*p++ = b64url_alphabet[(v >> 12) & 0x3f];
		*p++ = b64url_alphabet[(v >> 6) & 0x3f];
	}
	return (size_t)(p - dst);
}

int
hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
b64url_len(size_t len)
{
	return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

char *
b64url_encode(const unsigned char *in, size_t len)
{
	char *out;

	if (in == NULL && len > 0)
		return NULL;
	if (len / 3 >= SIZE_MAX / 4 - 1)
		return NULL;
	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	out[b64url_put(out, in, len)] = '\0';
	return out;
}

int
b64url_decode(const char *in, unsigned char **out, size_t *outlen)
{
	unsigned char *buf = NULL;
	size_t len, n, i, o = 0;
	uint32_t acc = 0;
	int bits = 0, v, rc = -1;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (in == NULL || out == NULL || outlen == NULL)
		return -1;

	len = n = strlen(in);
	while (n > 0 && in[n - 1] == '=')
		n--;
	/*
	 * Padding, when present, completes the last quantum: at most two '=' and a multiple of four
	 * characters overall. One character left over can never be base64.
	 */
	if (n != len && (len - n > 2 || len % 4 != 0))
		goto out;
	if (n % 4 == 1)
		goto out;

	/* n / 4 * 3 for the full quanta, at most 2 more, 1 so that malloc(0) never happens. */
	if ((buf = malloc(n / 4 * 3 + 3)) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if ((v = b64_digit((unsigned char)in[i], true)) < 0)
			goto out;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* The 2 or 4 bits left over must be zero: only the canonical encoding is accepted. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		goto out;

	*out = buf;
	*outlen = o;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}
