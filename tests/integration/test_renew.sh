#!/usr/bin/env bash
# test_renew.sh - `certfleet renew` against Pebble: 40 certificates issued, the ARI windows of 12
# moved into the past through Pebble's /set-renewal-info/, one answer malformed JSON and one with
# its own Retry-After (faultproxy.py in front of Pebble); --dry-run lists exactly the 12 and changes
# nothing; renew queues exactly those (reason ari, replaces their CertIDs); run renews them and
# Pebble logs each new order as the replacement of the old one; the old results stay, replaced.
# Then revoked results, the lifetime fallback of a CA without renewalInfo, --force, a refused
# "replaces" ordered again without it, bad usage, and a second CA whose certificates are checked
# at and renewed through their own account's CA.
. "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
stack_log="$CERTFLEET_STACK_DIR/logs/pebble.log"
pebble_new() { tail -c +"$((log0 + 1))" "$stack_log" | grep "$@"; }

db_new || { not_ok "create database"; finish; exit 1; }
# through the proxy from the start: the account URL names the port the client used
start_faultproxy --rate 0 --max-seconds 900
export CERTFLEET_DIRECTORY="https://localhost:$port/dir"
check "account register through the proxy" register

seq 1 40 | sed "s/^/r/; s/\$/.$ZONE/" >"$tmp/fleet"
"$CF" enqueue --file "$tmp/fleet" >/dev/null || not_ok "enqueue 40"
"$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>&1
check_eq "40 certificates issued" "$(sql "SELECT count(*) FROM results WHERE is_current")" 40

# cid NAME: the current result's column for a certificate name
cid() { sql "SELECT r.ari_cert_id FROM results r JOIN certificates c ON c.id = r.certificate_id
	WHERE r.is_current AND c.names[1] = '$1.$ZONE'"; }
# openssl_certid: the CertID of the PEM on stdin, from openssl's own fields
openssl_certid() {
	local pem aki serial
	pem=$(cat)
	aki=$(openssl x509 -noout -ext authorityKeyIdentifier <<<"$pem" | sed -n '2{s/[ :]//g; s/^keyid//; p}')
	serial=$(openssl x509 -noout -serial <<<"$pem" | sed 's/^serial=//')
	case $serial in [89A-Fa-f]*) serial="00$serial" ;; esac
	printf '%s.%s\n' "$(xxd -r -p <<<"$aki" | basenc --base64url | tr -d '=\n')" \
		"$(xxd -r -p <<<"$serial" | basenc --base64url | tr -d '=\n')"
}
bad=0
while IFS='|' read -r id leaf stored; do
	[ "$(printf '%s\n' "${leaf//\~/$'\n'}" | openssl_certid)" = "$stored" ] || { bad=$((bad + 1)); echo "# result $id: $stored"; }
done < <(sql "SELECT id, translate(leaf_pem, E'\n', '~'), ari_cert_id FROM results")
check_eq "every stored ari_cert_id is the CertID openssl's AKI and serial give" "$bad" 0

# set_ari NAME JSON_TEXT: Pebble's renewalInfo answer for the current certificate of NAME
set_ari() {
	sql "SELECT r.leaf_pem FROM results r JOIN certificates c ON c.id = r.certificate_id
		WHERE r.is_current AND c.names[1] = '$1.$ZONE'" >"$tmp/leaf.pem"
	python3 -c 'import json,sys; print(json.dumps({"certificate": open(sys.argv[1]).read(), "ariResponse": sys.argv[2]}))' \
		"$tmp/leaf.pem" "$2" >"$tmp/ari.json"
	curl -sf --cacert "$CERTFLEET_CA_BUNDLE" --data-binary "@$tmp/ari.json" "$CERTFLEET_PEBBLE_MGMT/set-renewal-info/" >/dev/null
}
past_start=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%SZ)
past_end=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
set_bad=0
for i in $(seq 1 12); do
	set_ari "r$i" "{\"suggestedWindow\": {\"start\": \"$past_start\", \"end\": \"$past_end\"},
		\"explanationURL\": \"https://ca.example/incident-7\"}" || set_bad=$((set_bad + 1))
done
set_ari r13 '{"suggestedWindow": {"start": ' || set_bad=$((set_bad + 1))
check_eq "Pebble took the 12 past windows and the malformed answer" "$set_bad" 0
curl -sf "http://127.0.0.1:$ctl/header/$(cid r14)/Retry-After/7200" >/dev/null || not_ok "proxy header for r14"

# the state renew may change, as one checksum
state() { sql "SELECT md5(string_agg(concat_ws('|', r.id, r.is_current, r.replaced_by, r.ari_window_start,
	r.ari_window_end, r.ari_renew_at, r.ari_next_check, r.ari_explanation_url, r.ari_checked_at, r.ari_error),
	',' ORDER BY r.id)) || (SELECT count(*) FROM jobs) || '/' || (SELECT count(*) FROM runs) FROM results r"; }
before=$(state)
"$CF" renew --dry-run >"$tmp/dry.out" 2>"$tmp/dry.err"
check_eq "renew --dry-run exits 3 (one renewalInfo answer failed)" "$?" 3
sed 's/^/# dry-run: /' "$tmp/dry.out" | head -3
grep -v '^renew:' "$tmp/dry.out" | cut -f2 | sort >"$tmp/dry.names"
seq 1 12 | sed "s/^/r/; s/\$/.$ZONE/" | sort >"$tmp/want.names"
check "--dry-run lists exactly the 12 certificates" cmp -s "$tmp/dry.names" "$tmp/want.names"
check_eq "all 12 for reason ari" "$(grep -v '^renew:' "$tmp/dry.out" | cut -f3 | sort -u)" ari
check "with their window and explanation" grep -q "window $past_start..$past_end, renew at .*, explanation https://ca.example/incident-7" "$tmp/dry.out"
check "the malformed answer is reported, naming its URL" grep -q "renewalInfo https://localhost:$port/.*$(cid r13): answer is not a JSON object" "$tmp/dry.err"
check_eq "--dry-run changed nothing (results, jobs, runs)" "$(state)" "$before"

log0=$(stat -c %s "$stack_log")
"$CF" renew --label nightly >"$tmp/renew.out" 2>"$tmp/renew.err"
check_eq "renew exits 3 (the malformed answer)" "$?" 3
check "its summary counts 40 checks, 1 failed, 12 due by ARI" \
	grep -q "renew: 40 current certificates, 40 renewalInfo checks (39 ok, 0 unknown to the CA, 1 failed), 12 due (ari 12," "$tmp/renew.out"
check_eq "12 jobs queued in one run labelled nightly, reason ari" \
	"$(sql "SELECT count(*), count(DISTINCT j.run_id), min(j.reason), max(j.reason), min(r.label) FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.reason IS NOT NULL")" "12|1|ari|ari|nightly"
check_eq "the queued jobs are the 12 certificates" \
	"$(sql "SELECT c.names[1] FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE j.reason IS NOT NULL ORDER BY 1" | sort | tr '\n' ' ')" \
	"$(tr '\n' ' ' <"$tmp/want.names")"
check_eq "each job replaces its certificate's current CertID" \
	"$(sql "SELECT count(*) FROM jobs j JOIN results r ON r.certificate_id = j.certificate_id AND r.is_current
		WHERE j.reason = 'ari' AND j.replaces = r.ari_cert_id")" 12
check_eq "each job is in the ready queue and in unfinished_jobs" \
	"$(sql "SELECT count(*) FROM jobs j JOIN job_queue q ON q.job_id = j.id JOIN unfinished_jobs u ON u.job_id = j.id WHERE j.reason = 'ari'")" 12
check_eq "the malformed one: ari_error stored, no window, checked again later" \
	"$(sql "SELECT r.ari_error LIKE '%answer is not a JSON object%', r.ari_window_start IS NULL, r.ari_next_check > now() + interval '50 minutes'
		FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] = 'r13.$ZONE'")" "t|t|t"
check_eq "the Retry-After one: next check in 2 hours" \
	"$(sql "SELECT abs(extract(epoch FROM r.ari_next_check - r.ari_checked_at) - 7200) < 60
		FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] = 'r14.$ZONE'")" t
check_eq "the others (the malformed one too): next check after Pebble's 6 h Retry-After" \
	"$(sql "SELECT count(*) FROM results WHERE is_current AND abs(extract(epoch FROM ari_next_check - ari_checked_at) - 21600) < 60")" 39
check_eq "39 windows stored, each renewal time inside its window" \
	"$(sql "SELECT count(*) FROM results WHERE is_current AND ari_renew_at BETWEEN ari_window_start AND ari_window_end AND ari_error IS NULL")" 39
check_eq "the 12 carry the CA's explanation URL" \
	"$(sql "SELECT count(*) FROM results WHERE ari_explanation_url = 'https://ca.example/incident-7'")" 12
check_unfinished "after renew"

"$CF" run --workers 2 --no-progress >"$tmp/run2.out" 2>&1
check_eq "run renews the 12" "$(sql "SELECT count(*) FROM jobs WHERE reason = 'ari' AND state = 'issued'")" 12
check_eq "Pebble logged 12 orders as replacements" "$(pebble_new -c 'ARI: order .* is a replacement of')" 12
pebble_new -o 'is a replacement of "[^"]*"' | sed 's/.*of "//; s/"$//' | sort >"$tmp/replaced.orders"
sql "SELECT regexp_replace(r.order_url, '.*/', '') FROM results r WHERE r.replaced_by IS NOT NULL" | sort >"$tmp/old.orders"
check "each replaced order is the order of an old result" cmp -s "$tmp/replaced.orders" "$tmp/old.orders"
check_eq "the 12 old results stay, not current, replaced by the new ones" \
	"$(sql "SELECT count(*) FROM results o JOIN results n ON n.id = o.replaced_by
		WHERE NOT o.is_current AND n.is_current AND o.certificate_id = n.certificate_id AND o.replaced_at IS NOT NULL")" 12
check_eq "52 results, 40 current, none current and replaced" \
	"$(sql "SELECT count(*), count(*) FILTER (WHERE is_current), count(*) FILTER (WHERE is_current AND replaced_by IS NOT NULL) FROM results")" "52|40|0"
check_eq "the new results have their CertIDs" "$(sql "SELECT count(*) FROM results WHERE ari_cert_id IS NULL")" 0

runs0=$(sql "SELECT count(*) FROM runs")
"$CF" renew --no-progress >"$tmp/renew2.out" 2>"$tmp/renew2.err"
check_eq "a second renew exits 0" "$?" 0
check "and selects nothing (the 12 new ones checked, not due)" \
	grep -q "renew: 40 current certificates, 12 renewalInfo checks (12 ok, 0 unknown to the CA, 0 failed), 0 due .*nothing queued" "$tmp/renew2.out"
check_eq "and makes no run" "$(sql "SELECT count(*) FROM runs")" "$runs0"

# --- revoked: due at once, whatever the window says ---
"$CF" revoke --name "r20.$ZONE" --name "r21.$ZONE" --reason superseded >"$tmp/revoke.out" 2>&1
check_eq "certfleet revoke revokes two at Pebble" "$?" 0
"$CF" renew --dry-run >"$tmp/rev.out" 2>&1
check_eq "revoked results are due, reason revoked" "$(grep -v '^renew:' "$tmp/rev.out" | cut -f2,3 | sort | tr '\t\n' ': ')" \
	"r20.$ZONE:revoked r21.$ZONE:revoked "

# --- forced, and a refused replaces ordered again without it ---
"$CF" renew --force "R22.$ZONE." --force "r20.$ZONE" >"$tmp/force.out" 2>&1
check_eq "--force queues r22 as forced beside the revoked ones" \
	"$(sql "SELECT c.names[1] || ':' || j.reason FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE j.state = 'ready' ORDER BY 1" | tr '\n' ' ')" \
	"r20.$ZONE:revoked r21.$ZONE:revoked r22.$ZONE:forced "
# r22's job names a certificate that was replaced already: Pebble answers alreadyReplaced
sql "UPDATE jobs j SET replaces = (SELECT o.ari_cert_id FROM results o JOIN certificates c ON c.id = o.certificate_id
	WHERE c.names[1] = 'r1.$ZONE' AND o.replaced_by IS NOT NULL) FROM certificates c
	WHERE c.id = j.certificate_id AND j.state = 'ready' AND c.names[1] = 'r22.$ZONE'"
log0=$(stat -c %s "$stack_log")
"$CF" run --workers 1 --no-progress >"$tmp/run3.out" 2>&1
check_eq "the three are issued" "$(sql "SELECT count(*) FROM jobs WHERE reason IN ('revoked', 'forced') AND state = 'issued'")" 3
check "the refused replaces was dropped and the order made again" grep -q "newOrder replacing .* refused (urn:ietf:params:acme:error:alreadyReplaced" "$tmp/run3.out"
check_eq "Pebble logged the two revoked ones as replacements" "$(pebble_new -c 'ARI: order .* is a replacement of')" 2

"$CF" renew --force "nothing.$ZONE" >"$tmp/force-bad.out" 2>&1
check_eq "--force with a name no certificate holds exits 2" "$?" 2
check "naming it" grep -q "force nothing.$ZONE: no current certificate" "$tmp/force-bad.out"
"$CF" renew --force 'bad name!' >"$tmp/force-bad2.out" 2>&1
check_eq "--force with a bad name exits 2" "$?" 2
"$CF" renew extra >/dev/null 2>&1
check_eq "an argument exits 2" "$?" 2
"$CF" renew --inflight 0 >/dev/null 2>&1
check_eq "--inflight 0 exits 2" "$?" 2
"$CF" renew --ca-limits 'other=fast' >"$tmp/limits-bad.out" 2>&1
check_eq "a bad --ca-limits exits 2" "$?" 2

# --- the lifetime fallback: a CA whose directory has no renewalInfo ---
curl -sf "http://127.0.0.1:$ctl/directory/drop/renewalInfo" >/dev/null || not_ok "proxy hides renewalInfo"
# certificates with no ARI window ever stored, their dates moved: 90 days at day 61 and 59, 6 days
# at day 3.5 and 2.5
moved() { sql "UPDATE results r SET not_before = now() - interval '$2', not_after = now() - interval '$2' + interval '$3',
	ari_window_start = NULL, ari_window_end = NULL, ari_renew_at = NULL, ari_next_check = NULL, ari_error = NULL
	FROM certificates c WHERE c.id = r.certificate_id AND r.is_current AND c.names[1] = '$1.$ZONE'"; }
moved r30 '61 days' '90 days'
moved r31 '59 days' '90 days'
moved r32 '84 hours' '6 days'
moved r33 '60 hours' '6 days'
"$CF" renew --dry-run >"$tmp/life.out" 2>"$tmp/life.err"
check_eq "renew --dry-run without renewalInfo exits 0" "$?" 0
check_eq "the lifetime fallback: 2/3 of 90 days and 1/2 of 6 days passed" \
	"$(grep -v '^renew:' "$tmp/life.out" | cut -f2,3 | sort | tr '\t\n' ': ')" "r30.$ZONE:lifetime r32.$ZONE:lifetime "
check "it says which rule" grep -q "half of its lifetime passed" "$tmp/life.out"
check "and that the CA has no renewalInfo" grep -q "localhost:$port/dir has no renewalInfo" "$tmp/life.err"
check "no renewalInfo was asked" grep -q "0 renewalInfo checks" "$tmp/life.out"
# --- a second CA: each certificate is checked at, and renewed through, its own account's CA ---
if start_pebble second; then
	CERTFLEET_DIRECTORY=$pebble_dir register || not_ok "account register at the second CA"
	seq 1 3 | sed "s/^/s/; s/\$/.$ZONE/" | CERTFLEET_DIRECTORY=$pebble_dir "$CF" enqueue >/dev/null || not_ok "enqueue 3 at the second CA"
	CERTFLEET_DIRECTORY=$pebble_dir "$CF" run --workers 1 --no-progress >"$tmp/run4.out" 2>&1
	check_eq "3 issued by the second CA" "$(sql "SELECT count(*) FROM results r JOIN jobs j ON j.id = r.job_id
		JOIN accounts a ON a.id = j.account_id WHERE r.is_current AND a.directory_url = '$pebble_dir'")" 3
	sql "SELECT r.leaf_pem FROM results r JOIN certificates c ON c.id = r.certificate_id
		WHERE r.is_current AND c.names[1] = 's2.$ZONE'" >"$tmp/leaf.pem"
	python3 -c 'import json,sys; print(json.dumps({"certificate": open(sys.argv[1]).read(), "ariResponse": sys.argv[2]}))' \
		"$tmp/leaf.pem" "{\"suggestedWindow\": {\"start\": \"$past_start\", \"end\": \"$past_end\"}}" >"$tmp/ari.json"
	curl -sf --cacert "$CERTFLEET_CA_BUNDLE" --data-binary "@$tmp/ari.json" "$pebble_mgmt/set-renewal-info/" >/dev/null ||
		not_ok "the second Pebble took the past window"
	"$CF" renew >"$tmp/two.out" 2>"$tmp/two.err"
	check_eq "renew over both CAs exits 0" "$?" 0
	check "it asked the second CA about its 3 (the first CA's directory has no renewalInfo now)" \
		grep -q "3 renewalInfo checks (3 ok," "$tmp/two.out"
	check_eq "and queued, in one run, s2 for the second CA's account and the lifetime ones for the first's" \
		"$(sql "SELECT count(DISTINCT j.run_id) || ' ' || string_agg(c.names[1] || ':' || j.reason || ':' || a.directory_url, ' ' ORDER BY c.names[1])
			FROM jobs j JOIN certificates c ON c.id = j.certificate_id JOIN accounts a ON a.id = j.account_id WHERE j.state = 'ready'")" \
		"1 r30.$ZONE:lifetime:$CERTFLEET_DIRECTORY r32.$ZONE:lifetime:$CERTFLEET_DIRECTORY s2.$ZONE:ari:$pebble_dir"
	CERTFLEET_DIRECTORY=$pebble_dir "$CF" run --workers 1 --no-progress >"$tmp/run5.out" 2>&1
	check_eq "s2 renewed by the second CA" "$(sql "SELECT count(*) FROM jobs WHERE reason = 'ari' AND state = 'issued'")" 13
	check_eq "the second Pebble logged it as a replacement" "$(grep -c 'ARI: order .* is a replacement of' "$pebble_log")" 1
else
	not_ok "a second Pebble started"
fi
check_unfinished "at the end"
finish
