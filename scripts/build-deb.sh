#!/usr/bin/env bash
# build-deb.sh - the Debian package, built with dpkg-buildpackage from a copy of the tree (what
# .dockerignore leaves of it), so that nothing is written beside or into the working tree.
#
#   scripts/build-deb.sh OUTDIR
#
# Writes OUTDIR/certfleet_VERSION_ARCH.deb (and the .buildinfo and .changes). Needs the packages
# of packaging/deps/build.txt plus debhelper and help2man (packaging/deps/test.txt).
set -euo pipefail

die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

(($# == 1)) || { echo "usage: scripts/build-deb.sh OUTDIR" >&2; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$1"
for tool in dpkg-buildpackage dh help2man; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (packaging/deps/test.txt; scripts/install-deps.sh installs it)"
done

version="$(cd "$repo" && dpkg-parsechangelog -S Version)"
work="$(mktemp -d "${TMPDIR:-/tmp}/certfleet-deb.XXXXXX")"
trap 'rm -rf "$work"' EXIT
src="$work/certfleet-${version%-*}"
mkdir -p "$src"
sed -e 's/#.*//' -e 's/[[:space:]]//g' -e 's|/$||' -e '/^$/d' -e 's|^|./|' "$repo/.dockerignore" >"$work/excludes"
tar -C "$repo" --exclude-from="$work/excludes" -cf - . | tar -C "$src" -xf -

(cd "$src" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    die "dpkg-buildpackage failed in $src"
}
mkdir -p "$out"
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
cp "$work/build.log" "$out/build.log"
ls "$out"/*.deb
