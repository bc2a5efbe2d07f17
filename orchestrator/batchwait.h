/*
 * batchwait.h - follows a batch of certificates (one enqueue's) until the latest job of each has
 * ended, and reports where each stands (enqueue --wait, --output json).
 */
#ifndef CF_BATCHWAIT_H
#define CF_BATCHWAIT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cf.h"
#include "queue.h"

struct batchwait_counts {
	long issued, failed, cancelled, pending; /* pending: ready or running */
};

/* Counts the states of st (n of them). */
void batchwait_count(const struct queue_job_state *st, size_t n, struct batchwait_counts *out);

/*
 * Reads the states of the certificates ids into st once a second until none is pending, or
 * timeout_s (0: none) passed; progress lines on stderr when the counts change. 0 when all ended,
 * 1 when the time ran out, -1 with err when the database failed.
 */
int batchwait_run(PGconn *c, const int64_t *ids, size_t n, long timeout_s, bool progress,
    struct queue_job_state *st, cf_err *err) CF_MUST;

/*
 * The summary as one JSON object on f: run_id, counts, and per certificate id, names (names[i]
 * holds nnames[i] of them), job_id, state, serial and not_after once issued. 0, or -1 out of memory.
 */
int batchwait_print_json(FILE *f, int64_t run_id, const struct queue_cert *certs,
    const struct queue_job_state *st, size_t n) CF_MUST;

#endif
