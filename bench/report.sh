#!/usr/bin/env bash
# report.sh - the time of `certfleet report` and `report --html` on a fleet of N certificates made
# as fixture rows (bench.sh --report N calls it): results spread over 0-90 days to expiry, some
# expired, revoked, failed or never issued, 30 runs of a night each, one order per result over
# ten provider accounts, and failures of the last days. Needs CERTFLEET_DB (migrated, one
# account) and CERTFLEET_BIN. Prints "bench: report: ..." lines and one "result:" line.
set -uo pipefail
N=${1:-100000}
cf=${CERTFLEET_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

psql -q "$CERTFLEET_DB" -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
INSERT INTO runs (label, created_at)
    SELECT 'night ' || d, now() - make_interval(days => d) FROM generate_series(1, 30) d;
INSERT INTO certificates (names, names_key, provider, account_id)
    SELECT ARRAY['r' || i || '.bench.example'], 'r' || i || '.bench.example', 'dns-' || (i % 10),
        (SELECT min(id) FROM accounts)
    FROM generate_series(1, $N) i;
-- one job per certificate, in the runs: 2% failed, 1% never finished issuing
INSERT INTO jobs (certificate_id, account_id, state, run_id, created_at, finished_at, last_problem_type)
    SELECT c.id, c.account_id, CASE WHEN c.id % 50 = 0 THEN 'failed' ELSE 'issued' END, r.id, r.created_at,
        r.created_at + make_interval(secs => (c.id % 3600)),
        CASE WHEN c.id % 50 = 0 THEN 'urn:ietf:params:acme:error:' || (ARRAY['dns', 'rateLimited', 'serverInternal'])[c.id % 3 + 1] END
    FROM certificates c JOIN runs r ON r.id = c.id % 30 + (SELECT min(id) FROM runs)
    WHERE c.id % 100 <> 7;
INSERT INTO results (certificate_id, job_id, leaf_pem, chain_pem, key_pem, serial, not_before, not_after, issuer, revoked_at)
    SELECT j.certificate_id, j.id, 'x', 'x', 'x', to_hex(j.id), j.finished_at - interval '1 day',
        j.finished_at + make_interval(days => 90 - (j.certificate_id % 97)::int), 'bench',
        CASE WHEN j.certificate_id % 1000 = 3 THEN now() END
    FROM jobs j WHERE j.state = 'issued';
INSERT INTO orders (job_id, account_id, order_url, state, created_at, updated_at)
    SELECT j.id, j.account_id, 'https://bench/order/' || j.id, 'valid', now() - interval '1 day',
        now() - interval '1 day' + make_interval(secs => 1 + (j.certificate_id % 10))
    FROM jobs j;
-- the failures of the last day
UPDATE jobs SET finished_at = now() - make_interval(mins => (id % 1400)::int) WHERE state = 'failed' AND id % 3 = 0;
ANALYZE certificates, jobs, results, orders, runs;
SQL

/usr/bin/time -f '%e %U %S' -o "$tmp/t1" "$cf" report >"$tmp/report.txt" 2>&1 || { cat "$tmp/report.txt"; exit 1; }
/usr/bin/time -f '%e %U %S' -o "$tmp/t2" "$cf" report --html "$tmp/report.html" 2>"$tmp/html.err" || { cat "$tmp/html.err"; exit 1; }
read -r w1 u1 s1 <"$tmp/t1"
read -r w2 u2 s2 <"$tmp/t2"
total=$(sed -n 's/^fleet: \([0-9]*\) certificates$/\1/p' "$tmp/report.txt")
echo "bench: report: $total certificates: report $w1 s (certfleet CPU $(awk -v u="$u1" -v s="$s1" 'BEGIN { printf "%.2f", u + s }') s), report --html $w2 s (CPU $(awk -v u="$u2" -v s="$s2" 'BEGIN { printf "%.2f", u + s }') s, $(stat -c %s "$tmp/report.html") bytes)"
echo "result: tool=certfleet-report n=$total report_s=$w1 report_html_s=$w2"
