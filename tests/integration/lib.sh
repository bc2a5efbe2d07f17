# lib.sh - helpers for certfleet's integration tests (sourced). Needs the stack's environment
# (eval "$(scripts/stack.sh env)") and CERTFLEET_BIN. Each test file gets its own database.

set -uo pipefail
CF=${CERTFLEET_BIN:?CERTFLEET_BIN not set}
TEST_NAME=$(basename "$0" .sh)
# unique names per run, so that records left in challtestsrv by other tests never interfere
RUN_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
ZONE="$RUN_ID.$(echo "$TEST_NAME" | tr '_' '-').example"
T_PASSED=0
T_FAILED=0
# each test file's own journal (run --journal), so that no test sees another's entries
export CERTFLEET_JOURNAL="${TMPDIR:-/tmp}/certfleet-journal.$TEST_NAME.$RUN_ID"
# and its own key-encryption key: certfleet seals every private key it stores under it
export CERTFLEET_KEK_FILE="${TMPDIR:-/tmp}/certfleet-kek.$TEST_NAME.$RUN_ID"
"$CF" keys generate-kek "$CERTFLEET_KEK_FILE" >/dev/null || exit 1
# challtestsrv's management API and the fake provider APIs are plain http on 127.0.0.1
export CERTFLEET_ALLOW_HTTP_LOOPBACK=1

ok() { echo "ok - $TEST_NAME: $1"; T_PASSED=$((T_PASSED + 1)); }
not_ok() { echo "not ok - $TEST_NAME: $1"; T_FAILED=$((T_FAILED + 1)); }

# check NAME COMMAND...: ok when the command succeeds
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi
}

# A fresh database for this test file; CERTFLEET_DB points at it afterwards.
db_new() {
	local base=${CERTFLEET_DB%/*} db="t_${TEST_NAME}_$RUN_ID"
	psql -q "$CERTFLEET_DB" -c "CREATE DATABASE \"$db\"" >/dev/null || return 1
	export CERTFLEET_DB="$base/$db"
	"$CF" migrate >/dev/null
}

sql() { psql -qAt -v ON_ERROR_STOP=1 "$CERTFLEET_DB" -c "$1"; }

# Checks the invariant of unfinished_jobs: a job has a row there, with its certificate and
# account, exactly while it is not finished.
check_unfinished() {
	check_eq "$1: unfinished_jobs lists exactly the unfinished jobs" "$(sql "SELECT count(*) FROM jobs j
		FULL JOIN unfinished_jobs a ON a.job_id = j.id
		WHERE j.id IS NULL OR (j.finished_at IS NULL) <> (a.job_id IS NOT NULL)
		OR a.certificate_id <> j.certificate_id OR a.account_id <> j.account_id")" 0
}

# result_keys_checked [SAMPLE]: "MISMATCHED/CHECKED" over every result (or SAMPLE of them, picked
# at random): does its stored key hold its leaf's public key? One query for all of them (line ends
# cross it as '~'); each key is opened with `certfleet keys open`, four at a time, and reaches the
# comparison (Python's cryptography, which compares the DER of the two public keys) through a
# pipe, never a file. A key that does not open or parse counts as mismatched. A few ms per result.
result_keys_checked() {
	local limit=${1:+"ORDER BY random() LIMIT $1"}
	sql "SELECT id, translate(leaf_pem, E'\n', '~'), translate(key_pem, E'\n', '~') FROM results ${limit:-}" |
		python3 -c '
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from cryptography import x509
from cryptography.hazmat.primitives import serialization

cf = sys.argv[1]
spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

def matches(row):
    try:
        _, leaf, key = row.rstrip("\n").split("|", 2)
        cert = x509.load_pem_x509_certificate(leaf.replace("~", "\n").encode())
        opened = subprocess.run([cf, "keys", "open", "results.key_pem"], input=key.replace("~", "\n") + "\n",
                                capture_output=True, text=True, check=True).stdout
        pub = serialization.load_pem_private_key(opened.encode(), password=None).public_key()
        return pub.public_bytes(*spki) == cert.public_key().public_bytes(*spki)
    except Exception:
        return False

rows = [r for r in sys.stdin if r.strip()]
with ThreadPoolExecutor(4) as pool:
    bad = sum(1 for ok in pool.map(matches, rows) if not ok)
print(f"{bad}/{len(rows)}")
' "$CF"
}

# out NAME ARGS...: runs certfleet provider ARGS with stdout+stderr into $tmp/NAME (the test's
# temporary folder); its exit code
out() {
	local name=$1
	shift
	"$CF" provider "$@" >"$tmp/$name" 2>&1
}

# random_port: a port for a server a test starts, below the kernel's ephemeral range. Inside that
# range the local end of an outgoing connection may hold the port for TCP, and the server then
# answers over UDP alone. The port after it is below the range too. Callers still retry when the
# server finds its port busy.
random_port() {
	local lo
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[[ "$lo" =~ ^[0-9]+$ ]] && [ "$lo" -gt 22000 ] || lo=32768
	echo $((20000 + RANDOM % (lo - 20001)))
}

register() {
	"$CF" account register --agree-tos --contact "mailto:ops@$ZONE" >/dev/null
}

# Number of TXT writes challtestsrv has logged so far for this test's zone.
txt_writes() { grep 'Added TXT response' "$CERTFLEET_CHALLTESTSRV_LOG" | grep -cF ".$ZONE." || true; }

# Pebble's current root and intermediate, from its management interface.
pebble_chain_files() {
	curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$CERTFLEET_PEBBLE_MGMT/roots/0" >"$1" &&
		curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$CERTFLEET_PEBBLE_MGMT/intermediates/0" >"$2"
}

# require_tools HINT TOOL...: ends the test with a failure naming the first tool missing (the
# install-deps script installs them all; HINT says which packages hold them).
require_tools() {
	local hint=$1 tool
	shift
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			not_ok "$tool installed ($hint)"
			finish
			exit 1
		fi
	done
}

# start_faultproxy ARGS...: starts faultproxy.py (HTTPS in front of Pebble) with ARGS and a control
# port, its output in $tmp; sets proxy (its pid), port and ctl (the control port). The test ends
# when the proxy does not start.
start_faultproxy() {
	python3 "$(dirname "${BASH_SOURCE[0]}")/faultproxy.py" --control-port 0 "$@" \
		>"$tmp/proxy.ports" 2>"$tmp/proxy.err" &
	proxy=$!
	for _ in $(seq 50); do [ "$(wc -l <"$tmp/proxy.ports")" -ge 2 ] && break; sleep 0.1; done
	port=$(sed -n 1p "$tmp/proxy.ports")
	ctl=$(sed -n 2p "$tmp/proxy.ports")
	if [ -z "$ctl" ]; then not_ok "fault proxy started"; cat "$tmp/proxy.err" >&2; finish; exit 1; fi
}

# start_pebble NAME [CONFIG_JSON]: starts another Pebble (one more CA) beside the stack's, on free
# ports, with the stack's TLS certificate and DNS server; CONFIG_JSON is merged into its "pebble"
# settings (say '{"externalAccountBindingRequired": true, ...}'); PEBBLE_* variables in the
# environment pass through as for the stack's Pebble. Sets pebble_dir (its directory URL),
# pebble_mgmt (its management URL) and pebble_log. finish stops it.
extra_pebbles=()
start_pebble() {
	local name=$1 extra=${2:-'{}'} api mgmt i pid
	local tls="$CERTFLEET_STACK_DIR/tls" bin="${CERTFLEET_TOOLS:-$HOME/.cache/certfleet/bin}/pebble"
	for i in 1 2 3 4 5; do
		api=$(random_port)
		mgmt=$((api + 1))
		python3 - "$tmp/pebble-$name.json" "$api" "$mgmt" "$tls" "$extra" <<'PY' || return 1
import json, sys
path, api, mgmt, tls, extra = sys.argv[1:]
cfg = {
    "listenAddress": "127.0.0.1:" + api, "managementListenAddress": "127.0.0.1:" + mgmt,
    "certificate": tls + "/server.pem", "privateKey": tls + "/server.key",
    "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
    "externalAccountBindingRequired": False,
    "retryAfter": {"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
    "profiles": {"default": {"description": "default", "validityPeriod": 7776000},
                 "shortlived": {"description": "short-lived", "validityPeriod": 518400}},
}
cfg.update(json.loads(extra))
json.dump({"pebble": cfg}, open(path, "w"), indent=1)
PY
		pebble_log="$tmp/pebble-$name.log"
		env -u PEBBLE_VA_ALWAYS_VALID PEBBLE_VA_NOSLEEP="${PEBBLE_VA_NOSLEEP:-1}" \
			PEBBLE_AUTHZREUSE="${PEBBLE_AUTHZREUSE:-0}" \
			"$bin" -config "$tmp/pebble-$name.json" -dnsserver "$CERTFLEET_CHALLTESTSRV_DNS" \
			>"$pebble_log" 2>&1 &
		pid=$!
		pebble_dir="https://localhost:$api/dir"
		pebble_mgmt="https://localhost:$mgmt"
		for _ in $(seq 100); do
			if curl -sf -o /dev/null --cacert "$CERTFLEET_CA_BUNDLE" "$pebble_dir" &&
				curl -sf -o /dev/null --cacert "$CERTFLEET_CA_BUNDLE" "$pebble_mgmt/roots/0"; then
				extra_pebbles+=("$pid")
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	echo "# pebble $name did not start; its log:" >&2
	sed 's/^/# /' "$pebble_log" >&2
	return 1
}

finish() {
	local p
	for p in "${extra_pebbles[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -f "$CERTFLEET_KEK_FILE"
	echo "# $TEST_NAME: $T_PASSED passed, $T_FAILED failed"
	[ "$T_FAILED" -eq 0 ]
}
