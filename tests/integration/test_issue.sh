#!/usr/bin/env bash
# test_issue.sh - a fleet of 50 certificates (one wildcard, one with three names) issued end to end
# against Pebble; every result is checked with OpenSSL; a second run reuses every record.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
	echo "# 50 certificates"
	echo "*.wild.$ZONE"
	echo "a.multi.$ZONE, b.multi.$ZONE c.multi.$ZONE"
	for i in $(seq 1 48); do echo "host$i.$ZONE"; done
} >"$tmp/fleet.txt"

check "enqueue 50" "$CF" enqueue --file "$tmp/fleet.txt"
check_eq "50 jobs ready" "$(sql "SELECT count(*) FROM jobs WHERE state = 'ready'")" 50

writes0=$(txt_writes)
"$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>"$tmp/run1.err"
rc=$?
check_eq "first run exits 0" "$rc" 0
check_eq "50 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 50
writes1=$(txt_writes)
# 50 certificates, 52 names, 52 distinct record names
check_eq "first run wrote one record per name" "$((writes1 - writes0))" 52
check_eq "records table holds them" "$(sql "SELECT count(*) FROM records WHERE written_at IS NOT NULL")" 52
check_eq "every record verified by the CA" "$(sql "SELECT count(*) FROM records WHERE verified_at IS NULL")" 0

# Verify every result with OpenSSL against Pebble's own root and intermediate. One query for all
# of them (line ends cross it as '~'), one openssl verify for all the leaves; each key is opened
# into a variable, never a file.
if pebble_chain_files "$tmp/root.pem" "$tmp/inter.pem"; then ok "fetch Pebble root and intermediate"; else not_ok "fetch Pebble root and intermediate"; fi
openssl x509 -in "$tmp/inter.pem" -outform DER -out "$tmp/inter.der" 2>/dev/null
mkdir "$tmp/leaves"
bad_chain=0 bad_san=0 bad_key=0 bad_chainpem=0 bad_pkcs8=0 n=0
while IFS='|' read -r rid names leaf chain sealed; do
	n=$((n + 1))
	printf '%s\n' "${leaf//\~/$'\n'}" >"$tmp/leaves/$rid.pem"
	key=$(printf '%s\n' "${sealed//\~/$'\n'}" | "$CF" keys open results.key_pem)
	[ "${key%%$'\n'*}" = "-----BEGIN PRIVATE KEY-----" ] || bad_pkcs8=$((bad_pkcs8 + 1))
	# the stored chain must be the intermediate that signed the leaf
	printf '%s\n' "${chain//\~/$'\n'}" | openssl x509 -outform DER 2>/dev/null | cmp -s - "$tmp/inter.der" ||
		bad_chainpem=$((bad_chainpem + 1))
	# the leaf's public key (a PEM block), then its subjectAltName extension
	info=$(openssl x509 -in "$tmp/leaves/$rid.pem" -noout -pubkey -ext subjectAltName)
	got=$(sed -n '/Subject Alternative Name/,$p' <<<"$info" | tail -n +2 | tr ',' '\n' | sed 's/^ *DNS://' | sort | tr '\n' ' ')
	want=$(echo "$names" | tr ',' '\n' | sort | tr '\n' ' ')
	[ "$got" = "$want" ] || { bad_san=$((bad_san + 1)); echo "# SAN mismatch: got '$got' want '$want'" >&2; }
	pub=$(sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' <<<"$info")
	[ -n "$pub" ] && [ "$pub" = "$(printf '%s\n' "$key" | openssl pkey -pubout 2>/dev/null)" ] || bad_key=$((bad_key + 1))
done < <(sql "SELECT r.id, array_to_string(c.names, ','), translate(r.leaf_pem, E'\n', '~'), translate(r.chain_pem, E'\n', '~'),
	translate(r.key_pem, E'\n', '~') FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current")
key=""
# each leaf verified apart: openssl verify prints "FILE: OK" for each one that chains
[ "$n" -gt 0 ] && bad_chain=$((n - $(openssl verify -CAfile "$tmp/root.pem" -untrusted "$tmp/inter.pem" "$tmp"/leaves/*.pem 2>/dev/null |
	grep -c ': OK$')))
check_eq "50 current results" "$n" 50
check_eq "every leaf chains to Pebble's root via its intermediate" "$bad_chain" 0
check_eq "every stored chain is Pebble's intermediate" "$bad_chainpem" 0
check_eq "every SAN list equals the requested names" "$bad_san" 0
check_eq "every stored key matches its certificate" "$bad_key" 0
check_eq "serial, dates and issuer stored" \
	"$(sql "SELECT count(*) FROM results WHERE serial ~ '^[0-9a-f]+\$' AND not_after > not_before AND not_after > now() AND issuer <> ''")" 50
check_eq "every key stored sealed" "$(sql "SELECT count(*) FROM results WHERE key_pem LIKE 'cfseal1:%'")" 50
check_eq "every key PEM, opened, is PKCS#8" "$bad_pkcs8" 0
check_eq "orders stored as valid" "$(sql "SELECT count(*) FROM orders WHERE state = 'valid'")" 50
check_eq "wildcard record carries policy=wildcard" \
	"$(sql "SELECT value LIKE '%; policy=wildcard' FROM records WHERE fqdn = '_validation-persist.wild.$ZONE'")" t

# Second run for the same names: the records are known, so no TXT writes, and it still issues.
check "enqueue again" "$CF" enqueue --file "$tmp/fleet.txt"
"$CF" run --workers 2 --no-progress >"$tmp/run2.out" 2>"$tmp/run2.err"
check_eq "second run exits 0" "$?" 0
check_eq "second run wrote no TXT record" "$(($(txt_writes) - writes1))" 0
check_eq "100 jobs issued in all" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 100
check_eq "one current result per certificate" "$(sql "SELECT count(*) FROM results WHERE is_current")" 50
check_eq "old results kept" "$(sql "SELECT count(*) FROM results")" 100
check "run summary names the counts" grep -q "50 issued, 0 failed" "$tmp/run2.out"
check "status shows 100 issued" bash -c "'$CF' status | grep -Eq 'issued +100'"

check_unfinished "issued fleet"
finish
