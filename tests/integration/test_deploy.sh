#!/usr/bin/env bash
# test_deploy.sh - the hand-off to servers, with a real nginx: NOTIFY certfleet_issued for each
# certificate stored, with its ids; an exported certificate served by nginx with its full chain;
# a failing hook recorded with its exit code, its environment the allowlist alone, retried by the
# next deploy; deploy --follow delivers a renewal, nginx reloaded by the hook serves the new serial
# within seconds, also after its database connection was cut; bad hooks and folders exit 2.
. "$(dirname "$0")/lib.sh"

require_tools "nginx, openssl" nginx openssl
db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
ngx=""
follow=""
cleanup() {
	[ -n "$follow" ] && kill "$follow" 2>/dev/null
	[ -n "$ngx" ] && [ -f "$tmp/nginx/nginx.pid" ] && kill "$(cat "$tmp/nginx/nginx.pid")" 2>/dev/null
	exec 7>&- 8<&- 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
web="web.$ZONE"
certs=$tmp/certs
pebble_chain_files "$tmp/root.pem" "$tmp/inter.pem"
serial_of() { sql "SELECT r.serial FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND '$1' = ANY(c.names)"; }
hex() { tr A-F a-f | sed 's/^0*//'; }

# A session that LISTENs before the run: psql prints the notifications after its next command.
mkfifo "$tmp/lin" "$tmp/lout"
psql -qAt "$CERTFLEET_DB" <"$tmp/lin" >"$tmp/lout.txt" 2>&1 &
exec 7>"$tmp/lin"
echo "LISTEN certfleet_issued; SELECT 'listening';" >&7
for _ in $(seq 50); do grep -q listening "$tmp/lout.txt" && break; sleep 0.1; done
"$CF" enqueue "$web" "other.$ZONE" >/dev/null
"$CF" run --workers 1 --no-progress >"$tmp/run.out" 2>&1
check_eq "2 certificates issued" "$(sql "SELECT count(*) FROM results WHERE is_current")" 2
echo "SELECT 'done';" >&7
for _ in $(seq 50); do grep -q '^done' "$tmp/lout.txt" && break; sleep 0.1; done
exec 7>&-
grep -o 'payload "[0-9]* [0-9]*"' "$tmp/lout.txt" | sed 's/payload "\(.*\)"/\1/' | sort >"$tmp/payloads"
check_eq "one NOTIFY certfleet_issued per certificate, payload \"certificate result\"" "$(cat "$tmp/payloads")" \
	"$(sql "SELECT certificate_id || ' ' || id FROM results ORDER BY 1")"

# nginx serves the exported certificate: that serial, the full chain, verified by Pebble's root.
"$CF" export "$certs" --name "$web" >/dev/null 2>&1
mkdir -p "$tmp/nginx/logs"
serve() {
	local port
	for _ in 1 2 3 4 5; do
		port=$(random_port)
		cat >"$tmp/nginx/nginx.conf" <<CONF
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/body; proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi; uwsgi_temp_path $tmp/nginx/uwsgi; scgi_temp_path $tmp/nginx/scgi;
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $certs/$web/fullchain.pem;
		ssl_certificate_key $certs/$web/key.pem;
		location / { return 200 "ok\n"; }
	}
}
CONF
		if nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" 2>"$tmp/nginx/start.err"; then
			ngx=$port
			return 0
		fi
	done
	return 1
}
check "nginx starts with the exported certificate" serve
# served_serial: the serial nginx serves; chain_count: the certificates it sends
s_client() { openssl s_client -connect "127.0.0.1:$ngx" -servername "$web" -showcerts "$@" </dev/null 2>/dev/null; }
served_serial() { s_client | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2 | hex; }
s_client -CAfile "$tmp/root.pem" -verify_return_error >"$tmp/s1.out"
check_eq "s_client sees the issued serial" "$(served_serial)" "$(serial_of "$web" | hex)"
check_eq "nginx sends the full chain (leaf and intermediate)" "$(grep -c 'BEGIN CERTIFICATE' "$tmp/s1.out")" 2
check "the chain verifies against Pebble's root" grep -q 'Verify return code: 0 (ok)' "$tmp/s1.out"

# Bad hooks and folders: exit 2 naming them, nothing done.
printf '#!/bin/sh\nexit 0\n' >"$tmp/noexec.sh"
"$CF" deploy "$certs" --hook "$tmp/noexec.sh" >"$tmp/bad1" 2>&1
check_eq "a hook that is not executable exits 2" "$?" 2
check "the error names it" grep -q "$tmp/noexec.sh: not an executable file" "$tmp/bad1"
"$CF" deploy "$certs" --hook "$tmp/nosuch" >/dev/null 2>&1
check_eq "a hook that does not exist exits 2" "$?" 2
ln -s "$certs" "$tmp/certlink"
printf '#!/bin/sh\nexit 0\n' >"$tmp/true.sh" && chmod +x "$tmp/true.sh"
"$CF" deploy "$tmp/certlink" --hook "$tmp/true.sh" >"$tmp/bad3" 2>&1
check_eq "a deploy folder that is a symbolic link exits 2" "$?" 2
check_eq "nothing deployed nor recorded after bad input" "$(sql "SELECT count(*) FROM deploy_events") $(sql "SELECT count(*) FROM results WHERE deployed_at IS NOT NULL")" "0 0"

# A failing hook: recorded with its exit code and output, the results stay undeployed. Its
# environment holds PATH and certfleet's variables alone.
cat >"$tmp/fail.sh" <<HOOK
#!/bin/sh
env | sort >"$tmp/env.\$CERTFLEET_RESULT_ID"
echo "reload refused for \$1"
exit 7
HOOK
chmod +x "$tmp/fail.sh"
CERTFLEET_SECRET_PROBE=leak "$CF" deploy "$certs" --hook "$tmp/fail.sh" >"$tmp/fail.out" 2>&1
check_eq "deploy with a failing hook exits 3" "$?" 3
check_eq "a hook event per certificate with exit code 7" "$(sql "SELECT count(*) FROM deploy_events WHERE kind = 'hook' AND exit_code = 7")" 2
check "the event keeps the hook's output" test "$(sql "SELECT detail FROM deploy_events e JOIN certificates c ON c.id = e.certificate_id WHERE kind = 'hook' AND '$web' = ANY(c.names)")" = "reload refused for $certs/$web"
check_eq "both results stay undeployed" "$(sql "SELECT count(*) FROM results WHERE is_current AND deployed_at IS NULL")" 2
rid=$(sql "SELECT r.id FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND '$web' = ANY(c.names)")
check_eq "the hook's environment: PATH and CERTFLEET_ variables of the certificate alone" \
	"$(cut -d= -f1 "$tmp/env.$rid" | grep -v '^PWD$\|^SHLVL$\|^_$' | tr '\n' ' ')" \
	"CERTFLEET_CERTIFICATE_ID CERTFLEET_CERT_FILE CERTFLEET_CHAIN_FILE CERTFLEET_CHANGED CERTFLEET_DEPLOY_DIR CERTFLEET_FULLCHAIN_FILE CERTFLEET_HAPROXY_FILE CERTFLEET_KEY_FILE CERTFLEET_NAME CERTFLEET_NAMES CERTFLEET_NOT_AFTER CERTFLEET_RESULT_ID CERTFLEET_SERIAL PATH "
check "the hook gets the serial" grep -qx "CERTFLEET_SERIAL=$(serial_of "$web")" "$tmp/env.$rid"
check "... and the key file's path" grep -qx "CERTFLEET_KEY_FILE=$certs/$web/key.pem" "$tmp/env.$rid"
check_eq "nothing of the parent's environment (database, key-encryption key)" \
	"$(grep -c 'CERTFLEET_DB\|CERTFLEET_KEK\|CERTFLEET_SECRET_PROBE\|postgresql:' "$tmp/env.$rid")" 0

# deploy --follow, with a hook that reloads nginx: catches up on the failed results, then
# delivers the renewal that a run stores; survives its connection being cut.
cat >"$tmp/reload.sh" <<HOOK
#!/bin/sh
echo "\$CERTFLEET_NAME \$CERTFLEET_SERIAL" >>"$tmp/reloads"
[ "\$CERTFLEET_NAME" = "$web" ] || exit 0
exec nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" -s reload
HOOK
chmod +x "$tmp/reload.sh"
"$CF" deploy "$certs" --hook "$tmp/reload.sh" --follow >"$tmp/follow.out" 2>"$tmp/follow.err" &
follow=$!
undeployed() { sql "SELECT count(*) FROM results WHERE is_current AND deployed_at IS NULL"; }
for _ in $(seq 100); do [ "$(undeployed)" = 0 ] && break; sleep 0.1; done
check_eq "the failed results are retried by the next deploy, and deployed" "$(undeployed)" 0
check_eq "each retried with a hook that exited 0" "$(sql "SELECT count(DISTINCT result_id) FROM deploy_events WHERE kind = 'hook' AND exit_code = 0")" 2
old=$(serial_of "$web")
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
"$CF" enqueue "$web" >/dev/null
"$CF" run --workers 1 --no-progress >>"$tmp/run.out" 2>&1
new=$(serial_of "$web")
check "$web renewed" test -n "$new" -a "$new" != "$old"
start=$(date +%s%N)
want=$(echo "$new" | hex)
for _ in $(seq 150); do [ "$(served_serial)" = "$want" ] && break; sleep 0.1; done
check_eq "deploy --follow exported the renewal and the hook reloaded nginx: s_client sees the new serial" "$(served_serial)" "$want"
echo "# new serial served $(( ($(date +%s%N) - start) / 1000000 )) ms after the run ended"
check "the renewal's files changed: cert.pem holds the new serial" test "$(openssl x509 -in "$certs/$web/cert.pem" -noout -serial | cut -d= -f2 | hex)" = "$want"
check "deploy --follow made its lost connection again" grep -q 'connecting again' "$tmp/follow.err"
check_eq "the renewal is marked deployed" "$(sql "SELECT deployed_at IS NOT NULL FROM results WHERE serial = '$new'")" t
kill -TERM "$follow"
wait "$follow"
check_eq "SIGTERM ends deploy --follow cleanly (exit 0)" "$?" 0
follow=""
check "its summary" grep -q '^deploy: 3 deployed' "$tmp/follow.out"

# A deploy with nothing new does nothing.
"$CF" deploy "$certs" --hook "$tmp/fail.sh" >"$tmp/idle.out" 2>&1
check_eq "nothing undeployed: exit 0, no hook run" "$?/$(grep -c '^deployed\|^failed' "$tmp/idle.out")" "0/0"

# The certfleet_run role is enough to deploy (results.deployed_at, deploy_events).
role="deploy_run_$RUN_ID"
sql "CREATE ROLE $role LOGIN IN ROLE certfleet_run" || not_ok "create a login role"
sql "UPDATE results SET deployed_at = NULL WHERE is_current AND certificate_id = (SELECT id FROM certificates WHERE names = ARRAY['other.$ZONE'])"
CERTFLEET_DB="${CERTFLEET_DB/\/\/*@/\/\/$role@}" "$CF" deploy "$certs" --hook "$tmp/true.sh" >"$tmp/role.out" 2>&1
check_eq "deploy as a login role of certfleet_run: exit 0, one certificate deployed" \
	"$?/$(grep -c '^deployed: ' "$tmp/role.out")/$(sql "SELECT count(*) FROM results WHERE is_current AND deployed_at IS NULL")" "0/1/0"
sql "DROP OWNED BY $role; DROP ROLE $role" >/dev/null

finish
