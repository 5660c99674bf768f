-- The data model of the platform. Every table lives in the schema the
-- connection's search_path names (default "tenants"), so one database can
-- hold several platforms (and tests run side by side, one schema each).

CREATE TABLE plans (
	id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	slug            text NOT NULL,
	name            text NOT NULL,
	stripe_price_id text,
	max_sites       integer NOT NULL DEFAULT 1 CHECK (max_sites > 0),
	memory_bytes    bigint NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0),
	nano_cpus       bigint NOT NULL DEFAULT 0 CHECK (nano_cpus >= 0),
	pids_limit      bigint NOT NULL DEFAULT 0 CHECK (pids_limit >= 0),
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT plans_slug_key UNIQUE (slug)
);

CREATE TABLE customers (
	id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	email                  text NOT NULL,
	name                   text NOT NULL,
	status                 text NOT NULL DEFAULT 'active'
		CHECK (status IN ('active', 'past_due', 'suspended', 'canceled')),
	plan_id                uuid REFERENCES plans (id) ON DELETE RESTRICT,
	stripe_customer_id     text,
	stripe_subscription_id text,
	created_at             timestamptz NOT NULL DEFAULT now(),
	updated_at             timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT customers_email_key UNIQUE (email),
	CONSTRAINT customers_stripe_customer_id_key UNIQUE (stripe_customer_id)
);
CREATE INDEX customers_plan_id_idx ON customers (plan_id);

CREATE TABLE templates (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	slug         text NOT NULL,
	name         text NOT NULL,
	description  text NOT NULL DEFAULT '',
	image        text NOT NULL,
	port         integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
	env          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(env) = 'object'),
	data_path    text NOT NULL DEFAULT '',
	health_path  text NOT NULL DEFAULT '',
	memory_bytes bigint NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0),
	nano_cpus    bigint NOT NULL DEFAULT 0 CHECK (nano_cpus >= 0),
	pids_limit   bigint NOT NULL DEFAULT 0 CHECK (pids_limit >= 0),
	cap_add      text[] NOT NULL DEFAULT '{}',
	version      integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT templates_slug_key UNIQUE (slug)
);

CREATE TABLE sites (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
	subdomain   text NOT NULL,
	template_id uuid NOT NULL REFERENCES templates (id) ON DELETE RESTRICT,
	env         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(env) = 'object'),
	status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT sites_subdomain_key UNIQUE (subdomain)
);
CREATE INDEX sites_customer_id_idx ON sites (customer_id);
CREATE INDEX sites_template_id_idx ON sites (template_id);

-- Custom hostnames of a site. A site's own subdomain host is derived from
-- sites.subdomain and the configured base domain, so renaming the base
-- domain never needs a data migration.
CREATE TABLE domains (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	site_id      uuid NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
	hostname     text NOT NULL,
	verified     boolean NOT NULL DEFAULT false,
	verify_token text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
	verified_at  timestamptz,
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT domains_hostname_key UNIQUE (hostname)
);
CREATE INDEX domains_site_id_idx ON domains (site_id);

-- What the provisioner last knew of a site's container. Written in batches
-- off the hot path; read at start-up and by the admin API.
CREATE TABLE site_runtime (
	site_id          uuid PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
	container_id     text NOT NULL DEFAULT '',
	state            text NOT NULL DEFAULT 'stopped',
	upstream         text NOT NULL DEFAULT '',
	last_error       text NOT NULL DEFAULT '',
	last_started_at  timestamptz,
	last_active_at   timestamptz,
	updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
	id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	key_id       text NOT NULL,
	secret_hash  bytea NOT NULL,
	name         text NOT NULL,
	scope        text NOT NULL CHECK (scope IN ('read', 'write')),
	created_at   timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz,
	revoked_at   timestamptz,
	CONSTRAINT api_keys_key_id_key UNIQUE (key_id)
);

-- One row per Stripe event ever applied: the primary key makes a replay a
-- conflict, and the row is written in the transaction of its effect.
CREATE TABLE billing_events (
	id          text PRIMARY KEY,
	type        text NOT NULL,
	customer_id uuid REFERENCES customers (id) ON DELETE SET NULL,
	created     timestamptz NOT NULL,
	payload     jsonb NOT NULL,
	applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_events_customer_id_idx ON billing_events (customer_id, created);

CREATE TABLE audit_log (
	id        bigserial PRIMARY KEY,
	at        timestamptz NOT NULL DEFAULT now(),
	actor     text NOT NULL,
	action    text NOT NULL,
	entity    text NOT NULL,
	entity_id text NOT NULL,
	before    jsonb,
	after     jsonb
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id);

-- Every change to what routing depends on is announced on tenants_changed,
-- with the keys a resolver cache needs to evict exactly the affected hosts:
-- the ids involved and the subdomains/hostnames before and after.
CREATE FUNCTION notify_tenants_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
	new_row jsonb;
	old_row jsonb;
	any_row jsonb;
BEGIN
	IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
	IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
	any_row := coalesce(new_row, old_row);
	PERFORM pg_notify('tenants_changed', jsonb_strip_nulls(jsonb_build_object(
		'schema', TG_TABLE_SCHEMA,
		'table', TG_TABLE_NAME,
		'op', lower(TG_OP),
		'id', any_row->>'id',
		'site_id', CASE TG_TABLE_NAME
			WHEN 'sites' THEN any_row->>'id'
			WHEN 'domains' THEN any_row->>'site_id' END,
		'customer_id', CASE TG_TABLE_NAME
			WHEN 'customers' THEN any_row->>'id'
			WHEN 'sites' THEN any_row->>'customer_id' END,
		'template_id', CASE TG_TABLE_NAME
			WHEN 'templates' THEN any_row->>'id'
			WHEN 'sites' THEN any_row->>'template_id' END,
		'subdomains', CASE WHEN TG_TABLE_NAME = 'sites' THEN (
			SELECT jsonb_agg(DISTINCT s) FROM (VALUES (old_row->>'subdomain'), (new_row->>'subdomain')) v (s)
			WHERE s IS NOT NULL) END,
		'hostnames', CASE WHEN TG_TABLE_NAME = 'domains' THEN (
			SELECT jsonb_agg(DISTINCT h) FROM (VALUES (old_row->>'hostname'), (new_row->>'hostname')) v (h)
			WHERE h IS NOT NULL) END
	))::text);
	RETURN NULL;
END
$fn$;

CREATE TRIGGER customers_notify AFTER INSERT OR UPDATE OR DELETE ON customers
	FOR EACH ROW EXECUTE FUNCTION notify_tenants_changed();
CREATE TRIGGER sites_notify AFTER INSERT OR UPDATE OR DELETE ON sites
	FOR EACH ROW EXECUTE FUNCTION notify_tenants_changed();
CREATE TRIGGER domains_notify AFTER INSERT OR UPDATE OR DELETE ON domains
	FOR EACH ROW EXECUTE FUNCTION notify_tenants_changed();
CREATE TRIGGER templates_notify AFTER INSERT OR UPDATE OR DELETE ON templates
	FOR EACH ROW EXECUTE FUNCTION notify_tenants_changed();
