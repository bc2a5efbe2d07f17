/* keygen.c - the key generation threads: a locked queue in, loop_post out. */
#include "keygen.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct keygen_req {
	enum key_type type;
	struct loop *loop;
	keygen_done_fn done;
	void *arg;
	EVP_PKEY *key;            /* the result */
	char error[sizeof(((cf_err *)0)->msg)];
	struct keygen_req *next;
};

struct keygen_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct keygen_req *head;
	struct keygen_req *tail;
	bool stopping;
	int nthreads;
	pthread_t *threads;
};

bool
keygen_is_fast(enum key_type type)
{
	return type == KEY_EC_P256 || type == KEY_EC_P384;
}

/* Runs on the asking loop's thread. */
static void
deliver(void *arg)
{
	struct keygen_req *r = arg;

	r->done(r->arg, r->key, r->key ? NULL : r->error);
	free(r);
}

static void *
keygen_main(void *arg)
{
	struct keygen_pool *pool = arg;

	for (;;) {
		struct keygen_req *r;
		cf_err err;

		pthread_mutex_lock(&pool->lock);
		while (pool->head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		r = pool->head;
		if (r) {
			pool->head = r->next;
			if (pool->head == NULL)
				pool->tail = NULL;
		}
		pthread_mutex_unlock(&pool->lock);
		if (r == NULL)
			return NULL; /* stopping and nothing left */
		r->key = key_generate(r->type, &err);
		if (r->key == NULL)
			snprintf(r->error, sizeof(r->error), "%s", err.msg);
		if (loop_post(r->loop, deliver, r) != 0) {
			/* cannot hand it back: nobody can use the key, and the order must not hang */
			log_error("keygen: out of memory handing a %s key back", key_type_name(r->type));
			EVP_PKEY_free(r->key);
			free(r);
		}
	}
}

struct keygen_pool *
keygen_pool_new(int nthreads, cf_err *err)
{
	struct keygen_pool *pool = calloc(1, sizeof(*pool));

	if (pool == NULL || (pool->threads = calloc((size_t)nthreads, sizeof(pthread_t))) == NULL) {
		free(pool);
		cf_errf(err, "keygen_pool_new: out of memory");
		return NULL;
	}
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	for (int i = 0; i < nthreads; i++) {
		int rc = pthread_create(&pool->threads[i], NULL, keygen_main, pool);
		if (rc != 0) {
			cf_errf(err, "pthread_create keygen %d: %s", i, strerror(rc));
			keygen_pool_free(pool);
			return NULL;
		}
		pool->nthreads = i + 1;
	}
	return pool;
}

void
keygen_pool_free(struct keygen_pool *pool)
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
keygen_submit(struct keygen_pool *pool, enum key_type type, struct loop *loop, keygen_done_fn done,
    void *arg, cf_err *err)
{
	struct keygen_req *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		cf_errf(err, "keygen_submit: out of memory");
		return -1;
	}
	r->type = type;
	r->loop = loop;
	r->done = done;
	r->arg = arg;
	pthread_mutex_lock(&pool->lock);
	if (pool->stopping) {
		pthread_mutex_unlock(&pool->lock);
		free(r);
		cf_errf(err, "keygen_submit: the key generation threads are stopping");
		return -1;
	}
	if (pool->tail)
		pool->tail->next = r;
	else
		pool->head = r;
	pool->tail = r;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}
