package prewarm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/prewarm"
)

// With room for one, Warm starts the likeliest site and leaves the next
// asleep; it leaves a running site alone, does nothing for a slot that
// has begun, and its pre-warm's first visitor is found (by activity
// after the pre-warm), or none when the site went back to sleep.
func TestWarmOrderRoomAndVisitors(t *testing.T) {
	ctx := context.Background()
	p := newSimPlatform([]string{"likely", "less", "running", "never"})
	p.maxRunning = 2
	slot := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	p.now = slot.Add(-2 * time.Minute)
	for w := 1; w <= 4; w++ {
		at := slot.Add(-time.Duration(w)*prewarm.Week + 3*time.Minute)
		p.wakeups["likely"] = append(p.wakeups["likely"], at)
		if w <= 2 {
			p.wakeups["less"] = append(p.wakeups["less"], at)
		}
		p.wakeups["running"] = append(p.wakeups["running"], at)
	}
	p.start("running")
	s := prewarm.New(prewarm.Config{Store: p, Engine: p, Now: func() time.Time { return p.now }})

	rep, err := s.Warm(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Started, []string{"likely"}) || !slices.Equal(rep.NoRoom, []string{"less"}) || !slices.Equal(rep.Running, []string{"running"}) {
		t.Fatalf("report %+v", rep)
	}
	if d := rep.Decisions; len(d) != 4 || d[0].Probability != 1 || d[len(d)-1].SiteID != "never" || d[len(d)-1].Warm {
		t.Fatalf("decisions %v", d)
	}
	if p.refused != 0 || p.running() != 2 || len(p.events) != 1 || p.events[0].Probability != 1 || !p.events[0].Slot.Equal(slot) {
		t.Fatalf("refused %d, running %d, events %+v", p.refused, p.running(), p.events)
	}

	// Activity within ActivityResolution of the pre-warm is the
	// pre-warm's own as far as the stamps tell: no visitor yet.
	warmedAt := p.now
	p.now = warmedAt.Add(prewarm.ActivityResolution / 2)
	p.request("likely")
	s.Observe(p.now.Add(time.Second), p.activity())
	if s.Pending() != 1 || s.Stats().Hits != 0 {
		t.Fatalf("activity within the stamps' resolution counted as a visitor: pending %d, stats %+v", s.Pending(), s.Stats())
	}
	// No visitor yet: still pending; then one at 09:01.
	p.now = warmedAt.Add(time.Minute)
	s.Observe(p.now, p.activity())
	if s.Pending() != 1 {
		t.Fatalf("pending %d", s.Pending())
	}
	p.now = slot.Add(time.Minute)
	p.request("likely")
	s.Observe(p.now.Add(time.Second), p.activity())
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if at, ok := p.firsts[1]; !ok || !at.Equal(slot.Add(time.Minute)) || s.Pending() != 0 || s.Stats() != (prewarm.Stats{Starts: 1, Hits: 1}) {
		t.Fatalf("first visitor %v %v, pending %d, stats %+v", at, ok, s.Pending(), s.Stats())
	}

	// The next slot: warmed, then asleep again with no visitor.
	next := slot.Add(prewarm.Week)
	p.sites["likely"].running, p.sites["running"].running = false, false
	p.now = next.Add(-2 * time.Minute)
	if rep, err := s.Warm(ctx, next); err != nil || len(rep.Started) != 2 {
		t.Fatalf("next week: %+v %v", rep, err)
	}
	// Out of sight for a moment (a node's container replaced, a node not
	// reporting yet) is no sleep: the visitor after is still found.
	s.Observe(next.Add(-time.Minute), nil)
	if s.Pending() != 2 {
		t.Fatalf("pending %d after one round with the sites in use nowhere, want 2", s.Pending())
	}
	s.Observe(next.Add(-time.Minute+time.Second), p.activity())
	p.now = next.Add(20 * time.Minute)
	p.reap()
	s.Observe(p.now, p.activity())
	if s.Pending() != 2 {
		t.Fatalf("pending %d right after the idle stop, want 2 (asleep only after a few rounds)", s.Pending())
	}
	s.Observe(p.now.Add(6*time.Second), p.activity())
	if s.Pending() != 0 || s.Stats().Hits != 1 || len(p.firsts) != 1 {
		t.Fatalf("asleep without a visitor: pending %d, stats %+v, firsts %v", s.Pending(), s.Stats(), p.firsts)
	}

	// A slot that has begun is its visitors' to wake.
	if rep, err := s.Warm(ctx, p.now); err != nil || len(rep.Decisions)+len(rep.Started) != 0 {
		t.Fatalf("a begun slot: %+v %v", rep, err)
	}
}
