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

"$CF" enqueue "a.$ZONE" "b.$ZONE,alt.b.$ZONE" "*.w.$ZONE" "a.$ZONE,more.a.$ZONE" >/dev/null
run_a=$(sql "SELECT max(id) FROM runs")
"$CF" run --workers 1 --no-progress >"$tmp/run.out" 2>&1
check_eq "4 certificates issued" "$(sql "SELECT count(*) FROM results WHERE is_current")" 4
pebble_chain_files "$tmp/root.pem" "$tmp/inter.pem"
out=$tmp/out
# the serial of the certificate whose names are $1 (comma-separated), as file_serial prints it
serial_of() { sql "SELECT r.serial FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current AND c.names = string_to_array('$1', ',')" | sed 's/^0*//'; }
shared=$(sql "SELECT id FROM certificates WHERE names = ARRAY['a.$ZONE', 'more.a.$ZONE']")
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
check_eq "one changed line per certificate" "$(grep -c '^changed: ' "$tmp/exp1")" 4
check "summary line" grep -q '^export: 4 certificates, 4 changed, 0 unchanged$' "$tmp/exp1"
check_eq "folders by primary name, the wildcard as _wildcard., a primary name shared with an older certificate with _ID" \
	"$(ls "$out" | tr '\n' ' ')" "_wildcard.w.$ZONE a.$ZONE a.${ZONE}_$shared b.$ZONE "
check_eq "the shared name's folders each hold their own certificate" \
	"$(file_serial "$out/a.$ZONE/cert.pem") $(file_serial "$out/a.${ZONE}_$shared/cert.pem")" \
	"$(serial_of "a.$ZONE") $(serial_of "a.$ZONE,more.a.$ZONE")"
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
check_eq "second export: 4 unchanged" "$(grep -c '^unchanged: ' "$tmp/exp2")" 4
stat -c '%n %y %i' "$out"/*/* >"$tmp/mt2"
check "second export changes no mtime (nor inode)" cmp -s "$tmp/mt1" "$tmp/mt2"
check_eq "no temporary file left" "$(find "$out" -name '.*' | wc -l)" 0

# The selectors.
"$CF" export "$tmp/byname" --name "alt.b.$ZONE" >/dev/null 2>&1
check_eq "--name by a name other than the primary exports its certificate" "$(ls "$tmp/byname")" "b.$ZONE"
"$CF" export "$tmp/byname2" --name "more.a.$ZONE" >/dev/null 2>&1
check_eq "a certificate selected alone keeps its folder name" "$(ls "$tmp/byname2")" "a.${ZONE}_$shared"
"$CF" export "$tmp/byrun" --run "$run_a" >/dev/null 2>&1
check_eq "--run exports the run's certificates" "$(ls "$tmp/byrun" | wc -l)" 4
"$CF" export "$tmp/since" --changed-since "$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S+00')" >"$tmp/since.out" 2>&1
check "--changed-since a later time exports nothing" grep -q '^export: 0 certificates' "$tmp/since.out"

# A renewed certificate, and a target that cannot be written: the error names the file, the old
# files stay. Root ignores modes: a read-only tmpfs then; a folder without write permission else.
ro=$tmp/ro
mkdir "$ro"
if [ "$(id -u)" = 0 ]; then
	mount -t tmpfs -o size=1m tmpfs "$ro" && mounts+=("$ro")
fi
"$CF" export "$ro" --name "b.$ZONE" >/dev/null 2>&1
old_serial=$(file_serial "$ro/b.$ZONE/cert.pem")
"$CF" enqueue "b.$ZONE,alt.b.$ZONE" >/dev/null && "$CF" run --workers 1 --no-progress >>"$tmp/run.out" 2>&1
new_serial=$(serial_of "b.$ZONE,alt.b.$ZONE")
check "b.$ZONE renewed" test -n "$new_serial" -a "$new_serial" != "$old_serial"
sha256sum "$ro/b.$ZONE"/* >"$tmp/ro.sum"
if [ "$(id -u)" = 0 ]; then mount -o remount,ro "$ro"; else chmod a-w "$ro/b.$ZONE"; fi
"$CF" export "$ro" --name "b.$ZONE" >"$tmp/ro.out" 2>&1
check_eq "a read-only target exits 1" "$?" 1
check "the error names the file" grep -q "writing $ro/b.$ZONE/cert.pem: Read-only file system\|writing $ro/b.$ZONE/cert.pem: Permission denied" "$tmp/ro.out"
check "the old files stay" sha256sum -c --quiet "$tmp/ro.sum"
check "the summary counts the failure" grep -q '^export: 1 certificates, 0 changed, 0 unchanged, 1 failed, 0 not written$' "$tmp/ro.out"
if [ "$(id -u)" = 0 ]; then mount -o remount,rw "$ro"; else chmod u+w "$ro/b.$ZONE"; fi
"$CF" export "$ro" --name "b.$ZONE" >"$tmp/ro2.out" 2>&1
check_eq "writable again: the renewed certificate is exported" "$(file_serial "$ro/b.$ZONE/cert.pem")" "$new_serial"
check "writable again: cert.pem holds key.pem's public key" cmp -s <(openssl x509 -in "$ro/b.$ZONE/cert.pem" -noout -pubkey) \
	<(openssl pkey -in "$ro/b.$ZONE/key.pem" -pubout)

# A full disk (root: a tmpfs of 3 pages for 5 files): the error names the file, nothing is left.
if [ "$(id -u)" = 0 ]; then
	mkdir "$tmp/full" && mount -t tmpfs -o size=12k tmpfs "$tmp/full" && mounts+=("$tmp/full")
	mkdir "$tmp/full/b.$ZONE"
	"$CF" export "$tmp/full" --name "b.$ZONE" >"$tmp/full.out" 2>&1
	check_eq "a full disk exits 1" "$?" 1
	check "the error names the file and the cause" grep -q "writing $tmp/full/b.$ZONE/.*: No space left on device" "$tmp/full.out"
	check_eq "no file left in the full folder" "$(ls -A "$tmp/full/b.$ZONE" | wc -l)" 0
fi

finish
