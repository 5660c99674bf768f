// Package pgpool shares pgx connection pools across Caddy config loads.
//
// During a config reload the old and new configs are both alive for a
// moment; keying pools by (DSN, schema) in a caddy.UsagePool lets the new
// config take over the old one's pool instead of dialing a second one, and
// lets the storage module and the tenants app share one pool when they point
// at the same database.
package pgpool

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

var pools = caddy.NewUsagePool()

// schemaName is what a schema name may look like: a plain lowercase SQL
// identifier, so it never needs quoting and cannot smuggle SQL.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidSchema reports whether name can be used as a schema name.
func ValidSchema(name string) error {
	if !schemaName.MatchString(name) {
		return fmt.Errorf("invalid schema name %q: want a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 characters)", name)
	}
	return nil
}

type key struct{ dsn, schema string }

type sharedPool struct{ *pgxpool.Pool }

// Destruct closes the pool once its last user released it.
func (p sharedPool) Destruct() error {
	p.Close()
	return nil
}

// Acquire returns the pool for dsn whose connections use schema as their
// search_path, creating it on first use. Creating a pool does not dial; the
// first query does. Every Acquire must be paired with a Release.
func Acquire(dsn, schema string) (*pgxpool.Pool, error) {
	if err := ValidSchema(schema); err != nil {
		return nil, err
	}
	val, _, err := pools.LoadOrNew(key{dsn, schema}, func() (caddy.Destructor, error) {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			// pgconn masks the password in its parse errors.
			return nil, fmt.Errorf("parsing database url: %w", err)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
		cfg.ConnConfig.RuntimeParams["application_name"] = "caddy-multitenant"
		// pgx's default reaction to a cancelled context closes the socket,
		// which leaves the statement running on the server (a write may
		// still apply after its caller saw an error). Ask the server to
		// cancel it first, and close the socket only if that does not end
		// it quickly.
		cfg.ConnConfig.BuildContextWatcherHandler = func(conn *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{
				Conn:               conn,
				CancelRequestDelay: 0,
				DeadlineDelay:      2 * time.Second,
			}
		}
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			return nil, fmt.Errorf("creating database pool: %w", err)
		}
		return sharedPool{pool}, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(sharedPool).Pool, nil
}

// Release drops one reference to the pool for (dsn, schema); the last one
// closes it.
func Release(dsn, schema string) error {
	_, err := pools.Delete(key{dsn, schema})
	return err
}

// References reports how many users hold the pool for (dsn, schema), and
// whether it exists at all.
func References(dsn, schema string) (int, bool) {
	return pools.References(key{dsn, schema})
}

// Count reports how many distinct pools are alive.
func Count() int {
	n := 0
	pools.Range(func(any, any) bool { n++; return true })
	return n
}
