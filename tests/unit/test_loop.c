/* test_loop.c - the worker event loop: timers, calls posted from other threads, the keygen pool. */
#include <pthread.h>

#include "check.h"
#include "keygen.h"
#include "loop.h"

static int fired[8];
static int order_seen[8];
static int nseen;

static void
on_timer(void *arg)
{
	int i = (int)(intptr_t)arg;

	fired[i]++;
	order_seen[nseen++] = i;
}

static void
run_for(struct loop *l, int ms)
{
	int64_t until = cf_mono_ms() + ms;

	while (cf_mono_ms() < until)
		(void)loop_run_once(l, 5);
}

static void
test_timers(void)
{
	struct loop *l = loop_new(NULL, NULL);
	struct loop_timer t[4];

	CHECK(l != NULL);
	memset(fired, 0, sizeof(fired));
	nseen = 0;
	for (int i = 0; i < 4; i++)
		loop_timer_init(&t[i]);
	CHECK(loop_timer_arm(l, &t[0], 30, on_timer, (void *)0) == 0);
	CHECK(loop_timer_arm(l, &t[1], 10, on_timer, (void *)1) == 0);
	CHECK(loop_timer_arm(l, &t[2], 20, on_timer, (void *)2) == 0);
	CHECK(loop_timer_arm(l, &t[3], 15, on_timer, (void *)3) == 0);
	loop_timer_cancel(l, &t[3]);            /* a cancelled timer never fires */
	CHECK(loop_timer_arm(l, &t[2], 5, on_timer, (void *)2) == 0); /* re-arming moves it */
	run_for(l, 80);
	CHECK(fired[0] == 1 && fired[1] == 1 && fired[2] == 1 && fired[3] == 0);
	CHECK(nseen == 3 && order_seen[0] == 2 && order_seen[1] == 1 && order_seen[2] == 0);
	CHECK(t[0].idx == -1 && t[1].idx == -1);
	loop_free(l);
}

struct post_ctx {
	struct loop *loop;
	pthread_t loop_thread;
	int calls;
	int on_loop_thread;
};

static void
on_post(void *arg)
{
	struct post_ctx *p = arg;

	p->calls++;
	if (pthread_equal(pthread_self(), p->loop_thread))
		p->on_loop_thread++;
}

static void *
poster(void *arg)
{
	struct post_ctx *p = arg;

	for (int i = 0; i < 1000; i++)
		if (loop_post(p->loop, on_post, p) != 0)
			break;
	return NULL;
}

static void
test_post_from_threads(void)
{
	struct post_ctx p = { 0 };
	pthread_t t[2];

	p.loop = loop_new(NULL, NULL);
	p.loop_thread = pthread_self();
	pthread_create(&t[0], NULL, poster, &p);
	pthread_create(&t[1], NULL, poster, &p);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	for (int i = 0; i < 100 && p.calls < 2000; i++)
		(void)loop_run_once(p.loop, 10);
	CHECK(p.calls == 2000);               /* every posted call ran exactly once */
	CHECK(p.on_loop_thread == 2000);      /* and on the loop's thread */
	loop_free(p.loop);
}

struct key_ctx {
	int calls;
	int keys;
	pthread_t loop_thread;
	int on_loop_thread;
};

static void
on_key(void *arg, EVP_PKEY *key, const char *error)
{
	struct key_ctx *k = arg;

	k->calls++;
	if (key != NULL && error == NULL)
		k->keys++;
	if (pthread_equal(pthread_self(), k->loop_thread))
		k->on_loop_thread++;
	EVP_PKEY_free(key);
}

static void
test_keygen_pool(void)
{
	struct loop *l = loop_new(NULL, NULL);
	struct keygen_pool *kp = keygen_pool_new(2, NULL);
	struct key_ctx k = { .loop_thread = pthread_self() };

	CHECK(kp != NULL);
	CHECK(keygen_is_fast(KEY_EC_P256));
	for (int i = 0; i < 8; i++)
		CHECK(keygen_submit(kp, KEY_EC_P256, l, on_key, &k, NULL) == 0);
	for (int i = 0; i < 500 && k.calls < 8; i++)
		(void)loop_run_once(l, 10);
	CHECK(k.calls == 8 && k.keys == 8 && k.on_loop_thread == 8);
	keygen_pool_free(kp);
	loop_free(l);
}

int
main(void)
{
	RUN(test_timers);
	RUN(test_post_from_threads);
	RUN(test_keygen_pool);
	return CHECK_DONE();
}
