/*
 * writer.c - the writer thread: drains the outbox, commits each batch (store.c), and tells each
 * message's poster that it is stored. Refusals that may pass are waited out; a message refused for
 * good is isolated, and goes to the journal when it carries a certificate, a key or an order URL.
 */
#include "writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "store.h"

#define WRITER_WAIT_FIRST_MS 100
#define WRITER_WAIT_MAX_MS 5000
#define WRITER_WARN_EVERY_MS 10000
/*
 * Group commit: a batch waits until its oldest message is this old (or WRITER_BATCH_MAX are
 * there). Each order step that waits for a commit (its URL, its key) waits this much longer, and
 * a busy run makes a fraction of the transactions: one per commit instead of one per order. An
 * order takes seconds at the CA, so 50 ms is little on its latency, while every statement of a
 * batch costs PostgreSQL the same whatever its size: 2,000 certificates took 0.06 transactions
 * each and 0.35-0.40 ms of PostgreSQL's CPU at 50 ms, 0.2 and 0.58-0.69 ms at 10 ms, at the
 * same throughput.
 */
#define WRITER_LINGER_MS 50
#define WRITER_BATCH_MAX 2000

/* A run of refusals: how long it lasts, when it was last reported. */
struct refusal {
	int64_t since_ms;          /* 0 = PostgreSQL takes writes */
	int64_t warned_ms;
	int64_t wait_ms;
};

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Waits before the next try, saying now and then that PostgreSQL still refuses. */
static void
refusal_wait(struct writer *w, struct refusal *r, PGconn *c, const char *why, long waiting)
{
	int64_t now = cf_mono_ms();

	if (r->since_ms == 0) {
		r->since_ms = now;
		r->wait_ms = WRITER_WAIT_FIRST_MS;
	}
	if (r->warned_ms == 0 || now - r->warned_ms >= WRITER_WARN_EVERY_MS) {
		const char *code = db_last_sqlstate(c);
		log_warn("writer: PostgreSQL does not take writes%s%s%s for %.1f s: %s; %ld message%s kept in "
		    "memory, retrying", code[0] ? " (SQLSTATE " : "", code, code[0] ? ")" : "",
		    (now - r->since_ms) / 1000.0, why, waiting, waiting == 1 ? "" : "s");
		r->warned_ms = now;
	}
	w->waits++;
	sleep_ms(r->wait_ms);
	r->wait_ms = r->wait_ms * 2 > WRITER_WAIT_MAX_MS ? WRITER_WAIT_MAX_MS : r->wait_ms * 2;
}

/* A commit went through: the end of a run of refusals, if there was one. */
static void
refusal_over(struct writer *w, struct refusal *r)
{
	if (r->since_ms == 0)
		return;
	int64_t lasted = cf_mono_ms() - r->since_ms;
	log_warn("writer: PostgreSQL takes writes again after %.1f s", lasted / 1000.0);
	if (lasted > w->longest_wait_ms)
		w->longest_wait_ms = lasted;
	memset(r, 0, sizeof(*r));
}

/* A working connection, or NULL (err set) when there is none to be had now. */
static PGconn *
connection(struct writer *w, PGconn **c, cf_err *err)
{
	if (*c && PQstatus(*c) == CONNECTION_OK)
		return *c;
	if (*c) {
		PQreset(*c);
		if (PQstatus(*c) == CONNECTION_OK)
			return *c;
		PQfinish(*c);
	}
	*c = db_connect(w->db_url, err);
	return *c;
}

static long
list_len(const struct outmsg *m)
{
	long n = 0;

	for (; m; m = m->next)
		n++;
	return n;
}

static long
list_issued(const struct outmsg *m)
{
	long n = 0;

	for (; m; m = m->next)
		n += m->kind == OUT_ISSUED;
	return n;
}

static void commit_one(struct writer *w, PGconn **c, struct refusal *r, struct outmsg *m, bool drop_on_refusal);

/*
 * PostgreSQL refused m for good. A message that matters goes to the journal; a certificate's job
 * then fails with the reason, so that nobody waits for it and it is not ordered again before the
 * journal is replayed. Anything else is dropped, with an error.
 */
static void
refuse(struct writer *w, PGconn **c, struct refusal *r, struct outmsg *m, const char *why)
{
	struct cf_log_job lj = { .job_id = m->job_id, .certificate_id = m->certificate_id,
		.problem_type = "certfleet:store", .detail = why };
	cf_err err;

	if (!journal_wants(m)) {
		log_error("writer: PostgreSQL refused a report of job %lld for good, dropping it: %s",
		    (long long)m->job_id, why);
		w->dropped++;
		return;
	}
	if (journal_append(w->journal, m, why, &err) != 0) {
		log_job(CF_LOG_ERROR, &lj, "writer: job %lld: PostgreSQL refused its %s (%s) and the journal too: %s",
		    (long long)m->job_id, m->kind == OUT_ISSUED ? "certificate" : "order", why, err.msg);
		w->lost++;
		return;
	}
	w->journalled++;
	log_job(CF_LOG_ERROR, &lj, "writer: job %lld: PostgreSQL refused its %s for good (%s); it is kept in the journal, and "
	    "the next run stores it", (long long)m->job_id, m->kind == OUT_ISSUED ? "certificate" : "order", why);
	if (m->kind == OUT_ISSUED) {
		struct outmsg *f = outmsg_new(OUT_FAILED, m->job_id);
		if (f == NULL || (f->problem_type = strdup("certfleet:store")) == NULL ||
		    asprintf(&f->detail, "the certificate (serial %s) could not be stored: %s; it is in the local "
		    "journal", m->serial ? m->serial : "?", why) < 0) {
			if (f)
				f->detail = NULL;
			log_error("writer: job %lld: out of memory failing the job", (long long)m->job_id);
		} else {
			f->certificate_id = m->certificate_id;
			f->account_id = m->account_id;
			commit_one(w, c, r, f, true);
		}
		outmsg_free(f);
	}
}

/* Commits m alone, waiting out refusals that may pass; runs its stored step. */
static void
commit_one(struct writer *w, PGconn **c, struct refusal *r, struct outmsg *m, bool drop_on_refusal)
{
	cf_err err;

	for (;;) {
		if (connection(w, c, &err) != NULL && store_one(*c, m, &err) == 0) {
			refusal_over(w, r);
			w->committed++;
			w->issued += m->kind == OUT_ISSUED;
			outmsg_stored(m, true);
			return;
		}
		if (db_failure_transient(*c)) {
			refusal_wait(w, r, *c, err.msg, 1);
			continue;
		}
		break;
	}
	if (drop_on_refusal) {
		log_error("writer: PostgreSQL refused a report of job %lld for good, dropping it: %s",
		    (long long)m->job_id, err.msg);
		w->dropped++;
	} else {
		refuse(w, c, r, m, err.msg);
	}
	outmsg_stored(m, false);
}

/* Commits list in one transaction, or, when PostgreSQL refuses it for good, message by message. */
static void
commit_list(struct writer *w, PGconn **c, struct refusal *r, struct outmsg *list)
{
	long n = list_len(list);
	cf_err err;

	for (;;) {
		if (connection(w, c, &err) != NULL && store_batch(*c, list, &err) == 0) {
			refusal_over(w, r);
			w->committed += n;
			w->issued += list_issued(list);
			w->batches++;
			outbox_stored(list, true);
			return;
		}
		if (!db_failure_transient(*c))
			break;
		refusal_wait(w, r, *c, err.msg, n + outbox_waiting(w->outbox));
	}
	log_error("writer: a batch of %ld was refused: %s; writing its messages one by one", n, err.msg);
	for (struct outmsg *m = list; m; m = m->next)
		commit_one(w, c, r, m, false);
}

static void
free_list(struct outmsg *m)
{
	while (m) {
		struct outmsg *n = m->next;
		outmsg_free(m);
		m = n;
	}
}

/* Journals the messages of list that matter; the count. Under w->lock. */
static long
journal_list(struct writer *w, const struct outmsg *list, const char *why)
{
	long n = 0;
	cf_err err;

	for (const struct outmsg *m = list; m; m = m->next) {
		if (!journal_wants(m))
			continue;
		if (journal_append(w->journal, m, why, &err) == 0)
			n++;
		else
			log_error("writer: %s", err.msg);
	}
	return n;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	struct refusal r = { 0 };
	PGconn *c = NULL;
	bool closed = false;

	while (!closed) {
		struct outmsg *list = outbox_take_batch(w->outbox, 200, WRITER_LINGER_MS, WRITER_BATCH_MAX, &closed);
		bool abandoned;
		if (list == NULL)
			continue;
		pthread_mutex_lock(&w->lock);
		abandoned = w->abandoned;
		if (abandoned)
			w->journalled += journal_list(w, list, "the run stopped at once before this was stored");
		else
			w->busy = list;
		pthread_mutex_unlock(&w->lock);
		if (!abandoned)
			commit_list(w, &c, &r, list);
		pthread_mutex_lock(&w->lock);
		w->busy = NULL;
		pthread_mutex_unlock(&w->lock);
		free_list(list);
		outbox_batch_done(w->outbox);
	}
	PQfinish(c);
	return NULL;
}

int
writer_start(struct writer *w, const char *db_url, struct outbox *ob, struct journal *journal, cf_err *err)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->db_url = db_url;
	w->outbox = ob;
	w->journal = journal;
	pthread_mutex_init(&w->lock, NULL);
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	if (rc != 0) {
		pthread_mutex_destroy(&w->lock);
		cf_errf(err, "pthread_create writer: %s", strerror(rc));
		return -1;
	}
	return 0;
}

void
writer_join(struct writer *w)
{
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
}

long
writer_abandon(struct writer *w)
{
	const char *why = "the run stopped at once before this was stored";
	bool closed;
	long n;

	pthread_mutex_lock(&w->lock);
	w->abandoned = true;
	n = journal_list(w, w->busy, why);
	/* what the writer has not taken yet; it journals what it takes from now on itself */
	struct outmsg *rest = outbox_take_all(w->outbox, 0, &closed);
	n += journal_list(w, rest, why);
	pthread_mutex_unlock(&w->lock);
	free_list(rest);
	w->journalled += n;
	return n;
}
