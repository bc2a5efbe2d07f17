#!/usr/bin/env bash
# test_two_cas.sh - one fleet on two CAs: the stack's Pebble (A) and a second one (B), an account
# on each. Certificates enqueued for both (the second batch with --directory of B); ONE run issues
# every certificate from the CA it named (each leaf verifies against its CA's root and not against
# the other's), and the records carry each CA's account URL. A certificate enqueued again for the
# other CA moves to it. A backlog on A does not hold back B's jobs (claims take turns). While B is
# down, its jobs go back to the queue and A's are issued; run --directory works one CA alone; a
# run --follow takes on the account of jobs queued after it started.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

dir_a=$CERTFLEET_DIRECTORY
check "account register on CA A" register
start_pebble b || { not_ok "second Pebble started"; finish; exit 1; }
dir_b=$pebble_dir
mgmt_b=$pebble_mgmt
pid_b=${extra_pebbles[-1]}
"$CF" account register --directory "$dir_b" --agree-tos --contact "mailto:ops@$ZONE" >/dev/null
check_eq "account register on CA B (--directory)" "$?" 0
"$CF" account register --directory "$dir_b" --agree-tos --contact "mailto:ops@$ZONE" >/dev/null
check_eq "registering on B again keeps its account: one account per CA" \
	"$(sql "SELECT count(DISTINCT directory_url) || '/' || count(*) FROM accounts")" "2/2"
acct_a=$(sql "SELECT id FROM accounts WHERE directory_url = '$dir_a'")
acct_b=$(sql "SELECT id FROM accounts WHERE directory_url = '$dir_b'")
url_a=$(sql "SELECT account_url FROM accounts WHERE id = $acct_a")
url_b=$(sql "SELECT account_url FROM accounts WHERE id = $acct_b")
check "the accounts are each CA's own" test "${url_a%/my-account/*}" != "${url_b%/my-account/*}"

# --- a directory without an account: exit 2, naming it and what to do, and nothing stored
nodir="https://localhost:1/dir"
"$CF" enqueue --directory "$nodir" "x.$ZONE" >"$tmp/out" 2>&1
check_eq "enqueue for a CA without an account exits 2" "$?" 2
check "the message names the directory and tells to register" \
	grep -qF "no account for $nodir: register one for that CA first (certfleet account register --directory $nodir)" "$tmp/out"
check_eq "nothing was stored" "$(sql "SELECT (SELECT count(*) FROM certificates) + (SELECT count(*) FROM runs)")" 0

# --- one fleet: 12 certificates on A, 12 on B (one of them a wildcard with its base name)
for i in $(seq 1 12); do echo "a$i.$ZONE"; done >"$tmp/fleet_a"
{
	echo "wb.$ZONE, *.wb.$ZONE"
	for i in $(seq 1 11); do echo "b$i.$ZONE"; done
} >"$tmp/fleet_b"
"$CF" enqueue --file "$tmp/fleet_a" >/dev/null
check_eq "enqueue 12 for A (CERTFLEET_DIRECTORY) exits 0" "$?" 0
"$CF" enqueue --directory "$dir_b" --file "$tmp/fleet_b" >"$tmp/enq_b" 2>&1
check_eq "enqueue 12 for B (--directory) exits 0" "$?" 0
check "enqueue names B's directory" grep -qF "for $dir_b" "$tmp/enq_b"
check_eq "each certificate names its CA's account (A/B)" \
	"$(sql "SELECT count(*) FILTER (WHERE account_id = $acct_a) || '/' || count(*) FILTER (WHERE account_id = $acct_b) FROM certificates")" "12/12"
# a certificate whose job is queued stays with the CA of that job
"$CF" enqueue --directory "$dir_b" "a1.$ZONE" >/dev/null
check_eq "enqueued again for B while queued for A: stays on A" \
	"$(sql "SELECT account_id FROM certificates WHERE names_key = 'a1.$ZONE'")" "$acct_a"
check_eq "every job carries its certificate's account" \
	"$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE j.account_id <> c.account_id")" 0

# --- ONE run works both CAs (CERTFLEET_DIRECTORY names A; it does not restrict run)
"$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>"$tmp/run1.err"
check_eq "one run exits 0" "$?" 0
check_eq "24 issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 24
check "the run loaded A's account" grep -qF "run: account $url_a at $dir_a" "$tmp/run1.err"
check "the run loaded B's account" grep -qF "run: account $url_b at $dir_b" "$tmp/run1.err"
check_eq "every order went to its certificate's CA" \
	"$(sql "SELECT count(*) FROM orders o JOIN jobs j ON j.id = o.job_id JOIN accounts a ON a.id = j.account_id
		WHERE o.account_id <> j.account_id OR o.order_url NOT LIKE substring(a.directory_url from '^https://[^/]+/') || '%'")" 0

# Each leaf verifies against the root of the CA it named, and not against the other's.
pebble_chain_files "$tmp/root_a.pem" "$tmp/inter_a.pem"
check_eq "fetch A's root and intermediate" "$?" 0
curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$mgmt_b/roots/0" >"$tmp/root_b.pem" &&
	curl -sf --cacert "$CERTFLEET_CA_BUNDLE" "$mgmt_b/intermediates/0" >"$tmp/inter_b.pem"
check_eq "fetch B's root and intermediate" "$?" 0
check "the two CAs have different roots" bash -c "! cmp -s '$tmp/root_a.pem' '$tmp/root_b.pem'"
own=0 other=0 n=0
while IFS='|' read -r rid ca; do
	n=$((n + 1))
	sql "SELECT leaf_pem FROM results WHERE id = $rid" >"$tmp/leaf.pem"
	if [ "$ca" = "$acct_a" ]; then mine=a theirs=b; else mine=b theirs=a; fi
	openssl verify -CAfile "$tmp/root_$mine.pem" -untrusted "$tmp/inter_$mine.pem" "$tmp/leaf.pem" >/dev/null 2>&1 &&
		own=$((own + 1))
	openssl verify -CAfile "$tmp/root_$theirs.pem" -untrusted "$tmp/inter_$theirs.pem" "$tmp/leaf.pem" >/dev/null 2>&1 &&
		other=$((other + 1))
done < <(sql "SELECT r.id, c.account_id FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.is_current")
check_eq "24 current results" "$n" 24
check_eq "every leaf verifies against the root of the CA it named" "$own" 24
check_eq "no leaf verifies against the other CA's root" "$other" 0

# The records: each CA's carry its own account URL (and B's wildcard its policy).
check_eq "A's 12 records carry A's account URL" \
	"$(sql "SELECT count(*) FROM records WHERE account_id = $acct_a AND value = 'pebble.letsencrypt.org; accounturi=$url_a'")" 12
check_eq "B's 12 records carry B's account URL" \
	"$(sql "SELECT count(*) FROM records WHERE account_id = $acct_b AND value LIKE 'pebble.letsencrypt.org; accounturi=$url_b%'")" 12
check_eq "B's wildcard record carries policy=wildcard" \
	"$(sql "SELECT value FROM records WHERE fqdn = '_validation-persist.wb.$ZONE'")" \
	"pebble.letsencrypt.org; accounturi=$url_b; policy=wildcard"
check_eq "every record verified by its CA" "$(sql "SELECT count(*) FROM records WHERE verified_at IS NULL")" 0
"$CF" records --directory "$dir_b" >"$tmp/rec_b"
check_eq "records for B exits 0" "$?" 0
check "records names B's account and CA" grep -qxF "; account $acct_b $url_b of the CA $dir_b" "$tmp/rec_b"
check_eq "records for B lists B's 12 names with B's account URL" "$(grep -cF "accounturi=$url_b" "$tmp/rec_b")" 12
check_eq "records for B lists none of A's names" "$(grep -c "_validation-persist\.a[0-9]*\.$ZONE" "$tmp/rec_b")" 0
"$CF" records --format tsv >"$tmp/rec_all"
check_eq "records without --directory exits 0" "$?" 0
check "and lists both CAs' records exactly as run wrote them" cmp -s <(LC_ALL=C sort "$tmp/rec_all") \
	<(sql "SELECT fqdn || E'\t' || value FROM records" | LC_ALL=C sort)

# --- a certificate enqueued for the other CA moves to it with its new job
"$CF" enqueue --directory "$dir_b" "a1.$ZONE" >/dev/null
check_eq "a1 enqueued for B moves to B" "$(sql "SELECT account_id FROM certificates WHERE names_key = 'a1.$ZONE'")" "$acct_b"
check_eq "its new job is B's" "$(sql "SELECT j.account_id FROM jobs j JOIN certificates c ON c.id = j.certificate_id
	WHERE c.names_key = 'a1.$ZONE' AND j.state = 'ready'")" "$acct_b"

# --- fair claims: a backlog of 40 on A does not hold back B's 5 (a1 and 4 more), queued after it.
# With 4 orders in flight, claims alternate between the CAs: B's 5 end among the first 15 results
# (queue order alone would put them last, 41st to 45th).
for i in $(seq 1 40); do echo "e$i.$ZONE"; done >"$tmp/fleet_e"
for i in 1 2 3 4; do echo "f$i.$ZONE"; done >"$tmp/fleet_f"
"$CF" enqueue --file "$tmp/fleet_e" >/dev/null
check_eq "enqueue a backlog of 40 for A exits 0" "$?" 0
"$CF" enqueue --directory "$dir_b" --file "$tmp/fleet_f" >/dev/null
check_eq "enqueue 4 more for B exits 0" "$?" 0
r0=$(sql "SELECT max(id) FROM results")
"$CF" run --workers 1 --inflight 4 --batch 4 --no-progress >"$tmp/run_fair.out" 2>"$tmp/run_fair.err"
check_eq "the run of 45 exits 0" "$?" 0
check_eq "B's 5 results are among the first 15 of the 45" "$(sql "SELECT count(*) FROM (SELECT r.id, c.account_id,
	row_number() OVER (ORDER BY r.id) AS n FROM results r JOIN certificates c ON c.id = r.certificate_id WHERE r.id > $r0) x
	WHERE account_id = $acct_b AND n <= 15")" 5

# --- B is down: its jobs go back to the queue, A's are issued in the same run
for i in 1 2 3 4; do echo "c$i.$ZONE"; done >"$tmp/fleet_c"
for i in 1 2 3; do echo "d$i.$ZONE"; done >"$tmp/fleet_d"
"$CF" enqueue --file "$tmp/fleet_c" >/dev/null
check_eq "enqueue 4 more for A exits 0" "$?" 0
"$CF" enqueue --directory "$dir_b" --file "$tmp/fleet_d" >/dev/null
check_eq "enqueue 3 more for B exits 0" "$?" 0
kill "$pid_b"
wait "$pid_b" 2>/dev/null
"$CF" run --workers 2 --no-progress --order-timeout 20 --retry-wait 0 >"$tmp/run2.out" 2>"$tmp/run2.err"
check_eq "the run with B down exits 4 (B's jobs left for a retry)" "$?" 4
check_eq "A's 4 new certificates issued" "$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id
	WHERE j.state = 'issued' AND c.names_key LIKE 'c_.$ZONE'")" 4
check_eq "B's 3 jobs back in the queue after one attempt" "$(sql "SELECT count(*) FROM jobs j JOIN job_queue q ON q.job_id = j.id
	WHERE j.account_id = $acct_b AND j.state = 'ready' AND j.attempts = 1")" 3
check_eq "each with a retry event" "$(sql "SELECT count(DISTINCT e.job_id) FROM events e JOIN jobs j ON j.id = e.job_id
	WHERE e.kind = 'retry' AND j.account_id = $acct_b")" 3
"$CF" status >"$tmp/status"
check "status counts B's jobs waiting for a retry" grep -qxF "  $dir_b (account $acct_b): 3 ready, 0 running" "$tmp/status"
check "status lists no jobs of A" bash -c "! grep -qF '(account $acct_a)' '$tmp/status'"
# --- run --directory (the option) works that CA alone: B's jobs stay as they were
"$CF" run --directory "$dir_a" --no-progress --retry-wait 0 >"$tmp/run3.out" 2>"$tmp/run3.err"
check_eq "run --directory A exits 0 (nothing of A queued)" "$?" 0
check "it loaded no account of B" bash -c "! grep -qF '$dir_b' '$tmp/run3.err'"
check_eq "B's 3 jobs untouched" "$(sql "SELECT count(*) FROM jobs WHERE account_id = $acct_b AND state = 'ready' AND attempts = 1")" 3
# --- run --follow: an account without jobs when the run started joins it when its jobs come
"$CF" run --follow --no-progress --retry-wait 0 >"$tmp/run4.out" 2>"$tmp/run4.err" &
follow=$!
# its start line: "run: 1 CA, ..." (B alone; "CAs" from two on)
for _ in $(seq 100); do grep -qE "run: [0-9]+ CAs?, " "$tmp/run4.err" 2>/dev/null && break; sleep 0.1; done
check "the follow run started with B's account (its jobs wait for a retry)" grep -qF "run: account $url_b at $dir_b" "$tmp/run4.err"
check "and without A's (no job of A queued)" bash -c "! grep -qF 'run: account $url_a' '$tmp/run4.err'"
for i in 1 2 3; do echo "g$i.$ZONE"; done | "$CF" enqueue >/dev/null
check_eq "enqueue 3 for A while it follows exits 0" "$?" 0
for _ in $(seq 300); do
	[ "$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id
		WHERE j.state = 'issued' AND c.names_key LIKE 'g_.$ZONE'")" = 3 ] && break
	sleep 0.1
done
check_eq "the follow run issued A's 3 new certificates" "$(sql "SELECT count(*) FROM jobs j JOIN certificates c
	ON c.id = j.certificate_id WHERE j.state = 'issued' AND c.names_key LIKE 'g_.$ZONE'")" 3
check "it took A's account on when they came" grep -qF "run: account $url_a at $dir_a (its jobs came after the run started)" "$tmp/run4.err"
kill -TERM "$follow"
wait "$follow"
check_eq "the follow run, stopped, exits 4 (B's jobs still queued)" "$?" 4
check_unfinished "after the outage"

finish
