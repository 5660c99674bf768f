-- Per-site figures: what one Caddy node saw of one site in one minute.
-- Each node writes its own rows, once a minute in one batch (never per
-- request); queries add the nodes up. Rows older than 30 days are pruned.
-- No reference to nodes: a node's figures outlive its heartbeat.
CREATE TABLE site_figures (
	site_id       uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	node_id       text NOT NULL,
	at            timestamptz NOT NULL, -- the minute's start
	requests      bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
	errors        bigint NOT NULL DEFAULT 0 CHECK (errors >= 0),
	-- Requests per bucket of the fixed latency histogram (package
	-- figures), trailing empty buckets left off: histograms of any nodes
	-- and minutes add up bucket by bucket.
	latency       bigint[] NOT NULL DEFAULT '{}',
	cold_starts   bigint NOT NULL DEFAULT 0 CHECK (cold_starts >= 0),
	cold_start_ms double precision NOT NULL DEFAULT 0 CHECK (cold_start_ms >= 0), -- their durations added up
	-- The container as sampled at the minute's end, NULL when it was not.
	cpu_percent   double precision CHECK (cpu_percent >= 0), -- of one CPU
	memory_bytes  bigint CHECK (memory_bytes >= 0),
	PRIMARY KEY (site_id, at, node_id)
);
CREATE INDEX site_figures_at_idx ON site_figures (at);

-- The platform's figures, per node and minute: the containers running at
-- the minute's end (NULL when the engine was not asked) and the starts.
CREATE TABLE platform_figures (
	node_id     text NOT NULL,
	at          timestamptz NOT NULL,
	running     integer CHECK (running >= 0),
	cold_starts bigint NOT NULL DEFAULT 0 CHECK (cold_starts >= 0),
	failures    bigint NOT NULL DEFAULT 0 CHECK (failures >= 0),
	PRIMARY KEY (at, node_id)
);
