package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
)

// Locks are leases: a row (name, owner, expires) in certmagic_locks. Taking
// a lock inserts the row, or takes over a row whose lease has expired, in
// one statement, so two nodes can never both succeed. While a lock is held
// a heartbeat goroutine pushes its expiry forward; if the holder dies the
// heartbeat dies with it and the lease runs out. All times are the
// database's clock, so clock skew between nodes does not matter.
//
// Waiters poll (jittered) rather than LISTEN: a LISTEN needs a dedicated
// connection per Storage kept outside the shared pool, with its own
// reconnect logic, to shave at most one poll interval off a hand-off that
// guards an ACME order taking seconds. A poll is one indexed statement.

const (
	acquireSQL = `INSERT INTO certmagic_locks (name, owner, expires)
VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
WHERE certmagic_locks.expires <= now()`

	// heartbeatSQL never shortens a lease that RenewLockLease made longer.
	heartbeatSQL = `UPDATE certmagic_locks SET expires = greatest(expires, now() + make_interval(secs => $3))
WHERE name = $1 AND owner = $2`

	renewSQL = `UPDATE certmagic_locks SET expires = now() + make_interval(secs => $3)
WHERE name = $1 AND owner = $2`

	releaseSQL = `DELETE FROM certmagic_locks WHERE name = $1 AND owner = $2`
)

// errClosed is returned by Lock and TryLock after Close.
var errClosed = errors.New("storage is closed")

// lease is a lock this Storage holds, and the heartbeat keeping it alive.
type lease struct {
	stop context.CancelFunc // stops the heartbeat, cancelling a renewal in flight
	done chan struct{}      // closed when the heartbeat has returned
}

// Lock takes the lock name, waiting as long as another owner holds an
// unexpired lease on it, or until ctx ends. Goroutines sharing one Storage
// exclude each other too: the lease belongs to the Storage, not to the
// goroutine.
func (s *Storage) Lock(ctx context.Context, name string) error {
	var timer *time.Timer
	for {
		acquired, err := s.TryLock(ctx, name)
		if err != nil || acquired {
			return err
		}
		wait := s.pollInterval/2 + rand.N(s.pollInterval)
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for lock %s: %w", name, ctx.Err())
		}
	}
}

// TryLock takes the lock name if it is free (or its lease expired) and
// reports whether it did, without waiting.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := s.ensureSchema(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return false, fmt.Errorf("locking %s: %w", name, errClosed)
	}
	// If ctx ends after the insert committed but before its reply arrived,
	// the lease exists without a heartbeat and simply expires after lockTTL.
	tag, err := s.pool.Exec(ctx, acquireSQL, name, s.owner, s.lockTTL.Seconds())
	if err != nil {
		return false, fmt.Errorf("locking %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	s.startHeartbeat(name)
	return true, nil
}

// Unlock releases the lock name if this Storage holds it. It fails, and
// changes nothing, for a lock this Storage does not hold; it also fails if
// the lease had expired and another owner took it over.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	l, held := s.leases[name]
	delete(s.leases, name)
	s.mu.Unlock()
	if !held {
		return fmt.Errorf("unlocking %s: lock is not held by this storage", name)
	}
	// Stop renewing first, so no renewal can land after the release.
	l.stop()
	<-l.done
	tag, err := s.pool.Exec(ctx, releaseSQL, name, s.owner)
	if err != nil {
		return fmt.Errorf("unlocking %s: %w (the lease expires within %s)", name, err, s.lockTTL)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("unlocking %s: lease had expired and was lost", name)
	}
	return nil
}

// RenewLockLease extends the lease on lockKey to leaseDuration from now, for
// a holder about to outlast lock_ttl; the heartbeat does not shorten it.
// It fails if this Storage does not hold the lock.
func (s *Storage) RenewLockLease(ctx context.Context, lockKey string, leaseDuration time.Duration) error {
	if err := s.ensureSchema(ctx); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, renewSQL, lockKey, s.owner, leaseDuration.Seconds())
	if err != nil {
		return fmt.Errorf("renewing lock %s: %w", lockKey, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("renewing lock %s: lock is not held by this storage", lockKey)
	}
	return nil
}

// Close stops the heartbeats of the locks still held; their leases then run
// out within lock_ttl. Unlock keeps working (while the pool is open), so an
// operation that outlives a config reload can still release its lock.
// Lock and TryLock fail after Close.
func (s *Storage) Close() {
	s.mu.Lock()
	s.closed = true
	leases := make([]*lease, 0, len(s.leases))
	for _, l := range s.leases {
		leases = append(leases, l)
	}
	s.mu.Unlock()
	for _, l := range leases {
		l.stop()
		<-l.done
	}
}

// startHeartbeat records the lease on name and starts renewing it.
func (s *Storage) startHeartbeat(name string) {
	ctx, stop := context.WithCancel(context.Background())
	l := &lease{stop: stop, done: make(chan struct{})}
	s.mu.Lock()
	// Only possible if our own earlier lease on name expired unnoticed and
	// this Storage retook it: the old heartbeat is pointless now.
	previous := s.leases[name]
	s.leases[name] = l
	s.mu.Unlock()
	if previous != nil {
		previous.stop()
		<-previous.done
	}
	s.heartbeats.Add(1)
	go s.heartbeat(ctx, name, l)
}

// heartbeat renews the lease on name every lockTTL/3 until ctx ends or the
// lease turns out to be lost. Three renewals fit in one TTL, so a single
// failed renewal (a blip in the database connection) does not lose it.
func (s *Storage) heartbeat(ctx context.Context, name string, l *lease) {
	defer close(l.done)
	defer s.heartbeats.Add(-1)
	interval := s.lockTTL / 3
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		renewCtx, cancel := context.WithTimeout(ctx, interval)
		tag, err := s.pool.Exec(renewCtx, heartbeatSQL, name, s.owner, s.lockTTL.Seconds())
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.logger.Warn("renewing lock lease failed; will retry",
				zap.String("lock", name), zap.Error(err))
		case tag.RowsAffected() == 0:
			s.logger.Error("lock lease lost: it expired and was taken over",
				zap.String("lock", name))
			return
		}
	}
}
