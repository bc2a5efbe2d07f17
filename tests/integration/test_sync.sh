#!/usr/bin/env bash
# test_sync.sh - certfleet sync makes the fleet the one a file declares: 3 certificates added,
# then 2 changed and 1 removed; the plan lists exactly those, the database matches the file, a
# second sync is a no-op, the retired certificate is left out of renew, --revoke-retired revokes
# what a retired one holds, and bad input (another shape, duplicates, no names, no certificates)
# exits 2 changing nothing.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the stored fleet, whole: any change shows
state() { sql "SELECT md5(coalesce(string_agg(c.id || c.names_key || c.key_type || c.provider || coalesce(c.profile, '') ||
	coalesce(c.account_id::text, '') || coalesce(c.retired_at::text, '') || c.updated_at::text, ';' ORDER BY c.id), '')) ||
	'/' || (SELECT count(*) FROM jobs) || '/' || (SELECT count(*) FROM runs) || '/' ||
	(SELECT count(*) FROM results WHERE revoked_at IS NOT NULL) FROM certificates c"; }
fleet() { # fleet FILE CERT-JSON...: writes {"certificates": [...]}
	local f=$1 IFS=,
	shift
	printf '{"certificates": [%s]}\n' "$*" >"$f"
}
A="{\"names\": [\"a.$ZONE\", \"www.a.$ZONE\"]}"
B="{\"names\": [\"b.$ZONE\"]}"
C="{\"names\": [\"c.$ZONE\"], \"key_type\": \"ec-p384\"}"

# --- add 3
fleet "$tmp/f1.json" "$A" "$B" "$C"
"$CF" sync --file "$tmp/f1.json" >"$tmp/s1.out" 2>"$tmp/s1.err"
check_eq "first sync: exit 0" "$?" 0
check_eq "first sync: the plan adds the three" "$(grep -E '^[-+~] ' "$tmp/s1.out")" \
	"+ a.$ZONE,www.a.$ZONE
+ b.$ZONE
+ c.$ZONE"
check "first sync: three jobs queued in one run" grep -q 'applied: 3 added, 0 changed, 0 retired; 3 jobs queued in run' "$tmp/s1.out"
"$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>"$tmp/run1.err"
check_eq "the three are issued" "$?" 0

# --- change 2, remove 1: the plan first (--dry-run changes nothing), then applied
A2="{\"names\": [\"www.a.$ZONE\", \"a.$ZONE\"], \"key_type\": \"rsa-2048\"}"
B2="{\"names\": [\"b.$ZONE\"], \"profile\": \"shortlived\", \"provider\": \"challtestsrv\"}"
fleet "$tmp/f2.json" "$B2" "$A2"
before=$(state)
"$CF" sync --file "$tmp/f2.json" --dry-run >"$tmp/d2.out" 2>"$tmp/d2.err"
check_eq "sync --dry-run: exit 0" "$?" 0
plan="~ b.$ZONE: profile (CA default) -> shortlived
~ www.a.$ZONE,a.$ZONE: key type ec-p256 -> rsa-2048
- c.$ZONE"
check_eq "sync --dry-run: the plan lists exactly the 2 changes and the removal" "$(grep -E '^[-+~] ' "$tmp/d2.out")" "$plan"
check_eq "sync --dry-run changed nothing" "$(state)" "$before"
"$CF" sync --file "$tmp/f2.json" >"$tmp/s2.out" 2>"$tmp/s2.err"
check_eq "second sync: exit 0" "$?" 0
check_eq "second sync: the same plan" "$(grep -E '^[-+~] ' "$tmp/s2.out")" "$plan"
check_eq "the database matches the file" \
	"$(sql "SELECT string_agg(names_key || ' ' || key_type || ' ' || coalesce(profile, '-') || ' ' || (retired_at IS NOT NULL), '; ' ORDER BY names_key) FROM certificates")" \
	"a.$ZONE,www.a.$ZONE rsa-2048 - false; b.$ZONE ec-p256 shortlived false; c.$ZONE ec-p384 - true"
check_eq "the changed two have a new order queued, the retired one none" \
	"$(sql "SELECT string_agg(c.names[1], ' ' ORDER BY c.names[1]) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE j.state = 'ready'")" \
	"a.$ZONE b.$ZONE"

# --- the same file again: a no-op
before=$(state)
"$CF" sync --file "$tmp/f2.json" >"$tmp/s3.out" 2>"$tmp/s3.err"
check_eq "a second sync of the same file: exit 0" "$?" 0
check_eq "it prints no change" "$(cat "$tmp/s3.out")" "no changes: the fleet matches $tmp/f2.json"
check_eq "it changed nothing" "$(state)" "$before"

# --- the retired certificate is not renewed
"$CF" run --workers 2 --no-progress >"$tmp/run2.out" 2>"$tmp/run2.err"
check_eq "the changed two are issued again" "$?" 0
check_eq "b's new certificate has the shortlived profile's 6 days" \
	"$(sql "SELECT extract(epoch FROM r.not_after - r.not_before)::bigint + 1
		FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] = 'b.$ZONE'")" 518400
check "the rsa-2048 key is RSA" bash -c "psql -qAt '$CERTFLEET_DB' -c \"SELECT r.leaf_pem FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] = 'a.$ZONE'\" | openssl x509 -noout -text | grep -q 'rsaEncryption'"
"$CF" renew --dry-run --force-all --no-progress >"$tmp/renew.out" 2>"$tmp/renew.err"
check_eq "renew --force-all selects the two in the fleet, not the retired one" \
	"$(cut -f2 "$tmp/renew.out" | grep "$ZONE" | sort | tr '\n' ' ')" "a.$ZONE b.$ZONE "

# --- bad input: exit 2, nothing changed
before=$(state)
bad() { # bad NAME FILE PATTERN
	"$CF" sync --file "$2" >"$tmp/bad.out" 2>"$tmp/bad.err"
	check_eq "$1: exit 2" "$?" 2
	check "$1: the message names the file and the problem" grep -qE "$(basename "$2").*$3" "$tmp/bad.err"
	check_eq "$1: no plan printed" "$(grep -cE '^[-+~] ' "$tmp/bad.out")" 0
}
printf '[{"names": ["a.%s"]}]\n' "$ZONE" >"$tmp/shape.json"
bad "a list, not the documented shape" "$tmp/shape.json" 'not a JSON object'
fleet "$tmp/dup.json" "$B2" "$A2" "{\"names\": [\"a.$ZONE\", \"www.a.$ZONE\", \"A.$ZONE\"]}"
bad "duplicate certificates" "$tmp/dup.json" 'certificates\[1\] and certificates\[2\] have the same names'
fleet "$tmp/nonames.json" "$B2" '{"names": []}'
bad "a certificate with no names" "$tmp/nonames.json" 'certificates\[1\]\.names: empty'
printf '{"certificates": []}\n' >"$tmp/empty.json"
bad "no certificates at all" "$tmp/empty.json" 'no certificates: that would retire the whole fleet'
check_eq "bad input changed nothing" "$(state)" "$before"

# --- --revoke-retired: b leaves the fleet and its certificate is revoked; c returns
fleet "$tmp/f3.json" "$A2" "$C"
"$CF" sync --file "$tmp/f3.json" --revoke-retired >"$tmp/s4.out" 2>"$tmp/s4.err"
check_eq "sync --revoke-retired: exit 0" "$?" 0
check_eq "its plan: c returns, b retires" "$(grep -E '^[-+~] ' "$tmp/s4.out")" "+ c.$ZONE (returns to the fleet)
- b.$ZONE"
check_eq "b's current certificate is revoked (cessationOfOperation), c's is not" \
	"$(sql "SELECT string_agg(c.names[1] || ':' || coalesce(r.revocation_reason, '-'), ' ' ORDER BY c.names[1]) FROM results r
		JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] IN ('b.$ZONE', 'c.$ZONE')")" \
	"b.$ZONE:cessationOfOperation c.$ZONE:-"
check_eq "c is active again with a job queued" \
	"$(sql "SELECT (c.retired_at IS NULL) || ' ' || count(j.id) FROM certificates c LEFT JOIN jobs j ON j.certificate_id = c.id AND j.state = 'ready' WHERE c.names[1] = 'c.$ZONE' GROUP BY c.retired_at")" \
	"true 1"

# --- retired again while its job waits: the job is cancelled
fleet "$tmp/f4.json" "$A2"
"$CF" sync --file "$tmp/f4.json" >"$tmp/s5.out" 2>"$tmp/s5.err"
check_eq "retiring a certificate with a queued job: exit 0" "$?" 0
check "it says the job was cancelled" grep -q '1 job of retired certificates cancelled' "$tmp/s5.out"
check_eq "c's job is cancelled and no job is left unfinished" \
	"$(sql "SELECT string_agg(j.state, ' ' ORDER BY j.id) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'c.$ZONE'")/$(sql "SELECT count(*) FROM unfinished_jobs")" \
	"issued cancelled/0"
check_unfinished "after sync retired a queued job"
finish
