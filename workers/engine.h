/*
 * engine.h - one worker's order engine: the dns-persist-01 order and authorization state
 * machines that take a job to an issued certificate, over the ACME transport (acme.h), the
 * record publisher (publish.h) and the outbox to the writer. Everything runs on the worker's
 * loop and never blocks.
 */
#ifndef CF_ENGINE_H
#define CF_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "acme.h"
#include "blockpool.h"
#include "cf.h"
#include "http.h"
#include "job.h"
#include "keygen.h"
#include "loop.h"
#include "outbox.h"
#include "registry.h"

struct acme_config {
	const char *directory_url;
	const char *account_url;       /* the account's URL: the JWS kid and the record's accounturi */
	const char *key_pem;           /* account key; parsed once per engine, never logged */
	const char *issuer;            /* preferred issuer domain name, NULL = the CA's first */
	int64_t persist_until;         /* persistUntil of every record (unix seconds); 0 = none */
	struct http_settings http;
	const struct http_transport *transport; /* NULL = the loop's libcurl multi handle */
	struct provider_registry *providers; /* the DNS provider accounts jobs name */
	struct blockpool *pool;        /* threads for blocking DNS work (zone lookups, record checks) */
	struct outbox *outbox;
	int64_t order_timeout_ms;      /* an order not done by then fails; 0 = 10 minutes */
	struct ca_gate *gate;          /* keeps newOrder and authorization fetches apart; NULL = off */
	struct keygen_pool *keygen;    /* threads for slow (RSA) keys; NULL = generate in the loop */
	int64_t retry_base_ms;         /* first retry after a retryable failure; x10 per attempt */
	const struct acme_limits *limits; /* NULL = none */
	struct unsaved_orders *unsaved; /* NULL = newOrder never waits for the writer */
	struct ca_validations *validations; /* challenges answered, verdict not in; NULL = no cap */
};

struct engine;

enum job_outcome {
	JOB_ISSUED,
	JOB_FAILED,      /* final: no attempt left, or a failure retrying cannot mend */
	JOB_RETRY,       /* back to the queue for a later attempt */
	JOB_CANCELLED,
};

/* Called on the loop thread when a job's order ends, elapsed_ms after it started; the callee owns job. */
typedef void (*engine_job_done_fn)(void *arg, struct job *job, enum job_outcome outcome, int64_t elapsed_ms);

struct engine *engine_new(struct loop *loop, const struct acme_config *cfg, engine_job_done_fn done,
    void *done_arg, cf_err *err) CF_MUST;
/* Only when the engine is idle. */
void engine_free(struct engine *eng);

/* Starts the order for job (takes ownership); done is called when it ends, issued or failed. */
void engine_order_start(struct engine *eng, struct job *job);

/* Ends the order of job_id, if this engine has it, as cancelled. */
void engine_order_cancel(struct engine *eng, int64_t job_id);

/*
 * Retries up to max requests that waited on the CA gate (on the loop thread, after a wake-up);
 * true when some are left for the next round.
 */
bool engine_wake(struct engine *eng, int max);

/* Orders in flight on this engine. */
long engine_orders(const struct engine *eng);

/*
 * True when nothing of this engine is outstanding: no order, no key being made for one, no key
 * waiting for the writer's stored step (whose task lands on this loop, even for a cancelled order).
 */
bool engine_idle(const struct engine *eng);

#endif
