/*
 * renew.c - the decisions of `certfleet renew`: load the current certificates that have no job in
 * flight, read each CA's directory, ask renewalInfo (RFC 9773) where the next check is due, draw
 * a renewal time inside each window, decide who is due and why, and store it all in one
 * transaction: the ARI state in one statement, the due ones as one run (queue.c).
 */
#include "renew.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "calimits.h"
#include "db.h"
#include "log.h"
#include "pgarray.h"
#include "queue.h"

/*
 * A certificate's CA is the directory of its account (certificates.account_id), or of the account
 * of its latest job for rows older than that column. The leaf is read only where no CertID is
 * stored yet. Times come as unix seconds. A certificate retired from the declared fleet (sync) is
 * not renewed.
 */
static const char *const sql_load =
    "SELECT r.id, r.certificate_id, a.id AS account_id, a.directory_url, array_to_string(ce.names, ' ') AS names, "
    "r.ari_cert_id, CASE WHEN r.ari_cert_id IS NULL THEN r.leaf_pem END AS leaf_pem, "
    "extract(epoch FROM r.not_before)::bigint AS nb, extract(epoch FROM r.not_after)::bigint AS na, "
    "extract(epoch FROM r.revoked_at)::bigint AS revoked, "
    "extract(epoch FROM r.ari_window_start)::bigint AS ws, extract(epoch FROM r.ari_window_end)::bigint AS we, "
    "extract(epoch FROM r.ari_renew_at)::bigint AS ra, extract(epoch FROM r.ari_next_check)::bigint AS nc, "
    "r.ari_explanation_url "
    "FROM results r JOIN certificates ce ON ce.id = r.certificate_id "
    "JOIN accounts a ON a.id = coalesce(ce.account_id, "
    "(SELECT j.account_id FROM jobs j WHERE j.certificate_id = ce.id ORDER BY j.id DESC LIMIT 1)) "
    "WHERE r.is_current AND r.replaced_by IS NULL AND ce.retired_at IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM unfinished_jobs u WHERE u.certificate_id = r.certificate_id) "
    "ORDER BY r.id";

/*
 * The ARI state of a batch in one statement. A check that brought no window (ok false) leaves the
 * stored window, renewal time and explanation as they were; an unchecked row only gets its CertID.
 */
static const char *const sql_store_ari =
    "UPDATE results r SET ari_cert_id = coalesce(u.cid, r.ari_cert_id), "
    "ari_window_start = CASE WHEN u.ok THEN to_timestamp(u.ws) ELSE r.ari_window_start END, "
    "ari_window_end = CASE WHEN u.ok THEN to_timestamp(u.we) ELSE r.ari_window_end END, "
    "ari_renew_at = CASE WHEN u.ok THEN to_timestamp(u.ra) ELSE r.ari_renew_at END, "
    "ari_explanation_url = CASE WHEN u.ok THEN u.ex ELSE r.ari_explanation_url END, "
    "ari_next_check = CASE WHEN u.checked THEN to_timestamp(u.nc) ELSE r.ari_next_check END, "
    "ari_checked_at = CASE WHEN u.checked THEN now() ELSE r.ari_checked_at END, "
    "ari_error = CASE WHEN u.checked THEN u.err ELSE r.ari_error END "
    "FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::bool[], $5::bigint[], $6::bigint[], $7::bigint[], "
    "$8::bigint[], $9::text[], $10::text[]) AS u(id, cid, checked, ok, ws, we, ra, nc, ex, err) "
    "WHERE r.id = u.id";

const char *
renew_reason_name(enum renew_reason r)
{
	switch (r) {
	case RENEW_REVOKED:
		return "revoked";
	case RENEW_ARI:
		return "ari";
	case RENEW_LIFETIME:
		return "lifetime";
	case RENEW_FORCED:
		return "forced";
	case RENEW_NOT_DUE:
		break;
	}
	return "";
}

static int64_t
get_i64_or0(const PGresult *res, int r, const char *col)
{
	return db_get(res, r, col) ? db_get_i64(res, r, col) : 0;
}

/* The index of directory's CA in s, added when new; (size_t)-1 when out of memory. */
static size_t
ca_index(struct renew_set *s, const char *directory)
{
	struct renew_ca *cas;

	for (size_t i = 0; i < s->ncas; i++)
		if (strcmp(s->cas[i].directory_url, directory) == 0)
			return i;
	if ((cas = realloc(s->cas, (s->ncas + 1) * sizeof(*cas))) == NULL)
		return (size_t)-1;
	s->cas = cas;
	memset(&cas[s->ncas], 0, sizeof(cas[0]));
	if ((cas[s->ncas].directory_url = strdup(directory)) == NULL)
		return (size_t)-1;
	return s->ncas++;
}

/* Row r into the next certificate of s. */
static int
load_row(struct renew_set *s, const PGresult *res, int r, cf_err *err)
{
	struct renew_cert *rc = &s->certs[s->n];
	const char *cid = db_get(res, r, "ari_cert_id"), *ex = db_get(res, r, "ari_explanation_url");

	memset(rc, 0, sizeof(*rc));
	rc->result_id = db_get_i64(res, r, "id");
	rc->certificate_id = db_get_i64(res, r, "certificate_id");
	rc->account_id = db_get_i64(res, r, "account_id");
	rc->not_before = db_get_i64(res, r, "nb");
	rc->not_after = db_get_i64(res, r, "na");
	rc->revoked_at = get_i64_or0(res, r, "revoked");
	rc->has_window = db_get(res, r, "ws") && db_get(res, r, "we") && db_get(res, r, "ra");
	rc->win_start = get_i64_or0(res, r, "ws");
	rc->win_end = get_i64_or0(res, r, "we");
	rc->renew_at = get_i64_or0(res, r, "ra");
	rc->next_check = get_i64_or0(res, r, "nc");
	rc->names = strdup(db_get(res, r, "names") ? db_get(res, r, "names") : "");
	rc->explanation_url = ex ? strdup(ex) : NULL;
	rc->ca = ca_index(s, db_get(res, r, "directory_url"));
	if (rc->names == NULL || (ex && rc->explanation_url == NULL) || rc->ca == (size_t)-1) {
		cf_errf(err, "renew: out of memory loading result %" PRId64, rc->result_id);
		free(rc->names);
		free(rc->explanation_url);
		return -1;
	}
	if (cid != NULL) {
		snprintf(rc->certid, sizeof(rc->certid), "%s", cid);
	} else {
		cf_err cerr;
		/* a CertID that cannot be computed leaves the certificate to the lifetime fallback */
		if (certid_from_pem(db_get(res, r, "leaf_pem"), rc->certid, &cerr) == 0)
			rc->certid_new = true;
		else
			log_warn("renew: certificate %" PRId64 " (result %" PRId64 "): %s", rc->certificate_id,
			    rc->result_id, cerr.msg);
	}
	s->n++;
	return 0;
}

int
renew_load(PGconn *c, struct renew_set *s, cf_err *err)
{
	PGresult *res;
	int rc = -1;

	if ((res = db_exec(c, "renew: loading the current certificates", sql_load, 0, NULL, err)) == NULL)
		return -1;
	s->cap = (size_t)PQntuples(res);
	if (s->cap > 0 && (s->certs = calloc(s->cap, sizeof(*s->certs))) == NULL) {
		cf_errf(err, "renew: out of memory for %zu certificates", s->cap);
		goto out;
	}
	for (int r = 0; r < PQntuples(res); r++)
		if (load_row(s, res, r, err) != 0)
			goto out;
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* ---- the CAs ---- */

/* Reads ca's directory on the calling thread (before any loop runs) for its renewalInfo URL. */
static void
ca_directory(struct renew_ca *ca, const struct http_settings *http)
{
	struct http_req *req;
	json_t *dir = NULL, *ri;
	char desc[160];
	cf_err err;

	if ((req = http_req_new(http, ca->directory_url, NULL, NULL, false, &err)) == NULL) {
		snprintf(ca->error, sizeof(ca->error), "%.250s", err.msg);
		return;
	}
	if (http_req_perform(req, &err) != 0 || req->status != 200) {
		snprintf(ca->error, sizeof(ca->error), "ACME directory %.120s: %.100s", ca->directory_url,
		    http_req_error(req, desc, sizeof(desc)));
		goto out;
	}
	if ((dir = json_loadb(req->body.data, req->body.len, 0, NULL)) == NULL || !json_is_object(dir)) {
		snprintf(ca->error, sizeof(ca->error), "ACME directory %.120s: not a JSON object", ca->directory_url);
		goto out;
	}
	ri = json_object_get(dir, "renewalInfo");
	if (!json_is_string(ri))
		goto out; /* no ARI at this CA: the lifetime fallback */
	if (http_url_check(json_string_value(ri), http->allow_http_loopback, "renewalInfo", &err) != 0) {
		snprintf(ca->error, sizeof(ca->error), "ACME directory %.80s: %.150s", ca->directory_url, err.msg);
		goto out;
	}
	ca->renewal_info = strdup(json_string_value(ri));
out:
	json_decref(dir);
	http_req_free(req);
}

int
renew_directories(struct renew_set *s, const struct renew_options *o, cf_err *err)
{
	for (size_t i = 0; i < s->ncas; i++) {
		struct renew_ca *ca = &s->cas[i];
		cf_err lerr;
		if (calimits_setup(&ca->limits, o->ca_spec, ca->directory_url, ca->directory_url, NULL, NULL, &lerr) != 0) {
			cf_errf(err, "--ca-limits: %s", lerr.msg);
			return -1;
		}
		ca_directory(ca, &o->http);
		if (ca->error[0])
			log_warn("renew: %s: its certificates keep their stored windows", ca->error);
		else if (ca->renewal_info == NULL)
			log_info("renew: %s has no renewalInfo: its certificates renew by their lifetime", ca->directory_url);
	}
	return 0;
}

/* ---- ARI ---- */

int64_t
renew_pick_time(int64_t start, int64_t end, bool same_window, int64_t old_renew_at)
{
	uint64_t r = 0;

	if (same_window && old_renew_at >= start && old_renew_at <= end)
		return old_renew_at;
	if (end <= start)
		return start;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint64_t)cf_mono_ms() * 2654435761u;
	return start + (int64_t)(r % (uint64_t)(end - start + 1));
}

static int64_t
clamp_check(long retry_after_s, int64_t dflt)
{
	if (retry_after_s < 0)
		return dflt;
	if (retry_after_s < RENEW_CHECK_MIN_S)
		return RENEW_CHECK_MIN_S;
	return retry_after_s > RENEW_CHECK_MAX_S ? RENEW_CHECK_MAX_S : retry_after_s;
}

/* Takes in the answer of check k for certificate rc. */
static void
take_answer(struct renew_set *s, struct renew_cert *rc, struct ari_check *k, int64_t now)
{
	rc->ari = k->status;
	if (k->status == ARI_OK) {
		bool same = rc->has_window && rc->win_start == k->win.start_s && rc->win_end == k->win.end_s;
		rc->renew_at = renew_pick_time(k->win.start_s, k->win.end_s, same, rc->renew_at);
		rc->win_start = k->win.start_s;
		rc->win_end = k->win.end_s;
		rc->has_window = rc->fetched = true;
		free(rc->explanation_url);
		rc->explanation_url = k->win.explanation_url;
		k->win.explanation_url = NULL;
		rc->next_check = now + clamp_check(k->retry_after_s, RENEW_NEXT_CHECK_S);
		s->checks_ok++;
		return;
	}
	rc->ari_error = strdup(k->error);
	if (k->status == ARI_UNKNOWN) {
		rc->next_check = now + clamp_check(k->retry_after_s, RENEW_NEXT_CHECK_S);
		s->checks_unknown++;
	} else {
		rc->next_check = now + clamp_check(k->retry_after_s, RENEW_FAILED_CHECK_S);
		s->checks_failed++;
		log_warn("renew: certificate %" PRId64 " (%s): %s", rc->certificate_id, rc->names, k->error);
	}
}

/* A certificate whose CA's directory failed: its check fails without a request. */
static void
fail_without_check(struct renew_set *s, struct renew_cert *rc, const char *why, int64_t now)
{
	rc->checked = true;
	rc->ari = ARI_FAILED;
	rc->ari_error = strdup(why);
	rc->next_check = now + RENEW_FAILED_CHECK_S;
	s->checks++;
	s->checks_failed++;
}

static void
on_progress(void *arg, size_t done, size_t failed)
{
	const struct renew_set *s = arg;
	log_info("renew: renewalInfo %zu of %zu checked, %zu failed", done, s->checks, failed);
}

/* On a terminal: the same, as a live line rewritten in place (cleared when the checks end). */
static void
on_progress_live(void *arg, size_t done, size_t failed)
{
	const struct renew_set *s = arg;
	char line[128];

	snprintf(line, sizeof(line), "renew: renewalInfo %zu of %zu checked, %zu failed", done, s->checks, failed);
	cf_log_status(line);
}

int
renew_check(struct renew_set *s, const struct renew_options *o, cf_err *err)
{
	struct ari_check *checks = NULL;
	size_t *which = NULL, n = 0;
	char **urls = NULL;
	struct loop *loop = NULL;
	struct ari_config cfg = { 0 };
	bool live = false;
	int ret = -1, fetched;

	if (s->n > 0 && ((checks = calloc(s->n, sizeof(*checks))) == NULL || (which = calloc(s->n, sizeof(*which))) == NULL ||
	    (urls = calloc(s->n, sizeof(*urls))) == NULL)) {
		cf_errf(err, "renew: out of memory for %zu checks", s->n);
		goto out;
	}
	for (size_t i = 0; i < s->n; i++) {
		struct renew_cert *rc = &s->certs[i];
		struct renew_ca *ca = &s->cas[rc->ca];
		if (rc->next_check > o->now || rc->certid[0] == '\0')
			continue;
		if (ca->error[0]) {
			fail_without_check(s, rc, ca->error, o->now);
			continue;
		}
		if (ca->renewal_info == NULL)
			continue;
		const char *sep = ca->renewal_info[strlen(ca->renewal_info) - 1] == '/' ? "" : "/";
		if (asprintf(&urls[n], "%s%s%s", ca->renewal_info, sep, rc->certid) < 0) {
			urls[n] = NULL;
			cf_errf(err, "renew: out of memory");
			goto out;
		}
		checks[n].url = urls[n];
		checks[n].limit = ca->limits.other;
		which[n++] = i;
		rc->checked = true;
	}
	s->checks += n;
	if (n > 0) {
		cfg.http = o->http;
		cfg.max_inflight = o->max_inflight;
		live = o->progress && isatty(STDERR_FILENO) && cf_log_get_format() == CF_LOG_TEXT;
		cfg.progress = live ? on_progress_live : o->progress ? on_progress : NULL;
		cfg.progress_arg = s;
		cfg.progress_ms = live ? 500 : 2000;
		if ((loop = loop_new(&(struct loop_options){ .max_host_connections = 8 }, err)) == NULL)
			goto out;
		fetched = ari_fetch(loop, &cfg, checks, n, err);
		if (live)
			cf_log_status(NULL);
		if (fetched != 0)
			goto out;
		for (size_t k = 0; k < n; k++)
			take_answer(s, &s->certs[which[k]], &checks[k], o->now);
	}
	ret = 0;
out:
	if (checks)
		ari_checks_clear(checks, n);
	for (size_t k = 0; urls && k < n; k++)
		free(urls[k]);
	free(urls);
	free(which);
	free(checks);
	loop_free(loop);
	return ret;
}

/* ---- decisions ---- */

int64_t
renew_lifetime_due(int64_t not_before, int64_t not_after)
{
	int64_t life = not_after - not_before;
	return not_before + (life < RENEW_SHORT_LIFETIME_S ? life / 2 : life * 2 / 3);
}

/* True when name is one of the space-separated names. */
static bool
has_name(const char *names, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = names; (p = strstr(p, name)) != NULL; p += n)
		if ((p == names || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
			return true;
	return false;
}

void
renew_force(struct renew_set *s, char **force_names, size_t nforce, bool force_all, bool *matched)
{
	for (size_t k = 0; matched && k < nforce; k++)
		matched[k] = false;
	for (size_t i = 0; i < s->n; i++) {
		bool f = force_all;
		for (size_t k = 0; k < nforce; k++)
			if (has_name(s->certs[i].names, force_names[k])) {
				f = true;
				if (matched)
					matched[k] = true;
			}
		s->certs[i].forced = f;
	}
}

void
renew_decide(struct renew_set *s, int64_t now)
{
	memset(s->due, 0, sizeof(s->due));
	for (size_t i = 0; i < s->n; i++) {
		struct renew_cert *rc = &s->certs[i];
		int64_t life_due = renew_lifetime_due(rc->not_before, rc->not_after);
		rc->reason = RENEW_NOT_DUE;
		rc->due_at = 0;
		/* the most telling reason first: a revocation, the CA's window, the lifetime, the operator */
		if (rc->revoked_at != 0) {
			rc->reason = RENEW_REVOKED;
			rc->due_at = rc->revoked_at;
		} else if (rc->has_window && rc->renew_at <= now) {
			rc->reason = RENEW_ARI;
			rc->due_at = rc->renew_at;
		} else if (!rc->has_window && life_due <= now) {
			/* no window ever came from the CA (no ARI, unknown to it, or failing): the lifetime decides */
			rc->reason = RENEW_LIFETIME;
			rc->due_at = life_due;
		} else if (rc->forced) {
			rc->reason = RENEW_FORCED;
			rc->due_at = now;
		}
		s->due[rc->reason]++;
	}
}

/* ---- storing ---- */

struct ari_cols {
	struct pgarray id, cid, checked, ok, ws, we, ra, nc, ex, err;
};

static void
ari_cols_free(struct ari_cols *a)
{
	struct pgarray *all[] = { &a->id, &a->cid, &a->checked, &a->ok, &a->ws, &a->we, &a->ra, &a->nc, &a->ex, &a->err };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		pgarray_free(all[i]);
}

static void
add_i64_or_null(struct pgarray *a, bool set, int64_t v)
{
	if (set)
		pgarray_add_i64(a, v);
	else
		pgarray_add(a, NULL);
}

/* The ARI state of every certificate checked or given a CertID now; 0 rows is fine. */
static int
store_ari(PGconn *c, const struct renew_set *s, cf_err *err)
{
	struct ari_cols a = { 0 };
	size_t rows = 0;
	int rc = -1;

	for (size_t i = 0; i < s->n; i++) {
		const struct renew_cert *r = &s->certs[i];
		if (!r->checked && !r->certid_new)
			continue;
		rows++;
		pgarray_add_i64(&a.id, r->result_id);
		pgarray_add(&a.cid, r->certid[0] ? r->certid : NULL);
		pgarray_add_bool(&a.checked, r->checked);
		pgarray_add_bool(&a.ok, r->fetched);
		add_i64_or_null(&a.ws, r->fetched, r->win_start);
		add_i64_or_null(&a.we, r->fetched, r->win_end);
		add_i64_or_null(&a.ra, r->fetched, r->renew_at);
		add_i64_or_null(&a.nc, r->checked, r->next_check);
		pgarray_add(&a.ex, r->fetched ? r->explanation_url : NULL);
		pgarray_add(&a.err, r->checked ? r->ari_error : NULL);
	}
	if (rows == 0) {
		rc = 0;
		goto out;
	}
	const char *p[] = { pgarray_finish(&a.id), pgarray_finish(&a.cid), pgarray_finish(&a.checked),
		pgarray_finish(&a.ok), pgarray_finish(&a.ws), pgarray_finish(&a.we), pgarray_finish(&a.ra),
		pgarray_finish(&a.nc), pgarray_finish(&a.ex), pgarray_finish(&a.err) };
	for (size_t k = 0; k < 10; k++)
		if (p[k] == NULL) {
			cf_errf(err, "renew: out of memory for the ARI state of %zu certificates", rows);
			goto out;
		}
	rc = db_run(c, "renew: storing the ARI state", sql_store_ari, 10, p, err);
out:
	ari_cols_free(&a);
	return rc;
}

int
renew_store(PGconn *c, const struct renew_set *s, const char *label, int max_attempts,
    struct queue_renew_result *out, cf_err *err)
{
	struct queue_renewal *due = NULL;
	size_t ndue = 0;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (s->n > 0 && (due = calloc(s->n, sizeof(*due))) == NULL) {
		cf_errf(err, "renew: out of memory");
		return -1;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct renew_cert *r = &s->certs[i];
		if (r->reason == RENEW_NOT_DUE)
			continue;
		due[ndue].certificate_id = r->certificate_id;
		due[ndue].account_id = r->account_id;
		due[ndue].reason = renew_reason_name(r->reason);
		due[ndue++].replaces = r->certid[0] ? r->certid : NULL;
	}
	if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
		goto out;
	if (store_ari(c, s, err) != 0 || queue_enqueue_renewals(c, due, ndue, label, max_attempts, out, err) != 0 ||
	    db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0) {
		PQclear(PQexec(c, "ROLLBACK"));
		memset(out, 0, sizeof(*out));
		goto out;
	}
	rc = 0;
out:
	free(due);
	return rc;
}

void
renew_set_free(struct renew_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->certs[i].names);
		free(s->certs[i].explanation_url);
		free(s->certs[i].ari_error);
	}
	free(s->certs);
	for (size_t i = 0; i < s->ncas; i++) {
		free(s->cas[i].directory_url);
		free(s->cas[i].renewal_info);
		calimits_clear(&s->cas[i].limits);
	}
	free(s->cas);
	memset(s, 0, sizeof(*s));
}
