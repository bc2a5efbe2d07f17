/*
 * acme.c - a worker's ACME transport: directory loading, a pool of nonces fed by every
 * Replay-Nonce header, and signed requests retried on badNonce, 429/503 (Retry-After) and
 * transport errors. The order state machine that uses it lives in order.c.
 */
#include "acme_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jws.h"
#include "keys.h"
#include "log.h"

#define NONCE_POOL_MAX 4096       /* nonces kept; older ones are dropped (they may expire anyway) */
#define NONCE_FETCH_MAX 16        /* newNonce requests in flight at once */
#define BADNONCE_RETRIES 10
#define CALL_RETRIES 5            /* transport errors, 429, 5xx */
#define RETRY_AFTER_MAX_S 600

static const char *const badnonce_type = "urn:ietf:params:acme:error:badNonce";

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
nonce_put(struct acme_engine *eng, const char *nonce)
{
	if (nonce == NULL || nonce[0] == '\0')
		return;
	if (eng->nnonces == NONCE_POOL_MAX) {
		free(eng->nonces[0]);
		memmove(eng->nonces, eng->nonces + 1, (eng->nnonces - 1) * sizeof(char *));
		eng->nnonces--;
	}
	if (eng->nnonces == eng->capnonces) {
		size_t cap = eng->capnonces ? eng->capnonces * 2 : 64;
		char **n = realloc(eng->nonces, cap * sizeof(*n));
		if (n == NULL)
			return;
		eng->nonces = n;
		eng->capnonces = cap;
	}
	char *copy = strdup(nonce);
	if (copy)
		eng->nonces[eng->nnonces++] = copy;
}

static char *
nonce_take(struct acme_engine *eng)
{
	return eng->nnonces > 0 ? eng->nonces[--eng->nnonces] : NULL;
}

static void call_send(struct acme_call *call, char *nonce);
static void nonce_pump(struct acme_engine *eng);

static void
on_new_nonce(struct http_req *req, void *arg)
{
	struct acme_engine *eng = arg;

	eng->nonce_fetching--;
	if (req->nonce) {
		nonce_put(eng, req->nonce);
	} else {
		char why[CURL_ERROR_SIZE + 32];
		log_warn("newNonce %s gave no nonce: %s", req->url, http_req_error(req, why, sizeof(why)));
	}
	http_req_free(req);
	nonce_pump(eng);
}

struct nonce_turn {
	struct acme_engine *eng;
	struct limiter_wait wait;
};

static void
nonce_fetch(struct acme_engine *eng)
{
	cf_err err;
	struct http_req *req = http_req_new(&eng->cfg.http, eng->new_nonce_url, NULL, NULL, true, &err);

	if (req == NULL) {
		log_error("%s", err.msg);
		eng->nonce_fetching--;
		return;
	}
	req->done = on_new_nonce;
	req->arg = eng;
	if (loop_add_transfer(eng->loop, req, &err) != 0) {
		log_error("%s", err.msg);
		http_req_free(req);
		eng->nonce_fetching--;
	}
}

static void
nonce_turn(void *arg)
{
	struct nonce_turn *t = arg;

	nonce_fetch(t->eng);
	free(t);
}

/* Hands pooled nonces to waiting calls, and fetches more while calls still wait. */
static void
nonce_pump(struct acme_engine *eng)
{
	while (eng->nonce_wait_head && eng->nnonces > 0) {
		struct acme_call *call = eng->nonce_wait_head;
		eng->nonce_wait_head = call->next;
		if (eng->nonce_wait_head == NULL)
			eng->nonce_wait_tail = NULL;
		eng->nonce_waiting--;
		call->next = NULL;
		call_send(call, nonce_take(eng));
	}
	while (eng->nonce_waiting > eng->nonce_fetching && eng->nonce_fetching < NONCE_FETCH_MAX) {
		struct limiter *lim = eng->cfg.limits ? eng->cfg.limits->new_nonce : NULL;
		struct nonce_turn *t;
		eng->nonce_fetching++;
		if (lim == NULL) {
			nonce_fetch(eng);
		} else if ((t = calloc(1, sizeof(*t))) == NULL) {
			log_error("newNonce: out of memory");
			eng->nonce_fetching--;
			return;
		} else {
			t->eng = eng;
			limiter_acquire(lim, &t->wait, eng->loop, nonce_turn, t);
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
	struct acme_engine *eng = call->eng;
	char *nonce = nonce_take(eng);

	if (nonce) {
		call_send(call, nonce);
		return;
	}
	call->next = NULL;
	if (eng->nonce_wait_tail)
		eng->nonce_wait_tail->next = call;
	else
		eng->nonce_wait_head = call;
	eng->nonce_wait_tail = call;
	eng->nonce_waiting++;
	nonce_pump(eng);
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
	const struct acme_limits *l = call->eng->cfg.limits;
	struct limiter *lim = NULL;
	bool new_order = call->gate_class == GATE_NEW_ORDER;

	if (l == NULL)
		return false;
	while (lim == NULL && call->limit_stage < 2) {
		if (call->limit_stage == 0)
			lim = new_order ? l->new_order : l->other;
		else if (new_order && !order_is_renewal(call->order))
			lim = l->account_orders;
		call->limit_stage++;
	}
	if (lim == NULL)
		return false;
	limiter_acquire(lim, &call->wait, call->eng->loop, call_turn, call);
	return true;
}

void
unsaved_orders_release(struct unsaved_orders *u)
{
	if (u)
		atomic_fetch_sub(&u->n, 1);
}

static bool
unsaved_take(struct unsaved_orders *u)
{
	long n = atomic_load(&u->n);

	while (n < u->cap)
		if (atomic_compare_exchange_weak(&u->n, &n, n + 1))
			return true;
	return false;
}

#define UNSAVED_RETRY_MS 2 /* how soon a waiting newOrder looks for a free slot again */

static void
unsaved_fire(void *arg)
{
	struct acme_engine *eng = arg;

	while (eng->unsaved_head && unsaved_take(eng->cfg.unsaved)) {
		struct acme_call *call = eng->unsaved_head;
		eng->unsaved_head = call->next;
		if (eng->unsaved_head == NULL)
			eng->unsaved_tail = NULL;
		call->next = NULL;
		call->unsaved_slot = true;
		call_enter(call);
	}
	if (eng->unsaved_head && loop_timer_arm(eng->loop, &eng->unsaved_timer, UNSAVED_RETRY_MS, unsaved_fire, eng) != 0)
		log_error("newOrder: cannot arm a timer; waiting orders stay until the next one");
}

/*
 * A newOrder takes a slot of the unsaved orders first: true when it must wait for one (it is
 * queued, and call_enter runs again when it has one).
 */
static bool
call_wait_unsaved(struct acme_call *call)
{
	struct acme_engine *eng = call->eng;

	if (eng->cfg.unsaved == NULL || call->gate_class != GATE_NEW_ORDER || call->unsaved_slot)
		return false;
	if (eng->unsaved_head == NULL && unsaved_take(eng->cfg.unsaved)) {
		call->unsaved_slot = true;
		return false;
	}
	call->next = NULL;
	if (eng->unsaved_tail)
		eng->unsaved_tail->next = call;
	else
		eng->unsaved_head = call;
	eng->unsaved_tail = call;
	if (eng->unsaved_timer.idx < 0 &&
	    loop_timer_arm(eng->loop, &eng->unsaved_timer, UNSAVED_RETRY_MS, unsaved_fire, eng) != 0)
		log_error("newOrder: cannot arm a timer; waiting orders stay until the next one");
	return true;
}

void
acme_call_hand_slot(struct acme_call *call, struct outmsg *m)
{
	if (call->unsaved_slot && m) {
		m->unsaved = call->eng->cfg.unsaved;
		call->unsaved_slot = false;
	}
}

/* Waits for a slot of the unsaved orders and the CA rate limits, passes the CA gate (or queues
 * at it), then takes a nonce. */
static void
call_enter(struct acme_call *call)
{
	struct acme_engine *eng = call->eng;

	if (call_wait_unsaved(call) || call_wait_turn(call))
		return;
	if (eng->cfg.gate == NULL || call->gate_class == GATE_NONE) {
		call_wait_nonce(call);
		return;
	}
	if (ca_gate_try(eng->cfg.gate, call->gate_class, call->gate_waiting)) {
		call->gate_waiting = false;
		call->gate_held = true;
		call_wait_nonce(call);
		return;
	}
	call->gate_waiting = true;
	call->next = NULL;
	if (eng->gate_wait_tail)
		eng->gate_wait_tail->next = call;
	else
		eng->gate_wait_head = call;
	eng->gate_wait_tail = call;
}

static void
call_leave_gate(struct acme_call *call)
{
	if (call->gate_held) {
		call->gate_held = false;
		ca_gate_done(call->eng->cfg.gate, call->gate_class);
	}
}

bool
acme_engine_wake(struct acme_engine *eng, int max)
{
	int n = 0;

	/* a round retries the calls that were waiting when it began; the rest wait for the next */
	if (eng->gate_retry == NULL) {
		eng->gate_retry = eng->gate_wait_head;
		eng->gate_wait_head = eng->gate_wait_tail = NULL;
	}
	while (eng->gate_retry && n++ < max) {
		struct acme_call *call = eng->gate_retry;
		eng->gate_retry = call->next;
		call_enter(call);
	}
	return eng->gate_retry != NULL;
}

static void
call_retry_timer(void *arg)
{
	struct acme_call *call = arg;

	call_enter(call);
}

/* Ends a call: its handler runs unless the order already ended. */
static void
call_finish(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->order;

	if (req != NULL && !order_ended(o))
		call->handler(call, req);
	if (call->unsaved_slot) /* no order was created, or its message did not take the slot */
		unsaved_orders_release(call->eng->cfg.unsaved);
	call_free(call);
	order_unref(o);
}

static void
call_retry_later(struct acme_call *call, long delay_ms)
{
	call->limit_stage = 0; /* a new send: it takes new turns */
	if (loop_timer_arm(call->eng->loop, &call->timer, delay_ms, call_retry_timer, call) != 0) {
		order_fail(call->order, "certfleet:internal", "out of memory arming a retry timer");
		call_finish(call, NULL);
	}
}

static void
on_call_done(struct http_req *req, void *arg)
{
	struct acme_call *call = arg;
	struct acme_engine *eng = call->eng;
	char *type = NULL, *detail = NULL;

	nonce_put(eng, req->nonce);
	call_leave_gate(call);
	nonce_pump(eng);

	if (req->status == 429 && eng->cfg.limits) {
		/* the CA says we went too fast: every request of this kind slows down, not just this one */
		const struct acme_limits *l = eng->cfg.limits;
		limiter_penalize(call->gate_class == GATE_NEW_ORDER ? l->new_order : l->other,
		    req->retry_after_s >= 0 ? req->retry_after_s * 1000L : 1000L);
	}
	if (req->result != CURLE_OK || req->status >= 500 || req->status == 429) {
		if (call->retries++ < CALL_RETRIES) {
			long delay = req->retry_after_s >= 0 ? req->retry_after_s * 1000L
			    : 250L << (call->retries < 6 ? call->retries : 6);
			if (delay > RETRY_AFTER_MAX_S * 1000L)
				delay = RETRY_AFTER_MAX_S * 1000L;
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
	struct acme_engine *eng = call->eng;
	struct http_req *req = NULL;
	char *jws = NULL;
	cf_err err;

	jws = jws_signer_sign(eng->signer, eng->cfg.account_url, nonce, call->url, call->payload, &err);
	free(nonce);
	if (jws == NULL)
		goto fail;
	req = http_req_new(&eng->cfg.http, call->url, jws, "application/jose+json", false, &err);
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
	if (loop_add_transfer(eng->loop, req, &err) != 0)
		goto fail;
	return;
fail:
	http_req_free(req);
	call_leave_gate(call);
	order_fail(call->order, "certfleet:internal", err.msg);
	call_finish(call, NULL);
}

void
acme_call_start(struct acme_engine *eng, struct order *order, struct authz *authz,
    const char *url, const char *payload, const char *accept, int gate_class, acme_handler handler)
{
	struct acme_call *call = calloc(1, sizeof(*call));

	if (call == NULL || (call->url = strdup(url)) == NULL ||
	    (payload && (call->payload = strdup(payload)) == NULL)) {
		call_free(call);
		order_fail(order, "certfleet:internal", "out of memory starting a request");
		return;
	}
	call->eng = eng;
	call->order = order;
	call->authz = authz;
	call->accept = accept;
	call->handler = handler;
	call->gate_class = gate_class;
	loop_timer_init(&call->timer);
	order_ref(order);
	call_enter(call);
}

/* ---- directory ---- */

static char *
dup_json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? strdup(s) : NULL;
}

static void
on_directory(struct http_req *req, void *arg)
{
	struct acme_engine *eng = arg;
	json_t *dir = NULL;
	char why[CURL_ERROR_SIZE + 32];

	if (req->result != CURLE_OK || req->status != 200 || (dir = acme_json(req)) == NULL ||
	    !json_is_object(dir)) {
		if (asprintf(&eng->dir_error, "ACME directory %s: %s", req->url,
		    req->result != CURLE_OK || req->status != 200 ? http_req_error(req, why, sizeof(why))
		    : "response is not a JSON object") < 0)
			eng->dir_error = NULL;
		eng->dir_state = DIR_FAILED;
		goto out;
	}
	eng->new_nonce_url = dup_json_str(dir, "newNonce");
	eng->new_order_url = dup_json_str(dir, "newOrder");
	eng->hash_prefix = dup_json_str(json_object_get(dir, "meta"), "accountHashPrefix");
	if (eng->new_nonce_url == NULL || eng->new_order_url == NULL) {
		if (asprintf(&eng->dir_error, "ACME directory %s: newNonce or newOrder missing", req->url) < 0)
			eng->dir_error = NULL;
		eng->dir_state = DIR_FAILED;
		goto out;
	}
	eng->dir_state = DIR_READY;
out:
	if (eng->dir_state == DIR_FAILED)
		log_error("%s", eng->dir_error ? eng->dir_error : "ACME directory failed");
	json_decref(dir);
	http_req_free(req);
	order_directory_ready(eng);
}

void
acme_directory_load(struct acme_engine *eng)
{
	struct http_req *req;
	cf_err err;

	if (eng->dir_state != DIR_NONE)
		return;
	eng->dir_state = DIR_LOADING;
	req = http_req_new(&eng->cfg.http, eng->cfg.directory_url, NULL, NULL, false, &err);
	if (req != NULL) {
		req->done = on_directory;
		req->arg = eng;
		if (loop_add_transfer(eng->loop, req, &err) == 0)
			return;
		http_req_free(req);
	}
	eng->dir_state = DIR_FAILED;
	eng->dir_error = strdup(err.msg);
	order_directory_ready(eng);
}

/* ---- engine ---- */

struct acme_engine *
acme_engine_new(struct loop *loop, const struct acme_config *cfg, acme_job_done_fn done,
    void *done_arg, cf_err *err)
{
	struct acme_engine *eng = calloc(1, sizeof(*eng));

	if (eng == NULL) {
		cf_errf(err, "acme_engine_new: out of memory");
		return NULL;
	}
	eng->loop = loop;
	eng->cfg = *cfg;
	eng->done = done;
	eng->done_arg = done_arg;
	eng->seed = (unsigned)cf_mono_ms() ^ (unsigned)(uintptr_t)eng;
	eng->cfg.directory_url = cf_strdup(cfg->directory_url);
	eng->cfg.account_url = cf_strdup(cfg->account_url);
	eng->cfg.issuer = cf_strdup(cfg->issuer);
	eng->cfg.key_pem = NULL; /* the key is parsed here and the PEM not kept */
	if (eng->cfg.order_timeout_ms <= 0)
		eng->cfg.order_timeout_ms = 10 * 60 * 1000;
	if (eng->cfg.directory_url == NULL || eng->cfg.account_url == NULL) {
		cf_errf(err, "acme_engine_new: directory URL and account URL are required");
		goto fail;
	}
	eng->key = key_from_pem(cfg->key_pem, err);
	if (eng->key == NULL || jwk_thumbprint(eng->key, eng->thumbprint, err) != 0 ||
	    (eng->signer = jws_signer_new(eng->key, err)) == NULL || (eng->keys = key_generator_new(err)) == NULL)
		goto fail;
	loop_timer_init(&eng->unsaved_timer);
	if ((eng->publisher = publisher_new(loop, cfg->pool)) == NULL) {
		cf_errf(err, "acme_engine_new: out of memory");
		goto fail;
	}
	return eng;
fail:
	acme_engine_free(eng);
	return NULL;
}

void
acme_engine_free(struct acme_engine *eng)
{
	if (eng == NULL)
		return;
	for (size_t i = 0; i < eng->nnonces; i++)
		free(eng->nonces[i]);
	free(eng->nonces);
	acme_records_free(eng);
	if (eng->loop)
		loop_timer_cancel(eng->loop, &eng->unsaved_timer);
	publisher_free(eng->publisher);
	free(eng->known_chain);
	jws_signer_free(eng->signer);
	key_generator_free(eng->keys);
	EVP_PKEY_free(eng->key);
	free((char *)eng->cfg.directory_url);
	free((char *)eng->cfg.account_url);
	free((char *)eng->cfg.issuer);
	free(eng->dir_error);
	free(eng->new_nonce_url);
	free(eng->new_order_url);
	free(eng->hash_prefix);
	free(eng);
}

long
acme_engine_orders(const struct acme_engine *eng)
{
	return eng->orders;
}

bool
acme_engine_idle(const struct acme_engine *eng)
{
	return eng->orders == 0 && eng->keygen_pending == 0 && (eng->publisher == NULL || publisher_pending(eng->publisher) == 0);
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
