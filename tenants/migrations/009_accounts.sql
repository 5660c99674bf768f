-- People who sign in to the web UI: operators (customer_id NULL) and a
-- customer's own users (customer_id set, scoped to that customer). API keys
-- stay for programs; these are for people.
CREATE TABLE users (
	id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	email         text NOT NULL,
	name          text NOT NULL DEFAULT '',
	-- argon2id in the PHC string format; '' until an invitation is accepted.
	password_hash text NOT NULL DEFAULT '',
	-- The TOTP shared secret (base32), NULL without a second factor.
	totp_secret   text,
	customer_id   uuid REFERENCES customers (id) ON DELETE CASCADE,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	last_login_at timestamptz,
	CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_customer_id_idx ON users (customer_id);

-- Sessions of the web UI, shared by every Caddy node. The cookie holds a
-- random token; only its SHA-256 is kept, so a leaked table opens nothing.
CREATE TABLE user_sessions (
	token_hash   bytea PRIMARY KEY,
	user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	-- The form token of this session (see package ui's csrf.go).
	csrf_token   text NOT NULL,
	-- false while a password was given but the TOTP code is still due.
	complete     boolean NOT NULL DEFAULT true,
	-- A message for the next page this session sees ("site restarted").
	flash        text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	last_seen_at timestamptz NOT NULL DEFAULT now(),
	expires_at   timestamptz NOT NULL,
	client_ip    text NOT NULL DEFAULT '',
	user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);
CREATE INDEX user_sessions_expires_at_idx ON user_sessions (expires_at);

-- One-time links an operator gives a customer's person to set a password.
CREATE TABLE invitations (
	token_hash  bytea PRIMARY KEY,
	user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_by  text NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	expires_at  timestamptz NOT NULL,
	accepted_at timestamptz
);
CREATE INDEX invitations_user_id_idx ON invitations (user_id);
