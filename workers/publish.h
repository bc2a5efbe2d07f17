/*
 * publish.h - getting one TXT record in place for an engine's orders: published through its
 * provider account (records of one zone grouped into few calls, one call per zone at a time,
 * spaced by the account's rate limit), then confirmed at the zone's authoritative servers and
 * re-checked with a growing interval until a deadline. A record is written once per publisher:
 * later requests for it wait for the write under way, or find it done. Runs on the engine's
 * loop; the blocking parts (zone discovery, DNS queries, TSIG updates, programs) go to the
 * blockpool.
 */
#ifndef CF_PUBLISH_H
#define CF_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "blockpool.h"
#include "loop.h"
#include "provider.h"

struct publisher;

struct publish_result {
	const char *problem_type;  /* NULL on success; else certfleet:provider, certfleet:provider-rejected,
	                            * certfleet:record-not-visible or certfleet:internal */
	const char *detail;
	int64_t retry_after_ms;    /* the provider's Retry-After, -1 when none */
	bool confirmed;            /* seen at every authoritative server (false when checks are off) */
	bool wrote;                /* publish_ensure: this request's write put the record in place */
};

/* Called once, on the loop thread. */
typedef void (*publish_done_fn)(void *arg, const struct publish_result *res);

struct publisher *publisher_new(struct loop *loop, struct blockpool *pool);
/* Only when nothing is in flight (the engine is idle). */
void publisher_free(struct publisher *p);

/*
 * Publishes fqdn=value through acct and confirms it, giving up at deadline_ms (cf_mono_ms time)
 * if it cannot be seen by then. done(arg, result) follows, never inside this call.
 */
void publish_start(struct publisher *p, struct provider_account *acct, const char *fqdn, const char *value,
    int64_t deadline_ms, publish_done_fn done, void *arg);

/* A request of publish_ensure; the caller's, alive until its done runs. */
struct publish_wait {
	publish_done_fn done;
	void *arg;
	struct publish_wait *next;
};

/* True when this publisher put fqdn=value in place before: nothing is left to do for it. */
bool publish_known(struct publisher *p, const char *fqdn, const char *value);

/*
 * Has fqdn=value in place through acct: the first request for a record publishes it (with
 * publish_start; its result has wrote set), requests that come while that write is under way
 * wait for its outcome, and after a failure the next request tries again. done(arg, result)
 * follows on the loop thread, inside this call only when out of memory.
 */
void publish_ensure(struct publisher *p, struct publish_wait *w, struct provider_account *acct,
    const char *fqdn, const char *value, int64_t deadline_ms, publish_done_fn done, void *arg);

/* Records being published or confirmed now. */
long publisher_pending(const struct publisher *p);

#endif
