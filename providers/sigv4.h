/* sigv4.h - AWS Signature Version 4 (AWS4-HMAC-SHA256) request signing, for the Route 53 provider. */
#ifndef CF_SIGV4_H
#define CF_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "cf.h"

#define SIGV4_AMZ_DATE_LEN 16 /* "20150830T123600Z" */
#define SIGV4_KEY_LEN 32      /* octets of the derived signing key (HMAC-SHA256) */
#define SIGV4_HEX_LEN 64      /* hex digits of a SHA-256 hash or of a signature */

/*
 * One HTTP request to sign. Nothing here is secret; credentials are passed apart.
 *
 * path is the path exactly as the request line will carry it (already percent-encoded for the
 * wire, without the query). The canonical URI is made from it the way every service except S3
 * wants: the path is normalized (RFC 3986 dot segments removed, empty segments dropped, a
 * trailing '/' kept) and then URI-encoded once more, each octet other than A-Z a-z 0-9 - _ . ~
 * and '/' becoming %XX (so a '%' of the wire form becomes %25: the "encode twice" rule). S3,
 * which wants neither, is not supported.
 *
 * query is the query string as sent, without the '?' (NULL or "" for none). Each name and value
 * is percent-decoded and encoded again with the SigV4 set, so "a b", "a%20b" and "a%2a" sign as
 * "a%20b" and "a%2A"; '+' is a literal plus (%2B), not a space. Parameters are sorted by name,
 * then value; a parameter without '=' signs as "name=". A '%' not followed by two hex digits is
 * refused.
 *
 * headers are "Name: value" lines to sign besides the ones the signer adds itself (host,
 * x-amz-date and, with a session token, x-amz-security-token), so Host, X-Amz-Date,
 * X-Amz-Security-Token and Authorization are refused here. Names are lower-cased and sorted,
 * values trimmed with inner runs of spaces and tabs collapsed to one space, and lines of the same
 * name joined with ',' in the order given. The caller must send these headers exactly as given.
 *
 * payload is the body (payload_len octets, NULL when payload_len is 0); its SHA-256 is signed.
 * x-amz-content-sha256 is not added (Route 53 does not want it; pass it in headers if a service
 * does).
 */
struct sigv4_request {
	const char *method;          /* "GET", "POST", ... */
	const char *host;            /* value of the Host header, e.g. "route53.amazonaws.com" */
	const char *path;            /* wire form, starts with '/' (see above) */
	const char *query;           /* wire form without '?', may be NULL */
	const char *const *headers;  /* "Name: value" lines, may be NULL when nheaders is 0 */
	size_t nheaders;
	const char *payload;         /* may be NULL when payload_len is 0 */
	size_t payload_len;
};

/* Secrets: never copied into an error message, a log line or a result other than the signature. */
struct sigv4_credentials {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* temporary credentials only, else NULL */
};

/*
 * Signs req for time t (UTC seconds), region and service. *authorization gets the value of the
 * Authorization header and *amz_date the value of the X-Amz-Date header to send with it (both
 * malloc'd). With a session token the request must also carry "X-Amz-Security-Token: <token>".
 * Returns 0, or -1 with err set and both outputs NULL.
 */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
    const char *region, const char *service, time_t t, char **authorization, char **amz_date,
    cf_err *err) CF_MUST;

/*
 * The steps of sigv4_sign, exposed so that the AWS test vectors can be checked one by one.
 */

/* "YYYYMMDDTHHMMSSZ" for t in UTC; -1 when t is not a time of years 0 to 9999. */
int sigv4_amz_date(time_t t, char out[SIGV4_AMZ_DATE_LEN + 1], cf_err *err) CF_MUST;

/*
 * Step 1: the canonical request, and the signed header names ("host;x-amz-date"), both malloc'd.
 * amz_date is the X-Amz-Date value; session_token (may be NULL) is signed as x-amz-security-token.
 */
int sigv4_canonical_request(const struct sigv4_request *req, const char *amz_date,
    const char *session_token, char **creq, char **signed_headers, cf_err *err) CF_MUST;

/* Step 2: the string to sign for a canonical request, malloc'd, or NULL with err set. */
char *sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
    const char *creq, cf_err *err) CF_MUST;

/*
 * Step 3: the signing key HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 * "aws4_request"); date is the "YYYYMMDD" of amz_date. The caller should OPENSSL_cleanse it.
 */
int sigv4_signing_key(const char *secret_access_key, const char *date, const char *region,
    const char *service, unsigned char key[SIGV4_KEY_LEN], cf_err *err) CF_MUST;

/* Step 4: the signature, lower-case hex of HMAC(key, string_to_sign). */
int sigv4_signature(const unsigned char key[SIGV4_KEY_LEN], const char *string_to_sign,
    char hex[SIGV4_HEX_LEN + 1], cf_err *err) CF_MUST;

/* Lower-case hex SHA-256 of n octets (the payload hash, and the hash of a canonical request). */
int sigv4_sha256_hex(const void *data, size_t n, char hex[SIGV4_HEX_LEN + 1], cf_err *err) CF_MUST;

/*
 * Appends s (n octets) URI-encoded the SigV4 way to b: A-Z a-z 0-9 - _ . ~ as they are (and '/'
 * when keep_slash), every other octet as %XX with upper-case hex. Returns 0 or -1 (no memory).
 */
int sigv4_uri_encode(cf_buf *b, const char *s, size_t n, int keep_slash) CF_MUST;

#endif
