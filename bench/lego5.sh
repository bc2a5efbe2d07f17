#!/usr/bin/env bash
# lego5.sh - the strongest peer of `make bench`: one Go process on lego v5's library issuing N certificates with dns-persist-01, PARALLEL orders in flight, against the running stack's Pebble.
#
#   bench/lego5.sh [-n N] [-p PARALLEL]
#
#   -n N         certificates (default 2000; LEGO5_N)
#   -p PARALLEL  orders in flight at once (default 200; LEGO5_PARALLEL)
#
# Needs a running stack (scripts/stack.sh start; the CERTFLEET_* variables of `scripts/stack.sh
# env` are used when set, else read from it) and Go 1.26 or newer (on PATH or in /usr/local/go).
# Steps, the first three outside the timing:
#   1. build bench/lego5 into build/bench-lego5 (`go build`; the module github.com/go-acme/lego/v5
#      and its dependencies come from the Go module proxy, into the usual Go caches);
#   2. register one ACME account (the program's `register`), which prints lego's persistent
#      record for each name (dnspersist01.GetChallengeInfo: "<issuer>; accounturi=<account URL>");
#   3. publish those records through challtestsrv's /set-txt, as bench.sh's publish_records does
#      for certfleet's account;
#   4. the timed batch (the program's `issue`), with Pebble's utime+stime read from /proc before
#      and after it.
# The last line is for scripts, in bench/peers.sh's format (grep '^peer='):
#
#   peer=lego5 mode=parallel n=2000 parallel=200 ok=2000 wall_s=.. certs_per_s=.. cpu_ms_per_cert=..
#       pebble_cpu_ms_per_cert=.. cpu_ms_total=.. version=v5.6.0 trust=ca-file
#
#   ok                      certificates whose SANs hold the name asked for
#   cpu_ms_per_cert         the program's own user+sys CPU (getrusage) over the batch, divided by ok
#   pebble_cpu_ms_per_cert  Pebble's utime+stime over the batch (10 ms ticks; it counts anyone
#                           else's use of Pebble too), divided by ok
#
# Exit status: 0 when every certificate was issued, 1 otherwise or when Go, the module or the
# stack cannot be had (with a message saying which), 2 on bad usage.
# Environment: LEGO5_BUILD_TIMEOUT seconds allowed to the build with its downloads [600];
# LEGO5_ARGS more flags for the program (see bench/lego5/main.go, e.g. -http1 or -v);
# LEGO5_KEEP_TMP=1 keeps the temporary folder (account, records, logs).
set -euo pipefail
umask 077
export LC_ALL=C

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SELF")/.." && pwd)"
say() { printf 'lego5: %s\n' "$*"; }
die() { printf 'lego5: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,6s/^# \{0,1\}//p' "$SELF" >&2; exit 2; }

N="${LEGO5_N:-2000}"
PARALLEL="${LEGO5_PARALLEL:-200}"
BUILD_TIMEOUT="${LEGO5_BUILD_TIMEOUT:-600}"
while (($#)); do
    case "$1" in
        -n) [[ $# -ge 2 ]] || usage; N="$2"; shift 2 ;;
        -p) [[ $# -ge 2 ]] || usage; PARALLEL="$2"; shift 2 ;;
        -h | --help) usage ;;
        *) echo "lego5: unknown argument: $1" >&2; usage ;;
    esac
done
for v in N PARALLEL BUILD_TIMEOUT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "lego5: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done

# ---- Go and the program ----
GO="$(command -v go || true)"
[[ -n "$GO" || ! -x /usr/local/go/bin/go ]] || GO=/usr/local/go/bin/go
[[ -n "$GO" ]] || die "no Go toolchain (go on PATH or /usr/local/go/bin/go): install Go 1.26 or newer"
gover="$("$GO" env GOVERSION 2>/dev/null || true)"
[[ "$gover" =~ ^go1\.([0-9]+) ]] && ((BASH_REMATCH[1] >= 26)) ||
    die "$GO is ${gover:-of unknown version}; lego v5 needs Go 1.26 or newer"
BIN="$REPO/build/bench-lego5"
mkdir -p "$REPO/build"
say "building $BIN with $gover (lego v5 from the Go module proxy or the module cache)"
# GOTOOLCHAIN=local: no toolchain download behind our back; GOFLAGS=-mod=mod: go.sum may gain
# lines for a newer Go's needs; timeout: an unreachable proxy fails the build instead of hanging it
build_rc=0
build_log="$(GOTOOLCHAIN=local GOFLAGS=-mod=mod timeout -k 10 "$BUILD_TIMEOUT" \
    "$GO" -C "$REPO/bench/lego5" build -o "$BIN" . 2>&1)" || build_rc=$?
if ((build_rc != 0)); then
    printf '%s\n' "$build_log" | tail -n 15 | sed 's/^/    /' >&2
    ((build_rc == 124)) && die "building bench/lego5 took more than ${BUILD_TIMEOUT}s (is the Go module proxy reachable? GOPROXY=$("$GO" env GOPROXY))"
    die "cannot build bench/lego5 (exit $build_rc): Go or the module github.com/go-acme/lego/v5 cannot be had (GOPROXY=$("$GO" env GOPROXY))"
fi

# ---- the stack ----
if [[ -z "${CERTFLEET_DIRECTORY:-}" || -z "${CERTFLEET_CHALLTESTSRV_URL:-}" || -z "${CERTFLEET_STACK_DIR:-}" ]]; then
    "$REPO/scripts/stack.sh" status >/dev/null 2>&1 || die "no running stack: start one with scripts/stack.sh start"
    eval "$("$REPO/scripts/stack.sh" env)"
fi
CA="${CERTFLEET_CA_BUNDLE:-$CERTFLEET_STACK_DIR/tls/ca.pem}"
[[ -r "$CA" ]] || die "the stack CA $CA is not readable"
DNS="${CERTFLEET_CHALLTESTSRV_DNS:-127.0.0.1:${CERTFLEET_DNS_PORT:-8053}}"
PEBBLE_PIDFILE="$CERTFLEET_STACK_DIR/run/pebble.pid"
CLK_TCK="$(getconf CLK_TCK)"
NO_PROXY='*' curl -fsS -o /dev/null --max-time 10 --cacert "$CA" "$CERTFLEET_DIRECTORY" ||
    die "Pebble does not answer at $CERTFLEET_DIRECTORY: is the stack running?"

# pebble_ms: Pebble's utime+stime in ms, or NA
pebble_ms() {
    local pid
    pid="$(head -n1 "$PEBBLE_PIDFILE" 2>/dev/null)" && [[ "$pid" =~ ^[0-9]+$ ]] &&
        grep -q '(pebble)' "/proc/$pid/stat" 2>/dev/null ||
        { echo NA; return; }
    awk -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$pid/stat"
}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/certfleet-lego5.XXXXXX")"
cleanup() {
    local rc=$?
    if [[ "${LEGO5_KEEP_TMP:-0}" == 1 ]]; then say "kept $TMP (LEGO5_KEEP_TMP=1)"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ZONE="$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n').lego5.peers.example"
ARGS=(-directory "$CERTFLEET_DIRECTORY" -ca-file "$CA" -state "$TMP/state" -dns "$DNS"
    -n "$N" -zone "$ZONE" -parallel "$PARALLEL" -key-type ec256)
# Pebble 2.10's lock-order deadlock (README, "Pebble's lock-order deadlock"): the stack's
# environment asks for the same workaround as certfleet's
[[ "${CERTFLEET_SEPARATE_NEW_ORDERS:-0}" == 1 ]] && ARGS+=(-separate-new-orders)
# shellcheck disable=SC2206  # LEGO5_ARGS is a list of flags without spaces in them
ARGS+=(${LEGO5_ARGS:-})

# ---- account and records, outside the timing ----
export NO_PROXY='*' no_proxy='*'
"$BIN" "${ARGS[@]}" register >"$TMP/records" 2>"$TMP/register.log" ||
    { tail -n 20 "$TMP/register.log" | sed 's/^/    /' >&2; die "account registration at $CERTFLEET_DIRECTORY failed"; }
[[ "$(wc -l <"$TMP/records")" -eq "$N" ]] || die "register printed $(wc -l <"$TMP/records") records for $N names"
say "account $(sed -n '1s/.*accounturi=\([^; ]*\).*/\1/p' "$TMP/records"); publishing $N records through $CERTFLEET_CHALLTESTSRV_URL"
awk -F'\t' '{ printf "{\"host\":\"%s\",\"value\":\"%s\"}\n", $1, $2 }' "$TMP/records" |
    xargs -P 8 -d '\n' -I{} curl -sf -o /dev/null --max-time 10 -X POST -d {} "$CERTFLEET_CHALLTESTSRV_URL/set-txt" ||
    die "publishing the records through $CERTFLEET_CHALLTESTSRV_URL/set-txt failed"

# ---- the timed batch ----
say "$N certificates under $ZONE, $PARALLEL at a time, dns-persist-01 with the records in place"
pb0="$(pebble_ms)"
rc=0
"$BIN" "${ARGS[@]}" issue </dev/null >"$TMP/issue.out" 2>"$TMP/issue.err" || rc=$?
pb1="$(pebble_ms)"
line="$(grep '^peer=' "$TMP/issue.out" || true)"
if [[ -z "$line" ]]; then
    tail -n 20 "$TMP/issue.err" | sed 's/^/    /' >&2
    die "bench-lego5 issue printed no result (exit $rc)"
fi
ok="$(sed -n 's/.* ok=\([0-9]*\) .*/\1/p' <<<"$line")"
pebble="NA"
if [[ "$pb0" != NA && "$pb1" != NA ]] && ((ok > 0)); then
    pebble="$(awk -v a="$pb0" -v b="$pb1" -v n="$ok" 'BEGIN { printf "%.1f", (b - a) / n }')"
fi
line="${line/pebble_cpu_ms_per_cert=NA/pebble_cpu_ms_per_cert=$pebble}"
if ((rc != 0)); then
    say "$((N - ok)) of $N certificates not issued (exit $rc); the first failures:"
    grep '^bench-lego5: ' "$TMP/issue.err" | head -n 4 | sed 's/^/    /'
fi
say "$(awk -v l="$line" 'BEGIN { n = split(l, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
    printf "%s/%s certificates in %s s (%s/s); client CPU %s ms/cert; Pebble CPU %s ms/cert", v["ok"], v["n"], v["wall_s"], v["certs_per_s"], v["cpu_ms_per_cert"], v["pebble_cpu_ms_per_cert"] }')"
printf '%s\n' "$line"
exit "$rc"
