#!/bin/sh
# exec_hook.sh - the program test_exec.sh gives the exec provider: appends "ACTION FQDN VALUE" to
# $EXEC_HOOK_LOG, then does what $EXEC_HOOK_MODE says:
#   ok (the default) exit 0 | tempfail  exit 75 | fail  exit 1 | noisy  1 KiB on stderr, exit 2
#   hang  sleep in a child of its own (pids in $EXEC_HOOK_LOG.pids) until killed
#   fds   also log where its stdin, stdout and other descriptors lead, exit 0
log=${EXEC_HOOK_LOG:?EXEC_HOOK_LOG not set}
printf '%s|%s|%s\n' "$1" "$2" "$3" >>"$log"
case "${EXEC_HOOK_MODE:-ok}" in
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
*) echo "hook: unknown EXEC_HOOK_MODE" >&2; exit 64 ;;
esac
