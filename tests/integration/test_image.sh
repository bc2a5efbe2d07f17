#!/usr/bin/env bash
# test_image.sh - the Dockerfile's two stages without Docker. A Debian 12 root file system holding
# packaging/deps/build.txt alone builds certfleet (the build context as .dockerignore leaves it);
# a second one holding packaging/deps/runtime.txt alone runs the binary as user certfleet: --help,
# every shared library found, then migrate and a 5-certificate run against the local stack over
# loopback (a chroot shares the host's network). The root file systems come from scripts/rootfs.sh,
# cached by package list (the first run builds them with mmdebstrap). Needs root.
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { not_ok "running as root (chroot and mmdebstrap need it)"; finish; exit 1; }
require_tools "packaging/deps/test.txt: mmdebstrap" mmdebstrap unshare chroot

tmp=$(mktemp -d "${TMPDIR:-/tmp}/certfleet-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log() { echo "# $TEST_NAME: $*"; }

# in_root DIR USER CMD...: CMD chrooted into DIR as USER (root when empty), with a clean
# environment and /proc mounted in a mount namespace of its own, which goes away with CMD.
in_root() {
	local dir=$1 user=$2
	shift 2
	unshare --mount --fork -- bash -c 'dir=$1 user=$2; shift 2
		mount -t proc proc "$dir/proc" || exit 1
		exec chroot ${user:+--userspec="$user:$user"} "$dir" \
			env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/nonexistent LANG=C.UTF-8 "$@"' \
		in_root "$dir" "$user" "$@"
}

# --- build stage ---
start=$SECONDS
if ! "$repo/scripts/rootfs.sh" extract "$tmp/build" "$repo/packaging/deps/build.txt" 2>"$tmp/rootfs-build.err"; then
	cat "$tmp/rootfs-build.err" >&2
	not_ok "a root file system with packaging/deps/build.txt"
	finish
	exit 1
fi
log "build root ready in $((SECONDS - start)) s"
# The build context as Docker sends it: the tree minus what .dockerignore names.
mkdir -p "$tmp/build/src"
sed -e 's/#.*//' -e 's/[[:space:]]//g' -e 's|/$||' -e '/^$/d' -e 's|^|./|' "$repo/.dockerignore" >"$tmp/excludes"
tar -C "$repo" --exclude-from="$tmp/excludes" -cf - . | tar -C "$tmp/build/src" -xf -

pkgs=$(sed -n 's/^PKGS *= *//p' "$repo/Makefile")
check "build root: pkg-config knows $pkgs" in_root "$tmp/build" "" pkg-config --exists $pkgs
start=$SECONDS
if in_root "$tmp/build" "" sh -c 'cd /src && make -j2 build/certfleet' >"$tmp/make.log" 2>&1; then
	ok "build root: make builds build/certfleet with packaging/deps/build.txt alone"
else
	tail -n 30 "$tmp/make.log" >&2
	not_ok "build root: make builds build/certfleet with packaging/deps/build.txt alone"
	finish
	exit 1
fi
log "make took $((SECONDS - start)) s"

# --- runtime stage ---
start=$SECONDS
if ! "$repo/scripts/rootfs.sh" extract "$tmp/run" "$repo/packaging/deps/runtime.txt" 2>"$tmp/rootfs-run.err"; then
	cat "$tmp/rootfs-run.err" >&2
	not_ok "a root file system with packaging/deps/runtime.txt"
	finish
	exit 1
fi
log "runtime root ready in $((SECONDS - start)) s"
install -m 0755 "$tmp/build/src/build/certfleet" "$tmp/run/usr/bin/certfleet"
in_root "$tmp/run" "" useradd --system --user-group --home-dir /nonexistent --no-create-home \
	--shell /usr/sbin/nologin certfleet
in_root "$tmp/run" "" install -d -o certfleet -g certfleet -m 0700 /var/lib/certfleet
# What Docker provides: /etc/hosts. And the stack's CA, which Pebble's HTTPS certificate chains to.
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$tmp/run/etc/hosts"
install -D -m 0644 "$CERTFLEET_CA_BUNDLE" "$tmp/run/usr/local/share/certfleet-test/ca.pem"

in_root "$tmp/run" certfleet certfleet --help >"$tmp/help.out" 2>&1
check_eq "runtime root: certfleet --help exits 0" "$?" 0
check "runtime root: --help prints the usage" grep -q '^usage: certfleet COMMAND' "$tmp/help.out"
in_root "$tmp/run" "" ldd /usr/bin/certfleet >"$tmp/ldd.out" 2>&1
check_eq "runtime root: ldd exits 0" "$?" 0
missing=$(grep 'not found' "$tmp/ldd.out" | awk '{print $1}' | tr '\n' ' ')
check_eq "runtime root: ldd finds every shared library" "$missing" ""

# A database of its own on the stack's server; certfleet in the root file system does the rest.
db="t_${TEST_NAME}_$RUN_ID"
psql -qX "$CERTFLEET_DB" -c "CREATE DATABASE \"$db\"" >/dev/null || { not_ok "create database"; finish; exit 1; }
export CERTFLEET_DB="${CERTFLEET_DB%/*}/$db"
cf() {
	in_root "$tmp/run" certfleet CERTFLEET_DB="$CERTFLEET_DB" CERTFLEET_DIRECTORY="$CERTFLEET_DIRECTORY" \
		CERTFLEET_CA_BUNDLE=/usr/local/share/certfleet-test/ca.pem \
		CERTFLEET_CHALLTESTSRV_URL="$CERTFLEET_CHALLTESTSRV_URL" CERTFLEET_ALLOW_HTTP_LOOPBACK=1 \
		CERTFLEET_CHALLTESTSRV_DNS="$CERTFLEET_CHALLTESTSRV_DNS" \
		CERTFLEET_SEPARATE_NEW_ORDERS="${CERTFLEET_SEPARATE_NEW_ORDERS:-}" \
		CERTFLEET_JOURNAL=/var/lib/certfleet/journal CERTFLEET_KEK_FILE=/var/lib/certfleet/kek certfleet "$@"
}
# cf_log ARGS...: cf with its output kept in $tmp/cf.log (shown on a failure)
cf_log() { cf "$@" >>"$tmp/cf.log" 2>&1 || { tail -n 20 "$tmp/cf.log" >&2; return 1; }; }
check "runtime root: certfleet keys generate-kek (as the certfleet user)" cf_log keys generate-kek /var/lib/certfleet/kek
check "runtime root: certfleet migrate" cf_log migrate
check "runtime root: certfleet account register" cf_log account register --agree-tos --contact "mailto:ops@$ZONE"
check "runtime root: certfleet enqueue 5" cf_log enqueue "a.$ZONE" "b.$ZONE,www.b.$ZONE" "*.c.$ZONE" "d.$ZONE" "e.$ZONE"
start=$SECONDS
cf run --workers 1 --no-progress >"$tmp/run.out" 2>&1
rc=$?
check_eq "runtime root: certfleet run exits 0" "$rc" 0
[ "$rc" -eq 0 ] || tail -n 20 "$tmp/run.out" >&2
log "run took $((SECONDS - start)) s"
check_eq "runtime root: 5 certificates issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 5
check_eq "runtime root: 5 current results" "$(sql "SELECT count(*) FROM results WHERE is_current")" 5

finish
