-- Settings the CLI and every Caddy node must agree on with the server,
-- recorded by the server when it starts: one row.
CREATE TABLE platform_settings (
	id          boolean PRIMARY KEY DEFAULT true CHECK (id),
	base_domain text NOT NULL DEFAULT '',
	reserved    text[] NOT NULL DEFAULT '{}',
	updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A site's last failed start, kept until a start succeeds, so that it can
-- be shown after the container is gone (or was never made).
ALTER TABLE site_runtime
	ADD COLUMN failure_reason    text NOT NULL DEFAULT '',
	ADD COLUMN failure_exit_code integer,
	ADD COLUMN failure_log_tail  text NOT NULL DEFAULT '',
	ADD COLUMN failed_at         timestamptz;
