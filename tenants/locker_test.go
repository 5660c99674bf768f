package tenants

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/pglock"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// Two nodes' lockers on one schema exclude each other on a site; other
// sites and other schemas' platforms never wait on the lock.
func TestSiteLocker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema, other := pgtest.Schema(t), pgtest.Schema(t)
	a := NewSiteLocker(pgtest.Pool(t, schema), schema, nil)
	b := NewSiteLocker(pgtest.Pool(t, schema), schema, nil)
	c := NewSiteLocker(pgtest.Pool(t, other), other, nil)

	unlock, err := a.Lock(ctx, "site-1")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.Lock(short, "site-1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second node locking a held site: %v, want it to wait until its deadline", err)
	}
	for _, l := range []*SiteLocker{b, c} {
		site := "site-2"
		if l == c {
			site = "site-1"
		}
		u, err := l.Lock(ctx, site)
		if err != nil {
			t.Fatalf("lock of %s that nobody holds: %v", site, err)
		}
		u()
	}

	got := make(chan error, 1)
	go func() {
		u, err := b.Lock(ctx, "site-1")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("second node after the first unlocked: %v", err)
	}
}

// A schema's migration lock is its own: migrating one schema does not
// wait for another schema's migration.
func TestMigrateLockIsPerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	held, schema := pgtest.Schema(t), pgtest.Schema(t)
	conn, err := pgtest.Pool(t, held).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	unlock, err := pglock.Session(ctx, conn.Conn(), migrateLockKey(held))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := Migrate(mctx, pgtest.Pool(t, schema), schema); err != nil {
		t.Fatalf("migrating %s while %s's migration lock is held: %v", schema, held, err)
	}
}
