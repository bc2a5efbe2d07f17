#!/usr/bin/env bash
# test_db_outage.sh - PostgreSQL stops (fast shutdown) for 30 s while a run of 2,000 certificates
# has most of them in flight, and starts again. The run ends by itself; every certificate the CA
# issued is stored once with its key, nothing goes to the journal, nothing is issued twice.
. "$(dirname "$0")/lib.sh"

N=${CERTFLEET_OUTAGE_CERTS:-2000}
OUTAGE=${CERTFLEET_OUTAGE_SECONDS:-30}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
db_new || { not_ok "create database"; finish; exit 1; }
register || { not_ok "account register"; finish; exit 1; }
tmp=$(mktemp -d)
cleanup() {
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
	# never leave the stack without its database
	"$repo/scripts/stack.sh" status >/dev/null 2>&1 || "$repo/scripts/stack.sh" start-postgres >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
log="$CERTFLEET_STACK_DIR/logs/pebble.log"
since() { tail -c +"$((start + 1))" "$log" | grep -c "$1"; }
summary_field() { sed -n 's/^summary: //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

seq 1 "$N" | sed "s/^/o/; s/\$/.$ZONE/" >"$tmp/fleet"
"$CF" enqueue --file "$tmp/fleet" >/dev/null || { not_ok "enqueue $N"; finish; exit 1; }

# Once 200 results are stored, PostgreSQL stops for $OUTAGE s.
(
	for _ in $(seq 1 6000); do
		stored=$(sql "SELECT count(*) FROM results" 2>/dev/null)
		if [ "${stored:-0}" -ge 200 ]; then
			echo "$stored" >"$tmp/stopped-at"
			"$repo/scripts/stack.sh" stop-postgres >"$tmp/stack.out" 2>&1 || exit 1
			date +%s.%N >"$tmp/stopped"
			stat -c %s "$log" >"$tmp/stopped.log-size"
			sleep "$OUTAGE"
			stat -c %s "$log" >"$tmp/started.log-size"
			"$repo/scripts/stack.sh" start-postgres >>"$tmp/stack.out" 2>&1 || exit 1
			date +%s.%N >"$tmp/started"
			exit 0
		fi
		sleep 0.05
	done
	exit 1
) &
outage=$!

start=$(stat -c %s "$log")
t0=$(date +%s.%N)
# --max-unsaved-orders above N: the outage must not hold newOrders back, so that the orders in
# flight pile up behind the database (finalize still waits for its key to be stored). --lease 75:
# renewed every 25 s, so that at least one renewal falls within the outage, while the lease (50 s
# or more left when the outage begins) outlasts it.
timeout -k 30 600 "$CF" run --workers 2 --inflight 1100 --max-unsaved-orders 4000 --separate-new-orders \
	--lease 75 --retry-base 1 --retry-wait 120 --no-progress >"$tmp/run1.out" 2>"$tmp/run1.err"
rc=$?
t1=$(date +%s.%N)
wait "$outage"
outage_rc=$?
[ "$outage_rc" -eq 0 ] || not_ok "stop PostgreSQL after 200 results and start it $OUTAGE s later ($(tr '\n' ' ' <"$tmp/stack.out" 2>/dev/null))"
stopped_at=$(cat "$tmp/stopped-at" 2>/dev/null)

case "$rc" in
0 | 4) ok "the run ends by itself across the outage (exit $rc)" ;;
*)
	not_ok "the run ends by itself across the outage (exit $rc)"
	{ grep -h '^summary:' "$tmp/run1.out"; grep -v '^\s*$' "$tmp/run1.err" | tail -n 30; } | sed 's/^/# /'
	;;
esac
# retries left in the queue: further runs until it is empty
reruns=0
while [ "$rc" -eq 4 ] && [ "$reruns" -lt 5 ]; do
	reruns=$((reruns + 1))
	sleep 1
	timeout -k 30 300 "$CF" run --workers 2 --retry-base 1 --no-progress >"$tmp/rerun$reruns.out" 2>"$tmp/rerun$reruns.err"
	rc=$?
done
[ "$reruns" -eq 0 ] || check_eq "after $reruns more run(s) for the queued retries, exit 0" "$rc" 0

check "the outage began in the middle of the run (after ${stopped_at:-no} results)" \
	test -n "$stopped_at" -a "${stopped_at:-0}" -lt "$N"
check_eq "every job issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" "$N"
check_eq "every certificate has exactly one current result, with its key" \
	"$(sql "SELECT count(*) FROM certificates c WHERE (SELECT count(*) FROM results r
		WHERE r.certificate_id = c.id AND r.is_current AND r.key_pem IS NOT NULL) = 1")" "$N"
stored=$(sql "SELECT count(*) FROM results")
check_eq "exactly one result per certificate: $N in all" \
	"$stored/$(sql "SELECT count(DISTINCT certificate_id) FROM results")" "$N/$N"
ca_issued=$(since 'Issued certificate')
orders=$(since 'Added order')
check_eq "Pebble issued $N certificates during the test" "$ca_issued" "$N"
check_eq "the results hold exactly the serials Pebble issued" \
	"$(sql "SELECT serial FROM results ORDER BY 1" | md5sum)" \
	"$(tail -c +"$((start + 1))" "$log" | sed -n 's/.*Issued certificate serial \([0-9a-f]*\) .*/\1/p' | LC_ALL=C sort | md5sum)"
# a sample: all 2,000 would take longer than the run itself on a small machine
check_eq "stored keys match their certificates (mismatched/checked, 300 picked at random)" \
	"$(result_keys_checked 300)" "0/300"
# each attempt retried (say the CA's DNS lookup failed under load) makes one new order, no more
retried=$(summary_field "$tmp/run1.out" retried)
for f in "$tmp"/rerun*.out; do [ -e "$f" ] && retried=$((retried + $(summary_field "$f" retried))); done
check_eq "Pebble created one order per certificate plus one per retried attempt ($retried)" "$orders" "$((N + retried))"
check "no journal was written" test ! -e "$CERTFLEET_JOURNAL"
check_eq "the summary says journalled=0 lost=0" \
	"$(summary_field "$tmp/run1.out" journalled) $(summary_field "$tmp/run1.out" lost)" "0 0"
waits=$(summary_field "$tmp/run1.out" db_waits)
longest=$(summary_field "$tmp/run1.out" db_longest_wait_s)
check "the writer waited the outage out (db_longest_wait_s=$longest >= $((OUTAGE - 5)))" \
	awk -v s="${longest:-0}" -v m="$((OUTAGE - 5))" 'BEGIN { exit !(s >= m) }'
check "the writer warned that PostgreSQL does not take writes" \
	grep -q "writer: PostgreSQL does not take writes" "$tmp/run1.err"
check "the writer said when PostgreSQL took writes again" grep -q "PostgreSQL takes writes again" "$tmp/run1.err"
peak=$(summary_field "$tmp/run1.out" peak_inflight)
check "most certificates were in flight at once (peak_inflight=$peak >= $((N * 9 / 10)))" \
	test "${peak:-0}" -ge "$((N * 9 / 10))"
check_eq "the ready queue is empty" "$(sql "SELECT count(*) FROM job_queue")" 0
check_eq "no live lease is left behind" "$(sql "SELECT count(*) FROM runners WHERE lease_until > now()")" 0
check_unfinished "after the outage"

# what the CA did while PostgreSQL was away (Pebble's log between the stop and the start)
away() {
	local a b
	a=$(cat "$tmp/stopped.log-size" 2>/dev/null) b=$(cat "$tmp/started.log-size" 2>/dev/null)
	[ -n "$a" ] && [ -n "$b" ] || { echo "?"; return; }
	tail -c +"$((a + 1))" "$log" | head -c "$((b - a))" | grep -c "$1"
}
echo "# $N certificates: $ca_issued issued by the CA, $stored results stored, $orders orders created; $reruns more run(s)"
echo "# while PostgreSQL was away the CA created $(away 'Added order') orders and issued $(away 'Issued certificate') certificates; the run's stderr has $(wc -l <"$tmp/run1.err") lines"
echo "# outage: PostgreSQL stopped after $stopped_at results, for $(awk -v a="$(cat "$tmp/stopped" 2>/dev/null)" -v b="$(cat "$tmp/started" 2>/dev/null)" 'BEGIN { printf "%.1f", b - a }') s"
echo "# run time $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s (wall_s=$(summary_field "$tmp/run1.out" wall_s)); peak_inflight=$peak peak_outbox=$(summary_field "$tmp/run1.out" peak_outbox) peak_rss_mb=$(summary_field "$tmp/run1.out" peak_rss_mb) db_waits=$waits db_longest_wait_s=$longest retried=$retried failed=$(summary_field "$tmp/run1.out" failed)"
finish
