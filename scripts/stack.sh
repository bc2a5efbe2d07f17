#!/usr/bin/env bash
# stack.sh - the local throwaway test stack: PostgreSQL 15, Pebble and pebble-challtestsrv.
#
#   scripts/stack.sh start    start what is not running yet (a no-op when all runs)
#   scripts/stack.sh stop     stop everything and delete the data (logs are kept)
#   scripts/stack.sh status   print what runs; exit 0 all up, 1 partly up, 3 all down
#   scripts/stack.sh env      print export lines: eval "$(scripts/stack.sh env)"
#   scripts/stack.sh restart-postgres   restart PostgreSQL alone, data kept
#   scripts/stack.sh stop-postgres      stop PostgreSQL alone (fast shutdown), data kept
#   scripts/stack.sh start-postgres     start it again after stop-postgres
#
# Everything listens on loopback only. The services are detached from the calling
# shell (setsid) and found again through pid files in the state folder.
#
# Environment (defaults in brackets):
#   CERTFLEET_STACK_DIR            state folder [<repo>/.stack]
#   CERTFLEET_PG_PORT              PostgreSQL TCP port on 127.0.0.1 [25432]
#   CERTFLEET_PEBBLE_PORT          Pebble ACME API, HTTPS [14000]
#   CERTFLEET_PEBBLE_MGMT_PORT     Pebble management API, HTTPS [15000]
#   CERTFLEET_PEBBLE_RETRY_AFTER   seconds of Retry-After Pebble sends while it validates [1]
#   CERTFLEET_DNS_PORT             challtestsrv DNS, UDP and TCP [8053]
#   CERTFLEET_CHALLTESTSRV_PORT    challtestsrv management API, HTTP [8055]
#   CERTFLEET_TOOLS                where pebble binaries live [~/.cache/certfleet/bin]
#   CERTFLEET_PG_BIN               PostgreSQL binaries [/usr/lib/postgresql/15/bin]
#   CERTFLEET_STACK_TIMEOUT        seconds to wait for each service [60]
#   PEBBLE_*                       passed to Pebble as they are (PEBBLE_VA_NOSLEEP and
#                                  PEBBLE_AUTHZREUSE default to 1 and 0 here), except
#                                  PEBBLE_VA_ALWAYS_VALID, which is never passed: it
#                                  would skip the validation that certfleet exists to pass.
#
# State folder layout:
#   run/      pid files, ports in use, where the PostgreSQL data lives
#   pg/       PostgreSQL data/ and sock/ (elsewhere when the server user cannot reach it)
#   tls/      stack CA and Pebble's HTTPS certificate
#   logs/     postgres.log, pebble.log, challtestsrv.log (kept by stop)
set -euo pipefail
umask 022

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${HOME:=$(cd ~ && pwd)}"   # CI may run with a bare environment
STATE="${CERTFLEET_STACK_DIR:-$REPO/.stack}"
[[ "$STATE" == /* ]] || STATE="$PWD/$STATE"
TOOLS="${CERTFLEET_TOOLS:-$HOME/.cache/certfleet/bin}"
PG_BIN="${CERTFLEET_PG_BIN:-/usr/lib/postgresql/15/bin}"
TIMEOUT="${CERTFLEET_STACK_TIMEOUT:-60}"

RUN="$STATE/run"
LOGS="$STATE/logs"
TLS="$STATE/tls"

# The default ports lie below Linux's ephemeral range (32768-60999): a port in it can be held by
# any outgoing connection's local end, and PostgreSQL restarted under a busy run then cannot bind.
ports_from_env() {
    PG_PORT="${CERTFLEET_PG_PORT:-25432}"
    PEBBLE_PORT="${CERTFLEET_PEBBLE_PORT:-14000}"
    PEBBLE_MGMT_PORT="${CERTFLEET_PEBBLE_MGMT_PORT:-15000}"
    DNS_PORT="${CERTFLEET_DNS_PORT:-8053}"
    CHALLTESTSRV_PORT="${CERTFLEET_CHALLTESTSRV_PORT:-8055}"
}
ports_from_env
# A started stack keeps the ports it was started with, whatever the caller's
# environment says now (start writes run/ports, stop deletes it).
if [[ -f "$RUN/ports" ]]; then
    # shellcheck source=/dev/null
    . "$RUN/ports"
fi

PG_ROOT=""       # holds data/ and sock/; see choose_pg_root
PG_RUNAS=""      # user that runs PostgreSQL when we are root (postgres refuses to run as root)

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# curl that never goes through a proxy: every address here is on loopback.
lcurl() { curl --noproxy '*' --connect-timeout 2 --max-time 5 "$@"; }

# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

# svc_pid NAME: print the pid of service NAME and succeed when it is alive and
# really is that program (a stale pid file may name a recycled pid).
svc_pid() {
    local name="$1" pidf="$RUN/$1.pid" pid exe want
    [[ -s "$pidf" ]] || return 1
    pid="$(head -n1 "$pidf")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -d "/proc/$pid" ]] || return 1
    case "$name" in
        postgres) want=postgres ;;
        pebble) want=pebble ;;
        challtestsrv) want=pebble-challtestsrv ;;
    esac
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    exe="${exe% (deleted)}"
    [[ "${exe##*/}" == "$want" ]] || return 1
    printf '%s\n' "$pid"
}

svc_running() { svc_pid "$1" >/dev/null; }

# launch NAME LOG CMD...: start CMD in a new session, detached from our shell and
# terminal, so that it outlives the caller. The child writes its own pid before
# exec, so the pid file names the service itself (also its process group).
launch() {
    local name="$1" log="$2"
    shift 2
    rm -f "$RUN/$name.pid"
    # 9>&-: the service must not inherit the state lock (see lock_state).
    setsid -f bash -c 'cd / && echo $$ >"$0" && exec "$@"' "$RUN/$name.pid" "$@" \
        </dev/null >"$log" 2>&1 9>&-
}

show_log() {
    local log="$1"
    if [[ -s "$log" ]]; then
        printf -- '--- last lines of %s ---\n' "$log" >&2
        tail -n 30 "$log" >&2
        printf -- '---\n' >&2
    else
        printf -- '(%s is empty or missing)\n' "$log" >&2
    fi
}

# wait_ready NAME LOG CHECK...: poll CHECK until it succeeds; fail early when the
# service died, or after $TIMEOUT seconds (stopping it), showing the end of its log.
wait_ready() {
    local name="$1" log="$2" deadline i
    shift 2
    deadline=$((SECONDS + TIMEOUT))
    for ((i = 0; ; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        # Give the child a moment to write its pid file before judging it dead.
        if ((i > 4)) && ! svc_running "$name"; then
            show_log "$log"
            die "$name exited during start-up (log: $log); 'scripts/stack.sh stop' cleans up"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$log"
            # A service that never answered is stopped, so that the next start retries it.
            stop_svc "$name"
            die "$name did not answer within ${TIMEOUT}s (log: $log); 'scripts/stack.sh stop' cleans up"
        fi
        sleep 0.2
    done
}

# port_busy PORT: true when something already accepts TCP connections on 127.0.0.1:PORT.
port_busy() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

check_port_free() {
    local name="$1" port="$2"
    if port_busy "$port"; then
        die "cannot start $name: 127.0.0.1:$port is already in use by another program; stop it or choose another port (see the CERTFLEET_*_PORT variables in $0)"
    fi
}

# stop_svc NAME: SIGTERM (SIGINT for PostgreSQL: fast shutdown) to the service,
# then SIGKILL to its whole process group after 15 s.
stop_svc() {
    local name="$1" pid sig=TERM i
    if ! pid="$(svc_pid "$name")"; then
        rm -f "$RUN/$name.pid"
        return 0
    fi
    [[ "$name" == postgres ]] && sig=INT
    say "stopping $name (pid $pid)"
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
        [[ -d "/proc/$pid" ]] || break
        sleep 0.2
    done
    if [[ -d "/proc/$pid" ]]; then
        say "$name did not stop within 15s: killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 25; i++)); do
            [[ -d "/proc/$pid" ]] || break
            sleep 0.2
        done
    fi
    rm -f "$RUN/$name.pid"
}

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
ensure_tools() {
    local missing=() t
    [[ -x "$TOOLS/pebble" ]] || missing+=("$TOOLS/pebble")
    [[ -x "$TOOLS/pebble-challtestsrv" ]] || missing+=("$TOOLS/pebble-challtestsrv")
    [[ -x "$PG_BIN/postgres" && -x "$PG_BIN/initdb" ]] || missing+=("$PG_BIN/postgres")
    for t in openssl curl psql pg_isready setsid; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "missing ${missing[*]}: running scripts/install-deps.sh"
    "$REPO/scripts/install-deps.sh"
    [[ -x "$TOOLS/pebble" && -x "$TOOLS/pebble-challtestsrv" ]] ||
        die "pebble binaries still missing in $TOOLS after install-deps.sh"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# Pick the unprivileged user that runs PostgreSQL when we are root.
choose_pg_user() {
    [[ $EUID -eq 0 ]] || return 0
    if id -u postgres >/dev/null 2>&1; then
        PG_RUNAS=postgres
    else
        if ! id -u certfleet >/dev/null 2>&1; then
            say "creating system user certfleet to run PostgreSQL"
            useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin certfleet
        fi
        PG_RUNAS=certfleet
    fi
}

# as_pg CMD...: run CMD as the PostgreSQL user (from /, which that user can enter).
as_pg() {
    if [[ -n "$PG_RUNAS" ]]; then
        (cd / && exec setpriv --reuid="$PG_RUNAS" --regid="$(id -g "$PG_RUNAS")" --init-groups -- "$@")
    else
        (cd / && exec "$@")
    fi
}

# The data normally lives in $STATE/pg. When the PostgreSQL user cannot reach the
# state folder (say a repository under /root, mode 0700) or the socket path would
# pass the 107-byte limit of a unix socket name, it goes to a private folder in
# /tmp instead; run/pg_root remembers where, so that stop finds it.
choose_pg_root() {
    if [[ -s "$RUN/pg_root" ]]; then
        PG_ROOT="$(<"$RUN/pg_root")"
    else
        PG_ROOT="$STATE/pg"
        local sock="$PG_ROOT/sock/.s.PGSQL.$PG_PORT"
        if ((${#sock} > 100)) || ! as_pg test -x "$STATE" 2>/dev/null; then
            PG_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/certfleet-pg.XXXXXX")"
            say "PostgreSQL data in $PG_ROOT ($(id -un "${PG_RUNAS:-$EUID}") cannot use $STATE/pg)"
        fi
    fi
    mkdir -p "$PG_ROOT/sock"
    [[ -z "$PG_RUNAS" ]] || chown -R "$PG_RUNAS:" "$PG_ROOT"
    chmod 0755 "$PG_ROOT" "$PG_ROOT/sock"
    printf '%s\n' "$PG_ROOT" >"$RUN/pg_root"
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -U postgres -t 2; }

start_postgres() {
    local data log="$LOGS/postgres.log"
    if svc_running postgres; then
        say "postgres already running (pid $(svc_pid postgres))"
        return 0
    fi
    check_port_free postgres "$PG_PORT"
    choose_pg_user
    choose_pg_root
    data="$PG_ROOT/data"

    if [[ ! -s "$data/PG_VERSION" ]]; then
        say "initdb $data (as ${PG_RUNAS:-$(id -un)})"
        rm -rf "$data"
        if ! as_pg "$PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
            --auth-local=trust --auth-host=trust --no-sync --no-instructions \
            >"$LOGS/initdb.log" 2>&1; then
            show_log "$LOGS/initdb.log"
            die "initdb failed (log: $LOGS/initdb.log)"
        fi
        # Throwaway test cluster: anyone on this machine may connect without a
        # password, over the unix socket or loopback TCP only (listen_addresses
        # below keeps it off every other interface). Never use this setup for
        # data that matters.
        cat >"$data/pg_hba.conf" <<EOF
# certfleet throwaway test cluster: trust, socket and loopback only.
local   all  all                trust
host    all  all  127.0.0.1/32  trust
host    all  all  ::1/128       trust
EOF
        # Tuned for tests, not for safety: a crash may lose or corrupt data, which
        # is fine for a cluster that stop deletes anyway.
        cat >>"$data/postgresql.conf" <<EOF

# --- certfleet test stack (scripts/stack.sh) ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_ROOT/sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi

    say "starting postgres on 127.0.0.1:$PG_PORT"
    if [[ -n "$PG_RUNAS" ]]; then
        launch postgres "$log" setpriv --reuid="$PG_RUNAS" --regid="$(id -g "$PG_RUNAS")" \
            --init-groups -- "$PG_BIN/postgres" -D "$data" -p "$PG_PORT"
    else
        launch postgres "$log" "$PG_BIN/postgres" -D "$data" -p "$PG_PORT"
    fi
    wait_ready postgres "$log" pg_ready

    # Role and database for certfleet: created once, kept across restarts of the cluster.
    local psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$PG_ROOT/sock" -p "$PG_PORT" -U postgres -d postgres)
    if [[ "$("${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'certfleet'")" != 1 ]]; then
        "${psql[@]}" -c "CREATE ROLE certfleet LOGIN CREATEDB"
    fi
    # CREATEROLE: `certfleet migrate` creates the least-privilege roles, and tests make login
    # roles that hold them
    "${psql[@]}" -c "ALTER ROLE certfleet CREATEROLE"
    if [[ "$("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'certfleet'")" != 1 ]]; then
        "${psql[@]}" -c "CREATE DATABASE certfleet OWNER certfleet"
    fi
    say "postgres ready: postgresql://certfleet@127.0.0.1:$PG_PORT/certfleet"
}

# ---------------------------------------------------------------------------
# TLS for Pebble's HTTPS listeners
# ---------------------------------------------------------------------------

# make_tls: a stack CA (EC P-256, self-signed) and a certificate for localhost and
# 127.0.0.1 signed by it. Kept while valid for another day; Pebble keeps using the
# files it was started with.
make_tls() {
    mkdir -p "$TLS"
    if [[ -s "$TLS/ca.pem" && -s "$TLS/server.pem" && -s "$TLS/server.key" ]] &&
        openssl x509 -in "$TLS/server.pem" -noout -checkend 86400 >/dev/null 2>&1 &&
        openssl x509 -in "$TLS/ca.pem" -noout -checkend 86400 >/dev/null 2>&1; then
        return 0
    fi
    say "making the stack CA and Pebble's HTTPS certificate in $TLS"
    rm -f "$TLS"/*
    cat >"$TLS/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = certfleet test stack CA
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    (
        umask 077
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TLS/ca.key"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TLS/server.key"
    ) 2>/dev/null
    chmod 0600 "$TLS/ca.key" "$TLS/server.key"
    openssl req -x509 -new -config "$TLS/openssl.cnf" -extensions ca_ext \
        -key "$TLS/ca.key" -sha256 -days 7 -out "$TLS/ca.pem" 2>/dev/null
    openssl req -new -config "$TLS/openssl.cnf" -subj "/CN=localhost" \
        -key "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 7 -sha256 \
        -extfile "$TLS/openssl.cnf" -extensions server_ext -out "$TLS/server.pem" 2>/dev/null
    rm -f "$TLS/server.csr"
    openssl verify -CAfile "$TLS/ca.pem" "$TLS/server.pem" >/dev/null ||
        die "the stack CA does not verify Pebble's certificate ($TLS)"
}

# ---------------------------------------------------------------------------
# pebble-challtestsrv: the DNS server Pebble asks, with an HTTP API to set records
# ---------------------------------------------------------------------------
challtestsrv_ready() {
    # The management API answers any path (404 for /), and DNS must take TCP
    # connections: Pebble queries over TCP.
    lcurl -s -o /dev/null "http://127.0.0.1:$CHALLTESTSRV_PORT/" && port_busy "$DNS_PORT"
}

start_challtestsrv() {
    local log="$LOGS/challtestsrv.log"
    if svc_running challtestsrv; then
        say "challtestsrv already running (pid $(svc_pid challtestsrv))"
        return 0
    fi
    check_port_free challtestsrv "$CHALLTESTSRV_PORT"
    check_port_free "challtestsrv DNS" "$DNS_PORT"
    say "starting challtestsrv: DNS 127.0.0.1:$DNS_PORT, API http://127.0.0.1:$CHALLTESTSRV_PORT"
    # An empty address disables a server (the binary drops empty entries and only
    # builds servers for the addresses left): no HTTP-01, HTTPS-01, TLS-ALPN-01 or
    # DoH listeners, which dns-persist-01 does not use.
    launch challtestsrv "$log" "$TOOLS/pebble-challtestsrv" \
        -management "127.0.0.1:$CHALLTESTSRV_PORT" \
        -dnsserver "127.0.0.1:$DNS_PORT" \
        -http01 "" -https01 "" -tlsalpn01 "" -doh ""
    wait_ready challtestsrv "$log" challtestsrv_ready
    say "challtestsrv ready"
}

# ---------------------------------------------------------------------------
# Pebble
# ---------------------------------------------------------------------------
write_pebble_config() {
    cat >"$STATE/pebble-config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$PEBBLE_PORT",
    "managementListenAddress": "127.0.0.1:$PEBBLE_MGMT_PORT",
    "certificate": "$TLS/server.pem",
    "privateKey": "$TLS/server.key",
    "httpPort": 5002,
    "tlsPort": 5001,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false,
    "domainBlocklist": ["blocked-domain.example"],
    "retryAfter": {
      "authz": ${CERTFLEET_PEBBLE_RETRY_AFTER:-1},
      "order": ${CERTFLEET_PEBBLE_RETRY_AFTER:-1}
    },
    "keyAlgorithm": "ecdsa",
    "profiles": {
      "default": {
        "description": "The profile you know and love",
        "validityPeriod": 7776000
      },
      "shortlived": {
        "description": "A short-lived cert profile, without actual enforcement",
        "validityPeriod": 518400
      }
    }
  }
}
EOF
}

pebble_ready() {
    lcurl -fsS -o /dev/null --cacert "$TLS/ca.pem" "https://localhost:$PEBBLE_PORT/dir" &&
        lcurl -fsS -o /dev/null --cacert "$TLS/ca.pem" "https://localhost:$PEBBLE_MGMT_PORT/roots/0"
}

start_pebble() {
    local log="$LOGS/pebble.log"
    if svc_running pebble; then
        say "pebble already running (pid $(svc_pid pebble))"
        return 0
    fi
    check_port_free pebble "$PEBBLE_PORT"
    check_port_free "pebble management" "$PEBBLE_MGMT_PORT"
    make_tls
    write_pebble_config
    if [[ -n "${PEBBLE_VA_ALWAYS_VALID:-}" ]]; then
        say "warning: ignoring PEBBLE_VA_ALWAYS_VALID: it would skip dns-persist-01 validation"
    fi
    say "starting pebble: https://localhost:$PEBBLE_PORT/dir (DNS 127.0.0.1:$DNS_PORT)"
    # PEBBLE_* from the caller pass through (say PEBBLE_WFE_NONCEREJECT; Pebble's own
    # default rejects 5% of nonces, which the client must survive).
    launch pebble "$log" env -u PEBBLE_VA_ALWAYS_VALID \
        PEBBLE_VA_NOSLEEP="${PEBBLE_VA_NOSLEEP:-1}" \
        PEBBLE_AUTHZREUSE="${PEBBLE_AUTHZREUSE:-0}" \
        "$TOOLS/pebble" -config "$STATE/pebble-config.json" -dnsserver "127.0.0.1:$DNS_PORT"
    wait_ready pebble "$log" pebble_ready
    say "pebble ready"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
env_lines() {
    q() { printf 'export %s=%q\n' "$1" "$2"; }
    q CERTFLEET_DB "postgresql://certfleet@127.0.0.1:$PG_PORT/certfleet"
    q CERTFLEET_DIRECTORY "https://localhost:$PEBBLE_PORT/dir"
    q CERTFLEET_CA_BUNDLE "$TLS/ca.pem"
    q CERTFLEET_CHALLTESTSRV_URL "http://127.0.0.1:$CHALLTESTSRV_PORT"
    q CERTFLEET_CHALLTESTSRV_DNS "127.0.0.1:$DNS_PORT"
    # challtestsrv's management API is plain http on 127.0.0.1
    q CERTFLEET_ALLOW_HTTP_LOOPBACK 1
    q CERTFLEET_PEBBLE_MGMT "https://localhost:$PEBBLE_MGMT_PORT"
    q CERTFLEET_STACK_DIR "$STATE"
    q CERTFLEET_CHALLTESTSRV_LOG "$LOGS/challtestsrv.log"
    # Pebble 2.10 can deadlock when newOrder and authorization fetches overlap under load:
    # certfleet run keeps them apart for this CA (see certfleet run --help).
    q CERTFLEET_SEPARATE_NEW_ORDERS 1
}

all_running() { svc_running postgres && svc_running challtestsrv && svc_running pebble; }
none_running() { ! svc_running postgres && ! svc_running challtestsrv && ! svc_running pebble; }

lock_state() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock 9
}

cmd_start() {
    lock_state
    if all_running; then
        say "already running (scripts/stack.sh status)"
        return 0
    fi
    ensure_tools
    mkdir -p "$RUN" "$LOGS"
    # The PostgreSQL user must be able to walk into the state folder.
    chmod 0755 "$STATE" "$RUN" "$LOGS"
    if none_running; then
        # Fresh start: the caller's ports, which are the stack's until stop.
        ports_from_env
        cat >"$RUN/ports" <<EOF
PG_PORT=$PG_PORT
PEBBLE_PORT=$PEBBLE_PORT
PEBBLE_MGMT_PORT=$PEBBLE_MGMT_PORT
DNS_PORT=$DNS_PORT
CHALLTESTSRV_PORT=$CHALLTESTSRV_PORT
EOF
    fi
    # Check every port first, so that a busy one stops us before anything starts.
    if ! svc_running postgres; then check_port_free postgres "$PG_PORT"; fi
    if ! svc_running challtestsrv; then
        check_port_free challtestsrv "$CHALLTESTSRV_PORT"
        check_port_free "challtestsrv DNS" "$DNS_PORT"
    fi
    if ! svc_running pebble; then
        check_port_free pebble "$PEBBLE_PORT"
        check_port_free "pebble management" "$PEBBLE_MGMT_PORT"
    fi
    start_postgres
    start_challtestsrv
    start_pebble
    say "stack up; eval \"\$($0 env)\" to use it"
}

cmd_stop() {
    lock_state
    local any=0 name
    for name in pebble challtestsrv postgres; do
        if svc_running "$name"; then any=1; fi
        stop_svc "$name"
    done
    ((any)) || say "nothing was running"
    # The data is throwaway. Delete only what start makes, never the whole folder:
    # CERTFLEET_STACK_DIR may point somewhere that holds other files.
    if [[ -s "$RUN/pg_root" ]]; then
        PG_ROOT="$(<"$RUN/pg_root")"
        case "$PG_ROOT" in
            "$STATE/pg" | */certfleet-pg.*) rm -rf "$PG_ROOT" ;;
        esac
    fi
    rm -rf "$STATE/pg" "$TLS" "$RUN" "$STATE/pebble-config.json"
    say "stopped; data removed, logs kept in $LOGS"
}

cmd_status() {
    local name pid up=0 detail
    for name in postgres challtestsrv pebble; do
        case "$name" in
            postgres) detail="127.0.0.1:$PG_PORT db certfleet" ;;
            challtestsrv) detail="dns 127.0.0.1:$DNS_PORT, api http://127.0.0.1:$CHALLTESTSRV_PORT" ;;
            pebble) detail="https://localhost:$PEBBLE_PORT/dir, mgmt https://localhost:$PEBBLE_MGMT_PORT" ;;
        esac
        if pid="$(svc_pid "$name")"; then
            printf '%-13s running  pid %-7s %s\n' "$name" "$pid" "$detail"
            up=$((up + 1))
        else
            printf '%-13s stopped\n' "$name"
        fi
    done
    printf 'state folder  %s\n' "$STATE"
    if ((up == 3)); then return 0; elif ((up == 0)); then return 3; else return 1; fi
}

# restart-postgres: a fast shutdown and a start of PostgreSQL alone, data kept (for tests of
# clients that must survive a database restart).
cmd_restart_postgres() {
    lock_state
    svc_running postgres || die "postgres is not running"
    stop_svc postgres
    start_postgres
}

# stop-postgres, start-postgres: PostgreSQL away for as long as the caller likes, the rest of the
# stack running and the data kept (for tests of clients that must outlast a long outage).
cmd_stop_postgres() {
    lock_state
    svc_running postgres || die "postgres is not running"
    stop_svc postgres
}

cmd_start_postgres() {
    lock_state
    [[ -s "$RUN/pg_root" ]] || die "no stack to start postgres in: scripts/stack.sh start"
    start_postgres
}

case "${1:-}" in
    start) cmd_start ;;
    restart-postgres) cmd_restart_postgres ;;
    stop-postgres) cmd_stop_postgres ;;
    start-postgres) cmd_start_postgres ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) env_lines ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
