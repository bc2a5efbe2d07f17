#!/usr/bin/env bash
# run.sh - runs certfleet's tests: the unit test programs, then (unless --unit-only) the integration
# tests against the local stack (PostgreSQL, Pebble, pebble-challtestsrv), which it starts and stops.
# Every test prints "ok - NAME" or "not ok - NAME"; the last line is "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${BUILD:-build}
case "$build" in /*) ;; *) build="$repo/$build" ;; esac
export CERTFLEET_BIN="$build/certfleet"
unit_only=0
[ "${1:-}" = "--unit-only" ] && unit_only=1

passed=0
failed=0
failed_names=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/certfleet-tests.XXXXXX")

# Runs one test program, echoes its lines and counts its ok / not ok lines.
run_one() {
	local name=$1
	shift
	local out="$logdir/$name.out" rc
	echo "# $name"
	"$@" >"$out" 2>"$logdir/$name.err"
	rc=$?
	cat "$out"
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
	run_one "$(basename "$t")" "$t"
done

# The layers point one way and no modules depend on each other in a circle (scripts/check-layers.py).
layers_out="$logdir/layers.out"
if python3 "$repo/scripts/check-layers.py" --objects "$build" >"$layers_out" 2>&1; then
	echo "ok - layers: $(tail -n 1 "$layers_out")"
	passed=$((passed + 1))
else
	cat "$layers_out"
	echo "not ok - layers (see above)"
	failed=$((failed + 1))
	failed_names+=("layers")
fi

for t in "$here"/scripts/test_*.sh; do
	run_one "$(basename "$t" .sh)" bash "$t"
done

for t in "$build"/fuzz/fuzz_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	corpus="$repo/tests/fuzz/corpus/${name#fuzz_}"
	run_one "$name" "$t" "$corpus"/*
done

if [ "$unit_only" -eq 0 ]; then
	"$repo/scripts/stack.sh" start || { echo "not ok - local stack failed to start"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
	trap '"$repo/scripts/stack.sh" stop >/dev/null 2>&1 || true' EXIT
	eval "$("$repo/scripts/stack.sh" env)"
	for t in "$here"/integration/test_*.sh; do
		run_one "$(basename "$t" .sh)" bash "$t"
	done
fi

if [ "${#failed_names[@]}" -gt 0 ]; then
	echo "failed: ${failed_names[*]} (logs in $logdir)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
