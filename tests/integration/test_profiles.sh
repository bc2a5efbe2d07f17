#!/usr/bin/env bash
# test_profiles.sh - certificate profiles: enqueue --profile checks the name against the CA's
# directory (exit 2 and nothing stored for one it lacks), run sends it in newOrder (Pebble's
# shortlived profile gives 6-day certificates, its default 90 days), and a job whose profile the
# CA no longer offers fails at once with certfleet:profile while the others are issued.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

counts() { sql "SELECT (SELECT count(*) FROM certificates) || '/' || (SELECT count(*) FROM jobs) || '/' || (SELECT count(*) FROM runs)"; }

# --- bad input: nothing stored
before=$(counts)
"$CF" enqueue --profile nosuchprofile "bad.$ZONE" >"$tmp/e1.out" 2>"$tmp/e1.err"
check_eq "unknown profile: exit 2" "$?" 2
check "unknown profile: the message names it" grep -q 'profile "nosuchprofile"' "$tmp/e1.err"
check "unknown profile: the message names the profiles the CA offers" \
	grep -Eq 'it offers: (default, shortlived|shortlived, default)' "$tmp/e1.err"
"$CF" enqueue --profile 'bad name!' "bad.$ZONE" >/dev/null 2>"$tmp/e2.err"
check_eq "malformed profile name: exit 2" "$?" 2
check "malformed profile name: the message names it" grep -q 'profile "bad name!"' "$tmp/e2.err"
check_eq "bad profiles stored nothing" "$(counts)" "$before"

# --- shortlived and default profiles, as Pebble's directory offers them
check "enqueue --profile shortlived" "$CF" enqueue --profile shortlived "s1.$ZONE" "s2.$ZONE" "s3.$ZONE"
check "enqueue --profile default" "$CF" enqueue --profile default "d1.$ZONE" "d2.$ZONE"
check "enqueue without a profile" "$CF" enqueue "n1.$ZONE"
check_eq "profiles stored per certificate" \
	"$(sql "SELECT string_agg(names[1] || '=' || coalesce(profile, '-'), ' ' ORDER BY names[1]) FROM certificates")" \
	"d1.$ZONE=default d2.$ZONE=default n1.$ZONE=- s1.$ZONE=shortlived s2.$ZONE=shortlived s3.$ZONE=shortlived"
# a job whose profile the CA no longer offers (the certificate changed behind enqueue's back)
check "enqueue the one whose profile goes away" "$CF" enqueue --profile shortlived "gone.$ZONE"
sql "UPDATE certificates SET profile = 'retired-profile' WHERE names[1] = 'gone.$ZONE'"

# validity periods below count notAfter in (RFC 5280 4.1.2.5: it is inclusive), hence the + 1
"$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>"$tmp/run1.err"
check_eq "run with one unknown profile exits 3" "$?" 3
check_eq "shortlived certificates last 6 days" \
	"$(sql "SELECT string_agg(DISTINCT (extract(epoch FROM r.not_after - r.not_before)::bigint + 1)::text, ',') || ':' || count(*)
		FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE c.profile = 'shortlived'")" "518400:3"
check_eq "default-profile certificates last 90 days" \
	"$(sql "SELECT string_agg(DISTINCT (extract(epoch FROM r.not_after - r.not_before)::bigint + 1)::text, ',') || ':' || count(*)
		FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE c.profile = 'default'")" "7776000:2"
check_eq "the certificate without a profile is issued" \
	"$(sql "SELECT count(*) FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE c.profile IS NULL")" 1
check_eq "the job with a profile the CA lacks failed with certfleet:profile after one attempt" \
	"$(sql "SELECT j.state || ' ' || j.last_problem_type || ' ' || j.attempts FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'gone.$ZONE'")" \
	"failed certfleet:profile 1"
check "its error names the profile and what the CA offers" \
	test -n "$(sql "SELECT 1 FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'gone.$ZONE'
		AND j.last_error LIKE '%\"retired-profile\"%' AND j.last_error LIKE '%shortlived%'")"
check_eq "it never reached the CA (no order stored)" \
	"$(sql "SELECT count(*) FROM orders o JOIN jobs j ON j.id = o.job_id JOIN certificates c ON c.id = j.certificate_id WHERE c.names[1] = 'gone.$ZONE'")" 0
check_eq "every other job issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 6

# --- enqueue changes or clears the profile of certificates already in the fleet
"$CF" enqueue --profile default "s1.$ZONE" "n1.$ZONE" >"$tmp/e3.out" 2>&1
check_eq "enqueue --profile on existing certificates exits 0" "$?" 0
check "it says two certificates changed" grep -q '2 certificates changed settings' "$tmp/e3.out"
check "enqueue --profile '' clears it" "$CF" enqueue --profile '' "d1.$ZONE"
"$CF" enqueue "s2.$ZONE" >/dev/null 2>&1
check_eq "profiles after the changes (an enqueue without --profile keeps it)" \
	"$(sql "SELECT string_agg(names[1] || '=' || coalesce(profile, '-'), ' ' ORDER BY names[1]) FROM certificates WHERE names[1] IN ('s1.$ZONE', 'n1.$ZONE', 'd1.$ZONE', 's2.$ZONE')")" \
	"d1.$ZONE=- n1.$ZONE=default s1.$ZONE=default s2.$ZONE=shortlived"
"$CF" run --workers 1 --no-progress >"$tmp/run2.out" 2>"$tmp/run2.err"
check_eq "second run exits 0" "$?" 0
check_eq "s1 is now issued for 90 days" \
	"$(sql "SELECT (extract(epoch FROM r.not_after - r.not_before)::bigint + 1) FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names[1] = 's1.$ZONE'")" 7776000

# --- a CA whose directory lists no profiles refuses any --profile. Pebble always offers some, so
# a plain directory document on loopback stands for that CA, with an account row for it (enqueue
# reads no account key and sends nothing to the CA).
mkdir -p "$tmp/www"
printf '{"newNonce": "http://127.0.0.1/n", "newAccount": "http://127.0.0.1/a", "newOrder": "http://127.0.0.1/o", "meta": {"caaIdentities": ["noprofiles.example"]}}' >"$tmp/www/dir"
www_port=$(random_port)
python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$www_port" >/dev/null 2>&1 &
www=$!
np_dir="http://127.0.0.1:$www_port/dir"
for _ in $(seq 50); do curl -sf -o /dev/null "$np_dir" && break; sleep 0.1; done
sql "INSERT INTO accounts (directory_url, account_url, key_pem, key_thumbprint, issuer_domain)
	VALUES ('$np_dir', 'http://127.0.0.1/acct/1', 'never read', 'none', 'noprofiles.example')"
before=$(counts)
CERTFLEET_DIRECTORY=$np_dir "$CF" enqueue --profile default "np.$ZONE" >/dev/null 2>"$tmp/e4.err"
check_eq "a CA without profiles: exit 2" "$?" 2
check "a CA without profiles: the message names the profile and says the CA offers none" \
	grep -q 'profile "default": the CA of .* offers no certificate profiles' "$tmp/e4.err"
check_eq "a CA without profiles: nothing stored" "$(counts)" "$before"
CERTFLEET_DIRECTORY=$np_dir "$CF" enqueue "np.$ZONE" >/dev/null 2>&1
check_eq "a CA without profiles: enqueue without --profile works" "$?" 0
kill "$www" 2>/dev/null
wait "$www" 2>/dev/null

check_unfinished "profiles"
finish
