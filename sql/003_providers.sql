-- 003_providers.sql - records confirmed at the authoritative servers, and rate limits that every
-- orchestrator process sharing a provider account (or a CA account) obeys together.

-- When certfleet last saw the record at every authoritative server of its zone. A record with a
-- confirmation needs no DNS work on later orders.
ALTER TABLE records ADD COLUMN confirmed_at timestamptz;

-- One token bucket per key, kept as GCRA state (the generic cell rate algorithm): tat is the
-- theoretical arrival time in seconds of the database server's clock, so that processes on
-- several machines share one clock. A request may go at max(now, tat - (burst - 1) / rate), and
-- moves tat to max(tat, now) + 1 / rate.
CREATE TABLE rate_limits (
    key        text PRIMARY KEY,             -- "cloudflare:cf-prod", or an account's limit_key
    rate       double precision NOT NULL CHECK (rate > 0),   -- requests per second
    burst      double precision NOT NULL CHECK (burst >= 1),
    tat        double precision NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
