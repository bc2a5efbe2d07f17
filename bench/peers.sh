#!/usr/bin/env bash
# peers.sh - the peer baseline of `make bench`: Debian's lego and uacme issuing certificates
# against the local stack's Pebble, with dns-01 answered through pebble-challtestsrv.
#
#   bench/peers.sh [-n N] [-p PARALLEL] [-t SECS] [lego] [uacme]
#
# For each peer, two configurations, each with its own account (registered before timing):
#   sequential  N certificates, one client process after another
#   parallel    N certificates, PARALLEL client processes at a time
# Every certificate is one random name under a zone unique to the configuration, with an
# EC P-256 key, validated by dns-01: the client's hook POSTs /set-txt and /clear-txt to
# challtestsrv with curl. Lines starting "peers: " are for people; at the end comes one line
# per configuration for scripts (grep '^peer='), all on one line:
#
#   peer=lego mode=sequential n=20 parallel=1 ok=20 wall_s=12.30 certs_per_s=1.63
#       cpu_ms_per_cert=70.0 hook_cpu_ms_per_cert=24.0 pebble_cpu_ms_per_cert=12.5
#       retry_cpu_ms_per_cert=0.0 attempts=20 cpu_ms_total=1400 pebble_cpu_ms_total=250
#       version=4.9.1-1 trust=none
#
#   ok                      certificates issued: client exit 0 and a certificate file that
#                           openssl parses and whose SANs hold the name asked for
#   wall_s, certs_per_s     the batch only (account registration is done before it)
#   cpu_ms_per_cert         user+sys CPU of every process the batch ran (clients, timeout(1),
#                           hooks and their curl), from getrusage of the reaped children
#                           (bash's times), divided by ok; per-certificate values are NA
#                           when ok=0
#   hook_cpu_ms_per_cert    the hooks' share of it, estimated: hook calls counted in the batch
#                           times the CPU of one call, calibrated at start-up
#   pebble_cpu_ms_per_cert  Pebble's utime+stime (/proc/PID/stat) over the batch, divided by
#                           ok; 10 ms clock ticks, and it counts anyone else's use of Pebble
#   retry_cpu_ms_per_cert   the part of cpu_ms_per_cert spent in uacme invocations that were
#                           retried (see below); 0 for lego
#   attempts                client invocations in the batch
#   trust                   how uacme trusted the stack CA (mountns, preload; none for lego)
#
# Exit status: 0 when every configuration issued all of its certificates, 1 otherwise (the
# failing clients' output is shown), 2 on bad usage.
#
# Environment (defaults in brackets); flags win over the environment:
#   N                   certificates per configuration [20]                        (-n)
#   PARALLEL            client processes at a time in the parallel configuration [20] (-p)
#   PEERS               peers to run, comma- or space-separated [lego uacme]       (arguments)
#   PEERS_MODES         configurations to run [sequential parallel]
#   PEERS_TIMEOUT       seconds allowed to each client invocation [120]            (-t)
#   PEERS_UACME_TRUST   how uacme is made to trust the stack CA: auto, mountns, preload [auto]
#   PEERS_UACME_ATTEMPTS  uacme invocations allowed per certificate [20]
#   PEERS_KEEP_TMP=1    keep the temporary folder (accounts, certificates, logs) for debugging
#   PEERS_KEEP_STACK=1  leave the stack running even when this script started it
#   CERTFLEET_STACK_DIR and the CERTFLEET_*_PORT variables: see scripts/stack.sh
#
# The stack: when scripts/stack.sh reports it running, it is used and left running;
# when it is down, it is started here and stopped at the end. Missing lego/uacme are
# installed with apt-get. Client state lives in a private temporary folder that is deleted
# at the end; no private key is ever printed.
#
# How each client is set up:
#   lego 4.9.1   lego --server DIR --path P --accept-tos --email E --key-type ec256 \
#                  --dns exec --dns.resolvers 127.0.0.1:DNSPORT --dns.disable-cp -d NAME run
#                env LEGO_CA_CERTIFICATES=<stack CA> EXEC_PATH=<hook> EXEC_POLLING_INTERVAL=0
#                    EXEC_PROPAGATION_TIMEOUT=30
#                lego 4.9.1 has no register-only command: the account is registered by one
#                warm-up certificate per configuration, outside the timing.
#   uacme 1.7.4  uacme -c CONFDIR -a DIR -t EC -b 256 -o -h <hook> issue NAME
#                (account: uacme -c CONFDIR -a DIR -t EC -b 256 -y new, outside the timing)
#                uacme has no CA option and its libcurl (GnuTLS flavour) ignores SSL_CERT_FILE,
#                SSL_CERT_DIR and CURL_CA_BUNDLE: it always trusts the compiled-in CA path
#                /etc/ssl/certs. mountns (preferred) runs the batch in a private mount
#                namespace where a folder holding only the stack CA is bind-mounted over
#                /etc/ssl/certs (the system store is not touched; other processes see no
#                change). preload (fallback where unshare is not allowed, e.g. an unprivileged
#                container) LD_PRELOADs a 10-line shim, compiled here with cc, that sets
#                CURLOPT_CAINFO to the stack CA before each transfer.
#                uacme 1.7.4 stops with "failed to parse challenge" when it meets a challenge
#                without a token before dns-01; Pebble v2.10 offers dns-persist-01 (no token)
#                and shuffles the challenges of every authorization, so about half of the
#                uacme invocations fail that way. uacme also gives up on a request after
#                three badNonce answers in a row, and Pebble rejects 5% of nonces on purpose
#                (rare: about 1 in 8000 requests). Those two failures, and only those, are
#                retried with a new uacme invocation (a new order); every attempt counts in
#                the time and the CPU, in attempts=, and the CPU of the retried ones also
#                in retry_cpu_ms_per_cert=.
set -euo pipefail
umask 077
export LC_ALL=C   # EPOCHREALTIME and awk with a '.' decimal point

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SELF")/.." && pwd)"

say() { printf 'peers: %s\n' "$*"; }
warn() { printf 'peers: warning: %s\n' "$*" >&2; }
die() { printf 'peers: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,5s/^# \{0,1\}//p' "$SELF" >&2
    echo "see the comment at the top of $SELF for the environment variables" >&2
    exit 2
}

# ---------------------------------------------------------------------------
# The batch runner: runs in a child bash (for uacme inside the private mount
# namespace). Everything it needs comes from PEERS_R_* variables.
# ---------------------------------------------------------------------------

# run_one I: issue certificate I of the batch; writes rc.I and attempts.I. Builtins
# only around the client, so that the batch's CPU time is the clients' and hooks'.
run_one() {
    local i=$1 name log attempt rc=1 alog out
    name="${NAMES[i]}"
    log="$PEERS_R_CFG/log/$i.log"
    case "$PEERS_R_PEER" in
        lego)
            attempt=1
            timeout -k 5 "$PEERS_R_TIMEOUT" lego "${LEGO_ARGS[@]}" -d "$name" run >"$log" 2>&1 && rc=0 || rc=$?
            ;;
        uacme)
            : >"$log"
            # times (a builtin): this subshell's reaped children so far, before the first
            # and before the latest attempt; the difference is the retried attempts' CPU.
            times >"$PEERS_R_CFG/times-first.$i"
            for ((attempt = 1; attempt <= PEERS_R_ATTEMPTS; attempt++)); do
                alog="$PEERS_R_CFG/log/$i.attempt"
                times >"$PEERS_R_CFG/times-last.$i"
                LD_PRELOAD="$UACME_PRELOAD" PEERS_CAINFO="$PEERS_R_CA" \
                    timeout -k 5 "$PEERS_R_TIMEOUT" uacme "${UACME_ARGS[@]}" issue "$name" >"$alog" 2>&1 && rc=0 || rc=$?
                ((rc != 0)) || break
                out=""
                read -r -d '' out <"$alog" || true
                printf '[attempt %d: exit %d]\n%s\n' "$attempt" "$rc" "$out" >>"$log"
                # Retry only the two known failures (see the top of this file): a token-less
                # challenge (dns-persist-01) listed before dns-01, and a request whose nonce
                # Pebble rejected three times in a row. Anything else is a real failure.
                [[ "$out" == *"failed to parse challenge"* || "$out" == *"error:badNonce"* ]] || break
            done
            ((attempt <= PEERS_R_ATTEMPTS)) || attempt=$PEERS_R_ATTEMPTS
            ;;
    esac
    echo "$rc" >"$PEERS_R_CFG/rc.$i"
    echo "$attempt" >"$PEERS_R_CFG/attempts.$i"
}

runner() {
    local n=$PEERS_R_N p=$PEERS_R_P i running=0
    mapfile -t NAMES <"$PEERS_R_CFG/names"
    export NO_PROXY='*' no_proxy='*'
    unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
    case "$PEERS_R_PEER" in
        lego)
            # shellcheck disable=SC2206
            LEGO_ARGS=($PEERS_R_ARGS)
            export LEGO_CA_CERTIFICATES EXEC_PATH EXEC_POLLING_INTERVAL EXEC_PROPAGATION_TIMEOUT
            ;;
        uacme)
            # shellcheck disable=SC2206
            UACME_ARGS=($PEERS_R_ARGS)
            # preload trust mode: the shim goes to uacme (and its timeout) only
            UACME_PRELOAD="${PEERS_R_PRELOAD:-}"
            ;;
    esac
    for ((i = 0; i < n; i++)); do
        if ((running >= p)); then
            wait -n || true
            running=$((running - 1))
        fi
        run_one "$i" &
        running=$((running + 1))
    done
    wait
}

if [[ "${1:-}" == __runner ]]; then
    runner
    exit 0
fi

# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------
N="${N:-20}"
PARALLEL="${PARALLEL:-20}"
PEERS_LIST="${PEERS:-lego uacme}"
MODES="${PEERS_MODES:-sequential parallel}"
CLIENT_TIMEOUT="${PEERS_TIMEOUT:-120}"
UACME_TRUST="${PEERS_UACME_TRUST:-auto}"
UACME_ATTEMPTS="${PEERS_UACME_ATTEMPTS:-20}"
args_peers=()
while (($#)); do
    case "$1" in
        -n) N="${2:?-n needs a number}"; shift 2 ;;
        -p) PARALLEL="${2:?-p needs a number}"; shift 2 ;;
        -t) CLIENT_TIMEOUT="${2:?-t needs seconds}"; shift 2 ;;
        -h | --help) usage ;;
        lego | uacme) args_peers+=("$1"); shift ;;
        *) echo "peers: unknown argument: $1" >&2; usage ;;
    esac
done
if ((${#args_peers[@]})); then PEERS_LIST="${args_peers[*]}"; fi
PEERS_LIST="${PEERS_LIST//,/ }"
MODES="${MODES//,/ }"
for v in N PARALLEL CLIENT_TIMEOUT UACME_ATTEMPTS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "peers: $v must be a positive integer (got '${!v}')" >&2; exit 2; }
done
for p in $PEERS_LIST; do
    [[ "$p" == lego || "$p" == uacme ]] || { echo "peers: unknown peer '$p' (lego, uacme)" >&2; exit 2; }
done
for m in $MODES; do
    [[ "$m" == sequential || "$m" == parallel ]] || { echo "peers: unknown mode '$m' (sequential, parallel)" >&2; exit 2; }
done
case "$UACME_TRUST" in auto | mountns | preload) ;; *) echo "peers: PEERS_UACME_TRUST must be auto, mountns or preload" >&2; exit 2 ;; esac

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
ensure_packages() {
    local want=() p
    for p in $PEERS_LIST; do command -v "$p" >/dev/null 2>&1 || want+=("$p"); done
    command -v curl >/dev/null 2>&1 || want+=(curl)
    command -v openssl >/dev/null 2>&1 || want+=(openssl)
    ((${#want[@]})) || return 0
    [[ $EUID -eq 0 ]] || die "missing ${want[*]}; run as root or: sudo apt-get install ${want[*]}"
    say "installing ${want[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${want[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get install -y --no-install-recommends "${want[@]}" >/dev/null ||
            die "apt-get install ${want[*]} failed"
    fi
}
ensure_packages
pkg_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo unknown; }

# ---------------------------------------------------------------------------
# Stack
# ---------------------------------------------------------------------------
STACK="$REPO/scripts/stack.sh"
STARTED_STACK=0
TMP=""
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    local rc=$?
    if [[ -n "$TMP" ]]; then
        if [[ "${PEERS_KEEP_TMP:-0}" == 1 ]]; then
            say "kept $TMP (PEERS_KEEP_TMP=1)"
        else
            rm -rf "$TMP"
        fi
    fi
    if ((STARTED_STACK)) && [[ "${PEERS_KEEP_STACK:-0}" != 1 ]]; then
        "$STACK" stop >/dev/null 2>&1 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stack_rc=0
"$STACK" status >/dev/null 2>&1 || stack_rc=$?
if ((stack_rc != 0)); then
    ((stack_rc == 3)) && STARTED_STACK=1
    say "starting the local stack (scripts/stack.sh start)"
    "$STACK" start >/dev/null || die "scripts/stack.sh start failed"
else
    say "using the running local stack (left running)"
fi
eval "$("$STACK" env)"
DIRECTORY="$CERTFLEET_DIRECTORY"
CA="$CERTFLEET_CA_BUNDLE"
CHALL="$CERTFLEET_CHALLTESTSRV_URL"
DNS_PORT="${CERTFLEET_DNS_PORT:-8053}"
if [[ -s "$CERTFLEET_STACK_DIR/run/ports" ]]; then
    p="$(sed -n 's/^DNS_PORT=\([0-9]*\)$/\1/p' "$CERTFLEET_STACK_DIR/run/ports")"
    [[ -n "$p" ]] && DNS_PORT="$p"
fi
PEBBLE_PIDFILE="$CERTFLEET_STACK_DIR/run/pebble.pid"
CLK_TCK="$(getconf CLK_TCK)"

# pebble_ticks VAR: utime+stime of Pebble in clock ticks into VAR (-1 when unknown).
# Builtins only, so that it adds nothing to the children's CPU time.
pebble_ticks() {
    local -n _out=$1
    local pid line rest f
    _out=-1
    [[ -s "$PEBBLE_PIDFILE" ]] || return 0
    read -r pid <"$PEBBLE_PIDFILE" || return 0
    [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/stat" ]] || return 0
    read -r line <"/proc/$pid/stat" || return 0
    [[ "$line" == *"(pebble)"* ]] || return 0
    rest="${line##*) }"
    read -r -a f <<<"$rest"
    _out=$((f[11] + f[12]))
}
probe=-1
pebble_ticks probe
((probe >= 0)) || warn "cannot read Pebble's CPU time ($PEBBLE_PIDFILE): pebble_cpu_ms_per_cert=NA"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/certfleet-peers.XXXXXX")"
chmod 0700 "$TMP"
[[ "$TMP$DIRECTORY" != *[[:space:]]* ]] || die "the temporary folder and the directory URL must not contain spaces ($TMP)"
RUN_ID="$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"

# ---------------------------------------------------------------------------
# Hooks: one POST to challtestsrv per call. Each call appends one byte to
# $PEERS_HOOK_LOG (c: called curl, d: declined), a shell builtin and nearly free, so that
# the hooks' share of the CPU time can be estimated (see calibrate_hooks).
# ---------------------------------------------------------------------------
cat >"$TMP/hook-lego.sh" <<'EOF'
#!/bin/sh
# lego exec provider (EXEC_MODE unset): present|cleanup FQDN VALUE
unset LD_PRELOAD
case "$1" in
present) path=set-txt; body="{\"host\":\"$2\",\"value\":\"$3\"}" ;;
cleanup) path=clear-txt; body="{\"host\":\"$2\"}" ;;
*) exit 0 ;;
esac
printf c >>"$PEERS_HOOK_LOG"
exec curl --noproxy '*' -fsS --connect-timeout 5 --max-time 10 -o /dev/null -X POST -d "$body" "$PEERS_CHALL/$path"
EOF
cat >"$TMP/hook-uacme.sh" <<'EOF'
#!/bin/sh
# uacme hook: METHOD TYPE IDENT TOKEN AUTH; accepts dns-01 only (exit 1 declines)
unset LD_PRELOAD
if [ "$2" = dns-01 ]; then
    case "$1" in
    begin) path=set-txt; body="{\"host\":\"_acme-challenge.$3.\",\"value\":\"$5\"}" ;;
    done | failed) path=clear-txt; body="{\"host\":\"_acme-challenge.$3.\"}" ;;
    *) exit 1 ;;
    esac
    printf c >>"$PEERS_HOOK_LOG"
    exec curl --noproxy '*' -fsS --connect-timeout 5 --max-time 10 -o /dev/null -X POST -d "$body" "$PEERS_CHALL/$path"
fi
printf d >>"$PEERS_HOOK_LOG"
exit 1
EOF
chmod 0755 "$TMP/hook-lego.sh" "$TMP/hook-uacme.sh"
export PEERS_CHALL="$CHALL"

# calibrate_hooks: the CPU time of one hook call that POSTs with curl, and of one that
# declines, each averaged over 40 calls, measured like the batches (getrusage of the
# reaped children, through bash's times). hook_cpu_ms_per_cert = the calls that the
# batch logged times these costs: an estimate, precise to about a tenth of a ms.
calibrate_hooks() {
    local out host="_acme-challenge.calibrate.$RUN_ID.peers.example."
    if ! PEERS_HOOK_LOG=/dev/null "$TMP/hook-lego.sh" present "$host" v ||
        ! PEERS_HOOK_LOG=/dev/null "$TMP/hook-lego.sh" cleanup "$host" v; then
        die "the dns-01 hook cannot reach challtestsrv at $CHALL"
    fi
    out="$(PEERS_HOOK_LOG=/dev/null NO_PROXY='*' bash -c '
        k=40
        for ((i = 0; i < k; i++)); do "$1" present "$3" v; "$1" cleanup "$3" v; done
        times
        for ((i = 0; i < k; i++)); do "$2" begin http-01 x.example t a || true; done
        times' _ "$TMP/hook-lego.sh" "$TMP/hook-uacme.sh" "$host")"
    local a b
    a="$(sed -n 2p <<<"$out" | awk '{ for (i = 1; i <= NF; i++) { split($i, x, "m"); sub("s", "", x[2]); t += x[1] * 60 + x[2] } } END { printf "%d", t * 1e6 }')"
    b="$(sed -n 4p <<<"$out" | awk '{ for (i = 1; i <= NF; i++) { split($i, x, "m"); sub("s", "", x[2]); t += x[1] * 60 + x[2] } } END { printf "%d", t * 1e6 }')"
    HOOK_CURL_US=$((a / 80))
    HOOK_DECLINE_US=$(((b - a) / 40))
}
calibrate_hooks
say "$(awk -v a="$HOOK_CURL_US" -v b="$HOOK_DECLINE_US" 'BEGIN { printf "hook CPU per call (calibrated): %.2f ms with curl, %.2f ms declining", a / 1000, b / 1000 }')"

# ---------------------------------------------------------------------------
# uacme trust: a folder with only the stack CA, bind-mounted over /etc/ssl/certs
# in a private mount namespace; or the LD_PRELOAD shim.
# ---------------------------------------------------------------------------
mkdir -p "$TMP/trust"
cp "$CA" "$TMP/trust/certfleet-stack-ca.pem"
chmod 0644 "$TMP/trust/certfleet-stack-ca.pem"

build_shim() {
    [[ -s "$TMP/cainfo-shim.so" ]] && return 0
    command -v cc >/dev/null 2>&1 || { warn "no C compiler for the uacme CA shim"; return 1; }
    cat >"$TMP/cainfo-shim.c" <<'EOF'
/* Sets CURLOPT_CAINFO (and clears CURLOPT_CAPATH) from $PEERS_CAINFO before each transfer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
typedef void CURL;
extern int curl_easy_setopt(CURL *, int, ...);
int curl_easy_perform(CURL *h)
{
    static int (*real)(CURL *);
    const char *ca = getenv("PEERS_CAINFO");
    if (!real)
        real = (int (*)(CURL *))dlsym(RTLD_NEXT, "curl_easy_perform");
    if (ca && *ca) {
        curl_easy_setopt(h, 10065 /* CURLOPT_CAINFO */, ca);
        curl_easy_setopt(h, 10097 /* CURLOPT_CAPATH */, (char *)0);
    }
    return real(h);
}
EOF
    cc -shared -fPIC -O2 -o "$TMP/cainfo-shim.so" "$TMP/cainfo-shim.c" -ldl 2>"$TMP/shim.err" ||
        { warn "cannot build the uacme CA shim: $(head -c 300 "$TMP/shim.err")"; return 1; }
}

# in_trust MODE CMD...: run CMD with uacme trusting the stack CA the MODE way.
in_trust() {
    local mode=$1
    shift
    case "$mode" in
        mountns)
            # shellcheck disable=SC2016  # $0 and $@ belong to the inner bash
            unshare --mount --propagation private -- \
                bash -c 'mount --bind "$0" /etc/ssl/certs && exec "$@"' "$TMP/trust" "$@"
            ;;
        preload)
            # The runner passes the shim on to uacme only; a direct uacme gets it here.
            if [[ "$1" == bash ]]; then
                PEERS_R_PRELOAD="$TMP/cainfo-shim.so" "$@"
            else
                LD_PRELOAD="$TMP/cainfo-shim.so" PEERS_CAINFO="$TMP/trust/certfleet-stack-ca.pem" "$@"
            fi
            ;;
    esac
}

# ---------------------------------------------------------------------------
# One configuration
# ---------------------------------------------------------------------------
RESULTS=()
FAILED=0

# parse_children_times FILE: the second line of bash's times (reaped children), microseconds
parse_children_times() {
    awk 'NR == 2 { for (i = 1; i <= NF; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } }
         END { printf "%d", t * 1000000 + 0.5 }' "$1"
}

exit_text() { # RC: a client's exit status in words
    case "$1" in
        0) echo "exit 0, but no valid certificate file" ;;
        124 | 137) echo "exit $1: timed out after ${CLIENT_TIMEOUT}s" ;;
        missing) echo "no exit status (the batch was interrupted)" ;;
        *) echo "exit $1" ;;
    esac
}

verify_cert() { # FILE NAME
    [[ -s "$1" ]] && openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | grep -qF "DNS:$2"
}

run_config() {
    local peer=$1 mode=$2 n=$N p cfg zone i name trust_mode="" version regargs
    p=1
    [[ "$mode" == parallel ]] && p=$((PARALLEL < N ? PARALLEL : N))
    cfg="$TMP/$peer-$mode"
    zone="$RUN_ID.$peer-$mode.peers.example"
    mkdir -p "$cfg/log"
    for ((i = 0; i < n; i++)); do
        printf '%s.%s\n' "$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')" "$zone"
    done >"$cfg/names"
    export PEERS_HOOK_LOG="$cfg/hook-log"
    version="$(pkg_version "$peer")"

    # Account (and for lego a warm-up certificate), outside the timing.
    case "$peer" in
        lego)
            export LEGO_CA_CERTIFICATES="$CA" EXEC_PATH="$TMP/hook-lego.sh" \
                EXEC_POLLING_INTERVAL=0 EXEC_PROPAGATION_TIMEOUT=30
            PEERS_R_ARGS="--server $DIRECTORY --path $cfg/state --accept-tos --email bench@$zone --key-type ec256 --dns exec --dns.resolvers 127.0.0.1:$DNS_PORT --dns.disable-cp"
            local reg_rc=0
            # shellcheck disable=SC2086
            NO_PROXY='*' no_proxy='*' timeout -k 5 "$CLIENT_TIMEOUT" lego $PEERS_R_ARGS -d "warmup.$zone" run >"$cfg/register.log" 2>&1 || reg_rc=$?
            if ((reg_rc != 0)); then
                say "$peer $mode: account registration (warm-up certificate) failed: $(exit_text "$reg_rc")"
                tail -n 20 "$cfg/register.log" | sed 's/^/    /'
                record_failure "$peer" "$mode" "$n" "$p" "$version"
                return
            fi
            ;;
        uacme)
            PEERS_R_ARGS="-c $cfg/state -a $DIRECTORY -t EC -b 256 -o -h $TMP/hook-uacme.sh"
            regargs=(-c "$cfg/state" -a "$DIRECTORY" -t EC -b 256 -y new)
            local modes_to_try=("$UACME_TRUST") m
            [[ "$UACME_TRUST" == auto ]] && modes_to_try=(mountns preload)
            for m in "${modes_to_try[@]}"; do
                if [[ "$m" == preload ]] && ! build_shim; then continue; fi
                rm -rf "$cfg/state"
                if NO_PROXY='*' no_proxy='*' in_trust "$m" timeout -k 5 60 uacme "${regargs[@]}" >"$cfg/register.log" 2>&1; then
                    trust_mode=$m
                    break
                fi
                warn "uacme account registration with trust mode $m failed: $(grep -v '^\s*$' "$cfg/register.log" | tail -n 2 | tr '\n' ' ')"
            done
            if [[ -z "$trust_mode" ]]; then
                say "$peer $mode: cannot make uacme trust the stack CA (tried ${modes_to_try[*]}):"
                tail -n 20 "$cfg/register.log" | sed 's/^/    /'
                record_failure "$peer" "$mode" "$n" "$p" "$version"
                return
            fi
            ;;
    esac
    : >"$cfg/hook-log"

    export PEERS_R_PEER="$peer" PEERS_R_N="$n" PEERS_R_P="$p" PEERS_R_CFG="$cfg" \
        PEERS_R_TIMEOUT="$CLIENT_TIMEOUT" PEERS_R_ATTEMPTS="$UACME_ATTEMPTS" PEERS_R_ARGS \
        PEERS_R_CA="$CA"
    local runner_cmd=(bash "$SELF" __runner)
    [[ -n "$trust_mode" ]] && runner_cmd=(in_trust "$trust_mode" "${runner_cmd[@]}")

    say "$peer $mode: $n certificates, $p at a time${trust_mode:+ (uacme trust: $trust_mode)}"
    local t0 t1 pb0 pb1 runner_rc=0
    # Only the runner runs between the two `times`: the children's CPU delta is the batch's.
    times >"$cfg/times0"
    pebble_ticks pb0
    t0=$EPOCHREALTIME
    "${runner_cmd[@]}" || runner_rc=$?
    t1=$EPOCHREALTIME
    pebble_ticks pb1
    times >"$cfg/times1"
    ((runner_rc == 0)) || warn "$peer $mode: the batch runner exited $runner_rc"

    # Results
    local ok=0 attempts=0 a rc f bad=()
    for ((i = 0; i < n; i++)); do
        name="$(sed -n "$((i + 1))p" "$cfg/names")"
        rc="$(cat "$cfg/rc.$i" 2>/dev/null || echo missing)"
        a="$(cat "$cfg/attempts.$i" 2>/dev/null || echo 0)"
        attempts=$((attempts + a))
        case "$peer" in
            lego) f="$cfg/state/certificates/$name.crt" ;;
            uacme) f="$cfg/state/$name/cert.pem" ;;
        esac
        if [[ "$rc" == 0 ]] && verify_cert "$f" "$name"; then
            ok=$((ok + 1))
        else
            bad+=("$i:$rc")
        fi
    done
    local cpu_us hook_us line pebble_ms retry_us=0 r0 r1
    for ((i = 0; i < n; i++)); do
        [[ -s "$cfg/times-first.$i" && -s "$cfg/times-last.$i" ]] || continue
        r0="$(parse_children_times "$cfg/times-first.$i")"
        r1="$(parse_children_times "$cfg/times-last.$i")"
        retry_us=$((retry_us + r1 - r0))
    done
    cpu_us=$(($(parse_children_times "$cfg/times1") - $(parse_children_times "$cfg/times0")))
    local hc hd
    hc="$(tr -cd c <"$cfg/hook-log" | wc -c)"
    hd="$(tr -cd d <"$cfg/hook-log" | wc -c)"
    hook_us=$((hc * HOOK_CURL_US + hd * HOOK_DECLINE_US))
    if ((pb0 >= 0 && pb1 >= pb0)); then
        pebble_ms=$(((pb1 - pb0) * 1000 / CLK_TCK))
    else
        pebble_ms=NA
    fi
    line="$(awk -v peer="$peer" -v mode="$mode" -v n="$n" -v p="$p" -v ok="$ok" \
        -v t0="$t0" -v t1="$t1" -v cpu="$cpu_us" -v hook="$hook_us" -v pb="$pebble_ms" \
        -v att="$attempts" -v ver="$version" -v trust="${trust_mode:-none}" -v retry="$retry_us" 'BEGIN {
        wall = t1 - t0; d = (ok > 0) ? ok : 0
        printf "peer=%s mode=%s n=%d parallel=%d ok=%d wall_s=%.2f certs_per_s=%s", peer, mode, n, p, ok, wall, (wall > 0 ? sprintf("%.2f", ok / wall) : "NA")
        printf " cpu_ms_per_cert=%s hook_cpu_ms_per_cert=%s", (d ? sprintf("%.1f", cpu / 1000 / d) : "NA"), (d ? sprintf("%.1f", hook / 1000 / d) : "NA")
        printf " pebble_cpu_ms_per_cert=%s", ((d && pb != "NA") ? sprintf("%.1f", pb / d) : "NA")
        printf " retry_cpu_ms_per_cert=%s", (d ? sprintf("%.1f", retry / 1000 / d) : "NA")
        printf " attempts=%d cpu_ms_total=%.0f pebble_cpu_ms_total=%s version=%s trust=%s\n", att, cpu / 1000, pb, ver, trust
    }')"
    # Human-readable summary
    awk -v peer="$peer" -v mode="$mode" -v n="$n" -v ok="$ok" -v t0="$t0" -v t1="$t1" \
        -v cpu="$cpu_us" -v hook="$hook_us" -v pb="$pebble_ms" -v att="$attempts" -v retry="$retry_us" 'BEGIN {
        wall = t1 - t0
        printf "peers: %s %s: %d/%d certificates in %.2f s (%.2f/s); client CPU %.0f ms", peer, mode, ok, n, wall, ok / wall, cpu / 1000
        if (ok) printf " (%.1f ms/cert, of which hooks ~%.1f", cpu / 1000 / ok, hook / 1000 / ok
        if (ok && retry > 0) printf ", retried attempts %.1f", retry / 1000 / ok
        if (ok) printf ")"
        printf "; Pebble CPU %s ms", pb
        if (ok && pb != "NA") printf " (%.1f ms/cert)", pb / ok
        printf "; %d client invocations\n", att
    }'
    if ((${#bad[@]})); then
        FAILED=1
        say "$peer $mode: $((n - ok)) of $n certificates missing or invalid; client output of the first ones:"
        local shown=0 entry
        for entry in "${bad[@]}"; do
            ((shown < 3)) || break
            i="${entry%%:*}"
            name="$(sed -n "$((i + 1))p" "$cfg/names")"
            echo "    --- $name: $(exit_text "${entry#*:}") ---"
            tail -n 25 "$cfg/log/$i.log" 2>/dev/null | sed 's/^/    /'
            shown=$((shown + 1))
        done
    fi
    RESULTS+=("$line")
}

record_failure() { # PEER MODE N P VERSION
    local line="peer=$1 mode=$2 n=$3 parallel=$4 ok=0 wall_s=NA certs_per_s=NA cpu_ms_per_cert=NA hook_cpu_ms_per_cert=NA pebble_cpu_ms_per_cert=NA retry_cpu_ms_per_cert=NA attempts=0 cpu_ms_total=NA pebble_cpu_ms_total=NA version=$5 trust=none"
    FAILED=1
    RESULTS+=("$line")
}

say "N=$N PARALLEL=$PARALLEL peers: $PEERS_LIST; modes: $MODES; client timeout ${CLIENT_TIMEOUT}s"
say "ACME directory $DIRECTORY, challtestsrv $CHALL, DNS 127.0.0.1:$DNS_PORT, $(nproc) CPUs"
for peer in $PEERS_LIST; do
    say "$peer $(pkg_version "$peer")"
    for mode in $MODES; do
        run_config "$peer" "$mode"
    done
done

say "results:"
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
