#!/usr/bin/env bash
# test_cli.sh - bad input and the command-line contract: malformed names are rejected with the
# input and line named and nothing queued; --help everywhere; exit codes; the records listing.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }

for c in migrate account enqueue run status records; do
	check "$c --help exits 0" bash -c "'$CF' $c --help | grep -q usage"
done
"$CF" frobnicate >/dev/null 2>&1
check_eq "unknown command exits 2" "$?" 2
"$CF" account show >/dev/null 2>&1
check_eq "account show without an account exits 2" "$?" 2
"$CF" run --workers 0 >/dev/null 2>&1
check_eq "run --workers 0 exits 2" "$?" 2

check "account register" register
"$CF" account register --agree-tos >/dev/null 2>&1
check_eq "second register keeps the account" "$(sql "SELECT count(*) FROM accounts")" 1
check "account show never prints the key" bash -c "! '$CF' account show | grep -q 'PRIVATE KEY'"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'ok1.%s\nok2.%s\nbad..%s\nok3.%s\n' "$ZONE" "$ZONE" "$ZONE" "$ZONE" >"$tmp/f.txt"
"$CF" enqueue --file "$tmp/f.txt" 2>"$tmp/err"
check_eq "malformed name in a file exits 2" "$?" 2
check "error names the file and line 3" grep -q "$tmp/f.txt line 3" "$tmp/err"
check "error names the bad input" grep -q "bad\.\.$ZONE" "$tmp/err"
check_eq "nothing queued from the bad batch" "$(sql "SELECT count(*) FROM jobs")" 0

for bad in "a b.$ZONE" "x.*.$ZONE" "$(printf 'l%.0s' $(seq 1 64)).$ZONE" "under_score.$ZONE"; do
	"$CF" enqueue "ok.$ZONE" "$bad" 2>"$tmp/err2"
	rc=$?
	check_eq "rejects '$bad' (exit 2)" "$rc" 2
done
printf 'ok.%s\n\001ctl.%s\n' "$ZONE" "$ZONE" | "$CF" enqueue 2>"$tmp/err3"
check_eq "control character on stdin exits 2" "$?" 2
check "stdin error names line 2" grep -q "stdin line 2" "$tmp/err3"
check_eq "still nothing queued" "$(sql "SELECT count(*) FROM jobs")" 0

check "enqueue good batch" "$CF" enqueue "Www.$ZONE.,$ZONE" "*.$ZONE"
check "enqueue is idempotent while queued" bash -c "'$CF' enqueue '$ZONE,www.$ZONE' | grep -q '0 jobs'"
check_eq "names normalized" "$(sql "SELECT names::text FROM certificates ORDER BY id LIMIT 1")" "{www.$ZONE,$ZONE}"
acct=$(sql "SELECT account_url FROM accounts")
issuer=$(sql "SELECT issuer_domain FROM accounts")
"$CF" records --format tsv >"$tmp/rec"
# run writes policy=wildcard for the certificate that asks for *.$ZONE and none for the one that
# asks for $ZONE alone: records lists both values at that name, as run writes them
check_eq "records: one per name and wildcard form" "$(wc -l <"$tmp/rec")" 3
check "records: base name carries policy=wildcard" \
	grep -qxF "_validation-persist.$ZONE	$issuer; accounturi=$acct; policy=wildcard" "$tmp/rec"
check "records: and its plain form for the other certificate" \
	grep -qxF "_validation-persist.$ZONE	$issuer; accounturi=$acct" "$tmp/rec"
check "records: www record" grep -qxF "_validation-persist.www.$ZONE	$issuer; accounturi=$acct" "$tmp/rec"
check "records: zone format" bash -c "'$CF' records | grep -qF '_validation-persist.www.$ZONE. IN TXT \"$issuer; accounturi=$acct\"'"
jobs0=$(sql "SELECT count(*) FROM jobs")
"$CF" enqueue --directory "http://ca.example/dir" "plain.$ZONE" >/dev/null 2>"$tmp/err6"
check_eq "enqueue for a plain http directory outside loopback exits 2" "$?" 2
check "the refusal names the directory" grep -qF "http://ca.example/dir: plain http is refused" "$tmp/err6"
check_eq "and queues nothing" "$(sql "SELECT count(*) FROM jobs")" "$jobs0"
CERTFLEET_DB="postgresql://nobody@127.0.0.1:1/none" "$CF" status >/dev/null 2>"$tmp/err4"
check_eq "unreachable database exits 1" "$?" 1
check "database error is clear" grep -q "connecting to PostgreSQL" "$tmp/err4"
"$CF" status --db "postgresql://u:hunter2@127.0.0.1/x" >/dev/null 2>"$tmp/err5"
check_eq "a password in --db is refused (exit 2)" "$?" 2
check "the refusal does not echo the password" bash -c "! grep -q hunter2 '$tmp/err5'"
finish
