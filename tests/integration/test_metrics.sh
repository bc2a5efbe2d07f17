#!/usr/bin/env bash
# test_metrics.sh - Prometheus metrics with real clients: bad addresses exit 2 and a port in use
# exits 1 before anything is claimed; promtool accepts both endpoints' output, the textfile and
# the alert rules; a real prometheus scrapes `run --follow --metrics-listen` and `metrics
# --listen`, and PromQL through its HTTP API returns the issued orders the database holds and
# the certificates expiring within 7 days (issued with the 6-day shortlived profile).
. "$(dirname "$0")/lib.sh"

require_tools "prometheus (prometheus), promtool (prometheus), curl, jq" prometheus promtool curl jq
db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
run_pid="" fleet_pid="" prom_pid=""
cleanup() {
	for p in $run_pid $fleet_pid $prom_pid; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds
wait_for() {
	local n=$(($1 * 5))
	shift
	for _ in $(seq "$n"); do "$@" && return 0; sleep 0.2; done
	return 1
}
ready() { curl -sf "http://$1/metrics" -o /dev/null; }

# Bad addresses: exit 2, named.
"$CF" run --metrics-listen 127.0.0.1 >/dev/null 2>"$tmp/bad1.err"
check_eq "run --metrics-listen without a port exits 2" "$?" 2
check "the error names the address" grep -q 'metrics-listen.*127\.0\.0\.1: expected ADDR:PORT' "$tmp/bad1.err"
"$CF" metrics --listen 127.0.0.1:70000 >/dev/null 2>"$tmp/bad2.err"
check_eq "metrics --listen with port 70000 exits 2" "$?" 2
check "the error names the address and the port range" grep -q '127\.0\.0\.1:70000: port must be' "$tmp/bad2.err"
"$CF" metrics >/dev/null 2>&1
check_eq "metrics without --listen or --textfile exits 2" "$?" 2
"$CF" metrics --listen 127.0.0.1:9 --refresh soon >/dev/null 2>"$tmp/bad3.err"
check_eq "metrics --refresh soon exits 2" "$?" 2
check "the error names --refresh" grep -q -- '--refresh' "$tmp/bad3.err"

"$CF" enqueue --profile shortlived "short1.$ZONE" "short2.$ZONE" >/dev/null
"$CF" enqueue --profile default "long.$ZONE" >/dev/null

# The fleet exporter first; then a run told to listen on its port cannot bind: exit 1, nothing claimed.
for _ in 1 2 3 4 5; do
	fport=$(random_port)
	"$CF" metrics --listen "127.0.0.1:$fport" --refresh 1 2>"$tmp/fleet.err" &
	fleet_pid=$!
	wait_for 5 ready "127.0.0.1:$fport" && break
	kill "$fleet_pid" 2>/dev/null
	wait "$fleet_pid" 2>/dev/null
	fleet_pid=""
done
check "metrics --listen serves /metrics" ready "127.0.0.1:$fport"
"$CF" run --no-progress --metrics-listen "127.0.0.1:$fport" >/dev/null 2>"$tmp/busy.err"
check_eq "run --metrics-listen on a port in use exits 1" "$?" 1
check "the error names the address" grep -q "cannot listen on 127.0.0.1:$fport" "$tmp/busy.err"
check_eq "nothing was claimed" "$(sql "SELECT count(*) FROM jobs WHERE state = 'ready'")" 3

for _ in 1 2 3 4 5; do
	rport=$(random_port)
	"$CF" run --follow --no-progress --workers 1 --metrics-listen "127.0.0.1:$rport" >"$tmp/run.out" 2>"$tmp/run.err" &
	run_pid=$!
	wait_for 10 ready "127.0.0.1:$rport" && break
	kill "$run_pid" 2>/dev/null
	wait "$run_pid" 2>/dev/null
	run_pid=""
done
all_issued() { [ "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" = 3 ]; }
check "run --follow issues the 3 certificates" wait_for 60 all_issued

curl -sf "http://127.0.0.1:$rport/metrics" >"$tmp/run.prom"
curl -sf "http://127.0.0.1:$fport/metrics" >"$tmp/fleet.prom"
check "promtool check metrics accepts the run's /metrics" promtool check metrics <"$tmp/run.prom"
check "promtool check metrics accepts the fleet's /metrics" promtool check metrics <"$tmp/fleet.prom"
check "the run counts newOrder requests answered 2xx" \
	grep -Eq '^certfleet_ca_requests_total\{endpoint="newOrder",status="2xx"\} 3$' "$tmp/run.prom"
check "the run's order latency histogram counts 3 orders" grep -q '^certfleet_order_duration_seconds_count 3$' "$tmp/run.prom"
check_eq "the run's provider requests are by account" \
	"$(grep -c '^certfleet_provider_requests_total{account="challtestsrv",status="2xx"} [1-9]' "$tmp/run.prom")" 1
check "no order is in flight after the run" grep -q '^certfleet_orders_in_flight 0$' "$tmp/run.prom"
check "the event loops' timers were measured" grep -Eq '^certfleet_event_loop_lag_seconds_count [1-9]' "$tmp/run.prom"
check "nothing waits for the writer after the run" grep -q '^certfleet_writer_lag_seconds 0$' "$tmp/run.prom"
check "the claimer counted the queue" grep -Eq '^certfleet_queue_jobs\{state="ready"\} [0-9]+$' "$tmp/run.prom"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$rport/other")
check_eq "another path answers 404" "$code" 404

# A real prometheus scrapes both, every second.
cat >"$tmp/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$PWD/examples/prometheus/certfleet.rules.yml"]
scrape_configs:
  - job_name: certfleet-run
    static_configs: [{ targets: ["127.0.0.1:$rport"] }]
  - job_name: certfleet-fleet
    static_configs: [{ targets: ["127.0.0.1:$fport"] }]
CONF
check "promtool check rules accepts examples/prometheus/certfleet.rules.yml" \
	promtool check rules examples/prometheus/certfleet.rules.yml
check "promtool check config accepts the test's prometheus.yml with the rules" \
	promtool check config "$tmp/prometheus.yml"
for _ in 1 2 3 4 5; do
	pport=$(random_port)
	prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
		--web.listen-address="127.0.0.1:$pport" >"$tmp/prom.log" 2>&1 &
	prom_pid=$!
	wait_for 15 curl -sf "http://127.0.0.1:$pport/-/ready" -o /dev/null && break
	kill "$prom_pid" 2>/dev/null
	wait "$prom_pid" 2>/dev/null
	prom_pid=""
done
# query PROMQL: the first sample's value, or nothing
query() {
	curl -sf "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
		jq -r 'select(.status == "success") | .data.result[0].value[1] // empty'
}
# query_is PROMQL WANT: true once Prometheus answers WANT
query_is() { [ "$(query "$1")" = "$2" ]; }
issued=$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")
expiring=$(sql "SELECT count(*) FROM results WHERE is_current AND not_after <= now() + interval '7 days'")
check_eq "two certificates expire within 7 days (shortlived)" "$expiring" 2
wait_for 30 query_is 'sum(certfleet_orders_total{outcome="issued"})' "$issued"
check_eq "PromQL: issued orders scraped from run --metrics-listen equal the database's" \
	"$(query 'sum(certfleet_orders_total{outcome="issued"})')" "$issued"
wait_for 30 query_is 'certfleet_certificates_expiring{within_days="7"}' "$expiring"
check_eq "PromQL: certificates expiring within 7 days scraped from metrics --listen equal the database's" \
	"$(query 'certfleet_certificates_expiring{within_days="7"}')" "$expiring"
check_eq "PromQL: valid certificates equal the database's" "$(query 'certfleet_certificates{state="valid"}')" \
	"$(sql "SELECT count(*) FROM results WHERE is_current AND not_after > now()")"
alert_firing() {
	curl -sf "http://127.0.0.1:$pport/api/v1/rules?type=alert" |
		jq -e '.data.groups[].rules[] | select(.name == "CertfleetCertificatesExpiringSoon") | .state == "pending"' >/dev/null
}
check "Prometheus evaluates the expiring-within-7-days alert (pending)" wait_for 20 alert_firing

# --textfile: written whole by a rename, readable by node_exporter, nothing left beside it.
"$CF" metrics --textfile "$tmp/tf/certfleet.prom" >/dev/null 2>"$tmp/tf.err"
check_eq "metrics --textfile into a missing folder exits 1" "$?" 1
check "the error names the file" grep -q "$tmp/tf/certfleet.prom.tmp" "$tmp/tf.err"
mkdir "$tmp/tf"
"$CF" metrics --textfile "$tmp/tf/certfleet.prom"
check_eq "metrics --textfile exits 0" "$?" 0
check "promtool check metrics accepts the textfile" promtool check metrics <"$tmp/tf/certfleet.prom"
check_eq "the textfile alone is in its folder, mode 644" "$(cd "$tmp/tf" && stat -c '%n %a' *)" "certfleet.prom 644"
check "the textfile counts the 2 certificates expiring within 7 days" \
	grep -q '^certfleet_certificates_expiring{within_days="7"} 2$' "$tmp/tf/certfleet.prom"
check "the expiry histogram holds the 3 certificates, 2 within 7 days" \
	grep -A99 '^certfleet_certificate_expiry_seconds_bucket{le="604800"} 2$' "$tmp/tf/certfleet.prom" |
	grep -q '^certfleet_certificate_expiry_seconds_count 3$' 

kill -TERM "$run_pid"
wait "$run_pid"
check_eq "run --follow stops on SIGTERM with exit 0" "$?" 0
run_pid=""
kill -TERM "$fleet_pid"
wait "$fleet_pid"
check_eq "metrics --listen stops on SIGTERM with exit 0" "$?" 0
fleet_pid=""
finish
