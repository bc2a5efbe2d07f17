#!/usr/bin/env bash
# test_db_refusal.sh - PostgreSQL refuses every write for 10 s in the middle of a run of 500
# certificates, with the error a full disk gives (SQLSTATE 53100, raised by statement triggers on
# the tables a run writes). The writer waits the refusal out: every certificate the CA issued is
# stored once with its key, nothing goes to the journal, and nothing is ordered or issued twice.
. "$(dirname "$0")/lib.sh"

N=500
db_new || { not_ok "create database"; finish; exit 1; }
register || { not_ok "account register"; finish; exit 1; }
tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
log="$CERTFLEET_STACK_DIR/logs/pebble.log"
since() { tail -c +"$((start + 1))" "$log" | grep -c "$1"; }
# summary_field NAME: NAME's value on the run's summary line
summary_field() { sed -n 's/^summary: //p' "$tmp/run.out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# While refuse_writes.until lies ahead, every write to these tables fails as on a full disk.
sql "CREATE TABLE refuse_writes (until timestamptz NOT NULL);
INSERT INTO refuse_writes VALUES ('-infinity');
CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF EXISTS (SELECT 1 FROM refuse_writes WHERE until > now()) THEN
		RAISE EXCEPTION 'could not extend file \"base/16384/16397\": No space left on device'
			USING ERRCODE = '53100', HINT = 'Check free disk space.';
	END IF;
	RETURN NULL;
END \$\$;
DO \$\$ DECLARE t text; BEGIN
	FOREACH t IN ARRAY ARRAY['orders', 'results', 'records', 'events', 'jobs', 'unfinished_jobs',
	    'job_queue', 'runners'] LOOP
		EXECUTE format('CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE OR DELETE ON %I '
		    'FOR EACH STATEMENT EXECUTE FUNCTION refuse_writes()', t);
	END LOOP;
END \$\$" >/dev/null || { not_ok "create the refusal triggers"; finish; exit 1; }

seq 1 "$N" | sed "s/^/r/; s/\$/.$ZONE/" >"$tmp/fleet"
"$CF" enqueue --file "$tmp/fleet" >/dev/null || { not_ok "enqueue $N"; finish; exit 1; }

# Once 100 results are stored, PostgreSQL refuses writes for 10 s.
(
	for _ in $(seq 1 3000); do
		stored=$(sql "SELECT count(*) FROM results")
		if [ "${stored:-0}" -ge 100 ]; then
			sql "UPDATE refuse_writes SET until = now() + interval '10 seconds'" >/dev/null
			echo "$stored" >"$tmp/refused-at"
			exit 0
		fi
		sleep 0.05
	done
) &
refuser=$!

start=$(stat -c %s "$log")
t0=$(date +%s.%N)
timeout 600 "$CF" run --workers 2 --no-progress >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
t1=$(date +%s.%N)
wait "$refuser"

check_eq "the run exits 0" "$rc" 0
[ "$rc" -eq 0 ] || { grep -h '^summary:' "$tmp/run.out"; tail -n 20 "$tmp/run.err"; } | sed 's/^/# /'
refused_at=$(cat "$tmp/refused-at" 2>/dev/null)
check "the refusal began in the middle of the run (after ${refused_at:-no} results)" \
	test -n "$refused_at" -a "${refused_at:-0}" -lt "$N"
check_eq "every job issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" "$N"
check_eq "every certificate has exactly one current result, with its key" \
	"$(sql "SELECT count(*) FROM certificates c WHERE (SELECT count(*) FROM results r
		WHERE r.certificate_id = c.id AND r.is_current AND r.key_pem IS NOT NULL) = 1")" "$N"
stored=$(sql "SELECT count(*) FROM results")
check_eq "$N results in all: none stored twice" "$stored" "$N"
ca_issued=$(since 'Issued certificate')
orders=$(since 'Added order')
check_eq "Pebble issued $N certificates during the test" "$ca_issued" "$N"
# an attempt retried (say the CA's DNS lookup failed under load) makes one new order, no more
retried=$(summary_field retried)
check_eq "Pebble created $N orders during the test (plus one per retried attempt: $retried)" "$orders" "$((N + retried))"
check_eq "the results hold exactly the serials Pebble issued" \
	"$(sql "SELECT serial FROM results ORDER BY 1" | md5sum)" \
	"$(tail -c +"$((start + 1))" "$log" | sed -n 's/.*Issued certificate serial \([0-9a-f]*\) .*/\1/p' | LC_ALL=C sort | md5sum)"
check_eq "every stored key matches its certificate (mismatched/checked)" "$(result_keys_checked)" "0/$N"
check "no journal was written (the refusal passed)" test ! -e "$CERTFLEET_JOURNAL"
check_eq "the summary says journalled=0 lost=0" "$(summary_field journalled) $(summary_field lost)" "0 0"
check "the writer warned that PostgreSQL does not take writes (SQLSTATE 53100)" \
	grep -q "writer: PostgreSQL does not take writes (SQLSTATE 53100)" "$tmp/run.err"
check "the writer said when PostgreSQL took writes again" grep -q "PostgreSQL takes writes again" "$tmp/run.err"
# the claimer pauses its claims after a refusal and says so at the first and then every 10 s
refused_claims=$(grep -c "run: claiming jobs:" "$tmp/run.err")
check "the claimer logged the refused claims at most 3 times ($refused_claims), not at every try" \
	test "$refused_claims" -le 3
waits=$(summary_field db_waits)
longest=$(summary_field db_longest_wait_s)
check "the summary counts waits (db_waits=$waits)" test "${waits:-0}" -gt 0
check "the longest wait covers the refusal (db_longest_wait_s=$longest >= 8)" \
	awk -v s="${longest:-0}" 'BEGIN { exit !(s >= 8) }'
check_eq "the ready queue is empty" "$(sql "SELECT count(*) FROM job_queue")" 0
check_eq "no live lease is left behind" "$(sql "SELECT count(*) FROM runners WHERE lease_until > now()")" 0
check_unfinished "after the refusal"

echo "# certificates issued by the CA: $ca_issued; results stored: $stored; orders created: $orders"
echo "# refusal began after $refused_at results; run time $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s (wall_s=$(summary_field wall_s))"
echo "# db_waits=$waits db_longest_wait_s=$longest peak_outbox=$(summary_field peak_outbox) peak_rss_mb=$(summary_field peak_rss_mb) peak_inflight=$(summary_field peak_inflight) retried=$retried"
finish
