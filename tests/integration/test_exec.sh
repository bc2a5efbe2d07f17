#!/usr/bin/env bash
# test_exec.sh - the exec provider running tests/integration/exec_hook.sh: its arguments (no shell
# in between), one run per record, stdin and stdout on /dev/null and no descriptor leaked, exit 75
# retryable and other statuses not, stderr quoted in the message, a hung program killed at the
# timeout with its children; its environment holds PATH and its own "env" settings but none of
# certfleet's secrets; bad settings refused. Also the manual provider, the other one without
# an API. Needs neither PostgreSQL nor Pebble.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
HOOK="$here/exec_hook.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export EXEC_HOOK_LOG="$tmp/hook.log"
: >"$EXEC_HOOK_LOG"

N1="_validation-persist.h1.$ZONE"
N2="_validation-persist.h2.$ZONE"
N3="_validation-persist.h3.$ZONE"
V1="letsencrypt.org; accounturi=https://ca.example/acct/$RUN_ID"
# what a shell would expand or split, to show that none runs in between
V2="letsencrypt.org; accounturi=https://ca.example/acct/\$(touch $tmp/pwned) \"q\" * \`id\`; policy=wildcard"

# providers FILE JSON_ACCOUNTS: a providers file holding these accounts
providers() {
	printf '{ "providers": { %s } }\n' "$2" >"$1"
	chmod 0600 "$1"
}
providers "$tmp/providers.json" "
	\"hook\": { \"type\": \"exec\", \"command\": \"$HOOK\", \"zones\": [\"$ZONE\"],
		\"env\": { \"EXEC_HOOK_LOG\": \"$EXEC_HOOK_LOG\", \"HOOK_SETTING\": \"a b=c\" } },
	\"hang\": { \"type\": \"exec\", \"command\": \"$HOOK\", \"timeout\": 1, \"zones\": [\"$ZONE\"],
		\"env\": { \"EXEC_HOOK_LOG\": \"$EXEC_HOOK_LOG\" } },
	\"cf\": { \"type\": \"cloudflare\", \"api_token_env\": \"CF_OTHER_TOKEN\", \"zones\": [\"other.example\"] }"
export CERTFLEET_PROVIDERS="$tmp/providers.json"
# the cloudflare account's token: in certfleet's environment, never in the program's
export CF_OTHER_TOKEN="cf-secret-$RUN_ID"

# in_mode MODE COMMAND...: runs the command with the hook in MODE (see exec_hook.sh); its exit code
in_mode() {
	local rc
	echo "$1" >"$EXEC_HOOK_LOG.mode"
	shift
	"$@"
	rc=$?
	rm -f "$EXEC_HOOK_LOG.mode"
	return $rc
}

# gone PID: true when the process no longer runs (exited, or a zombie nobody reaped yet)
gone() {
	[ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

check "the hook is executable" test -x "$HOOK"

# --- ensure and remove: the program gets ACTION FQDN VALUE, as they are
out ensure1 ensure hook "$N1" "$V1"
check_eq "ensure exits 0" "$?" 0
check_eq "the program got ensure FQDN VALUE" "$(cat "$EXEC_HOOK_LOG")" "ensure|$N1|$V1"
: >"$EXEC_HOOK_LOG"
out ensure2 ensure hook "$N2" "$V2"
check_eq "ensure of a value with shell syntax exits 0" "$?" 0
check_eq "the value arrives unchanged" "$(cat "$EXEC_HOOK_LOG")" "ensure|$N2|$V2"
check "no shell ran in between" test ! -e "$tmp/pwned"
: >"$EXEC_HOOK_LOG"
out ensure3 ensure hook "$N1" "$V1" "$N2" "$V1" "$N3" "$V1"
check_eq "ensure of 3 records exits 0" "$?" 0
check_eq "one run per record" "$(sort "$EXEC_HOOK_LOG")" "$(printf 'ensure|%s|%s\n' "$N1" "$V1" "$N2" "$V1" "$N3" "$V1" | sort)"
: >"$EXEC_HOOK_LOG"
out remove1 remove hook "$N1" "$V1"
check_eq "remove exits 0" "$?" 0
check_eq "the program got remove FQDN VALUE" "$(cat "$EXEC_HOOK_LOG")" "remove|$N1|$V1"

# --- what the program inherits: stdin and stdout on /dev/null, stderr a pipe, no socket
: >"$EXEC_HOOK_LOG"
in_mode fds out fds ensure hook "$N1" "$V1"
check_eq "fds mode exits 0" "$?" 0
check "stdin is /dev/null" grep -qx 'fd 0 /dev/null' "$EXEC_HOOK_LOG"
check "stdout is /dev/null" grep -qx 'fd 1 /dev/null' "$EXEC_HOOK_LOG"
check "stderr is a pipe" grep -q '^fd 2 pipe:' "$EXEC_HOOK_LOG"
check "no socket of certfleet leaks into the program" bash -c "! grep -q 'socket:' '$EXEC_HOOK_LOG'"

# --- its environment: PATH and its own "env", none of certfleet's secrets
CERTFLEET_DB="postgresql://certfleet:db-secret-$RUN_ID@127.0.0.1:1/none" PGPASSWORD="pg-secret-$RUN_ID" \
	CERTFLEET_LOG=info in_mode env out env ensure hook "$N1" "$V1"
check_eq "env mode exits 0" "$?" 0
tr '\0' '\n' <"$EXEC_HOOK_LOG.env" >"$tmp/env"
check "the program's environment: PATH" grep -qx "PATH=$PATH" "$tmp/env"
check "the program's environment: its own env setting" grep -qx 'HOOK_SETTING=a b=c' "$tmp/env"
check "the program's environment: no CERTFLEET_DB" bash -c "! grep -q '^CERTFLEET_DB=' '$tmp/env'"
check "the program's environment: no CERTFLEET_* at all" bash -c "! grep -q '^CERTFLEET_' '$tmp/env'"
check "the program's environment: no PGPASSWORD" bash -c "! grep -q '^PGPASSWORD=' '$tmp/env'"
check "the program's environment: no other account's token" bash -c "! grep -q '^CF_OTHER_TOKEN=' '$tmp/env'"
check "the program's environment: no secret value anywhere" bash -c "! grep -q 'secret-$RUN_ID' '$tmp/env'"

# --- exit 75: a failure worth retrying
in_mode tempfail out tempfail ensure hook "$N1" "$V1"
check_eq "exit 75 makes the command exit 1" "$?" 1
check "exit 75: names the account, program and record" grep -q "exec account hook: exec_hook.sh ensure $N1" "$tmp/tempfail"
check "exit 75: says temporary and quotes stderr" grep -q 'exit status 75 (temporary failure): stderr "hook: the DNS API is busy, try later"' "$tmp/tempfail"
check "exit 75: retryable" grep -q "a later try may succeed" "$tmp/tempfail"

# --- exit 1: not retryable; control characters of stderr escaped
in_mode fail out fail ensure hook "$N1" "$V1"
check_eq "exit 1 makes the command exit 1" "$?" 1
check "exit 1: status and stderr, escaped" grep -qF 'exit status 1: stderr "hook: zone not managed here\n\tsecond line"' "$tmp/fail"
check "exit 1: not retryable" bash -c "! grep -q 'later try' '$tmp/fail'"
check_eq "exit 1: the message is one line" "$(wc -l <"$tmp/fail" | tr -d ' ')" 1

# --- a lot on stderr: the message keeps the start, cut
in_mode noisy out noisy ensure hook "$N1" "$V1"
check_eq "noisy program exits 1" "$?" 1
check "noisy: the start of stderr is quoted" grep -qF 'stderr "noise-00-abcdefgh\nnoise-01' "$tmp/noisy"
check "noisy: the rest is cut" bash -c "! grep -q 'noise-63' '$tmp/noisy'"
check "noisy: the message stays short" test "$(wc -c <"$tmp/noisy")" -lt 700

# --- a program that hangs is killed at the timeout, with the child it started
start=$(date +%s)
in_mode hang out hang ensure hang "$N1" "$V1"
rc=$?
took=$(($(date +%s) - start))
check_eq "hung program: exit 1" "$rc" 1
check "hung program: ended within 5 s (timeout 1 s)" test "$took" -le 5
check "hung program: says killed at the timeout, retryable" grep -q "exec account hang: exec_hook.sh ensure $N1: still running after the timeout (1 s), killed (a later try may succeed)" "$tmp/hang"
if [ -s "$EXEC_HOOK_LOG.pids" ]; then
	read -r hook_pid child_pid <"$EXEC_HOOK_LOG.pids"
	check "hung program: killed" gone "$hook_pid"
	check "hung program: its child killed too" gone "$child_pid"
else
	not_ok "hung program: wrote its pids"
fi

# --- bad settings are refused when the accounts load, naming the account and setting
bad_setting() {
	local name=$1 account=$2 want=$3
	providers "$tmp/bad.json" "\"broken\": $account"
	CERTFLEET_PROVIDERS="$tmp/bad.json" "$CF" provider ensure broken "$N1" "$V1" >"$tmp/bad.out" 2>&1
	local rc=$?
	if [ "$rc" -eq 2 ] && grep -q "broken" "$tmp/bad.out" && grep -qF "$want" "$tmp/bad.out"; then
		ok "$name"
	else
		not_ok "$name (exit $rc: $(head -c 300 "$tmp/bad.out"))"
	fi
}
bad_setting "relative command refused" '{ "type": "exec", "command": "exec_hook.sh" }' '"command" must be the absolute path'
bad_setting "missing command refused" '{ "type": "exec" }' '"command" must be the absolute path'
bad_setting "absent program refused" "{ \"type\": \"exec\", \"command\": \"$tmp/nope\" }" "$tmp/nope"
bad_setting "program not executable refused" "{ \"type\": \"exec\", \"command\": \"$tmp/providers.json\" }" "is not an executable file"
bad_setting "env not an object refused" "{ \"type\": \"exec\", \"command\": \"$HOOK\", \"env\": [\"A=b\"] }" '"env" must be an object'
bad_setting "env with a bad name refused" "{ \"type\": \"exec\", \"command\": \"$HOOK\", \"env\": { \"A=B\": \"c\" } }" '"A=B" is not a variable name'
bad_setting "env with a value not a string refused" "{ \"type\": \"exec\", \"command\": \"$HOOK\", \"env\": { \"A\": 1 } }" 'A must be a string'
bad_setting "timeout 0 refused" "{ \"type\": \"exec\", \"command\": \"$HOOK\", \"timeout\": 0 }" '"timeout" must be'

# --- manual: ensure leaves the record to its owner, remove is refused and says who must do it
providers "$tmp/manual.json" "\"by-hand\": { \"type\": \"manual\", \"zones\": [\"$ZONE\"] }"
export CERTFLEET_PROVIDERS="$tmp/manual.json"
out manual1 ensure by-hand "$N1" "$V1"
check_eq "manual ensure exits 0" "$?" 0
out manual2 remove by-hand "$N1" "$V1"
check_eq "manual remove exits 1" "$?" 1
check "manual remove says who must remove it" grep -q "manual account by-hand: cannot remove TXT $N1: .*whoever manages zone $ZONE must remove it" "$tmp/manual2"
check "manual remove: not retryable" bash -c "! grep -q 'later try' '$tmp/manual2'"

finish
