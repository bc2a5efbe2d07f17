/*
 * sharedlimit.h - rate limits shared by every process on one database: a token bucket per key in
 * the rate_limits table, reserved by one coordinator thread per process (a few requests batched
 * into one UPDATE), whose answers become timers on the asking event loops.
 */
#ifndef CF_SHAREDLIMIT_H
#define CF_SHAREDLIMIT_H

#include "cf.h"
#include "limiter.h"

struct sharedlimit;

/* Starts the coordinator thread with its own connection to db_url; NULL with err set. */
struct sharedlimit *sharedlimit_new(const char *db_url, cf_err *err) CF_MUST;
/* Stops the thread; waits still pending get their turn at once. Free the limiters first. */
void sharedlimit_free(struct sharedlimit *sl);

/*
 * A limiter for key, with rate and burst written into the table (the last process to start sets
 * them). Matches provider_env.make_limiter. NULL with err set.
 */
struct limiter *sharedlimit_limiter(void *sl, const char *key, double rate_per_s, double burst, cf_err *err) CF_MUST;

#endif
