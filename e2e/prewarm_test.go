package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/prewarm"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// prewarmFixture gives sites a history of wake-ups and drives the
// scheduler: time is driven by the slot the job is for (two hours ahead,
// which the queue's leader does not insert yet), the job inserted as the
// leader would, due at once.
type prewarmFixture struct {
	t    *testing.T
	p    *testPlatform
	pool *pgxpool.Pool
	slot time.Time
}

func newPrewarmFixture(t *testing.T, p *testPlatform) *prewarmFixture {
	return &prewarmFixture{t: t, p: p, pool: pgtest.Pool(t, p.schema), slot: prewarm.SlotOf(time.Now()).Add(2 * time.Hour)}
}

// history records a cold start of the site a few minutes into the
// slot's hour in each of weeks (1: the week before), as a node's figures
// roll-up does.
func (f *prewarmFixture) history(siteID string, weeks ...int) {
	f.t.Helper()
	var minutes []tenants.SiteMinute
	for _, w := range weeks {
		at := f.slot.Add(-time.Duration(w)*prewarm.Week + 4*time.Minute)
		minutes = append(minutes, tenants.SiteMinute{SiteID: siteID, At: at,
			SiteBucket: tenants.SiteBucket{Requests: 3, Latency: []int64{3}, ColdStarts: 1, ColdStartMs: 800}})
	}
	if _, err := f.p.store.SaveFigures(context.Background(), "e2e-past-node", tenants.FiguresBatch{Sites: minutes}); err != nil {
		f.t.Fatal(err)
	}
}

// warm inserts the slot's pre-warm job and waits until the queue has
// worked it; it returns the job's final state.
func (f *prewarmFixture) warm() string {
	f.t.Helper()
	ctx := context.Background()
	client, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{Schema: f.p.schema})
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := client.Insert(ctx, prewarm.SlotArgs{Slot: f.slot}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	var state string
	eventually(f.t, 90*time.Second, "the pre-warm job worked", func() bool {
		err := f.pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, res.Job.ID).Scan(&state)
		if err != nil {
			f.t.Fatal(err)
		}
		return state != "available" && state != "running" && state != "scheduled"
	})
	return state
}

// event returns the site's pre-warm of the slot, nil for none.
func (f *prewarmFixture) event(siteID string) *tenants.PrewarmEvent {
	f.t.Helper()
	events, err := f.p.store.SitePrewarms(context.Background(), siteID, 10)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range events {
		if e.SlotStart.Equal(f.slot) {
			return &e
		}
	}
	return nil
}

// A site whose wake-ups fall in the coming slot most weeks is started
// before it, by the job on the queue, and the slot's first visitor is
// recorded; a site that opted out, and one for which max_running leaves
// no free room, are not started, and the site running already is not
// stopped to make room.
func TestPrewarmStartsSitesBeforeTheirSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{MaxRunning: 2})
	f := newPrewarmFixture(t, p)
	warm, optedOut, noRoom, busy := p.site("pw-warm", nil), p.site("pw-optout", nil), p.site("pw-noroom", nil), p.site("pw-busy", nil)
	f.history(warm.ID, 1, 2, 3)        // p = 0.75
	f.history(optedOut.ID, 1, 2, 3, 4) // p = 1, but its switch is off
	f.history(noRoom.ID, 1, 3)         // p = 0.5: after warm, no room
	optedOut.Prewarm = false
	if err := p.store.UpdateSite(ctx, "e2e", optedOut); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := p.get(host("pw-busy"), "/", nil); st != http.StatusOK {
		t.Fatalf("busy site: %d", st)
	}

	// The queue's leader has inserted the coming slot's job, due lead
	// before it.
	coming := f.slot.Add(-prewarm.Slot)
	eventually(t, 30*time.Second, "the coming slot's job inserted", func() bool {
		var due time.Time
		err := f.pool.QueryRow(ctx, `SELECT scheduled_at FROM river_job WHERE kind = 'tenants_prewarm' AND (args->>'slot')::timestamptz = $1`,
			coming).Scan(&due)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		return due.Equal(coming.Add(-prewarm.DefaultLead))
	})

	if state := f.warm(); state != "completed" {
		t.Fatalf("the pre-warm job ended %s", state)
	}
	ev := f.event(warm.ID)
	if ev == nil || !p.running(warm.ID) {
		t.Fatalf("site with 3 of 4 weeks not pre-warmed: event %+v, running %v", ev, p.running(warm.ID))
	}
	if ev.Probability != 0.75 || ev.FirstRequestAt != nil || ev.PrewarmedAt.After(time.Now()) || !ev.PrewarmedAt.Before(f.slot) {
		t.Fatalf("pre-warm record %+v", ev)
	}
	for _, s := range []*tenants.Site{optedOut, noRoom} {
		if p.running(s.ID) || f.event(s.ID) != nil {
			t.Errorf("site %s started (running %v, event %+v)", s.Subdomain, p.running(s.ID), f.event(s.ID))
		}
	}
	if !p.running(busy.ID) {
		t.Error("the running site was stopped to make room for a pre-warm")
	}
	if n := p.caddy.Metric("caddy_tenants_prewarm_starts_total"); n != 1 {
		t.Errorf("prewarm_starts_total %v, want 1", n)
	}

	// The first visitor finds it running, and is recorded (once past the
	// resolution of activity stamps: closer to the pre-warm it is the
	// pre-warm's own activity as far as they tell).
	time.Sleep(time.Until(ev.PrewarmedAt.Add(prewarm.ActivityResolution + 300*time.Millisecond)))
	before := time.Now()
	if st, _, _ := p.get(host("pw-warm"), "/", nil); st != http.StatusOK {
		t.Fatalf("visitor: %d", st)
	}
	eventually(t, 10*time.Second, "the first visitor recorded", func() bool {
		ev = f.event(warm.ID)
		return ev.FirstRequestAt != nil
	})
	if at := *ev.FirstRequestAt; at.Before(before.Add(-time.Second)) || at.After(time.Now()) || !at.After(ev.PrewarmedAt) {
		t.Fatalf("first visitor at %s, asked between %s and now, pre-warmed at %s", at, before, ev.PrewarmedAt)
	}
	if n := p.caddy.Metric("caddy_tenants_prewarm_hits_total"); n != 1 {
		t.Errorf("prewarm_hits_total %v, want 1", n)
	}

	// The same slot again starts nothing twice.
	if _, err := f.pool.Exec(ctx, `DELETE FROM river_job WHERE kind = 'tenants_prewarm'`); err != nil {
		t.Fatal(err)
	}
	if state := f.warm(); state != "completed" || p.caddy.Metric("caddy_tenants_prewarm_starts_total") != 1 {
		t.Fatalf("second job for the slot: %s, starts %v", state, p.caddy.Metric("caddy_tenants_prewarm_starts_total"))
	}
}

// With the platform's switch off no scheduler runs: the slot's job finds
// no worker and the site stays asleep.
func TestPrewarmOff(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{Tenants: fmt.Sprintf("prewarm off\n\t\tbackup {\n\t\t\tdir %s\n\t\t}", t.TempDir())})
	f := newPrewarmFixture(t, p)
	s := p.site("pw-off", nil)
	f.history(s.ID, 1, 2, 3, 4)
	ctx := context.Background()
	client, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{Schema: p.schema})
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Insert(ctx, prewarm.SlotArgs{Slot: f.slot}, &river.InsertOpts{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var state string
	var errs []string
	eventually(t, 60*time.Second, "the job tried", func() bool {
		err := f.pool.QueryRow(ctx, `SELECT state, coalesce(array(SELECT e->>'error' FROM unnest(errors) e), '{}') FROM river_job WHERE id = $1`,
			res.Job.ID).Scan(&state, &errs)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		return state == "discarded" || state == "completed"
	})
	if state != "discarded" || len(errs) == 0 {
		t.Fatalf("job %s (errors %q), want discarded for want of a worker", state, errs)
	}
	time.Sleep(time.Second)
	if p.running(s.ID) || f.event(s.ID) != nil {
		t.Fatalf("site started with prewarm off")
	}
}

// With two nodes, the slot's job runs on one of them, once; the first
// visitor through the other node is recorded all the same (the node that
// pre-warmed reads it from the activity the nodes share), and the other
// node's request starts no container.
func TestPrewarmTwoNodes(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	b := p.node()
	f := newPrewarmFixture(t, p)
	s := p.site("pw-nodes", nil)
	f.history(s.ID, 1, 2)
	if state := f.warm(); state != "completed" {
		t.Fatalf("the pre-warm job ended %s", state)
	}
	ev := f.event(s.ID)
	if ev == nil || !p.running(s.ID) {
		t.Fatalf("not pre-warmed: %+v", ev)
	}
	warmer, other := p.caddy, b
	if b.Metric("caddy_tenants_prewarm_starts_total") == 1 {
		warmer, other = b, p.caddy
	}
	if n, m := warmer.Metric("caddy_tenants_prewarm_starts_total"), other.Metric("caddy_tenants_prewarm_starts_total"); n != 1 || m != 0 {
		t.Fatalf("pre-warm starts %v and %v, want 1 and 0", n, m)
	}
	startedAt := func() string {
		t.Helper()
		cs := p.containers(s.ID)
		if len(cs) != 1 {
			t.Fatalf("%d containers of the site, want 1", len(cs))
		}
		c, err := p.docker.ContainerInspect(context.Background(), cs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return c.ID + " " + c.State.StartedAt
	}
	before := startedAt()
	time.Sleep(time.Until(ev.PrewarmedAt.Add(prewarm.ActivityResolution + 300*time.Millisecond)))
	if st, _, _, err := tryGetAt(other, host("pw-nodes"), "/", nil); err != nil || st != http.StatusOK {
		t.Fatalf("visitor through the other node: %d %v", st, err)
	}
	eventually(t, 15*time.Second, "the first visitor through the other node recorded", func() bool {
		ev = f.event(s.ID)
		return ev.FirstRequestAt != nil
	})
	if n := warmer.Metric("caddy_tenants_prewarm_hits_total"); n != 1 {
		t.Errorf("hits on the node that pre-warmed: %v, want 1", n)
	}
	if after := startedAt(); after != before {
		t.Errorf("the other node's request started the container again: %s, was %s", after, before)
	}
}
