/*
 * worker.c - worker threads: one loop each, and one ACME engine per CA on it, fed through an
 * eventfd-woken inbox.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define WORKER_STARTS_PER_ROUND 32 /* orders started, or gated requests retried, per loop round */

struct worker {
	int id;
	pthread_t thread;
	bool started;
	struct worker_pool *pool;
	struct loop *loop;
	struct engine **engs;     /* one per CA it had jobs of (loop thread), or one for cfg.acme */
	int64_t *eng_accounts;    /* the account of each engine */
	size_t neng;
	pthread_mutex_t inbox_lock;
	struct job *inbox;        /* jobs handed over, not yet seen by the loop */
	struct job *starting;     /* jobs taken from the inbox, not yet started (loop thread only) */
	struct job **starting_tail;
	long inflight;            /* handed over and not ended; under pool->lock */
	int stop;                 /* atomic: finish and exit once idle */
	int64_t max_lag_ms;       /* atomic copy of the loop's lag */
};

struct worker_pool {
	struct worker_pool_config cfg; /* cfg.cas NULL: see cas; cfg.ncas 0: one CA, acme's */
	struct worker_ca *cas;    /* the CAs, started with and added (under lock) */
	size_t ncas;
	size_t capcas;
	struct worker *workers;
	int nworkers;
	pthread_mutex_t lock;
	pthread_cond_t changed;   /* a job ended */
	long inflight;
	long issued;
	long failed;
	long retried;
	long cancelled;
	long peak_inflight;
	int64_t *latencies;       /* ms from start to end of every order, in end order */
	size_t nlat;
	size_t caplat;
};

static void
on_job_done(void *arg, struct job *job, enum job_outcome outcome, int64_t elapsed_ms)
{
	struct worker *w = arg;
	struct worker_pool *pool = w->pool;

	job_free(job);
	pthread_mutex_lock(&pool->lock);
	if (pool->nlat == pool->caplat) {
		size_t cap = pool->caplat ? pool->caplat * 2 : 1024;
		int64_t *l = realloc(pool->latencies, cap * sizeof(*l));
		if (l) {
			pool->latencies = l;
			pool->caplat = cap;
		}
	}
	if (pool->nlat < pool->caplat)
		pool->latencies[pool->nlat++] = elapsed_ms;
	w->inflight--;
	pool->inflight--;
	switch (outcome) {
	case JOB_ISSUED:
		pool->issued++;
		break;
	case JOB_FAILED:
		pool->failed++;
		break;
	case JOB_RETRY:
		pool->retried++;
		break;
	case JOB_CANCELLED:
		pool->cancelled++;
		break;
	}
	pthread_cond_broadcast(&pool->changed);
	pthread_mutex_unlock(&pool->lock);
}

static void
on_gate_open(void *arg)
{
	struct worker *w = arg;

	loop_wakeup(w->loop);
}

/*
 * A new engine of w for ca (NULL: the pool's acme alone), on the loop thread or before it runs.
 * NULL with err set.
 */
static struct engine *
worker_engine_add(struct worker *w, const struct worker_ca *ca, cf_err *err)
{
	struct acme_config ac = w->pool->cfg.acme;
	struct engine **engs;
	int64_t *accounts;
	struct engine *eng;

	if (ca) {
		ac.directory_url = ca->directory_url;
		ac.account_url = ca->account_url;
		ac.key_pem = ca->key_pem;
		ac.issuer = ca->issuer;
		ac.gate = ca->gate;
		ac.limits = ca->limits;
		ac.unsaved = ca->unsaved;
		ac.validations = ca->validations;
	}
	if ((engs = realloc(w->engs, (w->neng + 1) * sizeof(*engs))) != NULL)
		w->engs = engs;
	if ((accounts = realloc(w->eng_accounts, (w->neng + 1) * sizeof(*accounts))) != NULL)
		w->eng_accounts = accounts;
	if (engs == NULL || accounts == NULL) {
		cf_errf(err, "worker %d: out of memory", w->id);
		return NULL;
	}
	if ((eng = engine_new(w->loop, &ac, on_job_done, w, err)) == NULL)
		return NULL;
	w->engs[w->neng] = eng;
	w->eng_accounts[w->neng] = ca ? ca->account_id : 0;
	w->neng++;
	if (ac.gate && ca_gate_subscribe(ac.gate, on_gate_open, w) != 0) {
		cf_errf(err, "worker %d: too many workers for the CA gate of %s", w->id, ac.directory_url);
		return NULL;
	}
	return eng;
}

/*
 * The engine of job's CA, made at the first job of a CA added to the pool while it ran; NULL when
 * the pool has no such CA or the engine could not be made (logged).
 */
static struct engine *
worker_engine_for(struct worker *w, const struct job *job)
{
	struct worker_pool *pool = w->pool;
	struct worker_ca ca;
	bool found = false;
	cf_err err;

	if (pool->cfg.ncas == 0)
		return w->engs[0];
	for (size_t i = 0; i < w->neng; i++)
		if (w->eng_accounts[i] == job->account_id)
			return w->engs[i];
	pthread_mutex_lock(&pool->lock);
	for (size_t i = 0; i < pool->ncas && !found; i++) {
		if (pool->cas[i].account_id == job->account_id) {
			ca = pool->cas[i];
			found = true;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	if (!found) {
		log_error("worker %d: job %lld is for account %lld, which this run has not loaded", w->id,
		    (long long)job->id, (long long)job->account_id);
		return NULL;
	}
	struct engine *eng = worker_engine_add(w, &ca, &err);
	if (eng == NULL)
		log_error("worker %d: the engine for %s: %s", w->id, ca.directory_url, err.msg);
	return eng;
}

/*
 * Starts job on the engine of its CA. The claimer claims only the jobs of the pool's CAs, so a job
 * without one is a fault: it ends as a retry here, and its job stays running until the run's
 * lease expires.
 */
static void
worker_order_start(struct worker *w, struct job *job)
{
	struct engine *eng = worker_engine_for(w, job);

	if (eng)
		engine_order_start(eng, job);
	else
		on_job_done(w, job, JOB_RETRY, 0);
}

/* True when no engine of w has anything outstanding. */
static bool
worker_engines_idle(const struct worker *w)
{
	for (size_t i = 0; i < w->neng; i++)
		if (!engine_idle(w->engs[i]))
			return false;
	return true;
}

/*
 * Starts jobs from the inbox and retries gated requests, a bounded number per round: a claim of
 * hundreds of jobs must not hold the loop (and every timer) while all of them sign their first
 * request. What is left waits for the next round, which the loop is woken for.
 */
static void
on_wakeup(void *arg)
{
	struct worker *w = arg;
	struct job *list, *rev = NULL;
	int started = 0;
	bool more;

	pthread_mutex_lock(&w->inbox_lock);
	list = w->inbox;
	w->inbox = NULL;
	pthread_mutex_unlock(&w->inbox_lock);
	while (list) { /* the inbox is LIFO; start jobs in the order they were claimed */
		struct job *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	/* append to the jobs not started in earlier rounds */
	*w->starting_tail = rev;
	while (*w->starting_tail)
		w->starting_tail = &(*w->starting_tail)->next;
	while (w->starting && started < WORKER_STARTS_PER_ROUND) {
		struct job *j = w->starting;
		w->starting = j->next;
		if (w->starting == NULL)
			w->starting_tail = &w->starting;
		j->next = NULL;
		worker_order_start(w, j);
		started++;
	}
	more = false;
	for (size_t i = 0; i < w->neng; i++)
		more = engine_wake(w->engs[i], WORKER_STARTS_PER_ROUND) || more;
	if (w->starting || more)
		loop_wakeup(w->loop);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		if (loop_run_once(w->loop, 500) < 0)
			log_error("worker %d: event loop error", w->id);
		__atomic_store_n(&w->max_lag_ms, loop_max_lag_ms(w->loop), __ATOMIC_RELAXED);
		if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
			pthread_mutex_lock(&w->pool->lock);
			bool idle = w->inflight == 0;
			pthread_mutex_unlock(&w->pool->lock);
			if (idle && worker_engines_idle(w) && loop_transfers(w->loop) == 0)
				break;
		}
	}
	return NULL;
}

/* w's first engines: one per CA of the pool, or one for its acme alone. */
static int
worker_engines_new(struct worker *w, cf_err *err)
{
	struct worker_pool *pool = w->pool;

	if (pool->cfg.ncas == 0)
		return worker_engine_add(w, NULL, err) ? 0 : -1;
	for (size_t i = 0; i < pool->ncas; i++)
		if (worker_engine_add(w, &pool->cas[i], err) == NULL)
			return -1;
	return 0;
}

int
worker_pool_add_ca(struct worker_pool *pool, const struct worker_ca *ca, cf_err *err)
{
	int rc = -1;

	if (pool->cfg.ncas == 0) {
		cf_errf(err, "adding the CA %s: the pool orders from one CA alone", ca->directory_url);
		return -1;
	}
	pthread_mutex_lock(&pool->lock);
	if (pool->ncas == pool->capcas) {
		size_t cap = pool->capcas ? pool->capcas * 2 : 4;
		struct worker_ca *cas = realloc(pool->cas, cap * sizeof(*cas));
		if (cas == NULL) {
			cf_errf(err, "adding the CA %s: out of memory", ca->directory_url);
			goto out;
		}
		pool->cas = cas;
		pool->capcas = cap;
	}
	pool->cas[pool->ncas++] = *ca;
	rc = 0;
out:
	pthread_mutex_unlock(&pool->lock);
	return rc;
}

struct worker_pool *
worker_pool_start(const struct worker_pool_config *cfg, cf_err *err)
{
	struct worker_pool *pool = calloc(1, sizeof(*pool));

	if (pool == NULL || (pool->workers = calloc((size_t)cfg->nworkers, sizeof(struct worker))) == NULL) {
		free(pool);
		cf_errf(err, "worker_pool_start: out of memory");
		return NULL;
	}
	pool->cfg = *cfg;
	pool->cfg.cas = NULL; /* copied into pool->cas */
	if (cfg->ncas > 0 && (pool->cas = calloc(cfg->ncas, sizeof(*pool->cas))) == NULL) {
		free(pool->workers);
		free(pool);
		cf_errf(err, "worker_pool_start: out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->ncas; i++)
		pool->cas[i] = cfg->cas[i];
	pool->ncas = pool->capcas = cfg->ncas;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->changed, NULL);
	for (int i = 0; i < cfg->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		w->id = i;
		w->pool = pool;
		pthread_mutex_init(&w->inbox_lock, NULL);
		w->starting_tail = &w->starting;
		pool->nworkers = i + 1;
		w->loop = loop_new(&cfg->loop, err);
		if (w->loop == NULL)
			goto fail;
		if (worker_engines_new(w, err) != 0)
			goto fail;
		loop_set_wakeup(w->loop, on_wakeup, w);
		int rc = pthread_create(&w->thread, NULL, worker_main, w);
		if (rc != 0) {
			cf_errf(err, "pthread_create worker %d: %s", i, strerror(rc));
			goto fail;
		}
		w->started = true;
	}
	return pool;
fail:
	worker_pool_stop(pool);
	return NULL;
}

long
worker_pool_free_slots(struct worker_pool *pool)
{
	long free_slots;

	pthread_mutex_lock(&pool->lock);
	free_slots = pool->cfg.per_worker_cap * pool->nworkers - pool->inflight;
	pthread_mutex_unlock(&pool->lock);
	return free_slots > 0 ? free_slots : 0;
}

void
worker_pool_submit(struct worker_pool *pool, struct job *job)
{
	struct worker *best = &pool->workers[0];

	pthread_mutex_lock(&pool->lock);
	for (int i = 1; i < pool->nworkers; i++)
		if (pool->workers[i].inflight < best->inflight)
			best = &pool->workers[i];
	best->inflight++;
	pool->inflight++;
	if (pool->inflight > pool->peak_inflight)
		pool->peak_inflight = pool->inflight;
	pthread_mutex_unlock(&pool->lock);

	pthread_mutex_lock(&best->inbox_lock);
	job->next = best->inbox;
	best->inbox = job;
	pthread_mutex_unlock(&best->inbox_lock);
	loop_wakeup(best->loop);
}

void
worker_pool_wait(struct worker_pool *pool, int wait_ms)
{
	struct timespec until;

	cf_timespec_after(&until, CLOCK_REALTIME, wait_ms);
	pthread_mutex_lock(&pool->lock);
	pthread_cond_timedwait(&pool->changed, &pool->lock, &until);
	pthread_mutex_unlock(&pool->lock);
}

void
worker_pool_stats(struct worker_pool *pool, struct worker_pool_stats *out)
{
	pthread_mutex_lock(&pool->lock);
	out->inflight = pool->inflight;
	out->issued = pool->issued;
	out->failed = pool->failed;
	out->retried = pool->retried;
	out->cancelled = pool->cancelled;
	out->peak_inflight = pool->peak_inflight;
	pthread_mutex_unlock(&pool->lock);
	out->max_lag_ms = 0;
	for (int i = 0; i < pool->nworkers; i++) {
		int64_t lag = __atomic_load_n(&pool->workers[i].max_lag_ms, __ATOMIC_RELAXED);
		if (lag > out->max_lag_ms)
			out->max_lag_ms = lag;
	}
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

struct cancel_req {
	struct worker *w;
	int64_t job_id;
};

static void
on_cancel(void *arg)
{
	struct cancel_req *c = arg;

	for (size_t i = 0; i < c->w->neng; i++)
		engine_order_cancel(c->w->engs[i], c->job_id);
	free(c);
}

void
worker_pool_cancel(struct worker_pool *pool, int64_t job_id)
{
	/* a job still in an inbox is missed; the claimer asks again at its next heartbeat */
	for (int i = 0; i < pool->nworkers; i++) {
		struct cancel_req *c = malloc(sizeof(*c));
		if (c == NULL)
			continue;
		c->w = &pool->workers[i];
		c->job_id = job_id;
		if (loop_post(c->w->loop, on_cancel, c) != 0)
			free(c);
	}
}

int64_t
worker_pool_latency(struct worker_pool *pool, double pct)
{
	int64_t *copy, v = 0;
	size_t n;

	pthread_mutex_lock(&pool->lock);
	n = pool->nlat;
	copy = n ? malloc(n * sizeof(*copy)) : NULL;
	if (copy)
		memcpy(copy, pool->latencies, n * sizeof(*copy));
	pthread_mutex_unlock(&pool->lock);
	if (copy == NULL)
		return 0;
	qsort(copy, n, sizeof(*copy), cmp_i64);
	size_t i = (size_t)(pct / 100.0 * (double)(n - 1) + 0.5);
	v = copy[i < n ? i : n - 1];
	free(copy);
	return v;
}

void
worker_pool_stop(struct worker_pool *pool)
{
	if (pool == NULL)
		return;
	for (int i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
		if (w->loop)
			loop_wakeup(w->loop);
	}
	for (int i = 0; i < pool->nworkers; i++) {
		struct worker *w = &pool->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		for (size_t k = 0; k < w->neng; k++)
			engine_free(w->engs[k]);
		free(w->engs);
		free(w->eng_accounts);
		loop_free(w->loop);
		pthread_mutex_destroy(&w->inbox_lock);
		for (struct job *j = w->inbox, *n; j; j = n) {
			n = j->next;
			job_free(j);
		}
		for (struct job *j = w->starting, *n; j; j = n) {
			n = j->next;
			job_free(j);
		}
	}
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->changed);
	free(pool->latencies);
	free(pool->cas);
	free(pool->workers);
	free(pool);
}
