# fake.sh - starting, querying and stopping the fake provider APIs of tests/fakes from integration
# tests (sourced after lib.sh). Each fake listens on a free port of 127.0.0.1, logs one line per
# API request to $FAKE_DIR/NAME.log and is stopped by its pid when the test exits (fake_stop).

FAKES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FAKE_DIR=${FAKE_DIR:-$(mktemp -d)}
FAKE_PIDS=()
FAKE_PORT=

# fake_start NAME SCRIPT ARGS...: starts tests/fakes/SCRIPT.py ARGS; FAKE_PORT gets its port.
fake_start() {
	local name=$1 script=$2 pid
	shift 2
	FAKE_PORT=
	: >"$FAKE_DIR/$name.out" # exists before the background job's redirection does
	python3 "$FAKES_DIR/$script.py" --port 0 --log "$FAKE_DIR/$name.log" "$@" \
		>"$FAKE_DIR/$name.out" 2>&1 </dev/null &
	pid=$!
	FAKE_PIDS+=("$pid")
	for _ in $(seq 1 100); do
		FAKE_PORT=$(awk '/^ready /{print $2; exit}' "$FAKE_DIR/$name.out")
		[ -n "$FAKE_PORT" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/# /' "$FAKE_DIR/$name.out"
	return 1
}

# Stops every fake this test started (by pid).
fake_stop() {
	local pid
	for pid in "${FAKE_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${FAKE_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	FAKE_PIDS=()
}

# fake_stat PORT FIELD: one counter of /__fake/stats (requests, malformed, auth_failures, ...).
fake_stat() {
	curl -sf --noproxy '*' "http://127.0.0.1:$1/__fake/stats" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# fake_values PORT FQDN: the values the fake holds at FQDN, one per line, sorted.
fake_values() {
	curl -sf --noproxy '*' "http://127.0.0.1:$1/__fake/records" |
		python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin).get(sys.argv[1], []))))' "$2"
}

# fake_seed PORT FQDN VALUE [raw]: a record written by someone else (raw: legacy unquoted form).
fake_seed() {
	local raw=false
	[ "${4:-}" = raw ] && raw=true
	python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "value": sys.argv[2], "raw": sys.argv[3] == "true"}))' \
		"$2" "$3" "$raw" |
		curl -sf --noproxy '*' -o /dev/null -X POST --data-binary @- "http://127.0.0.1:$1/__fake/records"
}

# fake_count NAME REGEX: how many logged requests of fake NAME match REGEX.
fake_count() {
	grep -cE -- "$2" "$FAKE_DIR/$1.log" 2>/dev/null || true
}

# The TXT values challtestsrv serves at FQDN, one per line, character-strings joined, sorted.
dns_txt() {
	local host=${CERTFLEET_CHALLTESTSRV_DNS%:*} port=${CERTFLEET_CHALLTESTSRV_DNS##*:}
	dig @"$host" -p "$port" +short +norecurse +tcp TXT "$1" |
		sed -e 's/" "//g' -e 's/^"//' -e 's/"$//' -e 's/\\"/"/g' | sort
}
