#!/usr/bin/env bash
# pdns.sh - a throwaway PowerDNS Authoritative server (gsqlite3 backend, HTTP API) for tests.
#
#   scripts/pdns.sh start DIR PORT_DNS PORT_API ZONE...   create DIR, its zones, start the server
#   scripts/pdns.sh stop DIR                              stop the server started in DIR
#
# start creates DIR/pdns.conf, DIR/pdns.sqlite3 (the Debian schema), one zone per ZONE (SOA, NS
# ns1.ZONE with address 127.0.0.1), and a random API key in DIR/api-key (mode 0600). The server
# answers DNS on 127.0.0.1:PORT_DNS (UDP and TCP) and the API on http://127.0.0.1:PORT_API; it
# runs detached (setsid), logs to DIR/pdns.log (one line per API request) and its pid is in
# DIR/server.pid. start fails, saying why, when a port is busy, a binary or the schema is
# missing, or the API does not answer within PDNS_START_TIMEOUT seconds [20].
#
# Caches are off (cache-ttl=0 ...), so that a query right after an API change sees it.
set -euo pipefail
umask 077

PDNS_SERVER="${PDNS_SERVER:-pdns_server}"
PDNSUTIL="${PDNSUTIL:-pdnsutil}"
TIMEOUT="${PDNS_START_TIMEOUT:-20}"

die() { printf 'pdns: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'pdns: %s\n' "$*"; }

usage() {
	sed -n '2,5s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

# The Debian package's schema, or wherever another layout puts it.
find_schema() {
	local f
	for f in /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql \
		/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql \
		/usr/share/doc/pdns/schema.sqlite3.sql \
		/usr/local/share/doc/pdns/schema.sqlite3.sql; do
		[[ -r "$f" ]] && { echo "$f"; return 0; }
	done
	return 1
}

# port_busy PROTO PORT: true when something listens on 127.0.0.1 (or any address) at PORT.
port_busy() {
	local flag=-ltn
	[[ "$1" == udp ]] && flag=-lun
	command -v ss >/dev/null 2>&1 || return 1
	ss -H "$flag" "sport = :$2" 2>/dev/null | grep -q .
}

# api_up PORT KEY: true when the API answers with the key.
api_up() {
	curl --noproxy '*' -sf --connect-timeout 1 --max-time 2 -H "X-API-Key: $2" \
		-o /dev/null "http://127.0.0.1:$1/api/v1/servers/localhost" 2>/dev/null
}

# alive PID: true when PID runs (and is not a zombie).
alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || echo X)
	[[ "$state" != Z ]]
}

cmd_start() {
	[[ $# -ge 4 ]] || usage
	local dir=$1 port_dns=$2 port_api=$3
	shift 3
	local p z schema key pid i

	for p in "$port_dns" "$port_api"; do
		[[ "$p" =~ ^[0-9]+$ && "$p" -gt 0 && "$p" -lt 65536 ]] || die "bad port '$p'"
	done
	command -v "$PDNS_SERVER" >/dev/null 2>&1 ||
		die "$PDNS_SERVER not found (apt-get install pdns-server pdns-backend-sqlite3)"
	command -v "$PDNSUTIL" >/dev/null 2>&1 || die "$PDNSUTIL not found (apt-get install pdns-server)"
	command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 not found (apt-get install sqlite3)"
	command -v curl >/dev/null 2>&1 || die "curl not found"
	schema=$(find_schema) || die "the gsqlite3 schema (schema.sqlite3.sql) was not found (apt-get install pdns-backend-sqlite3)"

	if [[ -f "$dir/server.pid" ]] && alive "$(cat "$dir/server.pid")"; then
		die "a server started in $dir still runs (pid $(cat "$dir/server.pid")); run: $0 stop $dir"
	fi
	if port_busy udp "$port_dns" || port_busy tcp "$port_dns"; then
		die "port $port_dns (DNS) is busy: $(ss -H -lntup "sport = :$port_dns" 2>/dev/null | head -n 1)"
	fi
	port_busy tcp "$port_api" &&
		die "port $port_api (API) is busy: $(ss -H -lntp "sport = :$port_api" 2>/dev/null | head -n 1)"

	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	rm -f "$dir/pdns.sqlite3" "$dir/pdns.sqlite3-shm" "$dir/pdns.sqlite3-wal" "$dir/pdns.conf" "$dir/api-key" \
		"$dir/pdns.log" "$dir/pdnsutil.log" "$dir/server.pid"
	key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
	(umask 077 && printf '%s\n' "$key" >"$dir/api-key")
	chmod 0600 "$dir/api-key"
	sqlite3 "$dir/pdns.sqlite3" <"$schema" || die "sqlite3 $dir/pdns.sqlite3: loading $schema failed"

	cat >"$dir/pdns.conf" <<EOF
# written by scripts/pdns.sh: a throwaway test server
launch=gsqlite3
gsqlite3-database=$dir/pdns.sqlite3
local-address=127.0.0.1
local-port=$port_dns
api=yes
api-key=$key
webserver=yes
webserver-address=127.0.0.1
webserver-port=$port_api
webserver-allow-from=127.0.0.1
webserver-loglevel=normal
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
zone-cache-refresh-interval=0
security-poll-suffix=
disable-syslog=yes
loglevel=6
default-soa-content=ns1.@ hostmaster.@ 0 10800 3600 604800 3600
EOF
	chmod 0600 "$dir/pdns.conf"

	for z in "$@"; do
		z=${z%.}
		"$PDNSUTIL" --config-dir="$dir" create-zone "$z" "ns1.$z" >>"$dir/pdnsutil.log" 2>&1 ||
			die "pdnsutil create-zone $z failed: $(tail -n 3 "$dir/pdnsutil.log")"
		"$PDNSUTIL" --config-dir="$dir" add-record "$z" ns1 A 3600 127.0.0.1 >>"$dir/pdnsutil.log" 2>&1 ||
			die "pdnsutil add-record ns1.$z A failed: $(tail -n 3 "$dir/pdnsutil.log")"
	done

	setsid "$PDNS_SERVER" --daemon=no --guardian=no --config-dir="$dir" --socket-dir="$dir" \
		</dev/null >>"$dir/pdns.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/server.pid"

	for ((i = 0; i < TIMEOUT * 10; i++)); do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null || true
			rm -f "$dir/server.pid"
			die "pdns_server exited while starting; the end of $dir/pdns.log:
$(tail -n 8 "$dir/pdns.log")"
		fi
		if api_up "$port_api" "$key"; then
			say "started (pid $pid): DNS 127.0.0.1:$port_dns, API http://127.0.0.1:$port_api, key in $dir/api-key, zones: $*"
			return 0
		fi
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	rm -f "$dir/server.pid"
	die "the API on 127.0.0.1:$port_api did not answer within ${TIMEOUT}s; the end of $dir/pdns.log:
$(tail -n 8 "$dir/pdns.log")"
}

cmd_stop() {
	[[ $# -ge 1 ]] || usage
	local dir=$1 pid i
	[[ -f "$dir/server.pid" ]] || { say "nothing to stop in $dir"; return 0; }
	pid=$(cat "$dir/server.pid")
	[[ "$pid" =~ ^[0-9]+$ ]] || die "$dir/server.pid does not hold a pid"
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				alive "$pid" || break
				sleep 0.1
			done
		fi
		alive "$pid" && die "pdns_server (pid $pid) did not stop"
	fi
	rm -f "$dir/server.pid"
	say "stopped (pid $pid)"
}

case "${1:-}" in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) usage ;;
esac
