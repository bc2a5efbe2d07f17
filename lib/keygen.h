/*
 * keygen.h - a small pool of threads that generate slow keys (RSA) so that no event loop waits
 * for them. The result comes back on the asking loop's thread through loop_post.
 */
#ifndef CF_KEYGEN_H
#define CF_KEYGEN_H

#include <openssl/evp.h>
#include <stdbool.h>

#include "cf.h"
#include "keys.h"
#include "loop.h"

struct keygen_pool;

/* Called on the loop thread: key (owned by the callee) or NULL with error set. */
typedef void (*keygen_done_fn)(void *arg, EVP_PKEY *key, const char *error);

struct keygen_pool *keygen_pool_new(int nthreads, cf_err *err) CF_MUST;
/* Finishes the requests still queued (their answers are posted to their loops), then stops. */
void keygen_pool_free(struct keygen_pool *pool);

/* True for key types fast enough to generate on an event loop (EC). */
bool keygen_is_fast(enum key_type type);

/* Queues a key of type for loop; done(arg, ...) runs later on loop's thread. */
int keygen_submit(struct keygen_pool *pool, enum key_type type, struct loop *loop, keygen_done_fn done,
    void *arg, cf_err *err) CF_MUST;

#endif
