/*
 * order.c - the dns-persist-01 order state machine. Each job becomes one order that walks:
 *
 *   WAIT_DIRECTORY -> NEW -> AUTHORIZE -> FINALIZE -> WAIT_VALID -> DOWNLOAD -> ISSUED
 *                          (any step)  -> FAILED
 *
 * and, inside AUTHORIZE, each authorization walks:
 *
 *   FETCH -> (valid) VALID
 *         -> (pending) RECORD (only when the record is not known to be in place) -> RESPOND
 *            -> POLL -> FETCH ... -> VALID | INVALID
 *
 * The persistent record is written once per (name, account, issuer) and then reused: a record
 * the database or this engine knows to be in place goes straight to RESPOND.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_int.h"
#include "dnsauth.h"
#include "dnsname.h"
#include "keys.h"
#include "log.h"
#include "persist.h"

#define POLL_FIRST_MS 50
#define POLL_MAX_MS 2000
#define RETRY_AFTER_CAP_MS 60000
#define RECORD_BUCKETS 4096

enum order_state {
	ORDER_WAIT_DIRECTORY,
	ORDER_NEW,
	ORDER_AUTHORIZE,
	ORDER_FINALIZE,
	ORDER_WAIT_VALID,
	ORDER_DOWNLOAD,
	ORDER_ISSUED,
	ORDER_FAILED,
};

enum authz_state {
	AUTHZ_FETCH,
	AUTHZ_RECORD,
	AUTHZ_RESPOND,
	AUTHZ_POLL,
	AUTHZ_VALID,
	AUTHZ_INVALID,
};

struct authz {
	struct order *order;
	enum authz_state state;
	char *url;
	char *identifier;         /* as the CA names it (a wildcard's base name) */
	bool wildcard;
	char *chal_url;
	char *issuer;             /* issuer domain name used in the record */
	int variant;
	char *fqdn;               /* the record this authorization relies on */
	char *value;
	bool record_wildcard;
	int polls;
	int64_t expires_ms;       /* the authorization's "expires" as cf_mono_ms time, 0 = unknown */
	struct loop_timer timer;
	struct authz *next_waiter; /* waiting on a record write */
};

struct order {
	struct acme_engine *eng;
	struct job *job;
	enum order_state state;
	int refs;                 /* 1 while alive, +1 per call, armed timer or record wait */
	char *url;
	char *finalize_url;
	char *cert_url;
	struct authz *authzs;
	size_t nauthz;
	size_t nvalid;
	EVP_PKEY *cert_key;
	char *cert_key_pem;       /* its PKCS#8 PEM, made once (secret) */
	char *finalize_payload;   /* finalize's body, waiting for the key to be stored */
	int polls;
	int64_t started_ms;
	int64_t deadline_ms;
	struct loop_timer timer;
	struct order *next_waiter; /* waiting for the directory */
	struct order *prev;       /* the engine's list of orders in flight */
	struct order *next;
	int64_t retry_after_ms;   /* Retry-After of the answer that failed the order, -1 when none */
};

/* A record write this engine started: later orders for the same record wait for it or skip it. */
enum record_op_state {
	REC_WRITING,
	REC_DONE,
	REC_FAILED,
};

struct record_op {
	char *key;                /* "fqdn value" */
	enum record_op_state state;
	struct authz *waiters;
	struct record_op *next;   /* hash chain */
};

static void order_new(struct order *o);
static void order_begin(struct order *o);
static void authz_fetch(struct authz *az);
static void authz_respond(struct authz *az);
static void order_finalize(struct order *o);
static void order_download(struct order *o);

/* ---- life cycle ---- */

static const char *
order_state_name(enum order_state s)
{
	static const char *const names[] = { "wait-directory", "new", "authorize", "finalize",
		"wait-valid", "download", "issued", "failed" };
	return names[s];
}

bool
order_ended(const struct order *o)
{
	return o->state == ORDER_ISSUED || o->state == ORDER_FAILED;
}

bool
order_is_renewal(const struct order *o)
{
	return o->job && o->job->renewal;
}

void
order_ref(struct order *o)
{
	o->refs++;
}

static void
order_free(struct order *o)
{
	for (size_t i = 0; i < o->nauthz; i++) {
		struct authz *az = &o->authzs[i];
		free(az->url);
		free(az->identifier);
		free(az->chal_url);
		free(az->issuer);
		free(az->fqdn);
		free(az->value);
	}
	free(o->authzs);
	free(o->url);
	free(o->finalize_url);
	free(o->cert_url);
	free(o->finalize_payload);
	EVP_PKEY_free(o->cert_key);
	cf_secret_free(o->cert_key_pem);
	job_free(o->job);
	free(o);
}

void
order_unref(struct order *o)
{
	if (--o->refs == 0)
		order_free(o);
}

static void
timer_arm(struct order *o, struct loop_timer *t, int64_t delay_ms, loop_fn fn, void *arg)
{
	bool armed = t->idx >= 0;

	if (loop_timer_arm(o->eng->loop, t, delay_ms, fn, arg) != 0) {
		order_fail(o, "certfleet:internal", "out of memory arming a timer");
		return;
	}
	if (!armed)
		order_ref(o);
}

static void
timer_cancel(struct order *o, struct loop_timer *t)
{
	if (t->idx >= 0) {
		loop_timer_cancel(o->eng->loop, t);
		order_unref(o);
	}
}

static void
post(struct order *o, struct outmsg *m)
{
	if (m == NULL) {
		log_error("job %lld: out of memory reporting progress", (long long)o->job->id);
		return;
	}
	m->certificate_id = o->job->certificate_id;
	m->account_id = o->job->account_id;
	outbox_post(o->eng->cfg.outbox, m);
}

static void
post_event(struct order *o, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
post_event(struct order *o, const char *kind, const char *fmt, ...)
{
	struct outmsg *m = outmsg_new(OUT_EVENT, o->job->id);
	va_list ap;

	if (m == NULL)
		return;
	m->event_kind = strdup(kind);
	va_start(ap, fmt);
	if (vasprintf(&m->detail, fmt, ap) < 0)
		m->detail = NULL;
	va_end(ap);
	post(o, m);
}

/* Posts the order's step; the "created" message of a newOrder call takes the call's slot. */
static void
post_order_step(struct order *o, const char *state, struct acme_call *call)
{
	struct outmsg *m;

	if (o->url == NULL)
		return;
	m = outmsg_new(OUT_ORDER, o->job->id);
	if (m) {
		m->order_url = strdup(o->url);
		m->state = strdup(state);
		m->finalize_url = cf_strdup(o->finalize_url);
		m->certificate_url = cf_strdup(o->cert_url);
		if (call)
			acme_call_hand_slot(call, m);
	}
	post(o, m);
}

static void
post_order_state(struct order *o, const char *state)
{
	post_order_step(o, state, NULL);
}

/* Ends the order: reports the job to the worker and drops the order's own reference. */
static void
order_end(struct order *o, enum order_state final, enum job_outcome outcome)
{
	struct job *job = o->job;

	o->state = final;
	o->eng->orders--;
	if (o->prev)
		o->prev->next = o->next;
	else
		o->eng->order_list = o->next;
	if (o->next)
		o->next->prev = o->prev;
	o->prev = o->next = NULL;
	timer_cancel(o, &o->timer);
	for (size_t i = 0; i < o->nauthz; i++)
		timer_cancel(o, &o->authzs[i].timer);
	o->job = NULL;
	/* the worker takes the job; the order keeps a copy of nothing it needs after this */
	o->eng->done(o->eng->done_arg, job, outcome, cf_mono_ms() - o->started_ms);
	o->job = NULL;
	order_unref(o);
}

/*
 * Failures a later attempt may mend: the CA, the provider or the network had a bad moment. The
 * CA refusing what was asked (unauthorized, malformed, rejectedIdentifier, caa, badCSR, ...) is
 * final: retrying it only burns the CA's failed-validation limits.
 */
static bool
problem_retryable(const char *type)
{
	static const char *const retry[] = {
		"certfleet:transport", "certfleet:http", "certfleet:timeout", "certfleet:directory",
		"certfleet:provider", "certfleet:internal", "certfleet:record-not-visible",
		"urn:ietf:params:acme:error:rateLimited", "urn:ietf:params:acme:error:serverInternal",
		"urn:ietf:params:acme:error:badNonce", "urn:ietf:params:acme:error:connection",
		"urn:ietf:params:acme:error:dns",
	};

	for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		if (strcmp(type, retry[i]) == 0)
			return true;
	return false;
}

/*
 * When to try again: Retry-After when the CA or provider said, else the base delay times ten per
 * earlier attempt (1 min, 10 min, 100 min with the default base), at most a day, plus up to a
 * fifth more at random so that jobs failed together do not return together.
 */
static int64_t
retry_delay(struct order *o)
{
	int64_t d = o->eng->cfg.retry_base_ms > 0 ? o->eng->cfg.retry_base_ms : 60000;

	if (o->retry_after_ms >= 0)
		return o->retry_after_ms;
	for (int i = 1; i < o->job->attempt && d < 86400000; i++)
		d *= 10;
	if (d > 86400000)
		d = 86400000;
	return d + (int64_t)(rand_r(&o->eng->seed) % (unsigned)(d / 5 + 1));
}

void
order_fail(struct order *o, const char *type, const char *detail)
{
	struct outmsg *m;
	bool cancelled = strcmp(type, "certfleet:cancelled") == 0;
	/*
	 * A refusal of a record believed in place gets one more attempt: the CA's lookup may have
	 * failed (Pebble reports a DNS read error as unauthorized), and one retry stays well inside
	 * the CA's failed-validation limits. A second refusal is final.
	 */
	bool second_look = strcmp(type, "urn:ietf:params:acme:error:unauthorized") == 0 && o->job->attempt == 1;
	bool retry = !cancelled && (problem_retryable(type) || second_look) &&
	    o->job->attempt < o->job->max_attempts;

	if (order_ended(o))
		return;
	log_info("job %lld (%s): attempt %d %s in %s: %s: %s", (long long)o->job->id, o->job->names[0],
	    o->job->attempt, retry ? "failed, will retry" : "failed", order_state_name(o->state), type, detail);
	post_order_state(o, "failed");
	m = outmsg_new(OUT_FAILED, o->job->id);
	if (m) {
		m->problem_type = strdup(type);
		m->detail = strdup(detail);
		m->retry = retry;
		m->retry_in_ms = retry ? retry_delay(o) : 0;
	}
	post(o, m);
	order_end(o, ORDER_FAILED, cancelled ? JOB_CANCELLED : retry ? JOB_RETRY : JOB_FAILED);
}

void
acme_order_cancel(struct acme_engine *eng, int64_t job_id)
{
	for (struct order *o = eng->order_list; o; o = o->next) {
		if (o->job && o->job->id == job_id) {
			order_fail(o, "certfleet:cancelled", "cancelled by the operator");
			return;
		}
	}
}

static void
order_fail_response(struct order *o, const char *what, const struct http_req *req)
{
	char *type = NULL, *detail = NULL, *msg = NULL;

	acme_problem(req, &type, &detail);
	if (req->retry_after_s >= 0)
		o->retry_after_ms = req->retry_after_s * 1000;
	if (asprintf(&msg, "%s: %s", what, detail) < 0)
		msg = NULL;
	order_fail(o, type, msg ? msg : detail);
	free(type);
	free(detail);
	free(msg);
}

/* True (and the order failed) when the order ran past its deadline. */
static bool
order_expired(struct order *o)
{
	if (cf_mono_ms() <= o->deadline_ms)
		return false;
	order_fail(o, "certfleet:timeout", "order did not complete before the order timeout");
	return true;
}

static int64_t
poll_delay(struct order *o, const struct http_req *req, int polls)
{
	int64_t d;

	if (req && req->retry_after_s >= 0) {
		d = req->retry_after_s * 1000;
		d = d > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : d;
	} else {
		d = (int64_t)POLL_FIRST_MS << (polls < 8 ? polls : 8);
		d = d > POLL_MAX_MS ? POLL_MAX_MS : d;
	}
	/*
	 * Up to 10% later, at random: orders started together would otherwise poll together for
	 * ever, in bursts that hold the loop and hit the CA at once. Never earlier than asked.
	 */
	return d + (int64_t)(rand_r(&o->eng->seed) % (unsigned)(d / 10 + 1));
}

/* ---- start and directory ---- */

void
acme_order_start(struct acme_engine *eng, struct job *job)
{
	struct order *o = calloc(1, sizeof(*o));

	if (o == NULL) {
		log_error("job %lld: out of memory starting its order", (long long)job->id);
		eng->done(eng->done_arg, job, JOB_RETRY, 0);
		return;
	}
	o->eng = eng;
	o->job = job;
	o->refs = 1;
	o->started_ms = cf_mono_ms();
	o->deadline_ms = o->started_ms + eng->cfg.order_timeout_ms;
	o->retry_after_ms = -1;
	loop_timer_init(&o->timer);
	eng->orders++;
	o->next = eng->order_list;
	if (o->next)
		o->next->prev = o;
	eng->order_list = o;
	if (eng->dir_state == DIR_READY) {
		order_begin(o);
		return;
	}
	o->state = ORDER_WAIT_DIRECTORY;
	o->next_waiter = eng->dir_waiters;
	eng->dir_waiters = o;
	acme_directory_load(eng);
}

void
order_directory_ready(struct acme_engine *eng)
{
	struct order *o = eng->dir_waiters;

	eng->dir_waiters = NULL;
	while (o) {
		struct order *next = o->next_waiter;
		if (eng->dir_state == DIR_READY)
			order_begin(o);
		else
			order_fail(o, "certfleet:directory", eng->dir_error ? eng->dir_error : "ACME directory unavailable");
		o = next;
	}
	if (eng->dir_state == DIR_FAILED) {
		/* let a later order try again */
		eng->dir_state = DIR_NONE;
		free(eng->dir_error);
		eng->dir_error = NULL;
	}
}

/* ---- resuming an earlier attempt's order ---- */

static void order_advance(struct order *o, const struct http_req *req);
static int order_set_authzs(struct order *o, json_t *list);
static void set_str(char **dst, json_t *obj, const char *key);

/* Gives up on the stored order and creates a new one. */
static void
order_abandon(struct order *o, const char *why)
{
	post_event(o, "resume", "not continuing order %s (%s): creating a new order", o->url, why);
	free(o->url);
	free(o->finalize_url);
	free(o->cert_url);
	o->url = o->finalize_url = o->cert_url = NULL;
	order_new(o);
}

/*
 * The stored order's state decides: pending goes on with its authorizations, ready is finalized
 * with a new key, processing and valid go on only with the key the finalize was sent with
 * (else the certificate would be unusable); anything else starts over with a new order.
 */
static void
on_resume(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->order;
	json_t *doc = NULL;
	const char *status;
	cf_err err;

	if (order_expired(o))
		return;
	doc = req->status == 200 ? acme_json(req) : NULL;
	status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;
	if (status == NULL) {
		char why[64];
		snprintf(why, sizeof(why), "HTTP %ld", req->status);
		order_abandon(o, why);
		goto out;
	}
	set_str(&o->finalize_url, doc, "finalize");
	set_str(&o->cert_url, doc, "certificate");
	if (o->finalize_url == NULL) {
		order_abandon(o, "no finalize URL");
	} else if (strcmp(status, "pending") == 0) {
		if (order_set_authzs(o, json_object_get(doc, "authorizations")) != 0) {
			order_abandon(o, "no usable authorizations");
			goto out;
		}
		post_event(o, "resume", "continuing order %s (pending)", o->url);
		o->state = ORDER_AUTHORIZE;
		for (size_t i = 0; i < o->nauthz && !order_ended(o); i++)
			authz_fetch(&o->authzs[i]);
	} else if (strcmp(status, "ready") == 0) {
		post_event(o, "resume", "continuing order %s (ready)", o->url);
		order_finalize(o);
	} else if ((strcmp(status, "processing") == 0 || strcmp(status, "valid") == 0) &&
	    o->job->resume_key_pem != NULL) {
		if ((o->cert_key = key_from_pem(o->job->resume_key_pem, &err)) == NULL) {
			order_abandon(o, "stored key unreadable");
			goto out;
		}
		post_event(o, "resume", "continuing order %s (%s)", o->url, status);
		o->state = ORDER_WAIT_VALID;
		order_advance(o, req);
	} else {
		order_abandon(o, status);
	}
out:
	json_decref(doc);
}

static void
order_begin(struct order *o)
{
	if (o->job->resume_url == NULL) {
		order_new(o);
		return;
	}
	o->url = strdup(o->job->resume_url);
	o->state = ORDER_NEW;
	if (o->url == NULL)
		order_fail(o, "certfleet:internal", "out of memory resuming an order");
	else
		acme_call_start(o->eng, o, NULL, o->url, NULL, NULL, GATE_NONE, on_resume);
}

/* ---- newOrder ---- */

static int
order_set_authzs(struct order *o, json_t *list)
{
	size_t n = json_array_size(list);

	if (n == 0 || n > 100)
		return -1;
	o->authzs = calloc(n, sizeof(*o->authzs));
	if (o->authzs == NULL)
		return -1;
	o->nauthz = n;
	for (size_t i = 0; i < n; i++) {
		const char *u = json_string_value(json_array_get(list, i));
		o->authzs[i].order = o;
		loop_timer_init(&o->authzs[i].timer);
		if (u == NULL || (o->authzs[i].url = strdup(u)) == NULL)
			return -1;
	}
	return 0;
}

static void
set_str(char **dst, json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s) {
		free(*dst);
		*dst = strdup(s);
	}
}

static void
on_new_order(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->order;
	json_t *doc = NULL;
	const char *status;

	if (order_expired(o))
		return;
	if (req->status != 201 && req->status != 200) {
		order_fail_response(o, "newOrder", req);
		return;
	}
	doc = acme_json(req);
	status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;
	if (req->location == NULL || status == NULL) {
		order_fail(o, "certfleet:protocol", "newOrder answer lacks Location or status");
		goto out;
	}
	o->url = strdup(req->location);
	set_str(&o->finalize_url, doc, "finalize");
	set_str(&o->cert_url, doc, "certificate");
	/* the orders row is the record of its creation: no separate event */
	post_order_step(o, "created", call);
	if (o->finalize_url == NULL) {
		order_fail(o, "certfleet:protocol", "newOrder answer lacks the finalize URL");
	} else if (strcmp(status, "valid") == 0 && o->cert_url) {
		order_download(o);
	} else if (strcmp(status, "ready") == 0) {
		order_finalize(o);
	} else if (strcmp(status, "pending") == 0) {
		if (order_set_authzs(o, json_object_get(doc, "authorizations")) != 0) {
			order_fail(o, "certfleet:protocol", "newOrder answer has no usable authorizations");
			goto out;
		}
		o->state = ORDER_AUTHORIZE;
		for (size_t i = 0; i < o->nauthz && !order_ended(o); i++)
			authz_fetch(&o->authzs[i]);
	} else {
		order_fail(o, "certfleet:protocol", "new order is neither pending, ready nor valid");
	}
out:
	json_decref(doc);
}

static void
order_new(struct order *o)
{
	json_t *ids = json_array(), *payload = NULL;
	char *text = NULL;

	o->state = ORDER_NEW;
	for (size_t i = 0; ids && i < o->job->nnames; i++)
		json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns", "value", o->job->names[i]));
	payload = ids ? json_pack("{s:o}", "identifiers", ids) : NULL;
	text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (text == NULL)
		order_fail(o, "certfleet:internal", "out of memory building newOrder");
	else
		acme_call_start(o->eng, o, NULL, o->eng->new_order_url, text, NULL, GATE_NEW_ORDER, on_new_order);
	free(text);
	json_decref(payload);
}

/* ---- authorizations ---- */

static void on_authz(struct acme_call *call, struct http_req *req);

static void
authz_fetch(struct authz *az)
{
	az->state = az->state == AUTHZ_POLL ? AUTHZ_POLL : AUTHZ_FETCH;
	acme_call_start(az->order->eng, az->order, az, az->url, NULL, NULL, GATE_AUTHZ, on_authz);
}

static void
authz_poll_fire(void *arg)
{
	struct authz *az = arg;
	struct order *o = az->order;

	if (!order_ended(o) && !order_expired(o))
		authz_fetch(az);
	order_unref(o);
}

static void
authz_valid(struct authz *az)
{
	struct order *o = az->order;

	az->state = AUTHZ_VALID;
	if (az->fqdn) {
		struct outmsg *m = outmsg_new(OUT_RECORD_VERIFIED, o->job->id);
		if (m) {
			m->fqdn = strdup(az->fqdn);
			m->value = strdup(az->value);
			m->issuer = strdup(az->issuer);
			m->provider = strdup(o->job->provider);
			m->wildcard = az->record_wildcard;
			m->variant = az->variant;
		}
		post(o, m);
	}
	if (++o->nvalid == o->nauthz) {
		order_finalize(o);
	}
}

/* The problem of the dns-persist-01 challenge of an invalid authorization, for the job's record. */
static void
authz_fail_invalid(struct authz *az, json_t *doc)
{
	json_t *chals = json_object_get(doc, "challenges"), *ch, *err = NULL;
	size_t i;
	char *msg = NULL;
	const char *type = "urn:ietf:params:acme:error:unauthorized", *detail = "authorization is invalid";

	json_array_foreach(chals, i, ch) {
		if (json_object_get(ch, "error") &&
		    (err == NULL || strcmp(json_string_value(json_object_get(ch, "type")) ?: "", "dns-persist-01") == 0))
			err = json_object_get(ch, "error");
	}
	if (err) {
		type = json_string_value(json_object_get(err, "type")) ?: type;
		detail = json_string_value(json_object_get(err, "detail")) ?: detail;
	}
	az->state = AUTHZ_INVALID;
	if (asprintf(&msg, "authorization for %s%s is invalid: %s", az->wildcard ? "*." : "",
	    az->identifier ? az->identifier : az->url, detail) < 0)
		msg = NULL;
	order_fail(az->order, type, msg ? msg : detail);
	free(msg);
}

/* Picks the issuer: the configured one when the CA lists it, else the CA's first. */
static const char *
pick_issuer(const struct acme_engine *eng, json_t *issuers)
{
	size_t i;
	json_t *v;

	json_array_foreach(issuers, i, v) {
		if (eng->cfg.issuer && json_string_value(v) && strcmp(json_string_value(v), eng->cfg.issuer) == 0)
			return json_string_value(v);
	}
	return json_string_value(json_array_get(issuers, 0));
}

/* True when the job also asks for "*.<name>": then one policy=wildcard record serves both. */
static bool
job_has_wildcard_of(const struct job *job, const char *name)
{
	for (size_t i = 0; i < job->nnames; i++)
		if (dnsname_is_wildcard(job->names[i]) && strcmp(dnsname_base(job->names[i]), name) == 0)
			return true;
	return false;
}

/* Works out the record this authorization needs from its dns-persist-01 challenge. */
static int
authz_compose_record(struct authz *az, json_t *chal, cf_err *err)
{
	struct order *o = az->order;
	struct acme_engine *eng = o->eng;
	struct persist_params p = { 0 };
	json_t *issuers = json_object_get(chal, "issuer-domain-names");
	char fqdn[DNSNAME_MAX + 32];
	const char *issuer;

	p.variant = PERSIST_DRAFT01;
	if (issuers == NULL) {
		issuers = json_object_get(chal, "issuerDomainNames");
		p.variant = PERSIST_DRAFT02;
		if (json_array_size(issuers) > 10) {
			cf_errf(err, "challenge for %s lists %zu issuer names (at most 10 allowed)",
			    az->identifier, json_array_size(issuers));
			return -1;
		}
	}
	issuer = pick_issuer(eng, issuers);
	if (issuer == NULL) {
		cf_errf(err, "dns-persist-01 challenge for %s lists no issuer domain names", az->identifier);
		return -1;
	}
	if (p.variant == PERSIST_DRAFT02 && eng->hash_prefix == NULL) {
		cf_errf(err, "challenge for %s is draft -02 but the directory has no accountHashPrefix",
		    az->identifier);
		return -1;
	}
	if (persist_record_name(az->identifier, fqdn, sizeof(fqdn), err) != 0)
		return -1;
	p.issuer = issuer;
	p.account_url = eng->cfg.account_url;
	p.wildcard = az->wildcard || job_has_wildcard_of(o->job, az->identifier);
	p.hash_prefix = eng->hash_prefix;
	p.thumbprint = eng->thumbprint;
	p.hash_domain = az->identifier;
	az->value = persist_record_value(&p, err);
	if (az->value == NULL)
		return -1;
	az->fqdn = strdup(fqdn);
	az->issuer = strdup(issuer);
	az->variant = p.variant;
	az->record_wildcard = p.wildcard;
	if (az->fqdn == NULL || az->issuer == NULL) {
		cf_errf(err, "out of memory composing the record for %s", az->identifier);
		return -1;
	}
	return 0;
}

static void record_ensure(struct authz *az);

static void
authz_pending(struct authz *az, json_t *doc, const struct http_req *req)
{
	struct order *o = az->order;
	json_t *chals = json_object_get(doc, "challenges"), *ch, *chal = NULL;
	const char *ident = json_string_value(json_object_get(json_object_get(doc, "identifier"), "value"));
	const char *chal_status;
	size_t i;
	cf_err err;

	if (az->state == AUTHZ_POLL) {
		timer_arm(o, &az->timer, poll_delay(o, req, az->polls++), authz_poll_fire, az);
		return;
	}
	json_array_foreach(chals, i, ch) {
		const char *t = json_string_value(json_object_get(ch, "type"));
		if (t && strcmp(t, "dns-persist-01") == 0)
			chal = ch;
	}
	if (ident == NULL) {
		order_fail(o, "certfleet:protocol", "authorization lacks its identifier");
		return;
	}
	az->identifier = strdup(ident);
	az->wildcard = json_is_true(json_object_get(doc, "wildcard"));
	az->expires_ms = acme_time_to_mono(json_string_value(json_object_get(doc, "expires")));
	if (chal == NULL || json_string_value(json_object_get(chal, "url")) == NULL) {
		char msg[DNSNAME_MAX + 96];
		snprintf(msg, sizeof(msg), "the CA offers no dns-persist-01 challenge for %s", ident);
		order_fail(o, "certfleet:no-challenge", msg);
		return;
	}
	az->chal_url = strdup(json_string_value(json_object_get(chal, "url")));
	if (authz_compose_record(az, chal, &err) != 0) {
		order_fail(o, "certfleet:record", err.msg);
		return;
	}
	chal_status = json_string_value(json_object_get(chal, "status"));
	if (chal_status && strcmp(chal_status, "processing") == 0) {
		/* answered before (a resumed order): wait for the verdict */
		az->state = AUTHZ_POLL;
		timer_arm(o, &az->timer, poll_delay(o, req, az->polls++), authz_poll_fire, az);
		return;
	}
	if (job_record_known(o->job, az->fqdn, az->value)) {
		authz_respond(az);
		return;
	}
	record_ensure(az);
}

static void
on_authz(struct acme_call *call, struct http_req *req)
{
	struct authz *az = call->authz;
	struct order *o = az->order;
	json_t *doc;
	const char *status;

	if (order_expired(o))
		return;
	if (req->status != 200) {
		order_fail_response(o, "fetching an authorization", req);
		return;
	}
	doc = acme_json(req);
	status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;
	if (status == NULL)
		order_fail(o, "certfleet:protocol", "authorization answer has no status");
	else if (strcmp(status, "valid") == 0)
		authz_valid(az);
	else if (strcmp(status, "pending") == 0)
		authz_pending(az, doc, req);
	else if (strcmp(status, "invalid") == 0)
		authz_fail_invalid(az, doc);
	else
		order_fail(o, "certfleet:protocol", "authorization is deactivated, expired or revoked");
	json_decref(doc);
}

static void
on_challenge(struct acme_call *call, struct http_req *req)
{
	struct authz *az = call->authz;
	struct order *o = az->order;

	if (order_expired(o))
		return;
	if (req->status != 200) {
		order_fail_response(o, "answering the dns-persist-01 challenge", req);
		return;
	}
	az->state = AUTHZ_POLL;
	timer_arm(o, &az->timer, poll_delay(o, req, az->polls++), authz_poll_fire, az);
}

static void
authz_respond(struct authz *az)
{
	az->state = AUTHZ_RESPOND;
	post_event(az->order, "challenge", "answering dns-persist-01 for %s%s with %s",
	    az->wildcard ? "*." : "", az->identifier, az->fqdn);
	acme_call_start(az->order->eng, az->order, az, az->chal_url, "{}", NULL, GATE_NONE, on_challenge);
}

/* ---- record writes through the provider ---- */

static unsigned
record_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % RECORD_BUCKETS;
}

static struct record_op **
record_bucket(struct acme_engine *eng, const char *key)
{
	if (eng->records == NULL) {
		eng->records = calloc(RECORD_BUCKETS, sizeof(struct record_op *));
		if (eng->records == NULL)
			return NULL;
	}
	return (struct record_op **)eng->records + record_hash(key);
}

void
acme_records_free(struct acme_engine *eng)
{
	struct record_op **b = (struct record_op **)eng->records;

	if (b == NULL)
		return;
	for (size_t i = 0; i < RECORD_BUCKETS; i++) {
		struct record_op *r = b[i];
		while (r) {
			struct record_op *n = r->next;
			free(r->key);
			free(r);
			r = n;
		}
	}
	free(b);
	eng->records = NULL;
}

struct record_write {
	struct acme_engine *eng;
	struct record_op *op;
	struct outmsg *msg;       /* OUT_RECORD_WRITTEN, posted on success */
};

/* Margin kept before an authorization expires: the challenge must still be answered in time. */
#define AUTHZ_EXPIRY_MARGIN_MS 60000

static void
on_record_published(void *arg, const struct publish_result *res)
{
	struct record_write *w = arg;
	struct record_op *op = w->op;
	struct authz *az = op->waiters;

	op->state = res->problem_type ? REC_FAILED : REC_DONE;
	op->waiters = NULL;
	if (res->problem_type == NULL) {
		w->msg->confirmed = res->confirmed;
		outbox_post(w->eng->cfg.outbox, w->msg);
	} else {
		outmsg_free(w->msg);
	}
	while (az) {
		struct authz *next = az->next_waiter;
		struct order *o = az->order;
		az->next_waiter = NULL;
		if (!order_ended(o)) {
			if (res->problem_type) {
				o->retry_after_ms = res->retry_after_ms;
				order_fail(o, res->problem_type, res->detail);
			} else {
				post_event(o, "record", "%s %s through %s", res->confirmed ? "published and confirmed" :
				    "published", az->fqdn, o->job->provider);
				authz_respond(az);
			}
		}
		order_unref(o);
		az = next;
	}
	free(w);
}

/*
 * When to stop waiting for the record: the account's verification deadline, the order's own
 * deadline, or a minute before the authorization expires, whichever comes first.
 */
static int64_t
record_deadline(const struct authz *az, const struct provider_account *acct)
{
	const struct order *o = az->order;
	int64_t d = o->deadline_ms;

	if (acct->verify && acct->verify->enabled && cf_mono_ms() + acct->verify->deadline_ms < d)
		d = cf_mono_ms() + acct->verify->deadline_ms;
	if (az->expires_ms > 0 && az->expires_ms - AUTHZ_EXPIRY_MARGIN_MS < d)
		d = az->expires_ms - AUTHZ_EXPIRY_MARGIN_MS;
	return d;
}

static void
record_ensure(struct authz *az)
{
	struct order *o = az->order;
	struct acme_engine *eng = o->eng;
	struct provider_account *acct = eng->cfg.providers ? provider_account_find(eng->cfg.providers, o->job->provider) : NULL;
	struct record_op **bucket, *op;
	struct record_write *w = NULL;
	char *key = NULL;
	char msg[160];

	if (acct == NULL) {
		snprintf(msg, sizeof(msg), "no DNS provider account \"%.64s\" is configured", o->job->provider);
		order_fail(o, "certfleet:provider-rejected", msg);
		return;
	}
	if (asprintf(&key, "%s %s", az->fqdn, az->value) < 0 || (bucket = record_bucket(eng, key)) == NULL)
		goto oom;
	for (op = *bucket; op && strcmp(op->key, key) != 0; op = op->next)
		;
	if (op && op->state == REC_DONE) {
		free(key);
		authz_respond(az);
		return;
	}
	az->state = AUTHZ_RECORD;
	if (op && op->state == REC_WRITING) {
		free(key);
		order_ref(o);
		az->next_waiter = op->waiters;
		op->waiters = az;
		return;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->msg = outmsg_new(OUT_RECORD_WRITTEN, o->job->id)) == NULL)
		goto oom;
	w->msg->certificate_id = o->job->certificate_id;
	w->msg->account_id = o->job->account_id;
	w->msg->fqdn = strdup(az->fqdn);
	w->msg->value = strdup(az->value);
	w->msg->issuer = strdup(az->issuer);
	w->msg->provider = strdup(o->job->provider);
	w->msg->wildcard = az->record_wildcard;
	w->msg->variant = az->variant;
	if (op == NULL) {
		if ((op = calloc(1, sizeof(*op))) == NULL)
			goto oom;
		op->key = key;
		key = NULL;
		op->next = *bucket;
		*bucket = op;
	}
	free(key);
	op->state = REC_WRITING;
	az->next_waiter = NULL;
	op->waiters = az;
	order_ref(o);
	w->eng = eng;
	w->op = op;
	log_debug("job %lld: publishing %s through %s", (long long)o->job->id, az->fqdn, o->job->provider);
	publish_start(eng->publisher, acct, az->fqdn, az->value, record_deadline(az, acct), on_record_published, w);
	return;
oom:
	free(key);
	if (w)
		outmsg_free(w->msg);
	free(w);
	order_fail(o, "certfleet:internal", "out of memory writing a record");
}

/* ---- finalize, wait, download ---- */

static void on_order_poll(struct acme_call *call, struct http_req *req);

static void
order_poll_fire(void *arg)
{
	struct order *o = arg;

	if (!order_ended(o) && !order_expired(o))
		acme_call_start(o->eng, o, NULL, o->url, NULL, NULL, GATE_NONE, on_order_poll);
	order_unref(o);
}

/* Acts on an order object returned by finalize or a poll. */
static void
order_advance(struct order *o, const struct http_req *req)
{
	json_t *doc = acme_json(req);
	const char *status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;

	if (status == NULL) {
		order_fail(o, "certfleet:protocol", "order answer has no status");
	} else if (strcmp(status, "valid") == 0) {
		set_str(&o->cert_url, doc, "certificate");
		if (o->cert_url == NULL)
			order_fail(o, "certfleet:protocol", "valid order lacks the certificate URL");
		else
			order_download(o);
	} else if (strcmp(status, "processing") == 0 || strcmp(status, "ready") == 0) {
		o->state = ORDER_WAIT_VALID;
		timer_arm(o, &o->timer, poll_delay(o, req, o->polls++), order_poll_fire, o);
	} else {
		json_t *e = json_object_get(doc, "error");
		const char *d = json_string_value(json_object_get(e, "detail"));
		order_fail(o, json_string_value(json_object_get(e, "type")) ?: "certfleet:order-invalid",
		    d ? d : "order became invalid");
	}
	json_decref(doc);
}

static void
on_order_poll(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->order;

	if (order_expired(o))
		return;
	if (req->status != 200) {
		order_fail_response(o, "polling the order", req);
		return;
	}
	order_advance(o, req);
}

static void
on_finalize(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->order;

	if (order_expired(o))
		return;
	if (req->status != 200) {
		order_fail_response(o, "finalize", req);
		return;
	}
	order_advance(o, req);
}

/* The order's key is stored: finalize. */
static void
finalize_send(void *arg)
{
	struct order *o = arg;

	if (!order_ended(o) && !order_expired(o))
		acme_call_start(o->eng, o, NULL, o->finalize_url, o->finalize_payload, NULL, GATE_NONE, on_finalize);
	free(o->finalize_payload);
	o->finalize_payload = NULL;
	order_unref(o);
}

/* Builds the CSR for the order's new key and sends finalize once the key is stored. */
static void
order_finalize_with_key(struct order *o)
{
	char *csr = NULL, *payload = NULL;
	cf_err err;

	if ((csr = csr_b64url(o->cert_key, (const char *const *)o->job->names, o->job->nnames, &err)) == NULL) {
		order_fail(o, "certfleet:csr", err.msg);
		return;
	}
	if (asprintf(&payload, "{\"csr\":\"%s\"}", csr) < 0) {
		order_fail(o, "certfleet:internal", "out of memory building finalize");
	} else {
		/* the key goes to the database with the order, so that a crash after finalize loses nothing */
		struct outmsg *m = outmsg_new(OUT_ORDER, o->job->id);
		if (o->cert_key_pem == NULL && (o->cert_key_pem = key_to_pem(o->cert_key, &err)) == NULL) {
			outmsg_free(m);
			order_fail(o, "certfleet:key", err.msg);
			goto out;
		}
		if (m == NULL) {
			acme_call_start(o->eng, o, NULL, o->finalize_url, payload, NULL, GATE_NONE, on_finalize);
			goto out;
		}
		m->order_url = strdup(o->url);
		m->state = strdup("finalizing");
		m->key_pem_order = strdup(o->cert_key_pem);
		/*
		 * finalize goes only once the key is stored: a crash in between would leave the CA
		 * issuing a certificate whose key is lost, and the retry would need another (and Let's
		 * Encrypt allows only 5 certificates for the same names a week)
		 */
		o->finalize_payload = payload;
		payload = NULL;
		m->stored_loop = o->eng->loop;
		m->stored_fn = finalize_send;
		m->stored_arg = o;
		order_ref(o);
		post(o, m);
	}
out:
	free(csr);
	free(payload);
}

/* A key from the keygen threads arrives (on this loop). */
static void
on_key_ready(void *arg, EVP_PKEY *key, const char *error)
{
	struct order *o = arg;

	o->eng->keygen_pending--;
	if (order_ended(o)) {
		EVP_PKEY_free(key);
	} else if (key == NULL) {
		order_fail(o, "certfleet:key", error);
	} else {
		o->cert_key = key;
		order_finalize_with_key(o);
	}
	order_unref(o);
}

static void
order_finalize(struct order *o)
{
	struct keygen_pool *kp = o->eng->cfg.keygen;
	cf_err err;

	o->state = ORDER_FINALIZE;
	if (kp == NULL || keygen_is_fast(o->job->key_type)) {
		o->cert_key = key_generator_generate(o->eng->keys, o->job->key_type, &err);
		if (o->cert_key == NULL)
			order_fail(o, "certfleet:key", err.msg);
		else
			order_finalize_with_key(o);
		return;
	}
	/* slow keys (RSA) are made off the loop, which keeps serving other orders meanwhile */
	order_ref(o);
	o->eng->keygen_pending++;
	if (keygen_submit(kp, o->job->key_type, o->eng->loop, on_key_ready, o, &err) != 0) {
		o->eng->keygen_pending--;
		order_fail(o, "certfleet:key", err.msg);
		order_unref(o);
	}
}

static void
on_certificate(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->order;
	struct outmsg *m = NULL;
	struct cert_issued ci = { 0 };
	char *key_pem = NULL;
	cf_err err;

	if (order_expired(o))
		return;
	if (req->status != 200) {
		order_fail_response(o, "downloading the certificate", req);
		return;
	}
	if (cert_issued_parse(req->body.data ? req->body.data : "", o->cert_key, &o->eng->known_chain, &ci,
	    &err) != 0) {
		order_fail(o, "certfleet:certificate", err.msg);
		goto out;
	}
	key_pem = o->cert_key_pem ? strdup(o->cert_key_pem) : key_to_pem(o->cert_key, &err);
	m = outmsg_new(OUT_ISSUED, o->job->id);
	if (key_pem == NULL || m == NULL) {
		order_fail(o, "certfleet:internal", key_pem ? "out of memory" : err.msg);
		goto out;
	}
	m->order_url = strdup(o->url);
	m->leaf_pem = ci.leaf_pem;
	m->chain_pem = ci.chain_pem;
	m->key_pem = key_pem;
	m->serial = strdup(ci.info.serial);
	m->issuer = strdup(ci.info.issuer);
	m->not_before = ci.info.not_before;
	m->not_after = ci.info.not_after;
	ci.leaf_pem = ci.chain_pem = key_pem = NULL;
	post_order_state(o, "valid");
	post(o, m);
	m = NULL;
	log_debug("job %lld (%s): issued serial %s", (long long)o->job->id, o->job->names[0], ci.info.serial);
	order_end(o, ORDER_ISSUED, JOB_ISSUED);
out:
	outmsg_free(m);
	cert_issued_clear(&ci);
	free(key_pem);
}

static void
order_download(struct order *o)
{
	o->state = ORDER_DOWNLOAD;
	acme_call_start(o->eng, o, NULL, o->cert_url, NULL, "application/pem-certificate-chain", GATE_NONE,
	    on_certificate);
}
