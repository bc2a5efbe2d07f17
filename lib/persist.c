/* persist.c - dns-persist-01 record names, record values (drafts -01 and -02) and their parser. */
#include "persist.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dnsname.h"
#include "base64.h"

#define RECORD_LABEL "_validation-persist"
#define NAME_OCTETS_MAX 253 /* octets in a DNS name without the trailing dot */
#define LABEL_MAX 63        /* octets in one DNS label */
#define HASH_ALG "sha-256"  /* RFC 6920 Hash Name String every -02 client and CA must support */
#define THUMBPRINT_LEN 43   /* unpadded base64url of a SHA-256 JWK thumbprint */
#define VALUE_MAX 4096      /* longest record value the parser looks at (see persist_record_parse) */
#define SHOW 64             /* input octets quoted in a message before it is cut */

/* The characters RFC 8659 4.2 allows in a parameter value: no space, no ';', no control. */
static bool
is_value_char(unsigned char c)
{
	return (c >= 0x21 && c <= 0x3a) || (c >= 0x3c && c <= 0x7e);
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * RFC 8659 4.2: label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT) ), which is also the syntax
 * of a tag. Letters and digits, hyphens only inside.
 */
static bool
is_label(const char *s, size_t n)
{
	if (n == 0 || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 8659 4.2 issuer-domain-name = label *("." label), within the DNS length limits. */
static bool
is_issuer_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_OCTETS_MAX)
		return false;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t len = dot ? (size_t)(dot - s) : strlen(s);

		if (len > LABEL_MAX || !is_label(s, len))
			return false;
		if (dot == NULL)
			return true;
		s = dot + 1;
	}
}

/*
 * Checks that v may stand in a record value. what names the input ("account URL").
 * Returns 0, or -1 with err set.
 */
static int
check_value(const char *what, const char *v, cf_err *err)
{
	char qv[SHOW * 4 + 8], qc[8];

	if (v == NULL || v[0] == '\0') {
		cf_errf(err, "record value: %s is empty", what);
		return -1;
	}
	for (size_t i = 0; v[i] != '\0'; i++) {
		if (is_value_char((unsigned char)v[i]))
			continue;
		cf_quote(qv, sizeof(qv), v, strlen(v), SHOW);
		cf_quote(qc, sizeof(qc), v + i, 1, 1);
		cf_errf(err, "record value: %s \"%s\": character '%s' at offset %zu is not allowed "
		    "(a value allows 0x21-0x3A and 0x3C-0x7E)", what, qv, qc, i);
		return -1;
	}
	return 0;
}

/*
 * Checks that name is already in the form dnsname_normalize() produces; a wildcard only when
 * allow_wild. what names the input in the message. Returns 0, or -1 with err set.
 */
/*
 * True for a name that is plainly in normal form: lowercase letters, digits and inner hyphens in
 * labels of 1 to 63 octets, at least two labels, 253 octets at most, an optional leading "*.", no
 * "--" in positions 3-4 (those, A-labels among them, take the full check), a top label that is
 * not all digits. False means "check it the long way", not "invalid".
 */
static bool
simple_normalized(const char *name)
{
	const char *p = dnsname_base(name), *label = p;
	size_t total = strlen(name), labels = 0;
	bool alldigit = true;

	if (total == 0 || total > 253)
		return false;
	for (;; p++) {
		char c = *p;
		if (c == '.' || c == '\0') {
			size_t n = (size_t)(p - label);
			if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
				return false;
			if (n >= 4 && label[2] == '-' && label[3] == '-')
				return false;
			labels++;
			if (c == '\0')
				break;
			label = p + 1;
			alldigit = true;
			continue;
		}
		if (c >= '0' && c <= '9')
			continue;
		alldigit = false;
		if (!((c >= 'a' && c <= 'z') || c == '-'))
			return false;
	}
	return labels >= 2 && !alldigit;
}

static int
check_normalized(const char *what, const char *name, bool allow_wild, cf_err *err)
{
	char norm[DNSNAME_MAX];
	char qn[SHOW * 4 + 8];
	cf_err e;

	if (name == NULL) {
		cf_errf(err, "%s: no name given", what);
		return -1;
	}
	/* names from the database are normalized already: the cheap check settles almost all */
	if (!simple_normalized(name)) {
		if (dnsname_normalize(name, norm, &e) != 0) {
			cf_errf(err, "%s: %s", what, e.msg);
			return -1;
		}
		if (strcmp(norm, name) != 0) {
			cf_quote(qn, sizeof(qn), name, strlen(name), SHOW);
			cf_errf(err, "%s: name \"%s\" is not normalized (expected \"%s\")", what, qn, norm);
			return -1;
		}
	}
	if (!allow_wild && dnsname_is_wildcard(name)) {
		cf_quote(qn, sizeof(qn), name, strlen(name), SHOW);
		cf_errf(err, "%s: name \"%s\" is a wildcard; use the base name the record sits at",
		    what, qn);
		return -1;
	}
	return 0;
}

int
persist_record_name(const char *identifier, char *out, size_t outlen, cf_err *err)
{
	const char *base;
	size_t n;

	if (out == NULL || outlen == 0) {
		cf_errf(err, "persist_record_name: no output buffer");
		return -1;
	}
	out[0] = '\0';
	if (check_normalized("persist_record_name", identifier, true, err) != 0)
		return -1;
	base = dnsname_base(identifier);
	n = strlen(RECORD_LABEL) + 1 + strlen(base);
	if (n > NAME_OCTETS_MAX) {
		cf_errf(err, "persist_record_name: record name for \"%s\" would be %zu octets (max %d)",
		    identifier, n, NAME_OCTETS_MAX);
		return -1;
	}
	if (n + 1 > outlen) {
		cf_errf(err, "persist_record_name: record name for \"%s\" needs %zu octets, buffer "
		    "has %zu", identifier, n + 1, outlen);
		return -1;
	}
	snprintf(out, outlen, "%s.%s", RECORD_LABEL, base);
	return 0;
}

/*
 * Draft -02 (draft-ietf-acme-dns-persist-02, 20 September 2026), section 4.1 item 3: the
 * accounturi is "<accountHashPrefix><hash-alg>/<base64url hash value>", the hash value being
 * H(length_of_domain || domain_name || key || account_URL), unpadded base64url; section 10.2
 * gives the test vectors used in tests/unit/test_persist.c.
 */
int
persist_account_hash(const char *domain, const char *thumbprint, const char *account_url,
    char out[44], cf_err *err)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char dlen;
	char *b64 = NULL;
	int rc = -1;

	if (out != NULL)
		out[0] = '\0';
	if (out == NULL) {
		cf_errf(err, "persist_account_hash: no output buffer");
		goto out;
	}
	/* "*" is the draft's opt-out that makes one value serve every domain. */
	if (domain == NULL || strcmp(domain, "*") != 0) {
		if (check_normalized("persist_account_hash: domain", domain, false, err) != 0)
			goto out;
	}
	if (thumbprint == NULL || strlen(thumbprint) != THUMBPRINT_LEN ||
	    strspn(thumbprint, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
	    THUMBPRINT_LEN) {
		char qt[SHOW * 4 + 8];

		cf_quote(qt, sizeof(qt), thumbprint ? thumbprint : "", thumbprint ? strlen(thumbprint) : 0,
		    SHOW);
		cf_errf(err, "persist_account_hash: thumbprint \"%s\" is not 43 base64url characters",
		    qt);
		goto out;
	}
	if (account_url == NULL || account_url[0] == '\0') {
		cf_errf(err, "persist_account_hash: account URL is empty");
		goto out;
	}
	for (size_t i = 0; account_url[i] != '\0'; i++) {
		unsigned char c = (unsigned char)account_url[i];

		if (c < 0x21 || c > 0x7e) {
			char qu[SHOW * 4 + 8];

			cf_quote(qu, sizeof(qu), account_url, strlen(account_url), SHOW);
			cf_errf(err, "persist_account_hash: account URL \"%s\" has a character that "
			    "is not printable US-ASCII at offset %zu", qu, i);
			goto out;
		}
	}

	dlen = (unsigned char)strlen(domain); /* at most 253: fits the one length octet */
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, &dlen, 1) != 1 ||
	    EVP_DigestUpdate(ctx, domain, dlen) != 1 ||
	    EVP_DigestUpdate(ctx, thumbprint, THUMBPRINT_LEN) != 1 ||
	    EVP_DigestUpdate(ctx, account_url, strlen(account_url)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
		cf_errf(err, "persist_account_hash: SHA-256 for domain \"%s\" failed", domain);
		goto out;
	}
	b64 = b64url_encode(md, mdlen);
	if (b64 == NULL || strlen(b64) != 43) {
		cf_errf(err, "persist_account_hash: base64url of the hash for domain \"%s\" failed",
		    domain);
		goto out;
	}
	memcpy(out, b64, 44);
	rc = 0;
out:
	free(b64);
	EVP_MD_CTX_free(ctx);
	return rc;
}

char *
persist_record_value(const struct persist_params *p, cf_err *err)
{
	cf_buf b = { 0 };
	char hash[44];
	char *res = NULL;

	if (p == NULL) {
		cf_errf(err, "persist_record_value: no parameters");
		goto out;
	}
	if (p->issuer == NULL || !is_issuer_name(p->issuer)) {
		char qi[SHOW * 4 + 8];

		cf_quote(qi, sizeof(qi), p->issuer ? p->issuer : "", p->issuer ? strlen(p->issuer) : 0,
		    SHOW);
		cf_errf(err, "record value: issuer domain name \"%s\" is not a valid domain name", qi);
		goto out;
	}
	if (p->persist_until < 0) {
		cf_errf(err, "record value: persistUntil %lld is negative",
		    (long long)p->persist_until);
		goto out;
	}
	switch (p->variant) {
	case PERSIST_DRAFT01:
		if (check_value("account URL", p->account_url, err) != 0)
			goto out;
		if (cf_buf_printf(&b, "%s; accounturi=%s", p->issuer, p->account_url) != 0)
			goto oom;
		break;
	case PERSIST_DRAFT02:
		if (check_value("accountHashPrefix", p->hash_prefix, err) != 0)
			goto out;
		if (persist_account_hash(p->hash_domain, p->thumbprint, p->account_url, hash,
		    err) != 0)
			goto out;
		if (cf_buf_printf(&b, "%s; accounturi=%s%s/%s", p->issuer, p->hash_prefix,
		    HASH_ALG, hash) != 0)
			goto oom;
		break;
	default:
		cf_errf(err, "record value: unknown draft variant %d", (int)p->variant);
		goto out;
	}
	if (p->wildcard && cf_buf_printf(&b, "; policy=wildcard") != 0)
		goto oom;
	if (p->persist_until > 0 &&
	    cf_buf_printf(&b, "; persistUntil=%lld", (long long)p->persist_until) != 0)
		goto oom;
	res = b.data;
	b.data = NULL;
	goto out;
oom:
	cf_errf(err, "record value for issuer \"%s\": out of memory", p->issuer);
out:
	cf_buf_free(&b);
	return res;
}

/* Trims RFC 8659 WSP (space and tab) from both ends of s in place. */
static char *
trim_wsp(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	s[n] = '\0';
	return s;
}

/* Go's strconv.ParseInt(v, 10, 64), as Pebble uses it: optional sign, then decimal digits. */
static bool
parse_int64(const char *v, int64_t *out)
{
	bool neg = false;
	uint64_t acc = 0, lim;

	if (*v == '+' || *v == '-')
		neg = *v++ == '-';
	if (*v == '\0')
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9')
			return false;
		if (acc > (lim - (uint64_t)(*v - '0')) / 10)
			return false;
		acc = acc * 10 + (uint64_t)(*v - '0');
	}
	if (neg)
		*out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
	else
		*out = (int64_t)acc;
	return true;
}

/*
 * The rules are those of Pebble v2.10.1 parseDNSPersistIssueValues (va/va.go): split on ';',
 * trim space and tab around every part, the first part is the issuer; every further part must
 * be tag=value with a non-empty tag, unique case-insensitively, and a value of 0x21-0x3A /
 * 0x3C-0x7E; accounturi must not be empty; persistUntil must parse as Go's ParseInt does; a
 * policy other than "wildcard" (any case) counts as absent; unknown tags are ignored. Stricter
 * than Pebble, and harmless for a client that only asks "is my record already there": the issuer
 * and tags must follow the RFC 8659 label syntax, a missing issuer or accounturi is malformed
 * here (Pebble skips the record or reports it), and values over VALUE_MAX octets are refused.
 * A value spread over several character-strings must be joined (no separator) by the caller.
 */
int
persist_record_parse(const char *value, struct persist_parsed *out, cf_err *err)
{
	char qv[SHOW * 4 + 8], qp[SHOW * 4 + 8], qc[8];
	char *copy = NULL;
	char **tags = NULL; /* canonical (lowercased) tags seen so far */
	size_t ntags = 0, nsemi = 0, len;
	bool have_account = false;
	char *seg, *next, *issuer;
	int rc = -1;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (value == NULL || out == NULL) {
		cf_errf(err, "persist_record_parse: no %s", value == NULL ? "value" : "output");
		goto out;
	}
	len = strlen(value);
	cf_quote(qv, sizeof(qv), value, len, SHOW);
	if (len > VALUE_MAX) {
		cf_errf(err, "record value \"%s\": %zu octets (max %d)", qv, len, VALUE_MAX);
		goto out;
	}
	for (const char *s = value; *s != '\0'; s++)
		if (*s == ';')
			nsemi++;
	copy = strdup(value);
	tags = calloc(nsemi + 1, sizeof(*tags));
	if (copy == NULL || tags == NULL) {
		cf_errf(err, "record value \"%s\": out of memory", qv);
		goto out;
	}

	next = strchr(copy, ';');
	if (next != NULL)
		*next++ = '\0';
	issuer = trim_wsp(copy);
	if (issuer[0] == '\0') {
		cf_errf(err, "record value \"%s\": missing issuer-domain-name", qv);
		goto out;
	}
	if (!is_issuer_name(issuer)) {
		cf_quote(qp, sizeof(qp), issuer, strlen(issuer), SHOW);
		cf_errf(err, "record value \"%s\": issuer-domain-name \"%s\" is not a valid domain "
		    "name", qv, qp);
		goto out;
	}
	snprintf(out->issuer, sizeof(out->issuer), "%s", issuer);

	while (next != NULL) {
		char *eq, *tag, *val;

		seg = next;
		next = strchr(seg, ';');
		if (next != NULL)
			*next++ = '\0';
		seg = trim_wsp(seg);
		if (seg[0] == '\0') {
			cf_errf(err, "record value \"%s\": empty parameter or trailing ';'", qv);
			goto out;
		}
		cf_quote(qp, sizeof(qp), seg, strlen(seg), SHOW);
		eq = strchr(seg, '=');
		if (eq == NULL) {
			cf_errf(err, "record value \"%s\": parameter \"%s\" is not tag=value", qv, qp);
			goto out;
		}
		*eq = '\0';
		tag = trim_wsp(seg);
		val = trim_wsp(eq + 1);
		if (tag[0] == '\0') {
			cf_errf(err, "record value \"%s\": parameter \"%s\" has an empty tag", qv, qp);
			goto out;
		}
		if (!is_label(tag, strlen(tag))) {
			cf_errf(err, "record value \"%s\": parameter \"%s\" has an invalid tag", qv, qp);
			goto out;
		}
		for (char *t = tag; *t != '\0'; t++)
			if (*t >= 'A' && *t <= 'Z')
				*t = (char)(*t - 'A' + 'a');
		for (size_t i = 0; i < ntags; i++) {
			if (strcmp(tags[i], tag) == 0) {
				cf_errf(err, "record value \"%s\": duplicate tag \"%s\"", qv, tag);
				goto out;
			}
		}
		tags[ntags++] = tag;
		for (size_t i = 0; val[i] != '\0'; i++) {
			if (is_value_char((unsigned char)val[i]))
				continue;
			cf_quote(qc, sizeof(qc), val + i, 1, 1);
			cf_errf(err, "record value \"%s\": parameter \"%s\": character '%s' is not "
			    "allowed in a value", qv, qp, qc);
			goto out;
		}

		if (strcmp(tag, "accounturi") == 0) {
			if (val[0] == '\0') {
				cf_errf(err, "record value \"%s\": empty accounturi", qv);
				goto out;
			}
			if (strlen(val) >= sizeof(out->accounturi)) {
				cf_errf(err, "record value \"%s\": accounturi is %zu octets (max %zu)",
				    qv, strlen(val), sizeof(out->accounturi) - 1);
				goto out;
			}
			snprintf(out->accounturi, sizeof(out->accounturi), "%s", val);
			have_account = true;
		} else if (strcmp(tag, "policy") == 0) {
			out->policy_wildcard = strcasecmp(val, "wildcard") == 0;
		} else if (strcmp(tag, "persistuntil") == 0) {
			if (!parse_int64(val, &out->persist_until)) {
				cf_quote(qp, sizeof(qp), val, strlen(val), SHOW);
				cf_errf(err, "record value \"%s\": persistUntil \"%s\" is not a base-10 "
				    "integer", qv, qp);
				goto out;
			}
			out->has_persist_until = true;
		}
		/* Any other tag is ignored (section 4.1 item 1: forward compatibility). */
	}
	if (!have_account) {
		cf_errf(err, "record value \"%s\": missing mandatory accounturi", qv);
		goto out;
	}
	rc = 0;
out:
	if (rc != 0 && out != NULL)
		memset(out, 0, sizeof(*out));
	free(tags);
	free(copy);
	return rc;
}

#define UNTIL_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

int
persist_until_parse(const char *what, const char *text, int64_t *out, cf_err *err)
{
	char q[SHOW * 4 + 8];
	struct tm tm = { 0 };
	int64_t v = 0;
	char *end;
	size_t n = strlen(text);

	cf_quote(q, sizeof(q), text, n, SHOW);
	if (n > 0 && strspn(text, "0123456789") == n) {
		if (!parse_int64(text, &v) || v <= 0 || v > UNTIL_MAX)
			goto bad;
		*out = v;
		return 0;
	}
	/* strptime is lenient about widths: the length and separators are checked first */
	if (n == 10 && text[4] == '-' && text[7] == '-')
		end = strptime(text, "%Y-%m-%d", &tm);
	else if (n == 20 && text[4] == '-' && text[7] == '-' && text[10] == 'T' && text[19] == 'Z')
		end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		goto bad;
	if (end == NULL || *end != '\0' || strspn(text, "0123456789-T:Z") != n)
		goto bad;
	{
		struct tm asked = tm;
		time_t t = timegm(&tm);
		/* timegm normalizes 2027-02-30 to March 2: such a date is refused, not moved */
		if (t == (time_t)-1 || tm.tm_mday != asked.tm_mday || tm.tm_mon != asked.tm_mon ||
		    t <= 0 || (int64_t)t > UNTIL_MAX)
			goto bad;
		*out = (int64_t)t;
	}
	return 0;
bad:
	cf_errf(err, "%s \"%s\": expected unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC), "
	    "after 1970 and before the year 10000", what, q);
	return -1;
}

enum persist_lapse
persist_until_lapse(int64_t until, int64_t now, int64_t warn_secs)
{
	if (until <= 0)
		return PERSIST_LASTS;
	if (until <= now)
		return PERSIST_LAPSED;
	if (until - now <= warn_secs)
		return PERSIST_LAPSING;
	return PERSIST_LASTS;
}
