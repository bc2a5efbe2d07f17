/*
 * acme.c - a worker's ACME transport: directory loading, a pool of nonces fed by every
 * Replay-Nonce header, and signed requests retried on badNonce, 429/503 (Retry-After) and
 * transport errors. The order engine that uses it lives in engine.c.
 */
#include "acme.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jws.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"

#define NONCE_POOL_MAX 4096       /* nonces kept; older ones are dropped (they may expire anyway) */
#define NONCE_FETCH_MAX 16        /* newNonce requests in flight at once */
#define BADNONCE_RETRIES 10
#define CALL_RETRIES 5            /* transport errors, 429, 5xx */
/*
 * The longest Retry-After a request waits for in place. A 429 asking for longer ends the request,
 * so that its order fails with that Retry-After and its job returns to the queue for later,
 * holding nothing meanwhile; a 5xx asking for longer is tried again after this (the server's
 * trouble may be over sooner, and the order has its own deadline).
 */
#define RETRY_AFTER_INLINE_MAX_S 60

static const char *const badnonce_type = "urn:ietf:params:acme:error:badNonce";

struct acme_client {
	struct loop *loop;
	struct acme_client_config cfg; /* strings are owned copies; key_pem is not kept */
	EVP_PKEY *key;
	struct jws_signer *signer;   /* the account key, prepared for many signatures */
	char thumbprint[44];
	struct acme_directory dir;
	char **nonces;               /* unused Replay-Nonce values, newest last */
	size_t nnonces;
	size_t capnonces;
	struct acme_call *nonce_wait_head;
	struct acme_call *nonce_wait_tail;
	long nonce_waiting;
	int nonce_fetching;          /* newNonce requests in flight */
	struct acme_call *gate_wait_head; /* calls the CA gate holds back */
	struct acme_call *gate_wait_tail;
	struct acme_call *gate_retry;    /* calls taken off the wait list, to retry this round */
	struct acme_call *unsaved_head;  /* newOrders waiting for a slot of cfg.unsaved */
	struct acme_call *unsaved_tail;
	struct loop_timer unsaved_timer; /* looks for free slots again */
	struct loop_timer dir_timer;     /* the next try of a directory load that failed */
	int dir_tries;                   /* tries of the load under way */
};

/* Hands req to the loop's multi handle, or to the configured stand-in. */
static int
client_transfer(struct acme_client *c, struct http_req *req, cf_err *err)
{
	if (c->cfg.transport)
		return c->cfg.transport->send(c->cfg.transport->arg, req, err);
	return loop_add_transfer(c->loop, req, err);
}

json_t *
acme_json(const struct http_req *req)
{
	if (req->body.data == NULL)
		return NULL;
	return json_loadb(req->body.data, req->body.len, 0, NULL);
}

void
acme_problem(const struct http_req *req, char **type, char **detail)
{
	json_t *doc = acme_json(req);
	const char *t = doc ? json_string_value(json_object_get(doc, "type")) : NULL;
	const char *d = doc ? json_string_value(json_object_get(doc, "detail")) : NULL;
	char buf[CURL_ERROR_SIZE + 64];

	*type = strdup(t ? t : (req->result != CURLE_OK ? "certfleet:transport" : "certfleet:http"));
	if (d)
		*detail = strdup(d);
	else if (asprintf(detail, "%s from %s", http_req_error(req, buf, sizeof(buf)), req->url) < 0)
		*detail = NULL;
	if (*detail == NULL)
		*detail = strdup("");
	json_decref(doc);
}

/* ---- nonces ---- */

static void
nonce_put(struct acme_client *cl, const char *nonce)
{
	if (nonce == NULL || nonce[0] == '\0')
		return;
	if (cl->nnonces == NONCE_POOL_MAX) {
		free(cl->nonces[0]);
		memmove(cl->nonces, cl->nonces + 1, (cl->nnonces - 1) * sizeof(char *));
		cl->nnonces--;
	}
	if (cl->nnonces == cl->capnonces) {
		size_t cap = cl->capnonces ? cl->capnonces * 2 : 64;
		char **n = realloc(cl->nonces, cap * sizeof(*n));
		if (n == NULL)
			return;
		cl->nonces = n;
		cl->capnonces = cap;
	}
	char *copy = strdup(nonce);
	if (copy)
		cl->nonces[cl->nnonces++] = copy;
}

static char *
nonce_take(struct acme_client *cl)
{
	return cl->nnonces > 0 ? cl->nonces[--cl->nnonces] : NULL;
}

static void call_send(struct acme_call *call, char *nonce);
static void nonce_pump(struct acme_client *cl);

static void
on_new_nonce(struct http_req *req, void *arg)
{
	struct acme_client *cl = arg;

	cl->nonce_fetching--;
	if (req->nonce) {
		nonce_put(cl, req->nonce);
	} else {
		char why[CURL_ERROR_SIZE + 32];
		log_warn("newNonce %s gave no nonce: %s", req->url, http_req_error(req, why, sizeof(why)));
	}
	http_req_free(req);
	nonce_pump(cl);
}

struct nonce_turn {
	struct acme_client *cl;
	struct limiter_wait wait;
};

static void
nonce_fetch(struct acme_client *cl)
{
	cf_err err;
	struct http_req *req = http_req_new(&cl->cfg.http, cl->dir.new_nonce_url, NULL, NULL, true, &err);

	if (req == NULL) {
		log_error("%s", err.msg);
		cl->nonce_fetching--;
		return;
	}
	req->done = on_new_nonce;
	req->arg = cl;
	if (client_transfer(cl, req, &err) != 0) {
		log_error("%s", err.msg);
		http_req_free(req);
		cl->nonce_fetching--;
	}
}

static void
nonce_turn(void *arg)
{
	struct nonce_turn *t = arg;

	nonce_fetch(t->cl);
	free(t);
}

/* Hands pooled nonces to waiting calls, and fetches more while calls still wait. */
static void
nonce_pump(struct acme_client *cl)
{
	while (cl->nonce_wait_head && cl->nnonces > 0) {
		struct acme_call *call = cl->nonce_wait_head;
		cl->nonce_wait_head = call->next;
		if (cl->nonce_wait_head == NULL)
			cl->nonce_wait_tail = NULL;
		cl->nonce_waiting--;
		call->next = NULL;
		call_send(call, nonce_take(cl));
	}
	while (cl->nonce_waiting > cl->nonce_fetching && cl->nonce_fetching < NONCE_FETCH_MAX) {
		struct limiter *lim = cl->cfg.limits ? cl->cfg.limits->new_nonce : NULL;
		struct nonce_turn *t;
		cl->nonce_fetching++;
		if (lim == NULL) {
			nonce_fetch(cl);
		} else if ((t = calloc(1, sizeof(*t))) == NULL) {
			log_error("newNonce: out of memory");
			cl->nonce_fetching--;
			return;
		} else {
			t->cl = cl;
			limiter_acquire(lim, &t->wait, cl->loop, nonce_turn, t);
		}
	}
}

/* ---- signed calls ---- */

static void
call_free(struct acme_call *call)
{
	if (call == NULL)
		return;
	free(call->url);
	free(call->payload);
	free(call);
}

static void
call_wait_nonce(struct acme_call *call)
{
	struct acme_client *cl = call->client;
	char *nonce = nonce_take(cl);

	if (nonce) {
		call_send(call, nonce);
		return;
	}
	call->next = NULL;
	if (cl->nonce_wait_tail)
		cl->nonce_wait_tail->next = call;
	else
		cl->nonce_wait_head = call;
	cl->nonce_wait_tail = call;
	cl->nonce_waiting++;
	nonce_pump(cl);
}

static void call_enter(struct acme_call *call);

static void
call_turn(void *arg)
{
	call_enter(arg);
}

/*
 * Asks the CA rate limits that apply for a turn: the endpoint's (newOrder or the others), then,
 * for the newOrder of a certificate not issued before, the account's. True when the call now
 * waits for a turn (call_enter runs again when it comes).
 */
static bool
call_wait_turn(struct acme_call *call)
{
	const struct acme_limits *l = call->client->cfg.limits;
	struct limiter *lim = NULL;
	bool new_order = call->gate_class == GATE_NEW_ORDER;

	if (l == NULL)
		return false;
	while (lim == NULL && call->limit_stage < 2) {
		if (call->limit_stage == 0)
			lim = new_order ? l->new_order : l->other;
		else if (new_order && !call->renewal)
			lim = l->account_orders;
		call->limit_stage++;
	}
	if (lim == NULL)
		return false;
	limiter_acquire(lim, &call->wait, call->client->loop, call_turn, call);
	return true;
}

#define UNSAVED_RETRY_MS 2 /* how soon a waiting newOrder looks for a free slot again */

static void
unsaved_fire(void *arg)
{
	struct acme_client *cl = arg;

	while (cl->unsaved_head && unsaved_orders_take(cl->cfg.unsaved)) {
		struct acme_call *call = cl->unsaved_head;
		cl->unsaved_head = call->next;
		if (cl->unsaved_head == NULL)
			cl->unsaved_tail = NULL;
		call->next = NULL;
		call->unsaved_slot = true;
		call_enter(call);
	}
	if (cl->unsaved_head && loop_timer_arm(cl->loop, &cl->unsaved_timer, UNSAVED_RETRY_MS, unsaved_fire, cl) != 0)
		log_error("newOrder: cannot arm a timer; waiting orders stay until the next one");
}

/*
 * A newOrder takes a slot of the unsaved orders first: true when it must wait for one (it is
 * queued, and call_enter runs again when it has one).
 */
static bool
call_wait_unsaved(struct acme_call *call)
{
	struct acme_client *cl = call->client;

	if (cl->cfg.unsaved == NULL || call->gate_class != GATE_NEW_ORDER || call->unsaved_slot)
		return false;
	if (cl->unsaved_head == NULL && unsaved_orders_take(cl->cfg.unsaved)) {
		call->unsaved_slot = true;
		return false;
	}
	call->next = NULL;
	if (cl->unsaved_tail)
		cl->unsaved_tail->next = call;
	else
		cl->unsaved_head = call;
	cl->unsaved_tail = call;
	if (cl->unsaved_timer.idx < 0 &&
	    loop_timer_arm(cl->loop, &cl->unsaved_timer, UNSAVED_RETRY_MS, unsaved_fire, cl) != 0)
		log_error("newOrder: cannot arm a timer; waiting orders stay until the next one");
	return true;
}

struct unsaved_orders *
acme_call_take_slot(struct acme_call *call)
{
	if (!call->unsaved_slot)
		return NULL;
	call->unsaved_slot = false;
	return call->client->cfg.unsaved;
}

/* Waits for a slot of the unsaved orders and the CA rate limits, passes the CA gate (or queues
 * at it), then takes a nonce. */
static void
call_enter(struct acme_call *call)
{
	struct acme_client *cl = call->client;

	if (call_wait_unsaved(call) || call_wait_turn(call))
		return;
	if (cl->cfg.gate == NULL || call->gate_class == GATE_NONE) {
		call_wait_nonce(call);
		return;
	}
	if (ca_gate_try(cl->cfg.gate, call->gate_class, call->gate_waiting)) {
		call->gate_waiting = false;
		call->gate_held = true;
		call_wait_nonce(call);
		return;
	}
	call->gate_waiting = true;
	call->next = NULL;
	if (cl->gate_wait_tail)
		cl->gate_wait_tail->next = call;
	else
		cl->gate_wait_head = call;
	cl->gate_wait_tail = call;
}

static void
call_leave_gate(struct acme_call *call)
{
	if (call->gate_held) {
		call->gate_held = false;
		ca_gate_done(call->client->cfg.gate, call->gate_class);
	}
}

bool
acme_client_wake(struct acme_client *cl, int max)
{
	int n = 0;

	/* a round retries the calls that were waiting when it began; the rest wait for the next */
	if (cl->gate_retry == NULL) {
		cl->gate_retry = cl->gate_wait_head;
		cl->gate_wait_head = cl->gate_wait_tail = NULL;
	}
	while (cl->gate_retry && n++ < max) {
		struct acme_call *call = cl->gate_retry;
		cl->gate_retry = call->next;
		call_enter(call);
	}
	return cl->gate_retry != NULL;
}

static void
call_retry_timer(void *arg)
{
	struct acme_call *call = arg;

	call_enter(call);
}

/* Ends a call: the owner gets the answer (req NULL: call->error says why there is none). */
static void
call_finish(struct acme_call *call, struct http_req *req)
{
	call->reply(call, req);
	if (call->unsaved_slot) /* no order was created, or its message did not take the slot */
		unsaved_orders_release(call->client->cfg.unsaved);
	call_free(call);
}

/* Ends a call that could not be made. */
static void
call_fail(struct acme_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
call_fail(struct acme_call *call, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(call->error, sizeof(call->error), fmt, ap);
	va_end(ap);
	call_finish(call, NULL);
}

static void
call_retry_later(struct acme_call *call, long delay_ms)
{
	call->limit_stage = 0; /* a new send: it takes new turns */
	if (call->unsaved_slot) {
		/* no order was made: a newOrder waiting to try again holds no slot others could use */
		unsaved_orders_release(call->client->cfg.unsaved);
		call->unsaved_slot = false;
	}
	if (loop_timer_arm(call->client->loop, &call->timer, delay_ms, call_retry_timer, call) != 0)
		call_fail(call, "out of memory arming a retry timer");
}

static void
on_call_done(struct http_req *req, void *arg)
{
	struct acme_call *call = arg;
	struct acme_client *cl = call->client;
	char *type = NULL, *detail = NULL;

	metrics_add(metrics_series(&metrics_ca_requests, call->endpoint, metrics_status_class(req->status)), 1);
	nonce_put(cl, req->nonce);
	call_leave_gate(call);
	nonce_pump(cl);

	if (req->status == 429 && cl->cfg.limits) {
		/* the CA says we went too fast: every request of this kind slows down, not just this one */
		const struct acme_limits *l = cl->cfg.limits;
		limiter_penalize(call->gate_class == GATE_NEW_ORDER ? l->new_order : l->other,
		    req->retry_after_s >= 0 ? req->retry_after_s * 1000L : 1000L);
	}
	if (req->result != CURLE_OK || req->status >= 500 || req->status == 429) {
		bool wait_long = req->status == 429 && req->retry_after_s > RETRY_AFTER_INLINE_MAX_S;
		if (!wait_long && call->retries++ < CALL_RETRIES) {
			/* retry_after_s is at most a day (http.h): the product fits */
			long delay = req->retry_after_s >= 0 ? req->retry_after_s * 1000L
			    : 250L << (call->retries < 6 ? call->retries : 6);
			if (delay > RETRY_AFTER_INLINE_MAX_S * 1000L)
				delay = RETRY_AFTER_INLINE_MAX_S * 1000L;
			char why[CURL_ERROR_SIZE + 32];
			log_debug("%s: %s, retry %d in %ld ms", call->url,
			    http_req_error(req, why, sizeof(why)), call->retries, delay);
			http_req_free(req);
			call_retry_later(call, delay);
			return;
		}
	} else if (req->status == 400) {
		acme_problem(req, &type, &detail);
		if (strcmp(type, badnonce_type) == 0 && call->nonce_retries++ < BADNONCE_RETRIES) {
			log_debug("%s: badNonce, retry %d", call->url, call->nonce_retries);
			free(type);
			free(detail);
			http_req_free(req);
			call->limit_stage = 0;
			call_enter(call);
			return;
		}
		free(type);
		free(detail);
	}
	call_finish(call, req);
	http_req_free(req);
}

static void
call_send(struct acme_call *call, char *nonce)
{
	struct acme_client *cl = call->client;
	struct http_req *req = NULL;
	char *jws = NULL;
	cf_err err;

	jws = jws_signer_sign(cl->signer, cl->cfg.account_url, nonce, call->url, call->payload, &err);
	free(nonce);
	if (jws == NULL)
		goto fail;
	req = http_req_new(&cl->cfg.http, call->url, jws, "application/jose+json", false, &err);
	free(jws);
	if (req == NULL)
		goto fail;
	if (call->accept) {
		char h[128];
		snprintf(h, sizeof(h), "Accept: %s", call->accept);
		req->headers = curl_slist_append(req->headers, h);
		curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
	}
	req->done = on_call_done;
	req->arg = call;
	if (client_transfer(cl, req, &err) != 0)
		goto fail;
	return;
fail:
	http_req_free(req);
	call_leave_gate(call);
	call_fail(call, "%s", err.msg);
}

void
acme_send(struct acme_client *c, const struct acme_request *r, acme_reply_fn reply, void *owner, void *sub,
    int tag)
{
	struct acme_call *call = calloc(1, sizeof(*call));

	if (call == NULL) {
		struct acme_call stack = { .owner = owner, .sub = sub, .tag = tag, .client = c };
		snprintf(stack.error, sizeof(stack.error), "out of memory starting a request");
		reply(&stack, NULL);
		return;
	}
	call->client = c;
	call->owner = owner;
	call->sub = sub;
	call->tag = tag;
	call->reply = reply;
	call->accept = r->accept;
	call->renewal = r->renewal;
	call->gate_class = r->gate_class;
	call->endpoint = r->endpoint ? r->endpoint : "other";
	loop_timer_init(&call->timer);
	if ((call->url = strdup(r->url)) == NULL || (r->payload && (call->payload = strdup(r->payload)) == NULL)) {
		call_fail(call, "out of memory starting a request");
		return;
	}
	call_enter(call);
}

/* ---- directory ---- */

static char *
dup_json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? strdup(s) : NULL;
}

/* The names of meta.profiles, an object of name: description; -1 when out of memory. */
static int
dir_set_profiles(struct acme_directory *d, json_t *profiles)
{
	const char *name;
	json_t *v;

	if (!json_is_object(profiles) || json_object_size(profiles) == 0)
		return 0;
	if ((d->profiles = calloc(json_object_size(profiles), sizeof(*d->profiles))) == NULL)
		return -1;
	json_object_foreach(profiles, name, v) {
		(void)v;
		if ((d->profiles[d->nprofiles] = strdup(name)) == NULL)
			return -1;
		d->nprofiles++;
	}
	return 0;
}

bool
acme_directory_has_profile(const struct acme_directory *d, const char *name)
{
	for (size_t i = 0; i < d->nprofiles; i++)
		if (strcmp(d->profiles[i], name) == 0)
			return true;
	return false;
}

static void
dir_clear(struct acme_directory *d)
{
	free(d->error);
	free(d->new_nonce_url);
	free(d->new_order_url);
	free(d->hash_prefix);
	for (size_t i = 0; i < d->nprofiles; i++)
		free(d->profiles[i]);
	free(d->profiles);
	memset(d, 0, sizeof(*d));
}

/* Tells the owner the load ended; a failed load is forgotten after that, so that a later one may try again. */
static void
dir_done(struct acme_client *cl)
{
	if (cl->dir.state == ACME_DIR_FAILED)
		log_error("%s", cl->dir.error ? cl->dir.error : "ACME directory failed");
	if (cl->cfg.directory_done)
		cl->cfg.directory_done(cl->cfg.directory_arg);
	if (cl->dir.state == ACME_DIR_FAILED)
		dir_clear(&cl->dir);
}

#define DIR_TRIES 4 /* a directory load is tried this often (0.5 s, 1 s, 2 s apart) before it fails */

static void dir_send(struct acme_client *cl);

static void
dir_retry(void *arg)
{
	dir_send(arg);
}

static void
on_directory(struct http_req *req, void *arg)
{
	struct acme_client *cl = arg;
	json_t *dir = NULL;
	char why[CURL_ERROR_SIZE + 32];

	if (req->result != CURLE_OK || req->status != 200 || (dir = acme_json(req)) == NULL ||
	    !json_is_object(dir)) {
		if (asprintf(&cl->dir.error, "ACME directory %s: %s", req->url,
		    req->result != CURLE_OK || req->status != 200 ? http_req_error(req, why, sizeof(why))
		    : "response is not a JSON object") < 0)
			cl->dir.error = NULL;
		cl->dir.state = ACME_DIR_FAILED;
		goto out;
	}
	cl->dir.new_nonce_url = dup_json_str(dir, "newNonce");
	cl->dir.new_order_url = dup_json_str(dir, "newOrder");
	cl->dir.hash_prefix = dup_json_str(json_object_get(dir, "meta"), "accountHashPrefix");
	if (dir_set_profiles(&cl->dir, json_object_get(json_object_get(dir, "meta"), "profiles")) != 0) {
		if (asprintf(&cl->dir.error, "ACME directory %s: out of memory", req->url) < 0)
			cl->dir.error = NULL;
		cl->dir.state = ACME_DIR_FAILED;
		goto out;
	}
	if (cl->dir.new_nonce_url == NULL || cl->dir.new_order_url == NULL) {
		if (asprintf(&cl->dir.error, "ACME directory %s: newNonce or newOrder missing", req->url) < 0)
			cl->dir.error = NULL;
		cl->dir.state = ACME_DIR_FAILED;
		goto out;
	}
	cl->dir.state = ACME_DIR_READY;
out:
	json_decref(dir);
	http_req_free(req);
	if (cl->dir.state == ACME_DIR_FAILED && cl->dir_tries < DIR_TRIES &&
	    loop_timer_arm(cl->loop, &cl->dir_timer, 250L << cl->dir_tries, dir_retry, cl) == 0) {
		/* every order waits for the directory: one bad answer must not fail them all */
		log_warn("%s; trying again", cl->dir.error ? cl->dir.error : "ACME directory failed");
		dir_clear(&cl->dir);
		cl->dir.state = ACME_DIR_LOADING;
		return;
	}
	dir_done(cl);
}

void
acme_directory_load(struct acme_client *cl)
{
	if (cl->dir.state != ACME_DIR_NONE)
		return;
	cl->dir.state = ACME_DIR_LOADING;
	cl->dir_tries = 0;
	dir_send(cl);
}

/* One try of the directory load under way. */
static void
dir_send(struct acme_client *cl)
{
	struct http_req *req;
	cf_err err;

	cl->dir_tries++;
	req = http_req_new(&cl->cfg.http, cl->cfg.directory_url, NULL, NULL, false, &err);
	if (req != NULL) {
		req->done = on_directory;
		req->arg = cl;
		if (client_transfer(cl, req, &err) == 0)
			return;
		http_req_free(req);
	}
	cl->dir.state = ACME_DIR_FAILED;
	cl->dir.error = strdup(err.msg);
	dir_done(cl);
}

const struct acme_directory *
acme_client_directory(const struct acme_client *cl)
{
	return &cl->dir;
}

/* ---- client ---- */

struct acme_client *
acme_client_new(struct loop *loop, const struct acme_client_config *cfg, cf_err *err)
{
	struct acme_client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		cf_errf(err, "acme_client_new: out of memory");
		return NULL;
	}
	cl->loop = loop;
	cl->cfg = *cfg;
	cl->cfg.directory_url = cf_strdup(cfg->directory_url);
	cl->cfg.account_url = cf_strdup(cfg->account_url);
	cl->cfg.key_pem = NULL; /* the key is parsed here and the PEM not kept */
	loop_timer_init(&cl->unsaved_timer);
	loop_timer_init(&cl->dir_timer);
	if (cl->cfg.directory_url == NULL || cl->cfg.account_url == NULL) {
		cf_errf(err, "acme_client_new: directory URL and account URL are required");
		goto fail;
	}
	cl->key = key_from_pem(cfg->key_pem, err);
	if (cl->key == NULL || jwk_thumbprint(cl->key, cl->thumbprint, err) != 0 ||
	    (cl->signer = jws_signer_new(cl->key, err)) == NULL)
		goto fail;
	return cl;
fail:
	acme_client_free(cl);
	return NULL;
}

void
acme_client_free(struct acme_client *cl)
{
	if (cl == NULL)
		return;
	for (size_t i = 0; i < cl->nnonces; i++)
		free(cl->nonces[i]);
	free(cl->nonces);
	if (cl->loop) {
		loop_timer_cancel(cl->loop, &cl->unsaved_timer);
		loop_timer_cancel(cl->loop, &cl->dir_timer);
	}
	jws_signer_free(cl->signer);
	EVP_PKEY_free(cl->key);
	dir_clear(&cl->dir);
	free((char *)cl->cfg.directory_url);
	free((char *)cl->cfg.account_url);
	free(cl);
}

const char *
acme_client_thumbprint(const struct acme_client *cl)
{
	return cl->thumbprint;
}

int64_t
acme_time_to_mono(const char *rfc3339)
{
	struct tm tm = { 0 };
	const char *end;

	/* "2026-11-28T06:00:00Z", perhaps with fractional seconds; ACME servers send UTC */
	if (rfc3339 == NULL || (end = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return 0;
	return cf_mono_ms() + ((int64_t)timegm(&tm) * 1000 - cf_wall_ms());
}
