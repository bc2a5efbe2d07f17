#!/usr/bin/env bash
# test_deb.sh - the Debian package: dpkg-buildpackage builds it, lintian finds no error, and
# mmdebstrap installs it with its dependencies (and systemd) into a clean Debian 12 root file
# system, where certfleet runs from /usr/bin, the certfleet system user exists, the settings file
# is 0640 root:certfleet, the man pages and units are in place, systemd-analyze verify accepts the
# units and the timer can be enabled. Needs root.
. "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { not_ok "running as root (chroot and mmdebstrap need it)"; finish; exit 1; }
require_tools "packaging/deps/test.txt: mmdebstrap debhelper dpkg-dev lintian systemd help2man" \
	mmdebstrap dpkg-buildpackage dh lintian systemd-analyze systemctl help2man unshare chroot

tmp=$(mktemp -d "${TMPDIR:-/tmp}/certfleet-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log() { echo "# $TEST_NAME: $*"; }

# in_root CMD...: CMD chrooted into the installed root, with /proc in a mount namespace of its own.
in_root() {
	unshare --mount --fork -- bash -c 'mount -t proc proc "$0/proc" && exec chroot "$0" \
		env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 "$@"' "$tmp/root" "$@"
}

# Build-Depends names every package of build.txt (build-essential is implied by Debian).
missing=""
for pkg in $(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$repo/packaging/deps/build.txt"); do
	[ "$pkg" = build-essential ] && continue
	sed -n '/^Build-Depends:/,/^[^ ]/p' "$repo/debian/control" | grep -Eq "(^|[ ,])$pkg([ ,(]|\$)" ||
		missing="$missing $pkg"
done
check_eq "debian/control Build-Depends names every package of packaging/deps/build.txt" "$missing" ""

start=$SECONDS
if "$repo/scripts/build-deb.sh" "$tmp/deb" >"$tmp/build.out" 2>&1; then
	ok "dpkg-buildpackage builds the package"
else
	cat "$tmp/build.out" >&2
	not_ok "dpkg-buildpackage builds the package"
	finish
	exit 1
fi
log "dpkg-buildpackage took $((SECONDS - start)) s"
deb=$(ls "$tmp"/deb/certfleet_*.deb)

lintian --fail-on error "$deb" >"$tmp/lintian.out" 2>&1
rc=$?
sed -n 's/^\([EW]\): /# lintian: \1: /p' "$tmp/lintian.out"
check_eq "lintian reports no error" "$rc" 0
check_eq "lintian: no E: line" "$(grep -c '^E: ' "$tmp/lintian.out")" 0

# A clean root: minbase, systemd (to verify the units in place) and the package with the
# dependencies it declares, resolved by apt.
start=$SECONDS
if mmdebstrap --mode=root --variant=minbase \
	--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
	--include="systemd,$deb" bookworm "$tmp/root" $("$repo/scripts/rootfs.sh" sources) \
	>"$tmp/mmdebstrap.log" 2>&1; then
	ok "the package installs into a clean Debian 12 root with its declared dependencies"
else
	tail -n 30 "$tmp/mmdebstrap.log" >&2
	not_ok "the package installs into a clean Debian 12 root with its declared dependencies"
	finish
	exit 1
fi
log "mmdebstrap with the package took $((SECONDS - start)) s"

in_root /usr/bin/certfleet --help >"$tmp/help.out" 2>&1
check_eq "/usr/bin/certfleet --help exits 0" "$?" 0
check "--help prints the usage" grep -q '^usage: certfleet COMMAND' "$tmp/help.out"
check_eq "ldd finds every shared library" "$(in_root ldd /usr/bin/certfleet | grep -c 'not found')" 0
check_eq "certfleet is a system user with no login shell" \
	"$(in_root getent passwd certfleet | awk -F: '{print ($3 < 1000) ":" $7}')" "1:/usr/sbin/nologin"
check_eq "certfleet runs as the certfleet user" \
	"$(in_root setpriv --reuid=certfleet --regid=certfleet --clear-groups /usr/bin/certfleet --help 2>&1 | head -n1)" \
	"usage: certfleet COMMAND [OPTIONS]"
check_eq "/etc/certfleet/certfleet.env is 0640 root:certfleet" \
	"$(in_root stat -c '%a %U:%G' /etc/certfleet/certfleet.env)" "640 root:certfleet"
check "certfleet.env sets nothing (every setting commented)" \
	bash -c "! grep -Ev '^[[:space:]]*(#|\$)' '$tmp/root/etc/certfleet/certfleet.env'"
check "the providers example is in the docs and is JSON" \
	python3 -m json.tool "$tmp/root/usr/share/doc/certfleet/examples/providers.example" >/dev/null
commands=$(in_root /usr/bin/certfleet --help | sed -n '/^Commands:/,/^$/{s/^  \([a-z]*\) .*/\1/p}')
nopage=""
for page in certfleet $(printf 'certfleet-%s ' $commands); do
	[ -s "$tmp/root/usr/share/man/man1/$page.1.gz" ] || nopage="$nopage $page"
done
check_eq "a man page for certfleet and each of its $(echo $commands | wc -w) commands" "$nopage" ""
for unit in certfleet-run.service certfleet-run.timer certfleet-renew.service certfleet-renew.timer; do
	check "$unit installed" [ -s "$tmp/root/lib/systemd/system/$unit" ]
done
check "the units are not enabled by the installation" \
	bash -c "! ls '$tmp/root'/etc/systemd/system/*.wants/certfleet-* 2>/dev/null | grep -q ."

# systemd-analyze verify against the installed root (ExecStart's binary, the man pages named by
# Documentation=, and the units they refer to, all from that root).
MANPATH="$tmp/root/usr/share/man" systemd-analyze verify --root="$tmp/root" \
	/lib/systemd/system/certfleet-run.service /lib/systemd/system/certfleet-run.timer \
	/lib/systemd/system/certfleet-renew.service /lib/systemd/system/certfleet-renew.timer >"$tmp/verify.out" 2>&1
rc=$?
sed 's/^/# systemd-analyze: /' "$tmp/verify.out"
check_eq "systemd-analyze verify accepts the four units" "$rc" 0
check_eq "systemd-analyze verify prints no complaint" "$(wc -l <"$tmp/verify.out")" 0
check "systemctl enable certfleet-run.timer works in the root" \
	systemctl --root="$tmp/root" --quiet enable certfleet-run.timer
check "the timer is wanted by timers.target" [ -L "$tmp/root/etc/systemd/system/timers.target.wants/certfleet-run.timer" ]

finish
