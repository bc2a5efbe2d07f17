#!/usr/bin/env bash
# test_keys_sealed.sh - private keys at rest: sealed under the key-encryption key (KEK) in every
# table, none in clear in a dump, an order's key cleared with its result; a wrong KEK changes
# nothing; keys rotate re-seals under a new KEK; migrate seals the plain keys of an older database.
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kek1=$CERTFLEET_KEK_FILE
db_new || { not_ok "create database"; finish; exit 1; }
register || { not_ok "account register"; finish; exit 1; }
kek_id() { sql "SELECT DISTINCT substr(key_pem, 9, 16) FROM ($1) s(key_pem) WHERE key_pem LIKE 'cfseal1:%'" | paste -sd' '; }
all_keys="SELECT key_pem FROM accounts UNION ALL SELECT key_pem FROM orders WHERE key_pem IS NOT NULL UNION ALL SELECT key_pem FROM results"
states() { sql "SELECT string_agg(id || ':' || state || ':' || attempts, ' ' ORDER BY id) FROM jobs"; }

# ---- KEK files ----
chmod 644 "$kek1"
"$CF" run --no-progress >"$tmp/open.out" 2>&1
check_eq "a KEK file others may read is refused (exit 2)" "$?" 2
check "the refusal names the file and its mode" grep -q "$kek1: mode 0644" "$tmp/open.out"
chmod 600 "$kek1"
printf 'not a key\n' >"$tmp/bad.kek" && chmod 600 "$tmp/bad.kek"
CERTFLEET_KEK_FILE=$tmp/bad.kek "$CF" run --no-progress >"$tmp/bad.out" 2>&1
check "a KEK file that holds no key is refused, naming the file" grep -q "$tmp/bad.kek: expected 32 random octets" "$tmp/bad.out"
check "generate-kek never overwrites a file" bash -c "! '$CF' keys generate-kek '$kek1' 2>/dev/null"
check_eq "generate-kek makes a file of mode 600" "$("$CF" keys generate-kek "$tmp/k2" >/dev/null && stat -c %a "$tmp/k2")" 600
kek2=$tmp/k2

# ---- issue a few certificates; commands that do not sign need no KEK ----
check "enqueue without any KEK" env -u CERTFLEET_KEK_FILE "$CF" enqueue "a1.$ZONE" "a2.$ZONE" "*.a3.$ZONE"
check "account show, status and records without any KEK" bash -c "env -u CERTFLEET_KEK_FILE '$CF' account show >/dev/null &&
	env -u CERTFLEET_KEK_FILE '$CF' status >/dev/null && env -u CERTFLEET_KEK_FILE '$CF' records >/dev/null"
check_eq "run without any KEK is refused (exit 2)" "$(env -u CERTFLEET_KEK_FILE "$CF" run --no-progress >/dev/null 2>&1; echo $?)" 2
"$CF" run --no-progress >"$tmp/run1.out" 2>&1
check_eq "run exits 0" "$?" 0
check_eq "3 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 3
id1=$(sql "SELECT DISTINCT substr(key_pem, 9, 16) FROM accounts")
check_eq "every stored key is sealed under the KEK" "$(kek_id "$all_keys")/$(sql "SELECT count(*) FROM ($all_keys) s WHERE key_pem NOT LIKE 'cfseal1:%'")" "$id1/0"
check_eq "issued orders keep no key" "$(sql "SELECT count(*) FROM orders WHERE state = 'valid' AND key_pem IS NOT NULL")/$(sql "SELECT count(*) FROM orders WHERE state = 'valid'")" 0/3
check_eq "every stored key matches its certificate (mismatched/checked)" "$(result_keys_checked)" 0/3
pg_dump "$CERTFLEET_DB" >"$tmp/dump.sql"
check "the dump holds certificates" grep -q 'BEGIN CERTIFICATE' "$tmp/dump.sql"
# PEM armour; the base64 of an EC P-256 PKCS#8 and of a SEC1 key; the DER prefix of a PKCS#8 EC key in hex
check_eq "pg_dump holds no private key in clear" \
	"$(grep -cE 'PRIVATE KEY|MIGHAgEAMBMGByqGSM49|MHcCAQEE|020100301306072a8648ce3d0201' "$tmp/dump.sql")" 0

# ---- commands that do not sign never read a key: a role that may read every column but the key ----
# (made by the stack's superuser, postgres, which the local stack trusts)
su_sql() { psql -qAt -v ON_ERROR_STOP=1 "postgresql://postgres@${CERTFLEET_DB#*@}" -c "$1"; }
role="nokey_$RUN_ID"
cols=$(sql "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns
	WHERE table_schema = 'public' AND table_name = 'accounts' AND column_name <> 'key_pem'")
su_sql "CREATE ROLE $role LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO $role;
	GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO $role; REVOKE SELECT ON accounts FROM $role;
	GRANT SELECT ($cols) ON accounts TO $role" >/dev/null
nokey_db="postgresql://$role@${CERTFLEET_DB#*@}"
check "enqueue, status, records and account show as a role that cannot read accounts.key_pem" \
	bash -c "CERTFLEET_DB='$nokey_db' '$CF' enqueue 'n1.$ZONE' >/dev/null && CERTFLEET_DB='$nokey_db' '$CF' status >/dev/null &&
	CERTFLEET_DB='$nokey_db' '$CF' records >/dev/null && CERTFLEET_DB='$nokey_db' '$CF' account show >/dev/null"
CERTFLEET_DB=$nokey_db "$CF" run --no-progress >"$tmp/nokey.out" 2>&1
check "run as that role fails where it reads the key (the role is a real limit)" grep -q 'loading the account key.*permission denied for table accounts' "$tmp/nokey.out"
su_sql "DROP OWNED BY $role; DROP ROLE $role" >/dev/null
sql "UPDATE jobs SET state = 'cancelled', finished_at = now() WHERE id IN (SELECT job_id FROM job_queue);
	DELETE FROM unfinished_jobs WHERE job_id IN (SELECT job_id FROM job_queue); DELETE FROM job_queue" >/dev/null

# ---- the wrong KEK: nothing changes ----
check "enqueue two more" "$CF" enqueue "b1.$ZONE" "b2.$ZONE"
before=$(states)
CERTFLEET_KEK_FILE=$kek2 "$CF" run --no-progress >"$tmp/wrong.out" 2>&1
check_eq "run with the wrong KEK exits 2" "$?" 2
check "its error names the KEK id the key is sealed under" grep -q "sealed under key-encryption key $id1, which is not loaded" "$tmp/wrong.out"
check_eq "job states unchanged" "$(states)" "$before"
check_eq "no order was stored" "$(sql "SELECT count(*) FROM orders")" 3
CERTFLEET_KEK_FILE=$kek2 "$CF" keys rotate >"$tmp/rot0.out" 2>&1
check_eq "keys rotate without the old KEK exits 2" "$?" 2
check "and names the KEK it lacks" grep -q "sealed under key-encryption key $id1" "$tmp/rot0.out"
check_eq "and changes nothing" "$(kek_id "$all_keys")" "$id1"

# ---- rotation ----
CERTFLEET_KEK_FILE=$kek2 CERTFLEET_KEK_OLD_FILES=$kek1 "$CF" keys rotate >"$tmp/rot1.out" 2>&1
check "keys rotate re-seals the account's and the results' keys (issued orders hold none)" \
	grep -q "4 keys re-sealed .*(accounts 1, orders 0, results 3)" "$tmp/rot1.out"
id2=$(sql "SELECT DISTINCT substr(key_pem, 9, 16) FROM accounts")
check "the new KEK has another id" test -n "$id2" -a "$id2" != "$id1"
check_eq "every stored key is sealed under the new KEK" "$(kek_id "$all_keys")" "$id2"
check "keys rotate again re-seals nothing" bash -c "CERTFLEET_KEK_FILE='$kek2' CERTFLEET_KEK_OLD_FILES='$kek1' '$CF' keys rotate | grep -q '^keys rotate: 0 keys re-sealed'"
CERTFLEET_KEK_FILE=$kek2 "$CF" run --no-progress >"$tmp/run2.out" 2>&1
check_eq "run with only the new KEK exits 0" "$?" 0
check_eq "5 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 5
check_eq "the new results are sealed under the new KEK" "$(kek_id "$all_keys")" "$id2"
check_eq "every stored key matches its certificate after rotation" "$(CERTFLEET_KEK_FILE=$kek2 result_keys_checked)" 0/5

# ---- migrate seals the plain keys of an older database ----
export CERTFLEET_KEK_FILE=$kek2
rid=$(sql "SELECT min(id) FROM results")
plain=$(sql "SELECT key_pem FROM results WHERE id = $rid" | "$CF" keys open results.key_pem)
acct_plain=$(sql "SELECT key_pem FROM accounts" | "$CF" keys open accounts.key_pem)
sql "UPDATE results SET key_pem = '$plain' WHERE id = $rid; UPDATE accounts SET key_pem = '$acct_plain'" >/dev/null
env -u CERTFLEET_KEK_FILE "$CF" migrate >"$tmp/mig0.out" 2>&1
check_eq "migrate with plain keys and no KEK exits 2" "$?" 2
check "its error names CERTFLEET_KEK_FILE" grep -q "2 private keys in plain text; set CERTFLEET_KEK_FILE" "$tmp/mig0.out"
check_eq "the plain keys are left as they were" "$(sql "SELECT count(*) FROM ($all_keys) s WHERE key_pem LIKE '-----BEGIN%'")" 2
CERTFLEET_KEK_FILE=$kek1 "$CF" migrate >"$tmp/mig1.out" 2>&1
check_eq "migrate with a KEK that does not open the sealed keys exits 2" "$?" 2
check "its error names the KEK id it lacks" grep -q "sealed under key-encryption key $id2, which is not loaded" "$tmp/mig1.out"
check_eq "nothing was sealed" "$(sql "SELECT count(*) FROM ($all_keys) s WHERE key_pem LIKE '-----BEGIN%'")" 2
"$CF" migrate >"$tmp/mig2.out" 2>&1
check_eq "migrate with the KEK exits 0" "$?" 0
check "it says what it sealed" grep -q "sealed 2 plain private keys under key-encryption key $id2 (accounts 1, orders 0, results 1)" "$tmp/mig2.out"
check_eq "no plain key is left" "$(sql "SELECT count(*) FROM ($all_keys) s WHERE key_pem NOT LIKE 'cfseal1:$id2:%'")" 0
check_eq "the sealed result opens to the key it held" \
	"$(sql "SELECT key_pem FROM results WHERE id = $rid" | "$CF" keys open results.key_pem)" "$plain"
check "enqueue one more" "$CF" enqueue "c1.$ZONE"
"$CF" run --no-progress >"$tmp/run3.out" 2>&1
check_eq "run with the migrated account key exits 0" "$?" 0
check_eq "6 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 6
unset plain acct_plain

# ---- keys rotate over 10,000 stored keys ----
sealed2=$(sql "SELECT key_pem FROM results WHERE id = $rid")
cert=$(sql "SELECT certificate_id FROM results WHERE id = $rid")
sql "INSERT INTO results (certificate_id, order_url, leaf_pem, chain_pem, key_pem, serial, not_before, not_after, issuer, is_current)
	SELECT $cert, 'bulk-' || g, 'leaf', '', '$sealed2', 'bulk' || g, now(), now() + interval '90 days', 'bulk', false
	FROM generate_series(1, 10000) g" >/dev/null
kek3=$tmp/k3
"$CF" keys generate-kek "$kek3" >/dev/null
t0=$(date +%s%N)
CERTFLEET_KEK_FILE=$kek3 CERTFLEET_KEK_OLD_FILES=$kek2 "$CF" keys rotate >"$tmp/rot3.out" 2>&1
rc=$?
t1=$(date +%s%N)
check_eq "keys rotate over 10,000 more keys exits 0" "$rc" 0
check "it re-sealed them all" grep -q "10007 keys re-sealed .*(accounts 1, orders 0, results 10006)" "$tmp/rot3.out"
id3=$(sql "SELECT DISTINCT substr(key_pem, 9, 16) FROM accounts")
check_eq "all under the third KEK" "$(kek_id "$all_keys")" "$id3"
echo "# keys rotate: $(sed -n 's/^keys rotate: \([0-9]*\) keys.*/\1/p' "$tmp/rot3.out") keys re-sealed in $(( (t1 - t0) / 1000000 )) ms"

# finish removes the test's first KEK file; the others are in $tmp
export CERTFLEET_KEK_FILE=$kek1
finish
