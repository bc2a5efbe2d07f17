#!/usr/bin/env bash
# test_report.sh - the reporting views of migration 010 against a fleet of known shape (three real
# certificates, one shortlived, and fixture rows), read as certfleet_report; `certfleet report` on
# the terminal; `report --html` loaded by headless Chromium without network: no console message,
# the page's numbers equal the views', one expiry bar per bucket, a screenshot.
. "$(dirname "$0")/lib.sh"

require_tools "Debian packages chromium, util-linux, python3" chromium unshare python3
db_new || { not_ok "create database"; finish; exit 1; }
tmp=$(mktemp -d)
R_REP="t_rep_$RUN_ID"
cleanup() {
	psql -qX "$CERTFLEET_DB" -c "DROP ROLE IF EXISTS $R_REP" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
check "account register" register

# --- three real certificates: two of Pebble's default profile (90 days), one shortlived (6 days)
# the default profile named: Pebble picks either profile for an order that names none
check "enqueue two default" "$CF" enqueue --profile default "d1.$ZONE" "d2.$ZONE"
check "enqueue one shortlived" "$CF" enqueue --profile shortlived "s1.$ZONE"
"$CF" run --workers 1 --no-progress >"$tmp/run" 2>&1
check_eq "run issues the three" "$?:$(sql "SELECT count(*) FROM results WHERE is_current")" "0:3"

# --- fixture rows, each of a known state, bucket and failure
sql "
WITH a AS (SELECT min(id) AS id FROM accounts),
cert AS (INSERT INTO certificates (names, names_key, provider, account_id, retired_at)
    SELECT ARRAY[n || '.$ZONE'], n || '.$ZONE', p, a.id, CASE WHEN n = 'fx-e' THEN now() END
    FROM a, (VALUES ('fx-a', 'fixture-fast'), ('fx-b', 'fixture-fast'), ('fx-c', 'fixture-slow'),
        ('fx-d', 'fixture-fast'), ('fx-e', 'fixture-fast'), ('fx-f', 'fixture-fast'),
        ('fx-g', 'fixture-fast'), ('fx-h', 'fixture-fast'), ('fx-i', 'fixture-fast')) v(n, p)
    RETURNING id, names[1] AS name)
INSERT INTO results (certificate_id, leaf_pem, chain_pem, key_pem, serial, not_before, not_after, issuer, revoked_at)
SELECT cert.id, 'x', 'x', 'x', 'fx' || cert.id, now() - interval '1 day', now() + d, 'fixture', rv
FROM cert JOIN (VALUES ('fx-a', interval '3 days 1 hour', NULL::timestamptz),
    ('fx-b', interval '20 days 1 hour', NULL), ('fx-c', interval '-1 day', NULL),
    ('fx-d', interval '40 days 1 hour', now()), ('fx-e', interval '3 days', NULL)) r(n, d, rv)
    ON cert.name = r.n || '.$ZONE';
INSERT INTO runs (label, created_at) VALUES ('fixture', now() - interval '2 hours');
-- the fixture run: two issued at +40 s and +80 s, one failed at +100 s
INSERT INTO jobs (certificate_id, account_id, state, run_id, finished_at, last_problem_type, last_error)
SELECT c.id, c.account_id, s, (SELECT id FROM runs WHERE label = 'fixture'),
    (SELECT created_at FROM runs WHERE label = 'fixture') + f, t, t
FROM certificates c JOIN (VALUES ('fx-a', 'issued', interval '40 s', NULL),
    ('fx-b', 'issued', interval '80 s', NULL),
    ('fx-c', 'failed', interval '100 s', 'urn:ietf:params:acme:error:rateLimited')) v(n, s, f, t)
    ON c.names[1] = v.n || '.$ZONE';
-- failures outside any run: one an hour ago, one three days ago, one whose reason needs escaping
INSERT INTO jobs (certificate_id, account_id, state, finished_at, last_problem_type)
SELECT c.id, c.account_id, 'failed', now() - f, t
FROM certificates c JOIN (VALUES ('fx-f', interval '1 hour', 'urn:ietf:params:acme:error:rejectedIdentifier'),
    ('fx-g', interval '3 days', 'urn:ietf:params:acme:error:dns'),
    ('fx-i', interval '2 hours', 'certfleet:provider \"<b>x</b>\" & ''y''')) v(n, f, t)
    ON c.names[1] = v.n || '.$ZONE';
-- an order of the slow provider that took 100 s
INSERT INTO orders (job_id, account_id, order_url, state, created_at, updated_at)
SELECT j.id, j.account_id, 'https://fixture/order/' || j.id, 'failed', now() - interval '1 hour',
    now() - interval '1 hour' + interval '100 s'
FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'fx-c.$ZONE';
INSERT INTO rate_limits (key, rate, burst, tat) VALUES ('fixture:acct', 2, 5, extract(epoch FROM now()) + 60);
" >/dev/null || not_ok "insert the fixture rows"

# --- the views' numbers
check_eq "report_fleet: states of the fleet, the retired certificate left out" \
	"$(sql "SELECT string_agg(state || '=' || certificates, ' ' ORDER BY ord) FROM report_fleet")" \
	"valid=5 expired=1 revoked=1 failed=3 pending=1"
check_eq "report_certificates: the retired certificate is not listed" \
	"$(sql "SELECT count(*) FROM report_certificates WHERE names[1] = 'fx-e.$ZONE'")" 0
check_eq "report_expiry_buckets: one row per bucket, the shortlived certificate within 7 days, the 90-day ones in 60-90" \
	"$(sql "SELECT string_agg(bucket || '=' || certificates, ' ' ORDER BY ord) FROM report_expiry_buckets")" \
	"expired=1 0-7=2 7-14=0 14-30=1 30-60=1 60-90=2 90+=0"
check_eq "report_certificates: days_left of the shortlived certificate" \
	"$(sql "SELECT days_left FROM report_certificates WHERE profile = 'shortlived'")" 5
# due within 7 days: the shortlived one, fx-a, the expired and the revoked one, and any real
# certificate whose ARI window starts within the week
ari7=$(sql "SELECT count(*) FROM results r JOIN certificates c ON c.id = r.certificate_id
	WHERE r.is_current AND c.profile IS DISTINCT FROM 'shortlived' AND c.names[1] LIKE 'd%'
	AND r.ari_renew_at < now() + interval '7 days'")
check_eq "report_due_within(7)" "$(sql "SELECT count(*) FROM report_due_within(7)")" "$((4 + ari7))"
check_eq "report_due_within(0): the expired and the revoked one, and ARI's due" \
	"$(sql "SELECT count(*) FROM report_due_within(0)")" \
	"$((2 + $(sql "SELECT count(*) FROM results WHERE is_current AND ari_renew_at < now() AND serial NOT LIKE 'fx%'")))"
check_eq "report_failures: per day and reason" \
	"$(sql "SELECT string_agg(day - (now() AT TIME ZONE 'UTC')::date || ':' || problem_type || '=' || failures, ' ' ORDER BY day, problem_type)
		FROM report_failures WHERE provider LIKE 'fixture%'" | sed 's/"<b>x<\/b>" & .y./X/')" \
	"$(sql "SELECT string_agg(d || ':' || t, ' ' ORDER BY d, t) FROM (VALUES
		(((now() - interval '3 days') AT TIME ZONE 'UTC')::date - (now() AT TIME ZONE 'UTC')::date, 'urn:ietf:params:acme:error:dns=1'),
		(((now() - interval '2 hours') AT TIME ZONE 'UTC')::date - (now() AT TIME ZONE 'UTC')::date, 'certfleet:provider X=1'),
		(((now() - interval '1 hour') AT TIME ZONE 'UTC')::date - (now() AT TIME ZONE 'UTC')::date, 'urn:ietf:params:acme:error:rejectedIdentifier=1'),
		(((now() - interval '2 hours' + interval '100 s') AT TIME ZONE 'UTC')::date - (now() AT TIME ZONE 'UTC')::date, 'urn:ietf:params:acme:error:rateLimited=1')) v(d, t)")"
check_eq "report_failures: the CA is the account's directory" \
	"$(sql "SELECT DISTINCT ca FROM report_failures")" "$(sql "SELECT directory_url FROM accounts")"
check_eq "report_failures_24h: the three of the last day" \
	"$(sql "SELECT string_agg(failures::text, ',' ORDER BY problem_type) FROM report_failures_24h")" "1,1,1"
check_eq "report_runs: the fixture run's counts, duration and rate" \
	"$(sql "SELECT jobs, issued, failed, cancelled, unfinished, duration_s, round(issued_per_s::numeric, 3)
		FROM report_runs WHERE label = 'fixture'")" "3|2|1|0|0|100|0.020"
check_eq "report_runs: the real runs' jobs and issues" \
	"$(sql "SELECT string_agg(jobs || '/' || issued, ' ' ORDER BY run_id) FROM report_runs WHERE label IS DISTINCT FROM 'fixture'")" \
	"$(sql "SELECT string_agg(n, ' ' ORDER BY run_id) FROM (SELECT run_id, count(*) || '/' || count(*) FILTER (WHERE state = 'issued') AS n
		FROM jobs WHERE run_id IS NOT NULL AND run_id <> (SELECT id FROM runs WHERE label = 'fixture') GROUP BY run_id) x")"
check_eq "report_provider_latency: the slow provider's order took 100 s" \
	"$(sql "SELECT orders || '|' || round(avg_s::numeric) FROM report_provider_latency WHERE provider = 'fixture-slow'")" "1|100"
check_eq "report_limits: every shared bucket, and the fixture's booked 60 s ahead at 2/s" \
	"$(sql "SELECT count(*) FILTER (WHERE kind = 'bucket') = (SELECT count(*) FROM rate_limits)
		AND bool_or(key = 'fixture:acct' AND booked_requests BETWEEN 100 AND 120.01) FROM report_limits")" t
check_eq "report_limits: the CA account's orders of the last 3 hours" \
	"$(sql "SELECT orders_3h FROM report_limits WHERE kind = 'ca-account'")" "$(sql "SELECT count(*) FROM orders")"

# --- certfleet_report reads every view and the function, and no key column
sql "CREATE ROLE $R_REP LOGIN IN ROLE certfleet_report" || not_ok "create the login role"
rep_db="${CERTFLEET_DB/\/\/*@/\/\/$R_REP@}"
rep_sql() { psql -qAtX -v ON_ERROR_STOP=1 "$rep_db" -c "$1"; }
views="report_certificates report_fleet report_expiry_buckets report_failures report_failures_24h report_runs report_provider_latency report_limits"
for v in $views; do
	check_eq "as certfleet_report: $v readable, as many rows as its owner sees" \
		"$(rep_sql "SELECT count(*) FROM $v" 2>&1)" "$(sql "SELECT count(*) FROM $v")"
done
check_eq "as certfleet_report: report_due_within(7)" "$(rep_sql "SELECT count(*) FROM report_due_within(7)" 2>&1)" "$((4 + ari7))"
rep_sql "SELECT key_pem FROM results" >"$tmp/k" 2>&1
check_eq "as certfleet_report: results.key_pem refused" "$?:$(grep -c 'permission denied' "$tmp/k")" "1:1"
check_eq "no view has a key column" \
	"$(sql "SELECT count(*) FROM information_schema.columns WHERE table_name LIKE 'report\_%' AND column_name LIKE '%key_pem%'")" 0

# --- the terminal report, as certfleet_report
CERTFLEET_DB=$rep_db "$CF" report >"$tmp/term" 2>"$tmp/term.err"
check_eq "report exits 0 as certfleet_report" "$?" 0
check "report: fleet total and states" grep -qx "fleet: 11 certificates" "$tmp/term"
check "report: failed line" grep -Eqx "  failed +3" "$tmp/term"
check "report: expiring within 7 and 30 days" \
	bash -c "grep -Eqx '  within 7 days +2' '$tmp/term' && grep -Eqx '  within 30 days +3' '$tmp/term'"
check "report: the failure reasons of the last day" grep -Eq "^ +1  urn:ietf:params:acme:error:rejectedIdentifier$" "$tmp/term"
check "report: the fixture run with its rate" grep -Eq "run [0-9]+ \(fixture\) .*: 3 jobs, 2 issued, 1 failed, 0 cancelled, 0 unfinished, 100.0 s, 0.02 issued/s" "$tmp/term"
"$CF" report --html "$tmp/nope/r.html" >/dev/null 2>"$tmp/bad.err"
check_eq "report --html into a missing folder: exit 2 naming it" "$?:$(grep -c "$tmp/nope/r.html" "$tmp/bad.err")" "2:1"
"$CF" report --html "$tmp" >/dev/null 2>"$tmp/bad2.err"
check_eq "report --html FOLDER: exit 2" "$?" 2

# --- the HTML page
html="$tmp/report.html"
CERTFLEET_DB=$rep_db "$CF" report --html "$html" 2>"$tmp/html.err"
check_eq "report --html exits 0" "$?" 0
check_eq "report.html is 0644 and no temporary file is left" \
	"$(stat -c %a "$html"):$(find "$tmp" -maxdepth 1 -name 'report.html.tmp.*' | wc -l)" "644:0"
check "the page fetches nothing: no src, href, url() or @import" \
	bash -c "! grep -Eqi 'src=|href=|url\(|@import|<script|<link' '$html'"
check "the page has a viewport and no fixed width over 400 px" \
	bash -c "grep -q 'name=\"viewport\" content=\"width=device-width' '$html' && ! grep -Eq 'width:[[:space:]]*([4-9][0-9]{2}|[0-9]{4,})px' '$html'"

# Chromium in a network namespace of its own: no network at all
chrome() {
	timeout 120 unshare -n chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 \
		--user-data-dir="$tmp/profile" "$@"
}
# the console check catches a message: a page that logs an error shows one
printf '<!DOCTYPE html><html><body><script>console.error("x")</script></body></html>' >"$tmp/probe.html"
chrome --dump-dom "file://$tmp/probe.html" >/dev/null 2>"$tmp/probe.err"
check "Chromium's log shows a console error of a page that has one" grep -q 'CONSOLE' "$tmp/probe.err"
chrome --dump-dom "file://$html" >"$tmp/dom.html" 2>"$tmp/chrome.err"
check_eq "Chromium loads the page" "$?" 0
check_eq "no console message while loading the page" "$(grep -c 'CONSOLE' "$tmp/chrome.err")" 0
chrome --window-size=390,2400 --hide-scrollbars --screenshot="$tmp/shot.png" "file://$html" >/dev/null 2>&1
check "the screenshot is a PNG of more than 20 kB" bash -c "
	[ \"\$(head -c 8 '$tmp/shot.png' | od -An -tx1 | tr -d ' \n')\" = 89504e470d0a1a0a ] &&
	[ \$(stat -c %s '$tmp/shot.png') -gt 20000 ]"
[ -n "${CERTFLEET_REPORT_KEEP:-}" ] && cp "$tmp/shot.png" "$html" "$CERTFLEET_REPORT_KEEP/"

# the numbers read from the DOM Chromium built
python3 - "$tmp/dom.html" >"$tmp/dom.txt" <<'EOF'
import sys
from html.parser import HTMLParser

class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.out = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id", "").startswith(("fleet-", "expiring-")):
            self.out.append("%s=%s" % (a["id"], a["data-value"]))
        if tag == "rect" and "bar" in a.get("class", ""):
            self.out.append("bar=%s=%s" % (a["data-label"], a["data-value"]))
        if tag == "tr" and a.get("class") == "failure":
            self.out.append("failure=%s=%s" % (a["data-reason"], a["data-value"]))
        if tag == "tr" and a.get("class") == "run":
            self.out.append("run=%s=%s/%s/%s/%s" % (a["data-run"], a["data-jobs"], a["data-issued"], a["data-failed"], a["data-rate"]))
        if tag == "tr" and a.get("class") == "provider":
            self.out.append("provider=%s=%s" % (a["data-provider"], a["data-avg"]))
        if tag == "svg":
            self.out.append("svg=%s" % a.get("id"))

p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
print("\n".join(p.out))
EOF
dom() { grep "^$1=" "$tmp/dom.txt" | cut -d= -f2- | paste -sd' '; }
check_eq "page: fleet total and states equal report_fleet" \
	"$(dom fleet-total) $(grep -E '^fleet-(valid|expired|revoked|failed|pending)=' "$tmp/dom.txt" | paste -sd' ')" \
	"$(sql "SELECT sum(certificates) FROM report_fleet") $(sql "SELECT string_agg('fleet-' || state || '=' || certificates, ' ' ORDER BY ord) FROM report_fleet")"
check_eq "page: expiring within 7, 14, 30 days equal report_certificates" \
	"$(dom expiring-7) $(dom expiring-14) $(dom expiring-30)" \
	"$(sql "SELECT count(*) FILTER (WHERE not_after < now() + interval '7 days') || ' ' || count(*) FILTER (WHERE not_after < now() + interval '14 days') || ' ' || count(*) FILTER (WHERE not_after < now() + interval '30 days') FROM report_certificates WHERE state = 'valid'")"
# the expiry chart's bars come first in the page
bars=$(awk '/^svg=/{s=$0} /^bar=/{ if (s == "svg=expiry-chart") print }' "$tmp/dom.txt" | cut -d= -f2- | paste -sd' ')
check_eq "page: the expiry chart has one bar per bucket, each equal to report_expiry_buckets" \
	"$bars" "$(sql "SELECT string_agg(bucket || '=' || certificates, ' ' ORDER BY ord) FROM report_expiry_buckets")"
check_eq "page: failures by reason equal report_failures_24h, the reason escaped and read back whole" \
	"$(grep '^failure=' "$tmp/dom.txt" | sort | paste -sd'|')" \
	"$(sql "SELECT 'failure=' || problem_type || '=' || failures FROM report_failures_24h" | sort | paste -sd'|')"
check_eq "page: runs of the last 30 days equal report_runs" \
	"$(grep '^run=' "$tmp/dom.txt" | sort | paste -sd' ')" \
	"$(sql "SELECT 'run=' || run_id || '=' || jobs || '/' || issued || '/' || failed || '/' || coalesce(round(issued_per_s::numeric, 2)::text, '') FROM report_runs" | sort | paste -sd' ')"
check_eq "page: the slowest provider account first" "$(grep '^provider=' "$tmp/dom.txt" | head -1)" "provider=fixture-slow=100.00"

finish
