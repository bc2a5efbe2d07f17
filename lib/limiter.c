/*
 * limiter.c - the limiter interface's dispatch, and the limiter of one process: a ratelimit bucket
 * whose reservations become timers on the asking loop.
 */
#include "limiter.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "ratelimit.h"

struct local_limiter {
	struct limiter base;
	struct ratelimit *rl;
};

static void
fire_now(struct limiter_wait *w)
{
	if (loop_timer_arm(w->loop, &w->timer, 0, w->fn, w->arg) != 0) {
		/* out of memory for the timer heap: the request goes now rather than never */
		log_error("limiter: cannot arm a timer; sending at once");
		w->fn(w->arg);
	}
}

void
limiter_acquire(struct limiter *lim, struct limiter_wait *w, struct loop *loop, loop_fn fn, void *arg)
{
	w->lim = lim;
	w->loop = loop;
	w->fn = fn;
	w->arg = arg;
	w->next = NULL;
	loop_timer_init(&w->timer);
	if (lim == NULL)
		fire_now(w);
	else
		lim->ops->acquire(lim, w);
}

void
limiter_penalize(struct limiter *lim, int64_t pause_ms)
{
	if (lim)
		lim->ops->penalize(lim, pause_ms);
}

void
limiter_free(struct limiter *lim)
{
	if (lim)
		lim->ops->free(lim);
}

/* Arms w's timer for its turn delay_ms from now (on w's loop thread). */
void
limiter_wait_arm(struct limiter_wait *w, int64_t delay_ms)
{
	if (delay_ms > 0 && w->lim)
		metrics_add(metrics_series(&metrics_limit_wait, w->lim->name, NULL), delay_ms / 1000.0);
	if (delay_ms <= 0) {
		fire_now(w);
	} else if (loop_timer_arm(w->loop, &w->timer, delay_ms, w->fn, w->arg) != 0) {
		log_error("limiter %s: cannot arm a timer; sending at once", w->lim->name);
		w->fn(w->arg);
	}
}

static void
local_acquire(struct limiter *lim, struct limiter_wait *w)
{
	struct local_limiter *l = (struct local_limiter *)lim;

	limiter_wait_arm(w, ratelimit_reserve(l->rl, cf_mono_ms()));
}

static void
local_penalize(struct limiter *lim, int64_t pause_ms)
{
	struct local_limiter *l = (struct local_limiter *)lim;

	ratelimit_penalize(l->rl, cf_mono_ms(), pause_ms, 0.5);
}

static void
local_free(struct limiter *lim)
{
	struct local_limiter *l = (struct local_limiter *)lim;

	ratelimit_free(l->rl);
	free(l->base.name);
	free(l);
}

static const struct limiter_ops local_ops = {
	.acquire = local_acquire,
	.penalize = local_penalize,
	.free = local_free,
};

struct limiter *
limiter_local_new(const char *name, double rate_per_s, double burst, cf_err *err)
{
	struct local_limiter *l = calloc(1, sizeof(*l));

	if (l == NULL || (l->base.name = strdup(name)) == NULL) {
		free(l);
		cf_errf(err, "limiter %s: out of memory", name);
		return NULL;
	}
	if ((l->rl = ratelimit_new(name, rate_per_s, burst, err)) == NULL) {
		free(l->base.name);
		free(l);
		return NULL;
	}
	l->base.ops = &local_ops;
	l->base.rate_per_s = rate_per_s;
	l->base.burst = burst;
	return &l->base;
}
