#!/usr/bin/env bash
# test_ansible.sh - examples/ansible/certfleet.yml run with ansible-playbook against the stack,
# with a `certfleet run --follow` working the queue as a service would: the first run declares the
# fleet, waits (enqueue --missing-only --wait) until it is issued and exports it, reporting sync and
# export changed; a second run of the same fleet reports changed=0; a fleet with one certificate
# fewer retires it (one change); a revoked certificate is ordered again by the wait step.
. "$(dirname "$0")/lib.sh"
require_tools "Debian package ansible-core" ansible-playbook

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
playbook="$(dirname "$0")/../../examples/ansible/certfleet.yml"
export ANSIBLE_LOCAL_TEMP="$tmp/ansible-local" ANSIBLE_REMOTE_TEMP="$tmp/ansible-remote" \
	ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0

# play NAME: runs the playbook on $tmp/fleet.json, its output in $tmp/NAME.out; its exit code
play() {
	ansible-playbook -i localhost, "$playbook" -e "certfleet_bin=$CF" -e "fleet_file=$tmp/fleet.json" -e "export_dir=$tmp/live" \
		>"$tmp/$1.out" 2>&1
}
recap() { grep -E '^localhost +:' "$tmp/$1.out" | grep -oE 'changed=[0-9]+ .*failed=[0-9]+'; }

"$CF" run --follow --no-progress --workers 1 >"$tmp/follow.out" 2>&1 &
follow=$!

printf '{"certificates": [{"names": ["a.%s", "www.a.%s"]}, {"names": ["b.%s"], "key_type": "ec-p384"}]}\n' \
	"$ZONE" "$ZONE" "$ZONE" >"$tmp/fleet.json"
play first
check_eq "first run: exit 0" "$?" 0
check_eq "first run: sync and export changed" "$(recap first)" "changed=2    unreachable=0    failed=0"
check_eq "the fleet is issued" "$(sql "SELECT count(*) FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current")" 2
check_eq "and exported" "$(ls "$tmp/live" | tr '\n' ' ')" "a.$ZONE b.$ZONE "
play second
check_eq "second run: exit 0" "$?" 0
check_eq "second run reports no change" "$(recap second)" "changed=0    unreachable=0    failed=0"
check_eq "and queued nothing" "$(sql "SELECT count(*) FROM jobs")" 2

printf '{"certificates": [{"names": ["b.%s"], "key_type": "ec-p384"}]}\n' "$ZONE" >"$tmp/fleet.json"
play third
check_eq "a certificate removed: exit 0" "$?" 0
check_eq "only sync changed" "$(recap third)" "changed=1    unreachable=0    failed=0"
check "the plan shows in the output" grep -qF -- "- a.$ZONE,www.a.$ZONE" "$tmp/third.out"
check_eq "it is retired" "$(sql "SELECT names[1] FROM certificates WHERE retired_at IS NOT NULL")" "a.$ZONE"

# A revoked certificate holds no usable certificate: the wait step orders it again and waits.
serial=$(sql "SELECT r.serial FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE c.names[1] = 'b.$ZONE' AND r.is_current")
"$CF" revoke --serial "$serial" --reason superseded >/dev/null 2>&1
play fourth
check_eq "after a revocation: exit 0" "$?" 0
check_eq "the wait step and export changed" "$(recap fourth)" "changed=2    unreachable=0    failed=0"
check_eq "b was ordered again" "$(sql "SELECT count(*) FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE c.names[1] = 'b.$ZONE'")" 2

kill -TERM "$follow"
wait "$follow"
check_eq "the run service stops cleanly" "$?" 0
check_eq "it issued every certificate the playbooks waited for (a, b, b again)" \
	"$(grep -oE 'run finished: [0-9]+ claimed, [0-9]+ issued' "$tmp/follow.out")" "run finished: 3 claimed, 3 issued"
finish
