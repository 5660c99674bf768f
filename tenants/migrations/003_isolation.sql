-- How a template's containers are hardened and fenced in, on top of the
-- defaults every site gets (no-new-privileges, all capabilities dropped
-- but cap_add, the customer's own network).
ALTER TABLE templates
	-- The uid or uid:gid the site runs as; '' keeps the image's user.
	-- ("user" is a reserved word, hence run_as.)
	ADD COLUMN run_as text NOT NULL DEFAULT '',
	-- A read-only root filesystem (with a tmpfs /tmp); the site writes
	-- to its volume only.
	ADD COLUMN read_only boolean NOT NULL DEFAULT false,
	-- Whether the site may open connections to the outside; NULL takes
	-- the platform's default (the tenants option's egress).
	ADD COLUMN egress boolean;

-- Plans now shape containers (their limits apply where a template sets
-- none), so a resolver must hear of plan changes like of the others.
CREATE TRIGGER plans_notify AFTER UPDATE OR DELETE ON plans
	FOR EACH ROW EXECUTE FUNCTION notify_tenants_changed();
