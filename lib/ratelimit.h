/* ratelimit.h - thread-safe, non-blocking token buckets for provider accounts and CA endpoints. */
#ifndef CF_RATELIMIT_H
#define CF_RATELIMIT_H

#include <stdint.h>

#include "cf.h"

/*
 * A token bucket: rate tokens per second flow in, at most burst are held, each request takes one.
 * Shared by the worker threads (a mutex guards it) and never blocking: a worker asks when it may
 * send, arms a timer for that delay, and sends when it fires. Times are monotonic milliseconds
 * (cf_mono_ms()) that the caller passes in, so that the bucket can be tested without a clock.
 *
 * Grants happen on whole milliseconds, and for any window of W ms the grants scheduled in it never
 * exceed burst + rate * W / 1000: a request is scheduled at the first millisecond at which the
 * bucket, having served every earlier grant at its own scheduled time, holds a whole token.
 * Callers whose clocks were read a little before another thread's are scheduled after it, not
 * before, so threads racing for the lock cannot break that bound.
 */
struct ratelimit;

#define RATELIMIT_MIN_RATE 1e-6 /* tokens per second: one in 11.6 days */
#define RATELIMIT_MAX_RATE 1e6
#define RATELIMIT_MAX_BURST 1e6

/*
 * After a penalty with a factor, the rate stays at its reduced value until RATELIMIT_HOLD_MS after
 * the pause ends, then climbs back to the configured rate linearly over RATELIMIT_RECOVER_MS.
 */
#define RATELIMIT_HOLD_MS 30000
#define RATELIMIT_RECOVER_MS 60000
#define RATELIMIT_MIN_FACTOR (1.0 / 64) /* penalties compound down to this fraction of the rate */
#define RATELIMIT_MAX_PAUSE_MS (24 * 3600 * 1000LL) /* longer pauses are cut to one day */

/*
 * A full bucket of burst tokens filling at rate_per_s. name (e.g. "route53:prod" or
 * "acme:ca.example") only appears in messages, so it must not hold a secret. rate_per_s must be
 * within [RATELIMIT_MIN_RATE, RATELIMIT_MAX_RATE], burst within [1, RATELIMIT_MAX_BURST].
 * Returns NULL with err set.
 */
struct ratelimit *ratelimit_new(const char *name, double rate_per_s, double burst, cf_err *err)
    CF_MUST;
void ratelimit_free(struct ratelimit *rl);

const char *ratelimit_name(const struct ratelimit *rl);

/*
 * Takes one token at now_ms if one is there and nobody holds a reservation ahead: returns 0.
 * Otherwise takes nothing and returns the ms (> 0) until a token would be there; by then other
 * callers may have taken it, so ask again.
 */
int64_t ratelimit_take(struct ratelimit *rl, int64_t now_ms) CF_MUST;

/*
 * Reserves the next token, now or later: returns the ms (>= 0) the caller must wait before
 * sending. Reservations queue in the order of the calls, spaced 1000 / rate ms apart once the
 * burst is spent. One call per request, then a timer; a reservation cannot be given back.
 */
int64_t ratelimit_reserve(struct ratelimit *rl, int64_t now_ms) CF_MUST;

/*
 * The server said 429 (or sent Retry-After). Policy:
 *  - pause: no token is granted before now_ms + pause_ms (negative counts as 0, more than
 *    RATELIMIT_MAX_PAUSE_MS as that). The bucket loses its burst: it holds at most one token at
 *    the end of the pause (or after the last reservation already granted, if that is later) and
 *    refills at the rate from there. Reservations already granted stand (their callers have armed
 *    timers); only later grants move. A pause of 0 just drops the burst.
 *  - factor: when 0 < factor < 1, the rate in force at now_ms is multiplied by factor (repeated
 *    penalties compound, down to RATELIMIT_MIN_FACTOR of the configured rate). The reduced rate
 *    holds until RATELIMIT_HOLD_MS after the pause ends, then climbs back linearly to the
 *    configured rate over RATELIMIT_RECOVER_MS. Any other factor (1, 0, negative, NaN) leaves
 *    the rate alone.
 */
void ratelimit_penalize(struct ratelimit *rl, int64_t now_ms, int64_t pause_ms, double factor);

/* The rate in force at now_ms, in tokens per second (the configured rate unless penalized). */
double ratelimit_rate(struct ratelimit *rl, int64_t now_ms);

/*
 * Parses "RATE/PERIOD[:BURST]": RATE a decimal number (10, 0.5), PERIOD an optional whole count
 * and a unit of s, m, h or d ("s", "5m", "10s"), BURST a decimal number of at least 1. Without a
 * BURST, the burst is one second's worth of tokens, and at least 1. Examples: "10/s:50"
 * (10 per second, burst 50), "1200/5m" (4 per second, burst 4), "5000/h:250".
 * Returns 0, or -1 with err quoting the input and both outputs 0.
 */
int ratelimit_parse(const char *spec, double *rate_per_s, double *burst, cf_err *err) CF_MUST;

#endif
