package tenants

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A site's wake-ups per slot are its cold starts and the first visitors
// of its pre-warms, the earliest of each week's slot; sites that opted
// out, do not serve or run are no candidates; a slot is recorded once, a
// first visitor once; pruning removes old pre-warms.
func TestPrewarmHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	c, tpl, site := fixture(t, s)
	other := &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "other"}
	if err := s.CreateSite(ctx, "test", other); err != nil {
		t.Fatal(err)
	}
	slot := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	at := func(w int, d time.Duration) time.Time { return slot.Add(-time.Duration(w)*week + d) }
	cold := func(id string, t0 time.Time) SiteMinute {
		return SiteMinute{SiteID: id, At: t0, SiteBucket: SiteBucket{Requests: 1, Latency: []int64{1}, ColdStarts: 1}}
	}
	if _, err := s.SaveFigures(ctx, "a", FiguresBatch{Sites: []SiteMinute{
		cold(site.ID, at(1, 7*time.Minute)), cold(site.ID, at(1, 30*time.Minute)), // one week: the earliest
		{SiteID: site.ID, At: at(2, 2*time.Minute), SiteBucket: SiteBucket{Requests: 5, Latency: []int64{5}}}, // requests, no wake-up
		cold(site.ID, at(3, time.Hour)), // the next hour
		cold(site.ID, at(5, 0)),         // beyond the weeks
		cold(other.ID, at(1, 0)),
	}}); err != nil {
		t.Fatal(err)
	}
	// Week 2 was pre-warmed, its first visitor at 09:05.
	id, recorded, err := s.RecordPrewarm(ctx, site.ID, at(2, 0), 0.5, at(2, -2*time.Minute))
	if err != nil || !recorded {
		t.Fatalf("recording a pre-warm: %v %v", recorded, err)
	}
	if _, again, err := s.RecordPrewarm(ctx, site.ID, at(2, 0), 0.75, at(2, -time.Minute)); err != nil || again {
		t.Fatalf("the same slot recorded twice: %v %v", again, err)
	}
	if err := s.SetPrewarmFirstRequests(ctx, []PrewarmFirstRequest{{EventID: id, At: at(2, 5*time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPrewarmFirstRequests(ctx, []PrewarmFirstRequest{{EventID: id, At: at(2, 9*time.Minute)}}); err != nil {
		t.Fatal(err)
	}

	hist, err := s.PrewarmHistory(ctx, slot, 4)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(hist, func(a, b PrewarmHistory) int { return len(b.FirstRequests) - len(a.FirstRequests) })
	if len(hist) != 2 || hist[0].SiteID != site.ID || hist[1].SiteID != other.ID {
		t.Fatalf("history %+v", hist)
	}
	want := []time.Time{at(2, 5*time.Minute), at(1, 7*time.Minute)}
	if got := hist[0].FirstRequests; len(got) != 2 || !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
		t.Fatalf("wake-ups %v, want %v", got, want)
	}

	events, err := s.SitePrewarms(ctx, site.ID, 10)
	if err != nil || len(events) != 1 || events[0].Probability != 0.5 || events[0].FirstRequestAt == nil || !events[0].FirstRequestAt.Equal(at(2, 5*time.Minute)) {
		t.Fatalf("pre-warms %+v %v", events, err)
	}

	// Opted out, suspended or running: no candidate.
	exclude := func(what, sql string, args ...any) {
		t.Helper()
		if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
		hist, err := s.PrewarmHistory(ctx, slot, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hist {
			if h.SiteID == other.ID {
				t.Errorf("%s: still a candidate", what)
			}
		}
	}
	exclude("opted out", `UPDATE sites SET prewarm = false WHERE id = $1`, other.ID)
	exclude("suspended", `UPDATE sites SET prewarm = true, status = 'suspended' WHERE id = $1`, other.ID)
	if _, err := s.pool.Exec(ctx, `UPDATE sites SET status = 'active' WHERE id = $1`, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRuntimes(ctx, []SiteRuntime{{SiteID: other.ID, State: "running"}}); err != nil {
		t.Fatal(err)
	}
	exclude("running", `SELECT 1`)

	if err := s.PrunePrewarms(ctx, at(2, 0)); err != nil {
		t.Fatal(err)
	}
	if events, _ := s.SitePrewarms(ctx, site.ID, 10); len(events) != 0 {
		t.Fatalf("pruned pre-warms remain: %+v", events)
	}
}
