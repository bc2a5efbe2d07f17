#!/usr/bin/env bash
# test_migrate.sh - a database from before the ready queue (migrations 001-004) with jobs in every
# state is migrated in place: ready jobs land in job_queue, a running job keeps its lease under a
# runner and is taken over once that lease runs out, finished jobs stay as they were.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=${CERTFLEET_DB%/*} db="t_${TEST_NAME}_$RUN_ID"
psql -q "$CERTFLEET_DB" -c "CREATE DATABASE \"$db\"" >/dev/null || { not_ok "create database"; finish; exit 1; }
export CERTFLEET_DB="$base/$db"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the schema as certfleet left it before migration 005
old_schema() {
	sql "CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())" >/dev/null
	for f in 001_init 002_durable_queue 003_providers 004_leaner_jobs; do
		psql -q -v ON_ERROR_STOP=1 "$CERTFLEET_DB" -f "$repo/sql/$f.sql" >/dev/null || not_ok "apply $f"
		sql "INSERT INTO schema_version (version, name) VALUES (${f%%_*}, '$f')" >/dev/null
	done
}
old_schema
check "account register on the old schema is refused until migrate" bash -c "! '$CF' account register --agree-tos >/dev/null 2>&1"
check "migrate" bash -c "'$CF' migrate >/dev/null 2>&1"
check "account register" register
acct=$(sql "SELECT id FROM accounts")
check "enqueue after migrate" bash -c "'$CF' enqueue 'm1.$ZONE' >/dev/null"
check_eq "a new job is ready and queued" \
	"$(sql "SELECT j.state || ' ' || (q.job_id IS NOT NULL) FROM jobs j LEFT JOIN job_queue q ON q.job_id = j.id")" "ready true"

# ---- a database with work in flight when 005 runs ----
db2="t_${TEST_NAME}_old_$RUN_ID"
psql -q "$base/$db" -c "CREATE DATABASE \"$db2\"" >/dev/null || not_ok "create second database"
export CERTFLEET_DB="$base/$db2"
old_schema
# the account row of the first database (the columns of 001), so that the jobs below belong to a
# registered account
cols="id, directory_url, account_url, key_pem, key_thumbprint, contact, issuer_domain, status, created_at"
psql -qAt "$base/$db" -c "COPY accounts ($cols) TO STDOUT" | psql -q "$CERTFLEET_DB" -c "COPY accounts ($cols) FROM STDIN" ||
	not_ok "copy the account"
sql "INSERT INTO certificates (id, names, names_key, provider) VALUES
	(1, ARRAY['o1.$ZONE'], 'o1.$ZONE', 'challtestsrv'), (2, ARRAY['o2.$ZONE'], 'o2.$ZONE', 'challtestsrv'),
	(3, ARRAY['o3.$ZONE'], 'o3.$ZONE', 'challtestsrv'), (4, ARRAY['o4.$ZONE'], 'o4.$ZONE', 'challtestsrv')" >/dev/null
sql "INSERT INTO jobs (certificate_id, account_id, state, attempts, locked_by, lease_until, finished_at, last_error) VALUES
	(1, $acct, 'ready', 0, NULL, NULL, NULL, NULL),
	(2, $acct, 'running', 1, 'gone:1:1', now() - interval '1 minute', NULL, NULL),
	(3, $acct, 'issued', 1, NULL, NULL, now(), NULL),
	(4, $acct, 'failed', 5, NULL, NULL, now(), 'refused')" >/dev/null
check "migrate with jobs in flight" bash -c "'$CF' migrate >/dev/null 2>&1"
check_eq "the ready job is queued, no other" "$(sql "SELECT string_agg(c.names[1], ' ') FROM job_queue q JOIN jobs j ON j.id = q.job_id JOIN certificates c ON c.id = j.certificate_id")" "o1.$ZONE"
check_eq "the running job's process became a runner with its lease" \
	"$(sql "SELECT owner || ' ' || (lease_until < now()) FROM runners")" "gone:1:1 true"
check_eq "finished jobs kept their state and error" "$(sql "SELECT string_agg(state || ':' || coalesce(last_error, ''), ' ' ORDER BY id) FROM jobs WHERE finished_at IS NOT NULL")" "issued: failed:refused"
check "enqueue of a certificate with a job in flight adds nothing" \
	bash -c "'$CF' enqueue 'o2.$ZONE' | grep -q '0 jobs in run.*1 already queued or running'"
check_eq "still one job for o2" "$(sql "SELECT count(*) FROM jobs WHERE certificate_id = 2")" 1
check_unfinished "after migrate"
check_eq "every certificate names the account of its latest job" \
	"$(sql "SELECT count(*) FROM certificates WHERE account_id IS DISTINCT FROM $acct")" 0
"$CF" run --no-progress >"$tmp/run.out" 2>&1
check_eq "run after migrate exits 0" "$?" 0
check_eq "the ready job and the dead runner's job were issued" \
	"$(sql "SELECT string_agg(state, ' ' ORDER BY id) FROM jobs WHERE certificate_id IN (1, 2)")" "issued issued"
check_eq "the dead runner's job was rescued" "$(sql "SELECT count(*) FROM events WHERE kind = 'rescued'")" 1
check_eq "no runner is left" "$(sql "SELECT count(*) FROM runners")" 0
check_eq "the queue is empty" "$(sql "SELECT count(*) FROM job_queue")" 0
check_unfinished "after the run"
finish
