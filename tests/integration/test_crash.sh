#!/usr/bin/env bash
# test_crash.sh - a run killed at the worst moment (the order is valid at the CA, its result not
# stored yet; a fault point of the build-faults binary) loses nothing: the next run downloads that
# certificate from the stored order, with no new order and no second certificate.
. "$(dirname "$0")/lib.sh"

FAULT_BIN=${CERTFLEET_FAULT_BIN:-}
if [ ! -x "$FAULT_BIN" ]; then
	not_ok "the fault build (make faults) at CERTFLEET_FAULT_BIN"
	finish
	exit 1
fi
log="$CERTFLEET_STACK_DIR/logs/pebble.log"
since() { tail -c +"$((start + 1))" "$log" | grep -c "$1"; }

db_new || { not_ok "create database"; finish; exit 1; }
register || not_ok "account register"
"$CF" enqueue "crash.$ZONE" >/dev/null || not_ok "enqueue"
start=$(stat -c %s "$log")
out=$(mktemp)
CERTFLEET_FAULT=after-valid "$FAULT_BIN" run --workers 1 --lease 3 --no-progress >"$out" 2>&1
check_eq "the armed run dies at the fault point (SIGKILL)" "$?" 137
check "it says which fault point" grep -q 'fault point "after-valid"' "$out"
check_eq "the CA issued the certificate" "$(since 'Issued certificate')" 1
check_eq "no result is stored" "$(sql "SELECT count(*) FROM results")" 0
check_eq "the order is stored with its key, and not as valid" \
	"$(sql "SELECT count(*) FROM orders WHERE key_pem IS NOT NULL AND state <> 'valid'")" 1
check_eq "the job is still running under the dead run's lease" "$(sql "SELECT state FROM jobs")" running

sleep 4 # the dead run's lease (3 s) runs out; the next run's rescuer takes its job back
"$CF" run --workers 1 --no-progress >"$out" 2>&1
check_eq "the next run exits 0" "$?" 0
check_eq "the job is issued" "$(sql "SELECT state FROM jobs")" issued
check_eq "exactly one result, current, with its key" \
	"$(sql "SELECT count(*) FROM results WHERE is_current AND key_pem IS NOT NULL")/$(sql "SELECT count(*) FROM results")" 1/1
check_eq "Pebble created one order in all: none in the second run" "$(since 'Added order')" 1
check_eq "Pebble issued one certificate in all" "$(since 'Issued certificate')" 1
check_eq "the stored result is the certificate the CA issued before the crash" \
	"$(sql "SELECT serial FROM results")" \
	"$(tail -c +"$((start + 1))" "$log" | sed -n 's/.*Issued certificate serial \([0-9a-f]*\) .*/\1/p')"
check "the job's events say the stored order was continued as valid" \
	bash -c "psql -qAt '$CERTFLEET_DB' -c \"SELECT detail FROM events WHERE kind = 'resume'\" | grep -q '(valid)'"
check_eq "the order is now stored as valid" "$(sql "SELECT state FROM orders")" valid
rm -f "$out"
check_unfinished "after the crash and the resumed run"
finish
