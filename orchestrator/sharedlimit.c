/*
 * sharedlimit.c - token buckets in PostgreSQL for limits that several processes share. One thread
 * per process takes the requests the loops queued, reserves their turns for each key with one
 * UPDATE (GCRA: see sql/003_providers.sql) and posts every turn back to its loop as a timer. Every
 * turn also fits a bucket of this process at the same rate, which alone gives the turns while the
 * database cannot answer, so a run slows down safely instead of stopping.
 */
#include "sharedlimit.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "ratelimit.h"

struct shared_limiter {
	struct limiter base;
	struct sharedlimit *sl;
	struct limiter_wait *head;  /* waiting for the thread (guarded by sl->lock) */
	struct limiter_wait *tail;
	int64_t penalty_ms;         /* a pause to write, -1 when none */
	bool registered;            /* rate and burst are in the table */
	/*
	 * This process's own bucket: charged with every turn, so that neither a switch to it while
	 * the database is away nor the database's bucket, which never saw the turns given meanwhile,
	 * grants a burst the process has already spent.
	 */
	struct ratelimit *fallback;
	struct shared_limiter *next;
};

struct sharedlimit {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
	bool stopping;
	bool work;                  /* some limiter has waits or a penalty */
	char *url;
	PGconn *conn;
	bool degraded;              /* the database did not answer: said once, until it is back */
	struct shared_limiter *lims;
};

static const char reserve_sql[] =
    "UPDATE rate_limits r SET tat = greatest(r.tat, n.now) + $2::float8 / r.rate, updated_at = now() "
    "FROM (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) n WHERE r.key = $1 "
    "RETURNING r.tat - $2::float8 / r.rate AS base, n.now AS now, r.rate AS rate, r.burst AS burst";
static const char penalty_sql[] =
    "UPDATE rate_limits SET tat = greatest(tat, extract(epoch FROM clock_timestamp())::float8 "
    "+ $2::float8 / 1000 + (burst - 1) / rate), updated_at = now() WHERE key = $1";
static const char register_sql[] =
    "INSERT INTO rate_limits (key, rate, burst) VALUES ($1, $2, $3) "
    "ON CONFLICT (key) DO UPDATE SET rate = EXCLUDED.rate, burst = EXCLUDED.burst";

/* On the waiting loop's thread. */
static void
wait_arm(void *arg)
{
	struct limiter_wait *w = arg;

	limiter_wait_arm(w, w->due_ms - cf_mono_ms());
}

static void
post_turn(struct limiter_wait *w, int64_t delay_ms)
{
	w->due_ms = cf_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
	while (loop_post(w->loop, wait_arm, w) != 0) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		log_error("rate limit %s: out of memory handing a turn back; retrying", w->lim->name);
		nanosleep(&ts, NULL);
	}
}

static bool
connected(struct sharedlimit *sl)
{
	cf_err err;

	if (sl->conn && PQstatus(sl->conn) == CONNECTION_OK)
		return true;
	if (sl->conn) {
		PQfinish(sl->conn);
		sl->conn = NULL;
	}
	if ((sl->conn = db_connect(sl->url, &err)) == NULL) {
		if (!sl->degraded)
			log_warn("shared rate limits: %s; spacing requests within this process until it is back", err.msg);
		sl->degraded = true;
		for (struct shared_limiter *l = sl->lims; l; l = l->next)
			l->registered = false;
		return false;
	}
	return true;
}

/* A statement failed: start over with a new connection next time (said once until it works). */
static void
drop_connection(struct sharedlimit *sl, const cf_err *err)
{
	if (!sl->degraded)
		log_warn("shared rate limits: %s; spacing requests within this process until the database "
		    "answers", err->msg);
	sl->degraded = true;
	PQfinish(sl->conn);
	sl->conn = NULL;
	for (struct shared_limiter *l = sl->lims; l; l = l->next)
		l->registered = false;
}

/* Reserves turns for the n waits in list, and posts them. Runs on the coordinator thread. */
static void
serve(struct sharedlimit *sl, struct shared_limiter *l, struct limiter_wait *list, size_t n, int64_t penalty)
{
	char rate[32], burst[32], count[24], pause[24];
	PGresult *res = NULL;
	cf_err err;
	bool db = connected(sl);

	snprintf(rate, sizeof(rate), "%.17g", l->base.rate_per_s);
	snprintf(burst, sizeof(burst), "%.17g", l->base.burst);
	if (db && !l->registered) {
		const char *p[] = { l->base.name, rate, burst };
		if (db_run(sl->conn, "registering a shared rate limit", register_sql, 3, p, &err) != 0) {
			drop_connection(sl, &err);
			db = false;
		} else {
			l->registered = true;
		}
	}
	if (penalty >= 0) {
		snprintf(pause, sizeof(pause), "%lld", (long long)penalty);
		const char *p[] = { l->base.name, pause };
		if (db && db_run(sl->conn, "pausing a shared rate limit", penalty_sql, 2, p, &err) != 0) {
			drop_connection(sl, &err);
			db = false;
		}
		ratelimit_penalize(l->fallback, cf_mono_ms(), penalty, 1.0);
	}
	if (n == 0)
		return;
	snprintf(count, sizeof(count), "%zu", n);
	const char *p[] = { l->base.name, count };
	if (db && ((res = db_exec_prepared(sl->conn, "reserving shared rate limit turns", reserve_sql, 2, p, &err)) == NULL ||
	    PQntuples(res) != 1)) {
		if (res)
			cf_errf(&err, "rate limit %s: its row is missing from rate_limits", l->base.name);
		drop_connection(sl, &err);
		db = false;
	}
	if (db) {
		double base = strtod(db_get(res, 0, "base"), NULL), now = strtod(db_get(res, 0, "now"), NULL);
		if (sl->degraded)
			log_info("shared rate limits: the database answers again");
		sl->degraded = false;
		double r = strtod(db_get(res, 0, "rate"), NULL), b = strtod(db_get(res, 0, "burst"), NULL);
		double tau = (b - 1) / r;
		int64_t mono = cf_mono_ms(); /* this process's clock at the database's now */
		size_t i = 0;
		for (struct limiter_wait *w = list, *next; w; w = next, i++) {
			double at = base + (double)i / r - tau;
			/* round up: a turn is never early */
			int64_t delay = at > now ? (int64_t)ceil((at - now) * 1000) : 0, t = mono + delay;
			next = w->next;
			/* and no earlier than this process's own bucket allows */
			post_turn(w, delay + ratelimit_reserve(l->fallback, t));
		}
	} else {
		for (struct limiter_wait *w = list, *next; w; w = next) {
			next = w->next;
			post_turn(w, ratelimit_reserve(l->fallback, cf_mono_ms()));
		}
	}
	PQclear(res);
}

static void *
coordinator(void *arg)
{
	struct sharedlimit *sl = arg;

	pthread_mutex_lock(&sl->lock);
	for (;;) {
		while (!sl->work && !sl->stopping)
			pthread_cond_wait(&sl->cond, &sl->lock);
		if (sl->stopping)
			break;
		sl->work = false;
		for (struct shared_limiter *l = sl->lims; l; l = l->next) {
			struct limiter_wait *list = l->head;
			int64_t penalty = l->penalty_ms;
			size_t n = 0;
			if (list == NULL && penalty < 0)
				continue;
			for (struct limiter_wait *w = list; w; w = w->next)
				n++;
			l->head = l->tail = NULL;
			l->penalty_ms = -1;
			pthread_mutex_unlock(&sl->lock);
			serve(sl, l, list, n, penalty);
			pthread_mutex_lock(&sl->lock);
		}
	}
	/* stopping: whoever still waits goes now */
	for (struct shared_limiter *l = sl->lims; l; l = l->next) {
		for (struct limiter_wait *w = l->head, *next; w; w = next) {
			next = w->next;
			post_turn(w, 0);
		}
		l->head = l->tail = NULL;
	}
	pthread_mutex_unlock(&sl->lock);
	return NULL;
}

static void
shared_acquire(struct limiter *lim, struct limiter_wait *w)
{
	struct shared_limiter *l = (struct shared_limiter *)lim;
	struct sharedlimit *sl = l->sl;

	pthread_mutex_lock(&sl->lock);
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	sl->work = true;
	pthread_cond_signal(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
}

static void
shared_penalize(struct limiter *lim, int64_t pause_ms)
{
	struct shared_limiter *l = (struct shared_limiter *)lim;
	struct sharedlimit *sl = l->sl;

	pthread_mutex_lock(&sl->lock);
	if (pause_ms > l->penalty_ms)
		l->penalty_ms = pause_ms < 0 ? 0 : pause_ms;
	sl->work = true;
	pthread_cond_signal(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
}

static void
shared_free(struct limiter *lim)
{
	struct shared_limiter *l = (struct shared_limiter *)lim;
	struct sharedlimit *sl = l->sl;

	pthread_mutex_lock(&sl->lock);
	for (struct shared_limiter **pp = &sl->lims; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	pthread_mutex_unlock(&sl->lock);
	ratelimit_free(l->fallback);
	free(l->base.name);
	free(l);
}

static const struct limiter_ops shared_ops = {
	.acquire = shared_acquire,
	.penalize = shared_penalize,
	.free = shared_free,
};

struct limiter *
sharedlimit_limiter(void *arg, const char *key, double rate_per_s, double burst, cf_err *err)
{
	struct sharedlimit *sl = arg;
	struct shared_limiter *l = calloc(1, sizeof(*l));

	if (l == NULL || (l->base.name = strdup(key)) == NULL) {
		free(l);
		cf_errf(err, "rate limit %s: out of memory", key);
		return NULL;
	}
	if ((l->fallback = ratelimit_new(key, rate_per_s, burst, err)) == NULL) {
		free(l->base.name);
		free(l);
		return NULL;
	}
	l->base.ops = &shared_ops;
	l->base.rate_per_s = rate_per_s;
	l->base.burst = burst;
	l->sl = sl;
	l->penalty_ms = -1;
	pthread_mutex_lock(&sl->lock);
	l->next = sl->lims;
	sl->lims = l;
	pthread_mutex_unlock(&sl->lock);
	return &l->base;
}

struct sharedlimit *
sharedlimit_new(const char *db_url, cf_err *err)
{
	struct sharedlimit *sl = calloc(1, sizeof(*sl));
	int rc;

	if (sl == NULL || (sl->url = strdup(db_url)) == NULL) {
		free(sl);
		cf_errf(err, "sharedlimit_new: out of memory");
		return NULL;
	}
	pthread_mutex_init(&sl->lock, NULL);
	pthread_cond_init(&sl->cond, NULL);
	if ((rc = pthread_create(&sl->thread, NULL, coordinator, sl)) != 0) {
		cf_errf(err, "pthread_create shared rate limits: %s", strerror(rc));
		sharedlimit_free(sl);
		return NULL;
	}
	sl->started = true;
	return sl;
}

void
sharedlimit_free(struct sharedlimit *sl)
{
	if (sl == NULL)
		return;
	if (sl->started) {
		pthread_mutex_lock(&sl->lock);
		sl->stopping = true;
		pthread_cond_signal(&sl->cond);
		pthread_mutex_unlock(&sl->lock);
		pthread_join(sl->thread, NULL);
	}
	if (sl->conn)
		PQfinish(sl->conn);
	pthread_mutex_destroy(&sl->lock);
	pthread_cond_destroy(&sl->cond);
	free(sl->url);
	free(sl);
}
