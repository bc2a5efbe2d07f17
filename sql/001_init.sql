-- 001_init.sql - the first schema: accounts, fleet inventory, job queue, ACME orders,
-- persistent validation records, issued results and the per-job event log.

CREATE TABLE accounts (
    id             bigserial PRIMARY KEY,
    directory_url  text NOT NULL,
    account_url    text NOT NULL,
    key_pem        text NOT NULL,                -- account private key (PKCS#8 PEM)
    key_thumbprint text NOT NULL,                -- RFC 7638 thumbprint, safe to show
    contact        text[] NOT NULL DEFAULT '{}',
    issuer_domain  text NOT NULL,                -- issuer domain name written into records
    status         text NOT NULL DEFAULT 'valid',
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (directory_url, account_url)
);

-- One row per certificate of the fleet; names are normalized, names_key is their sorted set.
CREATE TABLE certificates (
    id         bigserial PRIMARY KEY,
    names      text[] NOT NULL CHECK (cardinality(names) BETWEEN 1 AND 100),
    names_key  text NOT NULL UNIQUE,
    key_type   text NOT NULL DEFAULT 'ec-p256',
    provider   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    id                bigserial PRIMARY KEY,
    certificate_id    bigint NOT NULL REFERENCES certificates(id),
    account_id        bigint NOT NULL REFERENCES accounts(id),
    state             text NOT NULL DEFAULT 'ready'
                      CHECK (state IN ('ready', 'running', 'issued', 'failed', 'cancelled')),
    priority          integer NOT NULL DEFAULT 0,
    run_after         timestamptz NOT NULL DEFAULT now(),
    attempts          integer NOT NULL DEFAULT 0,
    locked_by         text,
    lease_until       timestamptz,
    last_problem_type text,                      -- ACME problem type of the last failure
    last_error        text,                      -- its detail, or certfleet's own reason
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
-- The claim scans only ready jobs, in claim order.
CREATE INDEX jobs_ready ON jobs (priority DESC, run_after, id) WHERE state = 'ready';
-- At most one pending or running job per certificate: enqueue twice adds nothing.
CREATE UNIQUE INDEX jobs_one_active ON jobs (certificate_id) WHERE state IN ('ready', 'running');
CREATE INDEX jobs_state ON jobs (state);

-- ACME orders as they advance, so that an order can be resumed from its stored state.
CREATE TABLE orders (
    id              bigserial PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES jobs(id),
    account_id      bigint NOT NULL REFERENCES accounts(id),
    order_url       text NOT NULL UNIQUE,
    state           text NOT NULL,               -- certfleet's step: created, authorized, finalized, valid, invalid, failed
    finalize_url    text,
    certificate_url text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_job ON orders (job_id);

-- The dns-persist-01 TXT records certfleet has published (or seen the CA accept).
CREATE TABLE records (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id),
    fqdn        text NOT NULL,                   -- _validation-persist.<name>, no trailing dot
    value       text NOT NULL,                   -- the TXT value
    issuer      text NOT NULL,
    wildcard    boolean NOT NULL,                -- carries policy=wildcard
    variant     smallint NOT NULL,               -- draft 1 or 2 accounturi form
    provider    text NOT NULL,
    written_at  timestamptz,                     -- when certfleet wrote it through the provider
    verified_at timestamptz,                     -- when a CA last validated a challenge with it
    UNIQUE (account_id, fqdn, value)
);

CREATE TABLE results (
    id             bigserial PRIMARY KEY,
    certificate_id bigint NOT NULL REFERENCES certificates(id),
    job_id         bigint NOT NULL UNIQUE REFERENCES jobs(id),
    order_url      text,
    leaf_pem       text NOT NULL,
    chain_pem      text NOT NULL,
    key_pem        text NOT NULL,                -- certificate private key (PKCS#8 PEM)
    serial         text NOT NULL,
    not_before     timestamptz NOT NULL,
    not_after      timestamptz NOT NULL,
    issuer         text NOT NULL,
    is_current     boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- Exactly one current result per certificate.
CREATE UNIQUE INDEX results_current ON results (certificate_id) WHERE is_current;

CREATE TABLE events (
    id     bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs(id),
    at     timestamptz NOT NULL DEFAULT now(),
    kind   text NOT NULL,
    detail text
);
CREATE INDEX events_job ON events (job_id);
