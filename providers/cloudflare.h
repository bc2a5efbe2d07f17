/*
 * cloudflare.h - the pure parts of the Cloudflare provider (cloudflare.c), apart so that unit
 * tests can reach them: what a batch must do given the records that exist, and how an answer of
 * the API v4 is judged.
 */
#ifndef CF_CLOUDFLARE_H
#define CF_CLOUDFLARE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "provider.h"

/* One TXT record that exists in the zone, as the list call returned it. */
struct cloudflare_existing {
	char *id;               /* Cloudflare's record id */
	char *name;             /* lower case, no trailing dot */
	char *content;          /* "content" as returned (quoted character-strings, or legacy text) */
};

/*
 * The operations of one batch: for PROVIDER_ENSURE the "posts" (one TXT record per value of recs
 * that no existing record at its name holds, each value once, content quoted, with ttl and the
 * comment "certfleet"); for PROVIDER_REMOVE the "deletes" ({"id": ...} of every existing record
 * whose name and value are one of recs; records with other values are never touched). Returns a
 * new JSON array (empty when nothing is to be done), or NULL with err set.
 */
json_t *cloudflare_plan(enum provider_action action, const struct provider_record *recs,
    size_t nrec, const struct cloudflare_existing *ex, size_t nex, long ttl, cf_err *err) CF_MUST;

/* How an API answer ends a step. */
enum cloudflare_verdict {
	CLOUDFLARE_OK,          /* 2xx with "success": true */
	CLOUDFLARE_CREDENTIALS, /* the token was refused (401, 403, or an authentication error code) */
	CLOUDFLARE_RETRYABLE,   /* transport failure, 429, 5xx: a later try may succeed */
	CLOUDFLARE_FAILED,      /* any other refusal: trying again will not help */
};

/*
 * Judges an answer: status (0 when no response came) and the parsed body (may be NULL). why
 * receives the cause for a message: "HTTP 403, code 10000 \"Authentication error\"", the
 * Cloudflare error codes and messages quoted printable and cut.
 */
enum cloudflare_verdict cloudflare_judge(long status, const json_t *body, char *why, size_t whylen);

#endif
