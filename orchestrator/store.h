/*
 * store.h - committing worker reports (outbox messages) to PostgreSQL. A batch of any size takes
 * a fixed handful of multi-row statements, so round trips do not grow with the number of orders.
 */
#ifndef CF_STORE_H
#define CF_STORE_H

#include <libpq-fe.h>

#include "cf.h"
#include "outbox.h"

/* Writes every message of list in one transaction; 0, or -1 (rolled back) with err. */
int store_batch(PGconn *c, const struct outmsg *list, cf_err *err) CF_MUST;

/* Writes one message in its own transaction (the fallback that isolates a refused message). */
int store_one(PGconn *c, const struct outmsg *m, cf_err *err) CF_MUST;

#endif
