-- 002_durable_queue.sql - leases, retries with back-off, dead-lettering, cancellation, resumable
-- orders and retention for the job queue.

-- A run: the jobs one enqueue call added, so that a whole night's batch can be cancelled.
CREATE TABLE runs (
    id         bigserial PRIMARY KEY,
    label      text,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE jobs
    ADD COLUMN run_id bigint REFERENCES runs(id),
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_run ON jobs (run_id);
-- The rescuer looks for running jobs whose lease ran out.
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_locked_by ON jobs (locked_by) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('issued', 'failed', 'cancelled');

-- The key a finalize was sent with, so that an order finalized before a crash can still be used.
ALTER TABLE orders ADD COLUMN key_pem text;

-- Finished jobs may be deleted by retention; their results stay.
ALTER TABLE results ALTER COLUMN job_id DROP NOT NULL;
ALTER TABLE results DROP CONSTRAINT results_job_id_fkey,
    ADD CONSTRAINT results_job_id_fkey FOREIGN KEY (job_id) REFERENCES jobs(id) ON DELETE SET NULL;
ALTER TABLE events DROP CONSTRAINT events_job_id_fkey,
    ADD CONSTRAINT events_job_id_fkey FOREIGN KEY (job_id) REFERENCES jobs(id) ON DELETE CASCADE;
ALTER TABLE orders DROP CONSTRAINT orders_job_id_fkey,
    ADD CONSTRAINT orders_job_id_fkey FOREIGN KEY (job_id) REFERENCES jobs(id) ON DELETE CASCADE;
