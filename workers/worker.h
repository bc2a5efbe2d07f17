/*
 * worker.h - the pool of worker threads. Each thread owns one event loop (one CURLM) and one ACME
 * engine per CA of the run, and takes jobs from its inbox; the claimer hands jobs to the least
 * loaded worker and never more than the free slots (back-pressure).
 */
#ifndef CF_WORKER_H
#define CF_WORKER_H

#include "engine.h"
#include "job.h"
#include "loop.h"

/*
 * One CA of the run: the account whose jobs it orders (job.account_id) and what is the CA's own;
 * the rest of its engines' settings are the pool's acme.
 */
struct worker_ca {
	int64_t account_id;
	const char *directory_url;
	const char *account_url;
	const char *key_pem;           /* account key; parsed once per engine, never logged */
	const char *issuer;
	struct ca_gate *gate;          /* NULL = off */
	const struct acme_limits *limits; /* NULL = none */
	struct unsaved_orders *unsaved; /* NULL = newOrder never waits for the writer */
	struct ca_validations *validations; /* NULL = no cap */
};

struct worker_pool_config {
	int nworkers;
	long per_worker_cap;      /* orders in flight per worker */
	struct acme_config acme;  /* copied per worker, once per CA */
	/*
	 * The CAs: each worker has an engine per CA, and a job goes to the one of its account. None:
	 * one engine for acme's own CA takes every job. The array is copied; what it points to must
	 * outlive the pool.
	 */
	const struct worker_ca *cas;
	size_t ncas;
	struct loop_options loop;
};

struct worker_pool_stats {
	long inflight;
	long issued;
	long failed;              /* finally */
	long retried;             /* failed attempts that went back to the queue */
	long cancelled;
	long peak_inflight;
	int64_t max_lag_ms;       /* worst event-loop lag of any worker */
};

struct worker_pool;

struct worker_pool *worker_pool_start(const struct worker_pool_config *cfg, cf_err *err) CF_MUST;

/*
 * Adds a CA to a running pool of CAs (a run --follow that finds the jobs of an account it did
 * not start with); each worker makes its engine for it at its first job of that account. What ca
 * points to must outlive the pool.
 */
int worker_pool_add_ca(struct worker_pool *pool, const struct worker_ca *ca, cf_err *err) CF_MUST;

/* Free slots over all workers. */
long worker_pool_free_slots(struct worker_pool *pool);

/* Hands job to the least loaded worker (takes ownership). */
void worker_pool_submit(struct worker_pool *pool, struct job *job);

/* Waits until a job ends or wait_ms passes. */
void worker_pool_wait(struct worker_pool *pool, int wait_ms);

void worker_pool_stats(struct worker_pool *pool, struct worker_pool_stats *out);

/* Cancels the order of job_id wherever it runs (asynchronously). */
void worker_pool_cancel(struct worker_pool *pool, int64_t job_id);

/* The pct-th percentile (0..100) of order latencies so far, in ms (0 when none ended). */
int64_t worker_pool_latency(struct worker_pool *pool, double pct);

/* Stops every worker once its orders have ended, joins the threads and frees the pool. */
void worker_pool_stop(struct worker_pool *pool);

#endif
