#!/usr/bin/env bash
# test_secrets.sh - what keeps keys and credentials from leaking: only https to the CA and the
# provider APIs (plain http only to a loopback host, and only when allowed); no core dump and no
# ptrace of a process that holds keys (RLIMIT_CORE 0, PR_SET_DUMPABLE 0).
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT

# --- https only: an http:// directory on a host other than loopback is refused, option or not
for allow in 0 1; do
	for cmd in "account register --agree-tos" "run --no-progress"; do
		CERTFLEET_ALLOW_HTTP_LOOPBACK=$allow CERTFLEET_DIRECTORY="http://ca.$ZONE/dir" \
			"$CF" $cmd >"$tmp/out" 2>&1
		rc=$?
		check_eq "${cmd%% *} with an http:// directory off loopback (allow=$allow) exits 2" "$rc" 2
		check "${cmd%% *} names the refused URL (allow=$allow)" \
			grep -qF "ACME directory http://ca.$ZONE/dir: plain http is refused" "$tmp/out"
	done
done
check_eq "nothing was registered" "$(sql "SELECT count(*) FROM accounts")" 0

# --- plain http on loopback: refused without the option, works with it. The directory is
# served over http on 127.0.0.1 and names Pebble's https endpoints.
curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$CERTFLEET_DIRECTORY" >"$tmp/dir"
mkdir -p "$tmp/www" && cp "$tmp/dir" "$tmp/www/dir"
for try in 1 2 3 4 5; do
	port=$(random_port)
	python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$port" >/dev/null 2>&1 &
	srv=$!
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/dir" >/dev/null && break 2; sleep 0.1; done
	kill $srv 2>/dev/null
done
LOOP_DIR="http://127.0.0.1:$port/dir"
CERTFLEET_ALLOW_HTTP_LOOPBACK=0 CERTFLEET_DIRECTORY="$LOOP_DIR" "$CF" account register --agree-tos >"$tmp/out" 2>&1
check_eq "an http:// directory on loopback without the option exits 2" "$?" 2
check "the message names the URL and the option" grep -qF "ACME directory $LOOP_DIR: plain http is refused; use https, or allow plain http to this loopback host with --allow-http-loopback" "$tmp/out"
CERTFLEET_ALLOW_HTTP_LOOPBACK=0 CERTFLEET_DIRECTORY="$LOOP_DIR" "$CF" account register --agree-tos \
	--allow-http-loopback >"$tmp/out" 2>&1
check_eq "with --allow-http-loopback an http:// directory on loopback works" "$?" 0
check_eq "the account is stored for it" "$(sql "SELECT count(*) FROM accounts WHERE directory_url = '$LOOP_DIR'")" 1
kill $srv 2>/dev/null

# --- provider APIs: challtestsrv's http URL on loopback needs the option; off loopback never
N="_validation-persist.s1.$ZONE"
CERTFLEET_ALLOW_HTTP_LOOPBACK=0 "$CF" provider ensure challtestsrv "$N" "v1" >"$tmp/out" 2>&1
check_eq "a provider API on http loopback without the option exits 2" "$?" 2
check "the message names the account and URL" grep -qF "provider challtestsrv: \"url\" $CERTFLEET_CHALLTESTSRV_URL: plain http is refused" "$tmp/out"
"$CF" provider ensure challtestsrv "$N" "v1" >"$tmp/out" 2>&1
check_eq "with the option it works" "$?" 0
printf '{ "providers": { "cf": { "type": "cloudflare", "api_url": "http://api.%s/client/v4", "api_token": "t" } } }\n' \
	"$ZONE" >"$tmp/p.json"
chmod 600 "$tmp/p.json"
CERTFLEET_PROVIDERS="$tmp/p.json" "$CF" provider ensure cf "$N" "v1" >"$tmp/out" 2>&1
check_eq "a provider API on http off loopback exits 2, option or not" "$?" 2
check "the message names the account and URL" grep -qF "provider cf: \"api_url\" http://api.$ZONE/client/v4: plain http is refused" "$tmp/out"

# --- a database off loopback must be verified (sslmode=verify-full) unless the operator opts out
REMOTE="postgresql://certfleet:db-secret@db.$ZONE:5432/certfleet?connect_timeout=1"
for cmd in status "enqueue x.$ZONE" "run --no-progress" "cancel --all"; do
	CERTFLEET_DB="$REMOTE" "$CF" $cmd >"$tmp/out" 2>&1
	rc=$?
	check_eq "${cmd%% *} with an unverified remote database exits 2" "$rc" 2
	check "${cmd%% *}: the message names the host and sslmode=verify-full, not the password" \
		bash -c "grep -q 'database server db.$ZONE is not on a loopback address.*sslmode=verify-full' '$tmp/out' && ! grep -q db-secret '$tmp/out'"
done
CERTFLEET_DB="$REMOTE&sslmode=verify-full" "$CF" status >"$tmp/out" 2>&1
check_eq "with sslmode=verify-full it tries to connect (and fails: no such host)" "$?" 1
CERTFLEET_DB_ALLOW_PLAINTEXT=1 CERTFLEET_DB="$REMOTE" "$CF" status >"$tmp/out" 2>&1
check_eq "with CERTFLEET_DB_ALLOW_PLAINTEXT=1 it tries to connect" "$?" 1
check "status on the loopback database works as before" bash -c "'$CF' status >/dev/null"

# --- run holds keys: its core limit is 0 and it is not dumpable. A process that is not dumpable
# has the files in its /proc/PID owned by root, so run runs as nobody here to tell the two apart.
check "account register for Pebble" register
ntmp=$(mktemp -d)
cp "$CERTFLEET_KEK_FILE" "$ntmp/kek"
chown -R 65534 "$ntmp"
setpriv --reuid=65534 --regid=65534 --clear-groups env CERTFLEET_JOURNAL="$ntmp/journal" CERTFLEET_KEK_FILE="$ntmp/kek" \
	"$CF" run --follow --poll-only --no-progress >"$tmp/run.out" 2>&1 &
rpid=$!
for _ in $(seq 100); do grep -q "run: account" "$tmp/run.out" 2>/dev/null && break; sleep 0.1; done
if grep -q "run: account" "$tmp/run.out"; then
	check_eq "run: core file size limit 0" "$(awk '/^Max core file size/ { print $5 " " $6 }' "/proc/$rpid/limits")" "0 0"
	check_eq "run: not dumpable (its /proc/PID/status belongs to root, not to nobody)" "$(stat -c %u "/proc/$rpid/status")" 0
	check_eq "run: it runs as nobody" "$(awk '/^Uid:/ { print $2 }' "/proc/$rpid/status")" 65534
else
	not_ok "run as nobody started ($(head -c 300 "$tmp/run.out"))"
fi
kill -TERM "$rpid" 2>/dev/null
wait "$rpid" 2>/dev/null
# a process that holds no key stays as it was: its /proc/PID files are its user's
setpriv --reuid=65534 --regid=65534 --clear-groups sleep 5 &
spid=$!
sleep 0.2
check_eq "a plain process of nobody: its /proc/PID/status is nobody's (the check above can fail)" "$(stat -c %u "/proc/$spid/status")" 65534
kill "$spid"
rm -rf "$ntmp"

finish
