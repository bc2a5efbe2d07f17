#!/usr/bin/env bash
# bind.sh - a throwaway BIND 9 for tests: authoritative (no recursion) for a few zones on
# 127.0.0.1:PORT, UDP and TCP, taking RFC 2136 updates signed with TSIG keys it generates.
#
#   scripts/bind.sh start DIR PORT [ZONE...]   zones: the arguments, else $BIND_ZONES, else
#                                              "a.example b.example"
#   scripts/bind.sh stop DIR [PORT]
#
# DIR (created) receives named.conf, ZONE.db, the keys, named.log and bind.pid. Keys (mode 0600,
# made by tsig-keygen once per DIR): tsig.key holds key "certfleet" (hmac-sha256), tsig-sha512.key
# key "certfleet-sha512" (hmac-sha512); both may change TXT records anywhere in the zones. Each
# zone has an SOA and one NS, ns1.ZONE, whose address (in the zone) is 127.0.0.1. BIND runs as
# the current user. start does nothing when this DIR's BIND already runs, stop when none does;
# both are quiet on success and exit 1 with a message on stderr on failure.
set -uo pipefail

die() {
	echo "bind.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: bind.sh start DIR PORT [ZONE...] | bind.sh stop DIR [PORT]" >&2
	exit 2
}

# The pid of this DIR's BIND when it runs, else nothing.
running_pid() {
	local pid
	[ -f "$dir/bind.pid" ] || return 1
	pid=$(cat "$dir/bind.pid" 2>/dev/null) || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	# a recycled pid is somebody else's process
	[ "$(ps -p "$pid" -o comm= 2>/dev/null)" = "named" ] || return 1
	echo "$pid"
}

# True when zone's SOA comes back from 127.0.0.1:port (dig +short prints its errors on stdout too).
answers() {
	local out
	out=$(dig +short +norecurse +time=1 +tries=1 -p "$port" @127.0.0.1 SOA "$1" 2>/dev/null) &&
		[[ "$out" =~ ^[^\;[:space:]]+\ [^[:space:]]+\ [0-9]+\  ]]
}

# True while pid runs (a child that exited stays a zombie until reaped, and kill -0 succeeds on it).
alive() {
	local stat
	stat=$(ps -p "$1" -o stat= 2>/dev/null) && [ -n "$stat" ] && [[ "$stat" != Z* ]]
}

write_conf() {
	local z
	{
		echo "# named.conf - written by scripts/bind.sh; throwaway test server"
		echo "options {"
		echo "	directory \"$dir\";"
		echo "	pid-file \"$dir/named.pid\";"
		echo "	lock-file \"$dir/named.lock\";"
		echo "	session-keyfile \"$dir/session.key\";"
		echo "	managed-keys-directory \"$dir\";"
		echo "	listen-on port $port { 127.0.0.1; };"
		echo "	listen-on-v6 { none; };"
		echo "	recursion no;"
		echo "	allow-query { any; };"
		echo "	allow-transfer { none; };"
		echo "	dnssec-validation no;"
		echo "	notify no;"
		echo "	querylog yes;"
		echo "};"
		echo "controls { };"
		echo "include \"$dir/tsig.key\";"
		echo "include \"$dir/tsig-sha512.key\";"
		for z in "${zones[@]}"; do
			echo "zone \"$z\" {"
			echo "	type primary;"
			echo "	file \"$z.db\";"
			echo "	update-policy { grant certfleet zonesub TXT; grant certfleet-sha512 zonesub TXT; };"
			echo "};"
		done
	} >"$dir/named.conf"
}

write_zone() {
	local z=$1
	rm -f "$dir/$z.db.jnl"
	cat >"$dir/$z.db" <<EOF
\$TTL 300
@	IN SOA	ns1 hostmaster 1 3600 600 86400 60
	IN NS	ns1
ns1	IN A	127.0.0.1
EOF
}

start() {
	local pid z i key
	[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "port \"$port\" is not a number from 1 to 65535"
	[ "${#zones[@]}" -gt 0 ] || die "no zones to serve"
	for z in "${zones[@]}"; do
		[[ "$z" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "\"$z\" is not a zone name"
	done
	for tool in named tsig-keygen dig; do
		command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install bind9 bind9-dnsutils)"
	done
	if running_pid >/dev/null; then
		answers "${zones[0]}" && return 0
		die "a BIND from $dir runs (pid $(running_pid)) but does not answer for ${zones[0]} on 127.0.0.1:$port; stop it first"
	fi
	# without ss, a busy port shows in named's log instead (below)
	if command -v ss >/dev/null &&
		[ -n "$(ss -Hlnu "sport = :$port" 2>/dev/null)$(ss -Hlnt "sport = :$port" 2>/dev/null)" ]; then
		die "port $port is busy on this host (ss -lnup 'sport = :$port' shows who holds it)"
	fi
	(umask 077
		for key in certfleet:tsig.key:hmac-sha256 certfleet-sha512:tsig-sha512.key:hmac-sha512; do
			IFS=: read -r name file alg <<<"$key"
			[ -s "$dir/$file" ] && continue
			tsig-keygen -a "$alg" "$name" >"$dir/$file" || exit 1
		done) || die "tsig-keygen failed writing keys into $dir"
	chmod 600 "$dir/tsig.key" "$dir/tsig-sha512.key"
	for z in "${zones[@]}"; do write_zone "$z"; done
	write_conf
	if command -v named-checkconf >/dev/null && ! named-checkconf -z "$dir/named.conf" >"$dir/checkconf.log" 2>&1; then
		die "named-checkconf rejects $dir/named.conf: $(tail -n 3 "$dir/checkconf.log" | tr '\n' ' ')"
	fi
	named -g -n 1 -c "$dir/named.conf" </dev/null >"$dir/named.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/bind.pid"
	for ((i = 0; i < ${BIND_START_TIMEOUT:-15} * 5; i++)); do
		if grep -qiE "address in use|could not listen|unable to listen" "$dir/named.log"; then
			stop_pid "$pid"
			die "port $port is busy: named could not listen on 127.0.0.1:$port"
		fi
		if ! alive "$pid"; then
			rm -f "$dir/bind.pid"
			die "named exited during start-up; $dir/named.log ends with: $(tail -n 5 "$dir/named.log" | tr '\n' ' ')"
		fi
		if answers "${zones[0]}"; then
			for z in "${zones[@]}"; do
				answers "$z" || { stop_pid "$pid"; die "named runs but does not serve zone $z (see $dir/named.log)"; }
			done
			return 0
		fi
		sleep 0.2
	done
	stop_pid "$pid"
	die "named did not answer SOA ${zones[0]} on 127.0.0.1:$port within ${BIND_START_TIMEOUT:-15} s (see $dir/named.log)"
}

# Stops pid: TERM, up to 10 s for it to exit, then KILL.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || break
		sleep 0.2
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$dir/bind.pid"
	! alive "$pid"
}

stop() {
	local pid
	if pid=$(running_pid); then
		stop_pid "$pid" || die "named (pid $pid) did not exit"
	fi
	rm -f "$dir/bind.pid"
	return 0
}

[ $# -ge 2 ] || usage
cmd=$1
mkdir -p "$2" 2>/dev/null || die "cannot create directory $2"
dir=$(cd "$2" && pwd) || die "cannot enter directory $2"
[[ "$dir" != *'"'* ]] || die "directory $dir has a double quote in its name"
port=${3:-}
case "$cmd" in
start)
	[ $# -ge 3 ] || usage
	shift 3
	if [ $# -gt 0 ]; then
		zones=("$@")
	else
		read -r -a zones <<<"${BIND_ZONES:-a.example b.example}"
	fi
	start
	;;
stop)
	stop
	;;
*)
	usage
	;;
esac
