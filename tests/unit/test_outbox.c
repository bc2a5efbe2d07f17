/*
 * test_outbox.c - the writer's side of the outbox: a batch waits for company until its oldest
 * message has lingered, or until it is full, or until the outbox closes; a writer that fell
 * behind does not wait at all.
 */
#include <pthread.h>
#include <time.h>

#include "cf.h"
#include "check.h"
#include "outbox.h"

static long
count(const struct outmsg *m)
{
	long n = 0;

	for (; m; m = m->next)
		n++;
	return n;
}

static void
free_list(struct outmsg *m)
{
	while (m) {
		struct outmsg *n = m->next;
		outmsg_free(m);
		m = n;
	}
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
test_empty_waits_then_gives_nothing(void)
{
	struct outbox ob;
	bool closed = true;

	CHECK(outbox_init(&ob) == 0);
	int64_t t0 = cf_mono_ms();
	CHECK(outbox_take_batch(&ob, 40, 1000, 100, &closed) == NULL);
	CHECK(cf_mono_ms() - t0 >= 35);           /* waited for a first message */
	CHECK(!closed);
	outbox_destroy(&ob);
}

struct poster {
	struct outbox *ob;
	long delay_ms;
	int n;
	bool close;
};

static void *
post_later(void *arg)
{
	struct poster *p = arg;

	sleep_ms(p->delay_ms);
	for (int i = 0; i < p->n; i++)
		outbox_post(p->ob, outmsg_new(OUT_EVENT, 100 + i));
	if (p->close)
		outbox_close(p->ob);
	return NULL;
}

static void
test_linger_gathers_company(void)
{
	struct outbox ob;
	struct poster p = { .ob = &ob, .delay_ms = 15, .n = 3 };
	pthread_t t;
	bool closed;

	CHECK(outbox_init(&ob) == 0);
	outbox_post(&ob, outmsg_new(OUT_EVENT, 1));
	int64_t t0 = cf_mono_ms();
	pthread_create(&t, NULL, post_later, &p);
	struct outmsg *m = outbox_take_batch(&ob, 1000, 80, 100, &closed);
	int64_t took = cf_mono_ms() - t0;
	pthread_join(t, NULL);
	CHECK(count(m) == 4);                     /* the first and the three posted meanwhile */
	CHECK(m && m->job_id == 1);               /* oldest first */
	CHECK(took >= 70);                        /* held until the oldest had lingered */
	CHECK(took < 1000);
	CHECK(!closed);
	free_list(m);
	outbox_destroy(&ob);
}

static void
test_full_batch_goes_at_once(void)
{
	struct outbox ob;
	bool closed;

	CHECK(outbox_init(&ob) == 0);
	for (int i = 0; i < 5; i++)
		outbox_post(&ob, outmsg_new(OUT_EVENT, i));
	int64_t t0 = cf_mono_ms();
	struct outmsg *m = outbox_take_batch(&ob, 1000, 10000, 5, &closed);
	CHECK(count(m) == 5);
	CHECK(cf_mono_ms() - t0 < 1000);          /* full: no lingering */
	free_list(m);

	/* the fifth arrives while the batch lingers: it goes then, not at the linger's end */
	struct poster p = { .ob = &ob, .delay_ms = 30, .n = 4 };
	pthread_t t;
	outbox_post(&ob, outmsg_new(OUT_EVENT, 9));
	t0 = cf_mono_ms();
	pthread_create(&t, NULL, post_later, &p);
	m = outbox_take_batch(&ob, 1000, 10000, 5, &closed);
	pthread_join(t, NULL);
	CHECK(count(m) == 5);
	CHECK(cf_mono_ms() - t0 < 2000);
	free_list(m);
	outbox_destroy(&ob);
}

static void
test_close_ends_the_linger(void)
{
	struct outbox ob;
	struct poster p = { .ob = &ob, .delay_ms = 20, .n = 0, .close = true };
	pthread_t t;
	bool closed;

	CHECK(outbox_init(&ob) == 0);
	outbox_post(&ob, outmsg_new(OUT_EVENT, 1));
	int64_t t0 = cf_mono_ms();
	pthread_create(&t, NULL, post_later, &p);
	struct outmsg *m = outbox_take_batch(&ob, 1000, 10000, 100, &closed);
	pthread_join(t, NULL);
	CHECK(count(m) == 1);
	CHECK(cf_mono_ms() - t0 < 2000);          /* the close, not the 10 s linger, ended it */
	CHECK(!closed);                           /* a message came with it: not done yet */
	free_list(m);
	CHECK(outbox_take_batch(&ob, 1000, 10000, 100, &closed) == NULL);
	CHECK(closed);                            /* closed and empty: the consumer is done */
	outbox_destroy(&ob);
}

static void
test_behind_does_not_wait(void)
{
	struct outbox ob;
	bool closed;

	CHECK(outbox_init(&ob) == 0);
	outbox_post(&ob, outmsg_new(OUT_EVENT, 1));
	sleep_ms(300);                            /* the writer was busy with a commit meanwhile */
	int64_t t0 = cf_mono_ms();
	struct outmsg *m = outbox_take_batch(&ob, 1000, 200, 100, &closed);
	CHECK(count(m) == 1);
	CHECK(cf_mono_ms() - t0 < 150);           /* the oldest lingered enough already */
	free_list(m);
	/* take_all never lingers */
	outbox_post(&ob, outmsg_new(OUT_EVENT, 2));
	t0 = cf_mono_ms();
	m = outbox_take_all(&ob, 1000, &closed);
	CHECK(count(m) == 1);
	CHECK(cf_mono_ms() - t0 < 150);
	free_list(m);
	outbox_destroy(&ob);
}

int
main(void)
{
	RUN(test_empty_waits_then_gives_nothing);
	RUN(test_linger_gathers_company);
	RUN(test_full_batch_goes_at_once);
	RUN(test_close_ends_the_linger);
	RUN(test_behind_does_not_wait);
	return CHECK_DONE();
}
