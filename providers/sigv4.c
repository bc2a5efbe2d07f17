/*
 * sigv4.c - AWS Signature Version 4: canonical request, string to sign, derived signing key and
 * HMAC-SHA256 signature (OpenSSL 3 EVP_MAC), checked against AWS's published test suite.
 */
#include "sigv4.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "osslerr.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_DATE_LEN 8 /* "YYYYMMDD", the date of the credential scope */

/* One header line to sign: lower-cased name, raw value, position for a stable sort. */
struct sv_header {
	char *name;      /* malloc'd, lower case */
	const char *val; /* into the caller's line or request; vallen octets, no NUL of its own */
	size_t vallen;
	size_t order; /* position among the lines: same-name values keep their order */
};

/* One query parameter, both parts in canonical (SigV4-encoded) form. */
struct sv_param {
	char *name;
	char *value;
};

static const char hexdigits_upper[] = "0123456789ABCDEF";
static const char hexdigits_lower[] = "0123456789abcdef";


static bool
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 9110 tchar: the characters of a method or a header name. */
static bool
is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
is_token(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

/* True when s (n octets) may be a header value: no control character but HTAB, no DEL. */
static bool
is_field_value(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* A region or service name: non-empty, of A-Z a-z 0-9 - _ . only (it goes into the scope). */
static bool
is_scope_part(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (!is_unreserved(c) || c == '~')
			return false;
	}
	return true;
}

/* An access key id: non-empty printable ASCII but space, ',', '/' and ';' (Credential syntax). */
static bool
is_access_key_id(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == ',' || c == '/' || c == ';')
			return false;
	}
	return true;
}

/* "YYYYMMDDTHHMMSSZ" with digits where digits belong. */
static bool
is_amz_date(const char *s)
{
	if (s == NULL || strlen(s) != SIGV4_AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && (s[i] < '0' || s[i] > '9'))
			return false;
	return true;
}

static void
hex_lower(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits_lower[in[i] >> 4];
		out[2 * i + 1] = hexdigits_lower[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int
sigv4_uri_encode(cf_buf *b, const char *s, size_t n, int keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			if (cf_buf_append(b, &s[i], 1) != 0)
				return -1;
			continue;
		}
		esc[0] = '%';
		esc[1] = hexdigits_upper[c >> 4];
		esc[2] = hexdigits_upper[c & 0x0f];
		if (cf_buf_append(b, esc, sizeof(esc)) != 0)
			return -1;
	}
	return 0;
}

int
sigv4_sha256_hex(const void *data, size_t n, char hex[SIGV4_HEX_LEN + 1], cf_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (hex != NULL)
		hex[0] = '\0';
	if ((data == NULL && n > 0) || hex == NULL) {
		cf_errf(err, "sigv4_sha256_hex: no data or no output");
		return -1;
	}
	if (!EVP_Digest(n > 0 ? data : "", n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		ossl_errf(err, "sigv4: EVP_Digest(SHA-256) of %zu octets", n);
		return -1;
	}
	hex_lower(md, mdlen, hex);
	return 0;
}

/* out = HMAC-SHA256(key, data) through the fetched HMAC implementation mac. */
static int
hmac_sha256(EVP_MAC *mac, const void *key, size_t keylen, const void *data, size_t n,
    unsigned char out[SIGV4_KEY_LEN], const char *what, cf_err *err)
{
	static char digest[] = "SHA256";
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	size_t outlen = 0;
	int rc = -1;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_MAC_CTX_new(mac)) == NULL) {
		ossl_errf(err, "sigv4: EVP_MAC_CTX_new for %s", what);
		goto out;
	}
	if (!EVP_MAC_init(ctx, key, keylen, params) || !EVP_MAC_update(ctx, data, n) ||
	    !EVP_MAC_final(ctx, out, &outlen, SIGV4_KEY_LEN) || outlen != SIGV4_KEY_LEN) {
		ossl_errf(err, "sigv4: HMAC-SHA256 for %s", what);
		goto out;
	}
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx); /* clears the key schedule it held */
	return rc;
}

static EVP_MAC *
fetch_hmac(cf_err *err)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

	if (mac == NULL)
		ossl_errf(err, "sigv4: EVP_MAC_fetch(HMAC)");
	return mac;
}

int
sigv4_amz_date(time_t t, char out[SIGV4_AMZ_DATE_LEN + 1], cf_err *err)
{
	struct tm tm;

	if (out == NULL) {
		cf_errf(err, "sigv4_amz_date: no output");
		return -1;
	}
	out[0] = '\0';
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		cf_errf(err, "sigv4: time %lld is not a date of years 0 to 9999", (long long)t);
		return -1;
	}
	if (strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_AMZ_DATE_LEN ||
	    !is_amz_date(out)) {
		out[0] = '\0';
		cf_errf(err, "sigv4: strftime of time %lld", (long long)t);
		return -1;
	}
	return 0;
}

/*
 * Appends the canonical URI of path: dot segments and empty segments removed (RFC 3986 5.2.4,
 * plus the collapse of "//" that the AWS suite asks for), a trailing '/' kept, each segment
 * URI-encoded once more.
 */
static int
canonical_path(cf_buf *b, const char *path, cf_err *err)
{
	const char **seg = NULL;
	size_t *seglen = NULL, nseg = 0, maxseg = 1, i, len;
	const char *p, *start;
	bool trailing = false;
	int rc = -1;

	if (path == NULL || path[0] != '/') {
		cf_errf(err, "sigv4: request path is empty or does not start with '/'");
		return -1;
	}
	len = strlen(path);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path[i];

		if (c < 0x20 || c == 0x7f || c == '?' || c == '#') {
			cf_errf(err, "sigv4: request path has a control character, '?' or '#' at "
			    "offset %zu", i);
			return -1;
		}
		if (c == '/')
			maxseg++;
	}
	seg = malloc(maxseg * sizeof(*seg));
	seglen = malloc(maxseg * sizeof(*seglen));
	if (seg == NULL || seglen == NULL) {
		cf_errf(err, "sigv4: out of memory for the path segments");
		goto out;
	}
	for (p = path + 1;; p++) {
		size_t n;

		start = p;
		while (*p != '\0' && *p != '/')
			p++;
		n = (size_t)(p - start);
		/* The last segment decides the trailing '/': "", "." and ".." all leave a directory. */
		trailing = n == 0 || (n == 1 && start[0] == '.') ||
		    (n == 2 && start[0] == '.' && start[1] == '.');
		if (n == 2 && start[0] == '.' && start[1] == '.') {
			if (nseg > 0)
				nseg--;
		} else if (n > 0 && !(n == 1 && start[0] == '.')) {
			seg[nseg] = start;
			seglen[nseg++] = n;
		}
		if (*p == '\0')
			break;
	}
	for (i = 0; i < nseg; i++)
		if (cf_buf_append(b, "/", 1) != 0 || sigv4_uri_encode(b, seg[i], seglen[i], 0) != 0)
			goto oom;
	if ((nseg == 0 || trailing) && cf_buf_append(b, "/", 1) != 0)
		goto oom;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "sigv4: out of memory for the canonical path");
out:
	free(seg);
	free(seglen);
	return rc;
}

/* Appends s (n octets of a query name or value, wire form) decoded and then SigV4-encoded. */
static int
canonical_query_part(cf_buf *b, const char *s, size_t n, cf_err *err)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char oct;
		int hi, lo;

		if (c < 0x20 || c == 0x7f || c == '#') {
			cf_errf(err, "sigv4: query has a control character or '#'");
			return -1;
		}
		if (c == '%') {
			hi = i + 1 < n ? hex_digit((unsigned char)s[i + 1]) : -1;
			lo = i + 2 < n ? hex_digit((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				cf_errf(err, "sigv4: query has a '%%' not followed by two hex digits");
				return -1;
			}
			oct = (char)(hi << 4 | lo);
			i += 2;
		} else {
			oct = (char)c;
		}
		if (sigv4_uri_encode(b, &oct, 1, 0) != 0) {
			cf_errf(err, "sigv4: out of memory for the canonical query");
			return -1;
		}
	}
	return 0;
}

static int
param_cmp(const void *a, const void *b)
{
	const struct sv_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/*
 * Fills param from the n > 0 octets at p: "name=value", "name=" or "name" (which signs as
 * "name="); an empty name is kept too ("=x" signs as "=x").
 */
static int
query_param(struct sv_param *param, const char *p, size_t n, cf_err *err)
{
	const char *eq = memchr(p, '=', n);
	size_t namelen = eq != NULL ? (size_t)(eq - p) : n;
	cf_buf name = { 0 }, value = { 0 };
	int rc = -1;

	if (canonical_query_part(&name, p, namelen, err) != 0 ||
	    (eq != NULL && canonical_query_part(&value, eq + 1, n - namelen - 1, err) != 0))
		goto out;
	/* Appending nothing still allocates: empty parts become "", not NULL. */
	if (cf_buf_append(&name, "", 0) != 0 || cf_buf_append(&value, "", 0) != 0) {
		cf_errf(err, "sigv4: out of memory for the canonical query");
		goto out;
	}
	param->name = name.data;
	param->value = value.data;
	name.data = value.data = NULL;
	rc = 0;
out:
	cf_buf_free(&name);
	cf_buf_free(&value);
	return rc;
}

/* Appends the canonical query string of query (NULL or wire form without '?'). */
static int
canonical_query(cf_buf *b, const char *query, cf_err *err)
{
	struct sv_param *params = NULL;
	size_t nparams = 0, maxparams = 1, i, n;
	const char *p, *end;
	int rc = -1;

	if (query == NULL || query[0] == '\0')
		return 0;
	for (p = query; *p; p++)
		if (*p == '&')
			maxparams++;
	if ((params = calloc(maxparams, sizeof(*params))) == NULL) {
		cf_errf(err, "sigv4: out of memory for the query parameters");
		return -1;
	}
	/* Empty parameters ("a=1&&b=2", a trailing '&') are skipped. */
	for (p = query;; p = end + 1) {
		end = strchr(p, '&');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n > 0) {
			if (query_param(&params[nparams], p, n, err) != 0)
				goto out;
			nparams++;
		}
		if (end == NULL)
			break;
	}
	qsort(params, nparams, sizeof(*params), param_cmp);
	for (i = 0; i < nparams; i++) {
		if ((i > 0 && cf_buf_append(b, "&", 1) != 0) ||
		    cf_buf_printf(b, "%s=%s", params[i].name, params[i].value) != 0) {
			cf_errf(err, "sigv4: out of memory for the canonical query");
			goto out;
		}
	}
	rc = 0;
out:
	for (i = 0; i < nparams; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	return rc;
}

static int
header_cmp(const void *a, const void *b)
{
	const struct sv_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends a header value trimmed, with inner runs of spaces and tabs collapsed to one space. */
static int
append_trimmed(cf_buf *b, const char *v, size_t n)
{
	size_t i = 0, end = n;
	bool space = false;

	while (i < end && (v[i] == ' ' || v[i] == '\t'))
		i++;
	while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t'))
		end--;
	for (; i < end; i++) {
		if (v[i] == ' ' || v[i] == '\t') {
			space = true;
			continue;
		}
		if (space && cf_buf_append(b, " ", 1) != 0)
			return -1;
		space = false;
		if (cf_buf_append(b, &v[i], 1) != 0)
			return -1;
	}
	return 0;
}

/* Adds one header to hs[*n]: name (namelen octets) lower-cased, value as given. */
static int
add_header(struct sv_header *hs, size_t *n, const char *name, size_t namelen, const char *val,
    size_t vallen)
{
	char *lc = malloc(namelen + 1);

	if (lc == NULL)
		return -1;
	for (size_t i = 0; i < namelen; i++) {
		char c = name[i];

		lc[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	lc[namelen] = '\0';
	hs[*n].name = lc;
	hs[*n].val = val;
	hs[*n].vallen = vallen;
	hs[*n].order = *n;
	(*n)++;
	return 0;
}

/* The names the signer adds itself, which the caller's lines may not carry. */
static bool
is_reserved_header(const char *lc)
{
	return strcmp(lc, "host") == 0 || strcmp(lc, "x-amz-date") == 0 ||
	    strcmp(lc, "x-amz-security-token") == 0 || strcmp(lc, "authorization") == 0;
}

/*
 * Appends the canonical headers (each line ending in '\n') to b and the signed header names to
 * names.
 */
static int
canonical_headers(cf_buf *b, cf_buf *names, const struct sigv4_request *req, const char *amz_date,
    const char *session_token, cf_err *err)
{
	struct sv_header *hs = NULL;
	size_t n = 0, i;
	int rc = -1;

	if (req->nheaders > 0 && req->headers == NULL) {
		cf_errf(err, "sigv4: %zu headers announced but no header array", req->nheaders);
		return -1;
	}
	if (req->nheaders > SIZE_MAX / sizeof(*hs) - 3 ||
	    (hs = calloc(req->nheaders + 3, sizeof(*hs))) == NULL) {
		cf_errf(err, "sigv4: out of memory for %zu headers", req->nheaders);
		return -1;
	}
	if (add_header(hs, &n, "host", 4, req->host, strlen(req->host)) != 0 ||
	    add_header(hs, &n, "x-amz-date", 10, amz_date, strlen(amz_date)) != 0 ||
	    (session_token != NULL && add_header(hs, &n, "x-amz-security-token", 20, session_token,
	    strlen(session_token)) != 0))
		goto oom;
	for (i = 0; i < req->nheaders; i++) {
		const char *line = req->headers[i], *colon;
		size_t namelen;

		if (line == NULL || (colon = strchr(line, ':')) == NULL) {
			cf_errf(err, "sigv4: header line %zu is missing or has no ':'", i + 1);
			goto out;
		}
		namelen = (size_t)(colon - line);
		for (size_t j = 0; j < namelen; j++)
			if (!is_tchar((unsigned char)line[j]))
				namelen = 0;
		if (namelen == 0) {
			cf_errf(err, "sigv4: header line %zu has an empty or invalid name", i + 1);
			goto out;
		}
		if (!is_field_value(colon + 1, strlen(colon + 1))) {
			cf_errf(err, "sigv4: header line %zu (%.*s) has a control character in its value",
			    i + 1, (int)(namelen > 64 ? 64 : namelen), line);
			goto out;
		}
		if (add_header(hs, &n, line, namelen, colon + 1, strlen(colon + 1)) != 0)
			goto oom;
		if (is_reserved_header(hs[n - 1].name)) {
			cf_errf(err, "sigv4: header line %zu (%s) is one the signer sets itself", i + 1,
			    hs[n - 1].name);
			goto out;
		}
	}
	qsort(hs, n, sizeof(*hs), header_cmp);
	for (i = 0; i < n; i++) {
		bool first = i == 0 || strcmp(hs[i].name, hs[i - 1].name) != 0;

		if (first) {
			if ((i > 0 && cf_buf_append(b, "\n", 1) != 0) ||
			    (i > 0 && cf_buf_append(names, ";", 1) != 0) ||
			    cf_buf_printf(b, "%s:", hs[i].name) != 0 ||
			    cf_buf_append(names, hs[i].name, strlen(hs[i].name)) != 0)
				goto oom;
		} else if (cf_buf_append(b, ",", 1) != 0) {
			goto oom;
		}
		if (append_trimmed(b, hs[i].val, hs[i].vallen) != 0)
			goto oom;
	}
	if (cf_buf_append(b, "\n", 1) != 0)
		goto oom;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "sigv4: out of memory for the canonical headers");
out:
	for (i = 0; i < n; i++)
		free(hs[i].name);
	free(hs);
	return rc;
}

int
sigv4_canonical_request(const struct sigv4_request *req, const char *amz_date,
    const char *session_token, char **creq, char **signed_headers, cf_err *err)
{
	cf_buf b = { 0 }, names = { 0 };
	char payload_hash[SIGV4_HEX_LEN + 1];
	int rc = -1;

	if (creq != NULL)
		*creq = NULL;
	if (signed_headers != NULL)
		*signed_headers = NULL;
	if (req == NULL || creq == NULL || signed_headers == NULL) {
		cf_errf(err, "sigv4_canonical_request: no request or no output");
		return -1;
	}
	if (!is_token(req->method)) {
		cf_errf(err, "sigv4: request method is empty or not an HTTP token");
		return -1;
	}
	if (req->host == NULL || req->host[0] == '\0' || strpbrk(req->host, " \t") != NULL ||
	    !is_field_value(req->host, strlen(req->host))) {
		cf_errf(err, "sigv4: request host is empty or has a space or control character");
		return -1;
	}
	if (!is_amz_date(amz_date)) {
		cf_errf(err, "sigv4: x-amz-date is not of the form YYYYMMDDTHHMMSSZ");
		return -1;
	}
	/* The token is a secret: say what is wrong with it, never what it is. */
	if (session_token != NULL &&
	    (session_token[0] == '\0' || !is_field_value(session_token, strlen(session_token)))) {
		cf_errf(err, "sigv4: session token is empty or has a control character");
		return -1;
	}
	if (req->payload == NULL && req->payload_len > 0) {
		cf_errf(err, "sigv4: payload of %zu octets has no data", req->payload_len);
		return -1;
	}
	if (sigv4_sha256_hex(req->payload, req->payload_len, payload_hash, err) != 0)
		goto out;

	if (cf_buf_printf(&b, "%s\n", req->method) != 0)
		goto oom;
	if (canonical_path(&b, req->path, err) != 0)
		goto out;
	if (cf_buf_append(&b, "\n", 1) != 0)
		goto oom;
	if (canonical_query(&b, req->query, err) != 0)
		goto out;
	if (cf_buf_append(&b, "\n", 1) != 0)
		goto oom;
	if (canonical_headers(&b, &names, req, amz_date, session_token, err) != 0)
		goto out;
	if (cf_buf_printf(&b, "\n%s\n%s", names.data, payload_hash) != 0)
		goto oom;
	*creq = b.data;
	*signed_headers = names.data;
	b.data = names.data = NULL;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "sigv4: out of memory for the canonical request");
out:
	/* The canonical request holds the session token: wipe it when it is not handed over. */
	if (b.data != NULL)
		OPENSSL_cleanse(b.data, b.len);
	cf_buf_free(&b);
	cf_buf_free(&names);
	return rc;
}

char *
sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
    const char *creq, cf_err *err)
{
	char hash[SIGV4_HEX_LEN + 1];
	cf_buf b = { 0 };

	if (!is_amz_date(amz_date)) {
		cf_errf(err, "sigv4: x-amz-date is not of the form YYYYMMDDTHHMMSSZ");
		return NULL;
	}
	if (!is_scope_part(region) || !is_scope_part(service)) {
		cf_errf(err, "sigv4: region or service is empty or not of A-Z a-z 0-9 - _ .");
		return NULL;
	}
	if (creq == NULL) {
		cf_errf(err, "sigv4_string_to_sign: no canonical request");
		return NULL;
	}
	if (sigv4_sha256_hex(creq, strlen(creq), hash, err) != 0)
		return NULL;
	if (cf_buf_printf(&b, SIGV4_ALGORITHM "\n%s\n%.*s/%s/%s/" SIGV4_TERMINATOR "\n%s", amz_date,
	    SIGV4_DATE_LEN, amz_date, region, service, hash) != 0) {
		cf_buf_free(&b);
		cf_errf(err, "sigv4: out of memory for the string to sign");
		return NULL;
	}
	return b.data;
}

int
sigv4_signing_key(const char *secret_access_key, const char *date, const char *region,
    const char *service, unsigned char key[SIGV4_KEY_LEN], cf_err *err)
{
	unsigned char k[SIGV4_KEY_LEN];
	char *ksecret = NULL;
	size_t slen;
	EVP_MAC *mac = NULL;
	int rc = -1;

	if (key == NULL) {
		cf_errf(err, "sigv4_signing_key: no output");
		return -1;
	}
	memset(key, 0, SIGV4_KEY_LEN);
	if (secret_access_key == NULL || secret_access_key[0] == '\0') {
		cf_errf(err, "sigv4: secret access key is missing or empty");
		return -1;
	}
	if (date == NULL || strlen(date) != SIGV4_DATE_LEN ||
	    strspn(date, "0123456789") != SIGV4_DATE_LEN) {
		cf_errf(err, "sigv4: signing date is not of the form YYYYMMDD");
		return -1;
	}
	if (!is_scope_part(region) || !is_scope_part(service)) {
		cf_errf(err, "sigv4: region or service is empty or not of A-Z a-z 0-9 - _ .");
		return -1;
	}
	slen = strlen(secret_access_key);
	if ((ksecret = malloc(slen + 5)) == NULL) {
		cf_errf(err, "sigv4: out of memory for the signing key");
		return -1;
	}
	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret_access_key, slen + 1);
	if ((mac = fetch_hmac(err)) == NULL)
		goto out;
	/* HMAC keyed with the previous result, over date, region, service, "aws4_request". */
	if (hmac_sha256(mac, ksecret, slen + 4, date, SIGV4_DATE_LEN, k, "kDate", err) != 0 ||
	    hmac_sha256(mac, k, sizeof(k), region, strlen(region), k, "kRegion", err) != 0 ||
	    hmac_sha256(mac, k, sizeof(k), service, strlen(service), k, "kService", err) != 0 ||
	    hmac_sha256(mac, k, sizeof(k), SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR), key,
	    "kSigning", err) != 0) {
		memset(key, 0, SIGV4_KEY_LEN);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(ksecret, slen + 5);
	free(ksecret);
	EVP_MAC_free(mac);
	return rc;
}

int
sigv4_signature(const unsigned char key[SIGV4_KEY_LEN], const char *string_to_sign,
    char hex[SIGV4_HEX_LEN + 1], cf_err *err)
{
	unsigned char sig[SIGV4_KEY_LEN];
	EVP_MAC *mac = NULL;
	int rc = -1;

	if (hex != NULL)
		hex[0] = '\0';
	if (key == NULL || string_to_sign == NULL || hex == NULL) {
		cf_errf(err, "sigv4_signature: no key, no string to sign or no output");
		return -1;
	}
	if ((mac = fetch_hmac(err)) == NULL)
		goto out;
	if (hmac_sha256(mac, key, SIGV4_KEY_LEN, string_to_sign, strlen(string_to_sign), sig,
	    "the signature", err) != 0)
		goto out;
	hex_lower(sig, sizeof(sig), hex);
	rc = 0;
out:
	EVP_MAC_free(mac);
	return rc;
}

int
sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
    const char *region, const char *service, time_t t, char **authorization, char **amz_date,
    cf_err *err)
{
	char date[SIGV4_AMZ_DATE_LEN + 1], day[SIGV4_DATE_LEN + 1], sig[SIGV4_HEX_LEN + 1];
	unsigned char key[SIGV4_KEY_LEN];
	char *creq = NULL, *names = NULL, *sts = NULL, *dup = NULL;
	cf_buf auth = { 0 };
	int rc = -1;

	memset(key, 0, sizeof(key));
	if (authorization != NULL)
		*authorization = NULL;
	if (amz_date != NULL)
		*amz_date = NULL;
	if (req == NULL || cred == NULL || authorization == NULL || amz_date == NULL) {
		cf_errf(err, "sigv4_sign: no request, no credentials or no output");
		return -1;
	}
	/* Neither the key id nor the secret is ever quoted back. */
	if (!is_access_key_id(cred->access_key_id)) {
		cf_errf(err, "sigv4: access key id is missing, empty or has a character a Credential "
		    "cannot hold");
		return -1;
	}
	if (cred->secret_access_key == NULL || cred->secret_access_key[0] == '\0') {
		cf_errf(err, "sigv4: secret access key is missing or empty");
		return -1;
	}
	if (!is_scope_part(region) || !is_scope_part(service)) {
		cf_errf(err, "sigv4: region or service is empty or not of A-Z a-z 0-9 - _ .");
		return -1;
	}
	if (sigv4_amz_date(t, date, err) != 0 ||
	    sigv4_canonical_request(req, date, cred->session_token, &creq, &names, err) != 0 ||
	    (sts = sigv4_string_to_sign(date, region, service, creq, err)) == NULL)
		goto out;
	/* The signing key takes the credential scope's date: the first 8 characters of amz_date. */
	memcpy(day, date, SIGV4_DATE_LEN);
	day[SIGV4_DATE_LEN] = '\0';
	if (sigv4_signing_key(cred->secret_access_key, day, region, service, key, err) != 0 ||
	    sigv4_signature(key, sts, sig, err) != 0)
		goto out;
	if (cf_buf_printf(&auth, SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/" SIGV4_TERMINATOR
	    ", SignedHeaders=%s, Signature=%s", cred->access_key_id, day, region, service, names,
	    sig) != 0 || (dup = strdup(date)) == NULL) {
		cf_errf(err, "sigv4: out of memory for the Authorization header");
		goto out;
	}
	*authorization = auth.data;
	*amz_date = dup;
	auth.data = NULL;
	dup = NULL;
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	if (creq != NULL)
		OPENSSL_cleanse(creq, strlen(creq)); /* it may hold the session token */
	free(creq);
	free(names);
	free(sts);
	free(dup);
	cf_buf_free(&auth);
	return rc;
}
