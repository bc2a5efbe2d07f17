/*
 * stopper.h - how `certfleet run` takes SIGINT and SIGTERM: a thread of its own waits for them.
 * The first signal stops the claims and lets the orders in flight end; the second ends the
 * process at once, within a fraction of a second even when the CA or PostgreSQL hangs, after
 * writing what the writer still holds of certificates, keys and order URLs to the journal. The
 * jobs in flight then go to the next run when this run's lease ends.
 */
#ifndef CF_STOPPER_H
#define CF_STOPPER_H

#include <stdatomic.h>

#include "cf.h"

struct stopper;

/*
 * Blocks SIGINT and SIGTERM in the calling thread, and so in every thread it starts later, and
 * starts the thread that takes them; *signals counts them. Call it before any other thread starts.
 * exit_code is the process's exit code after a second signal.
 */
struct stopper *stopper_start(atomic_int *signals, int exit_code, cf_err *err) CF_MUST;

/*
 * What the second signal does before the process ends: abandon(arg) saves what must not be lost
 * and returns how many messages it saved. NULL: nothing to save.
 */
void stopper_set_abandon(struct stopper *s, long (*abandon)(void *arg), void *arg);

/* Ends the thread and unblocks the signals again; NULL is fine. */
void stopper_free(struct stopper *s);

#endif
