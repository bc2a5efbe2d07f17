/* cmd_report.c - `certfleet report`: the fleet from the reporting views, on the terminal or as HTML. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "db.h"
#include "html.h"
#include "log.h"

/* What a report shows, one result per part, read from the views of sql/010_reporting.sql. */
struct report {
	PGresult *fleet;     /* state, certificates */
	PGresult *expiring;  /* d7, d14, d30 */
	PGresult *buckets;   /* bucket, certificates */
	PGresult *failures;  /* problem_type, failures */
	PGresult *runs;      /* run_id, label, created_at, jobs, issued, failed, cancelled, ... */
	PGresult *providers; /* provider, orders, avg_s, p95_s */
};

static const char sql_fleet[] = "SELECT state, certificates FROM report_fleet ORDER BY ord";
static const char sql_expiring[] =
    "SELECT count(*) FILTER (WHERE not_after < now() + interval '7 days') AS d7, "
    "count(*) FILTER (WHERE not_after < now() + interval '14 days') AS d14, "
    "count(*) FILTER (WHERE not_after < now() + interval '30 days') AS d30 "
    "FROM report_certificates WHERE state = 'valid'";
static const char sql_buckets[] = "SELECT bucket, certificates FROM report_expiry_buckets ORDER BY ord";
static const char sql_failures[] =
    "SELECT problem_type, failures FROM report_failures_24h ORDER BY failures DESC, problem_type";
/* runs, the latest queued last: the terminal shows 5, the HTML file those of the last 30 days (at most 200) */
static const char sql_runs[] =
    "SELECT * FROM (SELECT run_id, created_at, coalesce(label, '') AS label, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created, jobs, issued, failed, cancelled, "
    "unfinished, round(duration_s::numeric, 1) AS duration_s, "
    "coalesce(round(issued_per_s::numeric, 2)::text, '') AS rate FROM report_runs "
    "WHERE created_at > now() - interval '30 days' ORDER BY created_at DESC, run_id DESC LIMIT $1::int) r "
    "ORDER BY created_at, run_id";
static const char sql_providers[] =
    "SELECT provider, orders, round(avg_s::numeric, 2) AS avg_s, round(p95_s::numeric, 2) AS p95_s "
    "FROM report_provider_latency ORDER BY avg_s DESC, provider LIMIT 10";

static void
report_free(struct report *r)
{
	PQclear(r->fleet);
	PQclear(r->expiring);
	PQclear(r->buckets);
	PQclear(r->failures);
	PQclear(r->runs);
	PQclear(r->providers);
}

/* Reads every part in one snapshot; 0, or -1 with err set. */
static int
report_load(PGconn *c, struct report *r, int nruns, cf_err *err)
{
	char lim[16];
	const char *p[] = { lim };
	PGresult *t;

	snprintf(lim, sizeof(lim), "%d", nruns);
	if ((t = db_exec(c, "starting the report's snapshot",
	    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err)) == NULL)
		return -1;
	PQclear(t);
	/* a few scans of the fleet each: compiling them (JIT) costs more than it saves */
	if ((t = db_exec(c, "setting jit off", "SET LOCAL jit = off", 0, NULL, err)) == NULL)
		return -1;
	PQclear(t);
	if ((r->fleet = db_exec(c, "reading report_fleet", sql_fleet, 0, NULL, err)) == NULL ||
	    (r->expiring = db_exec(c, "reading report_certificates", sql_expiring, 0, NULL, err)) == NULL ||
	    (r->buckets = db_exec(c, "reading report_expiry_buckets", sql_buckets, 0, NULL, err)) == NULL ||
	    (r->failures = db_exec(c, "reading report_failures_24h", sql_failures, 0, NULL, err)) == NULL ||
	    (r->runs = db_exec(c, "reading report_runs", sql_runs, 1, p, err)) == NULL ||
	    (r->providers = db_exec(c, "reading report_provider_latency", sql_providers, 0, NULL, err)) == NULL)
		return -1;
	if ((t = db_exec(c, "ending the report's snapshot", "COMMIT", 0, NULL, err)) == NULL)
		return -1;
	PQclear(t);
	return 0;
}

static long
report_total(const struct report *r)
{
	long n = 0;

	for (int i = 0; i < PQntuples(r->fleet); i++)
		n += strtol(db_get(r->fleet, i, "certificates"), NULL, 10);
	return n;
}

static void
report_print(const struct report *r)
{
	char q[4 * 120 + 8];

	printf("fleet: %ld certificates\n", report_total(r));
	for (int i = 0; i < PQntuples(r->fleet); i++)
		printf("  %-9s %s\n", db_get(r->fleet, i, "state"), db_get(r->fleet, i, "certificates"));
	printf("expiring (valid certificates):\n  within 7 days   %s\n  within 14 days  %s\n  within 30 days  %s\n",
	    db_get(r->expiring, 0, "d7"), db_get(r->expiring, 0, "d14"), db_get(r->expiring, 0, "d30"));
	printf("failures in the last 24 h by reason:%s\n", PQntuples(r->failures) == 0 ? " none" : "");
	for (int i = 0; i < PQntuples(r->failures); i++) {
		/* the CA's or a provider's words: quoted for the terminal */
		const char *t = db_get(r->failures, i, "problem_type");
		cf_quote(q, sizeof(q), t, strlen(t), 120);
		printf("  %6s  %s\n", db_get(r->failures, i, "failures"), q);
	}
	printf("last runs:%s\n", PQntuples(r->runs) == 0 ? " none in 30 days" : "");
	for (int i = 0; i < PQntuples(r->runs); i++) {
		const char *l = db_get(r->runs, i, "label"), *rate = db_get(r->runs, i, "rate");
		cf_quote(q, sizeof(q), l, strlen(l), 60);
		printf("  run %s%s%s%s %s UTC: %s jobs, %s issued, %s failed, %s cancelled, %s unfinished, %s s%s%s%s\n",
		    db_get(r->runs, i, "run_id"), *l ? " (" : "", *l ? q : "", *l ? ")" : "",
		    db_get(r->runs, i, "created"), db_get(r->runs, i, "jobs"), db_get(r->runs, i, "issued"),
		    db_get(r->runs, i, "failed"), db_get(r->runs, i, "cancelled"), db_get(r->runs, i, "unfinished"),
		    db_get(r->runs, i, "duration_s"), *rate ? ", " : "", rate, *rate ? " issued/s" : "");
	}
}

/* The page's style: fluid, nothing wider than the screen, readable on a phone. */
static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>certfleet report</title>\n<style>\n"
    "body{font-family:system-ui,sans-serif;margin:0 auto;padding:0.75rem;max-width:60rem;color:#1b1f24;background:#fff}\n"
    "h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem;border-bottom:1px solid #d0d7de}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:0.5rem}\n"
    ".card{flex:1 1 7rem;border:1px solid #d0d7de;border-radius:6px;padding:0.5rem}\n"
    ".card .n{display:block;font-size:1.5rem;font-weight:600}\n"
    "svg{width:100%;height:auto;display:block}\n"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:0.9rem}\n"
    "td,th{padding:0.25rem 0.4rem;border-bottom:1px solid #eaeef2;text-align:left}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".reason{word-break:break-all}\n"
    "</style>\n</head>\n<body>\n";

#define HE(b, s) (html_escape((b), (s)) == 0)

/* A figure card: <div class="card"><span class="n" id=ID data-value=V>V</span>LABEL</div>. */
static bool
html_card(cf_buf *b, const char *id, const char *value, const char *label)
{
	return cf_buf_printf(b, "<div class=\"card\"><span class=\"n\" id=\"%s\" data-value=\"", id) == 0 &&
	    HE(b, value) && cf_buf_printf(b, "\">") == 0 && HE(b, value) &&
	    cf_buf_printf(b, "</span>") == 0 && HE(b, label) && cf_buf_printf(b, "</div>\n") == 0;
}

/* Vertical bars, one per row of res: label column lcol, value column vcol; each bar a rect of
 * class "bar" with data-label and data-value. numbered: the bars are captioned 1, 2, ... (long
 * labels, listed in a table beside), else with their labels. */
static bool
html_bars(cf_buf *b, const char *id, const PGresult *res, const char *lcol, const char *vcol, const char *title,
    bool numbered)
{
	int n = PQntuples(res);
	double max = 0;
	const int w = 600, h = 220, top = 20, bottom = 40;
	double slot = n > 0 ? (double)w / n : w;

	for (int i = 0; i < n; i++) {
		double v = strtod(db_get(res, i, vcol), NULL);
		if (v > max)
			max = v;
	}
	if (cf_buf_printf(b, "<svg id=\"%s\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", id, w, h) != 0 ||
	    !HE(b, title) || cf_buf_printf(b, "\">\n<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#8c959f\"/>\n",
	    h - bottom, w, h - bottom) != 0)
		return false;
	for (int i = 0; i < n; i++) {
		const char *l = db_get(res, i, lcol), *vs = db_get(res, i, vcol);
		char num[16];
		double v = strtod(vs, NULL), bh = max > 0 ? v / max * (h - top - bottom) : 0;
		double x = i * slot + slot * 0.15, bw = slot * 0.7;
		if (cf_buf_printf(b, "<rect class=\"bar\" data-label=\"") != 0 || !HE(b, l) ||
		    cf_buf_printf(b, "\" data-value=\"") != 0 || !HE(b, vs) ||
		    cf_buf_printf(b, "\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#0969da\"><title>",
		    x, h - bottom - bh, bw, bh) != 0 || !HE(b, l) || cf_buf_printf(b, ": ") != 0 || !HE(b, vs) ||
		    cf_buf_printf(b, "</title></rect>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">",
		    x + bw / 2, h - bottom - bh - 4) != 0 || !HE(b, vs) ||
		    cf_buf_printf(b, "</text>\n<text x=\"%.1f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">",
		    x + bw / 2, h - bottom + 18) != 0)
			return false;
		snprintf(num, sizeof(num), "%d", i + 1);
		if (!HE(b, numbered ? num : l) || cf_buf_printf(b, "</text>\n") != 0)
			return false;
	}
	return cf_buf_printf(b, "</svg>\n") == 0;
}

/* The HTML page: every value from the database escaped, the numbers marked with ids and data-*. */
static bool
report_html(cf_buf *b, const struct report *r, const char *generated)
{
	char total[24];

	snprintf(total, sizeof(total), "%ld", report_total(r));
	if (cf_buf_append(b, html_head, sizeof(html_head) - 1) != 0 ||
	    cf_buf_printf(b, "<h1>certfleet report</h1>\n<p>Generated <time id=\"generated\">") != 0 ||
	    !HE(b, generated) || cf_buf_printf(b, "</time> UTC.</p>\n") != 0)
		return false;

	if (cf_buf_printf(b, "<section id=\"fleet\">\n<h2>Fleet</h2>\n<div class=\"cards\">\n") != 0 ||
	    !html_card(b, "fleet-total", total, "certificates"))
		return false;
	for (int i = 0; i < PQntuples(r->fleet); i++) {
		char id[64];
		snprintf(id, sizeof(id), "fleet-%s", db_get(r->fleet, i, "state"));
		if (!html_card(b, id, db_get(r->fleet, i, "certificates"), db_get(r->fleet, i, "state")))
			return false;
	}
	if (!html_card(b, "expiring-7", db_get(r->expiring, 0, "d7"), "expire within 7 days") ||
	    !html_card(b, "expiring-14", db_get(r->expiring, 0, "d14"), "expire within 14 days") ||
	    !html_card(b, "expiring-30", db_get(r->expiring, 0, "d30"), "expire within 30 days") ||
	    cf_buf_printf(b, "</div>\n</section>\n") != 0)
		return false;

	if (cf_buf_printf(b, "<section id=\"expiry\">\n<h2>Days to expiry</h2>\n"
	    "<p>Certificates with a current result, by days left before notAfter.</p>\n") != 0 ||
	    !html_bars(b, "expiry-chart", r->buckets, "bucket", "certificates", "certificates by days to expiry", false) ||
	    cf_buf_printf(b, "</section>\n") != 0)
		return false;

	if (cf_buf_printf(b, "<section id=\"failures\">\n<h2>Failures in the last 24 hours by reason</h2>\n") != 0)
		return false;
	if (PQntuples(r->failures) == 0 && cf_buf_printf(b, "<p id=\"failures-none\">None.</p>\n") != 0)
		return false;
	if (PQntuples(r->failures) > 0) {
		if (!html_bars(b, "failures-chart", r->failures, "problem_type", "failures", "failures by reason", true) ||
		    cf_buf_printf(b, "<div class=\"scroll\"><table id=\"failures-table\">\n"
		    "<tr><th>#</th><th>Reason</th><th class=\"num\">Failures</th></tr>\n") != 0)
			return false;
		for (int i = 0; i < PQntuples(r->failures); i++) {
			const char *t = db_get(r->failures, i, "problem_type"), *n = db_get(r->failures, i, "failures");
			if (cf_buf_printf(b, "<tr class=\"failure\" data-reason=\"") != 0 || !HE(b, t) ||
			    cf_buf_printf(b, "\" data-value=\"") != 0 || !HE(b, n) ||
			    cf_buf_printf(b, "\"><td>%d</td><td class=\"reason\">", i + 1) != 0 || !HE(b, t) ||
			    cf_buf_printf(b, "</td><td class=\"num\">") != 0 || !HE(b, n) ||
			    cf_buf_printf(b, "</td></tr>\n") != 0)
				return false;
		}
		if (cf_buf_printf(b, "</table></div>\n") != 0)
			return false;
	}
	if (cf_buf_printf(b, "</section>\n") != 0)
		return false;

	if (cf_buf_printf(b, "<section id=\"runs\">\n<h2>Runs of the last 30 days</h2>\n") != 0)
		return false;
	if (PQntuples(r->runs) == 0 && cf_buf_printf(b, "<p id=\"runs-none\">None.</p>\n") != 0)
		return false;
	if (PQntuples(r->runs) > 0) {
		if (cf_buf_printf(b, "<p>Certificates issued per second, from the enqueue to the last job's end.</p>\n") != 0 ||
		    !html_bars(b, "runs-chart", r->runs, "run_id", "rate", "issued per second by run", false) ||
		    cf_buf_printf(b, "<div class=\"scroll\"><table id=\"runs-table\">\n<tr><th>Run</th><th>Queued (UTC)</th>"
		    "<th class=\"num\">Jobs</th><th class=\"num\">Issued</th><th class=\"num\">Failed</th>"
		    "<th class=\"num\">Seconds</th><th class=\"num\">Issued/s</th></tr>\n") != 0)
			return false;
		for (int i = PQntuples(r->runs) - 1; i >= 0; i--) {
			static const char *const cols[] = { "jobs", "issued", "failed", "duration_s", "rate" };
			if (cf_buf_printf(b, "<tr class=\"run\" data-run=\"") != 0 || !HE(b, db_get(r->runs, i, "run_id")))
				return false;
			for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
				if (cf_buf_printf(b, "\" data-%s=\"", cols[k]) != 0 || !HE(b, db_get(r->runs, i, cols[k])))
					return false;
			if (cf_buf_printf(b, "\"><td>") != 0 || !HE(b, db_get(r->runs, i, "run_id")) ||
			    cf_buf_printf(b, " ") != 0 || !HE(b, db_get(r->runs, i, "label")) ||
			    cf_buf_printf(b, "</td><td>") != 0 || !HE(b, db_get(r->runs, i, "created")))
				return false;
			for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
				if (cf_buf_printf(b, "</td><td class=\"num\">") != 0 || !HE(b, db_get(r->runs, i, cols[k])))
					return false;
			if (cf_buf_printf(b, "</td></tr>\n") != 0)
				return false;
		}
		if (cf_buf_printf(b, "</table></div>\n") != 0)
			return false;
	}
	if (cf_buf_printf(b, "</section>\n") != 0)
		return false;

	if (cf_buf_printf(b, "<section id=\"providers\">\n<h2>Slowest provider accounts</h2>\n"
	    "<p>Orders of the last 30 days: seconds from the order to its last step.</p>\n") != 0)
		return false;
	if (PQntuples(r->providers) == 0 && cf_buf_printf(b, "<p id=\"providers-none\">None.</p>\n") != 0)
		return false;
	if (PQntuples(r->providers) > 0) {
		if (cf_buf_printf(b, "<div class=\"scroll\"><table id=\"providers-table\">\n<tr><th>Provider account</th>"
		    "<th class=\"num\">Orders</th><th class=\"num\">Mean s</th><th class=\"num\">p95 s</th></tr>\n") != 0)
			return false;
		for (int i = 0; i < PQntuples(r->providers); i++) {
			const char *pv = db_get(r->providers, i, "provider"), *o = db_get(r->providers, i, "orders");
			const char *a = db_get(r->providers, i, "avg_s"), *p95 = db_get(r->providers, i, "p95_s");
			if (cf_buf_printf(b, "<tr class=\"provider\" data-provider=\"") != 0 || !HE(b, pv) ||
			    cf_buf_printf(b, "\" data-orders=\"") != 0 || !HE(b, o) ||
			    cf_buf_printf(b, "\" data-avg=\"") != 0 || !HE(b, a) ||
			    cf_buf_printf(b, "\" data-p95=\"") != 0 || !HE(b, p95) ||
			    cf_buf_printf(b, "\"><td class=\"reason\">") != 0 || !HE(b, pv) ||
			    cf_buf_printf(b, "</td><td class=\"num\">") != 0 || !HE(b, o) ||
			    cf_buf_printf(b, "</td><td class=\"num\">") != 0 || !HE(b, a) ||
			    cf_buf_printf(b, "</td><td class=\"num\">") != 0 || !HE(b, p95) ||
			    cf_buf_printf(b, "</td></tr>\n") != 0)
				return false;
		}
		if (cf_buf_printf(b, "</table></div>\n") != 0)
			return false;
	}
	return cf_buf_printf(b, "</section>\n</body>\n</html>\n") == 0;
}

/* Writes data to path through a temporary file in its folder, 0644, fsynced, then renamed. */
static int
report_write(const char *path, const cf_buf *b, cf_err *err)
{
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n), *dcopy = NULL;
	int fd = -1, rc = -1, dfd;

	if (tmp == NULL) {
		cf_errf(err, "writing %s: out of memory", path);
		return -1;
	}
	snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		cf_errf(err, "creating a temporary file beside %s: %s", path, strerror(errno));
		free(tmp);
		return -1;
	}
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = write(fd, b->data + off, b->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			cf_errf(err, "writing %s: %s", tmp, strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		cf_errf(err, "writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		cf_errf(err, "writing %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		cf_errf(err, "renaming %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	if ((dcopy = cf_strdup(path)) != NULL && (dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	free(dcopy);
	return rc;
}

/* Whether FILE can be written: a non-empty path, not a folder, in a folder that exists. */
static bool
report_path_ok(const char *path)
{
	struct stat st;
	char *d;
	bool ok;

	if (*path == '\0') {
		log_error("report: --html needs a file name");
		return false;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		log_error("report: --html %s: is a folder", path);
		return false;
	}
	if ((d = cf_strdup(path)) == NULL) {
		log_error("report: out of memory");
		return false;
	}
	ok = stat(dirname(d), &st) == 0 && S_ISDIR(st.st_mode);
	if (!ok)
		log_error("report: --html %s: its folder does not exist", path);
	free(d);
	return ok;
}

int
cmd_report(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "html", required_argument, NULL, 'H' },
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	const char *html = NULL;
	struct report r = { 0 };
	PGconn *c = NULL;
	PGresult *t = NULL;
	cf_buf b = { 0 };
	cf_err err;
	int opt, rc = EXIT_FAILURE_RUNTIME;

	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'H') {
			html = optarg;
		} else if (opt == 'h') {
			printf("usage: certfleet report [--html FILE] [OPTIONS]\n\n"
			       "Summarizes the fleet from the reporting views (sql/010_reporting.sql): certificates\n"
			       "by state (retired ones left out), valid certificates expiring within 7, 14 and 30\n"
			       "days, failed jobs of the last 24 hours by reason, and the last runs with their\n"
			       "jobs, duration and issue rate. Needs only the certfleet_report role.\n\n"
			       "  --html FILE   write the report as one self-contained HTML page instead: the fleet\n"
			       "                summary, a histogram of days to expiry, failures by reason, the runs\n"
			       "                of the last 30 days with their throughput, and the slowest provider\n"
			       "                accounts; charts are inline SVG, nothing is fetched from the network.\n"
			       "                Written through a temporary file and renamed, mode 0644: it holds\n"
			       "                no key or credential.\n\n"
			       "Exit codes: 0 written, 1 database or file failure, 2 bad usage (a FILE that is a\n"
			       "folder or whose folder does not exist).\n\n%s", CONFIG_COMMON_HELP);
			return EXIT_OK;
		} else if (!config_common_option(cfg, opt, optarg)) {
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("report: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (html != NULL && !report_path_ok(html))
		return EXIT_USAGE;
	if ((c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	if (report_load(c, &r, html != NULL ? 200 : 5, &err) != 0)
		goto fail;
	if (html == NULL) {
		report_print(&r);
		rc = EXIT_OK;
		goto out;
	}
	if ((t = db_exec(c, "reading the time", "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS t",
	    0, NULL, &err)) == NULL)
		goto fail;
	if (!report_html(&b, &r, db_get(t, 0, "t"))) {
		cf_errf(&err, "building %s: out of memory", html);
		goto fail;
	}
	if (report_write(html, &b, &err) != 0)
		goto fail;
	rc = EXIT_OK;
	goto out;
fail:
	log_error("report: %s", err.msg);
out:
	PQclear(t);
	report_free(&r);
	cf_buf_free(&b);
	PQfinish(c);
	return rc;
}
