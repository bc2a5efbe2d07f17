#!/usr/bin/env bash
# man.sh - man pages for certfleet and each of its commands, made from their --help output with
# help2man, so that the pages say what the binary says.
#
#   scripts/man.sh BINARY OUTDIR VERSION
#
# Writes OUTDIR/certfleet.1 and OUTDIR/certfleet-COMMAND.1 for every command `BINARY --help` lists
# under "Commands:". Needs help2man (packaging/deps/test.txt; the Debian package build-depends on it).
set -euo pipefail

die() { printf 'man.sh: error: %s\n' "$*" >&2; exit 1; }

(($# == 3)) || { sed -n '5p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2; exit 2; }
bin="$1" out="$2" version="$3"
[[ -x "$bin" ]] || die "$bin: not an executable (build it first: make)"
command -v help2man >/dev/null 2>&1 || die "help2man not found (scripts/install-deps.sh installs it)"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac

mkdir -p "$out"
wrap="$(mktemp -d)"
trap 'rm -rf "$wrap"' EXIT

# The page date: SOURCE_DATE_EPOCH when set (reproducible builds), else today; as YYYY-MM-DD,
# which man page linters parse (help2man's "Month YYYY" draws a warning from mandoc).
day="$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)"

# page NAME SUMMARY PROGRAM [INCLUDE]: help2man over PROGRAM --help into OUTDIR/NAME.1
page() {
    local name="$1" summary="$2" prog="$3" include=()
    [[ -n "${4:-}" ]] && include=(--include="$4")
    help2man --no-info --no-discard-stderr --section=1 --name="$summary" "${include[@]}" \
        --version-string="$version" --source="certfleet $version" --manual="certfleet manual" \
        --output="$out/$name.1.tmp" "$prog" || die "help2man failed for $name"
    sed -i "2s/^\(\.TH [^ ]* [^ ]*\) \"[^\"]*\"/\1 \"$day\"/" "$out/$name.1.tmp"
    mv "$out/$name.1.tmp" "$out/$name.1"
}

# The commands and their one-line summaries, as `certfleet --help` lists them.
commands="$("$bin" --help | sed -n '/^Commands:/,/^$/{/^  [a-z]/p}')"
[[ -n "$commands" ]] || die "$bin --help lists no commands under \"Commands:\""

ln -s "$bin" "$wrap/certfleet"
{
    printf '[SEE ALSO]\n'
    sep=""
    while read -r cmd _; do
        printf '%s.BR certfleet-%s (1)' "$sep" "$cmd"
        sep=$',\n'
    done <<<"$commands"
    printf '\n'
} >"$wrap/see-also"
page certfleet "issue and renew large fleets of TLS certificates with ACME dns-persist-01" \
    "$wrap/certfleet" "$wrap/see-also"
while read -r cmd summary; do
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$bin" "$cmd" >"$wrap/certfleet-$cmd"
    chmod +x "$wrap/certfleet-$cmd"
    page "certfleet-$cmd" "$summary" "$wrap/certfleet-$cmd"
done <<<"$commands"
