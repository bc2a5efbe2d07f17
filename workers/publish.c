/*
 * publish.c - records through providers: a queue per (account, zone) that sends what has
 * gathered as one call when the previous call of that zone is back, then confirmation of the
 * zone's written records together at the authoritative servers, with a doubling interval up to
 * the deadline.
 */
#include "publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsauth.h"
#include "dnsname.h"
#include "log.h"

#define GATHER_MS 20 /* a zone's first record waits this long for company before its call goes */
#define RECORD_BUCKETS 4096
#define CHECK_BATCH_MAX 256 /* records confirmed by one pool job: a few hundred questions per socket */

/*
 * A zone's next call is built only when the account's rate limit gives it a turn: records that
 * arrive while the call waits for its turn go out in it, so a slow limit means bigger calls,
 * not more of them. The turn pays for the call's first request (provider_call.turn_held).
 */

struct pub;

struct zone_queue {
	struct publisher *p;
	struct provider_account *acct;
	char *zone;
	struct pub *head;          /* waiting for a call */
	struct pub *tail;
	size_t npending;
	bool busy;                 /* a call is out */
	bool gathering;            /* the gather timer is armed */
	bool waiting;              /* waiting for a turn of the account's limit */
	struct limiter_wait wait;
	struct provider_call call;
	struct pub **in_call;      /* the records of the call that is out */
	struct loop_timer timer;
	struct pub *confirm_head;  /* written, waiting to be confirmed together (confirm_timer) */
	struct pub *confirm_tail;
	size_t nconfirm;
	bool confirm_armed;
	struct loop_timer confirm_timer;
	struct zone_queue *next;
};

struct pub {
	struct publisher *p;
	struct provider_account *acct;
	char *fqdn;
	char *value;
	char zone[DNSNAME_MAX];
	int64_t deadline_ms;
	int checks;
	enum dnsauth_result last;
	char why[512];
	char error[1024];
	bool failed;
	publish_done_fn done;
	void *arg;
	struct loop_timer timer;
	struct pub *next;
};

/* A record this publisher wrote or is writing: later requests for it wait for it or skip it. */
enum record_op_state {
	REC_WRITING,
	REC_DONE,
	REC_FAILED,
};

struct record_op {
	char *key;                 /* "fqdn value" */
	enum record_op_state state;
	struct publish_wait *waiters;
	struct publish_wait *writer; /* the request whose write is under way */
	struct record_op *next;    /* hash chain */
};

struct publisher {
	struct loop *loop;
	struct blockpool *pool;
	struct zone_queue *zones;  /* a short list: one entry per zone in use on this loop */
	long pending;
	struct record_op **records; /* RECORD_BUCKETS chains, made on first use */
};

struct publisher *
publisher_new(struct loop *loop, struct blockpool *pool)
{
	struct publisher *p = calloc(1, sizeof(*p));

	if (p) {
		p->loop = loop;
		p->pool = pool;
	}
	return p;
}

void
publisher_free(struct publisher *p)
{
	if (p == NULL)
		return;
	while (p->zones) {
		struct zone_queue *z = p->zones;
		p->zones = z->next;
		loop_timer_cancel(p->loop, &z->timer);
		loop_timer_cancel(p->loop, &z->wait.timer);
		loop_timer_cancel(p->loop, &z->confirm_timer);
		free(z->in_call);
		free(z->zone);
		free(z);
	}
	for (size_t i = 0; p->records && i < RECORD_BUCKETS; i++) {
		struct record_op *r = p->records[i];
		while (r) {
			struct record_op *n = r->next;
			free(r->key);
			free(r);
			r = n;
		}
	}
	free(p->records);
	free(p);
}

long
publisher_pending(const struct publisher *p)
{
	return p->pending;
}

static void
pub_finish(struct pub *pub, const char *type, const char *detail, int64_t retry_after_ms)
{
	struct publish_result r = {
		.problem_type = type,
		.detail = detail,
		.retry_after_ms = retry_after_ms,
		.confirmed = type == NULL && pub->acct->verify && pub->acct->verify->enabled,
	};

	pub->p->pending--;
	loop_timer_cancel(pub->p->loop, &pub->timer);
	pub->done(pub->arg, &r);
	free(pub->fqdn);
	free(pub->value);
	free(pub);
}

/* ---- confirmation ---- */

/*
 * Records of one zone that wait for confirmation, checked together by one pool job
 * (dnsauth_check_many): one socket per server instead of one per record and server. The records
 * still absent are checked again together after the batch's interval; each keeps its deadline.
 */
struct check_batch {
	struct publisher *p;
	const struct dnsauth_config *verify; /* the account's: the records share account and zone */
	int64_t interval_ms;       /* the wait before the next check, doubling up to max_interval */
	size_t n;
	struct pub **pubs;         /* n records, each pub->why receiving its reason */
	const char **fqdns;        /* the job's arguments, from pubs */
	const char **values;
	char **whys;
	enum dnsauth_result *results;
	struct loop_timer timer;
};

static void
check_batch_free(struct check_batch *b)
{
	if (b == NULL)
		return;
	free(b->pubs);
	free(b->fqdns);
	free(b->values);
	free(b->whys);
	free(b->results);
	free(b);
}

/* Room for cap records, none in it yet. */
static struct check_batch *
check_batch_new(struct publisher *p, const struct dnsauth_config *verify, size_t cap)
{
	struct check_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->p = p;
	b->verify = verify;
	b->interval_ms = verify->interval_ms;
	loop_timer_init(&b->timer);
	if ((b->pubs = calloc(cap, sizeof(*b->pubs))) == NULL || (b->fqdns = calloc(cap, sizeof(*b->fqdns))) == NULL ||
	    (b->values = calloc(cap, sizeof(*b->values))) == NULL || (b->whys = calloc(cap, sizeof(*b->whys))) == NULL ||
	    (b->results = calloc(cap, sizeof(*b->results))) == NULL) {
		check_batch_free(b);
		return NULL;
	}
	return b;
}

/* Ends every record of b with problem type and detail, and b with them. */
static void
check_batch_fail(struct check_batch *b, const char *type, const char *detail)
{
	for (size_t i = 0; i < b->n; i++)
		pub_finish(b->pubs[i], type, detail, -1);
	loop_timer_cancel(b->p->loop, &b->timer);
	check_batch_free(b);
}

/* On a pool thread. */
static void
check_work(void *arg)
{
	struct check_batch *b = arg;

	dnsauth_check_many(b->verify, b->n, b->fqdns, b->values, b->results, b->whys, sizeof(b->pubs[0]->why));
}

static void check_back(void *arg);

static void
check_submit(struct check_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		b->fqdns[i] = b->pubs[i]->fqdn;
		b->values[i] = b->pubs[i]->value;
		b->whys[i] = b->pubs[i]->why;
	}
	if (blockpool_submit(b->p->pool, b->p->loop, check_work, check_back, b) != 0)
		check_batch_fail(b, "certfleet:internal", "out of memory queueing a record check");
}

static void
check_fire(void *arg)
{
	check_submit(arg);
}

/*
 * A confirmed record ends from a timer of its own: the orders of a batch then move on one by one
 * between the loop's other events (a limiter's turns among them), not all inside check_back.
 */
static void
confirmed_fire(void *arg)
{
	pub_finish(arg, NULL, NULL, -1);
}

static void
check_back(void *arg)
{
	struct check_batch *b = arg;
	int64_t now = cf_mono_ms();
	size_t keep = 0;
	char msg[1200];

	for (size_t i = 0; i < b->n; i++) {
		struct pub *pub = b->pubs[i];
		pub->checks++;
		pub->last = b->results[i];
		if (pub->last == DNSAUTH_PRESENT) {
			log_debug("record %s confirmed at the authoritative servers after %d checks", pub->fqdn, pub->checks);
			if (loop_timer_arm(b->p->loop, &pub->timer, 0, confirmed_fire, pub) != 0)
				pub_finish(pub, NULL, NULL, -1);
		} else if (now + b->interval_ms > pub->deadline_ms) {
			snprintf(msg, sizeof(msg), "record %s (provider %s) not visible at the authoritative servers after "
			    "%d checks, giving up at the deadline: %s", pub->fqdn, pub->acct->name, pub->checks, pub->why);
			pub_finish(pub, "certfleet:record-not-visible", msg, -1);
		} else {
			log_debug("record %s not confirmed yet (%s); again in %lld ms", pub->fqdn, pub->why,
			    (long long)b->interval_ms);
			b->pubs[keep++] = pub;
		}
	}
	b->n = keep;
	if (keep == 0) {
		check_batch_free(b);
		return;
	}
	if (loop_timer_arm(b->p->loop, &b->timer, b->interval_ms, check_fire, b) != 0) {
		check_batch_fail(b, "certfleet:internal", "out of memory arming a record check");
		return;
	}
	b->interval_ms *= 2;
	if (b->interval_ms > b->verify->max_interval_ms)
		b->interval_ms = b->verify->max_interval_ms;
}

/* Sends the records waiting for their first check in z as jobs of at most CHECK_BATCH_MAX. */
static void
confirm_flush(void *arg)
{
	struct zone_queue *z = arg;

	if (z->confirm_armed)
		loop_timer_cancel(z->p->loop, &z->confirm_timer);
	z->confirm_armed = false;
	while (z->confirm_head) {
		size_t k = z->nconfirm < CHECK_BATCH_MAX ? z->nconfirm : CHECK_BATCH_MAX;
		struct check_batch *b = check_batch_new(z->p, z->acct->verify, k);
		for (size_t i = 0; i < k; i++) {
			struct pub *pub = z->confirm_head;
			z->confirm_head = pub->next;
			pub->next = NULL;
			if (b)
				b->pubs[b->n++] = pub;
			else
				pub_finish(pub, "certfleet:internal", "out of memory queueing a record check", -1);
		}
		z->nconfirm -= k;
		if (b)
			check_submit(b);
	}
	z->confirm_tail = NULL;
}

/*
 * The n records of a call of z that came back written: done at once when the account does not
 * confirm records; otherwise they gather with the zone's other new records (providers that
 * take one record per call make one call per record) for GATHER_MS, or until CHECK_BATCH_MAX
 * are waiting, and are confirmed together.
 */
static void
pub_published(struct zone_queue *z, struct pub **pubs, size_t n)
{
	const struct dnsauth_config *v = z->acct->verify;

	if (v == NULL || !v->enabled) {
		for (size_t i = 0; i < n; i++)
			pub_finish(pubs[i], NULL, NULL, -1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		pubs[i]->next = NULL;
		if (z->confirm_tail)
			z->confirm_tail->next = pubs[i];
		else
			z->confirm_head = pubs[i];
		z->confirm_tail = pubs[i];
		z->nconfirm++;
	}
	if (z->nconfirm >= CHECK_BATCH_MAX)
		confirm_flush(z);
	else if (!z->confirm_armed) {
		if (loop_timer_arm(z->p->loop, &z->confirm_timer, GATHER_MS, confirm_flush, z) == 0)
			z->confirm_armed = true;
		else
			confirm_flush(z);
	}
}

/* ---- zone queues and calls ---- */

static void zone_flush(void *arg);

static void
zone_ask_turn(void *arg)
{
	struct zone_queue *z = arg;

	z->gathering = false;
	z->waiting = true;
	limiter_acquire(z->acct->limit, &z->wait, z->p->loop, zone_flush, z);
}

static void
zone_call_done(struct provider_call *call)
{
	struct zone_queue *z = call->arg;
	size_t n = call->nrec;

	for (size_t i = 0; i < n; i++) {
		free(call->recs[i].fqdn);
		free(call->recs[i].value);
		if (call->failed)
			pub_finish(z->in_call[i], call->retryable ? "certfleet:provider" : "certfleet:provider-rejected",
			    call->error, call->retry_after_ms);
	}
	if (!call->failed)
		pub_published(z, z->in_call, n);
	free(call->recs);
	call->recs = NULL;
	z->busy = false;
	if (z->head)
		zone_ask_turn(z);
}

static void
zone_flush(void *arg)
{
	struct zone_queue *z = arg;
	struct provider_call *call = &z->call;
	size_t n = z->npending < z->acct->batch_max ? z->npending : z->acct->batch_max;

	z->waiting = false;
	if (z->busy || n == 0) /* cannot happen: a turn is asked only for pending records */
		return;
	free(z->in_call);
	memset(call, 0, sizeof(*call));
	z->in_call = calloc(n, sizeof(*z->in_call));
	call->recs = calloc(n, sizeof(*call->recs));
	if (z->in_call == NULL || call->recs == NULL) {
		free(call->recs);
		call->recs = NULL;
		while (z->head) {
			struct pub *pub = z->head;
			z->head = pub->next;
			pub_finish(pub, "certfleet:internal", "out of memory building a provider call", -1);
		}
		z->tail = NULL;
		z->npending = 0;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct pub *pub = z->head;
		z->head = pub->next;
		z->in_call[i] = pub;
		call->recs[i].fqdn = strdup(pub->fqdn);
		call->recs[i].value = strdup(pub->value);
	}
	if (z->head == NULL)
		z->tail = NULL;
	z->npending -= n;
	call->acct = z->acct;
	call->loop = z->p->loop;
	call->action = PROVIDER_ENSURE;
	call->zone = z->zone;
	call->nrec = n;
	call->done = zone_call_done;
	call->arg = z;
	call->turn_held = z->acct->limit != NULL;
	z->busy = true;
	log_debug("provider %s: publishing %zu records in zone %s", z->acct->name, n, z->zone);
	provider_call_start(call);
}

static void
zone_enqueue(struct pub *pub)
{
	struct publisher *p = pub->p;
	struct zone_queue *z;

	for (z = p->zones; z; z = z->next)
		if (z->acct == pub->acct && strcmp(z->zone, pub->zone) == 0)
			break;
	if (z == NULL) {
		if ((z = calloc(1, sizeof(*z))) == NULL || (z->zone = strdup(pub->zone)) == NULL) {
			free(z);
			pub_finish(pub, "certfleet:internal", "out of memory queueing a record", -1);
			return;
		}
		z->p = p;
		z->acct = pub->acct;
		loop_timer_init(&z->timer);
		loop_timer_init(&z->confirm_timer);
		z->next = p->zones;
		p->zones = z;
	}
	pub->next = NULL;
	if (z->tail)
		z->tail->next = pub;
	else
		z->head = pub;
	z->tail = pub;
	z->npending++;
	if (z->busy || z->gathering || z->waiting)
		return;
	if (z->npending >= z->acct->batch_max || loop_timer_arm(p->loop, &z->timer, GATHER_MS, zone_ask_turn, z) != 0)
		zone_ask_turn(z);
	else
		z->gathering = true;
}

/* ---- zone discovery, for accounts without configured zones ---- */

static void
zone_work(void *arg)
{
	struct pub *pub = arg;
	cf_err err;

	if (dnsauth_zone(pub->acct->verify, pub->fqdn, pub->zone, sizeof(pub->zone), &err) != 0) {
		pub->failed = true;
		snprintf(pub->error, sizeof(pub->error), "provider %s: no configured zone holds %s, and finding "
		    "it in DNS failed: %s", pub->acct->name, pub->fqdn, err.msg);
	}
}

static void
zone_back(void *arg)
{
	struct pub *pub = arg;

	if (pub->failed)
		pub_finish(pub, "certfleet:provider", pub->error, -1);
	else
		zone_enqueue(pub);
}

static void
start_fire(void *arg)
{
	struct pub *pub = arg;
	const char *zone = provider_zone_of(pub->acct, pub->fqdn);

	if (zone || pub->acct->ops->zoneless) {
		snprintf(pub->zone, sizeof(pub->zone), "%s", zone ? zone : "");
		zone_enqueue(pub);
	} else if (blockpool_submit(pub->p->pool, pub->p->loop, zone_work, zone_back, pub) != 0) {
		pub_finish(pub, "certfleet:internal", "out of memory queueing a zone lookup", -1);
	}
}

void
publish_start(struct publisher *p, struct provider_account *acct, const char *fqdn, const char *value,
    int64_t deadline_ms, publish_done_fn done, void *arg)
{
	struct pub *pub = calloc(1, sizeof(*pub));
	struct publish_result oom = { "certfleet:internal", "out of memory publishing a record", -1, false, false };

	if (pub == NULL || (pub->fqdn = strdup(fqdn)) == NULL || (pub->value = strdup(value)) == NULL) {
		if (pub)
			free(pub->fqdn);
		free(pub);
		done(arg, &oom);
		return;
	}
	pub->p = p;
	pub->acct = acct;
	pub->deadline_ms = deadline_ms;
	pub->done = done;
	pub->arg = arg;
	loop_timer_init(&pub->timer);
	p->pending++;
	/* from the loop, so that done never runs inside this call */
	if (loop_timer_arm(p->loop, &pub->timer, 0, start_fire, pub) != 0)
		pub_finish(pub, "certfleet:internal", "out of memory starting a record", -1);
}

/* ---- one write per record ---- */

static unsigned
record_hash(const char *fqdn, const char *value)
{
	unsigned h = 2166136261u; /* FNV-1a over "fqdn value" */

	for (const char *s = fqdn; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	h = (h ^ ' ') * 16777619u;
	for (const char *s = value; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % RECORD_BUCKETS;
}

/* The record's entry, or NULL; *bucket gets its chain (NULL when out of memory). */
static struct record_op *
record_find(struct publisher *p, const char *fqdn, const char *value, struct record_op ***bucket)
{
	size_t flen = strlen(fqdn);

	*bucket = NULL;
	if (p->records == NULL && (p->records = calloc(RECORD_BUCKETS, sizeof(*p->records))) == NULL)
		return NULL;
	*bucket = &p->records[record_hash(fqdn, value)];
	for (struct record_op *r = **bucket; r; r = r->next)
		if (strncmp(r->key, fqdn, flen) == 0 && r->key[flen] == ' ' && strcmp(r->key + flen + 1, value) == 0)
			return r;
	return NULL;
}

bool
publish_known(struct publisher *p, const char *fqdn, const char *value)
{
	struct record_op **bucket, *op = record_find(p, fqdn, value, &bucket);

	return op && op->state == REC_DONE;
}

static void
on_record_done(void *arg, const struct publish_result *res)
{
	struct record_op *op = arg;
	struct publish_wait *w = op->waiters, *writer = op->writer;

	op->state = res->problem_type ? REC_FAILED : REC_DONE;
	op->waiters = op->writer = NULL;
	while (w) {
		struct publish_wait *next = w->next;
		struct publish_result r = *res;
		r.wrote = res->problem_type == NULL && w == writer;
		w->next = NULL;
		w->done(w->arg, &r);
		w = next;
	}
}

void
publish_ensure(struct publisher *p, struct publish_wait *w, struct provider_account *acct, const char *fqdn,
    const char *value, int64_t deadline_ms, publish_done_fn done, void *arg)
{
	struct publish_result oom = { "certfleet:internal", "out of memory publishing a record", -1, false, false };
	struct record_op **bucket, *op = record_find(p, fqdn, value, &bucket);

	w->done = done;
	w->arg = arg;
	w->next = NULL;
	if (bucket == NULL) {
		done(arg, &oom);
		return;
	}
	if (op && op->state == REC_WRITING) {
		w->next = op->waiters;
		op->waiters = w;
		return;
	}
	if (op == NULL) {
		if ((op = calloc(1, sizeof(*op))) == NULL || asprintf(&op->key, "%s %s", fqdn, value) < 0) {
			free(op);
			done(arg, &oom);
			return;
		}
		op->next = *bucket;
		*bucket = op;
	}
	/* a record done before is written again only when asked: publish_known spares that */
	op->state = REC_WRITING;
	op->waiters = op->writer = w;
	publish_start(p, acct, fqdn, value, deadline_ms, on_record_done, op);
}
