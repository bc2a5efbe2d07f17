/*
 * acme.h - one worker's ACME (RFC 8555) client: the directory, a nonce pool, signed requests that
 * survive badNonce and Retry-After, and the dns-persist-01 order state machine (order.c) that takes
 * a job to an issued certificate. Everything runs on the worker's loop and never blocks.
 */
#ifndef CF_ACME_H
#define CF_ACME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cagate.h"
#include "cf.h"
#include "http.h"
#include "job.h"
#include "keygen.h"
#include "limiter.h"
#include "loop.h"
#include "outbox.h"
#include "registry.h"

/*
 * Orders the CA created whose URL is not committed to PostgreSQL yet, counted for the whole
 * process. A crash orphans those orders (the next attempt cannot resume them and orders anew), so
 * capping them caps what a crash can cost. A newOrder waits while cap are unsaved; the writer's
 * commit of the order's URL releases its slot.
 */
struct unsaved_orders {
	atomic_long n;
	long cap;                      /* at least 1 */
};

/* Gives back one slot (NULL: nothing); thread-safe. */
void unsaved_orders_release(struct unsaved_orders *u);

/* Rate limits towards the CA (orchestrator/calimits.h); NULL members limit nothing. */
struct acme_limits {
	struct limiter *new_nonce;     /* newNonce requests */
	struct limiter *new_order;     /* newOrder requests */
	struct limiter *other;         /* every other request to the CA */
	struct limiter *account_orders; /* new orders of the account, renewals exempt */
};

struct acme_config {
	const char *directory_url;
	const char *account_url;       /* the account's URL: the JWS kid and the record's accounturi */
	const char *key_pem;           /* account key; parsed once per engine, never logged */
	const char *issuer;            /* preferred issuer domain name, NULL = the CA's first */
	struct http_settings http;
	struct provider_registry *providers; /* the DNS provider accounts jobs name */
	struct blockpool *pool;        /* threads for blocking DNS work (zone lookups, record checks) */
	struct outbox *outbox;
	int64_t order_timeout_ms;      /* an order not done by then fails; 0 = 10 minutes */
	struct ca_gate *gate;          /* keeps newOrder and authorization fetches apart; NULL = off */
	struct keygen_pool *keygen;    /* threads for slow (RSA) keys; NULL = generate in the loop */
	int64_t retry_base_ms;         /* first retry after a retryable failure; x10 per attempt */
	const struct acme_limits *limits; /* NULL = none */
	struct unsaved_orders *unsaved; /* NULL = newOrder never waits for the writer */
};

struct acme_engine;

enum job_outcome {
	JOB_ISSUED,
	JOB_FAILED,      /* final: no attempt left, or a failure retrying cannot mend */
	JOB_RETRY,       /* back to the queue for a later attempt */
	JOB_CANCELLED,
};

/* Called on the loop thread when a job's order ends, elapsed_ms after it started; the callee owns job. */
typedef void (*acme_job_done_fn)(void *arg, struct job *job, enum job_outcome outcome, int64_t elapsed_ms);

struct acme_engine *acme_engine_new(struct loop *loop, const struct acme_config *cfg,
    acme_job_done_fn done, void *done_arg, cf_err *err) CF_MUST;
void acme_engine_free(struct acme_engine *eng);

/* Starts the order for job (takes ownership); done is called when it ends, issued or failed. */
void acme_order_start(struct acme_engine *eng, struct job *job);

/*
 * Retries up to max requests that waited on the gate (on the loop thread, after a wake-up);
 * true when some are left for the next round.
 */
bool acme_engine_wake(struct acme_engine *eng, int max);

/* Ends the order of job_id, if this engine has it, as cancelled. */
void acme_order_cancel(struct acme_engine *eng, int64_t job_id);

/* Orders in flight on this engine. */
long acme_engine_orders(const struct acme_engine *eng);

/* True when nothing of this engine is outstanding: no order, no key being made for one. */
bool acme_engine_idle(const struct acme_engine *eng);

#endif
