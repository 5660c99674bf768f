-- Caddy nodes sharing the database and a Docker engine tell each other
-- how they use sites, so that no node's idle reaper stops a site another
-- node serves. Each node reports in batches, about once a second, never
-- per request; a node that stopped reporting no longer counts.
CREATE TABLE nodes (
	id      text PRIMARY KEY,
	seen_at timestamptz NOT NULL DEFAULT now()
);

-- One node's use of one site: requests in flight, open upgraded
-- connections (WebSockets) and its last activity, on the database's
-- clock.
CREATE TABLE site_activity (
	node_id        text NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
	site_id        uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	in_flight      bigint NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
	upgraded       bigint NOT NULL DEFAULT 0 CHECK (upgraded >= 0),
	last_active_at timestamptz NOT NULL,
	PRIMARY KEY (node_id, site_id)
);
CREATE INDEX site_activity_site_id_idx ON site_activity (site_id);
