-- Tables of caddy.storage.postgres. Applied idempotently on first use, under
-- an advisory lock, with search_path set to the configured schema: names are
-- unqualified on purpose.

-- Keys compare in the "C" collation (byte order) so that a directory's
-- contents are exactly the key range [dir || '/', dir || '0'), which the
-- primary key index answers directly.
CREATE TABLE IF NOT EXISTS certmagic_data (
	key      text COLLATE "C" PRIMARY KEY,
	value    bytea NOT NULL,
	modified timestamptz NOT NULL
);

-- One row per held lock. A row whose lease has expired is free to take:
-- that is how a crashed holder stops blocking everyone else.
CREATE TABLE IF NOT EXISTS certmagic_locks (
	name    text PRIMARY KEY,
	owner   text NOT NULL,
	expires timestamptz NOT NULL
);
