/* keygen.c - key generation on a blockpool, for the key types too slow for an event loop. */
#include "keygen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockpool.h"

struct keygen_req {
	enum key_type type;
	keygen_done_fn done;
	void *arg;
	EVP_PKEY *key;            /* the result */
	char error[sizeof(((cf_err *)0)->msg)];
};

/* keygen_pool is a blockpool: the type only keeps key requests apart from other work. */

bool
keygen_is_fast(enum key_type type)
{
	return type == KEY_EC_P256 || type == KEY_EC_P384;
}

/* Runs on a pool thread. */
static void
generate(void *arg)
{
	struct keygen_req *r = arg;
	cf_err err;

	r->key = key_generate(r->type, &err);
	if (r->key == NULL)
		snprintf(r->error, sizeof(r->error), "%s", err.msg);
}

/* Runs on the asking loop's thread. */
static void
deliver(void *arg)
{
	struct keygen_req *r = arg;

	r->done(r->arg, r->key, r->key ? NULL : r->error);
	free(r);
}

struct keygen_pool *
keygen_pool_new(int nthreads, cf_err *err)
{
	return (struct keygen_pool *)blockpool_new(nthreads, err);
}

void
keygen_pool_free(struct keygen_pool *pool)
{
	blockpool_free((struct blockpool *)pool);
}

int
keygen_submit(struct keygen_pool *pool, enum key_type type, struct loop *loop, keygen_done_fn done,
    void *arg, cf_err *err)
{
	struct keygen_req *r = calloc(1, sizeof(*r));

	if (r != NULL) {
		r->type = type;
		r->done = done;
		r->arg = arg;
	}
	if (r == NULL || blockpool_submit((struct blockpool *)pool, loop, generate, deliver, r) != 0) {
		free(r);
		cf_errf(err, "keygen_submit: out of memory");
		return -1;
	}
	return 0;
}
