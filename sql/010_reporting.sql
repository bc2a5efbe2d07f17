-- 010_reporting.sql - views for reports (`certfleet report`, dashboards, hand-written SQL): the
-- fleet and its states, expiry, failures per day, runs, and use against the limits. No view
-- names a key column; certfleet_report reads them all.
--
-- Fleet views leave out retired certificates (certificates.retired_at). Views that count history
-- (failures, runs, orders) keep them: what happened stays true.

-- One row per certificate of the fleet with its current result. state is
--   revoked   the current certificate was revoked
--   expired   its notAfter has passed
--   valid     a current certificate, not expired
--   failed    no certificate yet and its latest job failed
--   pending   no certificate yet: queued, running, cancelled, or never enqueued
-- job_state is 'ready' or 'running' while a job of the certificate is unfinished.
CREATE VIEW report_certificates AS
SELECT c.id AS certificate_id, c.names, c.provider, c.account_id, c.profile, c.key_type,
       r.id AS result_id, r.serial, r.not_before, r.not_after, r.issuer,
       r.ari_renew_at, r.revoked_at, r.deployed_at,
       CASE WHEN r.not_after IS NULL THEN NULL
            ELSE floor(date_part('epoch', r.not_after - now()) / 86400)::integer END AS days_left,
       CASE WHEN r.id IS NOT NULL AND r.revoked_at IS NOT NULL THEN 'revoked'
            WHEN r.id IS NOT NULL AND r.not_after <= now() THEN 'expired'
            WHEN r.id IS NOT NULL THEN 'valid'
            WHEN (SELECT j.state FROM jobs j WHERE j.certificate_id = c.id
                  ORDER BY j.id DESC LIMIT 1) = 'failed' THEN 'failed'
            ELSE 'pending' END AS state,
       uj.state AS job_state
FROM certificates c
LEFT JOIN results r ON r.certificate_id = c.id AND r.is_current
LEFT JOIN LATERAL (SELECT j.state FROM unfinished_jobs u JOIN jobs j ON j.id = u.job_id
                   WHERE u.certificate_id = c.id) uj ON true
WHERE c.retired_at IS NULL;

-- The fleet overview: certificates per state, every state listed (0 when none).
CREATE VIEW report_fleet AS
SELECT s.state, s.ord, count(rc.certificate_id) AS certificates
FROM (VALUES ('valid', 1), ('expired', 2), ('revoked', 3), ('failed', 4), ('pending', 5)) AS s(state, ord)
LEFT JOIN report_certificates rc ON rc.state = s.state
GROUP BY s.state, s.ord;

-- Certificates due or expiring within N days: notAfter, or the renewal time the CA suggested
-- (ARI), before now() + N days. Expired and revoked certificates are due; certificates without
-- a certificate are not listed (report_certificates has them).
CREATE FUNCTION report_due_within(days integer) RETURNS SETOF report_certificates
LANGUAGE sql STABLE AS $fn$
    SELECT * FROM report_certificates
    WHERE result_id IS NOT NULL
      AND (not_after < now() + make_interval(days => days)
           OR ari_renew_at < now() + make_interval(days => days)
           OR revoked_at IS NOT NULL)
    ORDER BY not_after, certificate_id
$fn$;

-- Certificates with a current result, in fixed buckets of days to notAfter (the expiry
-- histogram); every bucket listed. A bucket holds lower <= days_left < upper.
CREATE VIEW report_expiry_buckets AS
SELECT b.bucket, b.ord, b.lower_days, b.upper_days, coalesce(n.certificates, 0) AS certificates
FROM (VALUES ('expired', 1, NULL::integer, 0), ('0-7', 2, 0, 7), ('7-14', 3, 7, 14),
             ('14-30', 4, 14, 30), ('30-60', 5, 30, 60), ('60-90', 6, 60, 90),
             ('90+', 7, 90, NULL::integer)) AS b(bucket, ord, lower_days, upper_days)
LEFT JOIN (SELECT CASE WHEN days_left < 0 THEN 'expired' WHEN days_left < 7 THEN '0-7'
                       WHEN days_left < 14 THEN '7-14' WHEN days_left < 30 THEN '14-30'
                       WHEN days_left < 60 THEN '30-60' WHEN days_left < 90 THEN '60-90'
                       ELSE '90+' END AS bucket, count(*) AS certificates
           FROM report_certificates WHERE result_id IS NOT NULL GROUP BY 1) n ON n.bucket = b.bucket;

-- Failed jobs per UTC day, provider (the certificate's), CA (the account's directory) and problem
-- type (the CA's, or certfleet's own: certfleet:provider..., certfleet:...).
CREATE VIEW report_failures AS
SELECT date_trunc('day', j.finished_at AT TIME ZONE 'UTC')::date AS day,
       c.provider, a.directory_url AS ca, j.account_id,
       coalesce(j.last_problem_type, '(none)') AS problem_type, count(*) AS failures,
       max(j.finished_at) AS last_at
FROM jobs j
JOIN certificates c ON c.id = j.certificate_id
JOIN accounts a ON a.id = j.account_id
WHERE j.state = 'failed'
GROUP BY 1, 2, 3, 4, 5;

-- Failed jobs of the last 24 hours by problem type (the reasons `certfleet report` lists).
CREATE VIEW report_failures_24h AS
SELECT coalesce(j.last_problem_type, '(none)') AS problem_type, count(*) AS failures,
       max(j.finished_at) AS last_at
FROM jobs j
WHERE j.state = 'failed' AND j.finished_at > now() - interval '24 hours'
GROUP BY 1;

-- Runs (the jobs one enqueue or renew call queued): their jobs by state, from the enqueue to the
-- last job's end, and the issue rate over that time. finished_at is NULL while jobs are
-- unfinished.
CREATE VIEW report_runs AS
SELECT ru.id AS run_id, ru.label, ru.created_at,
       count(j.id) AS jobs,
       count(*) FILTER (WHERE j.state = 'issued') AS issued,
       count(*) FILTER (WHERE j.state = 'failed') AS failed,
       count(*) FILTER (WHERE j.state = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE j.finished_at IS NULL AND j.id IS NOT NULL) AS unfinished,
       CASE WHEN count(*) FILTER (WHERE j.finished_at IS NULL AND j.id IS NOT NULL) = 0
            THEN max(j.finished_at) END AS finished_at,
       extract(epoch FROM coalesce(max(j.finished_at), ru.created_at) - ru.created_at)::float8
           AS duration_s,
       CASE WHEN max(j.finished_at) > ru.created_at
            THEN count(*) FILTER (WHERE j.state = 'issued')
                 / extract(epoch FROM max(j.finished_at) - ru.created_at)::float8 END
           AS issued_per_s
FROM runs ru
LEFT JOIN jobs j ON j.run_id = ru.id
GROUP BY ru.id, ru.label, ru.created_at;

-- Orders per provider over the last 30 days: how long an order took from its creation to its
-- last step (updated_at), the slowest provider accounts first.
CREATE VIEW report_provider_latency AS
SELECT c.provider, count(*) AS orders,
       count(*) FILTER (WHERE o.state = 'valid') AS valid,
       avg(extract(epoch FROM o.updated_at - o.created_at))::float8 AS avg_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM o.updated_at - o.created_at))::float8 AS p95_s,
       max(extract(epoch FROM o.updated_at - o.created_at))::float8 AS max_s
FROM orders o
JOIN jobs j ON j.id = o.job_id
JOIN certificates c ON c.id = j.certificate_id
WHERE o.created_at > now() - interval '30 days'
GROUP BY c.provider;

-- Use against the limits. The database records no count of requests per provider or CA
-- endpoint (those are in `run --metrics-listen`). What it holds:
-- - rate_limits: each shared bucket (a provider account, or a CA account's limit_key) with its
--   rate and burst, and how far ahead its turns are booked (booked_ahead_s: seconds of requests
--   reserved beyond now; booked_requests: that times the rate);
-- - orders: the new orders of each CA account in the last hour and 3 hours (Let's Encrypt's
--   account-orders limit is 300 per 3 hours), renewals included.
CREATE VIEW report_limits AS
SELECT 'bucket'::text AS kind, l.key, NULL::bigint AS account_id, NULL::text AS ca,
       l.rate, l.burst,
       greatest(l.tat - extract(epoch FROM now())::float8, 0) AS booked_ahead_s,
       greatest(l.tat - extract(epoch FROM now())::float8, 0) * l.rate AS booked_requests,
       NULL::bigint AS orders_1h, NULL::bigint AS orders_3h, l.updated_at AS last_used
FROM rate_limits l
UNION ALL
SELECT 'ca-account', 'account ' || a.id, a.id, a.directory_url, NULL, NULL, NULL, NULL,
       count(o.id) FILTER (WHERE o.created_at > now() - interval '1 hour'),
       count(o.id), max(o.created_at)
FROM accounts a
LEFT JOIN orders o ON o.account_id = a.id AND o.created_at > now() - interval '3 hours'
GROUP BY a.id, a.directory_url;

-- New orders by account and time: the 3-hour window of report_limits reads only recent rows.
CREATE INDEX orders_account_created ON orders (account_id, created_at);

-- certfleet_grant_roles() grants what 009 granted, and these views to certfleet_report (and to
-- certfleet_run, which reads everything). Views run with their owner's rights: a reader needs no
-- grant on the tables behind them, and none of them names a key column. And to certfleet_enqueue
-- what enqueue --missing-only and --wait read since 009: whether a certificate has a current,
-- unrevoked result (results: id, certificate_id, is_current, revoked_at; no key).
ALTER FUNCTION certfleet_grant_roles() RENAME TO certfleet_grant_roles_009;
CREATE FUNCTION certfleet_grant_roles() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    v text;
    r text;
BEGIN
    PERFORM certfleet_grant_roles_009();
    FOREACH r IN ARRAY ARRAY['certfleet_report', 'certfleet_run'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            CONTINUE;
        END IF;
        FOREACH v IN ARRAY ARRAY['report_certificates', 'report_fleet', 'report_expiry_buckets',
                'report_failures', 'report_failures_24h', 'report_runs', 'report_provider_latency', 'report_limits'] LOOP
            EXECUTE format('GRANT SELECT ON TABLE %I TO %I', v, r);
        END LOOP;
        EXECUTE format('GRANT EXECUTE ON FUNCTION report_due_within(integer) TO %I', r);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_enqueue') THEN
        GRANT SELECT (id, certificate_id, is_current, revoked_at) ON TABLE results TO certfleet_enqueue;
    END IF;
END
$fn$;

SELECT certfleet_grant_roles();
