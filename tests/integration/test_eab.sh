#!/usr/bin/env bash
# test_eab.sh - External Account Binding (RFC 8555 7.3.4) at a Pebble that requires it: without
# EAB the CA's problem is reported; a key file others may read is refused (exit 2) before anything
# is sent or stored; a wrong key or key id is the CA's refusal; the right one registers, stores
# the key id (never the MAC key), and the account issues.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
b64url() { openssl rand 32 | base64 | tr '+/' '-_' | tr -d '=\n'; }
mac=$(b64url)
start_pebble eab "{\"externalAccountBindingRequired\": true, \"externalAccountMACKeys\": {\"kid-1\": \"$mac\"}}" ||
	{ not_ok "start the EAB Pebble"; finish; exit 1; }
export CERTFLEET_DIRECTORY=$pebble_dir
accounts() { sql "SELECT count(*) FROM accounts"; }
new_accounts() { grep -c 'POST /sign-me-up' "$pebble_log"; }
reg() { "$CF" account register --agree-tos --contact "mailto:ops@$ZONE" "$@"; }

check_eq "the directory says EAB is required" \
	"$(curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$pebble_dir" | jq -r .meta.externalAccountRequired)" true

reg >"$tmp/none.out" 2>&1
check_eq "register without EAB exits 1" "$?" 1
check "the CA's problem is reported" grep -q 'urn:ietf:params:acme:error:externalAccountRequired' "$tmp/none.out"
check "the error says to pass --eab-kid" grep -q -- '--eab-kid' "$tmp/none.out"
check_eq "no account stored" "$(accounts)" 0

printf '%s\n' "$mac" >"$tmp/mac"
sent=$(new_accounts)
for mode in 644 640 604; do
	chmod "$mode" "$tmp/mac"
	reg --eab-kid kid-1 --eab-hmac-file "$tmp/mac" >"$tmp/open.out" 2>&1
	check_eq "a key file of mode $mode exits 2" "$?" 2
	check "the error names the file and its mode $mode" grep -q "$tmp/mac: mode 0$mode" "$tmp/open.out"
done
if [ "$(id -u)" -eq 0 ]; then
	cp "$tmp/mac" "$tmp/theirs" && chmod 600 "$tmp/theirs" && chown nobody "$tmp/theirs"
	reg --eab-kid kid-1 --eab-hmac-file "$tmp/theirs" >"$tmp/theirs.out" 2>&1
	check_eq "a key file of another user exits 2" "$?" 2
	check "the error names the file and its owner" grep -q "$tmp/theirs: owned by uid $(id -u nobody)" "$tmp/theirs.out"
fi
check_eq "nothing stored for an open key file" "$(accounts)" 0
check_eq "nothing sent to the CA for an open key file" "$(new_accounts)" "$sent"
chmod 600 "$tmp/mac"
reg --eab-kid kid-1 >/dev/null 2>&1
check_eq "--eab-kid without --eab-hmac-file exits 2" "$?" 2
printf 'not base64!\n' >"$tmp/junk" && chmod 600 "$tmp/junk"
reg --eab-kid kid-1 --eab-hmac-file "$tmp/junk" >/dev/null 2>&1
check_eq "a key file that is not base64url exits 2" "$?" 2
reg --eab-kid kid-1 --eab-hmac-file "$tmp/nonexistent" >/dev/null 2>&1
check_eq "a missing key file exits 2" "$?" 2

b64url >"$tmp/wrong" && chmod 600 "$tmp/wrong"
reg --eab-kid kid-1 --eab-hmac-file "$tmp/wrong" >"$tmp/wrong.out" 2>&1
check_eq "a wrong MAC key exits 1" "$?" 1
check "the CA's refusal of the wrong key is reported" grep -q 'urn:ietf:params:acme:error:unauthorized' "$tmp/wrong.out"
reg --eab-kid kid-2 --eab-hmac-file "$tmp/mac" >"$tmp/kid.out" 2>&1
check_eq "an unknown key id exits 1" "$?" 1
check_eq "no account stored after the refusals" "$(accounts)" 0

reg --eab-kid kid-1 --eab-hmac-file "$tmp/mac" >"$tmp/ok.out" 2>&1
check_eq "register with the right EAB exits 0" "$?" 0
check "Pebble bound the account with kid-1" grep -q 'Successful newAccount Binding with CA using kid "kid-1"' "$pebble_log"
check_eq "eab_kid stored" "$(sql "SELECT eab_kid FROM accounts WHERE directory_url = '$pebble_dir'")" kid-1
check_eq "the MAC key is stored nowhere in the row" "$(sql "SELECT count(*) FROM accounts a WHERE a::text LIKE '%$mac%'")" 0
check "the MAC key is not printed" bash -c "! grep -qF -- '$mac' '$tmp/ok.out' '$tmp/wrong.out' '$tmp/none.out'"
check "account show prints the key id" bash -c "'$CF' account show | grep -q 'EAB key id: *kid-1'"

"$CF" enqueue "eab.$ZONE" >/dev/null
"$CF" run --workers 1 --no-progress >"$tmp/run.out" 2>&1
check_eq "a certificate issues with the bound account" "$?" 0
check_eq "its job ran under that account" \
	"$(sql "SELECT a.eab_kid FROM jobs j JOIN accounts a ON a.id = j.account_id WHERE j.state = 'issued'")" kid-1
check "the EAB Pebble issued it" grep -q 'Issued certificate serial' "$pebble_log"
finish
