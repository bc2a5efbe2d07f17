/*
 * route53.h - the pure parts of the Route 53 provider (route53.c), apart so that unit tests can
 * reach them: reading ListResourceRecordSets answers, Route 53's listing order, what a change
 * batch must do given the record sets that exist, writing it as XML, and judging error answers.
 */
#ifndef CF_ROUTE53_H
#define CF_ROUTE53_H

#include <stdbool.h>
#include <stddef.h>

#include "provider.h"

#define ROUTE53_MAX_RECORDS 1000   /* ResourceRecord elements in one ChangeResourceRecordSets */
#define ROUTE53_MAX_CHARS 32000    /* characters of all Value elements in one request */

/* One resource record set of a ListResourceRecordSets answer. */
struct route53_rrset {
	char *name;             /* lower case, without the trailing dot, \ooo escapes decoded */
	char *type;
	long long ttl;          /* -1 when absent (alias record sets) */
	bool simple;            /* no SetIdentifier, AliasTarget or other routing policy */
	char **values;          /* each <Value> exactly as listed (XML entities decoded) */
	size_t nvalues;
};

/* One page of a listing. */
struct route53_page {
	struct route53_rrset *sets;
	size_t nsets;
	bool truncated;         /* IsTruncated: more record sets follow */
};

/* Parses a ListResourceRecordSetsResponse; -1 with err when it is not one. */
int route53_parse_rrsets(const char *xml, size_t len, struct route53_page *page, cf_err *err) CF_MUST;
void route53_page_clear(struct route53_page *page);

/*
 * Route 53's listing order of two names (no trailing dot needed): the labels reversed and
 * followed by a dot ("com.example.www."), compared octet by octet after lower-casing. <0, 0, >0.
 */
int route53_name_cmp(const char *a, const char *b);

/* The TXT record set now at a name of the call (set NULL: none). */
struct route53_current {
	const char *name;
	const struct route53_rrset *set;
};

/*
 * What one name needs: DELETE of its exact current set and/or CREATE of its new set, always in
 * the same request (so that the replacement is atomic, and fails if the set changed since it
 * was read instead of overwriting a value someone else wrote meanwhile).
 */
struct route53_edit {
	char *name;             /* no trailing dot */
	long long old_ttl;
	char **old_values;      /* the set to DELETE, values as listed; nold 0: none */
	size_t nold;
	long long new_ttl;
	char **new_values;      /* the set to CREATE, in Route 53's form; nnew 0: none */
	size_t nnew;
};

/*
 * The edits for action on recs, given cur (one entry per distinct name of recs). Ensure: a name
 * whose set lacks some of its values gets a new set holding the old values unchanged plus the
 * missing ones quoted (a new name: ttl). Remove: a name whose set holds some of its values gets
 * the set without them, or only the DELETE when nothing remains. Names needing nothing get no
 * edit. -1 with err (naming the record) when a set is not a simple TXT set or a value cannot be
 * written.
 */
int route53_plan(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const struct route53_current *cur, size_t ncur, long long ttl, struct route53_edit **edits,
    size_t *nedits, cf_err *err) CF_MUST;
void route53_edits_free(struct route53_edit *edits, size_t n);

/* What an edit counts against the per-request limits: ResourceRecord elements and characters. */
void route53_edit_cost(const struct route53_edit *e, size_t *records, size_t *chars);

/* Writes the ChangeResourceRecordSetsRequest document of n edits to out. */
int route53_change_batch(cf_buf *out, const struct route53_edit *edits, size_t n, cf_err *err) CF_MUST;

/* How an answer ends a step. */
enum route53_verdict {
	ROUTE53_OK,             /* 2xx */
	ROUTE53_THROTTLED,      /* Throttling, PriorRequestNotComplete: send again a little later */
	ROUTE53_CREDENTIALS,    /* the signature or the credentials were refused */
	ROUTE53_RETRYABLE,      /* 429, 5xx, a change batch that met a concurrent change */
	ROUTE53_FAILED,         /* any other refusal: trying again will not help */
};

/*
 * Judges an answer: status and the body (an ErrorResponse or InvalidChangeBatch document, or
 * anything). why receives "HTTP 400, Throttling: Rate exceeded", printable and cut.
 */
enum route53_verdict route53_judge(long status, const char *body, size_t len, char *why,
    size_t whylen);

#endif
