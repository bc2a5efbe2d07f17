#!/usr/bin/env bash
# test_failure.sh - a name whose published record carries a wrong accounturi fails with the CA's
# unauthorized problem stored; the other jobs of the same run are issued.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
acct=$(sql "SELECT account_url FROM accounts")
issuer=$(sql "SELECT issuer_domain FROM accounts")

bad="bad.$ZONE"
check "enqueue" "$CF" enqueue "good1.$ZONE" "good2.$ZONE,www.good2.$ZONE" "$bad"
# Someone replaced the record of $bad: DNS carries another account, while certfleet's records
# table still believes its own record is in place (so certfleet does not rewrite it).
curl -sf -X POST -d "{\"host\":\"_validation-persist.$bad.\",\"value\":\"$issuer; accounturi=${acct%/*}/999999\"}" \
	"$CERTFLEET_CHALLTESTSRV_URL/set-txt" || not_ok "set wrong record"
sql "INSERT INTO records (account_id, fqdn, value, issuer, wildcard, variant, provider, written_at)
     SELECT id, '_validation-persist.$bad', '$issuer; accounturi=$acct', '$issuer', false, 1, 'challtestsrv', now()
     FROM accounts" || not_ok "insert records row"

out=$(mktemp)
"$CF" run --workers 1 --retry-base 1 --no-progress >"$out" 2>&1
check_eq "run exits 3 when a job failed" "$?" 3
check_eq "the refusal was looked at twice, then final" \
	"$(sql "SELECT attempts FROM jobs WHERE state = 'failed'")" 2
check_eq "bad job failed" "$(sql "SELECT j.state FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['$bad']")" failed
check_eq "CA's problem type stored" \
	"$(sql "SELECT last_problem_type FROM jobs WHERE state = 'failed'")" "urn:ietf:params:acme:error:unauthorized"
check "problem detail names the accounturi mismatch" \
	bash -c "psql -qAt '$CERTFLEET_DB' -c \"SELECT last_error FROM jobs WHERE state = 'failed'\" | grep -q 'accounturi mismatch'"
check_eq "the other jobs issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 2
check_eq "no result for the failed job" "$(sql "SELECT count(*) FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.state = 'failed'")" 0
check_eq "the first refusal is in the event log as a retry, with its error" \
	"$(sql "SELECT count(*) FROM events e JOIN jobs j ON j.id = e.job_id WHERE j.state = 'failed' AND e.kind = 'retry' AND e.detail LIKE 'urn:ietf:params:acme:error:unauthorized: %'")" 1
check_eq "the final refusal is the job row, not an event as well" \
	"$(sql "SELECT count(*) FROM events e JOIN jobs j ON j.id = e.job_id WHERE j.state = 'failed' AND e.kind IN ('failed', 'issued', 'cancelled')")" 0
check "status lists the failure" bash -c "'$CF' status | grep -q 'unauthorized'"
rm -f "$out"
check_unfinished "retries and failures"
finish
