#!/usr/bin/env bash
# test_provider_limits.sh - provider rate limits and provider failures in real runs, against the
# Cloudflare fake (tests/fakes/cloudflare.py checks every request against Cloudflare's documented
# format and publishes the records to challtestsrv, where Pebble looks):
#   1. 200 certificates through an account limited to 5 requests/s with a burst of 10: the request
#      times the fake logged never exceed that bucket, and the run completes;
#   2. two `certfleet run` processes sharing one limit (through PostgreSQL): their combined
#      requests still fit one bucket;
#   3. 429 with Retry-After pauses the account's requests for that long;
#   4. rejected credentials fail only that account's jobs, with a clear reason; 5xx answers are
#      retried and the jobs issued;
#   5. an API that answers too slowly times out (the account's "timeout"): that job fails as
#      retryable with the reason, while a job on another account issues;
#   6. the shared limit's database connection cut every second during a run: the requests still
#      fit the bucket (neither the process's own bucket nor the database's grants the burst again).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../fakes/fake.sh"

tmp=$(mktemp -d)
FAKE_DIR=$tmp
trap 'fake_stop; rm -rf "$tmp"' EXIT
db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
umask 077
echo "cf-token-$RUN_ID" >"$tmp/token"
echo "wrong-token" >"$tmp/bad-token"

# bucket_ok LOG RATE BURST: every request time (first field, ms: when the fake read the request
# line, as a provider counts it) fits a bucket of RATE/s, BURST, with the README's 50 ms for
# delivery: a request granted on time can still be delayed on its way (event-loop lag, connection
# set-up, the fake's own threads), which brings it closer to the next one.
bucket_ok() {
	python3 - "$1" "$2" "$3" <<'PY'
import sys
times = sorted(float(l.split()[0]) for l in open(sys.argv[1]) if l.strip())
rate, burst, tol = float(sys.argv[2]), float(sys.argv[3]), 50.0
worst = 0.0
for i in range(len(times)):
    for j in range(i, len(times)):
        allowed = burst + rate * (times[j] - times[i] + tol) / 1000.0
        worst = max(worst, (j - i + 1) / allowed)
print(f"# {len(times)} requests over {(times[-1] - times[0]) / 1000:.1f} s; worst window at "
      f"{worst * 100:.0f}% of the bucket")
sys.exit(0 if worst <= 1.0 else 1)
PY
}

# providers_file FILE PORT RATE ZONES... : a cloudflare account "cf" (and "cf-bad", same API,
# wrong token) for the zones, confirming records at challtestsrv.
providers_file() {
	local file=$1 port=$2 rate=$3 key=${LIMIT_KEY:-cf}
	shift 3
	local zones
	zones=$(printf '"%s",' "$@")
	cat >"$file" <<JSON
{ "verify": { "servers": ["$CERTFLEET_CHALLTESTSRV_DNS"], "require_aa": false, "interval": 0.1 },
  "providers": {
    "cf":     { "type": "cloudflare", "api_url": "http://127.0.0.1:$port/client/v4",
                "api_token_file": "$tmp/token", "zones": [${zones%,}], "rate": "$rate",
                "limit_key": "$key" },
    "cf-bad": { "type": "cloudflare", "api_url": "http://127.0.0.1:$port/client/v4",
                "api_token_file": "$tmp/bad-token", "zones": [${zones%,}] } } }
JSON
}

zones=()
zone_args=()
for k in $(seq 1 25); do
	zones+=("z$k.$ZONE")
	zone_args+=(--zone "z$k.$ZONE")
done

# ---- 1. 200 certificates, 5 requests/s, burst 10 ----
fake_start cf1 cloudflare --token-file "$tmp/token" "${zone_args[@]}" || { not_ok "fake started"; finish; exit 1; }
providers_file "$tmp/p1.json" "$FAKE_PORT" "5/s:10" "${zones[@]}"
export CERTFLEET_PROVIDERS="$tmp/p1.json"
for i in $(seq 1 200); do echo "n$i.z$((i % 25 + 1)).$ZONE"; done >"$tmp/fleet1"
check "enqueue 200 certificates on the limited account" "$CF" enqueue --provider cf --file "$tmp/fleet1"
"$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>&1
check_eq "run exits 0" "$?" 0
check_eq "200 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 200
check_eq "no malformed request at the fake" "$(fake_stat "$FAKE_PORT" malformed)" 0
n1=$(wc -l <"$tmp/cf1.log")
check "records of one zone went in few requests ($n1 requests for 200 records in 25 zones)" test "$n1" -lt 200
check "the requests fit 5/s with burst 10" bucket_ok "$tmp/cf1.log" 5 10
fake_stop

# ---- 2. two processes, one limit of 4/s, burst 4 ----
fake_start cf2 cloudflare --token-file "$tmp/token" "${zone_args[@]}" || { not_ok "fake 2 started"; finish; exit 1; }
LIMIT_KEY="cf-shared-$RUN_ID" providers_file "$tmp/p2.json" "$FAKE_PORT" "4/s:4" "${zones[@]}"
export CERTFLEET_PROVIDERS="$tmp/p2.json"
for i in $(seq 1 25); do echo "two$i.z$i.$ZONE"; done >"$tmp/fleet2"
check "enqueue 25 certificates in 25 zones" "$CF" enqueue --provider cf --file "$tmp/fleet2"
# one order at a time per process: Pebble 2.10 can deadlock on overlapping requests of two
# processes (see the README); each process alone still asks for more than 4 requests a second
"$CF" run --workers 1 --inflight 1 --batch 1 --no-progress >"$tmp/run2a.out" 2>&1 &
a=$!
"$CF" run --workers 1 --inflight 1 --batch 1 --no-progress >"$tmp/run2b.out" 2>&1 &
b=$!
wait $a; ra=$?
wait $b; rb=$?
check_eq "both runs exit 0" "$ra $rb" "0 0"
check_eq "225 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 225
check "both processes worked jobs" bash -c "grep -q 'issued=[1-9]' '$tmp/run2a.out' && grep -q 'issued=[1-9]' '$tmp/run2b.out'"
check "the combined requests fit 4/s with burst 4" bucket_ok "$tmp/cf2.log" 4 4
check_eq "the limit is one row in rate_limits" "$(sql "SELECT rate || '/' || burst FROM rate_limits WHERE key = 'cf-shared-$RUN_ID'")" "4/4"
fake_stop

# ---- 3. 429 with Retry-After: 2 s ----
fake_start cf3 cloudflare --token-file "$tmp/token" "${zone_args[@]}" --fail-first 2 --fail-status 429 --retry-after 2 ||
	{ not_ok "fake 3 started"; finish; exit 1; }
LIMIT_KEY="cf-429-$RUN_ID" providers_file "$tmp/p3.json" "$FAKE_PORT" "10/s:10" "${zones[@]}"
export CERTFLEET_PROVIDERS="$tmp/p3.json"
# one certificate, so that its requests come one after another: each 429 must be followed by a
# pause of the Retry-After (requests already granted before a 429 would otherwise still go)
check "enqueue a certificate" "$CF" enqueue --provider cf "r1.z1.$ZONE"
"$CF" run --workers 1 --no-progress >"$tmp/run3.out" 2>&1
check_eq "run exits 0 after the 429s" "$?" 0
check_eq "226 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 226
gaps=$(awk '{ if (last) print int($1 - last); last = ($4 == 429) ? $1 : 0 }' "$tmp/cf3.log" | tr '\n' ' ')
check "each 429 was followed by a pause of at least 2 s (gaps: $gaps ms)" \
	awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); if (n < 2) exit 1; for (i = 1; i <= n; i++) if (a[i] < 1950) exit 1 }'
fake_stop

# ---- 4. rejected credentials and 5xx ----
fake_start cf4 cloudflare --token-file "$tmp/token" "${zone_args[@]}" --fail-first 2 --fail-status 500 ||
	{ not_ok "fake 4 started"; finish; exit 1; }
LIMIT_KEY="cf-err-$RUN_ID" providers_file "$tmp/p4.json" "$FAKE_PORT" "20/s:20" "${zones[@]}"
export CERTFLEET_PROVIDERS="$tmp/p4.json"
check "enqueue 3 certificates" "$CF" enqueue --provider cf "ok1.z8.$ZONE" "ok2.z9.$ZONE" "ok3.z10.$ZONE"
"$CF" run --workers 1 --retry-base 1 --no-progress >"$tmp/run4.out" 2>&1
check_eq "run exits 0 after two 500s" "$?" 0
check_eq "the 3 jobs issued" \
	"$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE j.state = 'issued' AND c.names[1] LIKE 'ok%'")" 3
check "a 500 was retried (a job took 2 attempts)" \
	test "$(sql "SELECT max(j.attempts) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] LIKE 'ok%'")" -ge 2
check "enqueue 2 certificates on the account with a wrong token" \
	"$CF" enqueue --provider cf-bad --max-attempts 2 "bad1.z6.$ZONE" "bad2.z7.$ZONE"
check "enqueue 2 more on the good account" "$CF" enqueue --provider cf "ok4.z11.$ZONE" "ok5.z12.$ZONE"
"$CF" run --workers 1 --retry-base 1 --no-progress >"$tmp/run5.out" 2>&1
check_eq "run exits 3 (some jobs failed)" "$?" 3
check_eq "the good account's jobs issued" \
	"$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE j.state = 'issued' AND c.names[1] LIKE 'ok%'")" 5
check_eq "the wrong token's jobs failed after one attempt (rejected credentials are not retried)" \
	"$(sql "SELECT string_agg(state || ':' || attempts || ':' || last_problem_type, ' ') FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.provider = 'cf-bad'")" \
	"failed:1:certfleet:provider-rejected failed:1:certfleet:provider-rejected"
check "the reason names the account and the rejected token" bash -c \
	"psql -qAt '$CERTFLEET_DB' -c \"SELECT last_error FROM jobs WHERE state = 'failed' LIMIT 1\" | grep -qi 'cf-bad.*reject'"
check "no token in any output" bash -c "! grep -rq -e 'cf-token-$RUN_ID' -e wrong-token '$tmp'/run*.out"
fake_stop

# ---- 5. a slow API and the account's timeout ----
fake_start cf5 cloudflare --token-file "$tmp/token" "${zone_args[@]}" --latency 2500 || { not_ok "slow fake started"; finish; exit 1; }
slow=$FAKE_PORT
fake_start cf6 cloudflare --token-file "$tmp/token" "${zone_args[@]}" || { not_ok "fast fake started"; finish; exit 1; }
cat >"$tmp/p5.json" <<JSON
{ "verify": { "servers": ["$CERTFLEET_CHALLTESTSRV_DNS"], "require_aa": false, "interval": 0.1 },
  "providers": {
    "cf-slow": { "type": "cloudflare", "api_url": "http://127.0.0.1:$slow/client/v4",
                 "api_token_file": "$tmp/token", "zones": ["z13.$ZONE"], "timeout": 1 },
    "cf-fast": { "type": "cloudflare", "api_url": "http://127.0.0.1:$FAKE_PORT/client/v4",
                 "api_token_file": "$tmp/token", "zones": ["z14.$ZONE"], "timeout": 1 } } }
JSON
export CERTFLEET_PROVIDERS="$tmp/p5.json"
check "enqueue a certificate on the slow account" "$CF" enqueue --provider cf-slow --max-attempts 1 "slow.z13.$ZONE"
check "enqueue a certificate on the fast account" "$CF" enqueue --provider cf-fast "fast.z14.$ZONE"
"$CF" run --workers 1 --no-progress >"$tmp/run6.out" 2>&1
check_eq "run exits 3 (the slow job failed)" "$?" 3
check_eq "the slow account's job failed as a provider error a later try may mend" \
	"$(sql "SELECT state || ' ' || last_problem_type FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'slow.z13.$ZONE'")" \
	"failed certfleet:provider"
check "its reason names the account and the timeout" bash -c \
	"psql -qAt '$CERTFLEET_DB' -c \"SELECT last_error FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'slow.z13.$ZONE'\" | grep -i 'cf-slow' | grep -qi 'timed\\|timeout'"
check_eq "the fast account's job issued" \
	"$(sql "SELECT state FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'fast.z14.$ZONE'")" issued
# a record published by hand counts against the limit the runs share
tat0=$(sql "SELECT tat FROM rate_limits WHERE key = 'cloudflare:cf-fast'")
check "provider ensure by hand" "$CF" provider ensure cf-fast "_validation-persist.hand.z14.$ZONE" "by-hand"
check_eq "it took its turns from the bucket the runs share" \
	"$(sql "SELECT tat > $tat0 FROM rate_limits WHERE key = 'cloudflare:cf-fast'")" t
fake_stop

# ---- 6. the shared limit's database connection cut every second ----
fake_start cf7 cloudflare --token-file "$tmp/token" "${zone_args[@]}" || { not_ok "fake 7 started"; finish; exit 1; }
LIMIT_KEY="cf-cut-$RUN_ID" providers_file "$tmp/p6.json" "$FAKE_PORT" "5/s:10" "${zones[@]}"
export CERTFLEET_PROVIDERS="$tmp/p6.json"
for i in $(seq 1 20); do echo "cut$i.z$((i % 25 + 1)).$ZONE"; done >"$tmp/fleet6"
check "enqueue 20 certificates" "$CF" enqueue --provider cf --file "$tmp/fleet6"
"$CF" run --workers 2 --no-progress >"$tmp/run8.out" 2>&1 &
run=$!
cuts=0
while kill -0 "$run" 2>/dev/null; do
	sleep 1
	n=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database()
		AND pid <> pg_backend_pid() AND query LIKE 'UPDATE rate_limits%'")
	cuts=$((cuts + ${n:-0}))
done
wait "$run"
check_eq "run exits 0 with its limit's connection cut" "$?" 0
check "the connection was cut at least 4 times ($cuts) and the run spaced requests by itself meanwhile" \
	bash -c "[ $cuts -ge 4 ] && grep -q 'spacing requests within this process' '$tmp/run8.out'"
check "the requests fit 5/s with burst 10 across the cuts" bucket_ok "$tmp/cf7.log" 5 10
fake_stop

# enqueue needs the account to be configured, not its credentials (an IaC hook may lack them)
cat >"$tmp/p7.json" <<JSON
{ "providers": { "cf-elsewhere": { "type": "cloudflare", "api_token_file": "$tmp/no-such-token",
                                   "zones": ["z15.$ZONE"] } } }
JSON
CERTFLEET_PROVIDERS="$tmp/p7.json" "$CF" enqueue --provider cf-elsewhere "late.z15.$ZONE" >"$tmp/enq.out" 2>&1
check_eq "enqueue accepts an account whose credentials only the run can read" "$?" 0
CERTFLEET_PROVIDERS="$tmp/p7.json" "$CF" enqueue --provider cf-nowhere "never.z15.$ZONE" >"$tmp/enq2.out" 2>&1
check_eq "enqueue refuses an account that is not configured" "$?" 2
check "and names it" grep -q 'cf-nowhere' "$tmp/enq2.out"
CERTFLEET_PROVIDERS="$tmp/p7.json" "$CF" run --no-progress >"$tmp/run7.out" 2>&1
check_eq "a run without the credentials refuses to start" "$?" 2
check "and says which file is missing" grep -q 'no-such-token' "$tmp/run7.out"
finish
