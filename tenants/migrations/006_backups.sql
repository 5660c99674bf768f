-- Backups of the platform (its schema and its sites' volumes) and the
-- alerts it raised. Like every migration, additive only: a binary of the
-- previous release keeps serving on the migrated schema (see the README's
-- upgrade section and TestMigrationsAreAdditive).

-- One row per backup archive, whoever made it: the CLI, the API or the
-- schedule. No foreign key to sites: a site's backups outlive the site,
-- which is what they are for.
CREATE TABLE backups (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	kind         text NOT NULL CHECK (kind IN ('manual', 'scheduled')),
	-- The one site of a single-site backup; NULL for the whole platform.
	site_id      uuid,
	-- The schedule's period a scheduled backup belongs to (its start,
	-- UTC): the unique key makes a second backup of a period a conflict,
	-- however many nodes try.
	period_start timestamptz,
	-- Who made it: the node's id, or cli:<user>; the file is on its disk.
	node         text NOT NULL DEFAULT '',
	path         text NOT NULL DEFAULT '',
	status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
	size_bytes   bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
	sites        integer NOT NULL DEFAULT 0 CHECK (sites >= 0),
	error        text NOT NULL DEFAULT '',
	-- The durable job that runs a scheduled backup: a retry of that job
	-- takes its period over, another job of the period does not.
	job_id       bigint,
	started_at   timestamptz NOT NULL DEFAULT now(),
	finished_at  timestamptz,
	CONSTRAINT backups_period_start_key UNIQUE (period_start)
);
CREATE INDEX backups_started_at_idx ON backups (started_at DESC, id);

-- Incidents: a rule (site_start_failed, crash_loop, …) firing for a
-- subject (a site's id, a hostname, a customer's id; '' for the platform).
-- An incident is open until it resolves; at most one is open per rule and
-- subject, so however often (and on however many nodes) a condition
-- recurs, it is one incident, notified once when it fires and once when it
-- resolves.
CREATE TABLE alerts (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	rule        text NOT NULL,
	subject     text NOT NULL DEFAULT '',
	summary     text NOT NULL DEFAULT '',
	-- How many times the condition was seen during the incident.
	occurrences bigint NOT NULL DEFAULT 1 CHECK (occurrences > 0),
	fired_at    timestamptz NOT NULL DEFAULT now(),
	last_seen_at timestamptz NOT NULL DEFAULT now(),
	-- Since when the condition has been clear; the incident resolves once
	-- it stayed clear for the configured quiet period, so a flapping site
	-- stays one incident.
	clear_since timestamptz,
	resolved_at timestamptz
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (rule, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_clear_since_idx ON alerts (clear_since) WHERE resolved_at IS NULL AND clear_since IS NOT NULL;
