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

static const char *const sql_claim =
    "WITH c AS (SELECT id FROM jobs WHERE state = 'ready' AND run_after <= now() AND account_id = $1 "
    "ORDER BY priority DESC, run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = $3, "
    "lease_until = now() + $4::int * interval '1 second', updated_at = now() "
    "FROM c, certificates ce WHERE j.id = c.id AND ce.id = j.certificate_id "
    "RETURNING j.id, j.certificate_id, j.attempts, j.max_attempts, array_to_string(ce.names, ' ') AS names, "
    "ce.key_type, ce.provider, (SELECT o.order_url || ' ' || coalesce(o.key_pem, '') FROM orders o "
    "WHERE o.job_id = j.id AND o.state NOT IN ('failed', 'valid') ORDER BY o.id DESC LIMIT 1) AS resume, "
    "EXISTS (SELECT 1 FROM results r WHERE r.certificate_id = j.certificate_id) AS renewal";

static const char *const sql_known_records =
    "SELECT fqdn, value FROM records WHERE account_id = $1 AND fqdn = ANY($2::text[])";

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
		res = db_exec(c, "enqueue: storing the certificate", sql_upsert_cert, 4, p1, err);
		if (res == NULL)
			goto out;
		char cert_id[24];
		snprintf(cert_id, sizeof(cert_id), "%s", db_get(res, 0, "id"));
		if (strcmp(db_get(res, 0, "new"), "t") == 0)
			out->certificates_new++;
		PQclear(res);
		const char *p2[] = { cert_id, acct, run, maxa };
		res = db_exec(c, "enqueue: adding the job", sql_insert_job, 4, p2, err);
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

/* Fills each job's known records from one query over all record names of the batch. */
static int
attach_known_records(PGconn *c, const char *acct, struct job *jobs, cf_err *err)
{
	cf_buf arr = { 0 };
	PGresult *res = NULL;
	char fqdn[DNSNAME_MAX + 32];
	char **fqdns = NULL;       /* record name of each (job, name), in job order */
	size_t total = 0, k;
	int rc = -1;

	for (struct job *j = jobs; j; j = j->next)
		total += j->nnames;
	if ((fqdns = calloc(total ? total : 1, sizeof(*fqdns))) == NULL || cf_buf_append(&arr, "{", 1) != 0)
		goto oom;
	k = 0;
	for (struct job *j = jobs; j; j = j->next) {
		for (size_t i = 0; i < j->nnames; i++, k++) {
			if (persist_record_name(j->names[i], fqdn, sizeof(fqdn), err) != 0)
				goto out;
			if ((fqdns[k] = strdup(fqdn)) == NULL ||
			    cf_buf_printf(&arr, "%s\"%s\"", k ? "," : "", fqdn) != 0)
				goto oom;
		}
	}
	if (cf_buf_append(&arr, "}", 1) != 0)
		goto oom;
	const char *p[] = { acct, arr.data };
	res = db_exec(c, "claim: reading known records", sql_known_records, 2, p, err);
	if (res == NULL)
		goto out;
	/* rows and names are both in the hundreds per batch: a plain scan is cheap enough */
	for (int r = 0; r < PQntuples(res); r++) {
		const char *f = db_get(res, r, "fqdn"), *v = db_get(res, r, "value");
		k = 0;
		for (struct job *j = jobs; j; j = j->next) {
			bool added = false;
			for (size_t i = 0; i < j->nnames; i++, k++) {
				if (!added && strcmp(fqdns[k], f) == 0) {
					if (job_add_known_record(j, f, v) != 0)
						goto oom;
					added = true;
				}
			}
		}
	}
	rc = 0;
	goto out;
oom:
	cf_errf(err, "claim: out of memory");
out:
	for (size_t i = 0; fqdns && i < total; i++)
		free(fqdns[i]);
	free(fqdns);
	PQclear(res);
	cf_buf_free(&arr);
	return rc;
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
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		return -1;
	res = db_exec(c, "claiming jobs", sql_claim, 4, p, err);
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
		(*nclaimed)++;
	}
	if (head && attach_known_records(c, acct, head, err) != 0)
		goto out;
	if (db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0)
		goto out;
	*out = head;
	head = NULL;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "claim: out of memory");
out:
	if (rc != 0) {
		PQclear(PQexec(c, "ROLLBACK"));
		*nclaimed = 0;
	}
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
	if ((res = db_exec(c, "renewing leases", sql_heartbeat, 2, p, err)) == NULL)
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
	PGresult *res = db_exec(c, "rescuing expired leases", sql_rescue, 1, p, err);

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
	if ((res = db_exec(c, "checking the queue", sql_outstanding, 2, p, err)) == NULL)
		return -1;
	out->running = db_get_i64(res, 0, "running");
	out->due_soon = db_get_i64(res, 0, "due");
	out->ready = db_get_i64(res, 0, "ready");
	PQclear(res);
	return 0;
}
