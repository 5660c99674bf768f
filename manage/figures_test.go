package manage

import (
	"context"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/figures"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func TestFigureSteps(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 34, 56, 0, time.UTC)
	for _, c := range []struct {
		window, step time.Duration
		since        time.Time
		wantStep     time.Duration
		n            int
	}{
		{0, 0, time.Date(2026, 11, 30, 12, 45, 0, 0, time.UTC), 15 * time.Minute, 96},
		{24 * time.Hour, time.Hour, time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC), time.Hour, 24},
		{time.Hour, 0, time.Date(2026, 12, 1, 11, 35, 0, 0, time.UTC), time.Minute, 60},
		{MaxFiguresWindow, 0, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), 12 * time.Hour, 60},
		{24 * time.Hour, time.Minute, time.Date(2026, 11, 30, 12, 35, 0, 0, time.UTC), time.Minute, 1440},
		{90 * time.Minute, time.Hour, time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), time.Hour, 2},
	} {
		since, step, n, err := figureSteps(now, c.window, c.step)
		if err != nil || !since.Equal(c.since) || step != c.wantStep || n != c.n {
			t.Errorf("window %s step %s: since %s step %s n %d %v; want %s %s %d", c.window, c.step, since, step, n, err, c.since, c.wantStep, c.n)
		}
		if end := since.Add(time.Duration(n) * step); !end.After(now) || end.Sub(now) > step {
			t.Errorf("window %s step %s: the last step ends %s, now is %s", c.window, c.step, end, now)
		}
	}
	for _, c := range []struct {
		window, step time.Duration
		field        string
	}{
		{30 * time.Second, 0, "window"},
		{MaxFiguresWindow + time.Minute, 0, "window"},
		{time.Hour, 30 * time.Second, "step"},
		{time.Hour, 90 * time.Second, "step"},
		{time.Hour, 2 * time.Hour, "step"},
		{-time.Hour, 0, "window"},
		{MaxFiguresWindow, time.Minute, "step"}, // 43200 points
	} {
		_, _, _, err := figureSteps(now, c.window, c.step)
		wantCode(t, err, Invalid, c.field)
	}
}

// Figures as the service answers them: two nodes' minutes added up, the
// percentiles of their merged histograms, a point for every step of the
// counts and only where there is one of the rest.
func TestSiteFigures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, Config{})
	if _, err := s.CreateCustomer(ctx, "t", CustomerInput{Email: "ada@example.org", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}); err != nil {
		t.Fatal(err)
	}
	site, err := s.CreateSite(ctx, "t", SiteInput{Customer: "ada@example.org", Template: "static", Subdomain: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	minute := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute)
	// Node a: 90 fast requests; node b: 10 slow ones, 4 of them errors.
	var fast, slow figures.Histogram
	fast[2], slow[figures.Buckets-3] = 90, 10
	mem := int64(32 << 20)
	for node, m := range map[string]tenants.SiteMinute{
		"a": {SiteID: site.ID, At: minute, SiteBucket: tenants.SiteBucket{Requests: 90, Latency: fast.Counts(), ColdStarts: 1, ColdStartMs: 700, MemoryBytes: &mem}},
		"b": {SiteID: site.ID, At: minute, SiteBucket: tenants.SiteBucket{Requests: 10, Errors: 4, Latency: slow.Counts(), ColdStarts: 1, ColdStartMs: 300}},
	} {
		one := int64(1)
		if _, err := s.store.SaveFigures(ctx, node, tenants.FiguresBatch{Sites: []tenants.SiteMinute{m},
			Platform: []tenants.PlatformMinute{{At: minute, PlatformBucket: tenants.PlatformBucket{Running: &one, ColdStarts: 1}}}}); err != nil {
			t.Fatal(err)
		}
	}

	f, err := s.SiteFigures(ctx, "ada", time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if f.SiteID != site.ID || f.Step != time.Minute || len(f.Requests.Points) != 60 || len(f.Errors.Points) != 60 || len(f.ColdStarts.Points) != 60 {
		t.Fatalf("figures: %s step %s, %d request points", f.SiteID, f.Step, len(f.Requests.Points))
	}
	at := func(s Series) (float64, bool) {
		for _, p := range s.Points {
			if p.At.Equal(minute) {
				return p.Value, true
			}
		}
		return 0, false
	}
	want := map[*Series]float64{&f.Requests: 100, &f.Errors: 4, &f.ColdStarts: 2, &f.ColdStartMs: 500, &f.Memory: float64(mem)}
	for series, v := range want {
		if got, ok := at(*series); !ok || got != v {
			t.Errorf("%s at the minute: %v %v, want %v", series.Name, got, ok, v)
		}
	}
	p50, _ := at(f.LatencyP50)
	p95, _ := at(f.LatencyP95)
	if p50 <= 2 || p50 > 3 || p95 < 20_000 || p95 > 30_000 {
		t.Errorf("p50 %v ms (want within the fast bucket, (2, 3]), p95 %v ms (want within the slow one)", p50, p95)
	}
	if len(f.LatencyP50.Points) != 1 || len(f.CPU.Points) != 0 || len(f.Memory.Points) != 1 {
		t.Errorf("latency, CPU and memory have points only where there is a value: %d, %d, %d",
			len(f.LatencyP50.Points), len(f.CPU.Points), len(f.Memory.Points))
	}
	if f.Requests.Unit != "requests" || f.LatencyP95.Unit != "ms" || f.Memory.Unit != "bytes" || f.CPU.Unit != "percent" {
		t.Errorf("units: %+v", f)
	}

	pf, err := s.PlatformFigures(ctx, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	var starts, running float64
	for _, p := range pf.ColdStarts.Points {
		starts += p.Value
	}
	for _, p := range pf.Running.Points {
		running = max(running, p.Value)
	}
	if starts != 2 || running != 1 || len(pf.Running.Points) != 1 || pf.Step != time.Minute {
		t.Errorf("platform: %v cold starts, %v running (%d points), step %s", starts, running, len(pf.Running.Points), pf.Step)
	}

	_, err = s.SiteFigures(ctx, "nosuch", 0, 0)
	wantCode(t, err, NotFound, "")
	_, err = s.SiteFigures(ctx, "ada", time.Hour, 7*time.Second)
	wantCode(t, err, Invalid, "step")
}
