/*
 * sync.c - `sync`'s plan and its application: one query reads the stored fleet, the file's
 * certificates are matched to it by their sorted names (names_key), and the application reuses
 * enqueue's statements (queue_enqueue_in) inside one transaction with the retirements.
 */
#include "sync.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "pgarray.h"
#include "queue.h"

static const char *const sql_fleet =
    "SELECT c.id, c.names_key, array_to_string(c.names, ',') AS names, c.key_type, c.provider, "
    "coalesce(c.profile, '') AS profile, c.account_id, coalesce(a.directory_url, '(none)') AS ca, "
    "c.retired_at IS NOT NULL AS retired FROM certificates c LEFT JOIN accounts a ON a.id = c.account_id "
    "ORDER BY c.id";

static const char *const sql_retire =
    "UPDATE certificates SET retired_at = now(), updated_at = now() WHERE id = ANY ($1::bigint[]) "
    "AND retired_at IS NULL";

/* The unfinished jobs of retired certificates, to cancel (queue_cancel, one statement each). */
static const char *const sql_retired_jobs =
    "SELECT job_id FROM unfinished_jobs WHERE certificate_id = ANY ($1::bigint[]) ORDER BY job_id";

static const char *const sql_directory = "SELECT directory_url FROM accounts WHERE id = $1";

void
sync_plan_free(struct sync_plan *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->items[i].names);
		free(p->items[i].what);
	}
	free(p->items);
	memset(p, 0, sizeof(*p));
}

static int
cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The file's names of fc, comma-joined. */
static char *
join_names(const struct fleet_cert *fc)
{
	cf_buf b = { 0 };

	for (size_t i = 0; i < fc->nnames; i++)
		if (cf_buf_printf(&b, "%s%s", i ? "," : "", fc->names[i]) != 0) {
			cf_buf_free(&b);
			return NULL;
		}
	return b.data;
}

/* One "old -> new" part of a change into w. */
static int
diff(cf_buf *w, const char *what, const char *old, const char *now)
{
	if (strcmp(old, now) == 0)
		return 0;
	return cf_buf_printf(w, "%s%s %s -> %s", w->len ? ", " : "", what, old[0] ? old : "(CA default)",
	    now[0] ? now : "(CA default)");
}

/* The directory URL of an account, for the plan. */
static char *
directory_of(PGconn *c, int64_t id, cf_err *err)
{
	char acct[24];
	const char *p[] = { acct };
	PGresult *res;
	char *url = NULL;

	snprintf(acct, sizeof(acct), "%" PRId64, id);
	if ((res = db_exec(c, "sync: reading an account", sql_directory, 1, p, err)) == NULL)
		return NULL;
	url = strdup(PQntuples(res) == 1 ? db_get(res, 0, "directory_url") : "(none)");
	PQclear(res);
	return url;
}

/* Item for file certificate fc at row r of the stored fleet (-1: not stored). 0, 1 no change, -1. */
static int
plan_cert(PGconn *c, const PGresult *res, int r, const struct fleet_cert *fc, int64_t acct,
    const struct sync_defaults *d, struct sync_item *it, cf_err *err)
{
	cf_buf w = { 0 };
	char *ca = NULL;
	int rc = -1;

	*it = (struct sync_item){ .kind = SYNC_ADD, .fc = fc, .account_id = acct };
	if ((it->names = join_names(fc)) == NULL)
		goto oom;
	if (r < 0 || strcmp(db_get(res, r, "retired"), "t") == 0) {
		it->certificate_id = r < 0 ? 0 : db_get_i64(res, r, "id");
		return 0;
	}
	it->kind = SYNC_CHANGE;
	it->certificate_id = db_get_i64(res, r, "id");
	if (diff(&w, "key type", db_get(res, r, "key_type"), fc->key_type ? fc->key_type : "ec-p256") != 0 ||
	    diff(&w, "provider", db_get(res, r, "provider"), fc->provider ? fc->provider : d->provider) != 0 ||
	    diff(&w, "profile", db_get(res, r, "profile"), fc->profile ? fc->profile : "") != 0)
		goto oom;
	if (db_get(res, r, "account_id") == NULL || db_get_i64(res, r, "account_id") != acct) {
		if ((ca = directory_of(c, acct, err)) == NULL)
			goto out;
		if (diff(&w, "ca", db_get(res, r, "ca"), ca) != 0)
			goto oom;
	}
	if (w.len == 0) {
		rc = 1;
		goto out;
	}
	it->what = w.data;
	w.data = NULL;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "sync: out of memory");
out:
	free(ca);
	cf_buf_free(&w);
	if (rc != 0) {
		free(it->names);
		it->names = NULL;
	}
	return rc;
}

int
sync_plan_make(PGconn *c, const struct fleet *f, const int64_t *account_ids, const struct sync_defaults *d,
    struct sync_plan *out, cf_err *err)
{
	PGresult *res = NULL;
	const char **keys = NULL;
	bool *seen = NULL;
	int rows, rc = -1;

	memset(out, 0, sizeof(*out));
	if ((res = db_exec(c, "sync: reading the fleet", sql_fleet, 0, NULL, err)) == NULL)
		return -1;
	rows = PQntuples(res);
	/* the stored names_keys, sorted with their row in the slot after each, for bsearch */
	if ((keys = malloc(((size_t)rows * 2 + 1) * sizeof(*keys))) == NULL ||
	    (seen = calloc((size_t)rows + 1, sizeof(*seen))) == NULL ||
	    (out->items = calloc(f->n + (size_t)rows + 1, sizeof(*out->items))) == NULL) {
		cf_errf(err, "sync: out of memory for %d certificates", rows);
		goto out;
	}
	for (int r = 0; r < rows; r++) {
		keys[2 * r] = db_get(res, r, "names_key");
		keys[2 * r + 1] = (const char *)(intptr_t)r;
	}
	qsort(keys, (size_t)rows, 2 * sizeof(*keys), cmp_key);
	for (size_t i = 0; i < f->n; i++) {
		const char *k = f->certs[i].names_key;
		const char **hit = rows ? bsearch(&k, keys, (size_t)rows, 2 * sizeof(*keys), cmp_key) : NULL;
		int r = hit ? (int)(intptr_t)hit[1] : -1, p;
		if (r >= 0)
			seen[r] = true;
		if ((p = plan_cert(c, res, r, &f->certs[i], account_ids[i], d, &out->items[out->n], err)) < 0)
			goto out;
		if (p == 0) {
			out->added += out->items[out->n].kind == SYNC_ADD;
			out->changed += out->items[out->n].kind == SYNC_CHANGE;
			out->n++;
		}
	}
	for (int r = 0; r < rows; r++) {
		struct sync_item *it = &out->items[out->n];
		if (seen[r] || strcmp(db_get(res, r, "retired"), "t") == 0)
			continue;
		*it = (struct sync_item){ .kind = SYNC_RETIRE, .certificate_id = db_get_i64(res, r, "id") };
		if ((it->names = strdup(db_get(res, r, "names"))) == NULL) {
			cf_errf(err, "sync: out of memory");
			goto out;
		}
		out->n++;
		out->retired++;
	}
	rc = 0;
out:
	if (rc != 0)
		sync_plan_free(out);
	free(keys);
	free(seen);
	PQclear(res);
	return rc;
}

void
sync_plan_print(FILE *f, const struct sync_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct sync_item *it = &p->items[i];
		if (it->kind == SYNC_CHANGE)
			fprintf(f, "~ %s: %s\n", it->names, it->what);
		else if (it->kind == SYNC_ADD && it->certificate_id)
			fprintf(f, "+ %s (returns to the fleet)\n", it->names);
		else
			fprintf(f, "%c %s\n", (char)it->kind, it->names);
	}
}

/* Cancels the unfinished jobs of the retired certificates (ids, an array literal). */
static int
cancel_jobs(PGconn *c, const char *ids, struct sync_plan *p, cf_err *err)
{
	const char *pr[] = { ids };
	PGresult *res;
	int rc = -1;

	if ((res = db_exec(c, "sync: finding the retired certificates' jobs", sql_retired_jobs, 1, pr, err)) == NULL)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		long now, later;
		if (queue_cancel(c, db_get(res, r, "job_id"), NULL, &now, &later, err) != 0)
			goto out;
		p->jobs_cancelled += now + later;
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

int
sync_apply(PGconn *c, struct sync_plan *p, const struct sync_defaults *d, int max_attempts,
    const char *label, cf_err *err)
{
	struct queue_enqueue_opts eo = { .default_provider = d->provider, .label = label,
		.max_attempts = max_attempts };
	struct queue_enqueue_result res = { 0 };
	struct queue_cert *qc = NULL;
	struct pgarray retire = { 0 };
	size_t nq = 0;
	int rc = -1;

	if ((qc = calloc(p->n + 1, sizeof(*qc))) == NULL) {
		cf_errf(err, "sync: out of memory");
		return -1;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct sync_item *it = &p->items[i];
		if (it->kind == SYNC_RETIRE) {
			pgarray_add_i64(&retire, it->certificate_id);
			continue;
		}
		/* every setting explicit: the file declares them, a default included */
		qc[nq++] = (struct queue_cert){ .names = it->fc->names, .nnames = it->fc->nnames,
			.line = (int)it->fc->index, .account_id = it->account_id,
			.key_type = it->fc->key_type ? it->fc->key_type : "ec-p256",
			.provider = it->fc->provider ? it->fc->provider : d->provider,
			.profile = it->fc->profile ? it->fc->profile : "" };
	}
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		goto out;
	if (nq > 0 && queue_enqueue_in(c, 0, &eo, qc, nq, &res, err) != 0)
		goto rollback;
	if (p->retired > 0) {
		const char *pr[] = { pgarray_finish(&retire) };
		if (pr[0] == NULL) {
			cf_errf(err, "sync: out of memory");
			goto rollback;
		}
		if (db_run(c, "sync: retiring certificates", sql_retire, 1, pr, err) != 0 ||
		    cancel_jobs(c, pr[0], p, err) != 0)
			goto rollback;
	}
	if (db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0)
		goto rollback;
	p->run_id = res.run_id;
	p->jobs_added = res.jobs_added;
	for (size_t i = 0, k = 0; i < p->n; i++)
		if (p->items[i].kind != SYNC_RETIRE)
			p->items[i].certificate_id = qc[k++].certificate_id;
	rc = 0;
	goto out;
rollback:
	PQclear(PQexec(c, "ROLLBACK"));
out:
	pgarray_free(&retire);
	free(qc);
	return rc;
}
