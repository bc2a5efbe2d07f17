#!/usr/bin/env bash
# test_cloudflare.sh - the cloudflare provider against tests/fakes/cloudflare.py (Cloudflare's API
# cannot be reached from here; the fake checks every request against the documented format and
# publishes the zone to pebble-challtestsrv): three records in one batch request with no malformed
# request, ensure idempotent, values certfleet did not write kept through ensure and remove,
# removal of exactly ours, a zone-wide listing for larger batches, a refused token named (and
# never printed), 500s reported retryable, 429s absorbed, and requests spaced by the rate limit.
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
FAKE_DIR="$tmp"
. "$repo/tests/fakes/fake.sh"
trap 'fake_stop; [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"' EXIT

require_tools "scripts/install-deps.sh" python3 dig curl

N1="_validation-persist.h1.$ZONE"
N2="_validation-persist.h2.$ZONE"
N3="_validation-persist.h3.$ZONE"
N4="_validation-persist.h4.$ZONE"
V1="letsencrypt.org; accounturi=https://ca.example/acct/$RUN_ID"
V2="letsencrypt.org; accounturi=https://ca.example/acct/$RUN_ID; policy=wildcard"
# longer than one 255-octet character-string
V3="letsencrypt.org; accounturi=https://ca.example/acct/$(printf 'x%.0s' $(seq 1 260))/$RUN_ID"
FOREIGN="google-site-verification=$RUN_ID"
TOKEN="cf-token-$RUN_ID-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
BADTOKEN="cf-wrong-$RUN_ID-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$TOKEN" >"$tmp/token"
chmod 0600 "$tmp/token"

fake_start main cloudflare --token-file "$tmp/token" --zone "$ZONE" || { not_ok "fake starts"; finish; exit 1; }
P_MAIN=$FAKE_PORT
fake_start flaky cloudflare --token-file "$tmp/token" --zone "flaky-$ZONE" --fail-first 2 \
	--fail-status 500 || { not_ok "flaky fake starts"; finish; exit 1; }
P_FLAKY=$FAKE_PORT
fake_start busy cloudflare --token-file "$tmp/token" --zone "busy-$ZONE" --fail-first 2 \
	--fail-status 429 --retry-after 1 || { not_ok "busy fake starts"; finish; exit 1; }
P_BUSY=$FAKE_PORT
fake_start slow cloudflare --token-file "$tmp/token" --zone "slow-$ZONE" ||
	{ not_ok "slow fake starts"; finish; exit 1; }
P_SLOW=$FAKE_PORT
ok "fakes start (ports $P_MAIN $P_FLAKY $P_BUSY $P_SLOW)"

VERIFY="\"verify\": { \"servers\": [\"$CERTFLEET_CHALLTESTSRV_DNS\"], \"require_aa\": false, \"deadline\": 5, \"timeout\": 1 }"
cat >"$tmp/providers.json" <<EOF
{ "providers": {
    "cf": { "type": "cloudflare", "api_url": "http://127.0.0.1:$P_MAIN/client/v4",
            "api_token_file": "$tmp/token", "zones": ["$ZONE"], $VERIFY },
    "cf-badtoken": { "type": "cloudflare", "api_url": "http://127.0.0.1:$P_MAIN/client/v4/",
            "api_token": "$BADTOKEN", "zones": ["$ZONE"] },
    "cf-flaky": { "type": "cloudflare", "api_url": "http://127.0.0.1:$P_FLAKY/client/v4",
            "api_token_file": "$tmp/token", "zones": ["flaky-$ZONE"] },
    "cf-busy": { "type": "cloudflare", "api_url": "http://127.0.0.1:$P_BUSY/client/v4",
            "api_token_file": "$tmp/token", "zones": ["busy-$ZONE"] },
    "cf-slow": { "type": "cloudflare", "api_url": "http://127.0.0.1:$P_SLOW/client/v4",
            "api_token_file": "$tmp/token", "zones": ["slow-$ZONE"], "rate": "5/s:1", "batch": 1 },
    "cf-down": { "type": "cloudflare", "api_url": "http://127.0.0.1:1/client/v4",
            "api_token_file": "$tmp/token", "zones": ["$ZONE"] } } }
EOF
chmod 0600 "$tmp/providers.json"
export CERTFLEET_PROVIDERS="$tmp/providers.json"

batches() { fake_count main '^[0-9.]+ POST /client/v4/zones/[0-9a-f]+/dns_records/batch 200$'; }
lists() { fake_count main '^[0-9.]+ GET /client/v4/zones/[0-9a-f]+/dns_records\?'; }

# --- ensure: three records in one batch request, checked by the fake
out ensure1 ensure cf "$N1" "$V1" "$N2" "$V2" "$N3" "$V3"
check_eq "ensure 3 records exits 0" "$?" 0
check_eq "one batch request for 3 records" "$(batches)" 1
check_eq "no malformed request" "$(fake_stat "$P_MAIN" malformed)" 0
check_eq "no refused request" "$(fake_stat "$P_MAIN" rejected)" 0
check_eq "record 1 served" "$(dns_txt "$N1")" "$V1"
check_eq "record 2 served" "$(dns_txt "$N2")" "$V2"
check_eq "record 3 (two character-strings) served" "$(dns_txt "$N3")" "$V3"
check "verify finds the records" out verify1 verify cf "$N1" "$V1" "$N2" "$V2" "$N3" "$V3"

# --- ensure again: nothing to write
b=$(batches)
out ensure2 ensure cf "$N1" "$V1" "$N2" "$V2" "$N3" "$V3"
check_eq "ensure again exits 0" "$?" 0
check_eq "ensure again sends no batch" "$(($(batches) - b))" 0

# --- values another client wrote survive ensure and remove
fake_seed "$P_MAIN" "$N1" "$FOREIGN"
fake_seed "$P_MAIN" "$N4" "$V1" raw    # ours, in the legacy unquoted form
b=$(batches)
out ensure3 ensure cf "$N1" "$V1" "$N4" "$V1"
check_eq "ensure beside a foreign value exits 0" "$?" 0
check_eq "ours present (quoted or not): no batch" "$(($(batches) - b))" 0
out ensure4 ensure cf "$N1" "$V2"
check_eq "ensure a second value of ours exits 0" "$?" 0
check_eq "ensure keeps the foreign value" "$(dns_txt "$N1")" "$(printf '%s\n' "$FOREIGN" "$V1" "$V2" | sort)"
out remove1 remove cf "$N1" "$V1" "$N1" "$V2"
check_eq "remove ours beside a foreign value exits 0" "$?" 0
check_eq "remove keeps only the foreign value" "$(dns_txt "$N1")" "$FOREIGN"
check_eq "the fake agrees" "$(fake_values "$P_MAIN" "$N1")" "$FOREIGN"

# --- remove: only ours goes; removing again writes nothing
out remove2 remove cf "$N2" "$V2" "$N3" "$V3" "$N4" "$V1"
check_eq "remove 3 records exits 0" "$?" 0
check_eq "record 2 gone" "$(dns_txt "$N2")" ""
check_eq "record 3 gone" "$(dns_txt "$N3")" ""
check_eq "record 4 (legacy form) gone" "$(dns_txt "$N4")" ""
b=$(batches)
out remove3 remove cf "$N2" "$V2" "$N3" "$V3"
check_eq "remove again exits 0" "$?" 0
check_eq "remove again sends no batch" "$(($(batches) - b))" 0
out verify2 verify cf "$N3" "$V3"
check_eq "verify after remove exits 1" "$?" 1

# --- more names than are worth one list request each: one listing of the zone's TXT records
l=$(lists)
b=$(batches)
args=()
for i in 1 2 3 4 5 6; do args+=("_validation-persist.m$i.$ZONE" "$V1"); done
out ensure5 ensure cf "${args[@]}"
check_eq "ensure 6 records exits 0" "$?" 0
check_eq "6 records: one list request" "$(($(lists) - l))" 1
check_eq "6 records: one batch request" "$(($(batches) - b))" 1
check_eq "record m6 served" "$(dns_txt "_validation-persist.m6.$ZONE")" "$V1"
check_eq "still no malformed request" "$(fake_stat "$P_MAIN" malformed)" 0

# --- a refused token: not retryable, named, never printed
out badtoken ensure cf-badtoken "$N1" "$V1"
check_eq "wrong token exits 1" "$?" 1
check "wrong token: the message names the account" grep -q 'cloudflare account "cf-badtoken"' "$tmp/badtoken"
check "wrong token: the message says the credentials were rejected" grep -q "credentials rejected" "$tmp/badtoken"
check "wrong token: not called retryable" bash -c "! grep -q 'later try may succeed' '$tmp/badtoken'"
check "wrong token: the token is not printed" bash -c "! grep -qF -- '$BADTOKEN' '$tmp/badtoken'"
check_eq "the fake saw one refused token" "$(fake_stat "$P_MAIN" auth_failures)" 1

# --- 500 twice, then success: each 500 is a clear, retryable failure of the command
out flaky1 ensure cf-flaky "_validation-persist.f.flaky-$ZONE" "$V1"
check_eq "first 500: exits 1" "$?" 1
check "first 500: named, HTTP 500, retryable" grep -q 'cloudflare account "cf-flaky".*HTTP 500.*later try may succeed' "$tmp/flaky1"
out flaky2 ensure cf-flaky "_validation-persist.f.flaky-$ZONE" "$V1"
check_eq "second 500: exits 1" "$?" 1
out flaky3 ensure cf-flaky "_validation-persist.f.flaky-$ZONE" "$V1"
check_eq "then it succeeds" "$?" 0
check_eq "and the record is served" "$(dns_txt "_validation-persist.f.flaky-$ZONE")" "$V1"

# --- 429 twice with Retry-After: 1: absorbed by the rate limiter, the command succeeds
start=$(date +%s%N)
out busy ensure cf-busy "_validation-persist.b.busy-$ZONE" "$V1"
check_eq "429 twice: exits 0" "$?" 0
check_eq "two 429s were answered" "$(fake_count busy ' 429 injected')" 2
check "Retry-After was waited for (2 s or more)" test $(( ($(date +%s%N) - start) / 1000000 )) -ge 1900
check_eq "429s: record served" "$(dns_txt "_validation-persist.b.busy-$ZONE")" "$V1"

# --- the rate limit spaces requests: "5/s:1" means 200 ms apart
args=()
for i in 1 2 3 4; do args+=("_validation-persist.s$i.slow-$ZONE" "$V1"); done
out slow ensure cf-slow "${args[@]}"
check_eq "rate-limited ensure of 4 calls exits 0" "$?" 0
gaps=$(awk '{ if (NR > 1) { g = $1 - prev; if (min == "" || g < min) min = g } prev = $1; n++ }
	END { printf "%d %d %d", n, min, prev - first }; NR == 1 { first = $1 }' "$tmp/slow.log")
read -r nreq mingap span <<<"$gaps"
check "rate limit: at least 8 requests logged ($nreq)" test "$nreq" -ge 8
check "rate limit: no two requests closer than 150 ms (closest $mingap ms)" test "$mingap" -ge 150
check "rate limit: $nreq requests took at least $(( (nreq - 1) * 180 )) ms ($span ms)" \
	test "$span" -ge $(( (nreq - 1) * 180 ))

# --- the API unreachable: a failure worth retrying
out down ensure cf-down "$N1" "$V1"
check_eq "unreachable API exits 1" "$?" 1
check "unreachable API: named and retryable" grep -q 'cloudflare account "cf-down".*later try may succeed' "$tmp/down"

# --- the real token never appears in anything certfleet printed
check "the token is never printed" bash -c "! cat '$tmp'/ensure* '$tmp'/remove* '$tmp'/verify* '$tmp'/flaky* '$tmp'/busy '$tmp'/slow '$tmp'/down | grep -qF -- '$TOKEN'"
check_eq "no malformed request in any fake" \
	"$(( $(fake_stat "$P_MAIN" malformed) + $(fake_stat "$P_FLAKY" malformed) + $(fake_stat "$P_BUSY" malformed) + $(fake_stat "$P_SLOW" malformed) ))" 0

finish
