/* txtdata.c - TXT values to and from the quoted character-strings that DNS provider APIs use. */
#include "txtdata.h"

#include <stdlib.h>
#include <string.h>

#define TXTDATA_VALUE_MAX 4000 /* Route 53's longest Value; far above any dns-persist-01 record */

bool
txtdata_value_ok(const char *value)
{
	size_t n;

	if (value == NULL || (n = strlen(value)) == 0 || n > TXTDATA_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
			return false;
	return true;
}

int
txtdata_quote(cf_buf *b, const char *value, cf_err *err)
{
	size_t n, i;

	if (!txtdata_value_ok(value)) {
		cf_errf(err, "TXT value is empty, longer than %d octets or not printable ASCII",
		    TXTDATA_VALUE_MAX);
		return -1;
	}
	n = strlen(value);
	for (i = 0; i < n; i++) {
		/* a new character-string every 255 octets of the value (escapes do not count) */
		if (i % TXTDATA_STRING_MAX == 0 &&
		    cf_buf_append(b, i == 0 ? "\"" : "\" \"", i == 0 ? 1 : 3) != 0)
			goto oom;
		if ((value[i] == '"' || value[i] == '\\') && cf_buf_append(b, "\\", 1) != 0)
			goto oom;
		if (cf_buf_append(b, &value[i], 1) != 0)
			goto oom;
	}
	if (cf_buf_append(b, "\"", 1) != 0)
		goto oom;
	return 0;
oom:
	cf_errf(err, "TXT value: out of memory");
	return -1;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Reads the escape at s[*i] == '\\' (the \ included) into *oct, *i after it: \DDD decimal
 * (RFC 1035) or \ooo octal (Route 53), else the next octet itself.
 */
static int
read_escape(const char *s, size_t n, size_t *i, enum txtdata_dialect d, char *oct, cf_err *err)
{
	int base = d == TXTDATA_ROUTE53 ? 8 : 10, v = 0;
	char top = d == TXTDATA_ROUTE53 ? '7' : '9';
	size_t j = *i + 1;

	if (j >= n) {
		cf_errf(err, "TXT data ends with a lone '\\'");
		return -1;
	}
	if (s[j] >= '0' && s[j] <= '9') {
		for (int k = 0; k < 3; k++, j++) {
			if (j >= n || s[j] < '0' || s[j] > top) {
				cf_errf(err, "TXT data has a numeric escape that is not 3 %s digits",
				    base == 8 ? "octal" : "decimal");
				return -1;
			}
			v = v * base + (s[j] - '0');
		}
		if (v > 255) {
			cf_errf(err, "TXT data has a numeric escape above 255");
			return -1;
		}
		*oct = (char)v;
		*i = j;
		return 0;
	}
	*oct = s[j];
	*i = j + 1;
	return 0;
}

char *
txtdata_unquote(const char *text, size_t n, enum txtdata_dialect d, size_t *len, cf_err *err)
{
	cf_buf b = { 0 };
	size_t i = 0;

	if (len != NULL)
		*len = 0;
	if (text == NULL) {
		cf_errf(err, "txtdata_unquote: no text");
		return NULL;
	}
	if (cf_buf_append(&b, "", 0) != 0)
		goto oom;
	if (d == TXTDATA_RFC1035 && (n == 0 || text[0] != '"')) {
		/* a legacy unquoted value: the text is the value */
		if (cf_buf_append(&b, text, n) != 0)
			goto oom;
		goto done;
	}
	while (i < n) {
		bool quoted;
		size_t strlen0 = b.len;

		while (i < n && is_blank(text[i]))
			i++;
		if (i >= n)
			break;
		quoted = text[i] == '"';
		if (quoted)
			i++;
		for (;;) {
			char oct;

			if (i >= n) {
				if (quoted) {
					cf_errf(err, "TXT data has an unclosed '\"'");
					goto fail;
				}
				break;
			}
			if (quoted && text[i] == '"') {
				i++;
				break;
			}
			if (!quoted && (is_blank(text[i]) || text[i] == '"'))
				break;
			if (text[i] == '\\') {
				if (read_escape(text, n, &i, d, &oct, err) != 0)
					goto fail;
			} else {
				oct = text[i++];
			}
			if (cf_buf_append(&b, &oct, 1) != 0)
				goto oom;
		}
		if (b.len - strlen0 > TXTDATA_STRING_MAX) {
			cf_errf(err, "TXT data has a character-string of %zu octets (at most %d)",
			    b.len - strlen0, TXTDATA_STRING_MAX);
			goto fail;
		}
		if (quoted && i < n && !is_blank(text[i])) {
			cf_errf(err, "TXT data has no space after a closing '\"'");
			goto fail;
		}
	}
done:
	if (len != NULL)
		*len = b.len;
	return b.data;
oom:
	cf_errf(err, "TXT data: out of memory");
fail:
	cf_buf_free(&b);
	return NULL;
}

bool
txtdata_equal(const char *text, size_t n, enum txtdata_dialect d, const char *value)
{
	size_t len;
	char *v = txtdata_unquote(text, n, d, &len, NULL);
	bool eq = v != NULL && len == strlen(value) && memcmp(v, value, len) == 0;

	free(v);
	return eq;
}
