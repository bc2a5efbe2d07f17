#!/usr/bin/env bash
# test_claim.sh - claimed rows that cannot be made into jobs (a key type no worker knows, a names
# array of NULLs, both of which the schema allows) fail alone, with the reason stored, while the
# rest of the same claim is issued and the run ends by itself.
. "$(dirname "$0")/lib.sh"

db_new || { not_ok "create database"; finish; exit 1; }
register || not_ok "account register"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
badkey="badkey.$ZONE"
nonames="nonames.$ZONE"
"$CF" enqueue "good1.$ZONE" "$badkey" "good2.$ZONE,www.good2.$ZONE" "$nonames" >/dev/null ||
	not_ok "enqueue 4"
job_of() { sql "SELECT j.id FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['$1']"; }
badkey_id=$(job_of "$badkey")
nonames_id=$(job_of "$nonames")
sql "UPDATE certificates SET key_type = 'bogus' WHERE names = ARRAY['$badkey']" || not_ok "corrupt a key type"
sql "UPDATE certificates SET names = '{NULL}' WHERE names = ARRAY['$nonames']" || not_ok "corrupt a names array"

# One claim takes all four jobs (the default batch is 100). Before, it freed the whole batch when
# a row did not parse and the run waited for those jobs for ever: the timeout ends such a run.
timeout 120 "$CF" run --workers 1 --no-progress >"$tmp/run.out" 2>"$tmp/run.err"
check_eq "run exits 3: some jobs failed" "$?" 3
check_eq "the jobs that parsed were issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 2
check_eq "one current result each" \
	"$(sql "SELECT count(*) FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.state = 'issued' AND r.is_current")" 2
check_eq "the unknown key type failed with the claim's reason" \
	"$(sql "SELECT state || '|' || last_problem_type || '|' || last_error || '|' || attempts FROM jobs WHERE id = $badkey_id")" \
	"failed|certfleet:claim|claim: job $badkey_id has an unknown key type \"bogus\"|1"
check_eq "the names of NULLs failed with the claim's reason" \
	"$(sql "SELECT state || '|' || last_problem_type || '|' || last_error || '|' || attempts FROM jobs WHERE id = $nonames_id")" \
	"failed|certfleet:claim|claim: job $nonames_id has no names (its certificate's names are empty or NULL)|1"
check_eq "no result for the jobs that failed" \
	"$(sql "SELECT count(*) FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.state = 'failed'")" 0
check "the log names each job that failed at its claim" \
	bash -c "grep -q 'run: claim: job $badkey_id has an unknown key type' '$tmp/run.err' &&
		grep -q 'run: claim: job $nonames_id has no names' '$tmp/run.err'"
check "the summary counts them as claimed and failed" \
	grep -q '^summary: claimed=4 issued=2 failed=2 ' "$tmp/run.out"
check_eq "the ready queue is empty" "$(sql "SELECT count(*) FROM job_queue")" 0
check_eq "the run released its lease" "$(sql "SELECT count(*) FROM runners")" 0
check_unfinished "claimed rows that did not parse"

# Claims of one job each: a claim of a bad row alone is followed by the next claim at once.
bad2="badkey2.$ZONE"
"$CF" enqueue "$bad2" "good3.$ZONE" >/dev/null || not_ok "enqueue 2 more"
bad2_id=$(job_of "$bad2")
sql "UPDATE certificates SET key_type = '' WHERE names = ARRAY['$bad2']" || not_ok "corrupt another key type"
timeout 120 "$CF" run --workers 1 --batch 1 --no-progress >"$tmp/run2.out" 2>"$tmp/run2.err"
check_eq "a run of single claims exits 3" "$?" 3
check_eq "its bad row failed with the claim's reason" \
	"$(sql "SELECT state || '|' || last_error FROM jobs WHERE id = $bad2_id")" \
	"failed|claim: job $bad2_id has an unknown key type \"\""
check_eq "its other job was issued" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 3
check "its summary counts two claimed, one failed" \
	grep -q '^summary: claimed=2 issued=1 failed=1 ' "$tmp/run2.out"
check_unfinished "single claims"
finish
