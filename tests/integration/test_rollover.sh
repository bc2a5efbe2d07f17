#!/usr/bin/env bash
# test_rollover.sh - certfleet account rollover (RFC 8555 7.3.5): the account URL stays, so the
# fleet orders again with no TXT record written; the old key no longer works at the CA; a rollover
# whose database write failed after the CA took the new key is finished by the next rollover.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pending_dir=$(dirname "$CERTFLEET_JOURNAL")

for i in 1 2 3 4 5; do echo "host$i.$ZONE"; done >"$tmp/fleet.txt"
echo "*.wild.$ZONE" >>"$tmp/fleet.txt"
"$CF" enqueue --file "$tmp/fleet.txt" >/dev/null
"$CF" run --workers 1 --no-progress >"$tmp/run1.out" 2>&1
check_eq "first run exits 0" "$?" 0
writes1=$(txt_writes)
check_eq "first run wrote one record per name" "$writes1" 6

acct=$(sql "SELECT id FROM accounts")
url0=$(sql "SELECT account_url FROM accounts")
thumb0=$(sql "SELECT key_thumbprint FROM accounts")
key0=$(sql "SELECT key_pem FROM accounts")

"$CF" account rollover >"$tmp/roll.out" 2>&1
check_eq "rollover exits 0" "$?" 0
check_eq "the account URL is unchanged" "$(sql "SELECT account_url FROM accounts")" "$url0"
thumb1=$(sql "SELECT key_thumbprint FROM accounts")
check "the thumbprint changed" test "$thumb1" != "$thumb0"
check "rollover prints the new thumbprint" grep -q "key thumbprint: $thumb1" "$tmp/roll.out"
check_eq "key_rolled_at set" "$(sql "SELECT key_rolled_at > now() - interval '1 minute' FROM accounts")" t
check_eq "the new key is stored sealed" "$(sql "SELECT key_pem LIKE 'cfseal1:%' AND key_pem <> '$key0' FROM accounts")" t
check_eq "one account row still" "$(sql "SELECT count(*) FROM accounts")" 1
check_eq "no pending key left behind" "$(ls "$pending_dir"/rollover-"$acct"-*.key 2>/dev/null | wc -l)" 0
# RFC 7638 thumbprint of the stored key, from its public point (the last 64 octets of its DER)
stored_thumb=$(sql "SELECT key_pem FROM accounts" | "$CF" keys open accounts.key_pem | openssl pkey -pubout -outform DER |
	python3 -c 'import sys, base64, hashlib, json
d = sys.stdin.buffer.read()[-64:]
b = lambda v: base64.urlsafe_b64encode(v).rstrip(b"=").decode()
j = json.dumps({"crv": "P-256", "kty": "EC", "x": b(d[:32]), "y": b(d[32:])}, separators=(",", ":"), sort_keys=True)
print(b(hashlib.sha256(j.encode()).digest()))')
check_eq "the stored key is the one of the recorded thumbprint" "$stored_thumb" "$thumb1"

# Renew the whole fleet with the new key: every record stays valid, none is written.
"$CF" renew --force-all --no-progress >"$tmp/renew.out" 2>&1
check_eq "renew after the rollover queues the fleet" "$(sql "SELECT count(*) FROM jobs WHERE reason = 'forced'")" 6
"$CF" run --workers 1 --no-progress >"$tmp/run2.out" 2>&1
check_eq "second run exits 0" "$?" 0
check_eq "every order after the rollover succeeded" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 12
check_eq "the renewed results replaced the old ones" "$(sql "SELECT count(*) FROM results WHERE replaced_by IS NOT NULL")" 6
check_eq "no TXT record written after the rollover" "$(($(txt_writes) - writes1))" 0

# The old key no longer works at the CA: with it back in the row, a key change signed by it is refused.
key1=$(sql "SELECT key_pem FROM accounts")
sql "UPDATE accounts SET key_pem = '$key0', key_thumbprint = '$thumb0'"
"$CF" account rollover >"$tmp/old.out" 2>&1
check_eq "a request signed by the old key fails" "$?" 1
check "the CA's refusal is reported" grep -q 'the CA refused: HTTP' "$tmp/old.out"
check_eq "the refused rollover left no pending key" "$(ls "$pending_dir"/rollover-"$acct"-*.key 2>/dev/null | wc -l)" 0
sql "UPDATE accounts SET key_pem = '$key1', key_thumbprint = '$thumb1'"

# The CA takes the new key and the database refuses it: the key waits in a 0600 file, and the
# next rollover finds the CA holding it and stores it.
sql "CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'refused by the test'; END\$\$;
	CREATE TRIGGER t_refuse BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION t_refuse()"
"$CF" account rollover >"$tmp/lost.out" 2>&1
check_eq "rollover with the database refusing exits 1" "$?" 1
check "it says loudly that the CA holds the new key" grep -q 'THE CA NOW HOLDS THE NEW KEY' "$tmp/lost.out"
pending=$(ls "$pending_dir"/rollover-"$acct"-"$thumb1".key 2>/dev/null)
check "the new key waits in its file" test -s "$pending"
check_eq "the file is mode 600" "$(stat -c %a "$pending" 2>/dev/null)" 600
check "the file holds the key sealed" grep -q '^cfseal1:' "$pending"
check "the message names the file" grep -qF "$pending" "$tmp/lost.out"
check_eq "the row still holds the key before" "$(sql "SELECT key_thumbprint FROM accounts")" "$thumb1"
sql "DROP TRIGGER t_refuse ON accounts"
"$CF" account rollover >"$tmp/resume.out" 2>&1
check_eq "the next rollover exits 0" "$?" 0
check "it finished the rollover begun earlier" grep -q 'finished the key rollover begun earlier' "$tmp/resume.out"
thumb2=$(sql "SELECT key_thumbprint FROM accounts")
check "the thumbprint changed again" test "$thumb2" != "$thumb1"
check "the pending file is gone" test ! -e "$pending"
check_eq "the account URL is still unchanged" "$(sql "SELECT account_url FROM accounts")" "$url0"

# One rollover of an account at a time: while another session holds its lock, rollover refuses.
psql -qAt "$CERTFLEET_DB" -c "SELECT pg_advisory_lock(hashtext('certfleet account rollover'), $acct)" \
	-c "SELECT pg_sleep(4)" >/dev/null &
locker=$!
sleep 1
"$CF" account rollover >"$tmp/locked.out" 2>&1
check_eq "a rollover while another runs exits 1" "$?" 1
check "it says another rollover runs" grep -q "another 'certfleet account rollover' of account $acct is running" "$tmp/locked.out"
check_eq "the key is unchanged by the refused rollover" "$(sql "SELECT key_thumbprint FROM accounts")" "$thumb2"
wait "$locker"

"$CF" enqueue "host1.$ZONE" >/dev/null
"$CF" run --workers 1 --no-progress >"$tmp/run3.out" 2>&1
check_eq "an order with the recovered key succeeds" "$?" 0
check_eq "13 issued in all" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 13
check_eq "still no TXT record written" "$(($(txt_writes) - writes1))" 0
check "account --help explains rollover" bash -c "'$CF' account --help | grep -q 'rollover'"
finish
