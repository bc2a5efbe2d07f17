-- 011_lookups.sql - indexes for the look-ups a run makes for every batch, so that their cost
-- follows the batch and not the tables, whether or not the planner has statistics yet.

-- A claim reads its jobs' records by name. With the account first in the index, a records table
-- without statistics (written by one run, read by the next before autovacuum analyzed it) was
-- read whole for every job claimed: 2,000 rows read 2,000 times for a fleet of 2,000. With the
-- name first, each name is one index entry, whatever the planner knows.
ALTER TABLE records DROP CONSTRAINT records_account_id_fqdn_value_key,
    ADD CONSTRAINT records_fqdn_account_id_value_key UNIQUE (fqdn, account_id, value);

-- Storing a result marks the certificate's earlier results replaced, found among the results
-- retired and not replaced yet (few at any time). No index held them, so every batch of results
-- stored read the whole results table.
CREATE INDEX results_unreplaced ON results (certificate_id) WHERE NOT is_current AND replaced_by IS NULL;
