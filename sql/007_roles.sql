-- 007_roles.sql - least-privilege roles. Operators GRANT them to their login roles:
--   certfleet_run      everything `run` (and `account register`, `cancel`, `cleanup`) needs,
--                      including the key columns;
--   certfleet_enqueue  adds certificates and jobs (`enqueue`) and reads the account without its key;
--   certfleet_report   reads every table (`status`, `records`, SQL reports) but no key column.
-- The key columns are every column named key_pem (accounts, orders, results); the database holds
-- no other credential. The roles are NOLOGIN and cluster-wide: the migration of another database
-- in the same cluster may have created them already, so they are created only when missing.
-- When the migrating role may not create roles (neither superuser nor CREATEROLE), the missing
-- ones are skipped with a notice; once a superuser has created them, SELECT
-- certfleet_grant_roles() grants what they need. A later migration that adds a table or a
-- column calls certfleet_grant_roles() again (column grants are not inherited by new columns).
-- certfleet_run gets every table and sequence of the schema.

CREATE OR REPLACE FUNCTION certfleet_grant_roles() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    r text;
    t record;
    cols text;
    may_create boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
    FOREACH r IN ARRAY ARRAY['certfleet_run', 'certfleet_enqueue', 'certfleet_report'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            IF NOT may_create THEN
                RAISE NOTICE 'role % is missing and % may not create roles: a superuser can create it (CREATE ROLE % NOLOGIN) and then run SELECT certfleet_grant_roles()', r, current_user, r;
                CONTINUE;
            END IF;
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by the migration of another database
            END;
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
    END LOOP;

    FOR t IN SELECT c.oid, c.relname, c.relkind FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'S')
    LOOP
        IF t.relkind = 'S' THEN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_run') THEN
                EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %I TO certfleet_run', t.relname);
            END IF;
            -- enqueue takes ids for runs, certificates and jobs
            IF t.relname IN ('runs_id_seq', 'certificates_id_seq', 'jobs_id_seq')
                    AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_enqueue') THEN
                EXECUTE format('GRANT USAGE ON SEQUENCE %I TO certfleet_enqueue', t.relname);
            END IF;
            CONTINUE;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_run') THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I TO certfleet_run', t.relname);
        END IF;
        -- every column but the keys
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
            FROM pg_attribute a
            WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> 'key_pem';
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_report') THEN
            EXECUTE format('GRANT SELECT (%s) ON TABLE %I TO certfleet_report', cols, t.relname);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'certfleet_enqueue') THEN
            IF t.relname IN ('schema_version', 'accounts', 'certificates', 'runs', 'jobs',
                    'unfinished_jobs', 'job_queue') THEN
                EXECUTE format('GRANT SELECT (%s) ON TABLE %I TO certfleet_enqueue', cols, t.relname);
            END IF;
            IF t.relname IN ('certificates', 'runs', 'jobs', 'unfinished_jobs', 'job_queue') THEN
                EXECUTE format('GRANT INSERT ON TABLE %I TO certfleet_enqueue', t.relname);
            END IF;
        END IF;
    END LOOP;
END
$fn$;

SELECT certfleet_grant_roles();
