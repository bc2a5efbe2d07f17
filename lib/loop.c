/*
 * loop.c - the worker event loop: epoll plus curl_multi_socket_action (the hiperfifo pattern),
 * a binary heap of timers, and an eventfd for wake-ups from other threads.
 */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "metrics.h"

#define LOOP_MAX_EVENTS 256
#define LOOP_DONE_PER_ROUND 64 /* answers handled between two looks at the timers */
#define LOOP_TIMERS_PER_ROUND 64 /* timers fired before I/O gets its turn again */

/* A call posted from another thread. */
struct loop {
	CURLM *multi;
	int epfd;
	int evfd;
	int64_t curl_due_ms;      /* when curl wants CURL_SOCKET_TIMEOUT, -1 = never */
	struct loop_timer **heap; /* min-heap on due_ms */
	size_t nheap;
	size_t capheap;
	long transfers;
	loop_fn wake_fn;
	void *wake_arg;
	int64_t max_lag_ms;
	struct metrics_series *lag_series; /* certfleet_event_loop_lag_seconds */
	bool more_done;           /* finished transfers wait for the next round */
	pthread_mutex_t post_lock;
	struct loop_task *posts;  /* newest first */
};

/* ---- timers ---- */

static void
heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->idx = (long)a;
	l->heap[b]->idx = (long)b;
}

static void
heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->due_ms <= l->heap[i]->due_ms)
			break;
		heap_swap(l, i, p);
		i = p;
	}
}

static void
heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;
		if (c < l->nheap && l->heap[c]->due_ms < l->heap[m]->due_ms)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->due_ms < l->heap[m]->due_ms)
			m = c + 1;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

void
loop_timer_init(struct loop_timer *t)
{
	memset(t, 0, sizeof(*t));
	t->idx = -1;
}

void
loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	size_t i;

	if (t->idx < 0)
		return;
	i = (size_t)t->idx;
	t->idx = -1;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->idx = (long)i;
	heap_down(l, i);
	heap_up(l, i);
}

int
loop_timer_arm(struct loop *l, struct loop_timer *t, int64_t delay_ms, loop_fn fn, void *arg)
{
	loop_timer_cancel(l, t);
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 256;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
		if (h == NULL)
			return -1;
		l->heap = h;
		l->capheap = cap;
	}
	t->due_ms = cf_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
	t->fn = fn;
	t->arg = arg;
	t->idx = (long)l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, (size_t)t->idx);
	return 0;
}

/* ---- curl glue ---- */

static int
on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct loop *l = userp;
	struct epoll_event ev = { 0 };

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL);
		curl_multi_assign(l->multi, s, NULL);
		return 0;
	}
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	ev.data.fd = s;
	if (socketp == NULL) {
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
			epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev);
		curl_multi_assign(l->multi, s, l); /* any non-NULL marks "registered" */
	} else if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
		epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev);
	}
	return 0;
}

static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct loop *l = userp;

	(void)multi;
	l->curl_due_ms = timeout_ms < 0 ? -1 : cf_mono_ms() + timeout_ms;
	return 0;
}

/*
 * Hands finished transfers to their callbacks, at most max of them, so that a burst of answers
 * cannot hold timers back for long; sets l->more_done when some are left for the next round.
 */
static int
check_done(struct loop *l, int max)
{
	CURLMsg *msg;
	int left = 0, n = 0;

	while (n < max && (msg = curl_multi_info_read(l->multi, &left)) != NULL) {
		struct http_req *req = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		req->result = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &req->status);
		curl_multi_remove_handle(l->multi, msg->easy_handle);
		l->transfers--;
		req->done(req, req->arg); /* may free req and start new transfers */
		n++;
	}
	l->more_done = n == max;
	return n;
}

struct loop *
loop_new(const struct loop_options *opt, cf_err *err)
{
	struct loop *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { 0 };

	if (l == NULL) {
		cf_errf(err, "loop_new: out of memory");
		return NULL;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->multi = curl_multi_init();
	l->curl_due_ms = -1;
	l->lag_series = metrics_series(&metrics_loop_lag, NULL, NULL);
	pthread_mutex_init(&l->post_lock, NULL);
	if (l->epfd < 0 || l->evfd < 0 || l->multi == NULL) {
		cf_errf(err, "loop_new: epoll/eventfd/curl_multi_init: %s", strerror(errno));
		loop_free(l);
		return NULL;
	}
	ev.events = EPOLLIN;
	ev.data.fd = l->evfd;
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	if (opt && opt->max_host_connections > 0)
		curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opt->max_host_connections);
	if (opt && opt->max_total_connections > 0)
		curl_multi_setopt(l->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, opt->max_total_connections);
	return l;
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	if (l->multi)
		curl_multi_cleanup(l->multi);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->evfd >= 0)
		close(l->evfd);
	free(l->heap);
	while (l->posts) {
		struct loop_task *n = l->posts->next;
		if (l->posts->owned)
			free(l->posts);
		l->posts = n;
	}
	pthread_mutex_destroy(&l->post_lock);
	free(l);
}

void
loop_post_task(struct loop *l, struct loop_task *t)
{
	pthread_mutex_lock(&l->post_lock);
	t->next = l->posts;
	l->posts = t;
	pthread_mutex_unlock(&l->post_lock);
	loop_wakeup(l);
}

int
loop_post(struct loop *l, loop_fn fn, void *arg)
{
	struct loop_task *t = malloc(sizeof(*t));

	if (t == NULL)
		return -1;
	t->fn = fn;
	t->arg = arg;
	t->owned = true;
	loop_post_task(l, t);
	return 0;
}

/* Runs the calls posted from other threads, oldest first. */
static int
run_posts(struct loop *l)
{
	struct loop_task *list, *rev = NULL;
	int n = 0;

	pthread_mutex_lock(&l->post_lock);
	list = l->posts;
	l->posts = NULL;
	pthread_mutex_unlock(&l->post_lock);
	while (list) {
		struct loop_task *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		/* a caller's task may be freed by its own fn: read it first */
		struct loop_task *next = rev->next, *own = rev->owned ? rev : NULL;
		rev->fn(rev->arg);
		free(own);
		rev = next;
		n++;
	}
	return n;
}

void
loop_set_wakeup(struct loop *l, loop_fn fn, void *arg)
{
	l->wake_fn = fn;
	l->wake_arg = arg;
}

void
loop_wakeup(struct loop *l)
{
	uint64_t one = 1;
	ssize_t n = write(l->evfd, &one, sizeof(one));

	(void)n; /* EAGAIN means a wake-up is already pending */
}

int
loop_add_transfer(struct loop *l, struct http_req *req, cf_err *err)
{
	CURLMcode mc;

	curl_easy_setopt(req->easy, CURLOPT_PRIVATE, req);
	mc = curl_multi_add_handle(l->multi, req->easy);
	if (mc != CURLM_OK) {
		cf_errf(err, "curl_multi_add_handle %s: %s", req->url, curl_multi_strerror(mc));
		return -1;
	}
	l->transfers++;
	return 0;
}

long
loop_transfers(const struct loop *l)
{
	return l->transfers;
}

int64_t
loop_max_lag_ms(const struct loop *l)
{
	return l->max_lag_ms;
}

static int
next_wait(struct loop *l, int max_wait_ms)
{
	int64_t now = cf_mono_ms(), due = -1;

	if (l->more_done)
		return 0;
	if (l->curl_due_ms >= 0)
		due = l->curl_due_ms;
	if (l->nheap > 0 && (due < 0 || l->heap[0]->due_ms < due))
		due = l->heap[0]->due_ms;
	if (due < 0)
		return max_wait_ms;
	if (due <= now)
		return 0;
	return due - now < max_wait_ms ? (int)(due - now) : max_wait_ms;
}

int
loop_run_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int running, n, dispatched = 0;
	int64_t now;

	n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, next_wait(l, max_wait_ms));
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_error("epoll_wait: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (evs[i].data.fd == l->evfd) {
			uint64_t v;
			while (read(l->evfd, &v, sizeof(v)) > 0)
				;
			dispatched += run_posts(l);
			if (l->wake_fn)
				l->wake_fn(l->wake_arg);
			dispatched++;
			continue;
		}
		int flags = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
		    ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
		    ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(l->multi, evs[i].data.fd, flags, &running);
	}
	now = cf_mono_ms();
	if (l->curl_due_ms >= 0 && l->curl_due_ms <= now) {
		l->curl_due_ms = -1;
		curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	dispatched += check_done(l, LOOP_DONE_PER_ROUND);
	/* Fire due timers; a callback may re-arm its own timer, which then waits for the next round. */
	now = cf_mono_ms();
	for (size_t budget = LOOP_TIMERS_PER_ROUND; budget > 0 && l->nheap > 0 && l->heap[0]->due_ms <= now;
	    budget--) {
		struct loop_timer *t = l->heap[0];
		loop_timer_cancel(l, t);
		metrics_observe(&metrics_loop_lag, l->lag_series, (now - t->due_ms) / 1000.0);
		if (now - t->due_ms > l->max_lag_ms)
			l->max_lag_ms = now - t->due_ms;
		t->fn(t->arg);
		dispatched++;
	}
	return dispatched;
}
