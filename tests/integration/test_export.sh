#!/usr/bin/env bash
# test_export.sh - certfleet export: one folder per certificate (a wildcard's named _wildcard.),
# the files, their modes whatever the umask, their contents; a second export touches nothing; a
# read-only or full target fails naming the file and leaves the old files; symbolic links and bad
# selectors exit 2 and write nothing.
. "$(dirname "$0")/lib.sh"

require_tools "openssl" openssl
db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
mounts=()
trap 'for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done; rm -rf "$tmp"' EXIT

"$CF" enqueue "a.$ZONE" "b.$ZONE,alt.b.$ZONE" "*.w.$ZONE" >/dev/null
run_a=$(sql "SELECT max(id) FROM runs")
"$CF" run --workers 1 --no-progress >"$tmp/run.out" 2>&1
check_eq "3 certificates issued" "$(sql "SELECT count(*) FROM results WHERE is_current")" 3
pebble_chain_files "$tmp/root.pem" "$tmp/inter.pem"
out=$tmp/out
serial_of() { sql "SELECT r.serial FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND '$1' = ANY(c.names)"; }
verifies() { openssl verify -CAfile "$tmp/root.pem" -untrusted "$1/chain.pem" "$1/cert.pem" >/dev/null 2>&1; }
file_serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//'; }

# Bad input: exit 2, naming it, nothing written.
"$CF" export "$out" >"$tmp/bad1" 2>&1
check_eq "no selector exits 2" "$?" 2
"$CF" export "$out" --name "a.$ZONE" --name "nosuch.$ZONE" >"$tmp/bad2" 2>&1
check_eq "a name no certificate holds exits 2" "$?" 2
check "the error names the name" grep -q "nosuch.$ZONE" "$tmp/bad2"
"$CF" export "$out" --changed-since "yesterday-ish" >"$tmp/bad3" 2>&1
check_eq "a time PostgreSQL does not read exits 2" "$?" 2
check "the error names --changed-since" grep -q -- "--changed-since \"yesterday-ish\"" "$tmp/bad3"
check "nothing was written for bad input" test ! -e "$out"
mkdir "$tmp/real" && ln -s "$tmp/real" "$tmp/link"
"$CF" export "$tmp/link" --all >"$tmp/bad4" 2>&1
check_eq "an export folder that is a symbolic link exits 2" "$?" 2
check "the error names the link" grep -q "$tmp/link: a symbolic link" "$tmp/bad4"
mkdir "$tmp/elsewhere" "$tmp/sl" && ln -s "$tmp/elsewhere" "$tmp/sl/b.$ZONE"
"$CF" export "$tmp/sl" --all >"$tmp/bad5" 2>&1
check_eq "a certificate folder that is a symbolic link exits 2" "$?" 2
check "the error names it" grep -q "$tmp/sl/b.$ZONE: a symbolic link" "$tmp/bad5"
check_eq "nothing written through the link, nor beside it" "$(ls -A "$tmp/elsewhere" "$tmp/sl" | grep -vc "^$tmp\|^$\|^b.$ZONE$")" 0
check_eq "no other certificate folder written either" "$(ls "$tmp/sl")" "b.$ZONE"

# Export all, under a umask that would drop every mode bit but the owner's.
(umask 077 && "$CF" export "$out" --all >"$tmp/exp1" 2>"$tmp/exp1.err")
check_eq "export --all exits 0" "$?" 0
check_eq "one changed line per certificate" "$(grep -c '^changed: ' "$tmp/exp1")" 3
check "summary line" grep -q '^export: 3 certificates, 3 changed, 0 unchanged$' "$tmp/exp1"
check_eq "folders by primary name, the wildcard as _wildcard." "$(ls "$out" | tr '\n' ' ')" "_wildcard.w.$ZONE a.$ZONE b.$ZONE "
for d in "$out"/*; do
	n=$(basename "$d")
	check_eq "$n: files" "$(ls "$d" | tr '\n' ' ')" "cert.pem chain.pem fullchain.pem haproxy.pem key.pem "
	check_eq "$n: modes" "$(stat -c '%n %a' "$d"/* | sed "s|$d/||" | tr '\n' ' ')" \
		"cert.pem 644 chain.pem 644 fullchain.pem 644 haproxy.pem 600 key.pem 600 "
	check "$n: cert.pem holds key.pem's public key" cmp -s <(openssl x509 -in "$d/cert.pem" -noout -pubkey) \
		<(openssl pkey -in "$d/key.pem" -pubout)
	check "$n: fullchain.pem is cert.pem then chain.pem" cmp -s "$d/fullchain.pem" <(cat "$d/cert.pem" "$d/chain.pem")
	check "$n: haproxy.pem is fullchain.pem then key.pem" cmp -s "$d/haproxy.pem" <(cat "$d/fullchain.pem" "$d/key.pem")
	check "$n: the chain verifies against Pebble's root" verifies "$d"
done
check_eq "the wildcard's folder holds its certificate" "$(file_serial "$out/_wildcard.w.$ZONE/cert.pem")" "$(serial_of "*.w.$ZONE")"
check_eq "no key in the output" "$(cat "$tmp/exp1" "$tmp/exp1.err" | grep -c 'PRIVATE KEY')" 0

# Idempotent: a second export writes nothing, every mtime stays.
stat -c '%n %y %i' "$out"/*/* >"$tmp/mt1"
"$CF" export "$out" --all >"$tmp/exp2" 2>&1
check_eq "second export exits 0" "$?" 0
check_eq "second export: 3 unchanged" "$(grep -c '^unchanged: ' "$tmp/exp2")" 3
stat -c '%n %y %i' "$out"/*/* >"$tmp/mt2"
check "second export changes no mtime (nor inode)" cmp -s "$tmp/mt1" "$tmp/mt2"
check_eq "no temporary file left" "$(find "$out" -name '.*' | wc -l)" 0

# The selectors.
"$CF" export "$tmp/byname" --name "alt.b.$ZONE" >/dev/null 2>&1
check_eq "--name by a name other than the primary exports its certificate" "$(ls "$tmp/byname")" "b.$ZONE"
"$CF" export "$tmp/byrun" --run "$run_a" >/dev/null 2>&1
check_eq "--run exports the run's certificates" "$(ls "$tmp/byrun" | wc -l)" 3
"$CF" export "$tmp/since" --changed-since "$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S+00')" >"$tmp/since.out" 2>&1
check "--changed-since a later time exports nothing" grep -q '^export: 0 certificates' "$tmp/since.out"

# A renewed certificate, and a target that cannot be written: the error names the file, the old
# files stay. Root ignores modes: a read-only tmpfs then; a folder without write permission else.
ro=$tmp/ro
mkdir "$ro"
if [ "$(id -u)" = 0 ]; then
	mount -t tmpfs -o size=1m tmpfs "$ro" && mounts+=("$ro")
fi
"$CF" export "$ro" --name "a.$ZONE" >/dev/null 2>&1
old_serial=$(file_serial "$ro/a.$ZONE/cert.pem")
"$CF" enqueue "a.$ZONE" >/dev/null && "$CF" run --workers 1 --no-progress >>"$tmp/run.out" 2>&1
new_serial=$(serial_of "a.$ZONE")
check "a.$ZONE renewed" test -n "$new_serial" -a "$new_serial" != "$old_serial"
sha256sum "$ro/a.$ZONE"/* >"$tmp/ro.sum"
if [ "$(id -u)" = 0 ]; then mount -o remount,ro "$ro"; else chmod a-w "$ro/a.$ZONE"; fi
"$CF" export "$ro" --name "a.$ZONE" >"$tmp/ro.out" 2>&1
check_eq "a read-only target exits 1" "$?" 1
check "the error names the file" grep -q "writing $ro/a.$ZONE/cert.pem: Read-only file system\|writing $ro/a.$ZONE/cert.pem: Permission denied" "$tmp/ro.out"
check "the old files stay" sha256sum -c --quiet "$tmp/ro.sum"
if [ "$(id -u)" = 0 ]; then mount -o remount,rw "$ro"; else chmod u+w "$ro/a.$ZONE"; fi
"$CF" export "$ro" --name "a.$ZONE" >"$tmp/ro2.out" 2>&1
check_eq "writable again: the renewed certificate is exported" "$(file_serial "$ro/a.$ZONE/cert.pem")" "$new_serial"
check "writable again: cert.pem holds key.pem's public key" cmp -s <(openssl x509 -in "$ro/a.$ZONE/cert.pem" -noout -pubkey) \
	<(openssl pkey -in "$ro/a.$ZONE/key.pem" -pubout)

# A full disk (root: a tmpfs of 3 pages for 5 files): the error names the file, nothing is left.
if [ "$(id -u)" = 0 ]; then
	mkdir "$tmp/full" && mount -t tmpfs -o size=12k tmpfs "$tmp/full" && mounts+=("$tmp/full")
	mkdir "$tmp/full/a.$ZONE"
	"$CF" export "$tmp/full" --name "a.$ZONE" >"$tmp/full.out" 2>&1
	check_eq "a full disk exits 1" "$?" 1
	check "the error names the file and the cause" grep -q "writing $tmp/full/a.$ZONE/.*: No space left on device" "$tmp/full.out"
	check_eq "no file left in the full folder" "$(ls -A "$tmp/full/a.$ZONE" | wc -l)" 0
fi

finish
