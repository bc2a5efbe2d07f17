/*
 * test_cagate.c - the CA request gate: classes never overlap, take turns, and nobody starves; and
 * the validation slots: never more taken than the cap, from any number of threads.
 */
#include <pthread.h>
#include <sched.h>

#include "cagate.h"
#include "check.h"

static int wakes;

static void
count_wake(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&wakes, 1, __ATOMIC_RELAXED);
}

static void
test_exclusion(void)
{
	struct ca_gate *g = ca_gate_new(NULL);

	CHECK(g != NULL);
	CHECK(ca_gate_subscribe(g, count_wake, NULL) == 0);
	wakes = 0;
	CHECK(ca_gate_try(g, 0, false));          /* idle gate: class 0 goes */
	CHECK(ca_gate_try(g, 0, false));          /* more of the same class go too */
	CHECK(!ca_gate_try(g, 1, false));         /* class 1 waits while class 0 is in flight */
	CHECK(ca_gate_try(g, 0, false));          /* class 0's turn is not over: it still goes */
	ca_gate_done(g, 0);
	ca_gate_done(g, 0);
	CHECK(wakes == 0);                        /* one class 0 still in flight */
	ca_gate_done(g, 0);
	CHECK(wakes == 1);                        /* drained: class 1's turn, waiters woken */
	CHECK(!ca_gate_try(g, 0, false));         /* class 0 now waits for class 1's turn */
	CHECK(ca_gate_try(g, 1, true));
	ca_gate_done(g, 1);
	CHECK(wakes == 2);
	CHECK(ca_gate_try(g, 0, true));
	ca_gate_done(g, 0);
	ca_gate_free(g);
}

static void
test_turn_limit(void)
{
	struct ca_gate *g = ca_gate_new(NULL);
	int granted = 0;

	CHECK(ca_gate_try(g, 1, false));
	CHECK(!ca_gate_try(g, 0, false));         /* class 0 now waits */
	ca_gate_done(g, 1);                       /* class 0's turn */
	CHECK(ca_gate_try(g, 0, true));
	CHECK(!ca_gate_try(g, 1, false));         /* class 1 waits again */
	/* class 0 may take up to GATE_TURN_MAX in this turn, then class 1 gets in */
	while (ca_gate_try(g, 0, false))
		granted++;
	CHECK(granted == GATE_TURN_MAX - 1);
	for (int i = 0; i < GATE_TURN_MAX; i++)
		ca_gate_done(g, 0);
	CHECK(ca_gate_try(g, 1, true));
	ca_gate_done(g, 1);
	CHECK(ca_gate_try(g, 0, true));           /* the one that queued behind the limit */
	ca_gate_done(g, 0);
	ca_gate_free(g);
}

struct shared {
	struct ca_gate *g;
	int inflight[2];
	int overlaps;
	long done;
};

static void *
hammer(void *arg)
{
	struct shared *s = arg;
	static __thread unsigned seed;

	for (int i = 0; i < 20000; i++) {
		int cls = (int)(rand_r(&seed) & 1);
		bool waiting = false;
		while (!ca_gate_try(s->g, cls, waiting)) {
			waiting = true;
			sched_yield(); /* a waiter that spins on 2 cores keeps the holder off them */
		}
		__atomic_add_fetch(&s->inflight[cls], 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->inflight[!cls], __ATOMIC_SEQ_CST) > 0)
			__atomic_add_fetch(&s->overlaps, 1, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(&s->inflight[cls], 1, __ATOMIC_SEQ_CST);
		ca_gate_done(s->g, cls);
		__atomic_add_fetch(&s->done, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void
test_threads_never_overlap(void)
{
	struct shared s = { .g = ca_gate_new(NULL) };
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, &s);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK(s.overlaps == 0);
	CHECK(s.done == 80000);
	ca_gate_free(s.g);
}

static void
test_validations_cap(void)
{
	struct ca_validations v = { .cap = 2 };

	atomic_init(&v.n, 0);
	CHECK(ca_validations_take(&v));
	CHECK(ca_validations_take(&v));
	CHECK(!ca_validations_take(&v));          /* the cap */
	CHECK(atomic_load(&v.n) == 2);            /* a refusal takes nothing */
	ca_validations_release(&v);
	CHECK(ca_validations_take(&v));
	ca_validations_release(&v);
	ca_validations_release(&v);
	CHECK(atomic_load(&v.n) == 0);

	struct ca_validations open = { .cap = 0 };  /* no cap: every take succeeds, and counts */
	atomic_init(&open.n, 0);
	for (int i = 0; i < 1000; i++)
		CHECK(ca_validations_take(&open));
	CHECK(atomic_load(&open.n) == 1000);
}

struct slots_shared {
	struct ca_validations v;
	atomic_long held;
	atomic_long most;
	atomic_long taken;
};

static void *
slots_hammer(void *arg)
{
	struct slots_shared *s = arg;

	for (int i = 0; i < 20000; i++) {
		if (!ca_validations_take(&s->v))
			continue;
		long h = atomic_fetch_add(&s->held, 1) + 1;
		long m = atomic_load(&s->most);
		while (h > m && !atomic_compare_exchange_weak(&s->most, &m, h))
			;
		atomic_fetch_add(&s->taken, 1);
		atomic_fetch_sub(&s->held, 1);
		ca_validations_release(&s->v);
	}
	return NULL;
}

static void
test_validations_threads(void)
{
	struct slots_shared s = { .v = { .cap = 3 } };
	pthread_t t[6];

	atomic_init(&s.v.n, 0);
	atomic_init(&s.held, 0);
	atomic_init(&s.most, 0);
	atomic_init(&s.taken, 0);
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, slots_hammer, &s);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	CHECK(atomic_load(&s.most) <= 3);
	CHECK(atomic_load(&s.most) >= 1);
	CHECK(atomic_load(&s.taken) > 0);
	CHECK(atomic_load(&s.v.n) == 0);          /* every slot came back */
}

int
main(void)
{
	RUN(test_validations_cap);
	RUN(test_validations_threads);
	RUN(test_exclusion);
	RUN(test_turn_limit);
	RUN(test_threads_never_overlap);
	return CHECK_DONE();
}
