/*
 * cagate.h - keeps two classes of requests to one CA from being in flight at the same time, across
 * all worker threads of a process.
 *
 * Pebble 2.10 (the test CA) takes its store lock and then an authorization's lock while creating an
 * order, but an authorization's lock and then the store lock while answering an authorization
 * fetch; a newOrder and an authorization fetch that overlap with a third writer can deadlock it for
 * good. Keeping newOrder (class 0) and authorization fetches (class 1) apart makes that cycle
 * impossible. The classes take turns; a turn ends after GATE_TURN_MAX grants when the other class
 * waits, so neither starves.
 */
#ifndef CF_CAGATE_H
#define CF_CAGATE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "cf.h"

#define GATE_TURN_MAX 256

struct ca_gate;

typedef void (*ca_gate_wake_fn)(void *arg);

struct ca_gate *ca_gate_new(cf_err *err) CF_MUST;
void ca_gate_free(struct ca_gate *g);

/* wake(arg) is called, from any thread, when requests that had to wait may try again. */
int ca_gate_subscribe(struct ca_gate *g, ca_gate_wake_fn wake, void *arg) CF_MUST;

/*
 * Asks to send a request of class cls (0 or 1). true: it is counted in flight, send it and call
 * ca_gate_done when its answer is in. false: it is counted as waiting; try again after a wake-up,
 * passing waiting = true.
 */
bool ca_gate_try(struct ca_gate *g, int cls, bool waiting);

void ca_gate_done(struct ca_gate *g, int cls);

/*
 * Challenges answered at one CA whose verdict is not in yet, counted across all worker threads
 * and capped. A CA starts validating each challenge as it is answered: thousands answered within
 * a second are thousands of DNS lookups at once on the CA's side, a burst Pebble's validation
 * fails now and then (it reports the lookup's error as unauthorized, and the order then waits for
 * a retry). With the cap, an answer waits for a verdict instead.
 */
struct ca_validations {
	atomic_long n;
	long cap;                      /* 0 = no cap */
};

/* Takes a slot: true, or false when all cap are taken. Thread-safe. */
bool ca_validations_take(struct ca_validations *v);
/* Gives one back. Thread-safe. */
void ca_validations_release(struct ca_validations *v);

#endif
