/*
 * renew.h - what `certfleet renew` decides: for every current certificate without a job in
 * flight, the CA's renewal window (ARI, RFC 9773), stored with a renewal time drawn inside it,
 * and whether it is due now and why (revoked, ARI, the lifetime fallback, forced); then the due
 * ones queued as one run, each job carrying its reason and the CertID it replaces.
 */
#ifndef CF_RENEW_H
#define CF_RENEW_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acme.h"
#include "ari.h"
#include "certid.h"
#include "cf.h"
#include "http.h"

/* When to ask again without a Retry-After, after a failure without one, and the bounds of a Retry-After. */
#define RENEW_NEXT_CHECK_S (6 * 3600)
#define RENEW_FAILED_CHECK_S 3600
#define RENEW_CHECK_MIN_S 60
#define RENEW_CHECK_MAX_S 86400
/* Lifetimes shorter than this renew at half of it instead of two thirds. */
#define RENEW_SHORT_LIFETIME_S (10 * 86400)

enum renew_reason {
	RENEW_NOT_DUE = 0,
	RENEW_REVOKED,
	RENEW_ARI,
	RENEW_LIFETIME,
	RENEW_FORCED,
};

/* "revoked", "ari", "lifetime", "forced" (the jobs.reason values), or "" when not due. */
const char *renew_reason_name(enum renew_reason r);

/* One CA (directory URL), whichever of its accounts the certificates use. */
struct renew_ca {
	char *directory_url;
	char *renewal_info;        /* the directory's renewalInfo, NULL when it has none */
	char error[256];           /* why its directory could not be read, "" when it could */
	struct acme_limits limits; /* "other" paces the renewalInfo requests */
};

/* A current result: its stored state as loaded, then what this renew found and decided. */
struct renew_cert {
	int64_t result_id;
	int64_t certificate_id;
	int64_t account_id;
	size_t ca;                 /* index into renew_set.cas */
	char *names;               /* space-separated, the first is the primary name */
	char certid[CERTID_MAX];   /* "" when it could not be computed */
	bool certid_new;           /* computed now: stored with the ARI state */
	int64_t not_before, not_after; /* unix seconds */
	int64_t revoked_at;        /* 0 when not revoked */
	bool has_window;           /* the ARI state (stored, or fetched now when checked) */
	int64_t win_start, win_end, renew_at;
	char *explanation_url;
	int64_t next_check;        /* 0 when never checked */
	/* this renew */
	bool checked;              /* renewalInfo asked now */
	bool fetched;              /* ... and a window came */
	enum ari_status ari;
	char *ari_error;           /* the check's failure, NULL when none */
	bool forced;
	enum renew_reason reason;
	int64_t due_at;            /* when it became due (renew_at, the fallback's time, revocation) */
};

struct renew_set {
	struct renew_ca *cas;
	size_t ncas;
	struct renew_cert *certs;
	size_t n;
	size_t cap;
	/* counts for the summary */
	size_t checks, checks_ok, checks_unknown, checks_failed;
	size_t due[RENEW_FORCED + 1];
};

struct renew_options {
	struct http_settings http;
	const char *ca_spec;       /* --ca-limits, NULL = calimits' default per directory */
	int max_inflight;          /* renewalInfo requests at once */
	int64_t now;               /* unix seconds: the time every decision is taken at */
	bool progress;             /* a line on standard error every 2 s while checking */
};

/* Every current result with no job queued or running, with its CA. 0, or -1 with err. */
int renew_load(PGconn *c, struct renew_set *s, cf_err *err) CF_MUST;

/*
 * Reads each CA's directory (its renewalInfo URL) and sets up its limits; a directory that cannot
 * be read fails the checks of its certificates, not the command. -1 only for a bad --ca-limits.
 */
int renew_directories(struct renew_set *s, const struct renew_options *o, cf_err *err) CF_MUST;

/*
 * Computes missing CertIDs, asks renewalInfo for the certificates whose next check is due (on an
 * event loop of its own, through workers/ari), and takes in the answers: window, renewal time,
 * next check, explanation, or the failure. -1 only when the loop itself failed.
 */
int renew_check(struct renew_set *s, const struct renew_options *o, cf_err *err) CF_MUST;

/*
 * Marks the certificates holding one of force_names (normalized names; force_all: every one) as
 * forced; matched[k] (may be NULL) tells whether some certificate holds force_names[k].
 */
void renew_force(struct renew_set *s, char **force_names, size_t nforce, bool force_all, bool *matched);

/* Decides, at o->now, which certificates are due and why; counts them. */
void renew_decide(struct renew_set *s, int64_t now);

/*
 * In one transaction: the ARI state of every certificate checked or given a CertID now (one
 * statement), and the due ones queued as one run labelled label (queue_enqueue_renewals).
 */
struct queue_renew_result;
int renew_store(PGconn *c, const struct renew_set *s, const char *label, int max_attempts,
    struct queue_renew_result *out, cf_err *err) CF_MUST;

void renew_set_free(struct renew_set *s);

/* The new renewal time for a window: kept when the window is the one stored, else drawn uniformly inside it. */
int64_t renew_pick_time(int64_t start, int64_t end, bool same_window, int64_t old_renew_at);

/* When the lifetime fallback makes a certificate due: 2/3 of its lifetime, 1/2 under 10 days. */
int64_t renew_lifetime_due(int64_t not_before, int64_t not_after);

#endif
