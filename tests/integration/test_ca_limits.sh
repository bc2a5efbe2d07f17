#!/usr/bin/env bash
# test_ca_limits.sh - certfleet's own limits towards the CA: with --ca-limits new-order=2/s:1,
# 10 certificates' newOrder requests reach Pebble at most 2 a second (3 within any clock second,
# counting the burst of 1), so the CA never has to say 429; a bad specification is refused.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log="$CERTFLEET_STACK_DIR/logs/pebble.log"
before=$(grep -c 'Added order' "$log")

for i in $(seq 1 10); do echo "ca$i.$ZONE"; done | "$CF" enqueue >/dev/null || not_ok "enqueue"
"$CF" run --workers 2 --ca-limits "new-order=2/s:1" --no-progress >"$tmp/run.out" 2>"$tmp/run.err"
check_eq "run exits 0" "$?" 0
check_eq "10 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 10
check "the run logged its CA limits" grep -q "rate limits towards the CA: new-order 2/s burst 1" "$tmp/run.err"
# Pebble stamps its log lines to the second: count this run's new orders per second
tail -n +1 "$log" | grep 'Added order' | tail -n +$((before + 1)) | awk '{ print $3 }' | sort | uniq -c >"$tmp/per-second"
sed 's/^/# new orders per second: /' "$tmp/per-second"
check_eq "10 new orders reached Pebble" "$(awk '{ n += $1 } END { print n }' "$tmp/per-second")" 10
check "at most 3 new orders in any second" awk '$1 > 3 { bad = 1 } END { exit bad }' "$tmp/per-second"
check "spread over at least 4 seconds" test "$(wc -l <"$tmp/per-second")" -ge 4

"$CF" run --ca-limits "new-order=fast" --no-progress >"$tmp/bad.out" 2>&1
check_eq "a bad --ca-limits exits 2" "$?" 2
check "and names what is wrong" grep -q "fast" "$tmp/bad.out"
finish
