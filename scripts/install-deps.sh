#!/usr/bin/env bash
# install-deps.sh - install what building and testing certfleet needs on Debian 12.
#
#   scripts/install-deps.sh
#
# Installs, only when missing:
#   - the Debian packages listed in packaging/deps/build.txt, runtime.txt and test.txt
#     (C toolchain, -dev libraries, the local PostgreSQL 15, the test and packaging tools);
#   - a Go toolchain >= 1.24 (Debian 12's golang is 1.19, too old for Pebble): the
#     one on PATH or in /usr/local/go when new enough, else the official archive
#     unpacked next to the tools folder;
#   - pebble and pebble-challtestsrv (Pebble's test CA and its DNS test server),
#     built with `go install` into the tools folder.
# Idempotent: a second run only checks and prints what it found.
#
# Environment:
#   CERTFLEET_TOOLS           where pebble binaries go (default ~/.cache/certfleet/bin)
#   CERTFLEET_PEBBLE_VERSION  Pebble module version to install (default v2.10.1; the
#                             first release that knows dns-persist-01)
#   CERTFLEET_GO              use exactly this go binary (skips the search)
#   CERTFLEET_GO_DIR          where a downloaded Go is unpacked (default <tools>/../go)
#   CERTFLEET_GO_VERSION      Go release to download when none is found (default 1.24.13)
set -euo pipefail

: "${HOME:=$(cd ~ && pwd)}"   # CI may run with a bare environment

PEBBLE_VERSION="${CERTFLEET_PEBBLE_VERSION:-v2.10.1}"
[[ "$PEBBLE_VERSION" == v* ]] || PEBBLE_VERSION="v$PEBBLE_VERSION"
TOOLS="${CERTFLEET_TOOLS:-$HOME/.cache/certfleet/bin}"
GO_DIR="${CERTFLEET_GO_DIR:-$(dirname "$TOOLS")/go}"
GO_DL_VERSION="${CERTFLEET_GO_VERSION:-1.24.13}"
GO_MIN_MAJOR=1
GO_MIN_MINOR=24

# The Debian packages come from the lists in packaging/deps/ (one package a line, '#' comments),
# which the Dockerfile and scripts/image-check.sh read too: build.txt, runtime.txt and test.txt.
DEPS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/packaging/deps"
DEB_PACKAGES=()
for list in build runtime test; do
    [[ -r "$DEPS_DIR/$list.txt" ]] || { printf 'install-deps: error: cannot read the package list %s\n' "$DEPS_DIR/$list.txt" >&2; exit 1; }
    while read -r pkg; do
        DEB_PACKAGES+=("$pkg")
    done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$DEPS_DIR/$list.txt")
done
unset list pkg

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' and sudo is not installed"
    fi
}

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------
install_debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 ||
        die "dpkg-query not found: this script supports Debian 12 only; install by hand: ${DEB_PACKAGES[*]}"

    local missing=() pkg status
    for pkg in "${DEB_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
    done

    if [[ ${#missing[@]} -eq 0 ]]; then
        say "debian packages: all ${#DEB_PACKAGES[@]} present"
        return 0
    fi
    say "debian packages: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    # bind9 and pdns-server come with system services on port 53; the tests start their own
    # servers on loopback ports, so the system ones are switched off where systemd started them.
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        local unit
        for unit in named pdns; do
            if printf '%s\n' "${missing[@]}" | grep -qx "$( [[ $unit == named ]] && echo bind9 || echo pdns-server)"; then
                as_root systemctl disable --now "$unit" >/dev/null 2>&1 &&
                    say "switched off the system $unit service (the tests run their own)"
            fi
        done
    fi
}

# ---------------------------------------------------------------------------
# Go toolchain
# ---------------------------------------------------------------------------
GO=""

# go_is_new_enough BINARY: true when BINARY runs and reports Go >= 1.24.
go_is_new_enough() {
    local bin="$1" ver major minor
    [[ -x "$bin" ]] || return 1
    ver="$(GOTOOLCHAIN=local "$bin" env GOVERSION 2>/dev/null)" || return 1
    [[ "$ver" =~ ^go([0-9]+)\.([0-9]+) ]] || return 1
    major="${BASH_REMATCH[1]}"
    minor="${BASH_REMATCH[2]}"
    ((major > GO_MIN_MAJOR || (major == GO_MIN_MAJOR && minor >= GO_MIN_MINOR)))
}

go_arch() {
    case "$(uname -m)" in
        x86_64 | amd64) echo amd64 ;;
        aarch64 | arm64) echo arm64 ;;
        armv6l | armv7l) echo armv6l ;;
        i386 | i686) echo 386 ;;
        ppc64le) echo ppc64le ;;
        s390x) echo s390x ;;
        riscv64) echo riscv64 ;;
        *) return 1 ;;
    esac
}

download_go() {
    local arch file url tmp want got
    arch="$(go_arch)" || return 1
    file="go${GO_DL_VERSION}.linux-${arch}.tar.gz"
    url="https://go.dev/dl/${file}"
    tmp="$(mktemp -d)"
    say "go: downloading $url"
    if ! curl -fsSL --connect-timeout 15 --max-time 600 -o "$tmp/$file" "$url"; then
        rm -rf "$tmp"
        return 1
    fi
    # The published checksum sits next to the archive on Google's download host.
    if want="$(curl -fsSL --connect-timeout 15 --max-time 60 "https://dl.google.com/go/${file}.sha256" 2>/dev/null)"; then
        got="$(sha256sum "$tmp/$file" | cut -d' ' -f1)"
        if [[ "$got" != "${want%%[[:space:]]*}" ]]; then
            rm -rf "$tmp"
            die "checksum mismatch for $file (got $got, published $want)"
        fi
    else
        say "go: warning: could not fetch the published checksum; relying on HTTPS alone"
    fi
    rm -rf "$GO_DIR"
    mkdir -p "$(dirname "$GO_DIR")"
    mkdir -p "$tmp/x"
    tar -C "$tmp/x" -xzf "$tmp/$file"
    mv "$tmp/x/go" "$GO_DIR"
    rm -rf "$tmp"
}

find_go() {
    local cand
    if [[ -n "${CERTFLEET_GO:-}" ]]; then
        go_is_new_enough "$CERTFLEET_GO" && { GO="$CERTFLEET_GO"; return 0; }
        say "go: CERTFLEET_GO=$CERTFLEET_GO is missing or older than go$GO_MIN_MAJOR.$GO_MIN_MINOR"
    else
        for cand in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go "$GO_DIR/bin/go"; do
            [[ -n "$cand" ]] || continue
            if go_is_new_enough "$cand"; then
                GO="$cand"
                return 0
            fi
        done
    fi
    return 1
}

ensure_go() {
    if find_go; then
        say "go: using $GO ($(GOTOOLCHAIN=local "$GO" env GOVERSION))"
        return 0
    fi
    say "go: no Go >= $GO_MIN_MAJOR.$GO_MIN_MINOR found (Debian 12's golang package is too old)"
    if download_go && go_is_new_enough "$GO_DIR/bin/go"; then
        GO="$GO_DIR/bin/go"
        say "go: installed $("$GO" env GOVERSION) in $GO_DIR"
        return 0
    fi
    die "could not install Go. Install Go $GO_MIN_MAJOR.$GO_MIN_MINOR or newer by hand:
    curl -fLO https://go.dev/dl/go${GO_DL_VERSION}.linux-$(go_arch || echo ARCH).tar.gz
    rm -rf /usr/local/go && tar -C /usr/local -xzf go${GO_DL_VERSION}.linux-$(go_arch || echo ARCH).tar.gz
  (or put such a go on PATH, or set CERTFLEET_GO=/path/to/go), then run this script again."
}

# ---------------------------------------------------------------------------
# Pebble and pebble-challtestsrv
# ---------------------------------------------------------------------------

# pebble_version BINARY: the Pebble module version BINARY was built from, or nothing.
pebble_version() {
    local bin="$1"
    [[ -x "$bin" ]] || return 0
    "$GO" version -m "$bin" 2>/dev/null |
        awk '$1 == "mod" && $2 == "github.com/letsencrypt/pebble/v2" { print $3; exit }'
}

ensure_pebble() {
    local cmd have
    mkdir -p "$TOOLS"
    for cmd in pebble pebble-challtestsrv; do
        have="$(pebble_version "$TOOLS/$cmd")"
        if [[ "$have" == "$PEBBLE_VERSION" ]]; then
            say "$cmd: $PEBBLE_VERSION present in $TOOLS"
            continue
        fi
        if [[ -n "$have" ]]; then
            say "$cmd: $TOOLS/$cmd is $have, want $PEBBLE_VERSION: reinstalling"
        fi
        say "$cmd: go install github.com/letsencrypt/pebble/v2/cmd/$cmd@$PEBBLE_VERSION (GOBIN=$TOOLS)"
        GOBIN="$TOOLS" "$GO" install "github.com/letsencrypt/pebble/v2/cmd/$cmd@$PEBBLE_VERSION" ||
            die "go install of $cmd@$PEBBLE_VERSION failed"
        have="$(pebble_version "$TOOLS/$cmd")"
        [[ "$have" == "$PEBBLE_VERSION" ]] ||
            die "$TOOLS/$cmd reports Pebble version '${have:-unknown}' after install, want $PEBBLE_VERSION"
    done
}

install_debian_packages
ensure_go
ensure_pebble
say "done (tools in $TOOLS)"
