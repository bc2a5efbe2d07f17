/*
 * engine.c - the order engine: the dns-persist-01 order state machine. Each job becomes one order
 * that walks:
 *
 *   START -> WAIT_DIRECTORY -> NEW -> AUTHORIZE -> KEY -> STORE_KEY -> FINALIZE -> WAIT_VALID
 *         -> DOWNLOAD -> ISSUED, and from any step but ISSUED -> FAILED
 *
 * (NEW may find the order ready, going straight to KEY, or valid, going to DOWNLOAD). An order
 * an earlier attempt left behind is fetched first (RESUME) and continued from the state the CA
 * reports: pending to AUTHORIZE, ready to KEY, processing or valid with the stored key to
 * WAIT_VALID; anything else starts over with NEW. finalize goes out only after the writer has
 * committed the order's key (STORE_KEY): a certificate is never issued for a key that is lost.
 *
 * Inside AUTHORIZE, each authorization walks:
 *
 *   FETCH -> (valid) VALID
 *         -> (pending) RECORD (only when the record is not known to be in place) -> RESPOND
 *            -> POLL -> VALID | INVALID, fetching again between polls
 *
 * Every change of state goes through order_enter or authz_enter, which log it and refuse one
 * the diagrams above do not have. The persistent record is written once per (name, account,
 * issuer) and then reused: a record the database or the publisher knows to be in place goes
 * straight to RESPOND.
 */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cagate.h"
#include "dnsauth.h"
#include "dnsname.h"
#include "fault.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "persist.h"
#include "publish.h"

#define POLL_FIRST_MS 50
#define POLL_MAX_MS 2000
#define VALIDATION_RETRY_MS 5 /* how soon answers waiting for a validation slot look again */
#define RETRY_AFTER_CAP_MS 60000

struct engine {
	struct loop *loop;
	struct acme_config cfg;      /* strings below are owned copies; key_pem is not kept */
	struct acme_client *client;  /* the ACME transport */
	struct key_generator *keys;  /* certificate keys made on this loop */
	engine_job_done_fn done;
	void *done_arg;
	long orders;                 /* orders in flight */
	struct order *order_list;    /* the orders in flight, for cancellation */
	long keygen_pending;         /* keys asked of the keygen threads, not yet back */
	long key_acks_pending;       /* orders' keys handed to the writer, its stored step not yet back */
	struct order *dir_waiters;   /* orders started before the directory was loaded */
	struct publisher *publisher; /* publishes and confirms records through providers */
	unsigned seed;               /* rand_r state for poll jitter */
	char *known_chain;           /* the last certificate chain checked (they repeat) */
	int64_t alt_account;         /* the account alt_reported is about */
	int alt_reported;            /* whether its CA offers alternate chains, as last reported; -1 not yet */
	struct authz *val_head;      /* authorizations waiting for a slot of cfg.validations, FIFO */
	struct authz *val_tail;
	struct loop_timer val_timer; /* looks for free slots again (others' engines free them too) */
};

enum order_state {
	ORDER_START,
	ORDER_WAIT_DIRECTORY,
	ORDER_RESUME,
	ORDER_NEW,
	ORDER_AUTHORIZE,
	ORDER_KEY,
	ORDER_STORE_KEY,
	ORDER_FINALIZE,
	ORDER_WAIT_VALID,
	ORDER_DOWNLOAD,
	ORDER_ISSUED,
	ORDER_FAILED,
	ORDER_NSTATES,
};

enum authz_state {
	AUTHZ_START,
	AUTHZ_FETCH,
	AUTHZ_RECORD,
	AUTHZ_RESPOND,
	AUTHZ_POLL,
	AUTHZ_VALID,
	AUTHZ_INVALID,
	AUTHZ_NSTATES,
};

/* The requests an order sends; a reply is dispatched on this (acme_call.tag). */
enum order_request {
	REQ_RESUME,
	REQ_NEW_ORDER,
	REQ_AUTHZ,
	REQ_CHALLENGE,
	REQ_FINALIZE,
	REQ_ORDER_POLL,
	REQ_CERTIFICATE,
	REQ_ALTERNATE,
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
	struct publish_wait record_wait; /* its request to the publisher */
	int responds;             /* challenge answers sent */
	bool respond_lost;        /* the last answer was an error: the authorization's state decides */
	struct outmsg *record_msg; /* OUT_RECORD_WRITTEN, posted when this request's write succeeds */
	bool val_slot;            /* holds a slot of cfg.validations: answered, verdict not in */
	bool val_waiting;         /* in the engine's list of answers waiting for a slot */
	struct authz *val_prev;
	struct authz *val_next;
};

struct order {
	struct engine *eng;
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
	char *finalize_payload;   /* finalize's body, kept for a finalize whose answer was lost */
	int finalizes;            /* finalize requests sent */
	bool finalize_lost;       /* finalize's answer was an error: the order's own state decides */
	int refetches;            /* idempotent fetches repeated after an unreadable answer */
	struct outmsg_ack key_ack; /* the writer's word that the key is stored */
	int polls;
	int64_t started_ms;
	int64_t deadline_ms;
	struct loop_timer deadline; /* fails the order at deadline_ms, whatever it waits for */
	struct loop_timer timer;
	struct order *next_waiter; /* waiting for the directory */
	struct order *prev;       /* the engine's list of orders in flight */
	struct order *next;
	int64_t retry_after_ms;   /* Retry-After of the answer that failed the order, -1 when none */
	bool replaces_dropped;    /* the CA refused job->replaces: ordered again without it */
	struct cert_issued dflt;  /* the default chain, kept while the alternates are looked at */
	char dflt_top[256];       /* the issuer CN of its topmost certificate */
	char **alt_urls;          /* the download's Link rel="alternate" URLs */
	size_t nalt;
	size_t alt_next;          /* the next one to fetch */
};

static void order_new(struct order *o);
static void order_new_send(struct order *o);
static void order_begin(struct order *o);
static void order_fail(struct order *o, const char *type, const char *detail);
static void authz_fetch(struct authz *az);
static void authz_respond(struct authz *az);
static void order_finalize(struct order *o);
static void order_finalize_send(struct order *o);
static void order_download(struct order *o);

/* ---- transitions: the one place where states change ---- */

#define B(s) (1u << (s))
#define OR_FAIL B(ORDER_FAILED)

static const char *const order_state_names[ORDER_NSTATES] = {
	"start", "wait-directory", "resume", "new", "authorize", "key", "store-key", "finalize",
	"wait-valid", "download", "issued", "failed",
};

/* The states each state may go to (the diagram at the top); ISSUED and FAILED go nowhere. */
static const unsigned order_next[ORDER_NSTATES] = {
	[ORDER_START] = B(ORDER_WAIT_DIRECTORY) | B(ORDER_RESUME) | B(ORDER_NEW) | OR_FAIL,
	[ORDER_WAIT_DIRECTORY] = B(ORDER_RESUME) | B(ORDER_NEW) | OR_FAIL,
	[ORDER_RESUME] = B(ORDER_NEW) | B(ORDER_AUTHORIZE) | B(ORDER_KEY) | B(ORDER_WAIT_VALID) | OR_FAIL,
	[ORDER_NEW] = B(ORDER_RESUME) | B(ORDER_AUTHORIZE) | B(ORDER_KEY) | B(ORDER_DOWNLOAD) | OR_FAIL,
	[ORDER_AUTHORIZE] = B(ORDER_KEY) | OR_FAIL,
	[ORDER_KEY] = B(ORDER_STORE_KEY) | OR_FAIL,
	[ORDER_STORE_KEY] = B(ORDER_FINALIZE) | OR_FAIL,
	[ORDER_FINALIZE] = B(ORDER_WAIT_VALID) | B(ORDER_DOWNLOAD) | OR_FAIL,
	[ORDER_WAIT_VALID] = B(ORDER_FINALIZE) | B(ORDER_DOWNLOAD) | OR_FAIL,
	[ORDER_DOWNLOAD] = B(ORDER_ISSUED) | OR_FAIL,
};

static const char *const authz_state_names[AUTHZ_NSTATES] = {
	"start", "fetch", "record", "respond", "poll", "valid", "invalid",
};

static const unsigned authz_next[AUTHZ_NSTATES] = {
	[AUTHZ_START] = B(AUTHZ_FETCH),
	[AUTHZ_FETCH] = B(AUTHZ_VALID) | B(AUTHZ_RECORD) | B(AUTHZ_RESPOND) | B(AUTHZ_POLL) | B(AUTHZ_INVALID),
	[AUTHZ_RECORD] = B(AUTHZ_RESPOND),
	[AUTHZ_RESPOND] = B(AUTHZ_POLL),
	[AUTHZ_POLL] = B(AUTHZ_RESPOND) | B(AUTHZ_VALID) | B(AUTHZ_INVALID),
};

static bool
order_ended(const struct order *o)
{
	return o->state == ORDER_ISSUED || o->state == ORDER_FAILED;
}

/*
 * Moves o to state to (staying is no change): true, or false when the diagram has no such step;
 * then the order has failed, unless it had ended already.
 */
static bool
order_enter(struct order *o, enum order_state to)
{
	enum order_state from = o->state;
	long long id = o->job ? (long long)o->job->id : -1;

	if (from == to)
		return true;
	if (!(order_next[from] & B(to))) {
		log_error("job %lld: the order cannot go from %s to %s", id, order_state_names[from], order_state_names[to]);
		if (!order_ended(o))
			order_fail(o, "certfleet:internal", "the order reached a state it cannot be in");
		return false;
	}
	log_debug("job %lld: order %s -> %s", id, order_state_names[from], order_state_names[to]);
	o->state = to;
	return true;
}

static void validation_release(struct authz *az);

/* Moves az to state to, like order_enter; a refused step fails the order. */
static bool
authz_enter(struct authz *az, enum authz_state to)
{
	struct order *o = az->order;
	enum authz_state from = az->state;

	if (from == to)
		return true;
	if (order_ended(o) || !(authz_next[from] & B(to))) {
		log_error("job %lld: authorization %s cannot go from %s to %s", o->job ? (long long)o->job->id : -1,
		    az->url, authz_state_names[from], authz_state_names[to]);
		if (!order_ended(o))
			order_fail(o, "certfleet:internal", "an authorization reached a state it cannot be in");
		return false;
	}
	log_debug("job %lld: authorization %s %s -> %s", (long long)o->job->id, az->identifier ? az->identifier : az->url,
	    authz_state_names[from], authz_state_names[to]);
	az->state = to;
	if (to != AUTHZ_RESPOND && to != AUTHZ_POLL)
		validation_release(az);
	return true;
}

/* ---- life cycle ---- */

static void
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
		outmsg_free(az->record_msg);
	}
	free(o->authzs);
	free(o->url);
	free(o->finalize_url);
	free(o->cert_url);
	free(o->finalize_payload);
	EVP_PKEY_free(o->cert_key);
	cf_secret_free(o->cert_key_pem);
	cert_issued_clear(&o->dflt);
	for (size_t i = 0; i < o->nalt; i++)
		free(o->alt_urls[i]);
	free(o->alt_urls);
	job_free(o->job);
	free(o);
}

static void
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

/* Posts the order's step; the "created" message of a newOrder takes the call's unsaved slot. */
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
			m->unsaved = acme_call_take_slot(call);
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

	if (!order_enter(o, final))
		return;
	o->eng->orders--;
	if (o->prev)
		o->prev->next = o->next;
	else
		o->eng->order_list = o->next;
	if (o->next)
		o->next->prev = o->prev;
	o->prev = o->next = NULL;
	timer_cancel(o, &o->timer);
	timer_cancel(o, &o->deadline);
	for (size_t i = 0; i < o->nauthz; i++) {
		timer_cancel(o, &o->authzs[i].timer);
		validation_release(&o->authzs[i]);
	}
	/* the worker takes the job; the order keeps a copy of nothing it needs after this */
	o->job = NULL;
	int64_t elapsed_ms = cf_mono_ms() - o->started_ms;
	static const char *const outcome_names[] = { "issued", "failed", "retry", "cancelled" };
	metrics_add(metrics_series(&metrics_orders, outcome_names[outcome], NULL), 1);
	metrics_observe(&metrics_order_seconds, metrics_series(&metrics_order_seconds, NULL, NULL), elapsed_ms / 1000.0);
	metrics_add(metrics_series(&metrics_in_flight, NULL, NULL), -1);
	o->eng->done(o->eng->done_arg, job, outcome, elapsed_ms);
	order_unref(o);
}

/* True when s is one of the n strings of list. */
static bool
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/*
 * Failures a later attempt may mend: the CA, the provider, the network or the database had a bad
 * moment. The CA refusing what was asked (unauthorized, malformed, rejectedIdentifier, caa,
 * badCSR, ...) is final: retrying it only burns the CA's failed-validation limits.
 */
static bool
problem_retryable(const char *type)
{
	static const char *const retry[] = {
		"certfleet:transport", "certfleet:http", "certfleet:timeout", "certfleet:directory",
		"certfleet:provider", "certfleet:internal", "certfleet:record-not-visible", "certfleet:store",
		"certfleet:garbled",
		"urn:ietf:params:acme:error:rateLimited", "urn:ietf:params:acme:error:serverInternal",
		"urn:ietf:params:acme:error:badNonce", "urn:ietf:params:acme:error:connection",
		"urn:ietf:params:acme:error:dns",
	};

	return in_list(type, retry, sizeof(retry) / sizeof(retry[0]));
}

/*
 * The second look at a refused record comes after this (plus up to a fifth more), not after the
 * back-off: the record was confirmed at its authoritative servers before the challenge was
 * answered, so what failed was the CA's lookup, and a CA's resolver that failed under a burst (as
 * Pebble's does) answers seconds later. Never later than the back-off would.
 */
#define SECOND_LOOK_MS 5000

/*
 * When to try again: Retry-After when the CA or provider said, else the base delay times ten per
 * earlier attempt (1 min, 10 min, 100 min with the default base), at most a day, plus up to a
 * fifth more at random so that jobs failed together do not return together. A second look goes
 * after SECOND_LOOK_MS.
 */
static int64_t
retry_delay(struct order *o, bool second_look)
{
	int64_t d = o->eng->cfg.retry_base_ms > 0 ? o->eng->cfg.retry_base_ms : 60000;

	if (o->retry_after_ms >= 0)
		return o->retry_after_ms;
	if (second_look && d > SECOND_LOOK_MS)
		d = SECOND_LOOK_MS;
	for (int i = 1; i < o->job->attempt && d < 86400000; i++)
		d *= 10;
	if (d > 86400000)
		d = 86400000;
	return d + (int64_t)(rand_r(&o->eng->seed) % (unsigned)(d / 5 + 1));
}

static void
order_fail(struct order *o, const char *type, const char *detail)
{
	struct outmsg *m;
	bool cancelled = strcmp(type, "certfleet:cancelled") == 0;
	/*
	 * A refusal of a record believed in place gets one more attempt: the CA's lookup may have
	 * failed (Pebble reports a DNS read error as unauthorized), and one retry stays well inside
	 * the CA's failed-validation limits. A second refusal is final.
	 */
	bool second_look, retry;

	if (order_ended(o))
		return;
	second_look = strcmp(type, "urn:ietf:params:acme:error:unauthorized") == 0 && o->job->attempt == 1;
	retry = !cancelled && (problem_retryable(type) || second_look) && o->job->attempt < o->job->max_attempts;
	/* the type and detail may be the CA's words: quoted, so that they cannot forge a log line */
	char qtype[4 * 120 + 8], qdetail[4 * 400 + 8];
	cf_quote(qtype, sizeof(qtype), type, strlen(type), 120);
	cf_quote(qdetail, sizeof(qdetail), detail, strlen(detail), 400);
	struct cf_log_job lj = { .job_id = o->job->id, .certificate_id = o->job->certificate_id,
		.names = o->job->names, .nnames = o->job->nnames, .problem_type = type, .detail = detail };
	log_job(CF_LOG_INFO, &lj, "job %lld (%s): attempt %d %s in %s: %s: %s", (long long)o->job->id,
	    o->job->names[0], o->job->attempt, retry ? "failed, will retry" : "failed", order_state_names[o->state],
	    qtype, qdetail);
	/*
	 * Once finalize went out, the CA may issue whatever happens here: the stored order keeps the
	 * state it had, so that the next attempt fetches it and downloads the certificate rather than
	 * ordering another (an order the CA made invalid is then left for a new one).
	 */
	if (o->state != ORDER_FINALIZE && o->state != ORDER_WAIT_VALID && o->state != ORDER_DOWNLOAD)
		post_order_state(o, "failed");
	m = outmsg_new(OUT_FAILED, o->job->id);
	if (m) {
		m->problem_type = strdup(type);
		m->detail = strdup(detail);
		m->retry = retry;
		m->retry_in_ms = retry ? retry_delay(o, second_look) : 0;
	}
	post(o, m);
	order_end(o, ORDER_FAILED, cancelled ? JOB_CANCELLED : retry ? JOB_RETRY : JOB_FAILED);
}

static void
order_failf(struct order *o, const char *type, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
order_failf(struct order *o, const char *type, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	order_fail(o, type, msg);
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

/*
 * True when url, handed out by the CA, may be requested: printable ASCII without spaces, and
 * https (or http when the directory itself is http, which only a test CA on loopback is).
 */
static bool
ca_url_ok(const struct engine *eng, const char *url)
{
	const char *scheme = strncmp(eng->cfg.directory_url, "http://", 7) == 0 ? "http://" : "https://";

	if (url == NULL || strncmp(url, scheme, strlen(scheme)) != 0 || url[strlen(scheme)] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

/*
 * Copies the URL at key of obj into *dst when there is one. -1 (and the order failed) when the CA
 * sent something that is not a URL it may send.
 */
static int
set_url(struct order *o, char **dst, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);
	char quoted[200];

	if (v == NULL)
		return 0;
	if (!ca_url_ok(o->eng, s)) {
		cf_quote(quoted, sizeof(quoted), s ? s : "(not a string)", s ? strlen(s) : 14, 40);
		order_failf(o, "certfleet:protocol", "the CA sent \"%s\" as %s, which is not an https URL", quoted, key);
		return -1;
	}
	free(*dst);
	if ((*dst = strdup(s)) == NULL) {
		order_fail(o, "certfleet:internal", "out of memory");
		return -1;
	}
	return 0;
}

static void
order_deadline_fire(void *arg)
{
	struct order *o = arg;

	if (!order_ended(o))
		order_fail(o, "certfleet:timeout", "order did not complete before the order timeout");
	order_unref(o);
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

/* ---- requests to the CA ---- */

typedef void (*order_reply_fn)(struct acme_call *call, struct http_req *req);

static void on_resume(struct acme_call *call, struct http_req *req);
static void on_new_order(struct acme_call *call, struct http_req *req);
static void on_authz(struct acme_call *call, struct http_req *req);
static void on_challenge(struct acme_call *call, struct http_req *req);
static void on_finalize(struct acme_call *call, struct http_req *req);
static void on_order_poll(struct acme_call *call, struct http_req *req);
static void on_certificate(struct acme_call *call, struct http_req *req);
static void on_alternate(struct acme_call *call, struct http_req *req);

static const order_reply_fn order_replies[] = {
	[REQ_RESUME] = on_resume,
	[REQ_NEW_ORDER] = on_new_order,
	[REQ_AUTHZ] = on_authz,
	[REQ_CHALLENGE] = on_challenge,
	[REQ_FINALIZE] = on_finalize,
	[REQ_ORDER_POLL] = on_order_poll,
	[REQ_CERTIFICATE] = on_certificate,
	[REQ_ALTERNATE] = on_alternate,
};

/*
 * Every answer comes here: it is dropped once the order has ended, fails the order when the
 * request could not be made or the order ran out of time, and else goes to its handler.
 */
static void
order_reply(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->owner;

	if (!order_ended(o)) {
		if (req == NULL)
			order_fail(o, "certfleet:internal", call->error);
		else if (!order_expired(o))
			order_replies[call->tag](call, req);
	}
	order_unref(o);
}

/* The requests' names in certfleet_ca_requests_total{endpoint}: a fixed set. */
static const char *const request_names[] = {
	[REQ_RESUME] = "order", [REQ_NEW_ORDER] = "newOrder", [REQ_AUTHZ] = "authz", [REQ_CHALLENGE] = "challenge",
	[REQ_FINALIZE] = "finalize", [REQ_ORDER_POLL] = "order", [REQ_CERTIFICATE] = "certificate",
	[REQ_ALTERNATE] = "certificate",
};

/* Sends a signed request for o (and az); order_reply gets the answer. */
static void
order_send(struct order *o, struct authz *az, enum order_request tag, const char *url, const char *payload,
    const char *accept, int gate_class)
{
	struct acme_request r = {
		.url = url,
		.payload = payload,
		.accept = accept,
		.gate_class = gate_class,
		.renewal = o->job->renewal,
		.endpoint = request_names[tag],
	};

	order_ref(o);
	acme_send(o->eng->client, &r, order_reply, o, az, (int)tag);
}

#define REFETCH_MAX 3 /* an unreadable answer to a fetch is fetched again this often per order */

/*
 * An answer that could not be read (not JSON, no status, a truncated certificate) to a request
 * that only reads: sends it again, up to REFETCH_MAX times per order, then fails the order as
 * garbled, which a later attempt may mend. what says what was wrong.
 */
static void
order_refetch(struct order *o, struct authz *az, enum order_request tag, const char *url, const char *accept,
    int gate_class, const char *what)
{
	if (o->refetches++ < REFETCH_MAX) {
		log_debug("job %lld: %s; fetching %s again", (long long)o->job->id, what, url);
		order_send(o, az, tag, url, NULL, accept, gate_class);
		return;
	}
	order_failf(o, "certfleet:garbled", "%s (%d times)", what, o->refetches);
}

/* ---- start and directory ---- */

void
engine_order_start(struct engine *eng, struct job *job)
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
	loop_timer_init(&o->deadline);
	eng->orders++;
	metrics_add(metrics_series(&metrics_in_flight, NULL, NULL), 1);
	o->next = eng->order_list;
	if (o->next)
		o->next->prev = o;
	eng->order_list = o;
	/* a CA that hangs, or a writer that cannot store, must not hold an order past its time */
	if (loop_timer_arm(eng->loop, &o->deadline, eng->cfg.order_timeout_ms, order_deadline_fire, o) != 0) {
		order_fail(o, "certfleet:internal", "out of memory arming the order's deadline");
		return;
	}
	order_ref(o);
	if (acme_client_directory(eng->client)->state == ACME_DIR_READY) {
		order_begin(o);
		return;
	}
	if (!order_enter(o, ORDER_WAIT_DIRECTORY))
		return;
	o->next_waiter = eng->dir_waiters;
	eng->dir_waiters = o;
	acme_directory_load(eng->client);
}

/* The directory is loaded, or failed to load: start the orders waiting for it, or fail them. */
static void
engine_directory_done(void *arg)
{
	struct engine *eng = arg;
	const struct acme_directory *dir = acme_client_directory(eng->client);
	struct order *o = eng->dir_waiters;

	eng->dir_waiters = NULL;
	while (o) {
		struct order *next = o->next_waiter;
		if (dir->state == ACME_DIR_READY)
			order_begin(o);
		else
			order_fail(o, "certfleet:directory", dir->error ? dir->error : "ACME directory unavailable");
		o = next;
	}
}

void
engine_order_cancel(struct engine *eng, int64_t job_id)
{
	for (struct order *o = eng->order_list; o; o = o->next) {
		if (o->job && o->job->id == job_id) {
			order_fail(o, "certfleet:cancelled", "cancelled by the operator");
			return;
		}
	}
}

/* ---- resuming an earlier attempt's order ---- */

static void order_advance(struct order *o, const struct http_req *req);
static int order_set_authzs(struct order *o, json_t *list);

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

/* Fetches every authorization of o, which has just entered AUTHORIZE. */
static void
order_authorize(struct order *o)
{
	for (size_t i = 0; i < o->nauthz && !order_ended(o); i++)
		authz_fetch(&o->authzs[i]);
}

/*
 * The stored order's state decides: pending goes on with its authorizations, ready is finalized
 * with a new key, processing and valid go on only with the key the finalize was sent with
 * (else the certificate would be unusable); anything else starts over with a new order.
 */
static void
on_resume(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->owner;
	json_t *doc = NULL;
	const char *status;
	cf_err err;

	doc = req->status == 200 ? acme_json(req) : NULL;
	status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;
	if (status == NULL) {
		char why[64];
		snprintf(why, sizeof(why), "HTTP %ld", req->status);
		order_abandon(o, why);
		goto out;
	}
	if (set_url(o, &o->finalize_url, doc, "finalize") != 0 || set_url(o, &o->cert_url, doc, "certificate") != 0)
		goto out;
	if (o->finalize_url == NULL) {
		order_abandon(o, "no finalize URL");
	} else if (strcmp(status, "pending") == 0) {
		if (order_set_authzs(o, json_object_get(doc, "authorizations")) != 0) {
			order_abandon(o, "no usable authorizations");
			goto out;
		}
		post_event(o, "resume", "continuing order %s (pending)", o->url);
		if (order_enter(o, ORDER_AUTHORIZE))
			order_authorize(o);
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
		if (order_enter(o, ORDER_WAIT_VALID))
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
	if (!order_enter(o, ORDER_RESUME))
		return;
	if ((o->url = strdup(o->job->resume_url)) == NULL)
		order_fail(o, "certfleet:internal", "out of memory resuming an order");
	else
		order_send(o, NULL, REQ_RESUME, o->url, NULL, NULL, GATE_NONE);
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
		if (!ca_url_ok(o->eng, u) || (o->authzs[i].url = strdup(u)) == NULL)
			return -1;
	}
	return 0;
}


/*
 * A newOrder that carried "replaces" and was refused (RFC 9773 alreadyReplaced, a CertID the CA
 * does not take or cannot find, another account's certificate): the renewal matters more than
 * the link, so it is ordered again without it, once. A rate limit is no such refusal.
 */
static bool
replaces_refused(struct order *o, const struct http_req *req)
{
	char *type = NULL, *detail = NULL;
	bool refused;

	if (o->job->replaces == NULL || o->replaces_dropped || req->status < 400)
		return false;
	acme_problem(req, &type, &detail);
	refused = strcmp(type, "urn:ietf:params:acme:error:rateLimited") != 0 && req->status != 429 &&
	    strncmp(type, "certfleet:", 10) != 0;
	if (refused) {
		char q[200];
		cf_quote(q, sizeof(q), detail, strlen(detail), 40);
		log_info("job %lld: newOrder replacing %s refused (%s: \"%s\"); ordering without replaces",
		    (long long)o->job->id, o->job->replaces, type, q);
		o->replaces_dropped = true;
	}
	free(type);
	free(detail);
	return refused;
}

static void
on_new_order(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->owner;
	json_t *doc = NULL;
	const char *status;

	if (req->status != 201 && req->status != 200) {
		if (replaces_refused(o, req)) {
			order_new_send(o);
			return;
		}
		order_fail_response(o, "newOrder", req);
		return;
	}
	doc = acme_json(req);
	status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;
	if (req->location == NULL) {
		/* the CA may have made the order, but without its URL it can only be made again */
		order_fail(o, "certfleet:garbled", "newOrder answer lacks the order's Location");
		goto out;
	}
	if (!ca_url_ok(o->eng, req->location)) {
		order_fail(o, "certfleet:protocol", "newOrder answer's Location is not an https URL");
		goto out;
	}
	if ((o->url = strdup(req->location)) == NULL) {
		order_fail(o, "certfleet:internal", "out of memory");
		goto out;
	}
	if (status == NULL) {
		/* the order exists, at a URL that is now stored: its own answer tells the rest */
		post_order_step(o, "created", call);
		if (order_enter(o, ORDER_RESUME))
			order_send(o, NULL, REQ_RESUME, o->url, NULL, NULL, GATE_NONE);
		goto out;
	}
	if (set_url(o, &o->finalize_url, doc, "finalize") != 0 || set_url(o, &o->cert_url, doc, "certificate") != 0)
		goto out;
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
		if (order_enter(o, ORDER_AUTHORIZE))
			order_authorize(o);
	} else {
		order_fail(o, "certfleet:protocol", "new order is neither pending, ready nor valid");
	}
out:
	json_decref(doc);
}

/*
 * True when the job's profile, if it has one, is among those the loaded directory offers; else
 * fails the order for good (the same directory would refuse it again), naming what the CA offers.
 */
static bool
order_profile_offered(struct order *o)
{
	const struct acme_directory *dir = acme_client_directory(o->eng->client);
	char offered[512] = "";
	size_t len = 0;

	if (o->job->profile == NULL || acme_directory_has_profile(dir, o->job->profile))
		return true;
	for (size_t i = 0; i < dir->nprofiles && len < sizeof(offered); i++)
		len += (size_t)snprintf(offered + len, sizeof(offered) - len, "%s%s", i ? ", " : "", dir->profiles[i]);
	if (dir->nprofiles == 0)
		order_failf(o, "certfleet:profile", "the CA offers no certificate profiles, so profile \"%s\" "
		    "cannot be ordered", o->job->profile);
	else
		order_failf(o, "certfleet:profile", "the CA does not offer the certificate profile \"%s\" "
		    "(it offers: %s)", o->job->profile, offered);
	return false;
}

static void
order_new(struct order *o)
{
	if (!order_enter(o, ORDER_NEW) || !order_profile_offered(o))
		return;
	order_new_send(o);
}

/* Sends newOrder (again, when the CA refused its "replaces"). */
static void
order_new_send(struct order *o)
{
	json_t *ids = json_array(), *payload = NULL;
	char *text = NULL;

	for (size_t i = 0; ids && i < o->job->nnames; i++)
		json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns", "value", o->job->names[i]));
	payload = ids ? json_pack("{s:o}", "identifiers", ids) : NULL;
	ids = NULL; /* the payload holds it now, or it was freed with the failed pack */
	if (payload && ((o->job->profile && json_object_set_new(payload, "profile", json_string(o->job->profile)) != 0) ||
	    (o->job->replaces && !o->replaces_dropped &&
	    json_object_set_new(payload, "replaces", json_string(o->job->replaces)) != 0))) {
		json_decref(payload);
		payload = NULL;
	}
	text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (text == NULL)
		order_fail(o, "certfleet:internal", "out of memory building newOrder");
	else
		order_send(o, NULL, REQ_NEW_ORDER, acme_client_directory(o->eng->client)->new_order_url, text, NULL,
		    GATE_NEW_ORDER);
	free(text);
	json_decref(ids);
	json_decref(payload);
}

/* ---- authorizations ---- */

static void
authz_fetch(struct authz *az)
{
	/* a poll fetches the authorization again without leaving POLL */
	if (az->state != AUTHZ_POLL && !authz_enter(az, AUTHZ_FETCH))
		return;
	order_send(az->order, az, REQ_AUTHZ, az->url, NULL, NULL, GATE_AUTHZ);
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

	if (!authz_enter(az, AUTHZ_VALID))
		return;
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
	if (++o->nvalid == o->nauthz)
		order_finalize(o);
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
	if (!authz_enter(az, AUTHZ_INVALID))
		return;
	if (asprintf(&msg, "authorization for %s%s is invalid: %s", az->wildcard ? "*." : "",
	    az->identifier ? az->identifier : az->url, detail) < 0)
		msg = NULL;
	order_fail(az->order, type, msg ? msg : detail);
	free(msg);
}

/* Picks the issuer: the configured one when the CA lists it, else the CA's first. */
static const char *
pick_issuer(const struct engine *eng, json_t *issuers)
{
	size_t i;
	json_t *v;

	json_array_foreach(issuers, i, v) {
		if (eng->cfg.issuer && json_string_value(v) && strcmp(json_string_value(v), eng->cfg.issuer) == 0)
			return json_string_value(v);
	}
	return json_string_value(json_array_get(issuers, 0));
}

/* True when ident (its wildcard form when wildcard) is one of the job's names. */
static bool
job_asks_for(const struct job *job, const char *ident, bool wildcard)
{
	for (size_t i = 0; i < job->nnames; i++) {
		const char *n = job->names[i];
		if (wildcard ? dnsname_is_wildcard(n) && strcmp(dnsname_base(n), ident) == 0 : strcmp(n, ident) == 0)
			return true;
	}
	return false;
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
	struct engine *eng = o->eng;
	const struct acme_directory *dir = acme_client_directory(eng->client);
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
	if (p.variant == PERSIST_DRAFT02 && dir->hash_prefix == NULL) {
		cf_errf(err, "challenge for %s is draft -02 but the directory has no accountHashPrefix",
		    az->identifier);
		return -1;
	}
	if (persist_record_name(az->identifier, fqdn, sizeof(fqdn), err) != 0)
		return -1;
	p.issuer = issuer;
	p.account_url = eng->cfg.account_url;
	p.wildcard = az->wildcard || job_has_wildcard_of(o->job, az->identifier);
	p.hash_prefix = dir->hash_prefix;
	p.thumbprint = acme_client_thumbprint(eng->client);
	p.hash_domain = az->identifier;
	p.persist_until = eng->cfg.persist_until;
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
		if (az->respond_lost) {
			const char *cs = NULL;
			json_array_foreach(chals, i, ch) {
				const char *t = json_string_value(json_object_get(ch, "type"));
				if (t && strcmp(t, "dns-persist-01") == 0)
					cs = json_string_value(json_object_get(ch, "status"));
			}
			if (cs && strcmp(cs, "pending") == 0) {
				authz_respond(az); /* the CA did not take the answer: again */
				return;
			}
			az->respond_lost = false;
		}
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
	az->wildcard = json_is_true(json_object_get(doc, "wildcard"));
	if (!job_asks_for(o->job, ident, az->wildcard)) {
		char quoted[4 * 64 + 8];
		cf_quote(quoted, sizeof(quoted), ident, strlen(ident), 64);
		order_failf(o, "certfleet:protocol", "the CA's authorization is for %s\"%s\", which this order did not ask for",
		    az->wildcard ? "*." : "", quoted);
		return;
	}
	az->identifier = strdup(ident);
	az->expires_ms = acme_time_to_mono(json_string_value(json_object_get(doc, "expires")));
	if (chal == NULL || json_string_value(json_object_get(chal, "url")) == NULL) {
		char msg[DNSNAME_MAX + 96];
		snprintf(msg, sizeof(msg), "the CA offers no dns-persist-01 challenge for %s", ident);
		order_fail(o, "certfleet:no-challenge", msg);
		return;
	}
	if (!ca_url_ok(o->eng, json_string_value(json_object_get(chal, "url"))) ||
	    (az->chal_url = strdup(json_string_value(json_object_get(chal, "url")))) == NULL) {
		order_fail(o, "certfleet:protocol", "the dns-persist-01 challenge's URL is not an https URL");
		return;
	}
	if (authz_compose_record(az, chal, &err) != 0) {
		order_fail(o, "certfleet:record", err.msg);
		return;
	}
	chal_status = json_string_value(json_object_get(chal, "status"));
	if (chal_status && strcmp(chal_status, "processing") == 0) {
		/* answered before (a resumed order): wait for the verdict */
		if (authz_enter(az, AUTHZ_POLL))
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
	struct authz *az = call->sub;
	struct order *o = az->order;
	json_t *doc;
	const char *status;

	if (req->status != 200) {
		order_fail_response(o, "fetching an authorization", req);
		return;
	}
	doc = acme_json(req);
	status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;
	if (status == NULL)
		order_refetch(o, az, REQ_AUTHZ, az->url, NULL, GATE_AUTHZ, "an authorization answer without a status");
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
	struct authz *az = call->sub;
	struct order *o = az->order;

	if (req->status != 200) {
		char *type = NULL, *detail = NULL;
		acme_problem(req, &type, &detail);
		/*
		 * The answer may be lost while the CA took the challenge (a repeated answer is then
		 * refused as malformed: the challenge is no longer pending), or the CA did not take it.
		 * The authorization's own state decides: it is fetched, and answered again while its
		 * challenge is still pending, a bounded number of times.
		 */
		log_debug("job %lld: answering the challenge for %s failed (%s: %s); fetching the authorization",
		    (long long)o->job->id, az->identifier, type, detail);
		free(type);
		free(detail);
		if (az->responds >= 3) {
			order_fail_response(o, "answering the dns-persist-01 challenge", req);
			return;
		}
		az->respond_lost = true;
	}
	if (authz_enter(az, AUTHZ_POLL))
		timer_arm(o, &az->timer, az->respond_lost ? 0 : poll_delay(o, req, az->polls++), authz_poll_fire, az);
}

/* ---- the cap on challenges answered at the CA and not decided yet ---- */

static void validation_fire(void *arg);

static void
validation_unlink(struct authz *az)
{
	struct engine *eng = az->order->eng;

	if (az->val_prev)
		az->val_prev->val_next = az->val_next;
	else
		eng->val_head = az->val_next;
	if (az->val_next)
		az->val_next->val_prev = az->val_prev;
	else
		eng->val_tail = az->val_prev;
	az->val_prev = az->val_next = NULL;
	az->val_waiting = false;
}

static void
validation_arm(struct engine *eng, int64_t delay_ms)
{
	if (eng->val_head && eng->val_timer.idx < 0 &&
	    loop_timer_arm(eng->loop, &eng->val_timer, delay_ms, validation_fire, eng) != 0)
		log_error("engine: out of memory arming the validation slots' timer");
}

/*
 * The slot of cfg.validations az holds, if any, back; and az out of the waiting list, if it is
 * there. Every way out of RESPOND and POLL, and the end of the order, pass here.
 */
static void
validation_release(struct authz *az)
{
	struct order *o = az->order;

	if (az->val_waiting) {
		validation_unlink(az);
		order_unref(o);
	}
	if (az->val_slot) {
		az->val_slot = false;
		ca_validations_release(o->eng->cfg.validations);
		validation_arm(o->eng, 0);
	}
}

/* True when az may answer its challenge now; else it waits in line and is answered later. */
static bool
validation_take(struct authz *az)
{
	struct engine *eng = az->order->eng;

	if (eng->cfg.validations == NULL || az->val_slot)
		return true;
	if (az->val_waiting)
		return false;
	if (eng->val_head == NULL && ca_validations_take(eng->cfg.validations)) {
		az->val_slot = true;
		return true;
	}
	az->val_waiting = true;
	az->val_prev = eng->val_tail;
	az->val_next = NULL;
	if (eng->val_tail)
		eng->val_tail->val_next = az;
	else
		eng->val_head = az;
	eng->val_tail = az;
	order_ref(az->order);
	validation_arm(eng, VALIDATION_RETRY_MS);
	return false;
}

static void
validation_fire(void *arg)
{
	struct engine *eng = arg;

	while (eng->val_head && ca_validations_take(eng->cfg.validations)) {
		struct authz *az = eng->val_head;
		struct order *o = az->order;
		validation_unlink(az);
		az->val_slot = true;
		if (order_ended(o))
			validation_release(az);
		else
			authz_respond(az);
		order_unref(o);
	}
	validation_arm(eng, VALIDATION_RETRY_MS);
}

static void
authz_respond(struct authz *az)
{
	if (!validation_take(az))
		return;
	if (!authz_enter(az, AUTHZ_RESPOND))
		return;
	az->responds++;
	az->respond_lost = false;
	post_event(az->order, "challenge", "answering dns-persist-01 for %s%s with %s",
	    az->wildcard ? "*." : "", az->identifier, az->fqdn);
	order_send(az->order, az, REQ_CHALLENGE, az->chal_url, "{}", NULL, GATE_NONE);
}

/* ---- the record, through the publisher ---- */

/* Margin kept before an authorization expires: the challenge must still be answered in time. */
#define AUTHZ_EXPIRY_MARGIN_MS 60000

static void
on_record(void *arg, const struct publish_result *res)
{
	struct authz *az = arg;
	struct order *o = az->order;
	struct outmsg *m = az->record_msg;

	az->record_msg = NULL;
	if (res->wrote) {
		/* the write is stored whatever became of the order that asked for it */
		m->confirmed = res->confirmed;
		outbox_post(o->eng->cfg.outbox, m);
	} else {
		outmsg_free(m);
	}
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
	struct engine *eng = o->eng;
	struct provider_account *acct = eng->cfg.providers ? provider_account_find(eng->cfg.providers, o->job->provider) : NULL;
	struct outmsg *m;
	char msg[160];

	if (acct == NULL) {
		snprintf(msg, sizeof(msg), "no DNS provider account \"%.64s\" is configured", o->job->provider);
		order_fail(o, "certfleet:provider-rejected", msg);
		return;
	}
	if (publish_known(eng->publisher, az->fqdn, az->value)) {
		authz_respond(az);
		return;
	}
	if (!authz_enter(az, AUTHZ_RECORD))
		return;
	m = outmsg_new(OUT_RECORD_WRITTEN, o->job->id);
	if (m == NULL) {
		order_fail(o, "certfleet:internal", "out of memory writing a record");
		return;
	}
	m->certificate_id = o->job->certificate_id;
	m->account_id = o->job->account_id;
	m->fqdn = strdup(az->fqdn);
	m->value = strdup(az->value);
	m->issuer = strdup(az->issuer);
	m->provider = strdup(o->job->provider);
	m->wildcard = az->record_wildcard;
	m->variant = az->variant;
	az->record_msg = m;
	order_ref(o);
	log_debug("job %lld: publishing %s through %s", (long long)o->job->id, az->fqdn, o->job->provider);
	publish_ensure(eng->publisher, &az->record_wait, acct, az->fqdn, az->value, record_deadline(az, acct),
	    on_record, az);
}

/* ---- key, finalize, wait, download ---- */

static void
order_poll_fire(void *arg)
{
	struct order *o = arg;

	if (!order_ended(o) && !order_expired(o))
		order_send(o, NULL, REQ_ORDER_POLL, o->url, NULL, NULL, GATE_NONE);
	order_unref(o);
}

/* Acts on an order object returned by finalize or a poll. */
static void
order_advance(struct order *o, const struct http_req *req)
{
	json_t *doc = acme_json(req);
	const char *status = doc ? json_string_value(json_object_get(doc, "status")) : NULL;

	if (status == NULL) {
		order_refetch(o, NULL, REQ_ORDER_POLL, o->url, NULL, GATE_NONE, "an order answer without a status");
	} else if (strcmp(status, "ready") == 0 && o->finalize_lost && o->finalizes < 3) {
		/* the CA never took the finalize whose answer was an error: send it again */
		o->finalize_lost = false;
		if (order_enter(o, ORDER_FINALIZE))
			order_finalize_send(o);
	} else if (strcmp(status, "valid") == 0) {
		if (set_url(o, &o->cert_url, doc, "certificate") != 0)
			goto out;
		if (o->cert_url == NULL)
			order_fail(o, "certfleet:protocol", "valid order lacks the certificate URL");
		else
			order_download(o);
	} else if (strcmp(status, "processing") == 0 || strcmp(status, "ready") == 0) {
		if (order_enter(o, ORDER_WAIT_VALID))
			timer_arm(o, &o->timer, poll_delay(o, req, o->polls++), order_poll_fire, o);
	} else {
		json_t *e = json_object_get(doc, "error");
		const char *d = json_string_value(json_object_get(e, "detail"));
		order_fail(o, json_string_value(json_object_get(e, "type")) ?: "certfleet:order-invalid",
		    d ? d : "order became invalid");
	}
out:
	json_decref(doc);
}

static void
on_order_poll(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->owner;

	if (req->status != 200) {
		order_fail_response(o, "polling the order", req);
		return;
	}
	order_advance(o, req);
}

/* Refusals of the CSR itself: fetching the order cannot mend them. */
static bool
finalize_refused(const char *type)
{
	static const char *const final[] = {
		"urn:ietf:params:acme:error:badCSR", "urn:ietf:params:acme:error:badPublicKey",
		"urn:ietf:params:acme:error:rejectedIdentifier", "urn:ietf:params:acme:error:caa",
		"urn:ietf:params:acme:error:unsupportedIdentifier",
	};

	return in_list(type, final, sizeof(final) / sizeof(final[0]));
}

static void
on_finalize(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->owner;
	char *type = NULL, *detail = NULL;

	if (req->status == 200) {
		order_advance(o, req);
		return;
	}
	acme_problem(req, &type, &detail);
	if (finalize_refused(type)) {
		order_fail_response(o, "finalize", req);
	} else {
		/*
		 * The answer was lost, or the CA took a repeated finalize as "orderNotReady" because it
		 * had taken the first: the order's own state decides (valid: download; processing: wait;
		 * ready: finalize again; invalid: fail with its error).
		 */
		log_debug("job %lld: finalize answered %s: %s; fetching the order", (long long)o->job->id, type, detail);
		o->finalize_lost = true;
		if (order_enter(o, ORDER_WAIT_VALID))
			order_send(o, NULL, REQ_ORDER_POLL, o->url, NULL, NULL, GATE_NONE);
	}
	free(type);
	free(detail);
}

/* Sends finalize with the stored key's CSR (again, when the CA did not take the first). */
static void
order_finalize_send(struct order *o)
{
	o->finalizes++;
	order_send(o, NULL, REQ_FINALIZE, o->finalize_url, o->finalize_payload, NULL, GATE_NONE);
}

/*
 * The writer's word on the order's key (the stored step of its message): finalize goes now, or
 * never when the key could not be stored.
 */
static void
on_key_stored(void *arg)
{
	struct order *o = arg;

	o->eng->key_acks_pending--;
	if (!order_ended(o) && !order_expired(o)) {
		if (!o->key_ack.stored)
			order_fail(o, "certfleet:store", "the order's key could not be stored, so finalize was not sent");
		else if (order_enter(o, ORDER_FINALIZE))
			order_finalize_send(o);
	}
	order_unref(o);
}

/*
 * Builds the CSR for the order's new key and hands the key to the writer with the order. finalize
 * goes only once the key is stored: a crash in between would leave the CA issuing a certificate
 * whose key is lost, and the retry would need another (Let's Encrypt allows only 5 certificates
 * for the same names a week). So a message that cannot be made fails the order instead.
 */
static void
order_finalize_with_key(struct order *o)
{
	char *csr = NULL, *payload = NULL;
	struct outmsg *m = NULL;
	cf_err err;

	if ((csr = csr_b64url(o->cert_key, (const char *const *)o->job->names, o->job->nnames, &err)) == NULL) {
		order_fail(o, "certfleet:csr", err.msg);
		return;
	}
	if (o->cert_key_pem == NULL && (o->cert_key_pem = key_to_pem(o->cert_key, &err)) == NULL) {
		order_fail(o, "certfleet:key", err.msg);
		goto out;
	}
	if (asprintf(&payload, "{\"csr\":\"%s\"}", csr) < 0) {
		payload = NULL;
		goto oom;
	}
	if ((m = outmsg_new(OUT_ORDER, o->job->id)) == NULL || (m->order_url = strdup(o->url)) == NULL ||
	    (m->state = strdup("finalizing")) == NULL || (m->key_pem_order = strdup(o->cert_key_pem)) == NULL)
		goto oom;
	if (!order_enter(o, ORDER_STORE_KEY))
		goto out;
	o->finalize_payload = payload;
	payload = NULL;
	o->key_ack.loop = o->eng->loop;
	o->key_ack.task.fn = on_key_stored;
	o->key_ack.task.arg = o;
	o->key_ack.task.owned = false;
	m->ack = &o->key_ack;
	order_ref(o);
	o->eng->key_acks_pending++;
	post(o, m);
	m = NULL;
	goto out;
oom:
	order_fail(o, "certfleet:internal", "out of memory storing the order's key; finalize was not sent");
out:
	outmsg_free(m);
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

	if (!order_enter(o, ORDER_KEY))
		return;
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

/* Hands the chain of ci to the writer (ci gives up its PEMs) and ends the order as issued. */
static void
order_issued(struct order *o, struct cert_issued *ci)
{
	struct outmsg *m = NULL;
	char *key_pem = NULL;
	cf_err err;

	key_pem = o->cert_key_pem ? strdup(o->cert_key_pem) : key_to_pem(o->cert_key, &err);
	m = outmsg_new(OUT_ISSUED, o->job->id);
	if (key_pem == NULL || m == NULL) {
		order_fail(o, "certfleet:internal", key_pem ? "out of memory" : err.msg);
		goto out;
	}
	m->order_url = strdup(o->url);
	m->leaf_pem = ci->leaf_pem;
	m->chain_pem = ci->chain_pem;
	m->key_pem = key_pem;
	m->serial = strdup(ci->info.serial);
	m->issuer = strdup(ci->info.issuer);
	m->not_before = ci->info.not_before;
	m->not_after = ci->info.not_after;
	ci->leaf_pem = ci->chain_pem = key_pem = NULL;
	/* the durability tests' worst moment: the order is valid at the CA, its result not stored */
	CF_FAULT("after-valid");
	post(o, m); /* the writer stores the order's valid state with the result, in one transaction */
	m = NULL;
	log_job(CF_LOG_DEBUG, &(struct cf_log_job){ .job_id = o->job->id, .certificate_id = o->job->certificate_id,
		.names = o->job->names, .nnames = o->job->nnames }, "job %lld (%s): issued serial %s",
	    (long long)o->job->id, o->job->names[0], ci->info.serial);
	order_end(o, ORDER_ISSUED, JOB_ISSUED);
out:
	outmsg_free(m);
	cf_secret_free(key_pem);
}

/*
 * Tells the writer whether the account's CA offers alternate chains, as this download showed,
 * when this engine has not said so yet or said otherwise (enqueue reads it for --preferred-chain).
 */
static void
order_report_alternates(struct order *o, bool offered)
{
	struct engine *eng = o->eng;
	struct outmsg *m;

	if (eng->alt_reported == (int)offered && eng->alt_account == o->job->account_id)
		return;
	if ((m = outmsg_new(OUT_ACCOUNT, o->job->id)) == NULL)
		return; /* a hint only: the next download tries again */
	m->offers_alternates = offered;
	eng->alt_reported = offered;
	eng->alt_account = o->job->account_id;
	post(o, m);
}

/* True when the topmost certificate of the PEM chain was issued by the job's preferred chain. */
static bool
chain_preferred(const struct order *o, const char *pem, char *top, size_t toplen)
{
	cf_err err;

	if (cert_chain_top_issuer_cn(pem, top, toplen, &err) != 0) {
		log_debug("job %lld: %s", (long long)o->job->id, err.msg);
		snprintf(top, toplen, "?");
		return false;
	}
	return strcmp(top, o->job->preferred_chain) == 0;
}

/*
 * Fetches the next alternate chain (POST-as-GET); when none is left, none matched the preferred
 * chain: the default is stored, and the job's events say so.
 */
static void
order_next_alternate(struct order *o)
{
	char qpref[4 * 256 + 8], qtop[4 * 256 + 8];

	while (o->alt_next < o->nalt) {
		const char *url = o->alt_urls[o->alt_next++];
		if (ca_url_ok(o->eng, url)) {
			order_send(o, NULL, REQ_ALTERNATE, url, NULL, "application/pem-certificate-chain", GATE_NONE);
			return;
		}
		log_debug("job %lld: an alternate chain's link is not an https URL; skipped", (long long)o->job->id);
	}
	cf_quote(qpref, sizeof(qpref), o->job->preferred_chain, strlen(o->job->preferred_chain), 256);
	cf_quote(qtop, sizeof(qtop), o->dflt_top, strlen(o->dflt_top), 256);
	log_info("job %lld (%s): no chain the CA offers (the default and %zu alternate%s) is issued by %s; "
	    "storing the default, issued by %s", (long long)o->job->id, o->job->names[0], o->nalt,
	    o->nalt == 1 ? "" : "s", qpref, qtop);
	post_event(o, "chain", "no chain the CA offers (the default and %zu alternate%s) is issued by \"%s\"; "
	    "stored the default, issued by \"%s\"", o->nalt, o->nalt == 1 ? "" : "s", o->job->preferred_chain,
	    o->dflt_top);
	order_issued(o, &o->dflt);
}

/*
 * An alternate chain: stored when it is the same certificate and its topmost certificate was
 * issued by the preferred chain; else the next one is looked at (a failed fetch too: the default
 * is in hand).
 */
static void
on_alternate(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->owner;
	struct cert_issued ci = { 0 };
	const char *pem = req->body.data ? req->body.data : "";
	char top[256];
	cf_err err;

	if (req->status == 200 && cert_issued_parse(pem, o->cert_key, NULL, &ci, &err) == 0 &&
	    strcmp(ci.info.serial, o->dflt.info.serial) == 0 && chain_preferred(o, pem, top, sizeof(top))) {
		post_event(o, "chain", "stored the alternate chain %s, whose topmost certificate is issued by \"%s\"",
		    call->url, top);
		order_issued(o, &ci);
	} else {
		log_debug("job %lld: alternate chain %s: HTTP %ld, not the preferred one", (long long)o->job->id,
		    call->url, req->status);
		order_next_alternate(o);
	}
	cert_issued_clear(&ci);
}

static void
on_certificate(struct acme_call *call, struct http_req *req)
{
	struct order *o = call->owner;
	struct cert_issued ci = { 0 };
	const char *pem = req->body.data ? req->body.data : "";
	cf_err err;

	if (req->status != 200) {
		order_fail_response(o, "downloading the certificate", req);
		return;
	}
	if (cert_issued_parse(pem, o->cert_key, &o->eng->known_chain, &ci, &err) != 0) {
		/* a truncated or garbled download is fetched again; the stored order keeps it within reach */
		order_refetch(o, NULL, REQ_CERTIFICATE, o->cert_url, "application/pem-certificate-chain", GATE_NONE,
		    err.msg);
		goto out;
	}
	order_report_alternates(o, req->nlink_alternates > 0);
	/* a job without a preferred chain, or whose default is the one, makes no other request */
	if (o->job->preferred_chain == NULL || chain_preferred(o, pem, o->dflt_top, sizeof(o->dflt_top))) {
		order_issued(o, &ci);
		goto out;
	}
	o->dflt = ci;
	memset(&ci, 0, sizeof(ci));
	o->alt_urls = req->link_alternates; /* taken from the answer, which is freed after this */
	o->nalt = req->nlink_alternates;
	req->link_alternates = NULL;
	req->nlink_alternates = 0;
	order_next_alternate(o);
out:
	cert_issued_clear(&ci);
}

static void
order_download(struct order *o)
{
	if (order_enter(o, ORDER_DOWNLOAD))
		order_send(o, NULL, REQ_CERTIFICATE, o->cert_url, NULL, "application/pem-certificate-chain", GATE_NONE);
}

/* ---- the engine ---- */

struct engine *
engine_new(struct loop *loop, const struct acme_config *cfg, engine_job_done_fn done, void *done_arg, cf_err *err)
{
	struct engine *eng = calloc(1, sizeof(*eng));
	struct acme_client_config cc = { 0 };

	if (eng == NULL) {
		cf_errf(err, "engine_new: out of memory");
		return NULL;
	}
	eng->loop = loop;
	eng->cfg = *cfg;
	eng->done = done;
	eng->done_arg = done_arg;
	eng->seed = (unsigned)cf_mono_ms() ^ (unsigned)(uintptr_t)eng;
	eng->alt_reported = -1;
	loop_timer_init(&eng->val_timer);
	eng->cfg.directory_url = cf_strdup(cfg->directory_url); /* for the scheme of the CA's URLs */
	eng->cfg.key_pem = NULL;       /* parsed by the client, not kept */
	eng->cfg.account_url = cf_strdup(cfg->account_url);
	eng->cfg.issuer = cf_strdup(cfg->issuer);
	if (eng->cfg.order_timeout_ms <= 0)
		eng->cfg.order_timeout_ms = 10 * 60 * 1000;
	cc.directory_url = cfg->directory_url;
	cc.account_url = cfg->account_url;
	cc.key_pem = cfg->key_pem;
	cc.http = cfg->http;
	cc.transport = cfg->transport;
	cc.gate = cfg->gate;
	cc.limits = cfg->limits;
	cc.unsaved = cfg->unsaved;
	cc.directory_done = engine_directory_done;
	cc.directory_arg = eng;
	if ((eng->client = acme_client_new(loop, &cc, err)) == NULL || (eng->keys = key_generator_new(err)) == NULL)
		goto fail;
	if (eng->cfg.account_url == NULL || eng->cfg.directory_url == NULL ||
	    (eng->publisher = publisher_new(loop, cfg->pool)) == NULL) {
		cf_errf(err, "engine_new: out of memory");
		goto fail;
	}
	return eng;
fail:
	engine_free(eng);
	return NULL;
}

void
engine_free(struct engine *eng)
{
	if (eng == NULL)
		return;
	if (eng->val_timer.idx >= 0)
		loop_timer_cancel(eng->loop, &eng->val_timer);
	publisher_free(eng->publisher);
	acme_client_free(eng->client);
	key_generator_free(eng->keys);
	free(eng->known_chain);
	free((char *)eng->cfg.directory_url);
	free((char *)eng->cfg.account_url);
	free((char *)eng->cfg.issuer);
	free(eng);
}

bool
engine_wake(struct engine *eng, int max)
{
	return acme_client_wake(eng->client, max);
}

long
engine_orders(const struct engine *eng)
{
	return eng->orders;
}

bool
engine_idle(const struct engine *eng)
{
	return eng->orders == 0 && eng->keygen_pending == 0 && eng->key_acks_pending == 0 &&
	    publisher_pending(eng->publisher) == 0;
}
