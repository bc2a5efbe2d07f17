#!/usr/bin/env bash
# test_revoke.sh - certfleet revoke by certificate, name, serial and run, with each reason Let's
# Encrypt accepts: checked at Pebble (its management interface answers by serial) and in results;
# keyCompromise is signed with the certificate's own key (P-256, P-384, RSA); bad input changes nothing.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in 1 2 3 4 5 6; do echo "host$i.$ZONE"; done >"$tmp/a.txt"
printf '%s\n' "host7.$ZONE" "host8.$ZONE" >"$tmp/b.txt"
"$CF" enqueue --file "$tmp/a.txt" >/dev/null && "$CF" enqueue --label second --file "$tmp/b.txt" >/dev/null
"$CF" enqueue --key-type ec-p384 "p384.$ZONE" >/dev/null && "$CF" enqueue --key-type rsa-2048 "rsa.$ZONE" >/dev/null
run_b=$(sql "SELECT id FROM runs WHERE label = 'second'")
"$CF" run --workers 1 --no-progress >"$tmp/run.out" 2>&1
check_eq "10 certificates issued" "$(sql "SELECT count(*) FROM results WHERE is_current")" 10

cert_of() { sql "SELECT id FROM certificates WHERE names = ARRAY['$1.$ZONE']"; }
serial_of() { sql "SELECT r.serial FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names = ARRAY['$1.$ZONE']"; }
# Pebble's status of a serial: "Status Reason" (Reason empty when valid)
pebble_status() {
	local s
	s=$(echo "$1" | sed 's/^0*//')
	curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$CERTFLEET_PEBBLE_MGMT/cert-status-by-serial/$s" |
		jq -r '"\(.Status) \(.Reason // "")"'
}
revoked_count() { sql "SELECT count(*) FROM results WHERE revoked_at IS NOT NULL OR revocation_reason IS NOT NULL"; }

# Bad input: exit 2 naming the input, nothing revoked anywhere.
"$CF" revoke --name "host1.$ZONE" --reason affiliationChanged >"$tmp/bad.out" 2>&1
check_eq "an unknown reason exits 2" "$?" 2
check "the error names the reason" grep -q 'affiliationChanged' "$tmp/bad.out"
"$CF" revoke --name "host1.$ZONE" --reason 1 >/dev/null 2>&1
check_eq "a reason code instead of its name exits 2" "$?" 2
"$CF" revoke --name "host1.$ZONE" --name "nosuch.$ZONE" >"$tmp/bad2.out" 2>&1
check_eq "a name of no certificate exits 2" "$?" 2
check "the error names the name" grep -q "nosuch.$ZONE" "$tmp/bad2.out"
"$CF" revoke --serial 12zz >/dev/null 2>&1
check_eq "a serial that is not hex exits 2" "$?" 2
"$CF" revoke --reason superseded >/dev/null 2>&1
check_eq "no selector exits 2" "$?" 2
check_eq "nothing recorded as revoked after bad input" "$(revoked_count)" 0
check_eq "host1 still valid at Pebble" "$(pebble_status "$(serial_of host1)")" "Valid "

# --dry-run lists and changes nothing
"$CF" revoke --run "$run_b" --dry-run >"$tmp/dry.out" 2>&1
check_eq "dry run exits 0" "$?" 0
check_eq "dry run lists the run's 2 certificates" "$(grep -c '^would revoke' "$tmp/dry.out")" 2
check_eq "dry run revokes nothing" "$(revoked_count)" 0
check_eq "host7 still valid at Pebble after the dry run" "$(pebble_status "$(serial_of host7)")" "Valid "
s7=$(serial_of host7)
"$CF" revoke --dry-run --serial "0x$s7" --serial "$(echo "$s7" | tr a-f A-F | sed 's/../&:/g; s/:$//')" >"$tmp/dry2.out" 2>&1
check_eq "a serial as 0x... and as AA:BB:... names the same certificate once" "$(grep -c "^would revoke: .*serial $s7 " "$tmp/dry2.out")" 1

# keyCompromise is signed with the certificate's key, not an account's: give host2 to an account
# that did not order it, whose kid Pebble would refuse for this certificate.
"$CF" account register --new --agree-tos --contact "mailto:other@$ZONE" >/dev/null
other=$(sql "SELECT max(id) FROM accounts")
sql "UPDATE certificates SET account_id = $other WHERE id IN ($(cert_of host2), $(cert_of host5))"

"$CF" revoke --certificate "$(cert_of host1)" --reason superseded >"$tmp/r1.out" 2>&1
check_eq "revoke --certificate exits 0" "$?" 0
"$CF" revoke --name "HOST2.$ZONE." --reason keyCompromise >"$tmp/r2.out" 2>&1
check_eq "revoke --name with keyCompromise exits 0" "$?" 0
# the serial as OpenSSL prints it: upper case
s3=$(sql "SELECT leaf_pem FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names = ARRAY['host3.$ZONE']" |
	openssl x509 -noout -serial | cut -d= -f2)
"$CF" revoke --serial "$s3" --reason cessationOfOperation >"$tmp/r3.out" 2>&1
check_eq "revoke --serial exits 0" "$?" 0
"$CF" revoke --run "$run_b" >"$tmp/r4.out" 2>&1
check_eq "revoke --run exits 0" "$?" 0
check "revoke --run reports 2 revoked" grep -q '^2 revoked (reason unspecified)' "$tmp/r4.out"

check_eq "host1 revoked at Pebble, superseded (4)" "$(pebble_status "$(serial_of host1)")" "Revoked 4"
check_eq "host2 revoked at Pebble, keyCompromise (1)" "$(pebble_status "$(serial_of host2)")" "Revoked 1"
check_eq "host3 revoked at Pebble, cessationOfOperation (5)" "$(pebble_status "$(serial_of host3)")" "Revoked 5"
check_eq "host7 revoked at Pebble, unspecified (0)" "$(pebble_status "$(serial_of host7)")" "Revoked 0"
check_eq "host8 revoked at Pebble, unspecified (0)" "$(pebble_status "$(serial_of host8)")" "Revoked 0"
check_eq "host4 still valid at Pebble" "$(pebble_status "$(serial_of host4)")" "Valid "
check_eq "results record the 5 with their reasons" \
	"$(sql "SELECT string_agg(c.names[1] || '=' || r.revocation_reason, ' ' ORDER BY c.names[1]) FROM results r
		JOIN certificates c ON c.id = r.certificate_id WHERE r.revoked_at IS NOT NULL")" \
	"host1.$ZONE=superseded host2.$ZONE=keyCompromise host3.$ZONE=cessationOfOperation host7.$ZONE=unspecified host8.$ZONE=unspecified"

# The account kid cannot revoke a certificate it did not order: the CA's problem, per certificate, exit 3.
"$CF" revoke --name "host5.$ZONE" --name "host1.$ZONE" --reason superseded >"$tmp/r5.out" 2>&1
check_eq "a refusal by the CA exits 3" "$?" 3
check "the refusal names the certificate and the CA's problem" \
	grep -q "^FAILED: .*host5.$ZONE.*urn:ietf:params:acme:error:unauthorized" "$tmp/r5.out"
check "a certificate revoked before is reported, not sent" grep -q "^already revoked: .*host1.$ZONE" "$tmp/r5.out"
check_eq "host5 still valid at Pebble" "$(pebble_status "$(serial_of host5)")" "Valid "
check_eq "host5 not recorded as revoked" "$(sql "SELECT count(*) FROM results r JOIN certificates c ON c.id = r.certificate_id
	WHERE c.names = ARRAY['host5.$ZONE'] AND r.revoked_at IS NOT NULL")" 0

# The CA's alreadyRevoked is recorded: forget host3's revocation, then revoke it again.
sql "UPDATE results SET revoked_at = NULL, revocation_reason = NULL WHERE serial = '$(serial_of host3)'"
"$CF" revoke --name "host3.$ZONE" --reason cessationOfOperation >"$tmp/r6.out" 2>&1
check_eq "revoking what the CA revoked already exits 0" "$?" 0
check_eq "alreadyRevoked is recorded as revoked" \
	"$(sql "SELECT revocation_reason FROM results WHERE serial = '$(serial_of host3)' AND revoked_at IS NOT NULL")" cessationOfOperation
check_eq "5 results revoked in all" "$(revoked_count)" 5

# keyCompromise with a P-384 key (ES384) and an RSA key (RS256)
"$CF" revoke --name "p384.$ZONE" --name "rsa.$ZONE" --reason keyCompromise >"$tmp/r7.out" 2>&1
check_eq "keyCompromise of a P-384 and an RSA certificate exits 0" "$?" 0
check_eq "the P-384 certificate revoked at Pebble, keyCompromise" "$(pebble_status "$(serial_of p384)")" "Revoked 1"
check_eq "the RSA certificate revoked at Pebble, keyCompromise" "$(pebble_status "$(serial_of rsa)")" "Revoked 1"
check_eq "7 results revoked in all" "$(revoked_count)" 7

# A CA that gives no answer: its certificates fail, the others are revoked, exit 1.
dead=$(sql "INSERT INTO accounts (directory_url, account_url, key_pem, key_thumbprint, issuer_domain)
	SELECT 'https://localhost:1/dir', 'https://localhost:1/acct/1', key_pem, key_thumbprint, issuer_domain
	FROM accounts WHERE id = 1 RETURNING id")
sql "UPDATE certificates SET account_id = $dead WHERE id = $(cert_of host6)"
"$CF" revoke --name "host6.$ZONE" --name "host4.$ZONE" >"$tmp/r8.out" 2>&1
check_eq "a CA that does not answer exits 1" "$?" 1
check "its certificate is listed as failed, the CA unreachable" grep -q "^FAILED: .*host6.$ZONE.*the CA is unreachable" "$tmp/r8.out"
check_eq "the certificate of the CA that answers is revoked" "$(pebble_status "$(serial_of host4)")" "Revoked 0"
check_eq "8 results revoked in all" "$(revoked_count)" 8
check "revoke --help names every option" bash -c "'$CF' revoke --help | grep -q -- '--dry-run'"
finish
