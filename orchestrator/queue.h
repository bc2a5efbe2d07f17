/*
 * queue.h - the PostgreSQL job queue: the life of a job, from its enqueue through its claim and
 * lease to its end (issued, failed, retried or cancelled).
 */
#ifndef CF_QUEUE_H
#define CF_QUEUE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"
#include "job.h"

struct queue_cert {
	char **names;            /* normalized */
	size_t nnames;
	int line;                /* input line, for messages */
	int64_t account_id;      /* 0: the call's account */
	const char *key_type;    /* NULL: the call's (queue_enqueue_opts) */
	const char *provider;    /* NULL: the call's */
	const char *profile;     /* NULL: the call's */
	int64_t certificate_id;  /* out: its certificates row */
	int64_t job_id;          /* out: its job, the new one or the one already queued or running */
};

/* The channel enqueue NOTIFYs and `run --follow` LISTENs on. */
#define QUEUE_CHANNEL "certfleet_jobs"

struct queue_enqueue_opts {
	const char *provider;    /* NULL: new certificates get default_provider, others keep theirs;
	                          * else every one gets this (an existing one changes: its next order
	                          * publishes its records through this provider) */
	const char *default_provider;
	const char *key_type;    /* NULL: new certificates get ec-p256, others keep theirs; else every
	                          * one gets this */
	const char *label;       /* the run's label, may be NULL */
	int max_attempts;        /* per job; 0 = 5 */
	const char *profile;     /* NULL: new certificates get the CA's default, others keep theirs;
	                          * "": every certificate gets the default; else every one gets this */
	const char *preferred_chain; /* the same for the preferred chain */
	bool missing_only;       /* queue only certificates without a current, unrevoked result */
};

struct queue_enqueue_result {
	int64_t run_id;
	long certificates_new;   /* certificates added to the inventory */
	long jobs_added;
	long jobs_already_queued; /* a ready or running job existed: nothing added */
	long certificates_current; /* missing_only: a current certificate existed: nothing added */
	long certificates_changed; /* existing certificates whose key type, provider, profile or
	                          * preferred chain changed */
};

/*
 * Enqueues every certificate in one transaction (one run): all or nothing. A certificate retired
 * from the declared fleet (sync) returns to it.
 */
int queue_enqueue(PGconn *c, int64_t account_id, const struct queue_enqueue_opts *opts,
    struct queue_cert *certs, size_t ncerts, struct queue_enqueue_result *out, cf_err *err) CF_MUST;

/* queue_enqueue inside the caller's transaction (sync's); NOTIFYs when it added jobs. */
int queue_enqueue_in(PGconn *c, int64_t account_id, const struct queue_enqueue_opts *opts,
    struct queue_cert *certs, size_t ncerts, struct queue_enqueue_result *out, cf_err *err) CF_MUST;

/* Where one certificate's latest job stands (queue_batch_state). */
struct queue_job_state {
	int64_t certificate_id;
	int64_t job_id;
	char state[12];          /* ready, running, issued, failed, cancelled */
	char serial[80];         /* issued: the result's serial, else "" */
	char not_after[40];      /* issued: the result's notAfter (RFC 3339, UTC), else "" */
};

/* The latest job of each certificate in ids (n of them) into out[i], in the order of ids. */
int queue_batch_state(PGconn *c, const int64_t *ids, size_t n, struct queue_job_state *out, cf_err *err) CF_MUST;

/* A certificate `renew` found due: a job with why (jobs.reason) and the CertID it replaces. */
struct queue_renewal {
	int64_t certificate_id;
	int64_t account_id;      /* the account (and so the CA) of its current certificate */
	const char *reason;      /* ari, lifetime, revoked, forced */
	const char *replaces;    /* RFC 9773 CertID, NULL when unknown */
};

struct queue_renew_result {
	int64_t run_id;          /* 0 when nothing was queued (no run made) */
	long jobs_added;
	long jobs_already_queued; /* a job appeared meanwhile: nothing added */
};

/*
 * Queues the renewals as one run labelled label, in one statement (the same rows as
 * queue_enqueue: unfinished_jobs, jobs, job_queue), inside the caller's transaction; NOTIFYs
 * when it added some. n == 0 makes no run.
 */
int queue_enqueue_renewals(PGconn *c, const struct queue_renewal *r, size_t n, const char *label,
    int max_attempts, struct queue_renew_result *out, cf_err *err) CF_MUST;

/* The problem type of a job whose claimed row could not be made into a job. */
#define QUEUE_CLAIM_PROBLEM "certfleet:claim"

/* A claimed row that could not be made into a job, and why (naming the job). */
struct queue_unparsed_row {
	int64_t job_id;
	char reason[200];
};

/*
 * Claimed rows not ended yet: they run under the claimer's lease until queue_fail_unparsed ends
 * them. Starts zeroed; free with queue_unparsed_free.
 */
struct queue_unparsed {
	struct queue_unparsed_row *rows;
	size_t n;
	size_t cap;
};

/*
 * Claims up to limit ready jobs of account_id (priority, then due time) with FOR UPDATE SKIP
 * LOCKED for owner, and returns them as a list, each with the records already known to be in
 * place and the order of an earlier attempt to resume. It claims nothing unless owner holds a
 * live lease (queue_heartbeat). A claimed row that cannot be made into a job (a value the schema
 * allows but a worker cannot use, or no memory for it) is appended to unparsed instead, for
 * queue_fail_unparsed: every row claimed is in *out or in unparsed. -1 only when nothing was
 * claimed.
 */
int queue_claim_batch(PGconn *c, int64_t account_id, int limit, const char *owner, struct job **out,
    int *nclaimed, struct queue_unparsed *unparsed, cf_err *err) CF_MUST;

/*
 * Ends the jobs of u as failed (QUEUE_CLAIM_PROBLEM, with their reason) and empties u; on failure
 * u is kept, to be tried again.
 */
int queue_fail_unparsed(PGconn *c, struct queue_unparsed *u, cf_err *err) CF_MUST;

void queue_unparsed_free(struct queue_unparsed *u);

/*
 * queue_claim_batch, then queue_fail_unparsed on what it could not parse, for a caller that keeps
 * no list (the queue benchmark). When those rows cannot be ended it returns -1 and frees the jobs
 * it parsed, which then stay running under owner until its lease expires.
 */
int queue_claim(PGconn *c, int64_t account_id, int limit, const char *owner, struct job **out,
    int *nclaimed, cf_err *err) CF_MUST;

/*
 * Extends owner's lease (which covers every job it runs) to now + lease_s; *cancel gets the ids of
 * its running jobs an operator asked to cancel (malloc'd, may be NULL).
 */
int queue_heartbeat(PGconn *c, const char *owner, int lease_s, int64_t **cancel, size_t *ncancel,
    cf_err *err) CF_MUST;

/* Ends the jobs of job_ids (an array literal, '{1,2}') as issued. */
int queue_complete_issued(PGconn *c, const char *job_ids, cf_err *err) CF_MUST;

/* Failed attempts: array literals of one length, one element per attempt. */
struct queue_failures {
	const char *job_ids;      /* bigint[] */
	const char *problem_types; /* text[]: the CA's problem type, or certfleet:... */
	const char *details;      /* text[], elements may be NULL */
	const char *retry;        /* bool[]: whether a later attempt may mend it */
	const char *delay_ms;     /* bigint[]: when to retry, from now */
};

/*
 * Puts each job back in the queue after its delay (with a retry event), or ends it as failed, or
 * as cancelled when an operator asked for that. A job that has ended meanwhile is left alone.
 */
int queue_complete_failed(PGconn *c, const struct queue_failures *f, cf_err *err) CF_MUST;

/*
 * Cancels the unfinished jobs of job_id, or of run_id, or all of them (both NULL; each a decimal
 * string): queued ones at once (*now counts them), running ones at their run's next lease renewal
 * (*later).
 */
int queue_cancel(PGconn *c, const char *job_id, const char *run_id, long *now, long *later, cf_err *err) CF_MUST;

/*
 * Returns the jobs of runners whose lease expired to the queue (or fails them on their last
 * attempt), except owner's own: those are alive in the calling process, which renews its lease
 * once it can.
 */
int queue_rescue(PGconn *c, const char *owner, long *rescued, cf_err *err) CF_MUST;

/* Ends owner's lease at the end of a run, unless jobs still run under it. */
int queue_release(PGconn *c, const char *owner, cf_err *err) CF_MUST;

struct queue_outstanding {
	bool running;            /* some job runs, in any process */
	bool due_soon;           /* some ready job is due within the window */
	long ready;              /* ready jobs, whenever due */
};

/* Whether work remains for any of the accounts (a run's). */
int queue_outstanding(PGconn *c, const int64_t *account_ids, size_t naccounts, int within_s,
    struct queue_outstanding *out, cf_err *err) CF_MUST;

#endif
