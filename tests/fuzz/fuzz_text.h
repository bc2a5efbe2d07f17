/* fuzz_text.h - what the fuzz targets ask of a message: printable text, cf_quote's cut included. */
#ifndef CF_FUZZ_TEXT_H
#define CF_FUZZ_TEXT_H

#include <stddef.h>
#include <string.h>

/*
 * Whether s[i] (of n) is printable ASCII or part of the "\xe2\x80\xa6" (U+2026) that cf_quote puts
 * where it cuts a text; a message cut by its buffer may end inside that sequence.
 */
static int
printable(const char *s, size_t n, size_t i)
{
	static const char ell[] = "\xe2\x80\xa6";

	if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x7e)
		return 1;
	for (size_t k = 0; k < 3; k++)
		if (i >= k && s[i] == ell[k] && memcmp(s + i - k, ell, n - (i - k) < 3 ? n - (i - k) : 3) == 0)
			return 1;
	return 0;
}

#endif
