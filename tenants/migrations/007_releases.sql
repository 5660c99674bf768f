-- What a site runs is a numbered release: every change to it (its
-- template or the template's version, image, env, limits) is one, and so
-- are deploys from source, rollbacks and redeploys. A site with a live
-- release runs that release's spec, whatever its template says since;
-- the next change derives a new one.

-- An image built from the site's own source replaces its template's
-- image until a release without it (a rollback, say) goes live.
ALTER TABLE sites ADD COLUMN image text NOT NULL DEFAULT '';

-- Whether two containers of a site may use its volume at once: a new
-- release then starts beside the live container; otherwise the live one
-- stops for the moment the new one takes to start.
ALTER TABLE templates ADD COLUMN share_volume boolean NOT NULL DEFAULT false;

CREATE TABLE releases (
	site_id      uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	number       integer NOT NULL CHECK (number > 0),
	kind         text NOT NULL CHECK (kind IN ('baseline', 'change', 'deploy', 'rollback', 'redeploy')),
	actor        text NOT NULL,
	status       text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('building', 'pending', 'live', 'failed', 'superseded', 'rolled_back')),
	-- The release whose spec a rollback took.
	rollback_of  integer,
	-- What the container runs (jsonb: tenants.ReleaseSpec), and the
	-- site's own settings it came from (tenants.ReleaseSource), which a
	-- rollback restores.
	spec         jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
	source       jsonb NOT NULL CHECK (jsonb_typeof(source) = 'object'),
	-- Field-level differences from the release that was live, secrets
	-- masked.
	changes      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(changes) = 'array'),
	outcome      text NOT NULL DEFAULT '',
	-- The build's output and, for a release that failed, its reason and
	-- the container's last log lines; bounded by the store.
	log          text NOT NULL DEFAULT '',
	container_id text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	finished_at  timestamptz,
	PRIMARY KEY (site_id, number)
);
-- One live release a site, found by the route's lookup.
CREATE UNIQUE INDEX releases_live_idx ON releases (site_id) WHERE status = 'live';
CREATE INDEX releases_unfinished_idx ON releases (site_id) WHERE status IN ('building', 'pending');

-- A release going live (or leaving it) changes what the site runs: every
-- node's cache forgets the site's routes, and nodes serving the site
-- switch to its new container.
CREATE FUNCTION notify_release_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM pg_notify('tenants_changed', jsonb_build_object(
		'schema', TG_TABLE_SCHEMA,
		'table', TG_TABLE_NAME,
		'op', lower(TG_OP),
		'id', NEW.site_id::text,
		'site_id', NEW.site_id::text
	)::text);
	RETURN NULL;
END
$fn$;

CREATE TRIGGER releases_notify AFTER INSERT OR UPDATE OF status ON releases
	FOR EACH ROW EXECUTE FUNCTION notify_release_changed();

-- Which container each node sends a site's requests to, and how many it
-- still has in flight on the site's other containers: a rollout drains
-- the old container until no node that reported lately uses it.
ALTER TABLE site_activity
	ADD COLUMN container_id text NOT NULL DEFAULT '',
	ADD COLUMN draining     bigint NOT NULL DEFAULT 0 CHECK (draining >= 0),
	ADD COLUMN reported_at  timestamptz NOT NULL DEFAULT now();
