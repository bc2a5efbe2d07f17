/*
 * queue.c - the life of a job in PostgreSQL: every statement that moves one, from its enqueue
 * through its claim, the lease it runs under (heartbeat, rescue, release), to its end (issued, a
 * failed attempt that is retried or final, cancelled), and whether work remains for a run. Ready
 * jobs wait in job_queue; the claim is one statement with SKIP LOCKED; a lease belongs to a run
 * process (runners); unfinished_jobs lists each job from its enqueue to its end.
 *
 * Lock order: every statement locks a job's jobs row before its unfinished_jobs row (a statement
 * that deletes or updates the unfinished_jobs row reads the ids the jobs statement returned, so
 * that one runs first), so that two statements on the same job, a completion and a cancel say,
 * cannot deadlock. A statement that takes a job's job_queue row (the claim, cancel) takes it
 * before both. Enqueue only inserts rows that no other transaction sees before it commits.
 */
#include "queue.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dnsname.h"
#include "keyring.h"
#include "persist.h"
#include "pgarray.h"

/* The certificate, new (with its key type, ec-p256 when $3 is NULL) or as it is. */
static const char *const sql_upsert_cert =
    "WITH ins AS (INSERT INTO certificates (names, names_key, key_type, provider, profile, preferred_chain, "
    "account_id) VALUES ($1::text[], $2, coalesce($3, 'ec-p256'), $4, nullif($5, ''), nullif($6, ''), $7) "
    "ON CONFLICT (names_key) DO NOTHING RETURNING id) "
    "SELECT id, true AS new, false AS retired FROM ins UNION ALL "
    "SELECT id, false, retired_at IS NOT NULL FROM certificates WHERE names_key = $2 AND NOT EXISTS (SELECT 1 FROM ins)";

/*
 * The job, its unfinished_jobs row and its row in the ready queue, unless the certificate has a
 * job not finished yet: the unique certificate_id of unfinished_jobs decides, and the job's id is
 * drawn first for it (a conflict wastes one value of the sequence). A certificate queued for
 * another account (another CA) than its own moves to it with its new job; while a job of it is
 * unfinished, it stays where that job runs. Returns the new job, or the unfinished one (the
 * statement's snapshot does not see the row a inserted, so the second branch finds only an older
 * one).
 */
static const char *const sql_insert_job =
    "WITH a AS (INSERT INTO unfinished_jobs (job_id, certificate_id, account_id) "
    "SELECT nextval('jobs_id_seq'), $1, $2 WHERE NOT ($5::boolean AND EXISTS (SELECT 1 FROM results r "
    "WHERE r.certificate_id = $1 AND r.is_current AND r.revoked_at IS NULL)) "
    "ON CONFLICT (certificate_id) DO NOTHING RETURNING job_id), "
    "m AS (UPDATE certificates SET account_id = $2, updated_at = now() WHERE id = $1 "
    "AND account_id IS DISTINCT FROM $2 AND EXISTS (SELECT 1 FROM a)), "
    "j AS (INSERT INTO jobs (id, certificate_id, account_id, run_id, max_attempts) "
    "SELECT job_id, $1, $2, $3, $4 FROM a RETURNING id, account_id, priority, run_after), "
    "q AS (INSERT INTO job_queue (job_id, account_id, priority, run_after) SELECT * FROM j RETURNING job_id) "
    "SELECT job_id, true AS added FROM q UNION ALL "
    "SELECT job_id, false FROM unfinished_jobs WHERE certificate_id = $1 AND NOT EXISTS (SELECT 1 FROM q)";

/*
 * enqueue given a key type, provider, profile or preferred chain for a certificate already in the
 * fleet, or a certificate retired from it: what was given changes (profile or chain '' sets the
 * CA's default, NULL), and the certificate returns to the fleet; a job already queued or running
 * takes the change at its next claim. Only run when one was given or the certificate was retired,
 * so that a plain enqueue writes no certificate row. A new provider must publish the records
 * itself: the rows of the records the old one published for these names are dropped, so that the
 * next order writes them through the new one (the old provider's TXT records are left as they
 * are, for the operator to remove).
 */
static const char *const sql_update_prefs =
    "WITH u AS (UPDATE certificates SET profile = CASE WHEN $2::bool THEN nullif($3, '') ELSE profile END, "
    "preferred_chain = CASE WHEN $4::bool THEN nullif($5, '') ELSE preferred_chain END, "
    "key_type = coalesce($6, key_type), provider = coalesce($7, provider), retired_at = NULL, updated_at = now() "
    "WHERE id = $1 AND (($2::bool AND profile IS DISTINCT FROM nullif($3, '')) "
    "OR ($4::bool AND preferred_chain IS DISTINCT FROM nullif($5, '')) "
    "OR key_type <> coalesce($6, key_type) OR provider <> coalesce($7, provider) OR retired_at IS NOT NULL) "
    "RETURNING id, account_id, names, provider), "
    "d AS (DELETE FROM records r USING u WHERE r.account_id = u.account_id AND r.provider <> u.provider "
    "AND r.fqdn IN (SELECT '_validation-persist.' || regexp_replace(n, '^\\*\\.', '') FROM unnest(u.names) n)) "
    "SELECT id FROM u";

static const char *const sql_new_run = "INSERT INTO runs (label) VALUES ($1) RETURNING id";

/*
 * One statement claims a batch and returns, per job, what a worker needs: the names, the order of
 * an earlier attempt to resume (looked for only on a later attempt), whether the certificate was
 * issued before, and the records of its names known to be in place ("fqdn value" lines).
 * It claims only while the claimer's lease (queue_heartbeat) is live, so that no job runs under a
 * runner that a rescuer may have taken away.
 * The claimed rows leave job_queue (a delete writes no index entry; the rows are found again by
 * their ctid, which cannot change while the claim holds their lock) and the jobs rows change no
 * indexed column, so they can be updated in place. A job cancelled while it waited for a retry
 * is ended here instead of run. A queue row whose job is no longer ready (its process wrote a
 * result after the job was rescued) is dropped.
 * It is prepared, and PostgreSQL should settle on its generic plan rather than plan every claim
 * again (which cost as much as the claim itself). So the batch size is written into the text
 * (with LIMIT $n the generic plan looks costlier than any custom one, and is never chosen; the
 * sizes in use are the run's batch and, rarely, its free slots), and ids and each job's record
 * names are passed on as arrays, which the planner looks up by index whatever it guesses (a join
 * instead made the generic plan scan whole tables).
 * A certificate's record names are computed with string functions over its joined names rather
 * than with a subquery over unnest(), which cost about 2 us per job more: names hold no space,
 * and "*." can only open one (a wildcard, whose record is its base domain's). The computation is
 * a sub-SELECT of its own, so that it runs once per job even where the planner scans records
 * rather than its index (a fresh table without statistics): as a filter it ran once per record
 * read, and a claim of 500 took over a second.
 */
static const char sql_claim_fmt[] =
    "WITH c AS (SELECT ctid FROM job_queue WHERE account_id = $1 AND run_after <= now() "
    "AND EXISTS (SELECT 1 FROM runners WHERE owner = $2 AND lease_until > now()) "
    "ORDER BY priority DESC, run_after, job_id LIMIT %d FOR UPDATE SKIP LOCKED), "
    "q AS (DELETE FROM job_queue WHERE ctid = ANY (ARRAY(SELECT ctid FROM c)) RETURNING job_id), "
    "u AS (UPDATE jobs j SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'running' END, "
    "finished_at = CASE WHEN j.cancel_requested THEN now() END, "
    "attempts = j.attempts + CASE WHEN j.cancel_requested THEN 0 ELSE 1 END, locked_by = $2, updated_at = now() "
    "WHERE j.id = ANY (ARRAY(SELECT job_id FROM q)) AND j.state = 'ready' "
    "RETURNING j.id, j.state, j.certificate_id, j.attempts, j.max_attempts, j.replaces), "
    "e AS (INSERT INTO events (job_id, kind, detail) SELECT id, 'cancelled', 'cancelled by the operator' "
    "FROM u WHERE state = 'cancelled'), "
    "f AS (DELETE FROM unfinished_jobs WHERE EXISTS (SELECT 1 FROM u WHERE state = 'cancelled') "
    "AND job_id = ANY (ARRAY(SELECT id FROM u WHERE state = 'cancelled'))) "
    "SELECT u.id, u.certificate_id, u.attempts, u.max_attempts, u.replaces, array_to_string(ce.names, ' ') AS names, "
    "ce.key_type, ce.provider, ce.profile, ce.preferred_chain, "
    "CASE WHEN u.attempts > 1 THEN (SELECT o.order_url || ' ' || coalesce(o.key_pem, '') FROM orders o "
    "WHERE o.job_id = u.id AND o.state <> 'failed' ORDER BY o.id DESC LIMIT 1) END AS resume, "
    "EXISTS (SELECT 1 FROM results r WHERE r.certificate_id = u.certificate_id AND r.is_current) AS renewal, "
    "(SELECT string_agg(r.fqdn || ' ' || r.value, E'\\n') FROM records r WHERE r.account_id = $1 AND r.fqdn = "
    "ANY ((SELECT string_to_array(substr(replace(replace(' ' || array_to_string(ce.names, ' '), ' *.', ' '), ' ', "
    "' _validation-persist.'), 2), ' '))::text[])) AS known "
    "FROM u JOIN certificates ce ON ce.id = u.certificate_id WHERE u.state = 'running'";

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* '{a,b}' array literal and the sorted, comma-joined key; names hold only [a-z0-9.*-]. */
static int
cert_literals(const struct queue_cert *qc, cf_buf *arr, cf_buf *key)
{
	const char **sorted = malloc(qc->nnames * sizeof(*sorted));
	int rc = -1;

	if (sorted == NULL)
		return -1;
	memcpy(sorted, qc->names, qc->nnames * sizeof(*sorted));
	qsort(sorted, qc->nnames, sizeof(*sorted), cmp_str);
	cf_buf_reset(arr);
	cf_buf_reset(key);
	if (cf_buf_append(arr, "{", 1) != 0)
		goto out;
	for (size_t i = 0; i < qc->nnames; i++) {
		if (cf_buf_printf(arr, "%s\"%s\"", i ? "," : "", qc->names[i]) != 0 ||
		    cf_buf_printf(key, "%s%s", i ? "," : "", sorted[i]) != 0)
			goto out;
	}
	if (cf_buf_append(arr, "}", 1) != 0)
		goto out;
	rc = 0;
out:
	free(sorted);
	return rc;
}

int
queue_enqueue_in(PGconn *c, int64_t account_id, const struct queue_enqueue_opts *opts,
    struct queue_cert *certs, size_t ncerts, struct queue_enqueue_result *out, cf_err *err)
{
	cf_buf arr = { 0 }, key = { 0 };
	char run[24], maxa[16];
	PGresult *rres;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	snprintf(maxa, sizeof(maxa), "%d", opts->max_attempts > 0 ? opts->max_attempts : 5);
	const char *pr[] = { opts->label };
	if ((rres = db_exec(c, "enqueue: creating the run", sql_new_run, 1, pr, err)) == NULL)
		goto out;
	snprintf(run, sizeof(run), "%s", db_get(rres, 0, "id"));
	out->run_id = db_get_i64(rres, 0, "id");
	PQclear(rres);
	for (size_t i = 0; i < ncerts; i++) {
		struct queue_cert *qc = &certs[i];
		const char *kt = qc->key_type ? qc->key_type : opts->key_type;
		const char *pv = qc->provider ? qc->provider : opts->provider;
		const char *pf = qc->profile ? qc->profile : opts->profile;
		char acct[24], cert_id[24];
		PGresult *res;
		snprintf(acct, sizeof(acct), "%" PRId64, qc->account_id ? qc->account_id : account_id);
		if (cert_literals(qc, &arr, &key) != 0) {
			cf_errf(err, "enqueue line %d: out of memory", qc->line);
			goto out;
		}
		const char *p1[] = { arr.data, key.data, kt, pv ? pv : opts->default_provider, pf,
			opts->preferred_chain, acct };
		/*
		 * No row: another process inserted the name after this statement's snapshot was taken
		 * and committed before its insert (two enqueues of one fleet at once). A new statement
		 * sees that row.
		 */
		res = NULL;
		for (int tries = 0; tries < 3; tries++) {
			PQclear(res);
			res = db_exec_prepared(c, "enqueue: storing the certificate", sql_upsert_cert, 7, p1, err);
			if (res == NULL || PQntuples(res) == 1)
				break;
		}
		if (res == NULL)
			goto out;
		if (PQntuples(res) != 1) {
			cf_errf(err, "enqueue line %d: certificate %s is being changed by another process at the same "
			    "time; try again", qc->line, key.data);
			PQclear(res);
			goto out;
		}
		bool is_new = strcmp(db_get(res, 0, "new"), "t") == 0;
		bool retired = strcmp(db_get(res, 0, "retired"), "t") == 0;
		snprintf(cert_id, sizeof(cert_id), "%s", db_get(res, 0, "id"));
		qc->certificate_id = db_get_i64(res, 0, "id");
		out->certificates_new += is_new;
		PQclear(res);
		if (!is_new && (pf || opts->preferred_chain || kt || pv || retired)) {
			const char *pu[] = { cert_id, pf ? "t" : "f", pf, opts->preferred_chain ? "t" : "f",
				opts->preferred_chain, kt, pv };
			if ((res = db_exec_prepared(c, "enqueue: changing the certificate's settings",
			    sql_update_prefs, 7, pu, err)) == NULL)
				goto out;
			out->certificates_changed += PQntuples(res);
			PQclear(res);
		}
		const char *p2[] = { cert_id, acct, run, maxa, opts->missing_only ? "t" : "f" };
		res = db_exec_prepared(c, "enqueue: adding the job", sql_insert_job, 5, p2, err);
		if (res == NULL)
			goto out;
		qc->job_id = PQntuples(res) == 1 ? db_get_i64(res, 0, "job_id") : 0;
		if (PQntuples(res) == 1 && strcmp(db_get(res, 0, "added"), "t") == 0)
			out->jobs_added++;
		else if (PQntuples(res) == 1)
			out->jobs_already_queued++;
		else
			out->certificates_current++; /* missing_only, and a current certificate exists */
		PQclear(res);
	}
	/* wakes idle `certfleet run --follow` processes when the transaction commits */
	if (out->jobs_added > 0 && db_run(c, "enqueue: NOTIFY", "NOTIFY " QUEUE_CHANNEL, 0, NULL, err) != 0)
		goto out;
	rc = 0;
out:
	cf_buf_free(&arr);
	cf_buf_free(&key);
	return rc;
}

int
queue_enqueue(PGconn *c, int64_t account_id, const struct queue_enqueue_opts *opts,
    struct queue_cert *certs, size_t ncerts, struct queue_enqueue_result *out, cf_err *err)
{
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		return -1;
	if (queue_enqueue_in(c, account_id, opts, certs, ncerts, out, err) != 0 ||
	    db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0) {
		PQclear(PQexec(c, "ROLLBACK"));
		return -1;
	}
	return 0;
}

/* The latest job of each certificate, with its current result once issued. */
static const char *const sql_batch_state =
    "SELECT d.cert, j.id AS job_id, coalesce(j.state, CASE WHEN r.id IS NOT NULL THEN 'issued' END) AS state, "
    "r.serial, to_char(r.not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS not_after "
    "FROM unnest($1::bigint[]) WITH ORDINALITY AS d(cert, ord) "
    "LEFT JOIN LATERAL (SELECT id, state FROM jobs WHERE certificate_id = d.cert ORDER BY id DESC LIMIT 1) j ON true "
    "LEFT JOIN results r ON (j.id IS NULL OR j.state = 'issued') AND r.certificate_id = d.cert AND r.is_current "
    "ORDER BY d.ord";

int
queue_batch_state(PGconn *c, const int64_t *ids, size_t n, struct queue_job_state *out, cf_err *err)
{
	struct pgarray a = { 0 };
	PGresult *res = NULL;
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		pgarray_add_i64(&a, ids[i]);
	const char *p[] = { pgarray_finish(&a) };
	if (p[0] == NULL) {
		cf_errf(err, "waiting: out of memory for %zu certificates", n);
		goto out;
	}
	if ((res = db_exec(c, "waiting: reading the batch's jobs", sql_batch_state, 1, p, err)) == NULL)
		goto out;
	for (size_t i = 0; i < n && (int)i < PQntuples(res); i++) {
		const char *st = db_get(res, (int)i, "state"), *se = db_get(res, (int)i, "serial");
		const char *na = db_get(res, (int)i, "not_after");
		out[i].certificate_id = ids[i];
		out[i].job_id = db_get(res, (int)i, "job_id") ? db_get_i64(res, (int)i, "job_id") : 0;
		snprintf(out[i].state, sizeof(out[i].state), "%s", st ? st : "none");
		snprintf(out[i].serial, sizeof(out[i].serial), "%s", se ? se : "");
		snprintf(out[i].not_after, sizeof(out[i].not_after), "%s", na ? na : "");
	}
	rc = 0;
out:
	PQclear(res);
	pgarray_free(&a);
	return rc;
}

/*
 * Renewals: sql_insert_job for a whole batch in one statement, each job with its reason and the
 * CertID it replaces. The certificates are distinct, so the unique certificate_id of
 * unfinished_jobs meets each at most once; one whose job appeared since renew looked is skipped.
 */
static const char *const sql_insert_renewals =
    "WITH d AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS d(cert, acct, reason, replaces)), "
    "a AS (INSERT INTO unfinished_jobs (job_id, certificate_id, account_id) "
    "SELECT nextval('jobs_id_seq'), cert, acct FROM d ON CONFLICT (certificate_id) DO NOTHING "
    "RETURNING job_id, certificate_id, account_id), "
    "j AS (INSERT INTO jobs (id, certificate_id, account_id, run_id, max_attempts, reason, replaces) "
    "SELECT a.job_id, a.certificate_id, a.account_id, $5, $6, d.reason, d.replaces FROM a JOIN d ON d.cert = a.certificate_id "
    "RETURNING id, account_id, priority, run_after) "
    "INSERT INTO job_queue (job_id, account_id, priority, run_after) SELECT * FROM j RETURNING job_id";

int
queue_enqueue_renewals(PGconn *c, const struct queue_renewal *r, size_t n, const char *label,
    int max_attempts, struct queue_renew_result *out, cf_err *err)
{
	struct pgarray certs = { 0 }, accts = { 0 }, reasons = { 0 }, replaces = { 0 };
	char run[24], maxa[16];
	PGresult *res = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		pgarray_add_i64(&certs, r[i].certificate_id);
		pgarray_add_i64(&accts, r[i].account_id);
		pgarray_add(&reasons, r[i].reason);
		pgarray_add(&replaces, r[i].replaces);
	}
	const char *pr[] = { label };
	if ((res = db_exec(c, "renew: creating the run", sql_new_run, 1, pr, err)) == NULL)
		goto out;
	out->run_id = db_get_i64(res, 0, "id");
	PQclear(res);
	snprintf(run, sizeof(run), "%" PRId64, out->run_id);
	snprintf(maxa, sizeof(maxa), "%d", max_attempts > 0 ? max_attempts : 5);
	const char *p[] = { pgarray_finish(&certs), pgarray_finish(&accts), pgarray_finish(&reasons),
		pgarray_finish(&replaces), run, maxa };
	if (!p[0] || !p[1] || !p[2] || !p[3]) {
		cf_errf(err, "renew: out of memory for %zu jobs", n);
		res = NULL;
		goto out;
	}
	if ((res = db_exec(c, "renew: queueing the jobs", sql_insert_renewals, 6, p, err)) == NULL)
		goto out;
	out->jobs_added = PQntuples(res);
	out->jobs_already_queued = (long)n - out->jobs_added;
	PQclear(res);
	res = NULL;
	/* wakes idle `certfleet run --follow` processes when the transaction commits */
	if (out->jobs_added > 0 && db_run(c, "renew: NOTIFY", "NOTIFY " QUEUE_CHANNEL, 0, NULL, err) != 0)
		goto out;
	rc = 0;
out:
	pgarray_free(&certs);
	pgarray_free(&accts);
	pgarray_free(&reasons);
	pgarray_free(&replaces);
	return rc;
}

/* Adds the "fqdn value" lines of known to j's known records. */
static int
add_known(struct job *j, const char *known)
{
	while (known && *known) {
		const char *nl = strchr(known, '\n'), *end = nl ? nl : known + strlen(known);
		const char *sp = memchr(known, ' ', (size_t)(end - known));
		if (sp) {
			char *f = strndup(known, (size_t)(sp - known)), *v = strndup(sp + 1, (size_t)(end - sp - 1));
			int rc = f && v ? job_add_known_record(j, f, v) : -1;
			free(f);
			free(v);
			if (rc != 0)
				return -1;
		}
		known = nl ? nl + 1 : end;
	}
	return 0;
}

/*
 * Row r of a claim as a job in *out, or -1 with why naming the job and what was wrong with the
 * row. The schema allows what the claim cannot use (any text as key_type, a names array of NULLs
 * or empty strings), so a row is checked before a worker gets it.
 */
static int
claim_row(const PGresult *res, int r, int64_t account_id, struct job **out, char *why, size_t whylen)
{
	int64_t id = db_get_i64(res, r, "id");
	const char *names = db_get(res, r, "names"), *key_type = db_get(res, r, "key_type");
	const char *provider = db_get(res, r, "provider"), *resume = db_get(res, r, "resume");
	const char *replaces = db_get(res, r, "replaces");
	const char *profile = db_get(res, r, "profile"), *chain = db_get(res, r, "preferred_chain");
	struct job *j = NULL;
	char *copy = NULL, *save = NULL;
	cf_err kerr;
	int rc = -1;

	*out = NULL;
	if (names == NULL || key_type == NULL || provider == NULL) {
		snprintf(why, whylen, "claim: job %" PRId64 " has no %s", id,
		    names == NULL ? "names" : key_type == NULL ? "key type" : "DNS provider account");
		return -1;
	}
	if ((j = job_new()) == NULL)
		goto oom;
	j->id = id;
	j->certificate_id = db_get_i64(res, r, "certificate_id");
	j->account_id = account_id;
	j->attempt = (int)db_get_i64(res, r, "attempts");
	j->max_attempts = (int)db_get_i64(res, r, "max_attempts");
	j->renewal = strcmp(db_get(res, r, "renewal"), "t") == 0;
	if (resume != NULL) {
		const char *sp = strchr(resume, ' ');
		j->resume_url = sp ? strndup(resume, (size_t)(sp - resume)) : NULL;
		/* opened here: workers never see a sealed key */
		if (sp && sp[1] != '\0' &&
		    (j->resume_key_pem = keyring_open(keyring_installed(), SEAL_AT_ORDERS, sp + 1, &kerr)) == NULL) {
			snprintf(why, whylen, "claim: job %" PRId64 ": the key of its order: %.120s", id, kerr.msg);
			goto out;
		}
	}
	if (key_type_parse(key_type, &j->key_type) != 0) {
		snprintf(why, whylen, "claim: job %" PRId64 " has an unknown key type \"%.40s\"", id, key_type);
		goto out;
	}
	if ((j->provider = strdup(provider)) == NULL || (copy = strdup(names)) == NULL ||
	    (replaces != NULL && (j->replaces = strdup(replaces)) == NULL))
		goto oom;
	if ((profile && (j->profile = strdup(profile)) == NULL) ||
	    (chain && (j->preferred_chain = strdup(chain)) == NULL))
		goto oom;
	for (char *n = strtok_r(copy, " ", &save); n; n = strtok_r(NULL, " ", &save))
		if (job_add_name(j, n) != 0)
			goto oom;
	if (j->nnames == 0) {
		/* array_to_string() leaves out NULL elements: '{NULL}' and '{""}' come out empty */
		snprintf(why, whylen, "claim: job %" PRId64 " has no names (its certificate's names are empty or NULL)", id);
		goto out;
	}
	if (add_known(j, db_get(res, r, "known")) != 0)
		goto oom;
	*out = j;
	j = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(why, whylen, "claim: job %" PRId64 ": out of memory", id);
out:
	free(copy);
	job_free(j);
	return rc;
}

/* Room for n more rows in u, so that a row the claim rejects needs no allocation. */
static int
unparsed_reserve(struct queue_unparsed *u, size_t n)
{
	struct queue_unparsed_row *rows;

	if (u->n + n <= u->cap)
		return 0;
	if ((rows = realloc(u->rows, (u->n + n) * sizeof(*rows))) == NULL)
		return -1;
	u->rows = rows;
	u->cap = u->n + n;
	return 0;
}

void
queue_unparsed_free(struct queue_unparsed *u)
{
	free(u->rows);
	memset(u, 0, sizeof(*u));
}

int
queue_claim_batch(PGconn *c, int64_t account_id, int limit, const char *owner, struct job **out,
    int *nclaimed, struct queue_unparsed *unparsed, cf_err *err)
{
	char acct[24], sql[sizeof(sql_claim_fmt) + 16];
	const char *p[] = { acct, owner };
	struct job **tail = out;
	PGresult *res;

	*out = NULL;
	*nclaimed = 0;
	if (limit < 1) {
		cf_errf(err, "claim: batch size %d", limit);
		return -1;
	}
	if (unparsed_reserve(unparsed, (size_t)limit) != 0) {
		cf_errf(err, "claim: out of memory");
		return -1;
	}
	snprintf(acct, sizeof(acct), "%" PRId64, account_id);
	snprintf(sql, sizeof(sql), sql_claim_fmt, limit);
	if ((res = db_exec_prepared(c, "claiming jobs", sql, 2, p, err)) == NULL)
		return -1;
	/* The batch is committed as running: every row goes to *out or to unparsed, none is dropped. */
	for (int r = 0; r < PQntuples(res); r++) {
		struct queue_unparsed_row *bad = &unparsed->rows[unparsed->n];
		if (claim_row(res, r, account_id, tail, bad->reason, sizeof(bad->reason)) != 0) {
			bad->job_id = db_get_i64(res, r, "id");
			unparsed->n++;
			continue;
		}
		tail = &(*tail)->next;
		(*nclaimed)++;
	}
	PQclear(res);
	return 0;
}

/*
 * A row the claim could not use is the job's last attempt: another would read the same row. It
 * ends through the failed-attempt statement, like a failure a worker reports.
 */
int
queue_fail_unparsed(PGconn *c, struct queue_unparsed *u, cf_err *err)
{
	struct pgarray ids = { 0 }, types = { 0 }, details = { 0 }, retry = { 0 }, delay = { 0 };
	struct queue_failures f;
	int rc = -1;

	if (u->n == 0)
		return 0;
	for (size_t i = 0; i < u->n; i++) {
		pgarray_add_i64(&ids, u->rows[i].job_id);
		pgarray_add(&types, QUEUE_CLAIM_PROBLEM);
		pgarray_add(&details, u->rows[i].reason);
		pgarray_add_bool(&retry, 0);
		pgarray_add_i64(&delay, 0);
	}
	f = (struct queue_failures){ .job_ids = pgarray_finish(&ids), .problem_types = pgarray_finish(&types),
		.details = pgarray_finish(&details), .retry = pgarray_finish(&retry), .delay_ms = pgarray_finish(&delay) };
	if (!f.job_ids || !f.problem_types || !f.details || !f.retry || !f.delay_ms) {
		cf_errf(err, "failing unparsed jobs: out of memory");
		goto out;
	}
	if (queue_complete_failed(c, &f, err) != 0)
		goto out;
	u->n = 0;
	rc = 0;
out:
	pgarray_free(&ids);
	pgarray_free(&types);
	pgarray_free(&details);
	pgarray_free(&retry);
	pgarray_free(&delay);
	return rc;
}

int
queue_claim(PGconn *c, int64_t account_id, int limit, const char *owner, struct job **out,
    int *nclaimed, cf_err *err)
{
	struct queue_unparsed unparsed = { 0 };
	int rc = -1;

	if (queue_claim_batch(c, account_id, limit, owner, out, nclaimed, &unparsed, err) != 0)
		goto out;
	if (queue_fail_unparsed(c, &unparsed, err) != 0) {
		while (*out) {
			struct job *next = (*out)->next;
			job_free(*out);
			*out = next;
		}
		*nclaimed = 0;
		goto out;
	}
	rc = 0;
out:
	queue_unparsed_free(&unparsed);
	return rc;
}

/* Renews owner's lease, and lists its running jobs that an operator asked to cancel. */
static const char *const sql_heartbeat =
    "WITH r AS (INSERT INTO runners (owner, lease_until) VALUES ($1, now() + $2::int * interval '1 second') "
    "ON CONFLICT (owner) DO UPDATE SET lease_until = EXCLUDED.lease_until) "
    "SELECT j.id FROM unfinished_jobs a JOIN jobs j ON j.id = a.job_id "
    "WHERE a.cancel_requested AND j.state = 'running' AND j.locked_by = $1";

int
queue_heartbeat(PGconn *c, const char *owner, int lease_s, int64_t **cancel, size_t *ncancel, cf_err *err)
{
	char lease[16];
	const char *p[] = { owner, lease };
	PGresult *res;
	int n;

	*cancel = NULL;
	*ncancel = 0;
	snprintf(lease, sizeof(lease), "%d", lease_s);
	if ((res = db_exec_prepared(c, "renewing the lease", sql_heartbeat, 2, p, err)) == NULL)
		return -1;
	n = PQntuples(res);
	if (n > 0 && (*cancel = calloc((size_t)n, sizeof(**cancel))) != NULL) {
		for (int r = 0; r < n; r++)
			(*cancel)[(*ncancel)++] = db_get_i64(res, r, "id");
	}
	PQclear(res);
	return 0;
}

/*
 * An ended job leaves unfinished_jobs in the statement that ends it (here the DELETE reads j, so
 * the jobs row is locked first, as the lock order at the top wants).
 */
static const char *const sql_issued =
    "WITH j AS (UPDATE jobs SET state = 'issued', finished_at = now(), updated_at = now(), locked_by = NULL, "
    "last_problem_type = NULL, last_error = NULL WHERE jobs.id = ANY ($1::bigint[]) RETURNING jobs.id) "
    "DELETE FROM unfinished_jobs WHERE job_id = ANY (ARRAY(SELECT id FROM j))";

/*
 * A failed attempt: back to the queue after a delay, with a retry event that keeps its error, or
 * failed for good, or cancelled. A job's end is its row (state, last_problem_type, last_error,
 * finished_at), not an event as well. A job rescued meanwhile may be in the queue already; one
 * that ended meanwhile (rescued, then run to its end by another process) is left as it ended,
 * never put back in the queue.
 */
static const char *const sql_failed =
    "WITH j AS (UPDATE jobs SET state = CASE WHEN u.t = 'certfleet:cancelled' OR jobs.cancel_requested THEN 'cancelled' "
    "WHEN u.retry THEN 'ready' ELSE 'failed' END, "
    "run_after = CASE WHEN u.retry THEN now() + u.delay * interval '1 millisecond' ELSE jobs.run_after END, "
    "finished_at = CASE WHEN u.retry AND u.t <> 'certfleet:cancelled' AND NOT jobs.cancel_requested "
    "THEN NULL ELSE now() END, "
    "updated_at = now(), locked_by = NULL, last_problem_type = u.t, last_error = u.d "
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bool[], $5::bigint[]) AS u(id, t, d, retry, delay) "
    "WHERE jobs.id = u.id AND jobs.finished_at IS NULL "
    "RETURNING jobs.id, jobs.state, jobs.account_id, jobs.priority, jobs.run_after, u.t, u.d, u.retry), "
    "a AS (DELETE FROM unfinished_jobs WHERE job_id = ANY (ARRAY(SELECT id FROM j WHERE state <> 'ready'))), "
    "q AS (INSERT INTO job_queue (job_id, account_id, priority, run_after) "
    "SELECT id, account_id, priority, run_after FROM j WHERE state = 'ready' ON CONFLICT (job_id) DO NOTHING) "
    "INSERT INTO events (job_id, kind, detail) SELECT id, 'retry', t || ': ' || coalesce(d, '') || ' (will retry)' "
    "FROM j WHERE state = 'ready'";

int
queue_complete_issued(PGconn *c, const char *job_ids, cf_err *err)
{
	const char *p[] = { job_ids };

	return db_run_prepared(c, "marking jobs issued", sql_issued, 1, p, err);
}

int
queue_complete_failed(PGconn *c, const struct queue_failures *f, cf_err *err)
{
	const char *p[] = { f->job_ids, f->problem_types, f->details, f->retry, f->delay_ms };

	return db_run_prepared(c, "marking jobs failed", sql_failed, 5, p, err);
}

/*
 * Queued jobs are cancelled at once; running ones are flagged, and the process that runs them
 * ends their order at its next lease renewal (or, if it died, the rescuer cancels them). The flag
 * is set on the job, and on its unfinished_jobs row, where the renewal looks for it.
 */
static const char *const sql_cancel =
    "WITH t AS (SELECT j.id FROM unfinished_jobs a JOIN jobs j ON j.id = a.job_id WHERE "
    "($1::bigint IS NULL OR a.job_id = $1) AND ($2::bigint IS NULL OR j.run_id = $2)), "
    /* queue rows first, as a claim locks them: a job a claim takes meanwhile is running after all */
    "q AS (DELETE FROM job_queue WHERE job_id IN (SELECT id FROM t) RETURNING job_id), "
    "u AS (UPDATE jobs SET cancel_requested = true, "
    "state = CASE WHEN jobs.id IN (SELECT job_id FROM q) THEN 'cancelled' ELSE jobs.state END, "
    "finished_at = CASE WHEN jobs.id IN (SELECT job_id FROM q) THEN now() END, updated_at = now() "
    "FROM t WHERE jobs.id = t.id AND jobs.finished_at IS NULL RETURNING jobs.id, jobs.state), "
    "e AS (INSERT INTO events (job_id, kind, detail) SELECT id, 'cancelled', "
    "CASE WHEN state = 'cancelled' THEN 'cancelled by the operator' ELSE 'cancel requested while running' END "
    "FROM u), "
    "d AS (DELETE FROM unfinished_jobs WHERE job_id IN (SELECT id FROM u WHERE state = 'cancelled')), "
    "f AS (UPDATE unfinished_jobs SET cancel_requested = true WHERE job_id IN (SELECT id FROM u WHERE state <> 'cancelled')) "
    "SELECT count(*) FILTER (WHERE state = 'cancelled') AS now, count(*) FILTER (WHERE state <> 'cancelled') AS later FROM u";

int
queue_cancel(PGconn *c, const char *job_id, const char *run_id, long *now, long *later, cf_err *err)
{
	const char *p[] = { job_id, run_id };
	PGresult *res = db_exec(c, "cancel", sql_cancel, 2, p, err);

	if (res == NULL)
		return -1;
	*now = (long)db_get_i64(res, 0, "now");
	*later = (long)db_get_i64(res, 0, "later");
	PQclear(res);
	return 0;
}

/*
 * The runners whose lease ran out (their process died, or lost PostgreSQL for longer than the
 * lease) are removed, and their running jobs go back to the queue, or fail for good when that
 * was their last attempt. Their stored order is resumed by whoever claims them next. Two rescuers
 * at once cannot both take a runner: the second one's DELETE finds it gone. EXISTS (dead) becomes
 * a one-time filter, so that a rescue that finds no dead runner reads no job; the deletes that
 * usually have nothing to do are gated the same way, here and in the claim.
 */
static const char *const sql_rescue =
    "WITH dead AS (DELETE FROM runners WHERE lease_until < now() AND owner <> $1 RETURNING owner), "
    "r AS (UPDATE jobs SET "
    "state = CASE WHEN jobs.cancel_requested THEN 'cancelled' WHEN attempts >= max_attempts THEN 'failed' ELSE 'ready' END, "
    "finished_at = CASE WHEN jobs.cancel_requested OR attempts >= max_attempts THEN now() END, "
    "last_problem_type = CASE WHEN attempts >= max_attempts THEN 'certfleet:lease-expired' ELSE last_problem_type END, "
    "last_error = CASE WHEN attempts >= max_attempts THEN 'lease of ' || locked_by || ' expired on attempt ' || "
    "attempts || ' of ' || max_attempts ELSE last_error END, "
    "run_after = now(), locked_by = NULL, updated_at = now() "
    "FROM unfinished_jobs a WHERE jobs.id = a.job_id AND EXISTS (SELECT 1 FROM dead) AND jobs.state = 'running' "
    "AND jobs.locked_by = ANY (ARRAY(SELECT owner FROM dead)) "
    "RETURNING jobs.id, jobs.state, jobs.attempts, jobs.account_id, jobs.priority, jobs.run_after), "
    "f AS (DELETE FROM unfinished_jobs WHERE EXISTS (SELECT 1 FROM r WHERE state <> 'ready') "
    "AND job_id = ANY (ARRAY(SELECT id FROM r WHERE state <> 'ready'))), "
    "q AS (INSERT INTO job_queue (job_id, account_id, priority, run_after) "
    "SELECT id, account_id, priority, run_after FROM r WHERE state = 'ready' ON CONFLICT (job_id) DO NOTHING) "
    "INSERT INTO events (job_id, kind, detail) SELECT id, 'rescued', 'lease expired on attempt ' || attempts || "
    "'; now ' || state FROM r RETURNING job_id";

int
queue_rescue(PGconn *c, const char *owner, long *rescued, cf_err *err)
{
	const char *p[] = { owner };
	PGresult *res = db_exec_prepared(c, "rescuing expired leases", sql_rescue, 1, p, err);

	if (res == NULL)
		return -1;
	*rescued = PQntuples(res);
	PQclear(res);
	return 0;
}

/* At the end of a run: its runner goes, unless jobs still run under it (they wait for a rescuer). */
static const char *const sql_release =
    "DELETE FROM runners WHERE owner = $1 AND NOT EXISTS "
    "(SELECT 1 FROM unfinished_jobs a JOIN jobs j ON j.id = a.job_id WHERE j.state = 'running' AND j.locked_by = $1)";

int
queue_release(PGconn *c, const char *owner, cf_err *err)
{
	const char *p[] = { owner };

	return db_run(c, "releasing the lease", sql_release, 1, p, err);
}

/* Whether work remains that this run should wait for: ready jobs due soon, or running jobs. */
static const char *const sql_outstanding =
    "SELECT EXISTS (SELECT 1 FROM unfinished_jobs a JOIN jobs j ON j.id = a.job_id "
    "WHERE a.account_id = ANY ($1::bigint[]) AND j.state = 'running') AS running, "
    "EXISTS (SELECT 1 FROM job_queue WHERE account_id = ANY ($1::bigint[]) "
    "AND run_after <= now() + $2::int * interval '1 second') AS due, "
    "(SELECT count(*) FROM job_queue WHERE account_id = ANY ($1::bigint[])) AS ready";

int
queue_outstanding(PGconn *c, const int64_t *account_ids, size_t naccounts, int within_s,
    struct queue_outstanding *out, cf_err *err)
{
	struct pgarray ids = { 0 };
	char within[16];
	const char *p[] = { NULL, within };
	PGresult *res;

	for (size_t i = 0; i < naccounts; i++)
		pgarray_add_i64(&ids, account_ids[i]);
	if ((p[0] = pgarray_finish(&ids)) == NULL) {
		pgarray_free(&ids);
		cf_errf(err, "checking the queue: out of memory");
		return -1;
	}
	snprintf(within, sizeof(within), "%d", within_s);
	res = db_exec_prepared(c, "checking the queue", sql_outstanding, 2, p, err);
	pgarray_free(&ids);
	if (res == NULL)
		return -1;
	out->running = strcmp(db_get(res, 0, "running"), "t") == 0;
	out->due_soon = strcmp(db_get(res, 0, "due"), "t") == 0;
	out->ready = db_get_i64(res, 0, "ready");
	PQclear(res);
	return 0;
}
