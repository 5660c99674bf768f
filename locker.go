package multitenant

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// advisoryLocker serializes container starts of one site across Caddy
// processes that share a database and a Docker engine, with a PostgreSQL
// session advisory lock held on a pooled connection for the duration of
// the start.
type advisoryLocker struct {
	pool   *pgxpool.Pool
	schema string
	logger *zap.Logger
}

// Lock blocks until the site's lock is held or ctx ends. If the database
// cannot be reached at all, the start goes ahead unlocked: the provisioner
// still resolves a creation race by adopting the container that won, and a
// database outage must not keep stopped sites from starting.
func (l *advisoryLocker) Lock(ctx context.Context, siteID string) (func(), error) {
	key := lockKey(l.schema, siteID)
	acquireCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	conn, err := l.pool.Acquire(acquireCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l.logger.Warn("starting site without cross-node lock: database unreachable", zap.String("site_id", siteID), zap.Error(err))
		return func() {}, nil
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		// A cancelled wait may leave the lock request in an unknown state
		// on this session: close the connection so the server drops it.
		conn.Conn().Close(context.Background())
		conn.Release()
		var pgErr *pgconn.PgError
		if ctx.Err() != nil || errors.As(err, &pgErr) {
			return nil, err
		}
		l.logger.Warn("starting site without cross-node lock", zap.String("site_id", siteID), zap.Error(err))
		return func() {}, nil
	}
	return func() {
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			conn.Conn().Close(context.Background())
		}
		conn.Release()
	}, nil
}

// lockKey maps a site to an advisory lock key, per schema so that several
// platforms in one database do not contend.
func lockKey(schema, siteID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("caddy-multitenant/start/"))
	h.Write([]byte(schema))
	h.Write([]byte{0})
	h.Write([]byte(siteID))
	return int64(h.Sum64())
}
