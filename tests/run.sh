#!/usr/bin/env bash
# run.sh - runs certfleet's tests: the unit test programs, then (unless --unit-only) the integration
# tests against a local stack of their own (PostgreSQL, Pebble, pebble-challtestsrv), which it starts
# and stops. Every test prints "ok - NAME" or "not ok - NAME"; the last line is "N passed, N failed".
#
# The tests' stack has its own state folder and ports, so that the stack `make demo` leaves running
# (.stack/, ports 25432, 14000, 15000, 8053, 8055) is neither reused nor stopped, and its data stays:
#   CERTFLEET_TEST_STACK_DIR   state folder [<repo>/.stack-test]
#   CERTFLEET_PG_PORT [25433], CERTFLEET_PEBBLE_PORT [14001], CERTFLEET_PEBBLE_MGMT_PORT [15001],
#   CERTFLEET_DNS_PORT [8054], CERTFLEET_CHALLTESTSRV_PORT [8056]
# When a stack already runs in that state folder (another `make test`, or one that was killed), the
# run refuses rather than share or stop it.
#   CERTFLEET_TESTS            run only these tests (names separated by spaces, e.g. "test_cli
#                              test_keys"); all when empty
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
export CERTFLEET_BIN="$build/certfleet"
unit_only=0
[ "${1:-}" = "--unit-only" ] && unit_only=1

# The tests' stack, whatever the caller's shell holds (eval "$(scripts/stack.sh env)" after a demo
# exports CERTFLEET_STACK_DIR=<repo>/.stack).
export CERTFLEET_STACK_DIR="${CERTFLEET_TEST_STACK_DIR:-$repo/.stack-test}"
export CERTFLEET_PG_PORT="${CERTFLEET_PG_PORT:-25433}"
export CERTFLEET_PEBBLE_PORT="${CERTFLEET_PEBBLE_PORT:-14001}"
export CERTFLEET_PEBBLE_MGMT_PORT="${CERTFLEET_PEBBLE_MGMT_PORT:-15001}"
export CERTFLEET_DNS_PORT="${CERTFLEET_DNS_PORT:-8054}"
export CERTFLEET_CHALLTESTSRV_PORT="${CERTFLEET_CHALLTESTSRV_PORT:-8056}"

# selected NAME: true when NAME is to run (CERTFLEET_TESTS empty, or naming it)
selected() {
	[ -z "${CERTFLEET_TESTS:-}" ] && return 0
	case " $CERTFLEET_TESTS " in *" $1 "*) return 0 ;; esac
	return 1
}

passed=0
failed=0
failed_names=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/certfleet-tests.XXXXXX")

# Runs one test program, echoes its lines and counts its ok / not ok lines.
run_one() {
	local name=$1
	shift
	local out="$logdir/$name.out" rc t0=$SECONDS
	echo "# $name"
	"$@" >"$out" 2>"$logdir/$name.err"
	rc=$?
	cat "$out"
	echo "# $name took $((SECONDS - t0)) s"
	local ok nok
	ok=$(grep -c '^ok - ' "$out")
	nok=$(grep -c '^not ok - ' "$out")
	if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		echo "not ok - $name (exited $rc without reporting a failure)"
		nok=1
	fi
	if [ "$nok" -gt 0 ] || [ "$rc" -ne 0 ]; then
		failed_names+=("$name")
		echo "--- $name stderr (last 40 lines) ---"
		tail -n 40 "$logdir/$name.err"
	fi
	passed=$((passed + ok))
	failed=$((failed + nok))
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	selected "$(basename "$t")" || continue
	run_one "$(basename "$t")" "$t"
done

# The layers point one way and no modules depend on each other in a circle (scripts/check-layers.py).
layers_out="$logdir/layers.out"
if ! selected layers; then
	:
elif python3 "$repo/scripts/check-layers.py" --objects "$build" >"$layers_out" 2>&1; then
	echo "ok - layers: $(tail -n 1 "$layers_out")"
	passed=$((passed + 1))
else
	cat "$layers_out"
	echo "not ok - layers (see above)"
	failed=$((failed + 1))
	failed_names+=("layers")
fi

for t in "$here"/scripts/test_*.sh; do
	selected "$(basename "$t" .sh)" || continue
	run_one "$(basename "$t" .sh)" bash "$t"
done

for t in "$build"/fuzz/fuzz_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	selected "$name" || continue
	corpus="$repo/tests/fuzz/corpus/${name#fuzz_}"
	run_one "$name" "$t" "$corpus"/*
done

integration=()
for t in "$here"/integration/test_*.sh; do
	selected "$(basename "$t" .sh)" && integration+=("$t")
done

if [ "$unit_only" -eq 0 ] && [ "${#integration[@]}" -gt 0 ]; then
	stack="$repo/scripts/stack.sh"
	# A stack already running in our state folder belongs to someone else: refuse, name it, leave it.
	if "$stack" status >"$logdir/stack-status" 2>&1 || [ $? -ne 3 ]; then
		echo "not ok - a stack already runs in $CERTFLEET_STACK_DIR (another make test, or one left by a killed run); the tests neither share nor stop it:"
		sed 's/^/#   /' "$logdir/stack-status"
		echo "#   stop it with: CERTFLEET_STACK_DIR=$CERTFLEET_STACK_DIR scripts/stack.sh stop, or set CERTFLEET_TEST_STACK_DIR"
		echo "$passed passed, $((failed + 1)) failed"
		exit 1
	fi
	# Nothing ran in our state folder, so whatever runs there from now on is ours to stop.
	trap '"$stack" stop >/dev/null 2>&1 || true' EXIT
	"$stack" start >"$logdir/stack-start" 2>&1 || {
		echo "not ok - local stack failed to start (state $CERTFLEET_STACK_DIR)"
		sed 's/^/#   /' "$logdir/stack-start" | tail -n 20
		echo "$passed passed, $((failed + 1)) failed"
		exit 1
	}
	eval "$("$stack" env)"
	for t in "${integration[@]}"; do
		run_one "$(basename "$t" .sh)" bash "$t"
	done
fi

if [ "${#failed_names[@]}" -gt 0 ]; then
	echo "failed: ${failed_names[*]} (logs in $logdir)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
