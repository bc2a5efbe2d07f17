-- 006_unfinished_jobs.sql - the unfinished jobs listed in a narrow table of their own, so that the
-- end of a job changes no indexed column of jobs.
--
-- "One unfinished job per certificate" was a unique index on jobs WHERE finished_at IS NULL, and
-- two more indexes named finished_at. The end of every job moved its row out of them, so
-- PostgreSQL could not update the row in place: each end wrote a new primary key entry and split
-- the key's pages, and a completion cost about half as much again as one updated in place.
-- Now:
-- - unfinished_jobs has a row per job from its enqueue to its end. The rule is a plain unique
--   index there, on a table that holds only the jobs queued or in flight.
-- - The end of a job deletes that row (a delete writes no index entry) and updates the jobs row
--   in place: no index of jobs names a column that a claim or an end changes.
-- - The questions about unfinished jobs (what runs under a dead runner, under this one, for this
--   account, in this run) start from unfinished_jobs, not from the whole history in jobs.
-- - A cancel request for a job in flight is flagged here too, where the heartbeat looks for it:
--   the flag leaves with the row when the job ends.
-- Invariant: a job has a row in unfinished_jobs exactly while its finished_at is NULL.

CREATE TABLE unfinished_jobs (
    job_id           bigint PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    certificate_id   bigint NOT NULL UNIQUE,
    account_id       bigint NOT NULL,
    cancel_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX unfinished_jobs_cancel ON unfinished_jobs (job_id) WHERE cancel_requested;

INSERT INTO unfinished_jobs (job_id, certificate_id, account_id, cancel_requested)
    SELECT id, certificate_id, account_id, cancel_requested FROM jobs WHERE finished_at IS NULL;

DROP INDEX jobs_one_active;
DROP INDEX jobs_run;
DROP INDEX jobs_cancel;
-- A certificate's jobs, and a run's, for reports over the history: neither column ever changes.
CREATE INDEX jobs_certificate ON jobs (certificate_id);
CREATE INDEX jobs_run ON jobs (run_id);
