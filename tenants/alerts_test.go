package tenants

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// An incident opens once however often its condition is raised, stays
// one incident while it flaps (raised again before it stayed clear for
// the quiet period), resolves once, and a later raise is a new incident.
func TestAlertIncidents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	var opened []string
	open := func(_ pgx.Tx, a *Alert) error { opened = append(opened, a.ID); return nil }
	var resolved []string
	resolve := func(quiet time.Duration) {
		t.Helper()
		if err := s.ResolveAlerts(ctx, quiet, func(_ pgx.Tx, list []Alert) error {
			for _, a := range list {
				resolved = append(resolved, a.ID)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	raise := func() {
		t.Helper()
		if err := s.RaiseAlert(ctx, "site_start_failed", "site-1", "it failed", open); err != nil {
			t.Fatal(err)
		}
	}
	clear := func() {
		t.Helper()
		if err := s.ClearAlert(ctx, "site_start_failed", "site-1"); err != nil {
			t.Fatal(err)
		}
	}

	raise()
	raise()
	clear()
	raise() // it flaps
	resolve(0)
	if len(opened) != 1 || len(resolved) != 0 {
		t.Fatalf("flapping: %d opened, %d resolved; want 1, 0", len(opened), len(resolved))
	}
	clear()
	resolve(time.Hour) // not clear for long enough
	if len(resolved) != 0 {
		t.Fatal("resolved before the quiet period")
	}
	resolve(0)
	resolve(0)
	if len(resolved) != 1 || resolved[0] != opened[0] {
		t.Fatalf("resolved %v, want the incident %s once", resolved, opened[0])
	}
	open2, err := s.OpenAlerts(ctx)
	if err != nil || len(open2) != 0 {
		t.Fatalf("open after resolving: %v %v", open2, err)
	}
	raise()
	if len(opened) != 2 || opened[1] == opened[0] {
		t.Fatalf("a raise after the resolution: opened %v, want a second incident", opened)
	}
}
