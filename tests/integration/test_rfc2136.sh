#!/usr/bin/env bash
# test_rfc2136.sh - the rfc2136 provider against a real BIND 9 (scripts/bind.sh): TSIG-signed
# updates, one message per call, ensure twice changes nothing, values written by others survive,
# bad keys are refused without the secret ever being printed, and `provider verify` asks the
# authoritative servers, configured or found through SOA/NS. Needs neither PostgreSQL nor Pebble.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/certfleet-rfc2136.XXXXXX")
trap '"$repo/scripts/bind.sh" stop "$tmp/bind" >/dev/null 2>&1; rm -rf "$tmp"' EXIT

# A port free for UDP and TCP; bind.sh refuses a busy one, so a few tries.
started=0
for try in 1 2 3 4 5; do
	port=$(random_port)
	if "$repo/scripts/bind.sh" start "$tmp/bind" "$port" a.example b.example 2>"$tmp/bind.err"; then
		started=1
		break
	fi
done
if [ "$started" -ne 1 ]; then
	not_ok "BIND starts ($(tr '\n' ' ' <"$tmp/bind.err"))"
	finish
	exit 1
fi
ok "BIND starts on 127.0.0.1:$port"

key_secret() { sed -n 's/.*secret "\(.*\)";.*/\1/p' "$1"; }
secret=$(key_secret "$tmp/bind/tsig.key")
secret512=$(key_secret "$tmp/bind/tsig-sha512.key")
wrong=$(head -c 32 /dev/urandom | base64)
(umask 077 && printf '%s\n' "$secret" >"$tmp/secret")
check "BIND's keys are mode 600" test "$(stat -c %a "$tmp/bind/tsig.key")" = 600

srv="127.0.0.1:$port"
cat >"$tmp/providers.json" <<EOF
{ "providers": {
    "dns-test":   { "type": "rfc2136", "server": "$srv", "zones": ["a.example", "b.example", "c.example"],
                    "tsig_name": "certfleet", "tsig_secret_file": "$tmp/secret", "timeout": 5,
                    "verify": { "servers": ["$srv"], "timeout": 2 } },
    "dns-512":    { "type": "rfc2136", "server": "$srv", "zones": ["a.example"], "ttl": 60,
                    "tsig_name": "certfleet-sha512", "tsig_algorithm": "hmac-sha512", "tsig_secret": "$secret512",
                    "verify": { "servers": ["$srv"], "timeout": 2 } },
    "dns-disc":   { "type": "rfc2136", "server": "$srv", "tsig_name": "certfleet", "tsig_secret": "$secret",
                    "verify": { "resolver": "$srv", "ns_port": $port, "timeout": 2 } },
    "dns-badkey": { "type": "rfc2136", "server": "$srv", "zones": ["a.example"],
                    "tsig_name": "certfleet", "tsig_secret": "$wrong" },
    "dns-noname": { "type": "rfc2136", "server": "$srv", "zones": ["a.example"],
                    "tsig_name": "nosuchkey", "tsig_secret": "$secret" },
    "dns-down":   { "type": "rfc2136", "server": "127.0.0.1:1", "zones": ["a.example"], "timeout": 2,
                    "tsig_name": "certfleet", "tsig_secret": "$secret" }
} }
EOF
chmod 600 "$tmp/providers.json"
export CERTFLEET_PROVIDERS="$tmp/providers.json"

n=0
# cf NAME ARGS...: runs certfleet, its output in $tmp/NAME.out and .err; sets rc
cf() {
	local name=$1
	shift
	"$CF" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
	n=$((n + 1))
}

# The TXT values at a name, from BIND, one a line, sorted; several character-strings joined.
txt() {
	dig +short +norecurse -p "$port" @127.0.0.1 TXT "$1" | sed -e 's/" "//g' -e 's/^"//' -e 's/"$//' | sort
}
serial() { dig +short +norecurse -p "$port" @127.0.0.1 SOA "$1" | awk '{print $3}'; }

cf list provider list
if [ "$rc" -ne 0 ]; then
	not_ok "certfleet loads the rfc2136 accounts ($(head -n 1 "$tmp/list.err"))"
	finish
	exit 1
fi
check_eq "certfleet lists the 6 rfc2136 accounts" "$(grep -c ' type=rfc2136 ' "$tmp/list.out")" 6

A=_validation-persist.one.a.example
B=_validation-persist.two.a.example
C=_validation-persist.three.a.example
V="letsencrypt.org; accounturi=https://ca.example/acct/1; policy=wildcard"
W="letsencrypt.org; accounturi=https://ca.example/acct/2"

# -- ensure: three records of one zone, one UPDATE message --
cf ensure1 provider ensure dns-test "$A" "$V" "$B" "$V" "$C" "$W"
check_eq "ensure 3 records exits 0" "$rc" 0
check_eq "ensure names the 3 records" "$(grep -c '^ensured dns-test _validation-persist' "$tmp/ensure1.out")" 3
check_eq "$A holds the value" "$(txt "$A")" "$V"
check_eq "$B holds the value" "$(txt "$B")" "$V"
check_eq "$C holds the value" "$(txt "$C")" "$W"
msgs=$(grep "adding an RR at '_validation-persist\.\(one\|two\|three\)\.a\.example'" "$tmp/bind/named.log" |
	sed -n 's/.*client @[^ ]* \([^ /]*\)\/key .*/\1/p' | sort -u | wc -l)
check_eq "the 3 records went in one signed UPDATE message" "$msgs" 1
check "BIND saw key certfleet sign it" grep -q "/key certfleet: updating zone 'a.example/IN': adding an RR at '$A'" "$tmp/bind/named.log"

# -- ensure again: nothing changes --
s0=$(serial a.example)
cf ensure2 provider ensure dns-test "$A" "$V" "$B" "$V" "$C" "$W"
check_eq "ensure again exits 0" "$rc" 0
check_eq "ensure again leaves $A as it was (no duplicate)" "$(txt "$A")" "$V"
check_eq "ensure again leaves $C as it was" "$(txt "$C")" "$W"
check_eq "ensure again does not change the zone (serial)" "$(serial a.example)" "$s0"

# -- a value written by someone else at the same name --
nsupdate -k "$tmp/bind/tsig.key" >"$tmp/nsupdate.out" 2>&1 <<EOF
server 127.0.0.1 $port
zone a.example
update add $A 300 IN TXT "foreign value"
send
EOF
check_eq "nsupdate adds a foreign value" "$?" 0
cf ensure3 provider ensure dns-test "$A" "$V"
check_eq "ensure beside a foreign value exits 0" "$rc" 0
check_eq "the foreign value survives ensure" "$(txt "$A")" "$(printf '%s\n%s' "foreign value" "$V" | sort)"

# -- verify: at the configured server, then through SOA/NS discovery --
cf verify1 provider verify dns-test "$A" "$V" "$B" "$V" "$C" "$W"
check_eq "verify (servers) finds the 3 records" "$rc" 0
check_eq "verify (servers) says present 3 times" "$(grep -c '^present ' "$tmp/verify1.out")" 3
cf verify2 provider verify dns-disc "$A" "$V" "$C" "$W"
check_eq "verify (discovery through the resolver) finds them" "$rc" 0
cf verify3 provider verify dns-test "$A" "not ours"
check_eq "verify of a value that is not there exits 1" "$rc" 1
check "verify says which server lacks which value" grep -q "absent $A \"not ours\": $srv has no TXT \"not ours\" at $A (2 other TXT values)" "$tmp/verify3.out"

# -- remove: only ours --
cf remove1 provider remove dns-test "$A" "$V" "$B" "$V" "$C" "$W"
check_eq "remove 3 records exits 0" "$rc" 0
check_eq "remove keeps the foreign value" "$(txt "$A")" "foreign value"
check_eq "remove deletes $B" "$(txt "$B")" ""
check_eq "remove deletes $C" "$(txt "$C")" ""
cf remove2 provider remove dns-test "$A" "$V" "$B" "$V"
check_eq "remove again exits 0 (nothing to delete)" "$rc" 0
check_eq "remove again keeps the foreign value" "$(txt "$A")" "foreign value"
cf verify4 provider verify dns-test "$A" "$V"
check_eq "verify (servers) after remove exits 1" "$rc" 1
check "verify (servers) after remove says absent" grep -q "^absent $A " "$tmp/verify4.out"
cf verify5 provider verify dns-disc "$B" "$V"
check_eq "verify (discovery) after remove exits 1" "$rc" 1
check "verify (discovery) after remove: NXDOMAIN from the discovered server" \
	grep -q "absent $B \"$V\": $srv has no TXT .* at $B (NXDOMAIN)" "$tmp/verify5.out"

# -- the zone found in DNS (no "zones"), a second zone, a long value, hmac-sha512 --
D=_validation-persist.disc.b.example
cf ensure4 provider ensure dns-disc "$D" "$V"
check_eq "ensure with the zone found through the resolver exits 0" "$rc" 0
check_eq "$D holds the value" "$(txt "$D")" "$V"
long=$(printf 'x%.0s' $(seq 1 300))$(printf 'y%.0s' $(seq 1 300))
L=_validation-persist.long.a.example
cf ensure5 provider ensure dns-512 "$L" "$long"
check_eq "ensure of a 600-octet value with hmac-sha512 exits 0" "$rc" 0
check_eq "it is stored as 3 character-strings" \
	"$(dig +short +norecurse -p "$port" @127.0.0.1 TXT "$L" | grep -o '"[^"]*"' | awk '{print length($0) - 2}' | tr '\n' ' ')" \
	"255 255 90 "
check_eq "with the account's TTL" "$(dig +norecurse +noall +answer -p "$port" @127.0.0.1 TXT "$L" | awk '{print $2}')" 60
cf verify6 provider verify dns-512 "$L" "$long"
check_eq "verify joins the character-strings" "$rc" 0
cf remove3 provider remove dns-512 "$L" "$long"
check_eq "remove of the long value" "$rc.$(txt "$L")" "0."

# -- failures --
cf badkey provider ensure dns-badkey "$A" "$V"
check_eq "a wrong TSIG secret fails (exit 1)" "$rc" 1
check "the failure names the account and says the key was rejected" \
	grep -q "rfc2136 dns-badkey: update of zone a.example at $srv refused: NOTAUTH, TSIG error BADSIG (TSIG key rejected" "$tmp/badkey.err"
cf noname provider ensure dns-noname "$A" "$V"
check_eq "an unknown key name fails (exit 1)" "$rc" 1
check "the failure says BADKEY and names the key" grep -q "dns-noname.*BADKEY (TSIG key rejected: the server knows no key \"nosuchkey\"" "$tmp/noname.err"
check_eq "the rejected updates changed nothing" "$(txt "$A")" "foreign value"
cf notzone provider ensure dns-test _validation-persist.x.c.example "$V"
check_eq "an update of a zone the server does not serve fails" "$rc" 1
check "it says NOTAUTH for zone c.example" grep -q "dns-test: update of zone c.example at $srv refused: NOTAUTH" "$tmp/notzone.err"
cf down provider ensure dns-down "$A" "$V"
check_eq "a server that is down fails (exit 1)" "$rc" 1
check "it says connection refused and that a later try may succeed" \
	grep -q "dns-down: update of zone a.example at 127.0.0.1:1 failed: connection refused (TCP) (a later try may succeed)" "$tmp/down.err"

# a bad setting is named, and the secret never is
printf '{ "providers": { "dns-bad": { "type": "rfc2136", "server": "ns1.example", "tsig_name": "certfleet", "tsig_secret": "%s" } } }\n' \
	"$secret" >"$tmp/bad.json"
chmod 600 "$tmp/bad.json"
CERTFLEET_PROVIDERS="$tmp/bad.json" cf badconf provider ensure dns-bad "$A" "$V"
check_eq "a host name as server is a configuration error (exit 2)" "$rc" 2
check "the error names the account and the setting" grep -q "provider dns-bad: \"server\": \"ns1.example\" is not an address" "$tmp/badconf.err"
printf '{ "providers": { "dns-bad": { "type": "rfc2136", "server": "%s", "tsig_name": "certfleet", "tsig_secret": "not base64 %s" } } }\n' \
	"$srv" "$secret" >"$tmp/bad.json"
CERTFLEET_PROVIDERS="$tmp/bad.json" cf badsecret provider ensure dns-bad "$A" "$V"
check "a secret that is not base64 is refused without showing it" \
	grep -q "provider dns-bad: \"tsig_secret\" is not padded base64" "$tmp/badsecret.err"

leaks=0
for f in "$tmp"/*.out "$tmp"/*.err; do
	if grep -qF -e "$secret" -e "$secret512" -e "$wrong" "$f"; then
		leaks=$((leaks + 1))
		echo "# a secret appears in $(basename "$f")" >&2
	fi
done
check_eq "no secret in the stdout or stderr of $n commands" "$leaks" 0

finish
