#!/usr/bin/env bash
# test_enqueue_json.sh - enqueue --json reads certfleet's own shape and terraform output -json's,
# refuses bad input naming the file, the certificate's index and the member (exit 2, nothing
# stored), and --wait --output json follows the batch through a run --follow to its end. Also:
# enqueue --key-type/--provider change a certificate already in the fleet.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register

tmp=$(mktemp -d)
follow=
trap '[ -n "$follow" ] && kill "$follow" 2>/dev/null; rm -rf "$tmp"' EXIT

counts() { sql "SELECT (SELECT count(*) FROM certificates) || '/' || (SELECT count(*) FROM jobs) || '/' || (SELECT count(*) FROM runs)"; }

# bad NAME JSON PATTERN: enqueue --json exits 2, its message matches PATTERN, nothing is stored
bad() {
	local before
	before=$(counts)
	printf '%s\n' "$2" >"$tmp/bad.json"
	"$CF" enqueue --json "$tmp/bad.json" >/dev/null 2>"$tmp/bad.err"
	check_eq "$1: exit 2" "$?" 2
	check "$1: the message names the file and the problem" grep -qE "bad\\.json.*$3" "$tmp/bad.err"
	check_eq "$1: nothing stored" "$(counts)" "$before"
}
bad "not JSON" '{"certificates": [' 'not JSON'
bad "another shape" '{"certs": []}' 'unknown member "certs"'
bad "unknown member" "{\"certificates\": [{\"names\": [\"a.$ZONE\"]}, {\"names\": [\"b.$ZONE\"], \"keytype\": \"rsa-2048\"}]}" \
	'certificates\[1\]: unknown member "keytype"'
bad "no names" "{\"certificates\": [{\"names\": [\"a.$ZONE\"]}, {\"names\": []}]}" 'certificates\[1\]\.names: empty'
bad "names missing" "{\"certificates\": [{\"key_type\": \"ec-p384\"}]}" 'certificates\[0\]\.names: missing'
bad "a bad name" "{\"certificates\": [{\"names\": [\"a.$ZONE\", \"bad_name!.$ZONE\"]}]}" 'certificates\[0\]\.names\[1\]'
bad "a wrong type" "{\"certificates\": [{\"names\": [\"a.$ZONE\"], \"key_type\": 384}]}" 'certificates\[0\]\.key_type: not a string'
bad "an unknown key type" "{\"certificates\": [{\"names\": [\"a.$ZONE\"], \"key_type\": \"dsa\"}]}" 'certificates\[0\]\.key_type: unknown key type "dsa"'
bad "an unknown provider" "{\"certificates\": [{\"names\": [\"a.$ZONE\"], \"provider\": \"nosuch\"}]}" 'certificates\[0\]\.provider: no DNS provider account "nosuch"'
bad "a CA without an account" "{\"certificates\": [{\"names\": [\"a.$ZONE\"], \"ca\": \"https://127.0.0.1:1/dir\"}]}" 'certificates\[0\]\.ca: no account'
bad "a profile the CA lacks" "{\"certificates\": [{\"names\": [\"a.$ZONE\"], \"profile\": \"nosuch\"}]}" 'certificates\[0\]\.profile:.*"nosuch"'
bad "duplicate certificates" "{\"certificates\": [{\"names\": [\"a.$ZONE\", \"b.$ZONE\"]}, {\"names\": [\"B.$ZONE\", \"a.$ZONE\"]}]}" \
	'certificates\[0\] and certificates\[1\] have the same names'
bad "terraform output without certfleet" '{"other": {"value": 1, "type": "number", "sensitive": false}}' 'unknown member "other"'
before=$(counts)
printf '{"certificates": [{"names": ["a.%s"]}]}\n' "$ZONE" >"$tmp/p.json"
"$CF" enqueue --json "$tmp/p.json" --profile nosuch >/dev/null 2>"$tmp/p.err"
check_eq "--profile the CA lacks, with --json: exit 2" "$?" 2
check "it names the certificate and the profile" grep -q 'certificates\[0\]\.profile:.*"nosuch"' "$tmp/p.err"
check_eq "--profile the CA lacks, with --json: nothing stored" "$(counts)" "$before"

# --- terraform output -json (all outputs; the one named certfleet is read), with a run --follow
cat >"$tmp/tf.json" <<JSON
{
  "unrelated": {"sensitive": false, "type": "string", "value": "x"},
  "certfleet": {
    "sensitive": false,
    "type": ["object", {"certificates": ["list", ["object", {"names": ["list", "string"]}]]}],
    "value": {"certificates": [
      {"names": ["one.$ZONE", "www.one.$ZONE"], "key_type": "ec-p384"},
      {"names": ["two.$ZONE"], "profile": "shortlived", "ca": "$CERTFLEET_DIRECTORY", "provider": "challtestsrv"}
    ]}
  }
}
JSON
"$CF" run --follow --no-progress >"$tmp/follow.out" 2>"$tmp/follow.err" &
follow=$!
"$CF" enqueue --json "$tmp/tf.json" --wait --timeout 120 --output json >"$tmp/w.json" 2>"$tmp/w.err"
check_eq "enqueue --json --wait: exit 0 when every job was issued" "$?" 0
check_eq "the summary counts them" "$(jq -c '[.issued, .failed, .cancelled, .pending, (.certificates | length)]' "$tmp/w.json")" "[2,0,0,0,2]"
check_eq "the summary's run is the run enqueue made" "$(jq .run_id "$tmp/w.json")" \
	"$(sql "SELECT DISTINCT run_id FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names_key LIKE '%one.$ZONE%'")"
check_eq "per certificate: names, state, serial and not_after as stored" \
	"$(jq -r '.certificates[] | [.id, (.names | join(",")), .job_id, .state, .serial, .not_after] | join(" ")' "$tmp/w.json")" \
	"$(sql "SELECT c.id || ' ' || array_to_string(c.names, ',') || ' ' || j.id || ' issued ' || r.serial || ' ' ||
		to_char(r.not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
		FROM certificates c JOIN jobs j ON j.certificate_id = c.id JOIN results r ON r.job_id = j.id ORDER BY c.id")"
check "progress went to stderr" grep -q 'waiting: 2 issued, 0 failed, 0 cancelled, 0 queued or running' "$tmp/w.err"
check_eq "key type and profile stored from the file" \
	"$(sql "SELECT string_agg(names[1] || '=' || key_type || '/' || coalesce(profile, '-'), ' ' ORDER BY id) FROM certificates")" \
	"one.$ZONE=ec-p384/- two.$ZONE=ec-p256/shortlived"

# --- a single terraform output object, from standard input; a job that fails: exit 3
sql "UPDATE certificates SET profile = 'retired-profile' WHERE names[1] = 'two.$ZONE'"
printf '{"value": {"certificates": [{"names": ["two.%s"]}]}, "type": "object", "sensitive": false}' "$ZONE" |
	"$CF" enqueue --json - --wait --timeout 120 >"$tmp/w2.out" 2>"$tmp/w2.err"
check_eq "enqueue --wait: exit 3 when a job failed" "$?" 3
check "it says so" grep -q '1 job failed' "$tmp/w2.err"
kill "$follow" 2>/dev/null
wait "$follow" 2>/dev/null
follow=

# --- --timeout with no run working the queue: exit 4, the job still queued
"$CF" enqueue --wait --timeout 1 "three.$ZONE" >/dev/null 2>"$tmp/w3.err"
check_eq "enqueue --wait --timeout: exit 4 with jobs left queued" "$?" 4
check "it names the timeout" grep -q -- '--timeout 1 passed with 1 job queued or running' "$tmp/w3.err"

# --- another --key-type or --provider for a certificate already in the fleet is applied
"$CF" enqueue --key-type rsa-2048 "three.$ZONE" >"$tmp/k.out" 2>&1
check "re-enqueue with --key-type: it says the certificate changed" grep -q '1 certificate changed settings' "$tmp/k.out"
check_eq "the new key type is stored" "$(sql "SELECT key_type FROM certificates WHERE names[1] = 'three.$ZONE'")" rsa-2048
"$CF" enqueue "three.$ZONE" >/dev/null 2>&1
check_eq "a plain re-enqueue keeps it" "$(sql "SELECT key_type FROM certificates WHERE names[1] = 'three.$ZONE'")" rsa-2048
# --- --missing-only: a certificate holding a current certificate gets no job, even once its jobs
# are cleaned up, and --wait then counts it as issued at once
one=$(sql "SELECT c.id FROM certificates c JOIN results r ON r.certificate_id = c.id AND r.is_current
	WHERE NOT EXISTS (SELECT 1 FROM unfinished_jobs u WHERE u.certificate_id = c.id) ORDER BY c.id LIMIT 1")
onename=$(sql "SELECT array_to_string(names, ',') FROM certificates WHERE id = ${one:-0}")
jobs_before=$(sql "SELECT count(*) FROM jobs WHERE certificate_id = $one")
sql "DELETE FROM jobs WHERE certificate_id = $one AND finished_at IS NOT NULL" >/dev/null
"$CF" enqueue --missing-only --wait --timeout 5 --output json "$onename" >"$tmp/m.json" 2>"$tmp/m.err"
check_eq "enqueue --missing-only --wait of a current certificate: exit 0" "$?" 0
check "it says the certificate is already current" grep -q '1 certificate already current (--missing-only)' "$tmp/m.err"
check_eq "no job was added" "$(sql "SELECT count(*) FROM jobs WHERE certificate_id = $one")" 0
check_eq "the summary shows it issued, with its serial" \
	"$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["certificates"][0]; print(c["state"], len(c["serial"]) > 0)' "$tmp/m.json")" "issued True"
check "jobs existed before the cleanup" [ "$jobs_before" -gt 0 ]
"$CF" enqueue --missing-only "four.$ZONE" >"$tmp/m2.out" 2>&1
check "enqueue --missing-only queues a certificate that holds none" grep -q '^queued 1 job in run' "$tmp/m2.out"
finish
