-- Autoscaling across nodes (issue 14): every replica a node balances a
-- site's requests over, not only the first (container_id), so that a
-- node scaling the site down waits until no other node sends requests to
-- the replica it removes. Additive only.
ALTER TABLE site_activity ADD COLUMN replica_ids text[] NOT NULL DEFAULT '{}';
