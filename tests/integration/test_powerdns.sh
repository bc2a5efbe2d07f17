#!/usr/bin/env bash
# test_powerdns.sh - the powerdns provider against a real PowerDNS Authoritative server started for
# this test (scripts/pdns.sh): one PATCH per zone, ensure idempotent, values certfleet did not write
# kept through ensure and remove, removal of exactly ours, a rejected key and a missing zone named
# (and the key never printed), records confirmed at the server with `provider verify`.
# Needs pdns-server, pdns-backend-sqlite3, sqlite3, dig and curl; not PostgreSQL or Pebble.
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
pdir="$tmp/pdns"
trap '"$repo/scripts/pdns.sh" stop "$pdir" >/dev/null 2>&1; rm -rf "$tmp"' EXIT

Z1=$ZONE
Z2="second-$ZONE"
ZMISSING="missing-$ZONE"       # configured for the account, absent from the server
N1="_validation-persist.h1.$Z1"
N2="_validation-persist.h2.$Z1"
N3="_validation-persist.h3.$Z1"
N4="_validation-persist.h4.$Z2"
V1="letsencrypt.org; accounturi=https://ca.example/acct/$RUN_ID"
V2="letsencrypt.org; accounturi=https://ca.example/acct/$RUN_ID; policy=wildcard"
# longer than one 255-octet character-string
V3="letsencrypt.org; accounturi=https://ca.example/acct/$(printf 'x%.0s' $(seq 1 260))/$RUN_ID"
V4="letsencrypt.org; accounturi=https://ca.example/acct/4-$RUN_ID"
FOREIGN="google-site-verification=$RUN_ID"
BADKEY="wrong-key-$RUN_ID-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

require_tools "apt-get install pdns-server pdns-backend-sqlite3 sqlite3 dnsutils curl" pdns_server pdnsutil sqlite3 dig curl

# A free pair of ports: pdns.sh refuses busy ones, so try a few.
started=0
for _ in 1 2 3 4 5 6; do
	DNS_PORT=$(random_port)
	API_PORT=$((DNS_PORT + 1))
	if "$repo/scripts/pdns.sh" start "$pdir" "$DNS_PORT" "$API_PORT" "$Z1" "$Z2" >"$tmp/start.out" 2>&1; then
		started=1
		break
	fi
	grep -qE 'is busy|Address already in use|Unable to bind' "$tmp/start.out" || break
done
if [ "$started" -ne 1 ]; then
	sed 's/^/# /' "$tmp/start.out"
	not_ok "PowerDNS starts"
	finish
	exit 1
fi
ok "PowerDNS starts (DNS $DNS_PORT, API $API_PORT)"
API="http://127.0.0.1:$API_PORT/api/v1/servers/localhost"
KEY=$(cat "$pdir/api-key")

cat >"$tmp/providers.json" <<EOF
{ "providers": {
    "pdns": { "type": "powerdns", "api_url": "http://127.0.0.1:$API_PORT", "api_key_file": "$pdir/api-key",
              "ttl": 120, "zones": ["$Z1", "$Z2", "$ZMISSING"],
              "verify": { "servers": ["127.0.0.1:$DNS_PORT"], "deadline": 5, "timeout": 1 } },
    "pdns-badkey": { "type": "powerdns", "api_url": "http://127.0.0.1:$API_PORT/", "api_key": "$BADKEY",
              "zones": ["$Z1"] } } }
EOF
chmod 0600 "$tmp/providers.json"
export CERTFLEET_PROVIDERS="$tmp/providers.json"

# The TXT values at NAME as the server answers them, one per line, character-strings joined.
txt() {
	dig @127.0.0.1 -p "$DNS_PORT" +short +norecurse TXT "$1" | sed -e 's/" "//g' -e 's/^"//' -e 's/"$//' | sort
}

patches() { grep -c '"PATCH /api/' "$pdir/pdns.log" || true; }

# The TTL of the TXT RRset at NAME, from the API.
api_ttl() {
	curl -sf --noproxy '*' -H "X-API-Key: $KEY" "$API/zones/$2.?rrset_name=$1.&rrset_type=TXT" |
		grep -o '"ttl": *[0-9]*' | grep -o '[0-9]*$'
}

# api_put NAME ZONE TTL CONTENT_JSON...: sets the TXT RRset at NAME as another client would.
api_put() {
	local name=$1 zone=$2 ttl=$3 recs
	shift 3
	recs=$(printf '%s,' "$@")
	curl -sf --noproxy '*' -o /dev/null -X PATCH -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
		-d "{\"rrsets\": [{\"name\": \"$name.\", \"type\": \"TXT\", \"ttl\": $ttl, \"changetype\": \"REPLACE\", \"records\": [${recs%,}]}]}" \
		"$API/zones/$zone."
}

# --- ensure: three records in one zone and one in another, one PATCH per zone
p0=$(patches)
out ensure1 ensure pdns "$N1" "$V1" "$N2" "$V2" "$N3" "$V3" "$N4" "$V4"
check_eq "ensure 4 records exits 0" "$?" 0
check_eq "one PATCH per zone" "$(($(patches) - p0))" 2
check_eq "record 1 served" "$(txt "$N1")" "$V1"
check_eq "record 2 served" "$(txt "$N2")" "$V2"
check_eq "record 3 (two character-strings) served" "$(txt "$N3")" "$V3"
check_eq "record 4 in the second zone served" "$(txt "$N4")" "$V4"
check_eq "new RRsets get the account's ttl" "$(api_ttl "$N1" "$Z1")" 120
check "verify finds the records" out verify1 verify pdns "$N1" "$V1" "$N3" "$V3" "$N4" "$V4"

# --- ensure again: nothing to change, no PATCH
p1=$(patches)
out ensure2 ensure pdns "$N1" "$V1" "$N2" "$V2" "$N3" "$V3" "$N4" "$V4"
check_eq "ensure again exits 0" "$?" 0
check_eq "ensure again sends no PATCH" "$(($(patches) - p1))" 0
check_eq "record 3 unchanged" "$(txt "$N3")" "$V3"

# --- a value another client wrote survives ensure and remove
api_put "$N1" "$Z1" 600 "{\"content\": \"\\\"$V1\\\"\", \"disabled\": false}" \
	"{\"content\": \"\\\"$FOREIGN\\\"\", \"disabled\": false}"
check_eq "foreign value added beside ours" "$(txt "$N1" | wc -l | tr -d ' ')" 2
p2=$(patches)
out ensure3 ensure pdns "$N1" "$V1"
check_eq "ensure with a foreign value beside ours exits 0" "$?" 0
check_eq "ensure with ours present sends no PATCH" "$(($(patches) - p2))" 0
out ensure4 ensure pdns "$N1" "$V2"
check_eq "ensure a second value of ours exits 0" "$?" 0
check_eq "ensure keeps the foreign value" "$(txt "$N1")" "$(printf '%s\n' "$FOREIGN" "$V1" "$V2" | sort)"
check_eq "ensure keeps the RRset's TTL" "$(api_ttl "$N1" "$Z1")" 600
out remove1 remove pdns "$N1" "$V1" "$N1" "$V2"
check_eq "remove ours beside a foreign value exits 0" "$?" 0
check_eq "remove keeps only the foreign value" "$(txt "$N1")" "$FOREIGN"

# --- a disabled record of ours is enabled, not added twice
api_put "$N2" "$Z1" 120 "{\"content\": \"\\\"$V2\\\"\", \"disabled\": true}"
check_eq "record 2 disabled is not served" "$(txt "$N2")" ""
out ensure5 ensure pdns "$N2" "$V2"
check_eq "ensure over a disabled record exits 0" "$?" 0
check_eq "ensure enables it" "$(txt "$N2")" "$V2"

# --- remove: only ours goes; an RRset left empty is deleted; removing again is a no-op
out remove2 remove pdns "$N2" "$V2" "$N3" "$V3"
check_eq "remove 2 records exits 0" "$?" 0
check_eq "record 2 gone" "$(txt "$N2")" ""
check_eq "record 3 gone" "$(txt "$N3")" ""
check "the emptied RRset is deleted" bash -c "dig @127.0.0.1 -p $DNS_PORT +norecurse TXT '$N3' | grep -q 'status: NXDOMAIN'"
check_eq "record 4 in the other zone kept" "$(txt "$N4")" "$V4"
p3=$(patches)
out remove3 remove pdns "$N2" "$V2" "$N3" "$V3"
check_eq "remove again exits 0" "$?" 0
check_eq "remove again sends no PATCH" "$(($(patches) - p3))" 0
out verify2 verify pdns "$N3" "$V3"
check_eq "verify after remove exits 1" "$?" 1
check "verify says absent" grep -q "absent $N3" "$tmp/verify2"

# --- a rejected key: not retryable, named, never printed
out badkey ensure pdns-badkey "$N1" "$V1"
check_eq "wrong API key exits 1" "$?" 1
check "wrong API key: the message names the account" grep -q "pdns-badkey" "$tmp/badkey"
check "wrong API key: the message says the key was rejected" grep -q "API key was rejected" "$tmp/badkey"
check "wrong API key: not called retryable" bash -c "! grep -q 'later try may succeed' '$tmp/badkey'"
check "wrong API key: the key is not printed" bash -c "! grep -qF -- '$BADKEY' '$tmp/badkey'"

# --- a zone the server does not have
out missing ensure pdns "_validation-persist.x.$ZMISSING" "$V1"
check_eq "missing zone exits 1" "$?" 1
check "missing zone: the message names the zone" grep -q "zone $ZMISSING" "$tmp/missing"

# --- PowerDNS refuses a change (422): its reason is passed on
curl -sf --noproxy '*' -o /dev/null -X PATCH -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
	-d "{\"rrsets\": [{\"name\": \"cname.$Z1.\", \"type\": \"CNAME\", \"ttl\": 60, \"changetype\": \"REPLACE\", \"records\": [{\"content\": \"elsewhere.example.\", \"disabled\": false}]}]}" \
	"$API/zones/$Z1."
out refused ensure pdns "cname.$Z1" "$V1"
check_eq "a TXT beside a CNAME exits 1" "$?" 1
check "the refusal carries PowerDNS's reason" grep -q "422.*Conflicts with pre-existing RRset" "$tmp/refused"

# --- the real key never appears in anything certfleet printed
check "the API key is never printed" bash -c "! cat '$tmp'/ensure* '$tmp'/remove* '$tmp'/verify* '$tmp'/missing '$tmp'/refused | grep -qF -- '$KEY'"

# --- the server gone: a failure worth retrying
"$repo/scripts/pdns.sh" stop "$pdir" >/dev/null 2>&1
out down ensure pdns "$N1" "$V1"
check_eq "unreachable API exits 1" "$?" 1
check "unreachable API: named and retryable" grep -q "pdns.*a later try may succeed" "$tmp/down"

finish
