#!/usr/bin/env bash
# test_db_journal.sh - PostgreSQL refuses one certificate's result for good (a row trigger raising
# SQLSTATE 23514, as a CHECK constraint would): the run keeps that certificate in the local journal
# (mode 600), fails its job with certfleet:store and exits 5, while the other certificates are
# stored. A journal readable by others makes the next run refuse before it claims anything. Once
# the refusal is gone, the next run stores the journalled certificate, with no new order and no
# new certificate at the CA, and removes the journal.
. "$(dirname "$0")/lib.sh"

N=20
db_new || { not_ok "create database"; finish; exit 1; }
register || { not_ok "account register"; finish; exit 1; }
tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; rm -f "$CERTFLEET_JOURNAL"; }
trap cleanup EXIT
log="$CERTFLEET_STACK_DIR/logs/pebble.log"
since() { tail -c +"$((start + 1))" "$log" | grep -c "$1"; }
serials_since() { tail -c +"$((start + 1))" "$log" | sed -n 's/.*Issued certificate serial \([0-9a-f]*\) .*/\1/p'; }
summary_field() { sed -n 's/^summary: //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
journal="$CERTFLEET_JOURNAL"

seq 1 "$N" | sed "s/^/j/; s/\$/.$ZONE/" >"$tmp/fleet"
"$CF" enqueue --file "$tmp/fleet" >/dev/null || { not_ok "enqueue $N"; finish; exit 1; }
cert=$(sql "SELECT id FROM certificates WHERE names = ARRAY['j7.$ZONE']")
job=$(sql "SELECT id FROM jobs WHERE certificate_id = $cert")
sql "CREATE FUNCTION refuse_result() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.certificate_id = $cert THEN
		RAISE EXCEPTION 'new row for relation \"results\" violates check constraint \"results_test_refused\"'
			USING ERRCODE = '23514';
	END IF;
	RETURN NEW;
END \$\$;
CREATE TRIGGER refuse_result BEFORE INSERT ON results FOR EACH ROW EXECUTE FUNCTION refuse_result()" >/dev/null ||
	{ not_ok "create the refusal trigger"; finish; exit 1; }

# ---- the run: one result refused for good ----
start=$(stat -c %s "$log")
timeout 300 "$CF" run --workers 2 --no-progress >"$tmp/run1.out" 2>"$tmp/run1.err"
rc=$?
check_eq "the run exits 5 (a result waits in the journal)" "$rc" 5
[ "$rc" -eq 5 ] || { grep -h '^summary:' "$tmp/run1.out"; tail -n 20 "$tmp/run1.err"; } | sed 's/^/# /'
ca_issued=$(since 'Issued certificate')
orders=$(since 'Added order')
check_eq "the CA created $N orders and issued $N certificates" "$orders $ca_issued" "$N $N"
check_eq "the summary: ca_issued=$N issued=$((N - 1)) journalled=1 lost=0" \
	"$(summary_field "$tmp/run1.out" ca_issued) $(summary_field "$tmp/run1.out" issued) $(summary_field "$tmp/run1.out" journalled) $(summary_field "$tmp/run1.out" lost)" \
	"$N $((N - 1)) 1 0"
check "the run names the journal that holds the result" grep -qF "in the journal $journal" "$tmp/run1.err"
check "the journal exists" test -f "$journal"
check_eq "the journal is mode 600" "$(stat -c %a "$journal" 2>/dev/null)" 600
check_eq "the journal holds exactly one entry" "$(wc -l <"$journal" 2>/dev/null)" 1
check_eq "the entry is the refused job's certificate" \
	"$(grep -c "\"kind\":\"issued\".*\"job_id\":$job,\"certificate_id\":$cert," "$journal" 2>/dev/null)" 1
# the certificate the CA issued that PostgreSQL does not hold
serials_since | LC_ALL=C sort >"$tmp/ca.serials"
sql "SELECT serial FROM results" | LC_ALL=C sort >"$tmp/db.serials"
missing=$(LC_ALL=C comm -23 "$tmp/ca.serials" "$tmp/db.serials")
check_eq "exactly one certificate the CA issued is not in PostgreSQL" "$(echo "$missing" | grep -c .)" 1
check "the journal holds that certificate (serial ${missing:-none}) with its key, sealed" \
	grep -q "\"leaf_pem\":\"-----BEGIN CERTIFICATE.*\"key_pem\":\"cfseal1:[0-9a-f]\{16\}:.*\"serial\":\"${missing:-none}\"" "$journal"
check "the journal holds no key in clear" bash -c "! grep -q 'PRIVATE KEY' '$journal'"
check_eq "its job failed with certfleet:store" \
	"$(sql "SELECT state || ' ' || last_problem_type FROM jobs WHERE id = $job")" "failed certfleet:store"
check "the job's error names the serial and the journal" \
	bash -c "psql -qAt '$CERTFLEET_DB' -c 'SELECT last_error FROM jobs WHERE id = $job' | grep -q 'serial ${missing:-none}.*journal'"
check_eq "no result for it" "$(sql "SELECT count(*) FROM results WHERE certificate_id = $cert")" 0
check_eq "the other certificates are issued, one current result each" \
	"$(sql "SELECT count(*) FROM jobs j WHERE j.state = 'issued' AND (SELECT count(*) FROM results r
		WHERE r.certificate_id = j.certificate_id AND r.is_current AND r.key_pem IS NOT NULL) = 1")/$(sql "SELECT count(*) FROM results")" \
	"$((N - 1))/$((N - 1))"
check_unfinished "after the refused result"

# ---- a journal others may read: the run refuses before it claims ----
start=$(stat -c %s "$log")
sum=$(md5sum <"$journal")
"$CF" enqueue "extra.$ZONE" >/dev/null || not_ok "enqueue one more"
extra=$(sql "SELECT j.id FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['extra.$ZONE']")
chmod 644 "$journal"
"$CF" run --workers 2 --no-progress >"$tmp/run644.out" 2>"$tmp/run644.err"
check_eq "with the journal mode 644, run exits 1" "$?" 1
check "and its message names the journal's path" grep -qF "journal $journal is readable by group or others" "$tmp/run644.err"
check_eq "nothing was claimed: the queued job is ready, not attempted, with no order" \
	"$(sql "SELECT state || ' ' || attempts || ' ' || (SELECT count(*) FROM orders o WHERE o.job_id = j.id) FROM jobs j WHERE id = $extra")" \
	"ready 0 0"
check_eq "no runner registered" "$(sql "SELECT count(*) FROM runners")" 0
check_eq "the journal was not replayed (unchanged, the job still failed)" \
	"$(md5sum <"$journal") $(sql "SELECT state FROM jobs WHERE id = $job")" "$sum failed"
"$CF" cancel --job "$extra" >/dev/null || not_ok "cancel the extra job"
chmod 600 "$journal"

# ---- the refusal is gone: the next run stores the journalled certificate ----
sql "DROP TRIGGER refuse_result ON results" >/dev/null || not_ok "drop the refusal trigger"
"$CF" run --workers 2 --no-progress >"$tmp/run2.out" 2>"$tmp/run2.err"
rc=$?
check_eq "the next run exits 0" "$rc" 0
[ "$rc" -eq 0 ] || { grep -h '^summary:' "$tmp/run2.out"; tail -n 20 "$tmp/run2.err"; } | sed 's/^/# /'
check "it says it stored the journal's entry" grep -qF "stored 1 entry of the journal $journal" "$tmp/run2.err"
check_eq "the journalled certificate is now its current result, with its key" \
	"$(sql "SELECT count(*) FROM results WHERE certificate_id = $cert AND is_current AND key_pem IS NOT NULL AND serial = '${missing:-none}'")/$(sql "SELECT count(*) FROM results WHERE certificate_id = $cert")" \
	1/1
sql "SELECT leaf_pem FROM results WHERE certificate_id = $cert" >"$tmp/leaf.pem"
sql "SELECT key_pem FROM results WHERE certificate_id = $cert" | "$CF" keys open results.key_pem >"$tmp/key.pem"
check "its key matches the certificate" \
	cmp -s <(openssl x509 -in "$tmp/leaf.pem" -noout -pubkey 2>/dev/null) <(openssl pkey -in "$tmp/key.pem" -pubout 2>/dev/null)
rm -f "$tmp/key.pem"
check_eq "its job is issued" "$(sql "SELECT state FROM jobs WHERE id = $job")" issued
check "the journal is gone" test ! -e "$journal"
check_eq "Pebble created no order and issued no certificate since" \
	"$(since 'Added order') $(since 'Issued certificate')" "0 0"
check_eq "$N results in all, one current per certificate" \
	"$(sql "SELECT count(*) FROM results")/$(sql "SELECT count(DISTINCT certificate_id) FROM results WHERE is_current")" "$N/$N"
check_unfinished "after the journal was stored"
echo "# first run: $orders orders created, $ca_issued certificates issued by the CA, $(summary_field "$tmp/run1.out" issued) stored, $(summary_field "$tmp/run1.out" journalled) journalled (wall_s=$(summary_field "$tmp/run1.out" wall_s), peak_rss_mb=$(summary_field "$tmp/run1.out" peak_rss_mb))"
echo "# replay run: results stored $(sql "SELECT count(*) FROM results"), wall_s=$(summary_field "$tmp/run2.out" wall_s)"
finish
