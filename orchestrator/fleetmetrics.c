/*
 * fleetmetrics.c - the fleet's gauges from PostgreSQL: certificates by state, expiring within 7,
 * 14 and 30 days, days to expiry as a histogram, failures by problem type over 24 hours, and the
 * last run. Every query aggregates in PostgreSQL: no series per certificate, and no row per
 * certificate crosses the connection.
 */
#include "fleetmetrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "metrics.h"

/* The histogram's buckets, in days; exposed in seconds, Prometheus's base unit (le="604800" is 7 days). */
static const double expiry_days[] = { 0, 1, 3, 7, 14, 21, 30, 45, 60, 90 };
static const double expiry_seconds[] = { 0, 1 * 86400, 3 * 86400, 7 * 86400, 14 * 86400, 21 * 86400, 30 * 86400,
	45 * 86400, 60 * 86400, 90 * 86400 };
#define NEXPIRY (sizeof(expiry_days) / sizeof(expiry_days[0]))

static struct metrics_family certs_by_state = METRICS_FAMILY("certfleet_certificates",
    "Certificates of the fleet by state: valid (a current certificate, not expired), expired, pending (no "
    "certificate yet, a job queued or running), failed (no certificate, the last job failed), retired, none.",
    METRICS_GAUGE, "state", NULL, NULL, 0);
static struct metrics_family certs_expiring = METRICS_FAMILY("certfleet_certificates_expiring",
    "Certificates in the fleet (not retired) whose current certificate expires within the days given.",
    METRICS_GAUGE, "within_days", NULL, NULL, 0);
static struct metrics_family days_to_expiry = METRICS_FAMILY("certfleet_certificate_expiry_seconds",
    "Time from now to the expiry of each current certificate of the fleet (not retired); buckets of 0, 1, 3, 7, "
    "14, 21, 30, 45, 60 and 90 days.", METRICS_HISTOGRAM, NULL, NULL, expiry_seconds, NEXPIRY);
static struct metrics_family failures_24h = METRICS_FAMILY("certfleet_job_failures_24h",
    "Jobs that failed for good in the last 24 hours, by ACME or certfleet problem type.", METRICS_GAUGE,
    "problem_type", NULL, NULL, 0);
static struct metrics_family last_run_end = METRICS_FAMILY("certfleet_last_run_end_timestamp_seconds",
    "When the jobs of the newest run (one enqueue, renew or sync batch) last finished, as a Unix time; 0 "
    "while none did.", METRICS_GAUGE, NULL, NULL, NULL, 0);
static struct metrics_family last_run_jobs = METRICS_FAMILY("certfleet_last_run_jobs",
    "The jobs of the newest run by state.", METRICS_GAUGE, "state", NULL, NULL, 0);
static struct metrics_family last_run_success = METRICS_FAMILY("certfleet_last_run_success",
    "1 when every job of the newest run is issued or cancelled, 0 when one failed or some are unfinished.",
    METRICS_GAUGE, NULL, NULL, NULL, 0);
static struct metrics_family fleet_up = METRICS_FAMILY("certfleet_fleet_scrape_timestamp_seconds",
    "When these fleet gauges were read from PostgreSQL, as a Unix time.", METRICS_GAUGE, NULL, NULL, NULL, 0);

/* The certificates' states: one pass over certificates with their current result and active job. */
static const char certs_sql[] =
    "SELECT st, count(*) FROM (SELECT CASE WHEN ce.retired_at IS NOT NULL THEN 'retired' "
    "WHEN r.not_after > now() THEN 'valid' WHEN r.not_after IS NOT NULL THEN 'expired' "
    "WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.certificate_id = ce.id AND j.state IN ('ready', 'running')) "
    "THEN 'pending' "
    "WHEN (SELECT j.state FROM jobs j WHERE j.certificate_id = ce.id ORDER BY j.id DESC LIMIT 1) = 'failed' "
    "THEN 'failed' ELSE 'none' END AS st "
    "FROM certificates ce LEFT JOIN results r ON r.certificate_id = ce.id AND r.is_current) s GROUP BY st";

/* The current certificates' days to expiry, bucketed in PostgreSQL: one row. */
static int
expiry_sql(cf_buf *q)
{
	if (cf_buf_printf(q, "SELECT count(*), coalesce(sum(d), 0)") != 0)
		return -1;
	for (size_t b = 0; b < NEXPIRY; b++)
		if (cf_buf_printf(q, ", count(*) FILTER (WHERE d <= %g)", expiry_days[b]) != 0)
			return -1;
	return cf_buf_printf(q, ", count(*) FILTER (WHERE d > 0 AND d <= 7), count(*) FILTER (WHERE d > 0 AND d <= 14), "
	                        "count(*) FILTER (WHERE d > 0 AND d <= 30) FROM (SELECT extract(epoch FROM r.not_after - "
	                        "now()) / 86400 AS d FROM results r JOIN certificates ce ON ce.id = r.certificate_id "
	                        "WHERE r.is_current AND ce.retired_at IS NULL) x");
}

static const char failures_sql[] =
    "SELECT coalesce(nullif(last_problem_type, ''), 'unknown'), count(*) FROM jobs "
    "WHERE state = 'failed' AND finished_at > now() - interval '24 hours' GROUP BY 1 ORDER BY 2 DESC";

/* The newest run that has jobs: its jobs by state and when the last of them finished. */
static const char last_run_sql[] =
    "WITH lr AS (SELECT run_id FROM jobs WHERE run_id IS NOT NULL ORDER BY run_id DESC LIMIT 1) "
    "SELECT count(*) FILTER (WHERE state = 'issued'), count(*) FILTER (WHERE state = 'failed'), "
    "count(*) FILTER (WHERE state = 'cancelled'), count(*) FILTER (WHERE state IN ('ready', 'running')), "
    "coalesce(extract(epoch FROM max(finished_at)), 0), count(*) FROM jobs WHERE run_id = (SELECT run_id FROM lr)";

static int
read_certs(PGconn *c, cf_err *err)
{
	static const char *const states[] = { "valid", "expired", "pending", "failed", "retired", "none" };
	PGresult *res = db_exec(c, "counting certificates by state", certs_sql, 0, NULL, err);

	if (res == NULL)
		return -1;
	/* every state shows, 0 when none: an alert on a state needs the series to exist */
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		metrics_set(metrics_series(&certs_by_state, states[i], NULL), 0);
	for (int r = 0; r < PQntuples(res); r++)
		metrics_set(metrics_series(&certs_by_state, PQgetvalue(res, r, 0), NULL), atof(PQgetvalue(res, r, 1)));
	PQclear(res);
	return 0;
}

static int
read_expiry(PGconn *c, cf_err *err)
{
	static const char *const within[] = { "7", "14", "30" };
	cf_buf q = { 0 };
	PGresult *res = NULL;
	uint64_t per[NEXPIRY], prev = 0;

	if (expiry_sql(&q) != 0) {
		cf_buf_free(&q);
		cf_errf(err, "counting certificates by expiry: out of memory");
		return -1;
	}
	res = db_exec(c, "counting certificates by expiry", q.data, 0, NULL, err);
	cf_buf_free(&q);
	if (res == NULL)
		return -1;
	for (size_t b = 0; b < NEXPIRY; b++) {
		uint64_t cum = strtoull(PQgetvalue(res, 0, 2 + (int)b), NULL, 10);
		per[b] = cum - prev;
		prev = cum;
	}
	metrics_histogram_set(&days_to_expiry, metrics_series(&days_to_expiry, NULL, NULL), per,
	    strtoull(PQgetvalue(res, 0, 0), NULL, 10), atof(PQgetvalue(res, 0, 1)) * 86400);
	for (int i = 0; i < 3; i++)
		metrics_set(metrics_series(&certs_expiring, within[i], NULL), atof(PQgetvalue(res, 0, 2 + (int)NEXPIRY + i)));
	PQclear(res);
	return 0;
}

static int
read_failures(PGconn *c, cf_err *err)
{
	PGresult *res = db_exec(c, "counting failures of the last 24 hours", failures_sql, 0, NULL, err);

	if (res == NULL)
		return -1;
	/* a type seen before and not failing now reads 0; past METRICS_MAX_SERIES types, "other" */
	metrics_zero(&failures_24h);
	for (int r = 0; r < PQntuples(res); r++)
		metrics_add(metrics_series(&failures_24h, PQgetvalue(res, r, 0), NULL), atof(PQgetvalue(res, r, 1)));
	PQclear(res);
	return 0;
}

static int
read_last_run(PGconn *c, cf_err *err)
{
	static const char *const states[] = { "issued", "failed", "cancelled", "unfinished" };
	PGresult *res = db_exec(c, "reading the last run", last_run_sql, 0, NULL, err);

	if (res == NULL)
		return -1;
	for (int i = 0; i < 4; i++)
		metrics_set(metrics_series(&last_run_jobs, states[i], NULL), atof(PQgetvalue(res, 0, i)));
	bool ok = atol(PQgetvalue(res, 0, 5)) > 0 && atol(PQgetvalue(res, 0, 1)) == 0 && atol(PQgetvalue(res, 0, 3)) == 0;
	/* a run still working: the end of its latest job so far, and success 0 until it ends */
	metrics_set(metrics_series(&last_run_end, NULL, NULL), atof(PQgetvalue(res, 0, 4)));
	metrics_set(metrics_series(&last_run_success, NULL, NULL), ok ? 1 : 0);
	PQclear(res);
	return 0;
}

int
fleetmetrics_render(PGconn *c, cf_buf *out, cf_err *err)
{
	struct metrics_family *const fams[] = {
		&certs_by_state, &certs_expiring, &days_to_expiry, &failures_24h, &last_run_end, &last_run_jobs,
		&last_run_success, &fleet_up,
	};

	if (read_certs(c, err) != 0 || read_expiry(c, err) != 0 || read_failures(c, err) != 0 ||
	    read_last_run(c, err) != 0)
		return -1;
	metrics_set(metrics_series(&fleet_up, NULL, NULL), cf_wall_ms() / 1000.0);
	if (metrics_render(fams, sizeof(fams) / sizeof(fams[0]), out) != 0) {
		cf_errf(err, "rendering the fleet metrics: out of memory");
		return -1;
	}
	return 0;
}
