/*
 * claimer.h - the claimer, the main loop of `certfleet run`: it keeps the run's lease, rescues
 * the jobs of runs whose lease expired, claims ready jobs as the worker pool frees slots (fairly
 * across the run's accounts: one CA's backlog does not starve another's) and hands them over,
 * prints progress, waits when idle (LISTEN/NOTIFY or polling), and decides when the run ends.
 */
#ifndef CF_CLAIMER_H
#define CF_CLAIMER_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf.h"
#include "worker.h"

struct account;

struct claimer_config {
	const int64_t *account_ids; /* whose jobs are claimed: one per CA, each claimed in turn */
	size_t naccounts;
	/*
	 * With --follow: adds the CA of an account found with jobs that the run did not start with to
	 * the pool (a is the caller's: copy what is kept); 0 when it did, and its jobs are then
	 * claimed too. NULL, or -1: they are left for the next run (logged).
	 */
	int (*add_account)(void *arg, const struct account *a);
	void *add_arg;
	const char *owner;        /* this process's runner (host:pid:start), which holds the lease */
	long batch;               /* jobs claimed per statement, at most */
	bool queue_metrics;       /* counts the queue for certfleet_queue_jobs every QUEUE_COUNT_EVERY_MS */
	long nworkers;            /* the pool's shape: a whole batch is waited for only when ... */
	long inflight;            /* ... the pool (nworkers x inflight) holds more than one */
	long lease_s;             /* renewed every third of it */
	long retry_wait_s;        /* stay for retries due within this */
	bool follow;              /* keep running when the queue is empty */
	bool listen;              /* LISTEN for enqueue's NOTIFY; false: poll (PgBouncer) */
	bool progress;            /* a progress line on standard error every 2 s */
	bool live;                /* ... rather a live line, rewritten in place (stderr is a terminal) */
	/* Signals counted by the command (stopper.h): 1 stops claiming, 2 ends the loop at once. */
	const atomic_int *stop;
};

struct claimer;

/*
 * A claimer on connection c (borrowed; the claimer reconnects it when PostgreSQL goes away)
 * feeding pool (borrowed). It starts listening for NOTIFY when cfg->listen; cfg is copied, the
 * strings and accounts it points to must outlive the claimer.
 */
struct claimer *claimer_new(const struct claimer_config *cfg, PGconn *c, struct worker_pool *pool,
    cf_err *err) CF_MUST;

/*
 * Runs until the queue holds nothing for this run and every order handed over has ended, or
 * until a signal says stop (once: when the orders in flight have ended; twice: at once).
 */
void claimer_run(struct claimer *cl);

/* The accounts whose jobs the claimer claims (those it started with, then those added). */
const int64_t *claimer_accounts(const struct claimer *cl, size_t *n);

/* Jobs claimed so far. */
long claimer_claimed(const struct claimer *cl);

/*
 * Claimed jobs whose rows could not be made into jobs, ended as failed by the claimer (the worker
 * pool never saw them, so its counts leave them out).
 */
long claimer_failed(const struct claimer *cl);

void claimer_free(struct claimer *cl);

#endif
