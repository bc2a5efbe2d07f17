#!/bin/sh
# exec_hook.sh - the program test_exec.sh gives the exec provider: appends "ACTION FQDN VALUE" to
# $EXEC_HOOK_LOG (set by the account's "env"), then does what the file $EXEC_HOOK_LOG.mode says
# (certfleet passes the program no variable of its own environment but PATH, HOME and LANG):
#   ok (the default) exit 0 | tempfail  exit 75 | fail  exit 1 | noisy  1 KiB on stderr, exit 2
#   hang  sleep in a child of its own (pids in $EXEC_HOOK_LOG.pids) until killed
#   fds   also log where its stdin, stdout and other descriptors lead, exit 0
#   env   also write its environment (env -0) to $EXEC_HOOK_LOG.env, exit 0
log=${EXEC_HOOK_LOG:?EXEC_HOOK_LOG not set}
printf '%s|%s|%s\n' "$1" "$2" "$3" >>"$log"
mode=ok
[ -s "$log.mode" ] && mode=$(cat "$log.mode")
case "$mode" in
ok) exit 0 ;;
tempfail) echo "hook: the DNS API is busy, try later" >&2; exit 75 ;;
fail) printf 'hook: zone not managed here\n\tsecond line\n' >&2; exit 1 ;;
noisy) i=0; while [ $i -lt 64 ]; do printf 'noise-%02d-abcdefgh\n' $i >&2; i=$((i + 1)); done; exit 2 ;;
hang)
	sleep 300 &
	echo "$$ $!" >"$log.pids"
	wait
	exit 0 ;;
fds)
	for fd in "/proc/$$/fd/"*; do
		printf 'fd %s %s\n' "${fd##*/}" "$(readlink "$fd")" >>"$log"
	done
	exit 0 ;;
env) env -0 >"$log.env"; exit 0 ;;
*) echo "hook: unknown mode $mode" >&2; exit 64 ;;
esac
