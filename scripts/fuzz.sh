#!/usr/bin/env bash
# fuzz.sh - runs the libFuzzer builds of the fuzz targets (make fuzz): each FUZZ_SECONDS [30]
# from its seed corpus tests/fuzz/corpus/NAME, new inputs written to DIR/corpus/NAME (never into
# the repository), a crash to DIR/crash-NAME-*. Prints per target the executions and wall time.
#   scripts/fuzz.sh DIR NAME...
set -uo pipefail

dir=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-30}
failed=()
summary=()

for name in "$@"; do
	bin="$dir/libfuzzer/fuzz_$name"
	log="$dir/fuzz_$name.log"
	mkdir -p "$dir/corpus/$name"
	echo "# fuzz_$name: $seconds s"
	start=$(date +%s)
	"$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix="$dir/crash-$name-" "$dir/corpus/$name" "$repo/tests/fuzz/corpus/$name" \
	    >"$log" 2>&1
	rc=$?
	wall=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	line="fuzz_$name: ${execs:-?} executions in ${wall} s"
	if [ "$rc" -ne 0 ]; then
		line="$line: FOUND A PROBLEM (exit $rc), see $log and $dir/crash-$name-*"
		failed+=("fuzz_$name")
		grep -m 3 -E 'ERROR|SUMMARY|fuzz_[a-z_]+: ' "$log" | sed 's/^/#   /'
	fi
	echo "$line"
	summary+=("$line")
done

echo "# summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "findings in: ${failed[*]}"
	exit 1
fi
