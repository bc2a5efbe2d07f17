#!/usr/bin/env bash
# test_validations.sh - run --max-validations N: never more than N challenges answered at the CA
# without a verdict, every order still issued; 0 lifts the cap; a bad value exits 2.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
register || not_ok "account register"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the most answered at once, from the debug log's authorization steps in order: an answer
# (-> respond, but not a repeated answer from poll) opens one, a verdict (-> valid or invalid) or
# an ended order closes it
most_at_once() {
	awk '/authorization .* (fetch|record) -> respond$/ { n++; if (n > m) m = n }
	     /authorization .* -> (valid|invalid)$/ { n-- }
	     END { print m + 0 }' "$1"
}

seq 1 24 | sed "s/^/v/; s/\$/.$ZONE/" >"$tmp/fleet"
"$CF" enqueue --file "$tmp/fleet" >/dev/null || not_ok "enqueue 24"
"$CF" run -vv --workers 2 --max-validations 2 --no-progress >"$tmp/run.out" 2>"$tmp/run.err"
check_eq "a run with --max-validations 2 exits 0" "$?" 0
check_eq "it issued all 24" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 24
check_eq "every answer had a verdict" "$(grep -c 'fetch -> respond\|record -> respond' "$tmp/run.err")" \
	"$(grep -c -- '-> valid$' "$tmp/run.err")"
n=$(most_at_once "$tmp/run.err")
check "at most 2 challenges were open at once, across both workers (saw $n)" test "$n" -le 2 -a "$n" -ge 1

seq 1 24 | sed "s/^/w/; s/\$/.$ZONE/" >"$tmp/fleet2"
"$CF" enqueue --file "$tmp/fleet2" >/dev/null || not_ok "enqueue 24 more"
"$CF" run -vv --workers 2 --max-validations 0 --no-progress >"$tmp/run2.out" 2>"$tmp/run2.err"
check_eq "a run with --max-validations 0 exits 0" "$?" 0
n2=$(most_at_once "$tmp/run2.err")
check "without a cap, more than 2 were open at once (saw $n2)" test "$n2" -gt 2

"$CF" run --max-validations -1 --no-progress >"$tmp/bad.out" 2>"$tmp/bad.err"
check_eq "--max-validations -1 exits 2" "$?" 2
check "its error names the option" grep -q -- '--max-validations' "$tmp/bad.err"
check_unfinished "validation slots"
finish
