package tenants

import (
	"context"
	"slices"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// Two nodes' minutes of one site add up (a minute saved twice too), the
// window's steps merge minutes, samples take the highest node and the
// mean (CPU) or highest (memory) minute, and pruning removes every node's
// old rows.
func TestFiguresAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)
	m0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	m1 := m0.Add(time.Minute)
	deleted := "00000000-0000-4000-8000-000000000001"

	save := func(node string, b FiguresBatch) []string {
		t.Helper()
		gone, err := s.SaveFigures(ctx, node, b)
		if err != nil {
			t.Fatalf("saving %s's figures: %v", node, err)
		}
		return gone
	}
	gone := save("a", FiguresBatch{
		Sites: []SiteMinute{
			{SiteID: site.ID, At: m0, SiteBucket: SiteBucket{Requests: 10, Errors: 2, Latency: []int64{5, 3, 2}, ColdStarts: 1, ColdStartMs: 500,
				CPUPercent: ptr(10.0), MemoryBytes: ptr(int64(100))}},
			{SiteID: site.ID, At: m1, SiteBucket: SiteBucket{Requests: 4, Latency: []int64{0, 0, 0, 4}, CPUPercent: ptr(50.0), MemoryBytes: ptr(int64(50))}},
			{SiteID: deleted, At: m0, SiteBucket: SiteBucket{Requests: 1, Latency: []int64{1}}},
			{SiteID: "not-an-id", At: m0, SiteBucket: SiteBucket{Requests: 1}},
		},
		Platform: []PlatformMinute{{At: m0, PlatformBucket: PlatformBucket{Running: ptr(int64(2)), ColdStarts: 1}}, {At: m1}},
		Known:    []string{site.ID, deleted},
	})
	if !slices.Equal(gone, []string{deleted}) {
		t.Fatalf("gone: %v, want the deleted site", gone)
	}
	save("b", FiguresBatch{
		Sites: []SiteMinute{{SiteID: site.ID, At: m0, SiteBucket: SiteBucket{Requests: 6, Errors: 1, Latency: []int64{1, 0, 0, 0, 5},
			CPUPercent: ptr(30.0), MemoryBytes: ptr(int64(300))}}},
		Platform: []PlatformMinute{{At: m0, PlatformBucket: PlatformBucket{Running: ptr(int64(3)), Failures: 1}}},
	})
	// Node a's retry of part of minute 0 (a roll-up that straddled it).
	save("a", FiguresBatch{Sites: []SiteMinute{{SiteID: site.ID, At: m0, SiteBucket: SiteBucket{Requests: 1, Latency: []int64{1}}}}})

	byMinute, err := s.SiteFigures(ctx, site.ID, m0, time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	b0, b1, b2 := byMinute[0], byMinute[1], byMinute[2]
	if b0.Requests != 17 || b0.Errors != 3 || b0.ColdStarts != 1 || b0.ColdStartMs != 500 ||
		!slices.Equal(b0.Latency, []int64{7, 3, 2, 0, 5}) || *b0.CPUPercent != 30 || *b0.MemoryBytes != 300 {
		t.Fatalf("minute 0, nodes added up: %+v", b0)
	}
	if b1.Requests != 4 || !slices.Equal(b1.Latency, []int64{0, 0, 0, 4}) || *b1.CPUPercent != 50 || *b1.MemoryBytes != 50 {
		t.Fatalf("minute 1: %+v", b1)
	}
	if b2.Requests != 0 || b2.Latency != nil || b2.CPUPercent != nil || b2.MemoryBytes != nil {
		t.Fatalf("an empty minute: %+v", b2)
	}

	byTwo, err := s.SiteFigures(ctx, site.ID, m0, 2*time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b := byTwo[0]; b.Requests != 21 || !slices.Equal(b.Latency, []int64{7, 3, 2, 4, 5}) || *b.CPUPercent != 40 || *b.MemoryBytes != 300 {
		t.Fatalf("two minutes in one step: %+v (CPU the mean of the minutes' 30 and 50, memory their highest)", b)
	}

	platform, err := s.PlatformFigures(ctx, m0, time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	if p := platform[0]; p.ColdStarts != 1 || p.Failures != 1 || p.Running == nil || *p.Running != 3 {
		t.Fatalf("platform minute 0: %+v", p)
	}
	if p := platform[1]; p.Running != nil || p.ColdStarts != 0 {
		t.Fatalf("platform minute 1, the engine not asked: %+v", p)
	}

	// Pruning removes every node's rows before the cut, and keeps the rest.
	save("c", FiguresBatch{Before: m1})
	byMinute, err = s.SiteFigures(ctx, site.ID, m0, time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	if byMinute[0].Requests != 0 || byMinute[0].MemoryBytes != nil || byMinute[1].Requests != 4 {
		t.Fatalf("after pruning minute 0: %+v", byMinute)
	}
	if platform, _ = s.PlatformFigures(ctx, m0, time.Minute, 2); platform[0].ColdStarts != 0 || platform[0].Running != nil {
		t.Fatalf("platform after pruning: %+v", platform)
	}

	// A deleted site's figures go with it.
	if err := s.DeleteSite(ctx, "test", site.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SiteFigures(ctx, "not-an-id", m0, time.Minute, 1); err != ErrNotFound {
		t.Fatalf("a malformed id: %v", err)
	}
	var rows int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM site_figures`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d rows left of a deleted site, %v", rows, err)
	}
}
