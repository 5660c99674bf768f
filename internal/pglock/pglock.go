// Package pglock takes the PostgreSQL advisory locks of this plugin:
// the schema's migrations, the certificate storage's table creation and
// each site's container operations. Every key is per schema, so several
// platforms sharing one database never wait on each other.
package pglock

import (
	"context"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scopes of the plugin's locks.
const (
	// ScopeMigrate serializes a schema's creation and migrations.
	ScopeMigrate = "migrate"
	// ScopeStorage serializes the certificate storage's table creation.
	ScopeStorage = "storage"
	// ScopeSite serializes the container operations of one site. The
	// name is historical: it was the start lock, and nodes of an older
	// release must keep agreeing on it.
	ScopeSite = "start"
	// ScopeRelease serializes the builds and rollouts of one site; a
	// rollout takes the site's container lock inside it.
	ScopeRelease = "release"
)

// unlockTimeout bounds an unlock, which runs on a context of its own: the
// caller's may be what just ended.
const unlockTimeout = 5 * time.Second

// Key returns the advisory lock key of name in schema's scope.
func Key(scope, schema, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("caddy-multitenant/" + scope + "/"))
	h.Write([]byte(schema))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Session takes the session lock key on conn, waiting until it is held or
// ctx ends, and returns its release. A failed or cancelled wait closes
// conn: the lock request may be left pending on the session, which only
// the server dropping the session clears. A failed release closes it too.
func Session(ctx context.Context, conn *pgx.Conn, key int64) (unlock func(), err error) {
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return releaser(conn, key), nil
}

// TrySession takes the session lock key on conn if nobody holds it, and
// reports whether it did.
func TrySession(ctx context.Context, conn *pgx.Conn, key int64) (unlock func(), ok bool, err error) {
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		return nil, false, err
	}
	return releaser(conn, key), true, nil
}

// releaser returns the release of the session lock key on conn.
func releaser(conn *pgx.Conn, key int64) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			conn.Close(context.Background())
		}
	}
}

// Xact takes the transaction lock key in tx, released when tx ends.
func Xact(ctx context.Context, tx pgx.Tx, key int64) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", key)
	return err
}
