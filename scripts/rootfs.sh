#!/usr/bin/env bash
# rootfs.sh - a Debian 12 (bookworm) root file system holding the packages of some lists from
# packaging/deps/ and nothing else beyond Debian's minimal base, built with mmdebstrap and cached as
# a tarball keyed by a hash of the package names and the apt sources.
#
#   scripts/rootfs.sh tarball LIST...     print the cached tarball's path, building it when missing
#   scripts/rootfs.sh extract DIR LIST... unpack that tarball into DIR (which must be empty or absent)
#   scripts/rootfs.sh sources             print the apt sources files it builds from
#
# LIST is a file of package names (one a line, '#' comments), e.g. packaging/deps/runtime.txt.
# The root file system is mmdebstrap's "minbase" variant (what the debian:12 images hold) plus
# the packages listed. Needs root (mmdebstrap --mode=root) and mmdebstrap.
#
# Environment:
#   CERTFLEET_ROOTFS_CACHE   cache folder [~/.cache/certfleet/rootfs]
#   CERTFLEET_APT_SOURCES    apt sources file(s) to build from, separated by spaces [this machine's
#                            files under /etc/apt that name bookworm]; passed to mmdebstrap as
#                            they are, so the mirror is always this machine's own
set -euo pipefail

: "${HOME:=$(cd ~ && pwd)}"
CACHE="${CERTFLEET_ROOTFS_CACHE:-$HOME/.cache/certfleet/rootfs}"
SUITE=bookworm
VARIANT=minbase

say() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '5,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# packages LIST...: the package names of the lists, sorted, one a line
packages() {
    local list
    for list in "$@"; do
        [[ -r "$list" ]] || die "cannot read the package list $list"
    done
    sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$@" | LC_ALL=C sort -u
}

# sources: the apt sources files mmdebstrap builds from
sources() {
    local f found=()
    if [[ -n "${CERTFLEET_APT_SOURCES:-}" ]]; then
        for f in $CERTFLEET_APT_SOURCES; do
            [[ -r "$f" ]] || die "CERTFLEET_APT_SOURCES: cannot read $f"
            found+=("$f")
        done
    else
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
            [[ -r "$f" ]] || continue
            # Only the files for bookworm: others (a vendor's repository) are not ours to mix in.
            grep -Eq "^[^#]*(^|[[:space:]])$SUITE([[:space:]]|$)" "$f" && found+=("$f")
        done
        ((${#found[@]})) || die "no apt sources file under /etc/apt names $SUITE; set CERTFLEET_APT_SOURCES"
    fi
    printf '%s\n' "${found[@]}"
}

cmd_tarball() {
    (($# > 0)) || usage
    command -v mmdebstrap >/dev/null 2>&1 ||
        die "mmdebstrap not found (it is in packaging/deps/test.txt: scripts/install-deps.sh installs it)"
    [[ $EUID -eq 0 ]] || die "building a root file system needs root (mmdebstrap --mode=root)"
    local pkgs key tar tmp src=()
    pkgs="$(packages "$@")"
    mapfile -t src < <(sources)
    key="$( { echo "$SUITE $VARIANT"; echo "$pkgs"; cat "${src[@]}"; } | sha256sum | cut -c1-16)"
    tar="$CACHE/$SUITE-$VARIANT-$key.tar"
    if [[ -s "$tar" ]]; then
        printf '%s\n' "$tar"
        return 0
    fi
    mkdir -p "$CACHE"
    tmp="$(mktemp "$tar.XXXXXX")"
    say "building $tar with $(echo "$pkgs" | wc -l) packages (log: $tar.log)"
    if ! mmdebstrap --mode=root --format=tar --variant="$VARIANT" --include="$(echo "$pkgs" | paste -sd,)" \
        "$SUITE" "$tmp" "${src[@]}" >"$tar.log" 2>&1; then
        rm -f "$tmp"
        tail -n 20 "$tar.log" >&2
        die "mmdebstrap failed for $* (log: $tar.log)"
    fi
    mv "$tmp" "$tar"
    printf '%s\n' "$tar"
}

cmd_extract() {
    (($# > 1)) || usage
    local dir="$1" tar
    shift
    if [[ -e "$dir" ]] && [[ -n "$(ls -A "$dir")" ]]; then
        die "extract: $dir is not empty"
    fi
    tar="$(cmd_tarball "$@")"
    mkdir -p "$dir"
    tar -C "$dir" --numeric-owner -xpf "$tar" || die "extract: unpacking $tar into $dir failed"
}

case "${1:-}" in
    tarball) shift; cmd_tarball "$@" ;;
    extract) shift; cmd_extract "$@" ;;
    sources) sources ;;
    *) usage ;;
esac
