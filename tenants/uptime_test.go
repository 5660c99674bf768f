package tenants

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Changes of state make one history per site, whichever node reports
// them: repeats and stale reports change nothing, a peer's view of a stop
// (a failure moments after a sleep, or before it) is the sleep, removal
// ends the open interval, reads clip to the window, and pruning removes
// only what ended before the retention.
func TestUptimeIntervals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second).UTC()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	record := func(state string, when time.Time) {
		t.Helper()
		if err := s.RecordUptime(ctx, site.ID, state, when); err != nil {
			t.Fatalf("recording %q at %s: %v", state, when, err)
		}
	}
	history := func(since, until time.Time) string {
		t.Helper()
		list, err := s.Uptime(ctx, site.ID, since, until)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range list {
			end := "open"
			if in.EndedAt != nil {
				end = in.EndedAt.Sub(t0).String()
			}
			out = append(out, in.State+"@"+in.StartedAt.Sub(t0).String()+"-"+end)
		}
		return strings.Join(out, " ")
	}

	record(UptimeUp, at(0))
	record(UptimeUp, at(time.Second))                      // another node: the same state
	record(UptimeUnhealthy, at(time.Minute))               // the checks fail
	record(UptimeUp, at(30*time.Second))                   // stale: before the open interval began
	record(UptimeUp, at(2*time.Minute))                    // healthy again
	record(UptimeAsleep, at(10*time.Minute))               // idle stop
	record(UptimeFailed, at(10*time.Minute+time.Second))   // a peer heard of the exit
	record(UptimeFailed, at(20*time.Minute))               // it did not start
	record(UptimeAsleep, at(20*time.Minute+2*time.Second)) // ... no: a peer's stop it heard of first
	record(UptimeUp, at(30*time.Minute))
	record("", at(40*time.Minute)) // removed

	want := "up@0s-1m0s unhealthy@1m0s-2m0s up@2m0s-10m0s asleep@10m0s-20m0s asleep@20m0s-30m0s up@30m0s-40m0s"
	if got := history(at(-time.Hour), at(time.Hour)); got != want {
		t.Fatalf("history:\n got %s\nwant %s", got, want)
	}
	// Clipped to the window: the interval open at its end has no end.
	if got := history(at(90*time.Second), at(5*time.Minute)); got != "unhealthy@1m30s-2m0s up@2m0s-open" {
		t.Fatalf("clipped: %s", got)
	}
	record(UptimeUp, at(50*time.Minute))
	if got := history(at(45*time.Minute), at(time.Hour)); got != "up@50m0s-open" {
		t.Fatalf("after removal: %s", got)
	}

	// Prune with a retention that keeps what ended 15 minutes in or
	// later.
	n, err := s.PruneUptime(ctx, time.Since(at(15*time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if got := history(at(-time.Hour), at(time.Hour)); n != 3 || got != "asleep@10m0s-20m0s asleep@20m0s-30m0s up@30m0s-40m0s up@50m0s-open" {
		t.Fatalf("pruned %d: %s", n, got)
	}

	if err := s.RecordUptime(ctx, "00000000-0000-4000-8000-000000000001", UptimeUp, t0); err != nil {
		t.Fatalf("a deleted site: %v", err)
	}
}

// A template's health settings are bounded; 0 takes the defaults and
// restart_after -1 turns restarts off.
func TestTemplateHealthSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	tpl := &Template{Slug: "checked", Name: "Checked", Image: "img", Port: 80, HealthPath: "/health",
		HealthIntervalMs: 500, UnhealthyAfter: 2, RestartAfter: -1}
	if err := s.CreateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTemplate(ctx, tpl.ID)
	if err != nil || got.HealthIntervalMs != 500 || got.UnhealthyAfter != 2 || got.RestartAfter != -1 {
		t.Fatalf("stored: %+v %v", got, err)
	}
	for _, c := range []struct {
		field string
		mod   func(*Template)
	}{
		{"health_interval_ms", func(t *Template) { t.HealthIntervalMs = 50 }},
		{"health_interval_ms", func(t *Template) { t.HealthIntervalMs = -1 }},
		{"unhealthy_after", func(t *Template) { t.UnhealthyAfter = -1 }},
		{"restart_after", func(t *Template) { t.RestartAfter = -2 }},
	} {
		bad := *got
		c.mod(&bad)
		var verr *ValidationError
		if err := s.UpdateTemplate(ctx, "test", &bad); !errors.As(err, &verr) || verr.Field != c.field {
			t.Errorf("%+v: %v, want a validation error of %s", bad, err, c.field)
		}
	}
}
