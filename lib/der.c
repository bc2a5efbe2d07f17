/* der.c - a minimal DER writer and reader (X.690), PEM armor, and an X.509 certificate's fields. */
#include "der.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

/* ---- writer ---- */

void
der_w_init(struct der_w *w, size_t hint)
{
	memset(w, 0, sizeof(*w));
	if (hint == 0)
		hint = 256;
	if ((w->buf = malloc(hint)) == NULL)
		w->err = 1;
	else
		w->cap = hint;
}

void
der_w_free(struct der_w *w)
{
	if (w == NULL)
		return;
	if (w->buf != NULL) {
		OPENSSL_cleanse(w->buf, w->cap);
		free(w->buf);
	}
	memset(w, 0, sizeof(*w));
}

/* Makes room for n more octets in front; 0 or -1 (and w->err set). */
static int
der_w_room(struct der_w *w, size_t n)
{
	unsigned char *nb;
	size_t cap;

	if (w->err)
		return -1;
	if (w->cap - w->len >= n)
		return 0;
	cap = w->cap;
	while (cap - w->len < n) {
		if (cap > SIZE_MAX / 2) {
			w->err = 1;
			return -1;
		}
		cap *= 2;
	}
	/* a fresh buffer rather than realloc, so that the old one can be wiped */
	if ((nb = malloc(cap)) == NULL) {
		w->err = 1;
		return -1;
	}
	memcpy(nb + cap - w->len, der_w_data(w), w->len);
	OPENSSL_cleanse(w->buf, w->cap);
	free(w->buf);
	w->buf = nb;
	w->cap = cap;
	return 0;
}

void
der_put(struct der_w *w, const void *p, size_t n)
{
	if (der_w_room(w, n) != 0)
		return;
	if (n > 0)
		memcpy(w->buf + w->cap - w->len - n, p, n);
	w->len += n;
}

void
der_wrap(struct der_w *w, unsigned char tag, size_t mark)
{
	unsigned char hdr[6];
	size_t n, i = sizeof(hdr);

	if (w->err)
		return;
	n = w->len - mark;
	if (n < 0x80) {
		hdr[--i] = (unsigned char)n;
	} else {
		size_t v = n, k = 0;

		while (v > 0 && k < 4) {
			hdr[--i] = (unsigned char)(v & 0xff);
			v >>= 8;
			k++;
		}
		if (v > 0) { /* over 4 GiB: never built here */
			w->err = 1;
			return;
		}
		hdr[--i] = (unsigned char)(0x80 | k);
	}
	hdr[--i] = tag;
	der_put(w, hdr + i, sizeof(hdr) - i);
}

void
der_put_tlv(struct der_w *w, unsigned char tag, const void *p, size_t n)
{
	size_t mark = w->len;

	der_put(w, p, n);
	der_wrap(w, tag, mark);
}

/* ---- reader ---- */

int
der_next(struct der_span *in, struct der_span *contents, struct der_span *tlv)
{
	const unsigned char *p = in->p;
	size_t left = in->len, len, hl;
	unsigned char tag;

	if (left < 2)
		return -1;
	tag = p[0];
	if ((tag & 0x1f) == 0x1f) /* high-tag-number form: nothing here uses it */
		return -1;
	if (p[1] < 0x80) {
		len = p[1];
		hl = 2;
	} else {
		size_t k = p[1] & 0x7f, i;

		/* 0x80 is the indefinite form (BER only); over 4 length octets is never needed */
		if (k == 0 || k > 4 || left - 2 < k || p[2] == 0)
			return -1;
		for (len = 0, i = 0; i < k; i++)
			len = len << 8 | p[2 + i];
		if (len < 0x80) /* DER: the short form when it fits */
			return -1;
		hl = 2 + k;
	}
	if (len > left - hl)
		return -1;
	if (contents != NULL) {
		contents->p = p + hl;
		contents->len = len;
	}
	if (tlv != NULL) {
		tlv->p = p;
		tlv->len = hl + len;
	}
	in->p = p + hl + len;
	in->len = left - hl - len;
	return tag;
}

int
der_expect(struct der_span *in, unsigned char want, struct der_span *contents, struct der_span *tlv)
{
	struct der_span save = *in;

	if (in->len == 0 || in->p[0] != want || der_next(in, contents, tlv) != want) {
		*in = save;
		return -1;
	}
	return 0;
}

int
der_oid_ok(struct der_span oid)
{
	size_t i;

	if (oid.len == 0 || (oid.p[oid.len - 1] & 0x80) != 0)
		return -1;
	for (i = 0; i < oid.len; i++) {
		/* a sub-identifier never starts with 0x80 (a leading zero group) */
		if (oid.p[i] == 0x80 && (i == 0 || (oid.p[i - 1] & 0x80) == 0))
			return -1;
	}
	return 0;
}

int
der_int_ok(struct der_span in)
{
	if (in.len == 0)
		return -1;
	if (in.len > 1 && ((in.p[0] == 0x00 && (in.p[1] & 0x80) == 0) ||
	    (in.p[0] == 0xff && (in.p[1] & 0x80) != 0)))
		return -1;
	return 0;
}

int
der_int_hex(struct der_span in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mag[64];
	size_t i, n, o = 0;
	int neg;

	if (der_int_ok(in) != 0 || in.len > sizeof(mag) || outlen == 0)
		return -1;
	neg = (in.p[0] & 0x80) != 0;
	memcpy(mag, in.p, in.len);
	if (neg) { /* the magnitude of a two's complement value: invert and add one */
		unsigned carry = 1;

		for (i = in.len; i-- > 0;) {
			unsigned v = (unsigned)(unsigned char)~mag[i] + carry;

			mag[i] = (unsigned char)v;
			carry = v >> 8;
		}
	}
	for (i = 0; i < in.len && mag[i] == 0; i++)
		;
	n = in.len - i;
	if (n == 0) {
		if (outlen < 2)
			return -1;
		memcpy(out, "0", 2);
		return 0;
	}
	if ((size_t)neg + 2 * n + 1 > outlen)
		return -1;
	if (neg)
		out[o++] = '-';
	for (; i < in.len; i++) {
		out[o++] = hex[mag[i] >> 4];
		out[o++] = hex[mag[i] & 0x0f];
	}
	out[o] = '\0';
	return 0;
}

/* n decimal digits at p, or -1. */
static int
digits(const unsigned char *p, int n)
{
	int v = 0;

	while (n-- > 0) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	return v;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
der_time_unix(int tag, struct der_span in, int64_t *out)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const unsigned char *p = in.p;
	int y, mo, d, h, mi, s, leap;

	if (tag == DER_UTCTIME && in.len == 13) {
		if ((y = digits(p, 2)) < 0)
			return -1;
		y += y >= 50 ? 1900 : 2000;
		p += 2;
	} else if (tag == DER_GENERALIZEDTIME && in.len == 15) {
		if ((y = digits(p, 4)) < 0)
			return -1;
		p += 4;
	} else {
		return -1;
	}
	mo = digits(p, 2);
	d = digits(p + 2, 2);
	h = digits(p + 4, 2);
	mi = digits(p + 6, 2);
	s = digits(p + 8, 2);
	if (p[10] != 'Z' || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    s < 0 || s > 59)
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] + (mo == 2 ? leap : 0))
		return -1;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return 0;
}

/* ---- PEM ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
pem_encode(const char *label, const unsigned char *der, size_t len)
{
	size_t labellen = strlen(label), b64len, lines, total, i, col = 0;
	char *out, *p;

	if (len > SIZE_MAX / 2)
		return NULL;
	b64len = (len + 2) / 3 * 4;
	lines = (b64len + 63) / 64;
	total = 2 * (labellen + 16) + b64len + lines + 1;
	if ((out = malloc(total)) == NULL)
		return NULL;
	p = out;
	memcpy(p, "-----BEGIN ", 11);
	memcpy(p + 11, label, labellen);
	memcpy(p + 11 + labellen, "-----\n", 6);
	p += 17 + labellen;
	for (i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			v |= (uint32_t)der[i + 1] << 8;
		if (n > 2)
			v |= der[i + 2];
		p[0] = b64_alphabet[(v >> 18) & 0x3f];
		p[1] = b64_alphabet[(v >> 12) & 0x3f];
		p[2] = n > 1 ? b64_alphabet[(v >> 6) & 0x3f] : '=';
		p[3] = n > 2 ? b64_alphabet[v & 0x3f] : '=';
		p += 4;
		if ((col += 4) == 64) {
			*p++ = '\n';
			col = 0;
		}
	}
	if (col > 0)
		*p++ = '\n';
	memcpy(p, "-----END ", 9);
	memcpy(p + 9, label, labellen);
	memcpy(p + 9 + labellen, "-----\n", 7); /* with the NUL */
	return out;
}

/* Skips "\n" or "\r\n" at *p; 0, or -1 when there is neither. */
static int
eol(const char **p)
{
	if (**p == '\r')
		(*p)++;
	if (**p != '\n')
		return -1;
	(*p)++;
	return 0;
}

int
pem_decode_strict(const char *pem, const char *label, unsigned char **der, size_t *len)
{
	size_t labellen = strlen(label), o = 0, cap, nchars = 0, npad = 0;
	const char *p, *body, *end;
	unsigned char *buf = NULL;
	uint32_t acc = 0;
	int bits = 0;

	*der = NULL;
	*len = 0;
	if (strncmp(pem, "-----BEGIN ", 11) != 0 || strncmp(pem + 11, label, labellen) != 0 ||
	    strncmp(pem + 11 + labellen, "-----", 5) != 0)
		return -1;
	p = pem + 16 + labellen;
	if (eol(&p) != 0)
		return -1;
	body = p;
	/* the END line bounds the body, and the decoded size */
	for (end = body; *end != '\0' && *end != '-'; end++)
		;
	if (strncmp(end, "-----END ", 9) != 0 || strncmp(end + 9, label, labellen) != 0 ||
	    strncmp(end + 9 + labellen, "-----", 5) != 0)
		return -1;
	p = end + 14 + labellen; /* the END line ends there */
	if (eol(&p) != 0)
		return -1;
	p = body;
	cap = (size_t)(end - body) / 4 * 3 + 3;
	if ((buf = malloc(cap)) == NULL)
		return -1;
	while (p < end) {
		size_t linelen = 0;

		for (; p < end && *p != '\r' && *p != '\n'; p++, linelen++) {
			int v;

			if (*p == '=') {
				npad++;
				nchars++;
				continue;
			}
			if (npad > 0 || (v = b64_digit((unsigned char)*p, false)) < 0)
				goto fail;
			nchars++;
			acc = acc << 6 | (uint32_t)v;
			if ((bits += 6) >= 8) {
				bits -= 8;
				buf[o++] = (unsigned char)(acc >> bits);
			}
		}
		if (linelen == 0 || linelen > 64 || eol(&p) != 0)
			goto fail;
	}
	/* whole quanta, at most two '=', and the bits left over (2 or 4) zero */
	if (nchars % 4 != 0 || npad > 2 || (npad > 0 && bits != (npad == 1 ? 2 : 4)) ||
	    (npad == 0 && bits != 0) || (acc & ((1u << bits) - 1)) != 0 || o == 0)
		goto fail;
	*der = buf;
	*len = o;
	return 0;
fail:
	free(buf);
	return -1;
}

/* ---- certificates ---- */

/* A BIT STRING's contents: the unused-bits octet (0 to 7, 0 when there are no bits) first. */
static int
bit_string_ok(struct der_span c)
{
	return c.len >= 1 && c.p[0] <= 7 && (c.len > 1 || c.p[0] == 0) ? 0 : -1;
}

/*
 * AlgorithmIdentifier { OID, parameters }: the parameters absent, NULL, an OID or a SEQUENCE
 * (every algorithm a CA uses; anything else is refused rather than interpreted).
 */
static int
algid_ok(struct der_span *in, struct der_span *tlv)
{
	struct der_span seq, oid, par;
	int tag;

	if (der_expect(in, DER_SEQUENCE, &seq, tlv) != 0 ||
	    der_expect(&seq, DER_OID, &oid, NULL) != 0 || der_oid_ok(oid) != 0)
		return -1;
	if (seq.len == 0)
		return 0;
	if ((tag = der_next(&seq, &par, NULL)) < 0 || seq.len != 0)
		return -1;
	if (tag == DER_NULL)
		return par.len == 0 ? 0 : -1;
	if (tag == DER_OID)
		return der_oid_ok(par);
	return tag == DER_SEQUENCE ? 0 : -1;
}

/* 0 when p holds well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int
utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i], k, j;
		uint32_t v;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, v = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, v = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, v = c & 0x07;
		else
			return -1;
		if (n - i <= k)
			return -1;
		for (j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return -1;
			v = v << 6 | (p[i + j] & 0x3f);
		}
		if ((k == 2 && v < 0x800) || (k == 3 && (v < 0x10000 || v > 0x10ffff)) ||
		    (v >= 0xd800 && v <= 0xdfff))
			return -1;
		i += k + 1;
	}
	return 0;
}

/*
 * A Name (RFC 5280 4.1.2.4): SEQUENCE OF non-empty SET OF { OID, value }, each value a string type
 * certificates use, with the contents its type requires (UTF-8, whole BMP and Universal
 * characters, no surrogates). Stricter than OpenSSL, never more lenient.
 */
static int
name_ok(struct der_span *in, struct der_span *tlv)
{
	struct der_span name, rdn, atv, oid, val;

	if (der_expect(in, DER_SEQUENCE, &name, tlv) != 0)
		return -1;
	while (name.len > 0) {
		if (der_expect(&name, DER_SET, &rdn, NULL) != 0 || rdn.len == 0)
			return -1;
		while (rdn.len > 0) {
			size_t i;
			int tag;

			if (der_expect(&rdn, DER_SEQUENCE, &atv, NULL) != 0 ||
			    der_expect(&atv, DER_OID, &oid, NULL) != 0 || der_oid_ok(oid) != 0 ||
			    (tag = der_next(&atv, &val, NULL)) < 0 || atv.len != 0)
				return -1;
			switch (tag) {
			case DER_UTF8STRING:
				if (utf8_ok(val.p, val.len) != 0)
					return -1;
				break;
			case DER_PRINTABLESTRING:
			case DER_IA5STRING:
			case 0x12: /* NumericString */
			case 0x14: /* TeletexString */
				break;
			case 0x1e: /* BMPString: UTF-16 code units, here without surrogates */
				if (val.len % 2 != 0)
					return -1;
				for (i = 0; i < val.len; i += 2) {
					if (val.p[i] >= 0xd8 && val.p[i] <= 0xdf)
						return -1;
				}
				break;
			case 0x1c: /* UniversalString: UCS-4 */
				if (val.len % 4 != 0)
					return -1;
				for (i = 0; i < val.len; i += 4) {
					uint32_t v = (uint32_t)val.p[i] << 24 |
					    (uint32_t)val.p[i + 1] << 16 |
					    (uint32_t)val.p[i + 2] << 8 | val.p[i + 3];

					if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
						return -1;
				}
				break;
			default:
				return -1;
			}
		}
	}
	return 0;
}

/* id-ce-authorityKeyIdentifier, 2.5.29.35: an OBJECT IDENTIFIER's contents */
static const unsigned char oid_aki[] = { 0x55, 0x1d, 0x23 };

int
der_cert_parse(const unsigned char *der, size_t len, struct der_cert *out)
{
	struct der_span in = { der, len }, cert, tbs, c, val, spki, exts, ext, crit, extv;

	memset(out, 0, sizeof(*out));
	/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }, alone */
	if (der_expect(&in, DER_SEQUENCE, &cert, NULL) != 0 || in.len != 0 ||
	    der_expect(&cert, DER_SEQUENCE, &tbs, NULL) != 0 || algid_ok(&cert, NULL) != 0 ||
	    der_expect(&cert, DER_BIT_STRING, &c, NULL) != 0 || bit_string_ok(c) != 0 ||
	    cert.len != 0)
		return -1;

	/* version [0] EXPLICIT INTEGER { v1(0), v2(1), v3(2) } DEFAULT v1 */
	if (der_expect(&tbs, DER_CONSTRUCTED | DER_CONTEXT | 0, &c, NULL) == 0) {
		if (der_expect(&c, DER_INTEGER, &val, NULL) != 0 || c.len != 0 || val.len != 1 ||
		    val.p[0] > 2)
			return -1;
	}
	if (der_expect(&tbs, DER_INTEGER, &out->serial, NULL) != 0 ||
	    der_int_ok(out->serial) != 0 || algid_ok(&tbs, NULL) != 0 ||
	    name_ok(&tbs, &out->issuer) != 0)
		return -1;

	/* Validity ::= SEQUENCE { notBefore Time, notAfter Time } */
	if (der_expect(&tbs, DER_SEQUENCE, &c, NULL) != 0 ||
	    (out->not_before_tag = der_next(&c, &out->not_before, NULL)) < 0 ||
	    (out->not_after_tag = der_next(&c, &out->not_after, NULL)) < 0 || c.len != 0 ||
	    (out->not_before_tag != DER_UTCTIME && out->not_before_tag != DER_GENERALIZEDTIME) ||
	    (out->not_after_tag != DER_UTCTIME && out->not_after_tag != DER_GENERALIZEDTIME))
		return -1;

	/* subject; SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING } */
	if (name_ok(&tbs, NULL) != 0 || der_expect(&tbs, DER_SEQUENCE, &spki, NULL) != 0 ||
	    algid_ok(&spki, &out->spki_alg) != 0 ||
	    der_expect(&spki, DER_BIT_STRING, &out->spki_key, NULL) != 0 ||
	    bit_string_ok(out->spki_key) != 0 || spki.len != 0)
		return -1;

	/* issuerUniqueID [1] IMPLICIT, subjectUniqueID [2] IMPLICIT, extensions [3] EXPLICIT */
	if (der_expect(&tbs, DER_CONTEXT | 1, &c, NULL) == 0 && bit_string_ok(c) != 0)
		return -1;
	if (der_expect(&tbs, DER_CONTEXT | 2, &c, NULL) == 0 && bit_string_ok(c) != 0)
		return -1;
	if (der_expect(&tbs, DER_CONSTRUCTED | DER_CONTEXT | 3, &c, NULL) == 0) {
		if (der_expect(&c, DER_SEQUENCE, &exts, NULL) != 0 || c.len != 0)
			return -1;
		/* Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue } */
		while (exts.len > 0) {
			if (der_expect(&exts, DER_SEQUENCE, &ext, NULL) != 0 ||
			    der_expect(&ext, DER_OID, &val, NULL) != 0 || der_oid_ok(val) != 0)
				return -1;
			if (der_expect(&ext, DER_BOOLEAN, &crit, NULL) == 0 && crit.len != 1)
				return -1;
			if (der_expect(&ext, DER_OCTET_STRING, &extv, NULL) != 0 || ext.len != 0)
				return -1;
			if (val.len == sizeof(oid_aki) && memcmp(val.p, oid_aki, sizeof(oid_aki)) == 0) {
				out->aki = extv;
				out->aki_count++;
			}
		}
	}
	return tbs.len == 0 ? 0 : -1;
}
