-- 005_job_queue.sql - ready jobs in a narrow table of their own, and leases held per process.
--
-- A claim used to update the jobs row itself out of the ready index, and every index whose
-- predicate named the state took a new entry, twice per job. Now:
-- - job_queue holds the ready jobs alone. A claim deletes its rows, which writes no index entry.
-- - No index of jobs names a column that a claim changes (state, locked_by, attempts), so
--   PostgreSQL can update the row on its own page without touching any index (a HOT update);
--   fillfactor leaves the room for it. Only the end of a job (finished_at) moves index entries.
-- - Leases belong to processes (runners): a run renews one row, not one per job, and the
--   rescuer looks at the runners whose lease ran out, not at every running job.
-- - The events of a job are deleted with it by cleanup, not by a foreign key: checking one on
--   every event row cost as much as writing the row.
-- Invariants: a job is in job_queue exactly while its state is 'ready'; finished_at is set exactly when the state is final.

CREATE TABLE job_queue (
    job_id     bigint PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    account_id bigint NOT NULL,
    priority   integer NOT NULL,
    run_after  timestamptz NOT NULL
);
-- The claim reads this index in claim order: an account's jobs by priority, then due time.
CREATE INDEX job_queue_claim ON job_queue (account_id, priority DESC, run_after, job_id);
-- Every claim walks over the index entries of the jobs claimed before it until a vacuum removes
-- them, so the queue is vacuumed after every 10,000 claims rather than a fifth of its size.
ALTER TABLE job_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0);

-- A run process (jobs.locked_by names it) and how long its claims hold without a renewal.
CREATE TABLE runners (
    owner       text PRIMARY KEY,                -- host:pid:start
    lease_until timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);

-- Rows from before this migration, made to meet the invariants.
UPDATE jobs SET finished_at = updated_at
    WHERE finished_at IS NULL AND state NOT IN ('ready', 'running');
UPDATE jobs SET finished_at = NULL WHERE finished_at IS NOT NULL AND state IN ('ready', 'running');
INSERT INTO job_queue (job_id, account_id, priority, run_after)
    SELECT id, account_id, priority, run_after FROM jobs WHERE state = 'ready';
INSERT INTO runners (owner, lease_until)
    SELECT locked_by, max(coalesce(lease_until, now())) FROM jobs
    WHERE state = 'running' AND locked_by IS NOT NULL GROUP BY locked_by;
UPDATE jobs SET locked_by = '(unknown)' WHERE state = 'running' AND locked_by IS NULL;
INSERT INTO runners (owner, lease_until)
    SELECT '(unknown)', now() WHERE EXISTS (SELECT 1 FROM jobs WHERE locked_by = '(unknown)');

ALTER TABLE jobs ADD CONSTRAINT jobs_finished_when_final
    CHECK ((finished_at IS NULL) = (state IN ('ready', 'running')));

DROP INDEX jobs_ready;
DROP INDEX jobs_running;
ALTER TABLE jobs DROP COLUMN lease_until;
-- One job not finished per certificate, as before, now keyed on finished_at, which only the end
-- of a job changes; the jobs not finished by run, for cancel; and the cancellations waiting for
-- their process's next renewal.
DROP INDEX jobs_one_active;
CREATE UNIQUE INDEX jobs_one_active ON jobs (certificate_id) WHERE finished_at IS NULL;
DROP INDEX jobs_run;
CREATE INDEX jobs_run ON jobs (run_id) WHERE finished_at IS NULL;
CREATE INDEX jobs_cancel ON jobs (id) WHERE cancel_requested AND finished_at IS NULL;
ALTER TABLE events DROP CONSTRAINT events_job_id_fkey;
-- Retention scans jobs once in a while; no index is kept up to date for it on every job.
DROP INDEX jobs_finished;
ALTER TABLE jobs SET (fillfactor = 50);
