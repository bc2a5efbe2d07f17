#!/usr/bin/env bash
# test_durable.sh - the queue survives: SIGKILLed runs and a PostgreSQL restart lose nothing and
# order no certificate twice per job beyond one order per kill; two runs on one database work
# each job once; a provider that fails twice is retried and the job issued on its third attempt.
# CERTFLEET_DURABLE_CERTS (300) sets the size of each of the chaos part's two batches, and
# CERTFLEET_DURABLE_PAIR_JOBS (30) the jobs the two processes share: `make sanitize`, which runs
# this test under ASan and TSan, gives smaller ones.
chaos=${CERTFLEET_DURABLE_CERTS:-300}
pair=${CERTFLEET_DURABLE_PAIR_JOBS:-30}
[[ "$chaos" =~ ^[1-9][0-9]{0,4}$ ]] ||
	{ echo "test_durable: CERTFLEET_DURABLE_CERTS '$chaos' is not a number of certificates (1-99999)" >&2; exit 2; }
[[ "$pair" =~ ^([2-9]|[1-9][0-9]{1,3})$ ]] ||
	{ echo "test_durable: CERTFLEET_DURABLE_PAIR_JOBS '$pair' is not a number of jobs (2-9999)" >&2; exit 2; }
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pebble_orders() { grep -c 'Added order' "$CERTFLEET_STACK_DIR/logs/pebble.log"; }
# eventually SECONDS CMD...: runs CMD every 0.1 s until it succeeds, for at most SECONDS
eventually() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
job_state_is() { [ "$(sql "SELECT state FROM jobs WHERE id = $1")" = "$2" ]; }

# ---- chaos: $chaos certificates, five SIGKILLs at random moments, one PostgreSQL restart ----
seq 1 "$chaos" | sed "s/^/c/; s/\$/.$ZONE/" >"$tmp/fleet"
check "enqueue $chaos" "$CF" enqueue --max-attempts 10 --file "$tmp/fleet"
orders0=$(pebble_orders)
kills=0
for i in 1 2 3 4 5; do
	"$CF" run --workers 2 --inflight 40 --max-unsaved-orders 1 --lease 4 --retry-base 1 --no-progress >>"$tmp/chaos.out" 2>>"$tmp/chaos.err" &
	pid=$!
	sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.1f", 0.5 + rand() * 2 }')"
	if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
	wait "$pid" 2>/dev/null
done
# The last run finishes the queue ($chaos more certificates keep it busy), taking over the killed
# runs' jobs when their leases expire; PostgreSQL restarts under it, and it reconnects and goes on.
seq 1 "$chaos" | sed "s/^/d/; s/\$/.$ZONE/" | "$CF" enqueue >/dev/null || not_ok "enqueue $chaos more"
timeout 300 "$CF" run --workers 2 --max-unsaved-orders 1 --lease 4 --retry-base 1 --no-progress >>"$tmp/chaos.out" 2>>"$tmp/chaos.err" &
pid=$!
sleep 1
"$repo/scripts/stack.sh" restart-postgres >/dev/null 2>&1 || not_ok "restart postgres"
wait "$pid"
rc=$?
check_eq "final run exits 0 across the PostgreSQL restart" "$rc" 0
check "the run noticed the restart and reconnected" grep -q "reconnect" "$tmp/chaos.err"
check_eq "every job ended issued" "$(sql "SELECT count(*) FROM jobs WHERE state <> 'issued'")" 0
check_eq "one current result per certificate" \
	"$(sql "SELECT count(*) FROM (SELECT certificate_id FROM results WHERE is_current GROUP BY 1 HAVING count(*) = 1) x")" $((2 * chaos))
check_eq "no result lost or doubled" "$(sql "SELECT count(*) FROM results")" $((2 * chaos))
orders=$(($(pebble_orders) - orders0))
# With --max-unsaved-orders 1, a newOrder waits until the URL of the order before it is
# committed, so a kill orphans at most one order (with N, at most N). A resumed order that the CA reports invalid or expired is
# replaced by a new one, as it must be; those are counted apart.
abandoned=$(sql "SELECT count(*) FROM events WHERE kind = 'resume' AND detail LIKE 'not continuing%'")
bound=$((2 * chaos + kills + abandoned))
if [ "$orders" -le "$bound" ]; then ok "ACME orders created ($orders) <= certificates + kills + invalid resumed orders ($bound)"
else not_ok "ACME orders created ($orders) > certificates + kills + invalid resumed orders ($bound)"; fi
# finalize waits for its key to be stored, so a valid order is always usable after a crash
check_eq "no valid order abandoned for want of its key" \
	"$(sql "SELECT count(*) FROM events WHERE kind = 'resume' AND detail LIKE 'not continuing order % (valid)%'")" 0
sql "SELECT detail FROM events WHERE kind = 'resume' AND detail LIKE 'not continuing%'" | sed "s/order [^ ]*/order/" | sort | uniq -c | sed "s/^/# abandoned: /"
echo "# chaos: $kills kills, $((2 * chaos)) certificates, $orders orders, rescued: $(sql "SELECT count(*) FROM events WHERE kind = 'rescued'"), resumed: $(sql "SELECT count(*) FROM events WHERE kind = 'resume'")"
check "some work was taken over after a kill" test "$(sql "SELECT count(*) FROM events WHERE kind = 'rescued'")" -gt 0
check_eq "the ready queue is empty, as every job ended" "$(sql "SELECT count(*) FROM job_queue")" 0
check_unfinished "chaos"
check_eq "no live lease is left behind" "$(sql "SELECT count(*) FROM runners WHERE lease_until > now()")" 0

# ---- two processes on one database: each job worked exactly once ----
# One order in flight per process: Pebble 2.10 can deadlock when one process's newOrder overlaps
# another's authorization fetches (certfleet keeps them apart only within a process).
seq 1 "$pair" | sed "s/^/two/; s/\$/.$ZONE/" >"$tmp/two"
check "enqueue $pair" "$CF" enqueue --file "$tmp/two"
"$CF" run --workers 1 --inflight 1 --batch 1 --no-progress >"$tmp/two-a.out" 2>&1 &
a=$!
"$CF" run --workers 1 --inflight 1 --batch 1 --no-progress >"$tmp/two-b.out" 2>&1
wait "$a"
check_eq "two runs: every job issued" "$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] LIKE 'two%' AND j.state = 'issued'")" "$pair"
check_eq "two runs: one attempt and one order per job" \
	"$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] LIKE 'two%' AND j.attempts = 1 AND (SELECT count(*) FROM orders o WHERE o.job_id = j.id) = 1")" "$pair"
ca=$(grep -o 'claimed=[0-9]*' "$tmp/two-a.out" | cut -d= -f2)
cb=$(grep -o 'claimed=[0-9]*' "$tmp/two-b.out" | cut -d= -f2)
check_eq "two runs: claims add up to $pair ($ca + $cb)" "$((ca + cb))" "$pair"
check "two runs: both processes worked" test "$ca" -gt 0 -a "$cb" -gt 0
check_eq "two runs: both released their lease at the end" "$(sql "SELECT count(*) FROM runners WHERE lease_until > now()")" 0
check_unfinished "two runs"

# ---- retry: the provider fails twice, then succeeds ----
python3 "$here/flaky_proxy.py" "$CERTFLEET_CHALLTESTSRV_URL" 2 >"$tmp/proxy.port" 2>"$tmp/proxy.err" &
eventually 5 test -s "$tmp/proxy.port"
port=$(cat "$tmp/proxy.port")
check "enqueue the flaky one" "$CF" enqueue "flaky.$ZONE"
CERTFLEET_CHALLTESTSRV_URL="http://127.0.0.1:$port" "$CF" run --retry-base 1 --no-progress >"$tmp/retry.out" 2>&1
check_eq "retry: run exits 0" "$?" 0
check_eq "retry: job issued" "$(sql "SELECT state FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['flaky.$ZONE']")" issued
check_eq "retry: 3 attempts recorded" "$(sql "SELECT attempts FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['flaky.$ZONE']")" 3
check_eq "retry: two retry events" "$(sql "SELECT count(*) FROM events e JOIN jobs j ON j.id = e.job_id JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['flaky.$ZONE'] AND e.kind = 'retry'")" 2
check_eq "retry: the proxy refused two writes" "$(grep -c refused "$tmp/proxy.err")" 2

# ---- follow: an idle run wakes on enqueue (LISTEN/NOTIFY) ----
"$CF" run --follow --no-progress >"$tmp/follow.out" 2>&1 &
pid=$!
sleep 1
check "enqueue while a run follows" "$CF" enqueue "follow.$ZONE"
for _ in $(seq 100); do
	[ "$(sql "SELECT state FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['follow.$ZONE']")" = issued ] && break
	sleep 0.2
done
check_eq "follow: the job was picked up and issued" "$(sql "SELECT state FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['follow.$ZONE']")" issued
t0=$(date +%s%N)
kill -TERM "$pid"
wait "$pid"
check_eq "follow: SIGTERM ends the run cleanly" "$?" 0
# idle, the run waits for a NOTIFY; the signal must not wait for that wait to run out
ms=$((($(date +%s%N) - t0) / 1000000))
check "follow: the idle run ends within 2 s of SIGTERM (${ms} ms)" test "$ms" -lt 2000

# ---- cancel ----
check "enqueue to cancel" "$CF" enqueue --label tonight "x1.$ZONE" "x2.$ZONE"
run=$(sql "SELECT max(id) FROM runs")
check "cancel the run" "$CF" cancel --run "$run"
check_eq "cancelled jobs" "$(sql "SELECT count(*) FROM jobs WHERE run_id = $run AND state = 'cancelled'")" 2
check_eq "cancelled jobs left the ready queue" \
	"$(sql "SELECT count(*) FROM job_queue q JOIN jobs j ON j.id = q.job_id WHERE j.run_id = $run")" 0
"$CF" run --no-progress >/dev/null 2>&1
check_eq "a cancelled job is not worked" "$(sql "SELECT count(*) FROM orders o JOIN jobs j ON j.id = o.job_id WHERE j.run_id = $run")" 0
# a cancel that reached a running job as it went back to the queue for a retry: the claim ends it
check "enqueue one more" "$CF" enqueue "y1.$ZONE"
sql "UPDATE jobs SET cancel_requested = true FROM certificates c WHERE c.id = jobs.certificate_id AND c.names = ARRAY['y1.$ZONE']" >/dev/null
"$CF" run --no-progress >/dev/null 2>&1
check_eq "a job flagged for cancel is cancelled when claimed, not worked" \
	"$(sql "SELECT j.state || ' ' || (SELECT count(*) FROM orders o WHERE o.job_id = j.id) || ' ' || (SELECT count(*) FROM events e WHERE e.job_id = j.id AND e.kind = 'cancelled') FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['y1.$ZONE']")" "cancelled 0 1"

# a cancel that reaches a job while it runs: its process ends the order at the next renewal of
# its lease (every second here), although the provider's program still hangs
# (two exec accounts running exec_hook.sh: "slow" for this test, "late" for the next one, which
# confirms its record at challtestsrv); the hook's mode is in the file $EXEC_HOOK_LOG.mode
EXEC_HOOK_LOG="$tmp/hook.log"
printf '{ "providers": { "slow": { "type": "exec", "command": "%s", "timeout": 20, "zones": ["%s"],
	"env": { "EXEC_HOOK_LOG": "%s" } },
	"late": { "type": "exec", "command": "%s", "timeout": 3, "zones": ["%s"], "env": { "EXEC_HOOK_LOG": "%s" },
	"verify": { "servers": ["%s"], "require_aa": false, "interval": 0.2, "deadline": 20 } } } }\n' \
	"$here/exec_hook.sh" "$ZONE" "$EXEC_HOOK_LOG" "$here/exec_hook.sh" "$ZONE" "$EXEC_HOOK_LOG" \
	"$CERTFLEET_CHALLTESTSRV_DNS" >"$tmp/exec.json"
chmod 0600 "$tmp/exec.json"
export CERTFLEET_PROVIDERS="$tmp/exec.json"
: >"$EXEC_HOOK_LOG"
check "enqueue a job whose provider hangs" "$CF" enqueue --provider slow "z1.$ZONE"
zid=$(sql "SELECT j.id FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['z1.$ZONE']")
echo hang >"$EXEC_HOOK_LOG.mode"
"$CF" run --lease 3 --no-progress >"$tmp/zrun.out" 2>&1 &
zpid=$!
eventually 10 test -s "$EXEC_HOOK_LOG.pids"
check_eq "the job runs, its provider's program hangs" "$(sql "SELECT state FROM jobs WHERE id = $zid")" running
check "cancel the running job" bash -c "'$CF' cancel --job $zid | grep -q '1 running job'"
check_eq "the request is flagged where the renewal looks" \
	"$(sql "SELECT count(*) FROM unfinished_jobs WHERE job_id = $zid AND cancel_requested")" 1
eventually 10 job_state_is "$zid" cancelled
check_eq "the run cancels the job within seconds, with its event" \
	"$(sql "SELECT j.state || ' ' || (SELECT count(*) FROM events e WHERE e.job_id = j.id AND e.kind = 'cancelled') FROM jobs j WHERE j.id = $zid")" "cancelled 1"
kill $(cat "$EXEC_HOOK_LOG.pids") 2>/dev/null
wait "$zpid"
check_eq "the run ends without a failure" "$?" 0

# a late report: a run stalls (SIGSTOP) while its provider's program hangs, its lease runs out,
# another run takes the job over and issues it; the retry the first run reports when it wakes
# (its program timed out meanwhile) leaves the issued job as it is, and it is not ordered again
check "enqueue a job for the late report" "$CF" enqueue --provider late "z2.$ZONE"
"$CF" records --format tsv | grep "z2.$ZONE" | while IFS=$'\t' read -r fqdn value; do
	curl -sf -X POST -d "{\"host\":\"$fqdn.\",\"value\":\"$value\"}" "$CERTFLEET_CHALLTESTSRV_URL/set-txt"
done
zid=$(sql "SELECT j.id FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['z2.$ZONE']")
rm -f "$EXEC_HOOK_LOG.pids"
echo hang >"$EXEC_HOOK_LOG.mode"
"$CF" run --lease 3 --no-progress >"$tmp/late-a.out" 2>&1 &
apid=$!
eventually 10 test -s "$EXEC_HOOK_LOG.pids"
kill -STOP "$apid"
sleep 4
echo ok >"$EXEC_HOOK_LOG.mode"
"$CF" run --lease 3 --no-progress >"$tmp/late-b.out" 2>&1
check_eq "the stalled run's job is taken over and issued" "$?" 0
check_eq "it is issued" "$(sql "SELECT state FROM jobs WHERE id = $zid")" issued
kill -CONT "$apid"
wait "$apid"
check_eq "the late retry leaves the job issued, with its result" \
	"$(sql "SELECT j.state || ' ' || (SELECT count(*) FROM results r WHERE r.job_id = j.id) FROM jobs j WHERE j.id = $zid")" "issued 1"
check_eq "and writes no retry event and no queue row for it" \
	"$(sql "SELECT (SELECT count(*) FROM events WHERE job_id = $zid AND kind = 'retry') + (SELECT count(*) FROM job_queue WHERE job_id = $zid)")" 0
check "the stalled run reported its retry when it woke" grep -q "1 failed attempt" "$tmp/late-a.out"
kill $(cat "$EXEC_HOOK_LOG.pids") 2>/dev/null
unset CERTFLEET_PROVIDERS

check_unfinished "cancel"

# ---- retention ----
results=$(sql "SELECT count(*) FROM results")
"$CF" cleanup --older-than 0 >/dev/null
check_eq "cleanup removed every finished job" "$(sql "SELECT count(*) FROM jobs WHERE state IN ('issued', 'failed', 'cancelled')")" 0
check_eq "cleanup kept every result" "$(sql "SELECT count(*) FROM results")" "$results"
check_eq "cleanup removed the events of the jobs it removed" \
	"$(sql "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job_id)")" 0
check_unfinished "cleanup"
finish
