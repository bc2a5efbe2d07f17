#!/usr/bin/env bash
# test_roles.sh - the least-privilege roles of migration 007: login roles holding certfleet_run,
# certfleet_enqueue and certfleet_report do their work, and only certfleet_run reads a key column.
# Role names are cluster-wide: migrating a second database finds the roles there already.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
tmp=$(mktemp -d)
OWNER_DB=$CERTFLEET_DB
R_RUN="t_run_$RUN_ID" R_ENQ="t_enq_$RUN_ID" R_REP="t_rep_$RUN_ID"
cleanup() {
	for r in "$R_RUN" "$R_ENQ" "$R_REP"; do
		psql -qX "$OWNER_DB" -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

check_eq "migrate created the three roles, NOLOGIN" \
	"$(sql "SELECT string_agg(rolname || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('certfleet_run', 'certfleet_enqueue', 'certfleet_report')")" \
	"certfleet_enqueue:false,certfleet_report:false,certfleet_run:false"

# a second database of the same cluster: its migration finds the roles and grants them its tables
second="${CERTFLEET_DB%/*}/t_${TEST_NAME}_${RUN_ID}_b"
psql -qX "$CERTFLEET_DB" -c "CREATE DATABASE \"t_${TEST_NAME}_${RUN_ID}_b\"" >/dev/null
CERTFLEET_DB=$second "$CF" migrate >"$tmp/m2" 2>&1
check_eq "migrating a second database with the roles in place exits 0" "$?" 0
check_eq "its tables are granted too" \
	"$(psql -qAtX "$second" -c "SELECT has_column_privilege('certfleet_report', 'results', 'serial', 'SELECT')::text || has_column_privilege('certfleet_report', 'results', 'key_pem', 'SELECT')::text")" "truefalse"
psql -qX "$CERTFLEET_DB" -c "DROP DATABASE \"t_${TEST_NAME}_${RUN_ID}_b\"" >/dev/null

sql "CREATE ROLE $R_RUN LOGIN IN ROLE certfleet_run; CREATE ROLE $R_ENQ LOGIN IN ROLE certfleet_enqueue;
	CREATE ROLE $R_REP LOGIN IN ROLE certfleet_report" || not_ok "create the login roles"
# as ROLE: CERTFLEET_DB for that login role
as() { local u=$1; shift; CERTFLEET_DB="${OWNER_DB/\/\/*@/\/\/$u@}" "$@"; }
as_sql() { as "$1" bash -c 'psql -qAtX -v ON_ERROR_STOP=1 "$CERTFLEET_DB" -c "$1"' _ "$2"; }
check_eq "the login roles connect as themselves" "$(as_sql "$R_REP" "SELECT current_user")" "$R_REP"

# --- certfleet_run: registers the account, queues and issues
as "$R_RUN" "$CF" account register --agree-tos --contact "mailto:ops@$ZONE" >"$tmp/reg" 2>&1
check_eq "as certfleet_run: account register" "$?" 0
as "$R_RUN" "$CF" enqueue "r1.$ZONE" "r2.$ZONE" >"$tmp/enq" 2>&1
check_eq "as certfleet_run: enqueue" "$?" 0
as "$R_RUN" "$CF" run --workers 1 --no-progress >"$tmp/run" 2>&1
check_eq "as certfleet_run: run issues the certificates" "$?" 0
check_eq "two results stored" "$(sql "SELECT count(*) FROM results")" 2

# --- certfleet_enqueue: enqueue works without reading the account's key
as "$R_ENQ" "$CF" enqueue "e1.$ZONE" >"$tmp/enq2" 2>&1
check_eq "as certfleet_enqueue: enqueue works" "$?" 0
as "$R_ENQ" "$CF" enqueue --profile shortlived "r1.$ZONE" >"$tmp/enq3" 2>&1
check_eq "as certfleet_enqueue: enqueue --profile changes a certificate already in the fleet" \
	"$?:$(sql "SELECT profile FROM certificates WHERE names[1] = 'r1.$ZONE'")" "0:shortlived"
check_eq "the job is queued" "$(sql "SELECT count(*) FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['e1.$ZONE'] AND j.state = 'ready'")" 1
as "$R_ENQ" "$CF" enqueue --key-type rsa-2048 --provider challtestsrv "r2.$ZONE" >"$tmp/enq4" 2>&1
check_eq "as certfleet_enqueue: enqueue --key-type --provider changes a certificate already in the fleet" \
	"$?:$(sql "SELECT key_type FROM certificates WHERE names[1] = 'r2.$ZONE'")" "0:rsa-2048"
as "$R_ENQ" "$CF" enqueue --wait --timeout 1 --output json "e1.$ZONE" >"$tmp/enq5" 2>&1
check_eq "as certfleet_enqueue: enqueue --wait reads how its jobs stand (exit 4: no run works them)" "$?" 4
as_sql "$R_ENQ" "SELECT key_pem FROM accounts" >"$tmp/e" 2>&1
check "as certfleet_enqueue: SELECT key_pem FROM accounts is denied" grep -q "permission denied" "$tmp/e"
for col in key_pem leaf_pem; do
	as_sql "$R_ENQ" "SELECT $col FROM results" >"$tmp/e" 2>&1
	check "as certfleet_enqueue: results.$col is not readable" grep -q "permission denied" "$tmp/e"
done
as "$R_ENQ" "$CF" run --workers 1 --no-progress >"$tmp/e" 2>&1
check "as certfleet_enqueue: run is refused by the database" grep -q "permission denied" "$tmp/e"

# --- certfleet_report: everything but the keys
for t in results accounts orders; do
	as_sql "$R_REP" "SELECT key_pem FROM $t" >"$tmp/e" 2>&1
	check "as certfleet_report: SELECT key_pem FROM $t is denied" grep -q "permission denied" "$tmp/e"
done
as_sql "$R_REP" "SELECT * FROM results" >"$tmp/e" 2>&1
check "as certfleet_report: SELECT * FROM results is denied (it holds key_pem)" grep -q "permission denied" "$tmp/e"
check_eq "as certfleet_report: SELECT serial, not_after FROM results" \
	"$(as_sql "$R_REP" "SELECT count(serial) + count(not_after) FROM results")" 4
check_eq "as certfleet_report: a report over certificates, jobs and results" \
	"$(as_sql "$R_REP" "SELECT count(*) FROM certificates c JOIN jobs j ON j.certificate_id = c.id
		JOIN results r ON r.job_id = j.id WHERE r.is_current AND r.not_after > now()")" 2
check_eq "as certfleet_report: accounts without the key" \
	"$(as_sql "$R_REP" "SELECT count(key_thumbprint) FROM accounts")" 1
as "$R_REP" "$CF" status >"$tmp/st" 2>&1
check_eq "as certfleet_report: certfleet status" "$?" 0
as "$R_REP" "$CF" records >"$tmp/rec" 2>&1
check_eq "as certfleet_report: certfleet records" "$?" 0
check "records lists the fleet's names" grep -q "_validation-persist.r1.$ZONE" "$tmp/rec"
as "$R_REP" "$CF" account show >"$tmp/show" 2>&1
check_eq "as certfleet_report: certfleet account show" "$?" 0
as "$R_REP" "$CF" enqueue "x.$ZONE" >"$tmp/e" 2>&1
check "as certfleet_report: enqueue is refused by the database" grep -q "permission denied" "$tmp/e"

finish
