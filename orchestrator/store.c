/*
 * store.c - worker reports into PostgreSQL. store_batch turns a batch into at most seven
 * statements whose rows come from unnest() over array parameters; store_one writes a single
 * message with the same SQL and one-element arrays. The statements that end a job or put it back
 * in the queue are the queue's (queue.c); this file builds their array parameters.
 * Private keys are sealed (keyring.h) before they go into a parameter: no statement carries one
 * in clear, and an order's key is cleared in the statement that stores its result.
 */
#include "store.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certid.h"
#include "db.h"
#include "keyring.h"
#include "pgarray.h"
#include "queue.h"

static const char *const sql_orders =
    "INSERT INTO orders (job_id, account_id, order_url, state, finalize_url, certificate_url, key_pem) "
    "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], "
    "$7::text[]) "
    "ON CONFLICT (order_url) DO UPDATE SET state = EXCLUDED.state, "
    "finalize_url = coalesce(EXCLUDED.finalize_url, orders.finalize_url), "
    "certificate_url = coalesce(EXCLUDED.certificate_url, orders.certificate_url), "
    "key_pem = coalesce(EXCLUDED.key_pem, orders.key_pem), updated_at = now()";

static const char *const sql_records =
    "INSERT INTO records (account_id, fqdn, value, issuer, wildcard, variant, provider, written_at, "
    "verified_at, confirmed_at) "
    "SELECT a, f, v, i, w, var, p, CASE WHEN wr THEN now() END, CASE WHEN ve THEN now() END, "
    "CASE WHEN co THEN now() END "
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::smallint[], $7::text[], "
    "$8::bool[], $9::bool[], $10::bool[]) AS u(a, f, v, i, w, var, p, wr, ve, co) "
    "ON CONFLICT (account_id, fqdn, value) DO UPDATE SET "
    "written_at = coalesce(EXCLUDED.written_at, records.written_at), "
    "verified_at = coalesce(EXCLUDED.verified_at, records.verified_at), "
    "confirmed_at = coalesce(EXCLUDED.confirmed_at, records.confirmed_at)";

/*
 * The partial unique index on current results is checked per statement: retire first. A result
 * reported twice (a late report of a run that lost its lease, whose order another run resumed and
 * stored; a journal entry stored once already) is the same certificate: its row stays, current,
 * and no second row is written.
 */
static const char *const sql_retire =
    "UPDATE results r SET is_current = false FROM unnest($1::bigint[], $2::text[]) AS u(c, s) "
    "WHERE r.certificate_id = u.c AND r.is_current AND r.serial <> u.s";

/*
 * The order's copy of the key is cleared with the result that keeps it (the CTE sees the orders
 * upsert). The results of the certificate that the retire statement left not current and not yet
 * replaced are marked replaced by the new one; they stay. Each result gets its ARI CertID.
 * Each result written sends NOTIFY certfleet_issued "<certificate id> <result id>" (deploy.h),
 * delivered when the batch's transaction commits; a result reported twice, not written again,
 * sends none. The data-modifying CTEs run whether or not the SELECT reads them.
 */
static const char *const sql_results =
    "WITH ins AS (INSERT INTO results (job_id, certificate_id, order_url, leaf_pem, chain_pem, key_pem, serial, "
    "not_before, not_after, issuer, ari_cert_id) "
    "SELECT j, c, o, l, ch, k, s, to_timestamp(nb), to_timestamp(na), i, cid FROM unnest($1::bigint[], "
    "$2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], "
    "$10::text[], $11::text[]) AS u(j, c, o, l, ch, k, s, nb, na, i, cid) "
    "WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.certificate_id = u.c AND r.serial = u.s) "
    "RETURNING id, certificate_id, order_url), "
    "rep AS (UPDATE results old SET replaced_by = ins.id, replaced_at = now() FROM ins "
    "WHERE old.certificate_id = ins.certificate_id AND NOT old.is_current AND old.replaced_by IS NULL), "
    "keys AS (UPDATE orders SET key_pem = NULL WHERE order_url IN (SELECT order_url FROM ins) "
    "AND key_pem IS NOT NULL) "
    "SELECT pg_notify('certfleet_issued', certificate_id || ' ' || id) FROM ins";

/*
 * Whether the account's CA offers alternate chains, as its downloads show (enqueue refuses a
 * preferred chain when it offers none). An engine reports it only when it first learns it or it
 * changes, so this runs in few batches, and writes the row only when it changes.
 */
static const char *const sql_accounts =
    "UPDATE accounts a SET offers_alternates = u.alt FROM unnest($1::bigint[], $2::bool[]) AS u(id, alt) "
    "WHERE a.id = u.id AND a.offers_alternates IS DISTINCT FROM u.alt";

static const char *const sql_events =
    "INSERT INTO events (job_id, kind, detail) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])";

/* The columns of every statement, as array literals being built. */
struct cols {
	struct pgarray o_job, o_acct, o_url, o_state, o_fin, o_cert, o_key;
	struct pgarray r_acct, r_fqdn, r_value, r_issuer, r_wild, r_var, r_prov, r_written, r_verified, r_confirmed;
	struct pgarray s_job, s_cert, s_url, s_leaf, s_chain, s_key, s_serial, s_nb, s_na, s_issuer, s_certid;
	struct pgarray f_job, f_type, f_detail, f_retry, f_delay;
	struct pgarray a_acct, a_alt;
	struct pgarray e_job, e_kind, e_detail;
	size_t norders, nrecords, nresults, nfailed, naccounts, nevents;
};

static void
cols_free(struct cols *c)
{
	struct pgarray *a = &c->o_job, *end = &c->e_detail;

	for (; a <= end; a++)
		pgarray_free(a);
}

/* A string-keyed open-addressing map to merge reports on the same order or record. */
struct merge_map {
	char **keys;
	size_t *idx;
	size_t cap;
};

static uint64_t
merge_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* The slot index stored for key, or stores next (and returns it) when key is new; -1 on OOM. */
static long
merge_slot(struct merge_map *m, const char *key, size_t next)
{
	size_t i;

	if (m->keys == NULL) {
		m->keys = calloc(m->cap, sizeof(*m->keys));
		m->idx = calloc(m->cap, sizeof(*m->idx));
		if (m->keys == NULL || m->idx == NULL)
			return -1;
	}
	for (i = merge_hash(key) % m->cap; m->keys[i]; i = (i + 1) % m->cap)
		if (strcmp(m->keys[i], key) == 0)
			return (long)m->idx[i];
	if ((m->keys[i] = strdup(key)) == NULL)
		return -1;
	m->idx[i] = next;
	return (long)next;
}

static void
merge_free(struct merge_map *m)
{
	for (size_t i = 0; m->keys && i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->idx);
}

struct order_row {
	const struct outmsg *first;
	const char *state;        /* the newest state reported */
	const char *finalize_url; /* the newest non-NULL URLs reported */
	const char *certificate_url;
	const char *key_pem;      /* the key sent with finalize, when reported */
};

struct record_row {
	const struct outmsg *first;
	bool written;
	bool verified;
	bool confirmed;
};

/* plain (NULL stays NULL) sealed at place into a; -1 with err. */
static int
add_sealed(struct pgarray *a, const char *place, const char *plain, cf_err *err)
{
	char *sealed = NULL;

	if (plain != NULL && (sealed = keyring_seal(keyring_installed(), place, plain, err)) == NULL)
		return -1;
	pgarray_add(a, sealed);
	free(sealed);
	return 0;
}

static void
add_event(struct cols *c, int64_t job, const char *kind, const char *detail)
{
	pgarray_add_i64(&c->e_job, job);
	pgarray_add(&c->e_kind, kind);
	pgarray_add(&c->e_detail, detail);
	c->nevents++;
}

/*
 * The orders and records of a batch, one row per order URL and per record (account, name,
 * value): one ON CONFLICT statement may not touch a row twice, so several reports on one order
 * (or one record) are merged into one row: the newest state, the URLs and flags seen.
 */
struct merged {
	struct order_row *orders;
	struct record_row *records;
	struct merge_map om, rm;  /* order URL -> orders[i], record key -> records[i] */
	size_t no, nr;            /* rows used */
};

/* Room for n reports; -1 on OOM (merged_free still frees what was taken). */
static int
merged_init(struct merged *g, size_t n)
{
	memset(g, 0, sizeof(*g));
	g->om.cap = g->rm.cap = 2 * n + 1;
	g->orders = calloc(n + 1, sizeof(*g->orders));
	g->records = calloc(n + 1, sizeof(*g->records));
	return g->orders && g->records ? 0 : -1;
}

static void
merged_free(struct merged *g)
{
	merge_free(&g->om);
	merge_free(&g->rm);
	free(g->orders);
	free(g->records);
}

/* The row of m's order, started with m when the order is new; NULL on OOM. */
static struct order_row *
merged_order(struct merged *g, const struct outmsg *m)
{
	long i = merge_slot(&g->om, m->order_url, g->no);

	if (i < 0)
		return NULL;
	if ((size_t)i == g->no)
		g->orders[g->no++].first = m;
	return &g->orders[i];
}

/* OUT_ORDER: the newest state, and the URLs and key whenever they are reported. */
static int
fill_order(struct merged *g, const struct outmsg *m)
{
	struct order_row *row = merged_order(g, m);

	if (row == NULL)
		return -1;
	row->state = m->state;
	if (m->finalize_url)
		row->finalize_url = m->finalize_url;
	if (m->certificate_url)
		row->certificate_url = m->certificate_url;
	if (m->key_pem_order)
		row->key_pem = m->key_pem_order;
	return 0;
}

/* OUT_RECORD_WRITTEN and OUT_RECORD_VERIFIED: the flags of the record's row. */
static int
fill_record(struct merged *g, const struct outmsg *m)
{
	char *key;
	long i;

	if (asprintf(&key, "%lld %s %s", (long long)m->account_id, m->fqdn, m->value) < 0)
		return -1;
	i = merge_slot(&g->rm, key, g->nr);
	free(key);
	if (i < 0)
		return -1;
	if ((size_t)i == g->nr)
		g->records[g->nr++].first = m;
	if (m->kind == OUT_RECORD_WRITTEN) {
		g->records[i].written = true;
		g->records[i].confirmed |= m->confirmed;
	} else {
		g->records[i].verified = true;
	}
	return 0;
}

/*
 * OUT_ISSUED: a result row, and the order's row says valid. The result says the order is valid
 * in the same transaction: a crash can never leave a valid order without its result (the next
 * attempt downloads the certificate of any order that is not failed, never ordering it again)
 */
static int
fill_issued(struct cols *c, struct merged *g, const struct outmsg *m, cf_err *err)
{
	struct order_row *row = merged_order(g, m);

	if (row == NULL) {
		cf_errf(err, "storing reports: out of memory");
		return -1;
	}
	if (add_sealed(&c->s_key, SEAL_AT_RESULTS, m->key_pem, err) != 0)
		return -1;
	row->state = "valid";
	pgarray_add_i64(&c->s_job, m->job_id);
	pgarray_add_i64(&c->s_cert, m->certificate_id);
	pgarray_add(&c->s_url, m->order_url);
	pgarray_add(&c->s_leaf, m->leaf_pem);
	pgarray_add(&c->s_chain, m->chain_pem);
	pgarray_add(&c->s_serial, m->serial);
	pgarray_add_i64(&c->s_nb, m->not_before);
	pgarray_add_i64(&c->s_na, m->not_after);
	pgarray_add(&c->s_issuer, m->issuer);
	/* a leaf without a usable authority key identifier gets none: renew falls back to its lifetime */
	char certid[CERTID_MAX];
	cf_err cerr;
	pgarray_add(&c->s_certid, certid_from_pem(m->leaf_pem, certid, &cerr) == 0 ? certid : NULL);
	c->nresults++;
	return 0;
}

/* OUT_FAILED: a row of the queue's failure statement. */
static void
fill_failed(struct cols *c, const struct outmsg *m)
{
	pgarray_add_i64(&c->f_job, m->job_id);
	pgarray_add(&c->f_type, m->problem_type);
	pgarray_add(&c->f_detail, m->detail);
	pgarray_add_bool(&c->f_retry, m->retry);
	pgarray_add_i64(&c->f_delay, m->retry_in_ms);
	c->nfailed++;
}

/* The merged order rows into the orders statement's columns. */
static int
cols_add_orders(struct cols *c, const struct merged *g, cf_err *err)
{
	for (size_t i = 0; i < g->no; i++) {
		if (add_sealed(&c->o_key, SEAL_AT_ORDERS, g->orders[i].key_pem, err) != 0)
			return -1;
		pgarray_add_i64(&c->o_job, g->orders[i].first->job_id);
		pgarray_add_i64(&c->o_acct, g->orders[i].first->account_id);
		pgarray_add(&c->o_url, g->orders[i].first->order_url);
		pgarray_add(&c->o_state, g->orders[i].state);
		pgarray_add(&c->o_fin, g->orders[i].finalize_url);
		pgarray_add(&c->o_cert, g->orders[i].certificate_url);
	}
	c->norders = g->no;
	return 0;
}

/* The merged record rows into the records statement's columns. */
static void
cols_add_records(struct cols *c, const struct merged *g)
{
	for (size_t i = 0; i < g->nr; i++) {
		const struct outmsg *m = g->records[i].first;
		pgarray_add_i64(&c->r_acct, m->account_id);
		pgarray_add(&c->r_fqdn, m->fqdn);
		pgarray_add(&c->r_value, m->value);
		pgarray_add(&c->r_issuer, m->issuer);
		pgarray_add_bool(&c->r_wild, m->wildcard);
		pgarray_add_i64(&c->r_var, m->variant);
		pgarray_add(&c->r_prov, m->provider);
		pgarray_add_bool(&c->r_written, g->records[i].written);
		pgarray_add_bool(&c->r_verified, g->records[i].verified);
		pgarray_add_bool(&c->r_confirmed, g->records[i].confirmed);
	}
	c->nrecords = g->nr;
}

/* One report into the columns, or into the merged rows; -1 with err. */
static int
fill_one(struct cols *c, struct merged *g, const struct outmsg *m, cf_err *err)
{
	int rc = 0;

	switch (m->kind) {
	case OUT_ORDER:
		rc = fill_order(g, m);
		break;
	case OUT_RECORD_WRITTEN:
	case OUT_RECORD_VERIFIED:
		rc = fill_record(g, m);
		break;
	case OUT_ISSUED:
		return fill_issued(c, g, m, err);
	case OUT_FAILED:
		fill_failed(c, m);
		break;
	case OUT_EVENT:
		add_event(c, m->job_id, m->event_kind, m->detail);
		break;
	case OUT_ACCOUNT:
		pgarray_add_i64(&c->a_acct, m->account_id);
		pgarray_add_bool(&c->a_alt, m->offers_alternates);
		c->naccounts++;
		break;
	}
	if (rc != 0)
		cf_errf(err, "storing reports: out of memory");
	return rc;
}

/* Fills the columns from list, merging the reports on one order or one record (struct merged). */
static int
cols_fill(struct cols *c, const struct outmsg *list, cf_err *err)
{
	struct merged g;
	size_t n = 0;
	int rc = -1;

	for (const struct outmsg *m = list; m; m = m->next)
		n++;
	if (merged_init(&g, n) != 0) {
		cf_errf(err, "storing reports: out of memory");
		goto out;
	}
	for (const struct outmsg *m = list; m; m = m->next)
		if (fill_one(c, &g, m, err) != 0)
			goto out;
	if (cols_add_orders(c, &g, err) != 0)
		goto out;
	cols_add_records(c, &g);
	rc = 0;
out:
	merged_free(&g);
	return rc;
}

/* Finishes the literals of cols[0..n) into params. */
static int
finish_cols(const char *what, struct pgarray *cols, int n, const char **params, cf_err *err)
{
	for (int i = 0; i < n; i++) {
		params[i] = pgarray_finish(&cols[i]);
		if (params[i] == NULL) {
			cf_errf(err, "%s: out of memory", what);
			return -1;
		}
	}
	return 0;
}

/* Runs sql with the finished literals of cols[0..n) as parameters. */
static int
run_cols(PGconn *conn, const char *what, const char *sql, struct pgarray *cols, int n, cf_err *err)
{
	const char *params[11];

	if (finish_cols(what, cols, n, params, err) != 0)
		return -1;
	return db_run_prepared(conn, what, sql, n, params, err);
}

/* The jobs of list that were issued end (the queue's statement). */
static int
mark_issued(PGconn *conn, const struct outmsg *list, cf_err *err)
{
	struct pgarray jobs = { 0 };
	const char *ids;
	int rc = -1;

	for (const struct outmsg *m = list; m; m = m->next)
		if (m->kind == OUT_ISSUED)
			pgarray_add_i64(&jobs, m->job_id);
	if (finish_cols("marking jobs issued", &jobs, 1, &ids, err) == 0)
		rc = queue_complete_issued(conn, ids, err);
	pgarray_free(&jobs);
	return rc;
}

/* The failed attempts go back to the queue or end (the queue's statement). */
static int
mark_failed(PGconn *conn, struct cols *c, cf_err *err)
{
	const char *p[5];
	struct queue_failures f;

	if (finish_cols("marking jobs failed", &c->f_job, 5, p, err) != 0)
		return -1;
	f = (struct queue_failures){ .job_ids = p[0], .problem_types = p[1], .details = p[2], .retry = p[3],
		.delay_ms = p[4] };
	return queue_complete_failed(conn, &f, err);
}

/* The statements a batch takes: one per kind of row, three for results. */
static int
cols_statements(const struct cols *c)
{
	return (c->norders > 0) + (c->nrecords > 0) + 3 * (c->nresults > 0) + (c->nfailed > 0) + (c->naccounts > 0) +
	    (c->nevents > 0);
}

/*
 * The events go before the failures, which write their own event: a job's failure is the last
 * thing a batch says of it. A batch of a single statement needs no BEGIN and COMMIT.
 */
static int
store_list(PGconn *conn, const struct outmsg *list, cf_err *err)
{
	struct cols c;
	bool tx = false;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	if (cols_fill(&c, list, err) != 0)
		goto out;
	if (cols_statements(&c) > 1) {
		if (db_run(conn, "BEGIN", "BEGIN", 0, NULL, err) != 0)
			goto out;
		tx = true;
	}
	if (c.norders && run_cols(conn, "storing orders", sql_orders, &c.o_job, 7, err) != 0)
		goto out;
	if (c.nrecords && run_cols(conn, "storing records", sql_records, &c.r_acct, 10, err) != 0)
		goto out;
	if (c.nresults) {
		struct pgarray certs[2];
		memset(certs, 0, sizeof(certs));
		for (const struct outmsg *m = list; m; m = m->next) {
			if (m->kind == OUT_ISSUED) {
				pgarray_add_i64(&certs[0], m->certificate_id);
				pgarray_add(&certs[1], m->serial);
			}
		}
		int r = run_cols(conn, "retiring previous results", sql_retire, certs, 2, err);
		pgarray_free(&certs[0]);
		pgarray_free(&certs[1]);
		if (r != 0 || run_cols(conn, "storing results", sql_results, &c.s_job, 11, err) != 0)
			goto out;
		if (mark_issued(conn, list, err) != 0)
			goto out;
	}
	if (c.naccounts && run_cols(conn, "storing what the CA offers", sql_accounts, &c.a_acct, 2, err) != 0)
		goto out;
	if (c.nevents && run_cols(conn, "storing events", sql_events, &c.e_job, 3, err) != 0)
		goto out;
	if (c.nfailed && mark_failed(conn, &c, err) != 0)
		goto out;
	if (tx && db_run(conn, "COMMIT", "COMMIT", 0, NULL, err) != 0)
		goto out;
	tx = false;
	rc = 0;
out:
	if (tx)
		PQclear(PQexec(conn, "ROLLBACK"));
	cols_free(&c);
	return rc;
}

int
store_batch(PGconn *conn, const struct outmsg *list, cf_err *err)
{
	return store_list(conn, list, err);
}

int
store_one(PGconn *conn, const struct outmsg *m, cf_err *err)
{
	struct outmsg copy = *m;

	copy.next = NULL;
	return store_list(conn, &copy, err);
}
