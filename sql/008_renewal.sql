-- 008_renewal.sql - what renewal needs: the CA, profile and preferred chain of each certificate;
-- why a job is due and which certificate it replaces; the ARI window, replacement and revocation
-- of each result; External Account Binding and key rollover of accounts.
--
-- certificates.account_id names the account, and so the CA (its directory), the certificate is
-- ordered from; older rows take the account of their latest job. profile and preferred_chain are
-- NULL for the CA's default.
ALTER TABLE certificates
    ADD COLUMN account_id bigint REFERENCES accounts(id),
    ADD COLUMN profile text CHECK (profile ~ '^[A-Za-z0-9._-]{1,64}$'),
    ADD COLUMN preferred_chain text CHECK (length(preferred_chain) BETWEEN 1 AND 256);
UPDATE certificates c SET account_id =
    (SELECT j.account_id FROM jobs j WHERE j.certificate_id = c.id ORDER BY j.id DESC LIMIT 1);
CREATE INDEX certificates_account ON certificates (account_id);

-- reason: why `renew` queued the job (NULL for a job `enqueue` added); replaces: the ARI CertID
-- (RFC 9773) of the certificate the order replaces, sent as newOrder's "replaces".
ALTER TABLE jobs
    ADD COLUMN reason text CHECK (reason IN ('ari', 'lifetime', 'revoked', 'forced')),
    ADD COLUMN replaces text;

-- ARI state per result (RFC 9773): the CertID, the suggested window, the renewal time chosen at
-- random inside it, when to ask again (Retry-After), the CA's explanation, and the last failure
-- to get a usable answer. replaced_by: the result that took its place (the old one stays).
-- revoked_at and revocation_reason: set by `revoke` once the CA accepted the revocation.
ALTER TABLE results
    ADD COLUMN ari_cert_id text,
    ADD COLUMN ari_window_start timestamptz,
    ADD COLUMN ari_window_end timestamptz,
    ADD COLUMN ari_renew_at timestamptz,
    ADD COLUMN ari_next_check timestamptz,
    ADD COLUMN ari_explanation_url text,
    ADD COLUMN ari_checked_at timestamptz,
    ADD COLUMN ari_error text,
    ADD COLUMN replaced_by bigint REFERENCES results(id),
    ADD COLUMN replaced_at timestamptz,
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN revocation_reason text CHECK (revocation_reason IN
        ('unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation')),
    ADD CONSTRAINT results_ari_window CHECK (ari_window_end >= ari_window_start);
CREATE INDEX results_serial ON results (serial);

-- eab_kid: the key identifier the account was bound with (its MAC key is never stored);
-- key_rolled_at: the last key rollover (RFC 8555 7.3.5); the account URL never changes.
ALTER TABLE accounts
    ADD COLUMN eab_kid text,
    ADD COLUMN key_rolled_at timestamptz;

-- offers_alternates: whether the CA offered alternate chains (RFC 8555 7.4.2, Link
-- rel="alternate") on this account's last certificate download; NULL until a run has downloaded
-- one. enqueue refuses --preferred-chain for an account known to be offered none.
ALTER TABLE accounts ADD COLUMN offers_alternates boolean;

-- enqueue --profile and --preferred-chain change these columns of certificates already in the
-- fleet, and enqueue moves a certificate queued for another CA's account to it (account_id).
-- certfleet_grant_roles() grants what 007 granted, and this update to enqueue.
ALTER FUNCTION certfleet_grant_roles() RENAME TO certfleet_grant_roles_007;
CREATE FUNCTION certfleet_grant_roles() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM certfleet_grant_roles_007();
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_enqueue') THEN
        GRANT UPDATE (profile, preferred_chain, account_id, updated_at) ON TABLE certificates
            TO certfleet_enqueue;
    END IF;
END
$fn$;

SELECT certfleet_grant_roles();
