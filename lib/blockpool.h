/*
 * blockpool.h - threads for the few operations that must block (DNS queries, TSIG-signed updates,
 * an operator's program): a locked queue in, loop_post out, so that no event loop ever waits.
 */
#ifndef CF_BLOCKPOOL_H
#define CF_BLOCKPOOL_H

#include "cf.h"
#include "loop.h"

struct blockpool;

/* nthreads threads (at least 1); NULL with err set. */
struct blockpool *blockpool_new(int nthreads, cf_err *err) CF_MUST;
/* Waits for the work already queued to finish, then joins the threads. */
void blockpool_free(struct blockpool *pool);

/*
 * Runs work(arg) on a pool thread, then done(arg) on loop's thread. Returns -1 when out of memory
 * (nothing runs). work must not touch loop state; done may.
 */
int blockpool_submit(struct blockpool *pool, struct loop *loop, loop_fn work, loop_fn done, void *arg) CF_MUST;

#endif
