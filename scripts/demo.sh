#!/usr/bin/env bash
# demo.sh - the demo fleet run: starts the local stack, registers an account, enqueues a fleet of
# 200 names (160 certificates, some with several names, some wildcards) and runs it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cf=${CERTFLEET_BIN:-$repo/build/certfleet}

"$repo/scripts/stack.sh" start
eval "$("$repo/scripts/stack.sh" env)"

# every private key certfleet stores is sealed under a key-encryption key: the demo keeps its own
# beside the stack's state (set CERTFLEET_KEK_FILE to use another)
if [ -z "${CERTFLEET_KEK_FILE:-}" ]; then
	export CERTFLEET_KEK_FILE="${CERTFLEET_STACK_DIR:-$repo/.stack}/demo.kek"
	[ -e "$CERTFLEET_KEK_FILE" ] || "$cf" keys generate-kek "$CERTFLEET_KEK_FILE"
fi

"$cf" migrate
"$cf" account register --agree-tos --contact mailto:ops@demo.example
"$cf" account show

fleet=$(mktemp)
trap 'rm -f "$fleet"' EXIT
zone=demo.example
{
	for i in $(seq 1 125); do echo "host$i.$zone"; done                       # 125 names
	for i in $(seq 1 5); do echo "*.apps$i.$zone"; done                       # 5 wildcards
	for i in $(seq 1 20); do echo "site$i.$zone, www.site$i.$zone"; done      # 40 names
	for i in $(seq 1 10); do echo "shop$i.$zone, www.shop$i.$zone, api.shop$i.$zone"; done # 30 names
} >"$fleet"
echo "demo fleet: $(wc -l <"$fleet") certificates, $(tr ',' '\n' <"$fleet" | wc -l) names"
"$cf" enqueue --file "$fleet"
"$cf" run "$@" || rc=$?
rc=${rc:-0}
echo
"$cf" status --failures 5
echo
echo "The newest certificates (plain SQL over the results):"
psql -q "$CERTFLEET_DB" -c "SELECT array_to_string(c.names, ',') AS names, r.serial, r.not_after::date AS expires
                          FROM results r JOIN certificates c ON c.id = r.certificate_id
                          WHERE r.is_current ORDER BY r.created_at DESC LIMIT 5"
echo "The stack keeps running: eval \"\$(scripts/stack.sh env)\" to query it; scripts/stack.sh stop ends it."
exit "$rc"
