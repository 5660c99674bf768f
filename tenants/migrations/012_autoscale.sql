-- Autoscaling (issue 14): how many replicas a site may run and the
-- in-flight requests per replica its autoscaler aims for, a plan's cap on
-- them, and the history of the scaling decisions. Additive only.

-- max_replicas: the most replicas of a template's sites (1: no scaling);
-- target_concurrency: the in-flight requests one replica is meant to
-- carry (Knative's container concurrency target).
ALTER TABLE templates ADD COLUMN max_replicas integer NOT NULL DEFAULT 1
	CHECK (max_replicas BETWEEN 1 AND 64);
ALTER TABLE templates ADD COLUMN target_concurrency integer NOT NULL DEFAULT 10
	CHECK (target_concurrency BETWEEN 1 AND 10000);

-- A plan caps its sites' replicas below their template's; NULL: no cap.
ALTER TABLE plans ADD COLUMN max_replicas integer
	CHECK (max_replicas BETWEEN 1 AND 64);

-- The scaling decisions: which node made one, from and to how many
-- replicas, why, and the in-flight average it was made on. Kept per site
-- to the latest few (the store prunes the rest), for the API and the UI.
CREATE TABLE scale_events (
	id            bigserial PRIMARY KEY,
	site_id       uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	at            timestamptz NOT NULL DEFAULT now(),
	node          text NOT NULL DEFAULT '',
	from_replicas integer NOT NULL CHECK (from_replicas >= 0),
	to_replicas   integer NOT NULL CHECK (to_replicas >= 0),
	reason        text NOT NULL DEFAULT '',
	in_flight     double precision NOT NULL DEFAULT 0
);
CREATE INDEX scale_events_site_at_idx ON scale_events (site_id, at DESC);
