/* outbox.c - the queue from worker threads to the result writer, and the step after a commit. */
#include "outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "cf.h"
#include "metrics.h"

bool
unsaved_orders_take(struct unsaved_orders *u)
{
	return cf_count_take(&u->n, u->cap);
}

void
unsaved_orders_release(struct unsaved_orders *u)
{
	if (u)
		atomic_fetch_sub(&u->n, 1);
}

struct outmsg *
outmsg_new(enum outmsg_kind kind, int64_t job_id)
{
	struct outmsg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->kind = kind;
	m->job_id = job_id;
	return m;
}

void
outmsg_free(struct outmsg *m)
{
	if (m == NULL)
		return;
	free(m->order_url);
	free(m->state);
	free(m->finalize_url);
	free(m->certificate_url);
	free(m->fqdn);
	free(m->value);
	free(m->issuer);
	free(m->provider);
	free(m->leaf_pem);
	free(m->chain_pem);
	cf_secret_free(m->key_pem);
	cf_secret_free(m->key_pem_order);
	free(m->serial);
	free(m->problem_type);
	free(m->detail);
	free(m->event_kind);
	free(m);
}

void
outmsg_stored(struct outmsg *m, bool stored)
{
	/* stored or given up on: either way its order no longer counts as unsaved */
	unsaved_orders_release(m->unsaved);
	m->unsaved = NULL;
	if (m->ack) {
		m->ack->stored = stored;
		loop_post_task(m->ack->loop, &m->ack->task);
		m->ack = NULL;
	}
}

void
outbox_stored(struct outmsg *list, bool stored)
{
	for (; list; list = list->next)
		outmsg_stored(list, stored);
}

int
outbox_init(struct outbox *ob)
{
	pthread_condattr_t ca;

	ob->head = ob->tail = NULL;
	ob->queued = 0;
	ob->peak = 0;
	ob->wake_at = 1;
	ob->closed = false;
	if (pthread_mutex_init(&ob->lock, NULL) != 0)
		return -1;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&ob->cond, &ca);
	pthread_condattr_destroy(&ca);
	return rc == 0 ? 0 : -1;
}

void
outbox_destroy(struct outbox *ob)
{
	struct outmsg *m = ob->head;

	while (m) {
		struct outmsg *n = m->next;
		outmsg_free(m);
		m = n;
	}
	pthread_mutex_destroy(&ob->lock);
	pthread_cond_destroy(&ob->cond);
}

void
outbox_post(struct outbox *ob, struct outmsg *m)
{
	m->next = NULL;
	m->posted_ms = cf_mono_ms();
	pthread_mutex_lock(&ob->lock);
	struct metrics_series *lag = metrics_series(&metrics_writer_lag, NULL, NULL);
	if (ob->head == NULL && atomic_load(&lag->stamp_ms) == 0)
		metrics_stamp(lag, m->posted_ms);
	if (ob->tail)
		ob->tail->next = m;
	else
		ob->head = m;
	ob->tail = m;
	if (++ob->queued > ob->peak)
		ob->peak = ob->queued;
	if (ob->queued >= ob->wake_at)
		pthread_cond_signal(&ob->cond);
	pthread_mutex_unlock(&ob->lock);
}

void
outbox_batch_done(struct outbox *ob)
{
	pthread_mutex_lock(&ob->lock);
	/* FIFO: the head is the oldest message not committed yet */
	metrics_stamp(metrics_series(&metrics_writer_lag, NULL, NULL), ob->head ? ob->head->posted_ms : 0);
	pthread_mutex_unlock(&ob->lock);
}

void
outbox_close(struct outbox *ob)
{
	pthread_mutex_lock(&ob->lock);
	ob->closed = true;
	ob->wake_at = 1;
	pthread_cond_broadcast(&ob->cond);
	pthread_mutex_unlock(&ob->lock);
}

long
outbox_waiting(struct outbox *ob)
{
	long n;

	pthread_mutex_lock(&ob->lock);
	n = ob->queued;
	pthread_mutex_unlock(&ob->lock);
	return n;
}

struct outmsg *
outbox_take_all(struct outbox *ob, int wait_ms, bool *closed)
{
	return outbox_take_batch(ob, wait_ms, 0, 1, closed);
}

struct outmsg *
outbox_take_batch(struct outbox *ob, int wait_ms, int linger_ms, long max, bool *closed)
{
	struct outmsg *m;
	struct timespec until;

	cf_timespec_after(&until, CLOCK_MONOTONIC, wait_ms);
	pthread_mutex_lock(&ob->lock);
	while (ob->head == NULL && !ob->closed) {
		if (pthread_cond_timedwait(&ob->cond, &ob->lock, &until) == ETIMEDOUT)
			break;
	}
	if (ob->head && linger_ms > 0 && ob->queued < max && !ob->closed) {
		/* from the oldest message's post: a writer that fell behind does not wait at all */
		int64_t left = ob->head->posted_ms + linger_ms - cf_mono_ms();
		if (left > 0) {
			cf_timespec_after(&until, CLOCK_MONOTONIC, (int)left);
			ob->wake_at = max;
			while (ob->queued < max && !ob->closed)
				if (pthread_cond_timedwait(&ob->cond, &ob->lock, &until) == ETIMEDOUT)
					break;
			ob->wake_at = 1;
		}
	}
	m = ob->head;
	ob->head = ob->tail = NULL;
	ob->queued = 0;
	*closed = ob->closed && m == NULL;
	pthread_mutex_unlock(&ob->lock);
	return m;
}
