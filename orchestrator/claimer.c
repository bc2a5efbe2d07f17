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
#include <string.h>

#include "account.h"
#include "log.h"
#include "metrics.h"
#include "progress.h"
#include "queue.h"

#define RESCUE_EVERY_MS 5000
#define PROGRESS_EVERY_MS 2000
#define LIVE_EVERY_MS 500         /* the live line: twice a second */
#define DEPTH_EVERY_MS 5000       /* the live line's queue depth, a count in PostgreSQL */
#define NEW_ACCOUNTS_EVERY_MS 30000
#define STOP_LOOK_MS 200          /* an idle wait looks for a stop signal this often */

struct claimer {
	struct claimer_config cfg;
	PGconn *c;                /* borrowed from the command */
	struct worker_pool *pool; /* borrowed */
	bool listening;           /* LISTEN is active on c */
	bool reconnected;         /* renew the lease at once: it ran on while PostgreSQL was away */
	int64_t last_heartbeat;   /* 0: renew at the next turn */
	int64_t last_queue_count; /* --metrics-listen: when the queue was last counted */
	int64_t last_rescue;
	int64_t started;          /* cf_mono_ms() when claimer_run began */
	int64_t last_progress;
	struct progress rate;     /* the live line's recent rate */
	long queued;              /* ready jobs at the last look (the live line), -1: not known */
	int64_t last_depth;       /* when the queue depth was last counted */
	long claimed;             /* jobs claimed: handed to the pool, or unparsed */
	long failed;              /* unparsed jobs ended as failed */
	int claim_failures;       /* claims refused in a row */
	int64_t claim_after;      /* no claim before this (cf_mono_ms), after refused ones */
	int64_t claim_warned;     /* when a refused claim was last logged */
	struct queue_unparsed unparsed; /* claimed rows that could not be parsed, not ended yet */
	int64_t *ids;             /* the accounts claimed for: cfg's, then those added */
	bool *more;               /* per account: its last claim filled its share (more may wait) */
	size_t nids;
	size_t next_account;      /* the account asked first at the next claim */
	int64_t *known;           /* ids, and the accounts found with jobs that could not be added */
	size_t nknown;
	int64_t last_account_check; /* --follow: when accounts with jobs were last looked for */
	bool notified;            /* a NOTIFY came since: look for new accounts at once */
	int64_t drained_until;    /* the last claim emptied the queue: the next not before this */
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
	if (cfg->naccounts == 0 || (cl->more = calloc(cfg->naccounts, sizeof(*cl->more))) == NULL ||
	    (cl->ids = calloc(cfg->naccounts, sizeof(*cl->ids))) == NULL ||
	    (cl->known = calloc(cfg->naccounts, sizeof(*cl->known))) == NULL) {
		cf_errf(err, cfg->naccounts == 0 ? "claimer: no account to claim for" : "claimer: out of memory");
		free(cl->more);
		free(cl->ids);
		free(cl);
		return NULL;
	}
	memcpy(cl->ids, cfg->account_ids, cfg->naccounts * sizeof(*cl->ids));
	memcpy(cl->known, cfg->account_ids, cfg->naccounts * sizeof(*cl->known));
	cl->nids = cl->nknown = cfg->naccounts;
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
	free(cl->more);
	free(cl->ids);
	free(cl->known);
	free(cl);
}

const int64_t *
claimer_accounts(const struct claimer *cl, size_t *n)
{
	*n = cl->nids;
	return cl->ids;
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
 * A claim that found fewer ready jobs than it asked for emptied the queue: the next comes after
 * this, or at once when enqueue notifies. Jobs that become ready by their time (retries, rescued
 * ones) wait at most this long; the run no longer asks an empty queue at every job's end (two
 * claims of nothing for every five certificates, at the end of a run of 2,000).
 */
#define DRAINED_RECHECK_MS 1000
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

/*
 * Claims up to want jobs of one account and hands them to the pool, except those whose rows could
 * not be parsed, which wait in cl->unparsed to be ended as failed; *n counts both. -1 when the
 * claim failed (nothing was claimed).
 */
static int
claimer_claim_account(struct claimer *cl, int64_t account_id, long want, int *n, cf_err *err)
{
	struct job *jobs = NULL;
	size_t had = cl->unparsed.n;

	if (queue_claim_batch(cl->c, account_id, (int)want, cl->cfg.owner, &jobs, n, &cl->unparsed, err) != 0)
		return -1;
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
	return 0;
}

/*
 * Claims up to free_slots jobs (at most a batch), fairly over the run's accounts: each is asked
 * for an equal share, starting one account further at every claim, and what some could not fill
 * goes in a second round to those that filled theirs. So a CA with a long backlog cannot take the
 * slots of another's jobs. With one account it is one statement, as ever. *n counts the jobs
 * claimed; -1 when a claim failed (logged; the connection is reset if it was lost).
 */
static int
claimer_claim(struct claimer *cl, long free_slots, int *n)
{
	long want = free_slots < cl->cfg.batch ? free_slots : cl->cfg.batch;
	size_t k = cl->nids;
	cf_err err;

	*n = 0;
	for (int round = 0; round < 2 && *n < want; round++) {
		size_t asked = 0;
		for (size_t i = 0; i < k; i++)
			asked += round == 0 || cl->more[i];
		if (asked == 0)
			break;
		long share = (want - *n + (long)asked - 1) / (long)asked;
		for (size_t i = 0; i < k && *n < want; i++) {
			size_t a = (cl->next_account + i) % k;
			long ask = want - *n < share ? want - *n : share;
			int got = 0;
			if (round > 0 && !cl->more[a])
				continue;
			if (claimer_claim_account(cl, cl->ids[a], ask, &got, &err) != 0) {
				claimer_refused(cl, err.msg);
				return -1;
			}
			cl->more[a] = got == ask;
			*n += got;
		}
	}
	cl->next_account = (cl->next_account + 1) % k;
	cl->drained_until = *n < want ? cf_mono_ms() + DRAINED_RECHECK_MS : 0;
	if (cl->claim_failures > 0) {
		log_info("run: claims go on after %d refused in a row", cl->claim_failures);
		cl->claim_failures = 0;
	}
	claimer_end_unparsed(cl);
	return 0;
}

/*
 * Progress on standard error: on a terminal a live line rewritten in place, twice a second, with
 * the rate and time left; otherwise a plain line every 2 s (a JSON log line with --log-format json).
 */
static void
claimer_progress(struct claimer *cl)
{
	struct worker_pool_stats st;
	int64_t now = cf_mono_ms();
	long failed;
	char line[256];

	if (!cl->cfg.progress || now - cl->last_progress < (cl->cfg.live ? LIVE_EVERY_MS : PROGRESS_EVERY_MS))
		return;
	worker_pool_stats(cl->pool, &st);
	failed = st.failed + cl->failed;
	cl->last_progress = now;
	if (!cl->cfg.live) {
		snprintf(line, sizeof(line), "progress: %ld claimed, %ld issued, %ld failed, %ld to retry, %ld in flight, %.1f s",
		    cl->claimed, st.issued, failed, st.retried, st.inflight, (now - cl->started) / 1000.0);
		if (cf_log_get_format() == CF_LOG_JSON)
			log_info("%s", line);
		else
			fprintf(stderr, "%s\n", line);
		return;
	}
	if (cl->last_depth == 0 || now - cl->last_depth >= DEPTH_EVERY_MS) {
		struct queue_outstanding qo = { 0 };
		cf_err err;
		/* unknown ("?") rather than a failure of its own: the claim reports PostgreSQL's troubles */
		cl->queued = queue_outstanding(cl->c, cl->ids, cl->nids, 0, &qo, &err) == 0 ? qo.ready : -1;
		cl->last_depth = now;
	}
	progress_sample(&cl->rate, now, st.issued + st.failed + st.retried);
	progress_line(line, sizeof(line), cl->claimed, st.issued, failed, st.inflight, &cl->rate, cl->queued);
	cf_log_status(line);
}

/* Takes the NOTIFYs from enqueue that came (when listening), without waiting. */
static void
claimer_take_notifies(struct claimer *cl)
{
	PGnotify *note;

	if (!cl->listening || PQconsumeInput(cl->c) == 0)
		return;
	while ((note = PQnotifies(cl->c)) != NULL) {
		PQfreemem(note);
		cl->notified = true;
		cl->drained_until = 0; /* new jobs: claim at once */
	}
}

/*
 * Waits up to wait_ms for a NOTIFY from enqueue (when listening) or for a job to end. With
 * --poll-only (PgBouncer in transaction mode has no LISTEN) it simply waits. Either way it looks
 * for a stop every STOP_LOOK_MS: the stopper thread takes the signals, so none cuts the wait
 * short, and an idle --follow run took up to 5 s to end on SIGTERM.
 */
static void
claimer_idle_wait(struct claimer *cl, int wait_ms)
{
	int sock = PQsocket(cl->c);
	int64_t until = cf_mono_ms() + wait_ms, left;

	while (!atomic_load(cl->cfg.stop) && (left = until - cf_mono_ms()) > 0) {
		int slice = left < STOP_LOOK_MS ? (int)left : STOP_LOOK_MS;
		if (!cl->listening || sock < 0) {
			worker_pool_wait(cl->pool, slice);
			continue;
		}
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		if (poll(&pfd, 1, slice) > 0) {
			claimer_take_notifies(cl);
			return;
		}
	}
}

/* Claims the jobs of a (whose CA cfg.add_account adds to the pool) from now on. */
static int
claimer_add_account(struct claimer *cl, const struct account *a)
{
	int64_t id = a->id, *ids;
	bool *more;

	if ((ids = realloc(cl->ids, (cl->nids + 1) * sizeof(*ids))) != NULL)
		cl->ids = ids;
	if ((more = realloc(cl->more, (cl->nids + 1) * sizeof(*more))) != NULL)
		cl->more = more;
	if (ids == NULL || more == NULL || cl->cfg.add_account(cl->cfg.add_arg, a) != 0)
		return -1;
	cl->ids[cl->nids] = id;
	cl->more[cl->nids] = false;
	cl->nids++;
	return 0;
}

/*
 * With --follow, the jobs of an account the run did not start with (it had none then): its CA is
 * added and its jobs claimed too, or (no add_account, or it failed) they wait for the next run,
 * which is said once per account. Looked for while idle: after a NOTIFY (at most once a second),
 * else every 30 s.
 */
static void
claimer_find_new_accounts(struct claimer *cl)
{
	struct account *found = NULL;
	size_t n = 0;
	int64_t now = cf_mono_ms(), *grown;
	cf_err err;

	/* at most once a second, however often enqueue notifies */
	if (now - cl->last_account_check < (cl->notified ? 1000 : NEW_ACCOUNTS_EVERY_MS))
		return;
	cl->notified = false;
	cl->last_account_check = now;
	if (account_load_busy(cl->c, cl->known, cl->nknown, &found, &n, &err) != 0) {
		log_warn("run: %s", err.msg);
		return;
	}
	if (n > 0 && (grown = realloc(cl->known, (cl->nknown + n) * sizeof(*grown))) != NULL) {
		cl->known = grown;
		for (size_t i = 0; i < n; i++) {
			int64_t id = found[i].id;
			cl->known[cl->nknown++] = id;
			if (cl->cfg.add_account && claimer_add_account(cl, &found[i]) == 0)
				continue;
			log_warn("run: jobs of account %lld (CA %s) are queued, but this run could not take that "
			    "account on: the next run works them", (long long)id, found[i].directory_url);
		}
	}
	for (size_t i = 0; i < n; i++)
		account_clear(&found[i]);
	free(found);
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
	if (queue_outstanding(cl->c, cl->ids, cl->nids, (int)cl->cfg.retry_wait_s, &qo, &err) != 0) {
		log_error("run: %s", err.msg);
		claimer_reconnect(cl);
	} else if (!qo.due_soon && !qo.running && !cl->cfg.follow) {
		return true;
	}
	/* a look for new accounts put off by a NOTIFY comes within a second */
	claimer_idle_wait(cl, cl->cfg.follow && !cl->notified ? 5000 : 1000);
	if (cl->cfg.follow)
		claimer_find_new_accounts(cl);
	return false;
}

#define QUEUE_COUNT_EVERY_MS 5000 /* a scrape reads the last count: PostgreSQL never sees scrapes */

/* Refreshes certfleet_queue_jobs{state}: two index-only counts (jobs_ready, jobs_one_active). */
static void
claimer_count_queue(struct claimer *cl, int64_t now)
{
	static const char *const states[] = { "ready", "running" };
	PGresult *res;

	if (!cl->cfg.queue_metrics || now - cl->last_queue_count < QUEUE_COUNT_EVERY_MS)
		return;
	cl->last_queue_count = now;
	res = PQexec(cl->c, "SELECT count(*) FILTER (WHERE state = 'ready'), count(*) FILTER (WHERE state = 'running')"
	                    " FROM jobs WHERE state IN ('ready', 'running')");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		for (int i = 0; i < 2; i++)
			metrics_set(metrics_series(&metrics_queue_jobs, states[i], NULL), atof(PQgetvalue(res, 0, i)));
	} else {
		log_debug("claimer: counting the queue for metrics: %s", PQerrorMessage(cl->c));
	}
	PQclear(res);
}

void
claimer_run(struct claimer *cl)
{
	const atomic_int *stop_count = cl->cfg.stop;
	long pool_size = cl->cfg.nworkers * cl->cfg.inflight;
	struct worker_pool_stats st;

	cl->started = cl->last_progress = cf_mono_ms();
	if (cl->cfg.live)
		cl->last_progress -= LIVE_EVERY_MS; /* the live line shows from the first turn */
	cl->queued = -1;
	for (;;) {
		long free_slots = worker_pool_free_slots(cl->pool);
		int n = 0;
		int64_t now = cf_mono_ms();
		int stop = atomic_load(stop_count);
		if (stop > 1)
			break;
		claimer_tend_leases(cl, now);
		claimer_count_queue(cl, now);
		claimer_end_unparsed(cl);
		worker_pool_stats(cl->pool, &st);
		claimer_take_notifies(cl);
		/* Claim when a useful batch fits, or whenever the pool has run dry. */
		if (!stop && now >= cl->claim_after && now >= cl->drained_until &&
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
	if (cl->cfg.live)
		cf_log_status(NULL); /* the summary takes its place */
}
