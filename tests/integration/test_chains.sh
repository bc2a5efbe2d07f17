#!/usr/bin/env bash
# test_chains.sh - preferred chains (RFC 8555 7.4.2): against a Pebble that offers one alternate
# root, certificates enqueued with --preferred-chain naming that root store its chain, which
# verifies against root 1 and not root 0; the others store the default chain, with no extra
# request; a preferred chain no chain matches stores the default and says so. Against the
# stack's Pebble, which offers no alternates, enqueue refuses --preferred-chain once a download
# has shown that.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

counts() { sql "SELECT (SELECT count(*) FROM certificates) || '/' || (SELECT count(*) FROM jobs) || '/' || (SELECT count(*) FROM runs)"; }
# subject_cn FILE: the Common Name of a PEM certificate's subject
subject_cn() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed -n 's/^subject=\(.*,\)\{0,1\}CN=\([^,]*\).*/\2/p'; }

# no nonce rejections, so that the certificate downloads Pebble logs are exactly those asked for
if ! PEBBLE_ALTERNATE_ROOTS=1 PEBBLE_WFE_NONCEREJECT=0 start_pebble alt; then
	not_ok "a Pebble with an alternate root started"
	finish
	exit 1
fi
stack_dir=$CERTFLEET_DIRECTORY
export CERTFLEET_DIRECTORY=$pebble_dir
check "account register with the alternate-root Pebble" register
for i in 0 1; do
	curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$pebble_mgmt/roots/$i" >"$tmp/root$i.pem"
	curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$pebble_mgmt/intermediates/$i" >"$tmp/inter$i.pem"
done
root0=$(subject_cn "$tmp/root0.pem")
root1=$(subject_cn "$tmp/root1.pem")
check "the two roots have distinct Common Names" test -n "$root0" -a -n "$root1" -a "$root0" != "$root1"
check_eq "intermediate 1 is issued by root 1" \
	"$(openssl x509 -in "$tmp/inter1.pem" -noout -issuer -nameopt RFC2253 | sed -n 's/.*CN=\([^,]*\).*/\1/p')" "$root1"

# nothing known yet of this CA's alternates: --preferred-chain is accepted
check_eq "offers_alternates unknown before any download" "$(sql "SELECT coalesce(offers_alternates::text, 'null') FROM accounts")" null
check "enqueue --preferred-chain root 1" "$CF" enqueue --preferred-chain "$root1" "p1.$ZONE" "p2.$ZONE" "p3.$ZONE"
check "enqueue --preferred-chain root 0 (the default chain's)" "$CF" enqueue --preferred-chain "$root0" "z1.$ZONE"
check "enqueue --preferred-chain a root no chain has" "$CF" enqueue --preferred-chain "No Such Root CA" "x1.$ZONE"
check "enqueue without a preferred chain" "$CF" enqueue "d1.$ZONE" "d2.$ZONE"
check_eq "preferred chains stored per certificate" \
	"$(sql "SELECT count(*) FILTER (WHERE preferred_chain = '$root1') || ' ' || count(*) FILTER (WHERE preferred_chain = '$root0') || ' ' || count(*) FILTER (WHERE preferred_chain IS NULL) FROM certificates")" \
	"3 1 2"

downloads() { grep -c 'POST /certZ/ -> calling handler' "$pebble_log"; }
"$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>"$tmp/run1.err"
check_eq "run exits 0" "$?" 0
check_eq "7 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 7
# one download per certificate, plus one alternate for each of the 3 root-1 certificates and the
# one no chain matches; none more for the root-0 one (its default matched) or those without
check_eq "certificate downloads: 7 defaults and 4 alternates" "$(downloads)" 11
check_eq "the account now says its CA offers alternates" "$(sql "SELECT offers_alternates FROM accounts")" t

# verify FILE-PREFIX ROOT: the stored leaf with its stored chain verifies against ROOT alone
verify_stored() {
	sql "SELECT r.leaf_pem FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] = '$1'" >"$tmp/leaf.pem"
	sql "SELECT r.chain_pem FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] = '$1'" >"$tmp/chain.pem"
	openssl verify -no-CApath -no-CAstore -CAfile "$2" -untrusted "$tmp/chain.pem" "$tmp/leaf.pem" >/dev/null 2>&1
}
der() { openssl x509 -in "$1" -outform DER 2>/dev/null; }
pref_ok=0 pref_not0=0 pref_inter1=0
for n in p1 p2 p3; do
	verify_stored "$n.$ZONE" "$tmp/root1.pem" && pref_ok=$((pref_ok + 1))
	verify_stored "$n.$ZONE" "$tmp/root0.pem" || pref_not0=$((pref_not0 + 1))
	cmp -s <(der "$tmp/chain.pem") <(der "$tmp/inter1.pem") && pref_inter1=$((pref_inter1 + 1))
done
check_eq "the preferred chains verify against root 1" "$pref_ok" 3
check_eq "and not against root 0" "$pref_not0" 3
check_eq "their stored chain is intermediate 1" "$pref_inter1" 3
dflt_ok=0 dflt_not1=0
for n in d1 d2 z1 x1; do
	verify_stored "$n.$ZONE" "$tmp/root0.pem" && dflt_ok=$((dflt_ok + 1))
	verify_stored "$n.$ZONE" "$tmp/root1.pem" || dflt_not1=$((dflt_not1 + 1))
done
check_eq "the others store the default chain, which verifies against root 0" "$dflt_ok" 4
check_eq "and not against root 1" "$dflt_not1" 4
check_eq "the preferred chains' events name the alternate stored" \
	"$(sql "SELECT count(*) FROM events e JOIN jobs j ON j.id = e.job_id JOIN certificates c ON c.id = j.certificate_id
		WHERE c.preferred_chain = '$root1' AND e.kind = 'chain' AND e.detail LIKE 'stored the alternate chain %'")" 3
check_eq "the one no chain matched: an event says the default was stored" \
	"$(sql "SELECT count(*) FROM events e JOIN jobs j ON j.id = e.job_id JOIN certificates c ON c.id = j.certificate_id
		WHERE c.names[1] = 'x1.$ZONE' AND e.kind = 'chain' AND e.detail LIKE 'no chain the CA offers%No Such Root CA%stored the default%'")" 1
check "and the run's log says so" grep -q 'no chain the CA offers .*No Such Root CA' "$tmp/run1.err"
check_eq "no chain event for the certificates without a preferred chain or with the default's" \
	"$(sql "SELECT count(*) FROM events e JOIN jobs j ON j.id = e.job_id JOIN certificates c ON c.id = j.certificate_id
		WHERE c.names[1] IN ('d1.$ZONE', 'd2.$ZONE', 'z1.$ZONE') AND e.kind = 'chain'")" 0

# --preferred-chain '' returns a certificate to the default chain
check "enqueue --preferred-chain '' clears it" "$CF" enqueue --preferred-chain '' "p1.$ZONE"
check_eq "p1 has no preferred chain any more" "$(sql "SELECT coalesce(preferred_chain, 'null') FROM certificates WHERE names[1] = 'p1.$ZONE'")" null

# --- the stack's Pebble offers no alternates: once a download showed it, enqueue refuses
export CERTFLEET_DIRECTORY=$stack_dir
check "account register with the stack's Pebble" register
check "enqueue one certificate there" "$CF" enqueue "s1.$ZONE"
"$CF" run --workers 1 --no-progress >"$tmp/run2.out" 2>"$tmp/run2.err"
check_eq "run against the stack's Pebble exits 0" "$?" 0
check_eq "its account says its CA offers no alternates" \
	"$(sql "SELECT offers_alternates FROM accounts WHERE directory_url = '$stack_dir'")" f
before=$(counts)
"$CF" enqueue --preferred-chain "$root1" "s2.$ZONE" >"$tmp/e1.out" 2>"$tmp/e1.err"
check_eq "--preferred-chain with a CA that offers no alternates: exit 2" "$?" 2
check "the message says the CA offers no alternate chains" grep -q 'preferred chain: the CA of account .* offered no alternate chains' "$tmp/e1.err"
check_eq "nothing stored" "$(counts)" "$before"
"$CF" enqueue --preferred-chain "$(printf 'a\tb')" "s2.$ZONE" >/dev/null 2>"$tmp/e2.err"
check_eq "a preferred chain with a control character: exit 2" "$?" 2
check_eq "nothing stored for it either" "$(counts)" "$before"

check_unfinished "chains"
finish
