#!/usr/bin/env bash
# test_enqueue_race.sh - two enqueues of the same new names at the same time (two apply hooks of
# one fleet): both succeed, and each name has one certificate and one job. Before, the second
# insert of a name found neither its own row nor the other's (its statement's snapshot predated
# the other's commit), and enqueue crashed.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
register || not_ok "account register"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=1500
for round in 1 2 3; do
	seq 1 "$n" | sed "s/^/r$round-/; s/\$/.$ZONE/" >"$tmp/fleet$round"
	"$CF" enqueue --file "$tmp/fleet$round" >"$tmp/a.out" 2>"$tmp/a.err" &
	a=$!
	"$CF" enqueue --file "$tmp/fleet$round" >"$tmp/b.out" 2>"$tmp/b.err" &
	b=$!
	wait "$a"; ra=$?
	wait "$b"; rb=$?
	check_eq "round $round: both enqueues exit 0" "$ra $rb" "0 0"
	check "round $round: neither printed an error" bash -c "! grep -q . '$tmp/a.err' '$tmp/b.err'"
	check_eq "round $round: one certificate per name" \
		"$(sql "SELECT count(*) FROM certificates WHERE names_key LIKE 'r$round-%'")" "$n"
	check_eq "round $round: one job per name" \
		"$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names_key LIKE 'r$round-%'")" "$n"
	check_eq "round $round: the two say together that every name is new once" \
		"$(cat "$tmp/a.out" "$tmp/b.out" | sed -n 's/.*(\([0-9]*\) new certificates.*/\1/p' | awk '{ s += $1 } END { print s }')" "$n"
done
check_unfinished "two enqueues at once"
finish
