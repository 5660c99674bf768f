-- Monitoring (issue 13): health checks of running sites, as template
-- settings, and the uptime history of every site. Additive only.
-- (Written as 010_monitoring.sql's content; numbered 009 on the branch
-- until the web UI's 009 is merged.)

-- How a template's running sites are checked: every health_interval_ms
-- (0: the default, 30s) its health_path is asked; unhealthy_after failed
-- checks in a row (0: 3) mark the site unhealthy and restart_after (0:
-- 5, -1: never) restart its container.
ALTER TABLE templates
	ADD COLUMN health_interval_ms integer NOT NULL DEFAULT 0 CHECK (health_interval_ms >= 0),
	ADD COLUMN unhealthy_after    integer NOT NULL DEFAULT 0 CHECK (unhealthy_after >= 0),
	ADD COLUMN restart_after      integer NOT NULL DEFAULT 0 CHECK (restart_after >= -1);

-- What the health checks said of the running container, for the nodes
-- and the CLI that do not check it themselves: healthy, unhealthy, ''.
ALTER TABLE site_runtime ADD COLUMN health text NOT NULL DEFAULT '';

-- A site's uptime history: intervals of one state each (up, asleep,
-- failed, unhealthy), the open one with ended_at NULL. One history per
-- site, whichever node saw the change; pruned after 30 days like the
-- figures.
CREATE TABLE site_uptime (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	site_id    uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	state      text NOT NULL CHECK (state IN ('up', 'asleep', 'failed', 'unhealthy')),
	started_at timestamptz NOT NULL,
	ended_at   timestamptz CHECK (ended_at >= started_at)
);
CREATE UNIQUE INDEX site_uptime_open_idx ON site_uptime (site_id) WHERE ended_at IS NULL;
CREATE INDEX site_uptime_site_idx ON site_uptime (site_id, started_at);
CREATE INDEX site_uptime_ended_idx ON site_uptime (ended_at) WHERE ended_at IS NOT NULL;
