/* queue.c - enqueue and claim on the jobs table; the claim is one statement with SKIP LOCKED. */
#include "queue.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dnsname.h"
#include "persist.h"

static const char *const sql_upsert_cert =
    "WITH ins AS (INSERT INTO certificates (names, names_key, key_type, provider) "
    "VALUES ($1::text[], $2, $3, $4) ON CONFLICT (names_key) DO NOTHING RETURNING id) "
    "SELECT id, true AS new FROM ins UNION ALL "
    "SELECT id, false FROM certificates WHERE names_key = $2 AND NOT EXISTS (SELECT 1 FROM ins)";

static const char *const sql_insert_job =
    "INSERT INTO jobs (certificate_id, account_id, run_id, max_attempts) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (certificate_id) WHERE state IN ('ready', 'running') DO NOTHING RETURNING id";

static const char *const sql_new_run = "INSERT INTO runs (label) VALUES ($1) RETURNING id";

/*
 * One statement claims a batch and returns, per job, what a worker needs: the names, the order of
 * an earlier attempt to resume (looked for only on a later attempt), whether the certificate was
 * issued before, and the records of its names known to be in place ("fqdn value" lines).
 * It is prepared, so its generic plan must not depend on the batch size ($2) or on how many
 * records there are: the claimed ids go to the UPDATE, and each job's record names to the records
 * lookup, as arrays, which the planner looks up by index whatever it guesses (a join with the CTE
 * instead made the generic plan scan the whole jobs table, an IN every record of the account).
 */
static const char *const sql_claim =
    "WITH c AS (SELECT id FROM jobs WHERE state = 'ready' AND run_after <= now() AND account_id = $1 "
    "ORDER BY priority DESC, run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED), "
    "u AS (UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = $3, "
    "lease_until = now() + $4::int * interval '1 second', updated_at = now() "
    "WHERE j.id = ANY (ARRAY(SELECT id FROM c)) "
    "RETURNING j.id, j.certificate_id, j.attempts, j.max_attempts) "
    "SELECT u.id, u.certificate_id, u.attempts, u.max_attempts, array_to_string(ce.names, ' ') AS names, "
    "ce.key_type, ce.provider, "
    "CASE WHEN u.attempts > 1 THEN (SELECT o.order_url || ' ' || coalesce(o.key_pem, '') FROM orders o "
    "WHERE o.job_id = u.id AND o.state NOT IN ('failed', 'valid') ORDER BY o.id DESC LIMIT 1) END AS resume, "
    "EXISTS (SELECT 1 FROM results r WHERE r.certificate_id = u.certificate_id AND r.is_current) AS renewal, "
    "(SELECT string_agg(r.fqdn || ' ' || r.value, E'\\n') FROM records r WHERE r.account_id = $1 AND r.fqdn = "
    "ANY (ARRAY(SELECT '_validation-persist.' || regexp_replace(n, '^\\*\\.', '') FROM unnest(ce.names) n))) "
    "AS known "
    "FROM u JOIN certificates ce ON ce.id = u.certificate_id";

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
queue_enqueue(PGconn *c, int64_t account_id, const struct queue_enqueue_opts *opts,
    const struct queue_cert *certs, size_t ncerts, struct queue_enqueue_result *out, cf_err *err)
{
	cf_buf arr = { 0 }, key = { 0 };
	char acct[24], run[24], maxa[16];
	const char *provider = opts->provider, *key_type = opts->key_type;
	PGresult *rres;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	snprintf(acct, sizeof(acct), "%" PRId64, account_id);
	snprintf(maxa, sizeof(maxa), "%d", opts->max_attempts > 0 ? opts->max_attempts : 5);
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		return -1;
	const char *pr[] = { opts->label };
	if ((rres = db_exec(c, "enqueue: creating the run", sql_new_run, 1, pr, err)) == NULL)
		goto out;
	snprintf(run, sizeof(run), "%s", db_get(rres, 0, "id"));
	out->run_id = db_get_i64(rres, 0, "id");
	PQclear(rres);
	for (size_t i = 0; i < ncerts; i++) {
		PGresult *res;
		if (cert_literals(&certs[i], &arr, &key) != 0) {
			cf_errf(err, "enqueue line %d: out of memory", certs[i].line);
			goto out;
		}
		const char *p1[] = { arr.data, key.data, key_type, provider };
		res = db_exec_prepared(c, "enqueue: storing the certificate", sql_upsert_cert, 4, p1, err);
		if (res == NULL)
			goto out;
		char cert_id[24];
		snprintf(cert_id, sizeof(cert_id), "%s", db_get(res, 0, "id"));
		if (strcmp(db_get(res, 0, "new"), "t") == 0)
			out->certificates_new++;
		PQclear(res);
		const char *p2[] = { cert_id, acct, run, maxa };
		res = db_exec_prepared(c, "enqueue: adding the job", sql_insert_job, 4, p2, err);
		if (res == NULL)
			goto out;
		if (PQntuples(res) == 1)
			out->jobs_added++;
		else
			out->jobs_already_queued++;
		PQclear(res);
	}
	/* wakes idle `certfleet run --follow` processes when the transaction commits */
	if (out->jobs_added > 0 && db_run(c, "enqueue: NOTIFY", "NOTIFY " QUEUE_CHANNEL, 0, NULL, err) != 0)
		goto out;
	if (db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		PQclear(PQexec(c, "ROLLBACK"));
	cf_buf_free(&arr);
	cf_buf_free(&key);
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

int
queue_claim(PGconn *c, int64_t account_id, int limit, const char *owner, int lease_s, struct job **out,
    int *nclaimed, cf_err *err)
{
	char acct[24], lim[16], lease[16];
	const char *p[] = { acct, lim, owner, lease };
	struct job *head = NULL, **tail = &head;
	PGresult *res;
	int rc = -1;

	*out = NULL;
	*nclaimed = 0;
	snprintf(acct, sizeof(acct), "%" PRId64, account_id);
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(lease, sizeof(lease), "%d", lease_s);
	res = db_exec_prepared(c, "claiming jobs", sql_claim, 4, p, err);
	if (res == NULL)
		goto out;
	for (int r = 0; r < PQntuples(res); r++) {
		struct job *j = job_new();
		char *names, *save = NULL;
		if (j == NULL)
			goto oom;
		*tail = j;
		tail = &j->next;
		j->id = db_get_i64(res, r, "id");
		j->certificate_id = db_get_i64(res, r, "certificate_id");
		j->account_id = account_id;
		j->attempt = (int)db_get_i64(res, r, "attempts");
		j->max_attempts = (int)db_get_i64(res, r, "max_attempts");
		j->renewal = strcmp(db_get(res, r, "renewal"), "t") == 0;
		const char *resume = db_get(res, r, "resume");
		if (resume != NULL) {
			const char *sp = strchr(resume, ' ');
			j->resume_url = sp ? strndup(resume, (size_t)(sp - resume)) : NULL;
			if (sp && sp[1] != '\0')
				j->resume_key_pem = strdup(sp + 1);
		}
		j->provider = strdup(db_get(res, r, "provider"));
		if (j->provider == NULL || key_type_parse(db_get(res, r, "key_type"), &j->key_type) != 0) {
			cf_errf(err, "claim: job %" PRId64 " has an unknown key type", j->id);
			goto out;
		}
		names = strdup(db_get(res, r, "names"));
		if (names == NULL)
			goto oom;
		for (char *n = strtok_r(names, " ", &save); n; n = strtok_r(NULL, " ", &save)) {
			if (job_add_name(j, n) != 0) {
				free(names);
				goto oom;
			}
		}
		free(names);
		if (add_known(j, db_get(res, r, "known")) != 0)
			goto oom;
		(*nclaimed)++;
	}
	*out = head;
	head = NULL;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "claim: out of memory");
out:
	if (rc != 0)
		*nclaimed = 0;
	while (head) {
		struct job *n = head->next;
		job_free(head);
		head = n;
	}
	PQclear(res);
	return rc;
}

static const char *const sql_heartbeat =
    "UPDATE jobs SET lease_until = now() + $2::int * interval '1 second' "
    "WHERE locked_by = $1 AND state = 'running' RETURNING id, cancel_requested";

int
queue_heartbeat(PGconn *c, const char *owner, int lease_s, int64_t **cancel, size_t *ncancel, cf_err *err)
{
	char lease[16];
	const char *p[] = { owner, lease };
	PGresult *res;
	size_t n = 0;

	*cancel = NULL;
	*ncancel = 0;
	snprintf(lease, sizeof(lease), "%d", lease_s);
	if ((res = db_exec_prepared(c, "renewing leases", sql_heartbeat, 2, p, err)) == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++)
		if (strcmp(db_get(res, r, "cancel_requested"), "t") == 0)
			n++;
	if (n > 0 && (*cancel = calloc(n, sizeof(**cancel))) != NULL) {
		for (int r = 0; r < PQntuples(res); r++)
			if (strcmp(db_get(res, r, "cancel_requested"), "t") == 0)
				(*cancel)[(*ncancel)++] = db_get_i64(res, r, "id");
	}
	PQclear(res);
	return 0;
}

/*
 * Jobs whose lease ran out (their process died or lost PostgreSQL for longer than the lease) go
 * back to the queue, or fail for good when that was their last attempt. Their stored order is
 * resumed by whoever claims them next.
 */
static const char *const sql_rescue =
    "WITH r AS (UPDATE jobs SET "
    "state = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempts >= max_attempts THEN 'failed' ELSE 'ready' END, "
    "finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN now() END, "
    "last_problem_type = CASE WHEN attempts >= max_attempts THEN 'certfleet:lease-expired' ELSE last_problem_type END, "
    "last_error = CASE WHEN attempts >= max_attempts THEN 'lease of ' || locked_by || ' expired on attempt ' || "
    "attempts || ' of ' || max_attempts ELSE last_error END, "
    "run_after = now(), locked_by = NULL, lease_until = NULL, updated_at = now() "
    "WHERE state = 'running' AND lease_until < now() AND locked_by IS DISTINCT FROM $1 "
    "RETURNING id, state, attempts) "
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

/* Whether work remains that this run should wait for: ready jobs due soon, or running jobs. */
static const char *const sql_outstanding =
    "SELECT (SELECT count(*) FROM jobs WHERE account_id = $1 AND state = 'running') AS running, "
    "(SELECT count(*) FROM jobs WHERE account_id = $1 AND state = 'ready' AND "
    "run_after <= now() + $2::int * interval '1 second') AS due, "
    "(SELECT count(*) FROM jobs WHERE account_id = $1 AND state = 'ready') AS ready";

int
queue_outstanding(PGconn *c, int64_t account_id, int within_s, struct queue_outstanding *out, cf_err *err)
{
	char acct[24], within[16];
	const char *p[] = { acct, within };
	PGresult *res;

	snprintf(acct, sizeof(acct), "%" PRId64, account_id);
	snprintf(within, sizeof(within), "%d", within_s);
	if ((res = db_exec_prepared(c, "checking the queue", sql_outstanding, 2, p, err)) == NULL)
		return -1;
	out->running = db_get_i64(res, 0, "running");
	out->due_soon = db_get_i64(res, 0, "due");
	out->ready = db_get_i64(res, 0, "ready");
	PQclear(res);
	return 0;
}
