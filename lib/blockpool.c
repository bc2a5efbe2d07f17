/* blockpool.c - threads for blocking work: a locked queue in, loop_post out. */
#include "blockpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct blockpool_item {
	struct loop *loop;
	loop_fn work;
	loop_fn done;
	void *arg;
	struct blockpool_item *next;
};

struct blockpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct blockpool_item *head;
	struct blockpool_item *tail;
	bool stopping;
	int nthreads;
	pthread_t *threads;
};

static void *
blockpool_main(void *arg)
{
	struct blockpool *pool = arg;

	for (;;) {
		struct blockpool_item *it;

		pthread_mutex_lock(&pool->lock);
		while (pool->head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		it = pool->head;
		if (it) {
			pool->head = it->next;
			if (pool->head == NULL)
				pool->tail = NULL;
		}
		pthread_mutex_unlock(&pool->lock);
		if (it == NULL)
			return NULL; /* stopping and nothing left */
		it->work(it->arg);
		while (loop_post(it->loop, it->done, it->arg) != 0) {
			/* the caller waits for done: retry rather than leave it hanging */
			log_error("blockpool: out of memory handing a result back; retrying");
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		free(it);
	}
}

struct blockpool *
blockpool_new(int nthreads, cf_err *err)
{
	struct blockpool *pool = calloc(1, sizeof(*pool));

	if (nthreads < 1)
		nthreads = 1;
	if (pool == NULL || (pool->threads = calloc((size_t)nthreads, sizeof(pthread_t))) == NULL) {
		free(pool);
		cf_errf(err, "blockpool_new: out of memory");
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	for (int i = 0; i < nthreads; i++) {
		int rc = pthread_create(&pool->threads[i], NULL, blockpool_main, pool);
		if (rc != 0) {
			cf_errf(err, "pthread_create blockpool %d: %s", i, strerror(rc));
			blockpool_free(pool);
			return NULL;
		}
		pool->nthreads = i + 1;
	}
	return pool;
}

void
blockpool_free(struct blockpool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool->threads);
	free(pool);
}

int
blockpool_submit(struct blockpool *pool, struct loop *loop, loop_fn work, loop_fn done, void *arg)
{
	struct blockpool_item *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return -1;
	it->loop = loop;
	it->work = work;
	it->done = done;
	it->arg = arg;
	pthread_mutex_lock(&pool->lock);
	if (pool->tail)
		pool->tail->next = it;
	else
		pool->head = it;
	pool->tail = it;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}
