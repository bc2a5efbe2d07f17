#!/usr/bin/env bash
# test_ca_faults.sh - 500 certificates through faultproxy.py, which breaks 10% of the requests to
# Pebble (errors before and after Pebble acted, resets, truncated and garbage bodies, a missing
# Location, absurd Retry-After, delays): every certificate ends with exactly one current result
# and its key, no job fails or is left unfinished, every certificate the CA issued is stored, and
# the orders created at the CA stay within one per certificate plus one per lost answer or retry.
# FAULT_CERTS, FAULT_RATE, FAULT_SEED and FAULT_KINDS change the size, the rate, the proxy's seed
# and the kinds of faults.
. "$(dirname "$0")/lib.sh"

certs=${FAULT_CERTS:-500}
rate=${FAULT_RATE:-0.1}
seed=${FAULT_SEED:-$RANDOM}
kinds=${FAULT_KINDS:-500,503,429,absurd-retry-after,reset,delay,500-after,reset-after,truncate,garbage,nolocation}
# answers Pebble gave that the client never read: a newOrder answered so leaves an order behind
lost_kinds='500-after|reset-after|truncate|garbage|nolocation'

db_new || { not_ok "create database"; finish; exit 1; }
tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pebble_log="$CERTFLEET_STACK_DIR/logs/pebble.log"
# pebble_new COUNT_PATTERN: lines matching it that Pebble logged since the test began
pebble_new() { tail -c +"$((log0 + 1))" "$pebble_log" | grep -c "$1"; }
# fault_count JQ_PATH: a number from the proxy's totals (0 when absent)
stat_of() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$tmp/stats.json" "$1"; }

# The proxy starts without faults, so that the account is registered through it (Pebble's
# account URL, and with it the accounturi of every record, names the host and port the client
# used); the faults start with the run.
start_faultproxy --rate 0 --faults "$kinds" --delay 3 --seed "$seed" --stats "$tmp/stats.json" --max-seconds 600
export CERTFLEET_DIRECTORY="https://localhost:$port/dir"
check "account register through the proxy" register

seq 1 "$certs" | sed "s/^/f/; s/\$/.$ZONE/" >"$tmp/fleet"
check "enqueue $certs" "$CF" enqueue --max-attempts 10 --file "$tmp/fleet"
log0=$(stat -c %s "$pebble_log")
curl -sf "http://127.0.0.1:$ctl/rate/$rate" >/dev/null || not_ok "set the proxy's fault rate"
echo "# faultproxy on port $port, rate $rate, seed $seed, kinds $kinds"

t0=$(date +%s.%N)
# 16 unsaved orders rather than the default 1: with one, every newOrder waits for the one before it
# to be stored, and the 3 s delays and back-offs on newOrder add up to minutes (the crash bound is
# not what this test is about)
timeout 420 "$CF" run --workers 2 --retry-base 1 --retry-wait 600 --max-unsaved-orders 16 --no-progress \
	>"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
t1=$(date +%s.%N)
curl -sf "http://127.0.0.1:$ctl/rate/0" >/dev/null
kill -TERM "$proxy"
wait "$proxy" 2>/dev/null
check_eq "run exits 0 through the faults" "$rc" 0

summary=$(grep '^summary:' "$tmp/run.out")
field() { echo "$summary" | grep -o " $1=[^ ]*" | cut -d= -f2; }
retried=$(field retried)
issued_ca=$(pebble_new 'Issued certificate serial')
orders_ca=$(pebble_new 'Added order')
orders_db=$(sql "SELECT count(*) FROM orders")
results=$(sql "SELECT count(*) FROM results")
lost_new_orders=$(stat_of "sum(v for k, v in d['faults_by_endpoint'].get('/order-plz', {}).items() if k in '$lost_kinds'.split('|'))")

# An answer lost after Pebble acted (500-after, reset-after, truncate) makes the client send the
# same POST again, and Pebble refuses the repeat (finalize: orderNotReady, the order being valid;
# the challenge: malformed, being valid): the engine then goes by the order's or authorization's
# own state. A garbled answer to a fetch is fetched again.
check_eq "every certificate has exactly one current result with its key" \
	"$(sql "SELECT count(*) FROM certificates c WHERE (SELECT count(*) FROM results r WHERE r.certificate_id = c.id
		AND r.is_current AND r.key_pem LIKE 'cfseal1:%' AND r.leaf_pem LIKE '-----BEGIN CERTIFICATE-----%') = 1")" "$certs"
check_eq "no certificate without its current result" \
	"$(sql "SELECT count(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.certificate_id = c.id AND r.is_current)")" 0
check_eq "every job issued (none failed, none left)" "$(sql "SELECT count(*) FROM jobs WHERE state <> 'issued'")" 0
check_eq "the ready queue is empty" "$(sql "SELECT count(*) FROM job_queue")" 0
check_unfinished "after the faults"
# A certificate the CA issued but certfleet did not store is a lost certificate.
check_eq "every certificate the CA issued was stored ($issued_ca issued, $results stored)" "$issued_ca" "$results"
bound=$((certs + retried + lost_new_orders))
if [ -n "$retried" ] && [ "$orders_ca" -le "$bound" ]; then
	ok "orders created at the CA ($orders_ca) <= certificates + retried attempts + lost newOrder answers ($certs + $retried + $lost_new_orders)"
else
	not_ok "orders created at the CA ($orders_ca) > certificates + retried attempts + lost newOrder answers ($certs + ${retried:-?} + $lost_new_orders)"
fi
check "the proxy injected faults" test "$(stat_of "d['faults_total']")" -gt 0

# The figures, for the record.
echo "# certificates: $certs; issued by the CA: $issued_ca; results stored: $results ($(sql "SELECT count(*) FROM results WHERE is_current") current)"
echo "# orders created at the CA: $orders_ca; orders stored: $orders_db; job attempts: $(sql "SELECT sum(attempts) FROM jobs"); retried (summary): ${retried:-?}; newOrder answers lost by faults: $lost_new_orders"
echo "# requests through the proxy: $(stat_of "d['requests']"); faults injected: $(stat_of "d['faults_total']")"
echo "# faults by kind: $(stat_of "' '.join(f'{k}={v}' for k, v in sorted(d['faults'].items()))")"
echo "# faults by endpoint: $(stat_of "'; '.join(ep + ' ' + ','.join(f'{k}={v}' for k, v in sorted(kv.items())) for ep, kv in sorted(d['faults_by_endpoint'].items()))")"
echo "# run time: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; exit code $rc; peak RSS $(field peak_rss_mb) MB"
echo "# $summary"
sql "SELECT kind || ': ' || regexp_replace(detail, '[0-9a-f]{8,}|[0-9]+', 'N', 'g') FROM events WHERE kind <> 'claimed'" |
	sort | uniq -c | sort -rn | head -20 | sed 's/^/# events: /'
if [ "$(sql "SELECT count(*) FROM jobs WHERE state <> 'issued'")" -ne 0 ]; then
	echo "# jobs not issued, by outcome (count | state | attempts | problem | error | job ids):"
	sql "SELECT count(*), state, max(attempts), last_problem_type, last_error, string_agg(id::text, ',' ORDER BY id)
		FROM jobs WHERE state <> 'issued' GROUP BY 2, 4, 5 ORDER BY 1 DESC" | sed 's/^/#   /'
	echo "# events of the first job of each outcome:"
	for id in $(sql "SELECT min(id) FROM jobs WHERE state <> 'issued' GROUP BY last_problem_type, last_error ORDER BY 1"); do
		echo "#   job $id: $(sql "SELECT count(*) FROM orders WHERE job_id = $id") order(s) stored: $(sql "SELECT string_agg(state || ' ' || order_url, ', ') FROM orders WHERE job_id = $id")"
		sql "SELECT kind, detail FROM events WHERE job_id = $id ORDER BY id" | sed 's/^/#     event: /'
		grep -F "job $id (" "$tmp/run.err" | sed 's/^/#     stderr: /'
	done
fi
# FAULT_KEEP_DIR: where to copy the run's output and the proxy's log, for a closer look
if [ -n "${FAULT_KEEP_DIR:-}" ]; then mkdir -p "$FAULT_KEEP_DIR" && cp "$tmp"/* "$FAULT_KEEP_DIR"/; fi
finish
