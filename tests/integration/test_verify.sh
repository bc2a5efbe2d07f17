#!/usr/bin/env bash
# test_verify.sh - records confirmed at the authoritative servers before the challenge: a record
# published late (here by hand, as infrastructure-as-code would, through the "manual" provider) is
# waited for and the order succeeds; one that never appears fails at the deadline with a reason
# that names it; a confirmed record spares later orders every DNS check.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# challtestsrv is Pebble's DNS here; it answers without the AA flag, hence require_aa false.
cat >"$tmp/providers.json" <<JSON
{ "providers": {
    "iac":      { "type": "manual",
                  "verify": { "servers": ["$CERTFLEET_CHALLTESTSRV_DNS"], "require_aa": false,
                              "interval": 0.2, "max_interval": 1, "deadline": 60 } },
    "iac-late": { "type": "manual",
                  "verify": { "servers": ["$CERTFLEET_CHALLTESTSRV_DNS"], "require_aa": false,
                              "interval": 0.2, "max_interval": 1, "deadline": 3 } } } }
JSON
chmod 600 "$tmp/providers.json"
export CERTFLEET_PROVIDERS="$tmp/providers.json"

check "enqueue 3 certificates on the manual provider" "$CF" enqueue --provider iac "a.$ZONE" "b.$ZONE,www.b.$ZONE" "*.c.$ZONE"
"$CF" records --format tsv >"$tmp/records.tsv"
check_eq "records lists the 4 names' records" "$(wc -l <"$tmp/records.tsv")" 4
# the records appear 3 s after the run starts
(
	sleep 3
	while IFS=$'\t' read -r fqdn value; do
		curl -sf -X POST -d "{\"host\":\"$fqdn.\",\"value\":\"$value\"}" "$CERTFLEET_CHALLTESTSRV_URL/set-txt"
	done <"$tmp/records.tsv"
) &
publisher=$!
t0=$(date +%s%N)
"$CF" run --workers 1 --no-progress >"$tmp/run1.out" 2>&1
rc=$?
t1=$(date +%s%N)
wait "$publisher"
check_eq "run exits 0" "$rc" 0
check_eq "all 3 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 3
check "the run waited for the records (took at least 3 s)" test $(((t1 - t0) / 1000000)) -ge 3000
check_eq "each record confirmed and its time stored" \
	"$(sql "SELECT count(*) FROM records WHERE confirmed_at IS NOT NULL AND provider = 'iac'")" 4
check_eq "the events say the records were confirmed" \
	"$(sql "SELECT count(*) FROM events WHERE kind = 'record' AND detail LIKE 'published and confirmed%'")" 4

# a renewal of the same certificates does no DNS work: no record event, no check
check "enqueue the same certificates again" "$CF" enqueue --provider iac "a.$ZONE" "b.$ZONE,www.b.$ZONE" "*.c.$ZONE"
"$CF" run --workers 1 --no-progress >"$tmp/run2.out" 2>&1
check_eq "renewal run exits 0" "$?" 0
check_eq "6 issued in all" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 6
check_eq "no record work for the renewals" \
	"$(sql "SELECT count(*) FROM events WHERE kind = 'record'")" 4

# a record that never appears: the order gives up at the 3 s deadline, with the reason
check "enqueue a certificate whose record never appears" \
	"$CF" enqueue --provider iac-late --max-attempts 1 "never.$ZONE"
"$CF" run --workers 1 --no-progress >"$tmp/run3.out" 2>&1
check_eq "run exits 3 (a job failed)" "$?" 3
check_eq "problem type says the record is not visible" \
	"$(sql "SELECT last_problem_type FROM jobs WHERE state = 'failed'")" "certfleet:record-not-visible"
check "the reason names the record and the deadline" bash -c \
	"psql -qAt '$CERTFLEET_DB' -c \"SELECT last_error FROM jobs WHERE state = 'failed'\" |
	 grep -q '_validation-persist.never.$ZONE (provider iac-late) not visible at the authoritative servers.*deadline'"
check_eq "no record row for it" "$(sql "SELECT count(*) FROM records WHERE fqdn LIKE '%never.$ZONE'")" 0
check_eq "the earlier results are untouched" "$(sql "SELECT count(*) FROM results WHERE is_current")" 3
finish
