/* stopper.c - the thread that takes a run's SIGINT and SIGTERM (see stopper.h). */
#include "stopper.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct stopper {
	pthread_t thread;
	sigset_t set;              /* SIGINT, SIGTERM */
	sigset_t old;              /* the caller's mask before */
	atomic_int *signals;
	int exit_code;
	pthread_mutex_t lock;      /* guards abandon and arg */
	long (*abandon)(void *arg);
	void *arg;
};

static void *
stopper_main(void *p)
{
	struct stopper *s = p;
	int sig, rc;

	/* cancelled only while it waits, never while it holds a lock (the log's, its own) */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	for (;;) {
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		rc = sigwait(&s->set, &sig);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (rc != 0)
			continue;
		if (atomic_fetch_add(s->signals, 1) == 0) {
			log_warn("run: %s: no more claims; the orders in flight finish (a second signal stops at once)",
			    strsignal(sig));
			continue;
		}
		pthread_mutex_lock(&s->lock);
		long saved = s->abandon ? s->abandon(s->arg) : 0;
		pthread_mutex_unlock(&s->lock);
		log_warn("run: %s again: stopping at once; %ld message%s the writer held went to the journal; the jobs in "
		    "flight go to the next run when this run's lease ends", strsignal(sig), saved, saved == 1 ? "" : "s");
		fflush(stdout);
		fflush(stderr);
		/*
		 * The one exit outside main: the other threads may be blocked in the CA's or PostgreSQL's
		 * sockets, and exit() would run the libraries' clean-up under their feet.
		 */
		_exit(s->exit_code);
	}
	return NULL;
}

struct stopper *
stopper_start(atomic_int *signals, int exit_code, cf_err *err)
{
	struct stopper *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		cf_errf(err, "stopper: out of memory");
		return NULL;
	}
	s->signals = signals;
	s->exit_code = exit_code;
	pthread_mutex_init(&s->lock, NULL);
	sigemptyset(&s->set);
	sigaddset(&s->set, SIGINT);
	sigaddset(&s->set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &s->set, &s->old);
	if ((rc = pthread_create(&s->thread, NULL, stopper_main, s)) != 0) {
		pthread_sigmask(SIG_SETMASK, &s->old, NULL);
		pthread_mutex_destroy(&s->lock);
		free(s);
		cf_errf(err, "stopper: pthread_create: %s", strerror(rc));
		return NULL;
	}
	return s;
}

void
stopper_set_abandon(struct stopper *s, long (*abandon)(void *arg), void *arg)
{
	pthread_mutex_lock(&s->lock);
	s->abandon = abandon;
	s->arg = arg;
	pthread_mutex_unlock(&s->lock);
}

void
stopper_free(struct stopper *s)
{
	if (s == NULL)
		return;
	pthread_cancel(s->thread); /* sigwait is a cancellation point */
	pthread_join(s->thread, NULL);
	pthread_sigmask(SIG_SETMASK, &s->old, NULL);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
