#!/usr/bin/env bash
# test_stack_isolation.sh - `make test` never reuses or stops a stack it did not start: with a
# demo's stack running and the demo's environment in the shell, a nested tests/run.sh runs on a
# stack of its own and leaves the demo's services and data as they were; with a stack already
# running in its own state folder, it refuses and leaves that stack running.
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
stack="$repo/scripts/stack.sh"
tmp=$(mktemp -d)
# Stops only the stacks this test started (in its own temporary state folders).
cleanup() {
	CERTFLEET_STACK_DIR="$tmp/demo" "$stack" stop >/dev/null 2>&1
	CERTFLEET_STACK_DIR="$tmp/test" "$stack" stop >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# five distinct ports below the ephemeral range for a stack
ports() {
	local p
	p=$(($(random_port) - 5)) # p+4 stays below the ephemeral range too
	echo "CERTFLEET_PG_PORT=$p CERTFLEET_PEBBLE_PORT=$((p + 1)) CERTFLEET_PEBBLE_MGMT_PORT=$((p + 2)) CERTFLEET_DNS_PORT=$((p + 3)) CERTFLEET_CHALLTESTSRV_PORT=$((p + 4))"
}
pids() { cat "$1"/run/postgres.pid "$1"/run/pebble.pid "$1"/run/challtestsrv.pid 2>/dev/null | tr '\n' ' '; }

# The ports this run's stack uses (run.sh's, unless the caller chose others) are not the demo's
# defaults, and neither is its state folder.
demo_env=$(env -u CERTFLEET_PG_PORT -u CERTFLEET_PEBBLE_PORT -u CERTFLEET_PEBBLE_MGMT_PORT \
	-u CERTFLEET_DNS_PORT -u CERTFLEET_CHALLTESTSRV_PORT CERTFLEET_STACK_DIR="$tmp/none" "$stack" env)
clash=""
for url in "$CERTFLEET_DB" "$CERTFLEET_DIRECTORY" "$CERTFLEET_PEBBLE_MGMT" "$CERTFLEET_CHALLTESTSRV_URL"; do
	port=$(echo "$url" | sed -E 's|^[a-z]+://[^/]*:([0-9]+).*|\1|')
	grep -q ":$port[/ ]\\|:$port\$" <<<"$demo_env" && clash="$clash $port"
done
check_eq "the tests' stack uses none of the demo's default ports" "$clash" ""
check "the tests' stack has its own state folder" [ "$(cd "$CERTFLEET_STACK_DIR" && pwd)" != "$repo/.stack" ]

# A "demo" stack in a state folder of its own, with a row of demo data.
demo_ports=$(ports)
if ! env $demo_ports CERTFLEET_STACK_DIR="$tmp/demo" "$stack" start >"$tmp/demo-start.log" 2>&1; then
	cat "$tmp/demo-start.log" >&2
	not_ok "start the demo's stack"
	finish
	exit 1
fi
demo_pids=$(pids "$tmp/demo")
demo_db=$(CERTFLEET_STACK_DIR="$tmp/demo" "$stack" env | sed -n 's/^export CERTFLEET_DB=//p')
psql -qX -v ON_ERROR_STOP=1 "$demo_db" -c "CREATE TABLE demo_data (v text); INSERT INTO demo_data VALUES ('kept')" >/dev/null ||
	not_ok "write the demo's data"

# A nested run with the demo's environment in the shell (as after eval "$(scripts/stack.sh env)"),
# on its own ports (this run's stack holds the defaults).
test_ports=$(ports)
(
	eval "$(CERTFLEET_STACK_DIR="$tmp/demo" "$stack" env)"
	env $test_ports CERTFLEET_TEST_STACK_DIR="$tmp/test" CERTFLEET_TESTS=test_cli \
		BUILD="$(dirname "$CF")" "$repo/tests/run.sh"
) >"$tmp/nested.out" 2>&1
rc=$?
check_eq "a nested tests/run.sh passes beside the demo's stack" "$rc" 0
check "the nested run ran test_cli" grep -q '^ok - test_cli' "$tmp/nested.out"
check_eq "the demo's services still run, with the same pids" "$(pids "$tmp/demo")" "$demo_pids"
check_eq "the demo's data is still there" \
	"$(psql -qXAt "$demo_db" -c 'SELECT v FROM demo_data' 2>&1)" kept
CERTFLEET_STACK_DIR="$tmp/test" "$stack" status >/dev/null 2>&1
check_eq "the nested run stopped its own stack" "$?" 3

# A stack already running in the tests' state folder: the run refuses, names it, and leaves it.
if env $test_ports CERTFLEET_STACK_DIR="$tmp/test" "$stack" start >"$tmp/test-start.log" 2>&1; then
	busy_pids=$(pids "$tmp/test")
	env $test_ports CERTFLEET_TEST_STACK_DIR="$tmp/test" CERTFLEET_TESTS=test_cli \
		BUILD="$(dirname "$CF")" "$repo/tests/run.sh" >"$tmp/refused.out" 2>&1
	rc=$?
	check "a run whose state folder holds a running stack fails" [ "$rc" -ne 0 ]
	check "its message names the running stack's folder" \
		grep -q "^not ok - a stack already runs in $tmp/test" "$tmp/refused.out"
	check "it ran no test" bash -c "! grep -q '^ok - ' '$tmp/refused.out'"
	check_eq "that stack still runs, with the same pids" "$(pids "$tmp/test")" "$busy_pids"
else
	cat "$tmp/test-start.log" >&2
	not_ok "start a stack in the tests' state folder"
fi

finish
