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

-- What enqueue does beyond 008: another key type or provider for a certificate in the fleet (a
-- new provider drops the rows of the old one's records for those names, so that the next order
-- writes them), a retired certificate named again returns (retired_at), and enqueue --wait reads
-- how its jobs ended (results: serial and notAfter, no key). sync retires and cancels jobs, which
-- needs certfleet_run.
CREATE OR REPLACE FUNCTION certfleet_grant_roles() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM certfleet_grant_roles_007();
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_enqueue') THEN
        GRANT UPDATE (profile, preferred_chain, account_id, updated_at, key_type, provider, retired_at)
            ON TABLE certificates TO certfleet_enqueue;
        GRANT SELECT (account_id, fqdn, provider), DELETE ON TABLE records TO certfleet_enqueue;
        GRANT SELECT (job_id, serial, not_after) ON TABLE results TO certfleet_enqueue;
    END IF;
END
$fn$;

SELECT certfleet_grant_roles();
