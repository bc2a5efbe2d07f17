/*
 * claimer.c - the main loop of a run: lease, rescue, claim, hand-over to the worker pool,
 * progress lines, idle wait, and the end of the run. It runs on the main thread with its own
 * connection; the workers never touch PostgreSQL, and the writer thread has a connection of its
 * own.
 */
#include "claimer.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "queue.h"

#define RESCUE_EVERY_MS 5000
#define PROGRESS_EVERY_MS 2000

struct claimer {
	struct claimer_config cfg;
	PGconn *c;                /* borrowed from the command */
	struct worker_pool *pool; /* borrowed */
	bool listening;           /* LISTEN is active on c */
	bool reconnected;         /* renew the lease at once: it ran on while PostgreSQL was away */
	int64_t last_heartbeat;   /* 0: renew at the next turn */
	int64_t last_rescue;
	int64_t started;          /* cf_mono_ms() when claimer_run began */
	int64_t last_progress;
	long claimed;             /* jobs claimed: handed to the pool, or unparsed */
	long failed;              /* unparsed jobs ended as failed */
	int claim_failures;       /* claims refused in a row */
	int64_t claim_after;      /* no claim before this (cf_mono_ms), after refused ones */
	int64_t claim_warned;     /* when a refused claim was last logged */
	struct queue_unparsed unparsed; /* claimed rows that could not be parsed, not ended yet */
};

/* After a failed statement: reconnect when the connection is gone, and LISTEN again. */
static void
claimer_reconnect(struct claimer *cl)
{
	if (PQstatus(cl->c) == CONNECTION_OK)
		return;
	PQreset(cl->c);
	if (PQstatus(cl->c) != CONNECTION_OK) {
		log_warn("run: PostgreSQL unreachable; retrying (orders in flight go on)");
		return;
	}
	log_info("run: reconnected to PostgreSQL");
	cl->reconnected = true;
	if (cl->listening)
		PQclear(PQexec(cl->c, "LISTEN " QUEUE_CHANNEL));
}

struct claimer *
claimer_new(const struct claimer_config *cfg, PGconn *c, struct worker_pool *pool, cf_err *err)
{
	struct claimer *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		cf_errf(err, "claimer: out of memory");
		return NULL;
	}
	cl->cfg = *cfg;
	cl->c = c;
	cl->pool = pool;
	if (cfg->listen) {
		/* without LISTEN the claimer polls, as with --poll-only */
		PGresult *lr = PQexec(c, "LISTEN " QUEUE_CHANNEL);
		cl->listening = PQresultStatus(lr) == PGRES_COMMAND_OK;
		PQclear(lr);
	}
	return cl;
}

void
claimer_free(struct claimer *cl)
{
	if (cl == NULL)
		return;
	queue_unparsed_free(&cl->unparsed);
	free(cl);
}

long
claimer_claimed(const struct claimer *cl)
{
	return cl->claimed;
}

long
claimer_failed(const struct claimer *cl)
{
	return cl->failed;
}

/*
 * Ends the claimed jobs whose rows could not be parsed as failed. They run under this process's
 * lease meanwhile, so the run waits for them: when PostgreSQL refuses, the next turn tries again.
 */
static void
claimer_end_unparsed(struct claimer *cl)
{
	size_t n = cl->unparsed.n;
	cf_err err;

	if (n == 0)
		return;
	if (queue_fail_unparsed(cl->c, &cl->unparsed, &err) != 0) {
		log_warn("run: %s (%zu claimed job%s that could not be parsed stay running until then)", err.msg, n,
		    n == 1 ? "" : "s");
		claimer_reconnect(cl);
		return;
	}
	cl->failed += (long)n;
}

/*
 * Renews the lease of this process, which covers the jobs it works (and which a claim needs), and
 * passes on cancellations. False when it could not: the caller tries again at once.
 */
static bool
claimer_heartbeat(struct claimer *cl)
{
	int64_t *cancel = NULL;
	size_t ncancel = 0;
	int lease_s = (int)cl->cfg.lease_s;
	cf_err err;

	if (queue_heartbeat(cl->c, cl->cfg.owner, lease_s, &cancel, &ncancel, &err) != 0) {
		log_warn("run: %s (leases expire in %d s unless renewed)", err.msg, lease_s);
		claimer_reconnect(cl);
		return false;
	}
	for (size_t i = 0; i < ncancel; i++)
		worker_pool_cancel(cl->pool, cancel[i]);
	free(cancel);
	return true;
}

/* The lease every third of it (at once after a reconnect), the rescue of expired ones every 5 s. */
static void
claimer_tend_leases(struct claimer *cl, int64_t now)
{
	cf_err err;

	if (cl->reconnected || cl->last_heartbeat == 0 || now - cl->last_heartbeat >= cl->cfg.lease_s * 1000 / 3) {
		cl->reconnected = false;
		cl->last_heartbeat = claimer_heartbeat(cl) ? now : 0;
	}
	if (now - cl->last_rescue >= RESCUE_EVERY_MS) {
		long rescued = 0;
		if (queue_rescue(cl->c, cl->cfg.owner, &rescued, &err) != 0)
			log_warn("run: %s", err.msg);
		else if (rescued > 0)
			log_info("run: %ld job%s with an expired lease went back to the queue", rescued,
			    rescued == 1 ? "" : "s");
		cl->last_rescue = now;
	}
}

/*
 * Claims up to free_slots jobs (at most a batch) and hands them to the pool, except those whose
 * rows could not be parsed, which it ends as failed; *n counts both. -1 when the claim failed
 * (logged; the connection is reset if it was lost).
 */
#define CLAIM_PAUSE_MAX_MS 5000
#define CLAIM_WARN_EVERY_MS 10000

/*
 * A claim PostgreSQL refused (away, or refusing writes): the next waits a while, doubling up to
 * 5 s, and the refusal is logged at the first and then every 10 s, not at every try.
 */
static void
claimer_refused(struct claimer *cl, const char *why)
{
	int64_t now = cf_mono_ms();
	int shift = cl->claim_failures < 5 ? cl->claim_failures : 5;
	int64_t pause = (int64_t)250 << shift;

	cl->claim_failures++;
	cl->claim_after = now + (pause < CLAIM_PAUSE_MAX_MS ? pause : CLAIM_PAUSE_MAX_MS);
	if (cl->claim_failures == 1 || now - cl->claim_warned >= CLAIM_WARN_EVERY_MS) {
		log_error("run: %s (claims pause; %d refused in a row)", why, cl->claim_failures);
		cl->claim_warned = now;
	}
	claimer_reconnect(cl);
}

static int
claimer_claim(struct claimer *cl, long free_slots, int *n)
{
	struct job *jobs = NULL;
	long want = free_slots < cl->cfg.batch ? free_slots : cl->cfg.batch;
	size_t had = cl->unparsed.n;
	cf_err err;

	if (want > 0 && queue_claim_batch(cl->c, cl->cfg.account_id, (int)want, cl->cfg.owner, &jobs, n,
	    &cl->unparsed, &err) != 0) {
		claimer_refused(cl, err.msg);
		return -1;
	}
	if (cl->claim_failures > 0) {
		log_info("run: claims go on after %d refused in a row", cl->claim_failures);
		cl->claim_failures = 0;
	}
	while (jobs) {
		struct job *next = jobs->next;
		jobs->next = NULL;
		worker_pool_submit(cl->pool, jobs);
		jobs = next;
	}
	for (size_t i = had; i < cl->unparsed.n; i++)
		log_error("run: %s; the job fails", cl->unparsed.rows[i].reason);
	/* claimed as well: a batch of such rows alone has the loop claim on rather than wait */
	*n += (int)(cl->unparsed.n - had);
	cl->claimed += *n;
	claimer_end_unparsed(cl);
	return 0;
}

static void
claimer_progress(struct claimer *cl)
{
	struct worker_pool_stats st;

	if (!cl->cfg.progress || cf_mono_ms() - cl->last_progress < PROGRESS_EVERY_MS)
		return;
	worker_pool_stats(cl->pool, &st);
	fprintf(stderr, "progress: %ld claimed, %ld issued, %ld failed, %ld to retry, %ld in flight, %.1f s\n",
	    cl->claimed, st.issued, st.failed + cl->failed, st.retried, st.inflight, (cf_mono_ms() - cl->started) / 1000.0);
	cl->last_progress = cf_mono_ms();
}

/*
 * Waits up to wait_ms for a NOTIFY from enqueue (when listening) or for a job to end. With
 * --poll-only (PgBouncer in transaction mode has no LISTEN) it simply waits.
 */
static void
claimer_idle_wait(struct claimer *cl, int wait_ms)
{
	PGnotify *note;
	int sock = PQsocket(cl->c);

	if (cl->listening && sock >= 0) {
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		if (poll(&pfd, 1, wait_ms) > 0) {
			PQconsumeInput(cl->c);
			while ((note = PQnotifies(cl->c)) != NULL)
				PQfreemem(note);
		}
		return;
	}
	worker_pool_wait(cl->pool, wait_ms);
}

/*
 * Nothing claimable and nothing in flight here: true when the run is done, unless work is due
 * soon or runs elsewhere (or --follow), in which case it waits a while and says false.
 */
static bool
claimer_done(struct claimer *cl)
{
	struct queue_outstanding qo = { 0 };
	cf_err err;

	if (atomic_load(cl->cfg.stop))
		return true;
	if (queue_outstanding(cl->c, cl->cfg.account_id, (int)cl->cfg.retry_wait_s, &qo, &err) != 0) {
		log_error("run: %s", err.msg);
		claimer_reconnect(cl);
	} else if (!qo.due_soon && !qo.running && !cl->cfg.follow) {
		return true;
	}
	claimer_idle_wait(cl, cl->cfg.follow ? 5000 : 1000);
	return false;
}

void
claimer_run(struct claimer *cl)
{
	const atomic_int *stop_count = cl->cfg.stop;
	long pool_size = cl->cfg.nworkers * cl->cfg.inflight;
	struct worker_pool_stats st;

	cl->started = cl->last_progress = cf_mono_ms();
	for (;;) {
		long free_slots = worker_pool_free_slots(cl->pool);
		int n = 0;
		int64_t now = cf_mono_ms();
		int stop = atomic_load(stop_count);
		if (stop > 1)
			break;
		claimer_tend_leases(cl, now);
		claimer_end_unparsed(cl);
		worker_pool_stats(cl->pool, &st);
		/* Claim when a useful batch fits, or whenever the pool has run dry. */
		if (!stop && now >= cl->claim_after &&
		    (free_slots >= (cl->cfg.batch < pool_size ? cl->cfg.batch : 1) || st.inflight == 0)) {
			if (claimer_claim(cl, free_slots, &n) != 0) {
				worker_pool_wait(cl->pool, 1000);
				continue;
			}
		}
		claimer_progress(cl);
		worker_pool_stats(cl->pool, &st);
		if (n == 0 && st.inflight == 0 && !stop && cf_mono_ms() < cl->claim_after) {
			/* claims pause after a refusal: nothing can be done before the next try */
			worker_pool_wait(cl->pool, (int)(cl->claim_after - cf_mono_ms()) + 1);
			continue;
		}
		if (n == 0 && st.inflight == 0) {
			if (claimer_done(cl))
				break;
			continue;
		}
		if (n == 0 || stop)
			worker_pool_wait(cl->pool, stop ? 200 : 100);
	}
}
