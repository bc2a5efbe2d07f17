/* cagate.c - two request classes that never overlap, taking turns, shared by all worker threads. */
#include "cagate.h"

#include <pthread.h>
#include <stdlib.h>

#define GATE_MAX_SUBSCRIBERS 256

struct ca_gate {
	pthread_mutex_t lock;
	long inflight[2];
	long waiting[2];
	int turn;                 /* the class whose turn it is */
	long granted;             /* grants in this turn */
	struct {
		ca_gate_wake_fn fn;
		void *arg;
	} subs[GATE_MAX_SUBSCRIBERS];
	int nsubs;
};

struct ca_gate *
ca_gate_new(cf_err *err)
{
	struct ca_gate *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		cf_errf(err, "ca_gate_new: out of memory");
		return NULL;
	}
	pthread_mutex_init(&g->lock, NULL);
	return g;
}

void
ca_gate_free(struct ca_gate *g)
{
	if (g == NULL)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g);
}

int
ca_gate_subscribe(struct ca_gate *g, ca_gate_wake_fn wake, void *arg)
{
	int rc = -1;

	pthread_mutex_lock(&g->lock);
	if (g->nsubs < GATE_MAX_SUBSCRIBERS) {
		g->subs[g->nsubs].fn = wake;
		g->subs[g->nsubs].arg = arg;
		g->nsubs++;
		rc = 0;
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

/* Under the lock: may a request of class cls go now? */
static bool
may_go(const struct ca_gate *g, int cls)
{
	int other = !cls;

	if (g->inflight[other] > 0)
		return false;
	if (g->waiting[other] == 0)
		return true;
	return g->turn == cls && g->granted < GATE_TURN_MAX;
}

bool
ca_gate_try(struct ca_gate *g, int cls, bool waiting)
{
	bool go;

	pthread_mutex_lock(&g->lock);
	go = may_go(g, cls);
	if (go) {
		if (g->turn != cls) {
			g->turn = cls;
			g->granted = 0;
		}
		g->granted++;
		g->inflight[cls]++;
		if (waiting)
			g->waiting[cls]--;
	} else if (!waiting) {
		g->waiting[cls]++;
	}
	pthread_mutex_unlock(&g->lock);
	return go;
}

void
ca_gate_done(struct ca_gate *g, int cls)
{
	struct {
		ca_gate_wake_fn fn;
		void *arg;
	} subs[GATE_MAX_SUBSCRIBERS];
	int nsubs = 0;

	pthread_mutex_lock(&g->lock);
	g->inflight[cls]--;
	if (g->inflight[cls] == 0 && g->waiting[!cls] > 0) {
		/* this class drained while the other waits: the other's turn */
		g->turn = !cls;
		g->granted = 0;
		nsubs = g->nsubs;
	}
	for (int i = 0; i < nsubs; i++) {
		subs[i].fn = g->subs[i].fn;
		subs[i].arg = g->subs[i].arg;
	}
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < nsubs; i++)
		subs[i].fn(subs[i].arg);
}

bool
ca_validations_take(struct ca_validations *v)
{
	if (v->cap > 0)
		return cf_count_take(&v->n, v->cap);
	atomic_fetch_add(&v->n, 1);
	return true;
}

void
ca_validations_release(struct ca_validations *v)
{
	atomic_fetch_sub(&v->n, 1);
}
