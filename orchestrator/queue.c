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
    "INSERT INTO jobs (certificate_id, account_id) VALUES ($1, $2) "
    "ON CONFLICT (certificate_id) WHERE state IN ('ready', 'running') DO NOTHING RETURNING id";

static const char *const sql_claim =
    "WITH c AS (SELECT id FROM jobs WHERE state = 'ready' AND run_after <= now() AND account_id = $1 "
    "ORDER BY priority DESC, run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, locked_by = $3, "
    "lease_until = now() + interval '30 minutes', updated_at = now() "
    "FROM c, certificates ce WHERE j.id = c.id AND ce.id = j.certificate_id "
    "RETURNING j.id, j.certificate_id, j.attempts, array_to_string(ce.names, ' ') AS names, "
    "ce.key_type, ce.provider";

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
queue_enqueue(PGconn *c, int64_t account_id, const char *provider, const char *key_type,
    const struct queue_cert *certs, size_t ncerts, struct queue_enqueue_result *out, cf_err *err)
{
	cf_buf arr = { 0 }, key = { 0 };
	char acct[24];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	snprintf(acct, sizeof(acct), "%" PRId64, account_id);
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		return -1;
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
		const char *p2[] = { cert_id, acct };
		res = db_exec(c, "enqueue: adding the job", sql_insert_job, 2, p2, err);
		if (res == NULL)
			goto out;
		if (PQntuples(res) == 1)
			out->jobs_added++;
		else
			out->jobs_already_queued++;
		PQclear(res);
	}
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
queue_claim(PGconn *c, int64_t account_id, int limit, const char *owner, struct job **out,
    int *nclaimed, cf_err *err)
{
	char acct[24], lim[16];
	const char *p[] = { acct, lim, owner };
	struct job *head = NULL, **tail = &head;
	PGresult *res;
	int rc = -1;

	*out = NULL;
	*nclaimed = 0;
	snprintf(acct, sizeof(acct), "%" PRId64, account_id);
	snprintf(lim, sizeof(lim), "%d", limit);
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		return -1;
	res = db_exec(c, "claiming jobs", sql_claim, 3, p, err);
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
