/*
 * limiter.h - the rate limit in front of an API (a DNS provider account, a CA endpoint), as the
 * event loops see it: ask for a turn, get a callback on the loop when it comes. Two kinds share
 * this interface: a bucket in this process (ratelimit.h, shared by the worker threads)
 * and a bucket in PostgreSQL shared by every process using the same key (orchestrator/sharedlimit.c).
 */
#ifndef CF_LIMITER_H
#define CF_LIMITER_H

#include <stdint.h>

#include "cf.h"
#include "loop.h"

struct limiter;

/* A request waiting for its turn; owned by the caller, who must keep it alive until fn runs. */
struct limiter_wait {
	struct limiter *lim;
	struct loop *loop;
	struct loop_timer timer;
	loop_fn fn;
	void *arg;
	struct limiter_wait *next;  /* the limiter's own list while a shared grant is pending */
	int64_t due_ms;             /* a shared grant's turn, cf_mono_ms() time */
};

struct limiter_ops {
	/* Schedules w->fn(w->arg) on w->loop at the request's turn; never fails (falls back to now). */
	void (*acquire)(struct limiter *lim, struct limiter_wait *w);
	/* The API answered 429 or Retry-After: no turn before pause_ms from now, burst dropped. */
	void (*penalize)(struct limiter *lim, int64_t pause_ms);
	void (*free)(struct limiter *lim);
};

struct limiter {
	const struct limiter_ops *ops;
	char *name;                 /* "cloudflare:cf-prod", "acme:new-order"; never a secret */
	double rate_per_s;
	double burst;
};

/*
 * Asks for a turn: fn(arg) runs on loop when it comes. lim NULL means no limit (fn runs from the
 * loop soon, never inside this call).
 */
void limiter_acquire(struct limiter *lim, struct limiter_wait *w, struct loop *loop, loop_fn fn, void *arg);
void limiter_penalize(struct limiter *lim, int64_t pause_ms);
void limiter_free(struct limiter *lim);

/* For limiter implementations: runs w's callback delay_ms from now (on w's loop thread). */
void limiter_wait_arm(struct limiter_wait *w, int64_t delay_ms);

/* A bucket of this process (limiter.c, thread-safe); NULL with err set. */
struct limiter *limiter_local_new(const char *name, double rate_per_s, double burst, cf_err *err) CF_MUST;

#endif
