/*
 * acmesync.h - a synchronous ACME client for the CLI's one-off requests (registration, revocation,
 * key rollover): one directory, one nonce carried from answer to request, badNonce retried.
 * Never used inside a worker, whose requests go through the event loop (workers/acme.c).
 */
#ifndef CF_ACMESYNC_H
#define CF_ACMESYNC_H

#include <jansson.h>
#include <openssl/evp.h>

#include "cf.h"
#include "http.h"

struct acmesync {
	struct http_settings http;
	char *directory_url;
	json_t *dir;            /* the directory object */
	char *nonce;            /* the last Replay-Nonce, spent by the next POST */
};

/* The answer to a POST: HTTP status, Location, the JSON body (NULL when none) and its problem. */
struct acmesync_reply {
	long status;
	char *location;
	json_t *doc;
	const char *problem;    /* doc's "type" when the answer is a problem, else NULL */
	char text[1200];        /* "HTTP 403 urn:ietf:params:acme:error:unauthorized: detail", quoted */
};

/* Fetches the directory of directory_url. 0, or -1 with err naming the URL. */
int acmesync_open(struct acmesync *a, const struct http_settings *hs, const char *directory_url,
    cf_err *err) CF_MUST;
void acmesync_close(struct acmesync *a);

/* The directory's URL for resource name ("newAccount", "revokeCert", ...), or NULL. */
const char *acmesync_resource(const struct acmesync *a, const char *name);

/*
 * POSTs payload (NULL: POST-as-GET) to url as a JWS signed by key, with "kid" when kid != NULL,
 * else with the "jwk" of key; a badNonce answer is retried with the nonce it carries (5 times).
 * 0 when the CA answered (any status: see out), -1 with err when no answer came.
 */
int acmesync_post(struct acmesync *a, EVP_PKEY *key, const char *kid, const char *url,
    const char *payload, struct acmesync_reply *out, cf_err *err) CF_MUST;

/* Whether out is the problem urn:ietf:params:acme:error:<name>. */
int acmesync_is_problem(const struct acmesync_reply *out, const char *name);
void acmesync_reply_clear(struct acmesync_reply *r);

#endif
