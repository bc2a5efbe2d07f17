/* dnsname.c - normalization of operator-typed DNS identifiers to lowercase A-label form. */
#include "dnsname.h"

#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 63        /* octets in one label (RFC 1035 2.3.4) */
#define NAME_OCTETS_MAX 253 /* octets in a name without the trailing dot */
#define RAW_MAX 1024        /* longest input looked at: 4 UTF-8 octets for each of 253 characters */
#define NAME_SHOW 64        /* input octets quoted in a message before it is cut */
#define LABEL_SHOW 20       /* label octets quoted in a message */

/*
 * IDNA2008 with the UTS #46 non-transitional mapping (so "BÜCHER" maps to "bücher" and "ß" stays
 * "ß"). libidn2 before 2.0 knows no UTS #46 flags; it then does plain IDNA2008, which is why ASCII
 * letters are lowercased before libidn2 sees the name. There is deliberately no fallback to
 * transitional processing, as curl does: it maps "a<ZWJ>b" silently to "ab" (a different name from
 * the one the operator typed) and turns symbols such as U+2603 into A-labels that are not valid
 * IDNA2008, which CAs refuse to issue for.
 */
#if IDN2_VERSION_NUMBER >= 0x02000000
#define DNSNAME_IDN2_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)
#else
#define DNSNAME_IDN2_FLAGS IDN2_NFC_INPUT
#endif

static bool
is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static void
ascii_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static bool
has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* True when a label of name has "--" in its third and fourth octets ("xn--", or reserved). */
static bool
has_rldh_label(const char *name)
{
	const char *p = name;

	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		if (len >= 4 && p[2] == '-' && p[3] == '-')
			return true;
		if (dot == NULL)
			return false;
		p = dot + 1;
	}
}

static const char *
idn_reason(int rc)
{
	switch (rc) {
	case IDN2_TOO_BIG_LABEL:
	case IDN2_PUNYCODE_BIG_OUTPUT:
		return "a label is longer than 63 octets after IDNA conversion";
	case IDN2_TOO_BIG_DOMAIN:
		return "the name is longer than 253 octets after IDNA conversion";
	case IDN2_ENCODING_ERROR:
		return "the name is not valid UTF-8";
	default:
		return idn2_strerror(rc);
	}
}

/*
 * Runs libidn2 over a name without wildcard and trailing dot. Returns a malloc'd string, or NULL
 * with err set (q is the quoted input for the message).
 */
static char *
idn_to_ascii(const char *name, const char *q, cf_err *err)
{
	char *a = NULL;
	char *res = NULL;
	int rc;

	rc = idn2_to_ascii_8z(name, &a, DNSNAME_IDN2_FLAGS);
	if (rc == IDN2_INVALID_FLAGS) {
		/* A libidn2 older than the header it was built with: plain IDNA2008. */
		rc = idn2_to_ascii_8z(name, &a, IDN2_NFC_INPUT);
	}
	if (rc != IDN2_OK) {
		cf_errf(err, "invalid name \"%s\": not a valid IDNA2008 name: %s", q, idn_reason(rc));
		goto out;
	}
	res = strdup(a);
	if (res == NULL)
		cf_errf(err, "invalid name \"%s\": out of memory", q);
out:
	idn2_free(a);
	return res;
}

/*
 * Checks that every A-label of name (LDH, lower case) decodes to a U-label that IDNA2008 encodes
 * back to the same A-label: libidn2's to_ascii passes an A-label of its input through without
 * looking at what it decodes to ("xn--bchaaaaaaacomaaeraaafa-kva" holds U+00A0). "ab--" labels
 * are reserved and refused by the encoding. Returns 0, or -1 with err set.
 */
static int
check_alabels(const char *name, const char *q, cf_err *err)
{
	char *u = NULL, *chk = NULL;
	int rc = -1, irc;

	if (!has_rldh_label(name))
		return 0;
	if ((irc = idn2_to_unicode_8z8z(name, &u, 0)) != IDN2_OK) {
		cf_errf(err, "invalid name \"%s\": not a valid IDNA2008 name: %s", q, idn_reason(irc));
		goto out;
	}
	if ((chk = idn_to_ascii(u, q, err)) == NULL)
		goto out;
	if (strcmp(chk, name) != 0) {
		cf_errf(err, "invalid name \"%s\": A-label is not in normal form", q);
		goto out;
	}
	rc = 0;
out:
	idn2_free(u);
	free(chk);
	return rc;
}

/*
 * Checks the raw input (trailing dot already removed) for empty labels and the wildcard's place.
 * Sets *wild. Returns 0, or -1 with err set.
 */
static int
check_structure(const char *work, const char *q, bool *wild, cf_err *err)
{
	const char *p = work;
	size_t idx = 0;

	*wild = false;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		if (len == 0) {
			cf_errf(err, "invalid name \"%s\": empty label", q);
			return -1;
		}
		if (memchr(p, '*', len) != NULL) {
			if (idx > 0) {
				cf_errf(err, "invalid name \"%s\": wildcard must be the leftmost label", q);
				return -1;
			}
			if (len != 1) {
				cf_errf(err, "invalid name \"%s\": wildcard must be the whole leftmost "
				    "label \"*\"", q);
				return -1;
			}
			*wild = true;
		}
		if (dot == NULL)
			break;
		p = dot + 1;
		idx++;
	}
	if (*wild && idx < 2) {
		cf_errf(err, "invalid name \"%s\": a wildcard needs at least two labels after \"*\"", q);
		return -1;
	}
	return 0;
}

/*
 * Validates the LDH A-label form of a converted name without its wildcard (wild says whether
 * "*." will be put in front). Returns 0, or -1 with err set.
 */
static int
check_ldh(const char *name, bool wild, const char *q, cf_err *err)
{
	const char *p = name;
	const char *top = name;
	size_t nlabels = 0, total;
	char ql[LABEL_SHOW * 4 + 8];

	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		cf_quote(ql, sizeof(ql), p, len, LABEL_SHOW);
		if (len == 0) {
			cf_errf(err, "invalid name \"%s\": empty label", q);
			return -1;
		}
		if (len > LABEL_MAX) {
			cf_errf(err, "invalid name \"%s\": label \"%s\" is %zu octets (max %d)", q, ql,
			    len, LABEL_MAX);
			return -1;
		}
		for (size_t i = 0; i < len; i++) {
			char qc[8];

			if (is_ldh((unsigned char)p[i]))
				continue;
			cf_quote(qc, sizeof(qc), p + i, 1, 1);
			cf_errf(err, "invalid name \"%s\": label \"%s\" contains '%s' (only letters, "
			    "digits and hyphen are allowed)", q, ql, qc);
			return -1;
		}
		if (p[0] == '-' || p[len - 1] == '-') {
			cf_errf(err, "invalid name \"%s\": label \"%s\" %s with a hyphen", q, ql,
			    p[0] == '-' ? "begins" : "ends");
			return -1;
		}
		nlabels++;
		top = p;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	total = strlen(name) + (wild ? 2 : 0);
	if (total > NAME_OCTETS_MAX) {
		cf_errf(err, "invalid name \"%s\": name is %zu octets (max %d)", q, total,
		    NAME_OCTETS_MAX);
		return -1;
	}
	if (nlabels < 2) {
		cf_errf(err, "invalid name \"%s\": %s", q, wild ?
		    "a wildcard needs at least two labels after \"*\"" :
		    "a name needs at least two labels");
		return -1;
	}
	if (strspn(top, "0123456789") == strlen(top)) {
		cf_quote(ql, sizeof(ql), top, strlen(top), LABEL_SHOW);
		cf_errf(err, "invalid name \"%s\": top-level label \"%s\" is all-numeric (an IP "
		    "address is not a DNS name)", q, ql);
		return -1;
	}
	return 0;
}

int
dnsname_normalize(const char *in, char out[DNSNAME_MAX], cf_err *err)
{
	char q[NAME_SHOW * 4 + 8];
	char *work = NULL;  /* the input without its trailing dot, ASCII letters lowercased */
	char *conv = NULL;  /* the base name (no "*.") in A-label form */
	const char *base;
	size_t len;
	bool wild;
	int rc = -1;

	if (out != NULL)
		out[0] = '\0';
	if (in == NULL || in[0] == '\0') {
		cf_errf(err, "invalid name \"\": empty name");
		goto out;
	}
	len = strlen(in);
	cf_quote(q, sizeof(q), in, len, NAME_SHOW);
	if (out == NULL) {
		cf_errf(err, "invalid name \"%s\": no output buffer", q);
		goto out;
	}
	if (len > RAW_MAX) {
		cf_errf(err, "invalid name \"%s\": name is %zu octets (max %d)", q, len,
		    NAME_OCTETS_MAX);
		goto out;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char qc[8];

		if (c == ' ') {
			cf_errf(err, "invalid name \"%s\": contains a space", q);
			goto out;
		}
		if (c < 0x20 || c == 0x7f) {
			cf_quote(qc, sizeof(qc), in + i, 1, 1);
			cf_errf(err, "invalid name \"%s\": contains control character %s", q, qc);
			goto out;
		}
	}

	if (in[len - 1] == '.')
		len--;
	work = strndup(in, len);
	if (work == NULL) {
		cf_errf(err, "invalid name \"%s\": out of memory", q);
		goto out;
	}
	ascii_lower(work);
	if (check_structure(work, q, &wild, err) != 0)
		goto out;
	base = wild ? work + 2 : work;

	if (has_non_ascii(base)) {
		conv = idn_to_ascii(base, q, err);
		if (conv == NULL)
			goto out;
		ascii_lower(conv);
		if (check_ldh(conv, wild, q, err) != 0 || check_alabels(conv, q, err) != 0)
			goto out;
	} else {
		conv = strdup(base);
		if (conv == NULL) {
			cf_errf(err, "invalid name \"%s\": out of memory", q);
			goto out;
		}
		if (check_ldh(conv, wild, q, err) != 0)
			goto out;
		/* An A-label ("xn--") must decode to a valid U-label; "ab--" labels are reserved. */
		if (check_alabels(conv, q, err) != 0)
			goto out;
	}

	snprintf(out, DNSNAME_MAX, "%s%s", wild ? "*." : "", conv);
	rc = 0;
out:
	free(work);
	free(conv);
	return rc;
}

bool
dnsname_is_wildcard(const char *name)
{
	return name != NULL && name[0] == '*' && name[1] == '.';
}

const char *
dnsname_base(const char *name)
{
	return dnsname_is_wildcard(name) ? name + 2 : name;
}
