#!/usr/bin/env bash
# test_records.sh - `certfleet records` lists every active certificate's record whatever its job
# history (after cleanup too), with exactly the values run published (persistUntil included),
# as a zone that named-checkzone accepts, as tsv and as JSON; a retired certificate is left out;
# persistUntil lapsing soon is warned about, one lapsed or malformed and a bad --format exit 2.
. "$(dirname "$0")/lib.sh"

require_tools "bind9-utils, bind9-dnsutils, python3" named-checkzone dig python3
db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# persistUntil 20 days ahead: inside the default 30-day warning, and still valid for Pebble
until=$(($(date +%s) + 20 * 86400))
export CERTFLEET_PERSIST_UNTIL=$until
check "enqueue 4 certificates, one wildcard" "$CF" enqueue "a.$ZONE" "b.$ZONE,www.b.$ZONE" "*.w.$ZONE" "r.$ZONE"
"$CF" run --workers 1 --no-progress >"$tmp/run.out" 2>"$tmp/run.err"
check_eq "run with persistUntil exits 0" "$?" 0
check_eq "4 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 4
check "run warns that persistUntil lapses soon" grep -q "CERTFLEET_PERSIST_UNTIL $until .* lapses in 20 day" "$tmp/run.err"
check_eq "run wrote persistUntil into every record" \
	"$(sql "SELECT count(*) FROM records WHERE value LIKE '%; persistUntil=$until'")" 5

# cleanup deletes every finished job; the certificates' records must stay listed
check "cleanup --older-than 0" "$CF" cleanup --older-than 0
check_eq "no job left" "$(sql "SELECT count(*) FROM jobs")" 0
sql "UPDATE certificates SET retired_at = now() WHERE names_key = 'r.$ZONE'" >/dev/null

"$CF" records --format tsv >"$tmp/rec.tsv" 2>"$tmp/rec.err"
check_eq "records --format tsv exits 0" "$?" 0
check "records warns that persistUntil lapses soon" grep -q "CERTFLEET_PERSIST_UNTIL $until .* lapses in 20 day" "$tmp/rec.err"
check_eq "and finds every value run wrote" "$(grep -c 'differs' "$tmp/rec.err")" 0
sql "SELECT fqdn || E'\t' || value FROM records WHERE fqdn <> '_validation-persist.r.$ZONE' ORDER BY 1" >"$tmp/run.tsv"
check_eq "after cleanup, records lists the 4 active names" "$(wc -l <"$tmp/rec.tsv")" 4
check "the values equal those run published (records table)" cmp -s <(sort "$tmp/rec.tsv") "$tmp/run.tsv"
check "the wildcard's base name carries policy=wildcard and persistUntil" \
	grep -qE "^_validation-persist\.w\.$ZONE	[^	]*; policy=wildcard; persistUntil=$until\$" "$tmp/rec.tsv"
check_eq "the retired certificate is not listed" "$(grep -c "_validation-persist\.r\.$ZONE" "$tmp/rec.tsv")" 0
# the values in the DNS that Pebble asked (challtestsrv)
dns_ip=${CERTFLEET_CHALLTESTSRV_DNS%:*} dns_port=${CERTFLEET_CHALLTESTSRV_DNS##*:}
missing=0
while IFS=$'\t' read -r fqdn value; do
	dig +short +tcp -p "$dns_port" "@$dns_ip" TXT "$fqdn." | grep -qxF "\"$value\"" || missing=$((missing + 1))
done <"$tmp/rec.tsv"
check_eq "every value listed is the one published in the DNS" "$missing" 0

# zone: a zone file of the test's zone with records' lines accepted by BIND
"$CF" records >"$tmp/rec.zone" 2>/dev/null
check_eq "records --format zone exits 0" "$?" 0
{
	printf '$TTL 300\n$ORIGIN %s.\n@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n@ IN NS ns.%s.\nns IN A 192.0.2.1\n' \
		"$ZONE" "$ZONE" "$ZONE" "$ZONE"
	cat "$tmp/rec.zone"
} >"$tmp/zone"
check "named-checkzone accepts the zone" named-checkzone -q "$ZONE" "$tmp/zone"
named-checkzone -D -o "$tmp/zone.dump" "$ZONE" "$tmp/zone" >/dev/null 2>&1
check_eq "BIND reads 4 TXT records from it" "$(grep -c '[[:space:]]TXT[[:space:]]' "$tmp/zone.dump")" 4
check "the zone names the account and its CA" grep -qxF \
	"; account $(sql "SELECT id FROM accounts") $(sql "SELECT account_url FROM accounts") of the CA $CERTFLEET_DIRECTORY" "$tmp/rec.zone"

# json
"$CF" records --format json >"$tmp/rec.json" 2>/dev/null
check_eq "records --format json exits 0" "$?" 0
check "the JSON parses" python3 -m json.tool "$tmp/rec.json" /dev/null
check "the JSON has every field, and the values of the tsv" python3 - "$tmp/rec.json" "$tmp/rec.tsv" \
	"$(sql "SELECT account_url FROM accounts")" "$until" "$(sql "SELECT id FROM certificates WHERE names_key = '*.w.$ZONE'")" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
tsv = sorted(tuple(l.rstrip("\n").split("\t")) for l in open(sys.argv[2]))
acct, until, wild_id = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
assert sorted((r["fqdn"], r["value"]) for r in recs) == tsv, "json and tsv differ"
for r in recs:
    assert set(r) >= {"fqdn", "value", "issuer", "account", "account_id", "directory", "draft",
                      "wildcard", "persist_until", "certificates"}, r
    assert r["account"] == acct and r["draft"] == 1 and r["persist_until"] == until, r
    assert r["value"].startswith(r["issuer"] + "; accounturi=" + acct), r
    assert len(r["certificates"]) == 1, r
w = [r for r in recs if r["fqdn"].startswith("_validation-persist.w.")]
assert len(w) == 1 and w[0]["wildcard"] is True and w[0]["certificates"] == [wild_id], w
PY

# without the setting: the same names, no persistUntil
CERTFLEET_PERSIST_UNTIL= "$CF" records --format tsv >"$tmp/plain.tsv" 2>"$tmp/plain.err"
check_eq "records without persistUntil exits 0" "$?" 0
check_eq "no value carries persistUntil then" "$(grep -c persistUntil "$tmp/plain.tsv")" 0
check "records warns that these differ from what run wrote at the 4 names" \
	grep -q "at 4 name(s) the value differs from every one run wrote .*CERTFLEET_PERSIST_UNTIL" "$tmp/plain.err"
check_eq "and nothing about a lapse then" "$(grep -c 'lapses' "$tmp/plain.err")" 0

# a certificate of an old schema with no CA and no job left: counted in a warning, not listed
sql "UPDATE certificates SET account_id = NULL WHERE names_key = 'a.$ZONE'" >/dev/null
"$CF" records --format tsv >"$tmp/noca.tsv" 2>"$tmp/noca.err"
check_eq "records with a certificate naming no CA exits 0" "$?" 0
check "and warns, naming it" grep -q "1 active certificate(s) name no CA .*a\.$ZONE" "$tmp/noca.err"
check_eq "the other 3 are listed" "$(wc -l <"$tmp/noca.tsv")" 3
sql "UPDATE certificates SET account_id = (SELECT id FROM accounts) WHERE names_key = 'a.$ZONE'" >/dev/null

# bad input: exit 2, named, nothing printed
"$CF" records --format xml >"$tmp/bad.out" 2>"$tmp/bad.err"
check_eq "a bad --format exits 2" "$?" 2
check "the error names the format" grep -qF -- '--format "xml"' "$tmp/bad.err"
CERTFLEET_PERSIST_UNTIL=next-week "$CF" records >"$tmp/bad2.out" 2>"$tmp/bad2.err"
check_eq "a malformed CERTFLEET_PERSIST_UNTIL exits 2" "$?" 2
check "the error names the setting and its value" grep -qF 'CERTFLEET_PERSIST_UNTIL "next-week"' "$tmp/bad2.err"
CERTFLEET_PERSIST_UNTIL=$(($(date +%s) - 60)) "$CF" records >"$tmp/bad3.out" 2>"$tmp/bad3.err"
check_eq "a persistUntil already past exits 2" "$?" 2
check "the error says it has passed" grep -q "CERTFLEET_PERSIST_UNTIL .* has passed" "$tmp/bad3.err"
check_eq "and nothing is printed" "$(cat "$tmp/bad.out" "$tmp/bad2.out" "$tmp/bad3.out" | wc -c)" 0
CERTFLEET_PERSIST_UNTIL=$(($(date +%s) - 60)) "$CF" run --no-progress >/dev/null 2>"$tmp/bad4.err"
check_eq "run with a persistUntil already past exits 2" "$?" 2
"$CF" records --directory "https://localhost:1/nothing" >/dev/null 2>"$tmp/bad5.err"
check_eq "records --directory of a CA without an account exits 2" "$?" 2
finish
