/* writer.c - commits the workers' outbox to PostgreSQL in batches, one transaction per batch. */
#include "writer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

#define WRITER_RECONNECT_MAX_S 30

static const char *const sql_order =
    "INSERT INTO orders (job_id, account_id, order_url, state, finalize_url, certificate_url) "
    "VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (order_url) DO UPDATE SET state = EXCLUDED.state, "
    "finalize_url = coalesce(EXCLUDED.finalize_url, orders.finalize_url), "
    "certificate_url = coalesce(EXCLUDED.certificate_url, orders.certificate_url), updated_at = now()";

static const char *const sql_record_written =
    "INSERT INTO records (account_id, fqdn, value, issuer, wildcard, variant, provider, written_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, now()) "
    "ON CONFLICT (account_id, fqdn, value) DO UPDATE SET written_at = now(), provider = EXCLUDED.provider";

static const char *const sql_record_verified =
    "INSERT INTO records (account_id, fqdn, value, issuer, wildcard, variant, provider, verified_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, now()) "
    "ON CONFLICT (account_id, fqdn, value) DO UPDATE SET verified_at = now()";

/* Two statements: the partial unique index on current results is checked per statement. */
static const char *const sql_retire =
    "UPDATE results SET is_current = false WHERE certificate_id = $1 AND is_current";

static const char *const sql_issued =
    "WITH res AS (INSERT INTO results (certificate_id, job_id, order_url, leaf_pem, chain_pem, key_pem, "
    "serial, not_before, not_after, issuer) VALUES ($2, $1, $3, $4, $5, $6, $7, to_timestamp($8), "
    "to_timestamp($9), $10) RETURNING id), "
    "ev AS (INSERT INTO events (job_id, kind, detail) VALUES ($1, 'issued', 'serial ' || $7)) "
    "UPDATE jobs SET state = 'issued', finished_at = now(), updated_at = now(), lease_until = NULL, "
    "last_problem_type = NULL, last_error = NULL WHERE id = $1";

static const char *const sql_failed =
    "WITH ev AS (INSERT INTO events (job_id, kind, detail) VALUES ($1, 'failed', $2 || ': ' || $3)) "
    "UPDATE jobs SET state = 'failed', finished_at = now(), updated_at = now(), lease_until = NULL, "
    "last_problem_type = $2, last_error = $3 WHERE id = $1";

static const char *const sql_event =
    "INSERT INTO events (job_id, kind, detail) VALUES ($1, $2, $3)";

/* Writes one message; 0 or -1 with err. */
static int
write_msg(PGconn *c, const struct outmsg *m, cf_err *err)
{
	char job[24], acct[24], cert[24], nb[24], na[24], var[8];
	const char *wild = m->wildcard ? "true" : "false";

	snprintf(job, sizeof(job), "%" PRId64, m->job_id);
	snprintf(acct, sizeof(acct), "%" PRId64, m->account_id);
	snprintf(cert, sizeof(cert), "%" PRId64, m->certificate_id);
	snprintf(nb, sizeof(nb), "%" PRId64, m->not_before);
	snprintf(na, sizeof(na), "%" PRId64, m->not_after);
	snprintf(var, sizeof(var), "%d", m->variant);
	switch (m->kind) {
	case OUT_ORDER: {
		const char *p[] = { job, acct, m->order_url, m->state, m->finalize_url, m->certificate_url };
		return db_run(c, "storing order", sql_order, 6, p, err);
	}
	case OUT_RECORD_WRITTEN:
	case OUT_RECORD_VERIFIED: {
		const char *p[] = { acct, m->fqdn, m->value, m->issuer, wild, var, m->provider };
		return db_run(c, "storing record",
		    m->kind == OUT_RECORD_WRITTEN ? sql_record_written : sql_record_verified, 7, p, err);
	}
	case OUT_ISSUED: {
		const char *p[] = { job, cert, m->order_url, m->leaf_pem, m->chain_pem, m->key_pem,
			m->serial, nb, na, m->issuer };
		const char *pr[] = { cert };
		if (db_run(c, "retiring the previous result", sql_retire, 1, pr, err) != 0)
			return -1;
		return db_run(c, "storing result", sql_issued, 10, p, err);
	}
	case OUT_FAILED: {
		const char *p[] = { job, m->problem_type, m->detail };
		return db_run(c, "storing failure", sql_failed, 3, p, err);
	}
	case OUT_EVENT: {
		const char *p[] = { job, m->event_kind, m->detail };
		return db_run(c, "storing event", sql_event, 3, p, err);
	}
	}
	cf_errf(err, "unknown outbox message kind %d", (int)m->kind);
	return -1;
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

/* Commits the whole list in one transaction; 0, or -1 (rolled back) with err. */
static int
write_batch(PGconn *c, const struct outmsg *list, cf_err *err)
{
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		return -1;
	for (const struct outmsg *m = list; m; m = m->next) {
		if (write_msg(c, m, err) != 0) {
			char job[64];
			snprintf(job, sizeof(job), " (job %" PRId64 ")", m->job_id);
			strncat(err->msg, job, sizeof(err->msg) - strlen(err->msg) - 1);
			PQclear(PQexec(c, "ROLLBACK"));
			return -1;
		}
	}
	if (db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0) {
		PQclear(PQexec(c, "ROLLBACK"));
		return -1;
	}
	return 0;
}

/* Returns a working connection, reconnecting with backoff until it gets one. */
static PGconn *
ensure_connected(struct writer *w, PGconn *c)
{
	int delay = 1;
	cf_err err;

	while (c == NULL || PQstatus(c) != CONNECTION_OK) {
		if (c) {
			PQreset(c);
			if (PQstatus(c) == CONNECTION_OK)
				break;
			PQfinish(c);
		}
		c = db_connect(w->db_url, &err);
		if (c)
			break;
		log_warn("writer: %s; retrying in %d s (results are kept in memory)", err.msg, delay);
		sleep((unsigned)delay);
		delay = delay * 2 > WRITER_RECONNECT_MAX_S ? WRITER_RECONNECT_MAX_S : delay * 2;
	}
	return c;
}

static long
list_len(const struct outmsg *m)
{
	long n = 0;

	for (; m; m = m->next)
		n++;
	return n;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	PGconn *c = NULL;
	bool closed = false;
	cf_err err;

	while (!closed) {
		struct outmsg *list = outbox_take_all(w->outbox, 200, &closed);
		if (list == NULL)
			continue;
		for (;;) {
			c = ensure_connected(w, c);
			if (write_batch(c, list, &err) == 0) {
				w->committed += list_len(list);
				w->batches++;
				break;
			}
			if (PQstatus(c) != CONNECTION_OK) {
				log_warn("writer: %s; reconnecting", err.msg);
				continue;
			}
			/* PostgreSQL refused something: write one by one so the rest still lands */
			log_error("writer: batch refused: %s; writing its messages one by one", err.msg);
			for (struct outmsg *m = list; m; m = m->next) {
				struct outmsg *next = m->next;
				m->next = NULL;
				for (;;) {
					c = ensure_connected(w, c);
					if (write_batch(c, m, &err) == 0) {
						w->committed++;
						break;
					}
					if (PQstatus(c) == CONNECTION_OK) {
						log_error("writer: dropped a message: %s", err.msg);
						w->dropped++;
						break;
					}
				}
				m->next = next;
			}
			break;
		}
		free_list(list);
	}
	PQfinish(c);
	return NULL;
}

int
writer_start(struct writer *w, const char *db_url, struct outbox *ob, cf_err *err)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->db_url = db_url;
	w->outbox = ob;
	rc = pthread_create(&w->thread, NULL, writer_main, w);
	if (rc != 0) {
		cf_errf(err, "pthread_create writer: %s", strerror(rc));
		return -1;
	}
	return 0;
}

void
writer_join(struct writer *w)
{
	pthread_join(w->thread, NULL);
}
