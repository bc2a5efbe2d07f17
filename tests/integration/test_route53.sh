#!/usr/bin/env bash
# test_route53.sh - the route53 provider against tests/fakes/route53.py (AWS cannot be reached from
# here; the fake recomputes every SigV4 signature with the configured secret, checks the XML
# ChangeBatch against the documented structure and limits, keeps changes PENDING for a second and
# publishes them to pebble-challtestsrv when they turn INSYNC): three records in one change batch
# waited for INSYNC, ensure idempotent, values certfleet did not write kept through ensure and
# remove, an emptied record set deleted, refused credentials named (and never printed), 500s
# reported retryable, Throttling absorbed, and temporary credentials with a session token.
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
V1="letsencrypt.org; accounturi=https://ca.example/acct/$RUN_ID"
V2="letsencrypt.org; accounturi=https://ca.example/acct/$RUN_ID; policy=wildcard"
# longer than one 255-octet character-string
V3="letsencrypt.org; accounturi=https://ca.example/acct/$(printf 'x%.0s' $(seq 1 260))/$RUN_ID"
FOREIGN="google-site-verification=$RUN_ID"
AKID="AKIDCERTFLEET$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
SECRET="r53secret/$RUN_ID+$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
BADSECRET="r53wrong/$RUN_ID+$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
STOKEN="FwoGZXIvYXdzE$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$AKID" >"$tmp/akid"
printf '%s\n' "$SECRET" >"$tmp/secret"
printf '%s\n' "$BADSECRET" >"$tmp/wrong-secret"
printf '%s\n' "$STOKEN" >"$tmp/stoken"
chmod 0600 "$tmp/akid" "$tmp/secret" "$tmp/wrong-secret" "$tmp/stoken"

fake_start main route53 --access-key-id "$AKID" --secret-file "$tmp/secret" --zone "$ZONE" \
	--insync-after 1 || { not_ok "fake starts"; finish; exit 1; }
P_MAIN=$FAKE_PORT
fake_start flaky route53 --access-key-id "$AKID" --secret-file "$tmp/secret" --zone "flaky-$ZONE" \
	--fail-first 2 --fail-status 500 || { not_ok "flaky fake starts"; finish; exit 1; }
P_FLAKY=$FAKE_PORT
fake_start throttled route53 --access-key-id "$AKID" --secret-file "$tmp/secret" \
	--zone "throttled-$ZONE" --fail-first 2 --fail-code Throttling ||
	{ not_ok "throttled fake starts"; finish; exit 1; }
P_THROTTLED=$FAKE_PORT
fake_start sts route53 --access-key-id "$AKID" --secret-file "$tmp/secret" \
	--session-token-file "$tmp/stoken" --zone "sts-$ZONE" || { not_ok "sts fake starts"; finish; exit 1; }
P_STS=$FAKE_PORT
ok "fakes start (ports $P_MAIN $P_FLAKY $P_THROTTLED $P_STS)"

ZONE_ID=$(curl -sf --noproxy '*' "http://127.0.0.1:$P_MAIN/__fake/stats" >/dev/null &&
	python3 -c 'import hashlib, sys; print("Z" + hashlib.sha256(sys.argv[1].encode()).hexdigest()[:13].upper())' "$ZONE")
VERIFY="\"verify\": { \"servers\": [\"$CERTFLEET_CHALLTESTSRV_DNS\"], \"require_aa\": false, \"deadline\": 5, \"timeout\": 1 }"
CRED="\"access_key_id_file\": \"$tmp/akid\", \"secret_access_key_file\": \"$tmp/secret\""
cat >"$tmp/providers.json" <<EOF
{ "providers": {
    "r53": { "type": "route53", "endpoint": "http://127.0.0.1:$P_MAIN", $CRED,
             "zones": ["$ZONE"], $VERIFY },
    "r53-ids": { "type": "route53", "endpoint": "http://127.0.0.1:$P_MAIN/", $CRED, "ttl": 120,
             "hosted_zone_ids": { "$ZONE": "/hostedzone/$ZONE_ID" }, "zones": ["$ZONE"] },
    "r53-badsecret": { "type": "route53", "endpoint": "http://127.0.0.1:$P_MAIN",
             "access_key_id_file": "$tmp/akid", "secret_access_key_file": "$tmp/wrong-secret",
             "zones": ["$ZONE"] },
    "r53-badkey": { "type": "route53", "endpoint": "http://127.0.0.1:$P_MAIN",
             "access_key_id": "AKIDNOTKNOWN", "secret_access_key_file": "$tmp/secret",
             "zones": ["$ZONE"] },
    "r53-flaky": { "type": "route53", "endpoint": "http://127.0.0.1:$P_FLAKY", $CRED,
             "zones": ["flaky-$ZONE"] },
    "r53-throttled": { "type": "route53", "endpoint": "http://127.0.0.1:$P_THROTTLED", $CRED,
             "zones": ["throttled-$ZONE"] },
    "r53-sts": { "type": "route53", "endpoint": "http://127.0.0.1:$P_STS", $CRED,
             "session_token_file": "$tmp/stoken", "zones": ["sts-$ZONE"] },
    "r53-down": { "type": "route53", "endpoint": "http://127.0.0.1:1", $CRED,
             "zones": ["$ZONE"] } } }
EOF
chmod 0600 "$tmp/providers.json"
export CERTFLEET_PROVIDERS="$tmp/providers.json"

changes() { fake_count main '^[0-9.]+ POST /2013-04-01/hostedzone/[A-Z0-9]+/rrset/ 200$'; }
polls() { fake_count main '^[0-9.]+ GET /2013-04-01/change/[A-Z0-9]+ 200$'; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# --- ensure: three records in one change batch, reported only once INSYNC
p0=$(polls)
t0=$(ms)
out ensure1 ensure r53 "$N1" "$V1" "$N2" "$V2" "$N3" "$V3"
check_eq "ensure 3 records exits 0" "$?" 0
elapsed=$(( $(ms) - t0 ))
check_eq "one ChangeResourceRecordSets for 3 records" "$(changes)" 1
check_eq "no malformed request (signatures and XML checked)" "$(fake_stat "$P_MAIN" malformed)" 0
check_eq "no signature refused" "$(fake_stat "$P_MAIN" auth_failures)" 0
check "waited for INSYNC: at least 1 s ($elapsed ms)" test "$elapsed" -ge 1000
check "polled GetChange" test "$(( $(polls) - p0 ))" -ge 1
check_eq "record 1 served when the command returns" "$(dns_txt "$N1")" "$V1"
check_eq "record 2 served" "$(dns_txt "$N2")" "$V2"
check_eq "record 3 (two character-strings) served" "$(dns_txt "$N3")" "$V3"
check "verify finds the records" out verify1 verify r53 "$N1" "$V1" "$N2" "$V2" "$N3" "$V3"

# --- ensure again: nothing to write, nothing to wait for
c=$(changes)
out ensure2 ensure r53 "$N1" "$V1" "$N2" "$V2" "$N3" "$V3"
check_eq "ensure again exits 0" "$?" 0
check_eq "ensure again sends no change" "$(($(changes) - c))" 0

# --- values another client wrote survive ensure and remove (configured zone id, no lookup)
fake_seed "$P_MAIN" "$N1" "$FOREIGN"
c=$(changes)
h=$(fake_count main hostedzonesbyname)
out ensure3 ensure r53-ids "$N1" "$V1"
check_eq "ensure beside a foreign value exits 0" "$?" 0
check_eq "ours present: no change" "$(($(changes) - c))" 0
check_eq "configured hosted_zone_ids: no zone lookup" "$(($(fake_count main hostedzonesbyname) - h))" 0
out ensure4 ensure r53-ids "$N1" "$V2"
check_eq "ensure a second value of ours exits 0" "$?" 0
check_eq "ensure keeps the foreign value" "$(dns_txt "$N1")" "$(printf '%s\n' "$FOREIGN" "$V1" "$V2" | sort)"
out remove1 remove r53 "$N1" "$V1" "$N1" "$V2"
check_eq "remove ours beside a foreign value exits 0" "$?" 0
check_eq "remove keeps only the foreign value" "$(dns_txt "$N1")" "$FOREIGN"
check_eq "the fake agrees" "$(fake_values "$P_MAIN" "$N1")" "$FOREIGN"

# --- remove: an RRset left empty is deleted; removing again writes nothing
out remove2 remove r53 "$N2" "$V2" "$N3" "$V3"
check_eq "remove 2 records exits 0" "$?" 0
check_eq "record 2 gone" "$(dns_txt "$N2")" ""
check_eq "record 3 gone" "$(dns_txt "$N3")" ""
check_eq "the emptied record sets are deleted" "$(fake_values "$P_MAIN" "$N2")$(fake_values "$P_MAIN" "$N3")" ""
c=$(changes)
out remove3 remove r53 "$N2" "$V2" "$N3" "$V3"
check_eq "remove again exits 0" "$?" 0
check_eq "remove again sends no change" "$(($(changes) - c))" 0
check_eq "still no malformed request" "$(fake_stat "$P_MAIN" malformed)" 0
check_eq "no change batch refused" "$(fake_stat "$P_MAIN" rejected)" 0

# --- refused credentials: not retryable, named, never printed
out badsecret ensure r53-badsecret "$N1" "$V1"
check_eq "wrong secret exits 1" "$?" 1
check "wrong secret: the message names the account" grep -q 'route53 account "r53-badsecret"' "$tmp/badsecret"
check "wrong secret: the message says the credentials were rejected" grep -q "credentials rejected.*SignatureDoesNotMatch" "$tmp/badsecret"
check "wrong secret: not called retryable" bash -c "! grep -q 'later try may succeed' '$tmp/badsecret'"
check "wrong secret: the secret is not printed" bash -c "! grep -qF -- '$BADSECRET' '$tmp/badsecret'"
out badkey ensure r53-badkey "$N1" "$V1"
check_eq "unknown access key exits 1" "$?" 1
check "unknown access key: named, credentials rejected" grep -q 'route53 account "r53-badkey".*credentials rejected.*InvalidClientTokenId' "$tmp/badkey"

# --- 500 twice, then success: each 500 is a clear, retryable failure of the command
out flaky1 ensure r53-flaky "_validation-persist.f.flaky-$ZONE" "$V1"
check_eq "first 500: exits 1" "$?" 1
check "first 500: named, HTTP 500, retryable" grep -q 'route53 account "r53-flaky".*HTTP 500.*later try may succeed' "$tmp/flaky1"
out flaky2 ensure r53-flaky "_validation-persist.f.flaky-$ZONE" "$V1"
check_eq "second 500: exits 1" "$?" 1
out flaky3 ensure r53-flaky "_validation-persist.f.flaky-$ZONE" "$V1"
check_eq "then it succeeds" "$?" 0
check_eq "and the record is served" "$(dns_txt "_validation-persist.f.flaky-$ZONE")" "$V1"

# --- Throttling (400) twice: the provider backs off and sends again, the command succeeds
out throttled ensure r53-throttled "_validation-persist.t.throttled-$ZONE" "$V1"
check_eq "Throttling twice: exits 0" "$?" 0
check_eq "two Throttling answers were given" "$(fake_count throttled ' 400 injected')" 2
check_eq "Throttling: record served" "$(dns_txt "_validation-persist.t.throttled-$ZONE")" "$V1"

# --- temporary credentials: the session token is sent and signed
out sts ensure r53-sts "_validation-persist.s.sts-$ZONE" "$V1"
check_eq "session token: exits 0" "$?" 0
check_eq "session token: no request refused" "$(( $(fake_stat "$P_STS" auth_failures) + $(fake_stat "$P_STS" malformed) ))" 0

# --- the API unreachable: a failure worth retrying
out down ensure r53-down "$N1" "$V1"
check_eq "unreachable API exits 1" "$?" 1
check "unreachable API: named and retryable" grep -q 'route53 account "r53-down".*later try may succeed' "$tmp/down"

# --- no secret ever appears in anything certfleet printed
check "no secret is printed" bash -c "! cat '$tmp'/ensure* '$tmp'/remove* '$tmp'/verify* '$tmp'/bad* '$tmp'/flaky* '$tmp'/throttled '$tmp'/sts '$tmp'/down | grep -qF -e '$SECRET' -e '$STOKEN'"
check_eq "no malformed request in any fake" \
	"$(( $(fake_stat "$P_MAIN" malformed) + $(fake_stat "$P_FLAKY" malformed) + $(fake_stat "$P_THROTTLED" malformed) + $(fake_stat "$P_STS" malformed) ))" 0

finish
