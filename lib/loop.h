/*
 * loop.h - one worker thread's event loop: an epoll set driving a libcurl multi handle through
 * curl_multi_socket_action, a timer heap for polls and backoff, and an eventfd to be woken from
 * other threads. Nothing registered here may block.
 */
#ifndef CF_LOOP_H
#define CF_LOOP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

struct loop;
struct http_req;

typedef void (*loop_fn)(void *arg);

/* A timer owned by its user (embedded in an order); idx is the heap slot or -1. */
struct loop_timer {
	int64_t due_ms;
	long idx;
	loop_fn fn;
	void *arg;
};

struct loop_options {
	long max_host_connections; /* CURLMOPT_MAX_HOST_CONNECTIONS, 0 = unlimited */
	long max_total_connections;
};

struct loop *loop_new(const struct loop_options *opt, cf_err *err) CF_MUST;
void loop_free(struct loop *loop);

/*
 * Runs fn(arg) on the loop thread soon; callable from any thread (a helper thread hands a result
 * back this way). Returns -1 when out of memory.
 */
int loop_post(struct loop *loop, loop_fn fn, void *arg) CF_MUST;

/* A call to run on a loop, in memory its poster owns: posting it cannot fail. */
struct loop_task {
	loop_fn fn;
	void *arg;
	bool owned;               /* made by loop_post, freed by the loop after fn */
	struct loop_task *next;
};

/*
 * Runs t->fn(t->arg) on the loop thread soon; callable from any thread. t (with owned false)
 * must stay alive until fn runs, and may be freed by fn. Posting it twice before it ran is an error.
 */
void loop_post_task(struct loop *loop, struct loop_task *t);

/* Called on the loop thread after loop_wakeup() from any thread. */
void loop_set_wakeup(struct loop *loop, loop_fn fn, void *arg);
/* Thread-safe. */
void loop_wakeup(struct loop *loop);

void loop_timer_init(struct loop_timer *t);
/* (Re)arms t to call fn(arg) after delay_ms. */
int loop_timer_arm(struct loop *loop, struct loop_timer *t, int64_t delay_ms, loop_fn fn, void *arg) CF_MUST;
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);

/* Starts a transfer; its completion callback runs on the loop thread. */
int loop_add_transfer(struct loop *loop, struct http_req *req, cf_err *err) CF_MUST;
/* Transfers running now. */
long loop_transfers(const struct loop *loop);

/* Waits at most max_wait_ms for events and dispatches them. Returns the number dispatched, -1 on error. */
int loop_run_once(struct loop *loop, int max_wait_ms);

/* Largest delay (ms) seen between a timer's due time and its callback: the loop's lag. */
int64_t loop_max_lag_ms(const struct loop *loop);

#endif
