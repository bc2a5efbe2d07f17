#!/usr/bin/env bash
# test_man.sh - the man pages `make man` generates from --help (scripts/man.sh): one for certfleet
# and one per command, free of mandoc errors and of man-db's formatter warnings, each naming every
# option its command's --help names.
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
require_tools "packaging/deps/test.txt: help2man mandoc man-db" help2man mandoc man

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$repo/scripts/man.sh" "$CF" "$tmp/man" 0.0.0-test >"$tmp/gen.out" 2>&1; then
	cat "$tmp/gen.out" >&2
	not_ok "scripts/man.sh generates the pages"
	finish
	exit 1
fi
commands=$("$CF" --help | sed -n '/^Commands:/,/^$/{s/^  \([a-z]*\) .*/\1/p}')
check "certfleet --help lists commands" [ -n "$commands" ]

for page in certfleet $(printf 'certfleet-%s ' $commands); do
	f="$tmp/man/$page.1"
	if [ ! -s "$f" ]; then
		not_ok "$page.1 generated"
		continue
	fi
	mandoc -T lint -W warning "$f" 2>&1 | sed 's/^/# /'
	check "$page.1: mandoc -T lint finds no error" mandoc -T lint -W error "$f"
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
	check_eq "$page.1: man --warnings is silent" "$warn" ""
	cmd=${page#certfleet}
	cmd=${cmd#-}
	lost=""
	for opt in $("$CF" $cmd --help | grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' | sed 's/^[ ,]*//' | sort -u); do
		# grep reads it all: with -q it would stop at the first match, and sed, writing the rest
		# of a page longer than its buffer, would die of SIGPIPE, which pipefail counts
		sed 's/\\-/-/g' "$f" | grep -- "$opt" >/dev/null || lost="$lost $opt"
	done
	check_eq "$page.1: names every option of certfleet${cmd:+ $cmd} --help" "$lost" ""
done

finish
