-- 009_deployment.sql - what deployment and a declared fleet need: a certificate retired from the
-- fleet, when each result was deployed, and the deploy events (hook runs and their exit codes).
--
-- certificates.retired_at: set by `sync` when a certificate is gone from the declared fleet; a
-- retired certificate is neither renewed nor listed by `records`, and its rows stay for reports.
ALTER TABLE certificates ADD COLUMN retired_at timestamptz;

-- results.deployed_at: when `deploy` last delivered this result (its hook, if any, exited 0).
ALTER TABLE results ADD COLUMN deployed_at timestamptz;
-- The deployer's question: the current results not yet delivered.
CREATE INDEX results_undeployed ON results (id) WHERE is_current AND deployed_at IS NULL;

-- One row per delivery attempt of a result: an export, a hook run and its exit code, a failure.
CREATE TABLE deploy_events (
    id             bigserial PRIMARY KEY,
    result_id      bigint NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    certificate_id bigint NOT NULL REFERENCES certificates(id),
    at             timestamptz NOT NULL DEFAULT now(),
    kind           text NOT NULL,                -- exported, hook, failed, ...
    exit_code      integer,                      -- the hook's, when kind = 'hook'
    detail         text
);
CREATE INDEX deploy_events_result ON deploy_events (result_id);

SELECT certfleet_grant_roles();
