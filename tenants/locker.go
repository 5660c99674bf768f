package tenants

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/internal/pglock"
)

// acquireTimeout bounds the wait for a pooled connection to lock on: a
// database that cannot give one that fast is treated as unreachable.
const acquireTimeout = 2 * time.Second

// SiteLocker serializes the container operations of one site (start,
// stop, recreate, remove) across the Caddy processes that share a
// database and a Docker engine, with a PostgreSQL session advisory lock
// held on a pooled connection for the duration of the operation. It
// satisfies provisioner.Locker.
type SiteLocker struct {
	pool   *pgxpool.Pool
	schema string
	scope  string
	logger *zap.Logger
}

// NewSiteLocker returns the site locker of the platform in schema.
func NewSiteLocker(pool *pgxpool.Pool, schema string, logger *zap.Logger) *SiteLocker {
	return newLocker(pool, schema, pglock.ScopeSite, logger)
}

// NewReleaseLocker returns the locker that serializes the builds and
// rollouts of a site across processes; a rollout takes the site's
// container lock (NewSiteLocker's) inside it.
func NewReleaseLocker(pool *pgxpool.Pool, schema string, logger *zap.Logger) *SiteLocker {
	return newLocker(pool, schema, pglock.ScopeRelease, logger)
}

func newLocker(pool *pgxpool.Pool, schema, scope string, logger *zap.Logger) *SiteLocker {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &SiteLocker{pool: pool, schema: schema, scope: scope, logger: logger}
}

// Lock blocks until the site's lock is held or ctx ends. If the database
// cannot be reached at all, the operation goes ahead unlocked: the
// provisioner still resolves a creation race by adopting the container
// that won, and a database outage must not keep stopped sites from
// starting.
func (l *SiteLocker) Lock(ctx context.Context, siteID string) (func(), error) {
	acquireCtx, cancel := context.WithTimeout(ctx, acquireTimeout)
	conn, err := l.pool.Acquire(acquireCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l.logger.Warn("operating on site without cross-node lock: database unreachable", zap.String("site_id", siteID), zap.Error(err))
		return func() {}, nil
	}
	unlock, err := pglock.Session(ctx, conn.Conn(), pglock.Key(l.scope, l.schema, siteID))
	if err != nil {
		conn.Release()
		var pgErr *pgconn.PgError
		if ctx.Err() != nil || errors.As(err, &pgErr) {
			return nil, err
		}
		l.logger.Warn("operating on site without cross-node lock", zap.String("site_id", siteID), zap.Error(err))
		return func() {}, nil
	}
	return func() {
		unlock()
		conn.Release()
	}, nil
}

// TryLock takes the site's lock if nobody holds it, and reports whether
// it did; unlike Lock it fails without the database.
func (l *SiteLocker) TryLock(ctx context.Context, siteID string) (unlock func(), ok bool, err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, false, mapError("locking site", err)
	}
	release, ok, err := pglock.TrySession(ctx, conn.Conn(), pglock.Key(l.scope, l.schema, siteID))
	if err != nil || !ok {
		conn.Release()
		return nil, false, mapError("locking site", err)
	}
	return func() {
		release()
		conn.Release()
	}, true, nil
}
