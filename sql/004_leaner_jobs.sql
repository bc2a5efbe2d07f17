-- 004_leaner_jobs.sql - fewer indexes on jobs. A claim and a completion each write a new row
-- version into every index whose predicate it meets (state changes rule out HOT updates), so
-- every index there costs every job twice.

-- Counting by state (certfleet status) scans; the queue itself uses the partial indexes.
DROP INDEX jobs_state;

-- The heartbeat (locked_by = me) and the rescuer (lease_until < now(), among running jobs,
-- which are only the jobs in flight) share one index.
DROP INDEX jobs_lease;
DROP INDEX jobs_locked_by;
CREATE INDEX jobs_running ON jobs (locked_by, lease_until) WHERE state = 'running';

-- Cancelling a run only touches its pending jobs.
DROP INDEX jobs_run;
CREATE INDEX jobs_run ON jobs (run_id) WHERE state IN ('ready', 'running');
