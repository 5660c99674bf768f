-- Warm starts (issue 15): the last good responses of a site served while
-- it starts, and starts made before a site's usual first visitor.
-- Additive only.

-- serve_stale: a template's sites answer cacheable GETs with their last
-- good response while their container starts. A site's own setting
-- (NULL: its template's) overrides it.
ALTER TABLE templates ADD COLUMN serve_stale boolean NOT NULL DEFAULT false;
ALTER TABLE sites ADD COLUMN serve_stale boolean;

-- prewarm: whether the pre-warm scheduler may start a site before its
-- usual first request (the platform's switch is the tenants option's).
ALTER TABLE sites ADD COLUMN prewarm boolean NOT NULL DEFAULT true;

-- The copy in PostgreSQL of a site's stale responses, so that other nodes
-- and a restarted one have them: one row per request key (method, host,
-- path and query), bounded in total per site by the node that writes it.
CREATE TABLE stale_responses (
	site_id   uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	key       text NOT NULL,
	status    integer NOT NULL CHECK (status BETWEEN 200 AND 599),
	header    jsonb NOT NULL DEFAULT '{}',
	body      bytea NOT NULL,
	stored_at timestamptz NOT NULL,
	PRIMARY KEY (site_id, key)
);

-- What the pre-warm scheduler did: the hour slot it warmed a site for,
-- when it started it, and when the slot's first visitor came (NULL: none
-- yet, or none came before the site went to sleep again).
CREATE TABLE prewarm_events (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	site_id          uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	slot_start       timestamptz NOT NULL,
	probability      double precision NOT NULL CHECK (probability BETWEEN 0 AND 1),
	prewarmed_at     timestamptz NOT NULL,
	first_request_at timestamptz,
	UNIQUE (site_id, slot_start)
);
CREATE INDEX prewarm_events_prewarmed_idx ON prewarm_events (prewarmed_at);
