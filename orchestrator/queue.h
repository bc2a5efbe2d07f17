/* queue.h - the PostgreSQL job queue: enqueueing certificates and claiming ready jobs in batches. */
#ifndef CF_QUEUE_H
#define CF_QUEUE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"
#include "job.h"

struct queue_cert {
	char **names;            /* normalized */
	size_t nnames;
	int line;                /* input line, for messages */
};

struct queue_enqueue_result {
	long certificates_new;   /* certificates added to the inventory */
	long jobs_added;
	long jobs_already_queued; /* a ready or running job existed: nothing added */
};

/* Enqueues every certificate in one transaction: all or nothing. */
int queue_enqueue(PGconn *c, int64_t account_id, const char *provider, const char *key_type,
    const struct queue_cert *certs, size_t ncerts, struct queue_enqueue_result *out, cf_err *err) CF_MUST;

/*
 * Claims up to limit ready jobs of account_id (priority, then due time) with FOR UPDATE SKIP
 * LOCKED and returns them as a list, each with the records already known to be in place.
 */
int queue_claim(PGconn *c, int64_t account_id, int limit, const char *owner, struct job **out,
    int *nclaimed, cf_err *err) CF_MUST;

#endif
