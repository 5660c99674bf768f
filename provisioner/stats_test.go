package provisioner

import (
	"context"
	"testing"
	"time"
)

// The engine's stats of a running site container: its real memory, and
// the CPU it burned between two samples.
func TestSampleStats(t *testing.T) {
	t.Parallel()
	p := newProv(t, nil)
	site := randID("s")
	upstream := ensure(t, p, testSpec(site))
	ctx := context.Background()

	sample := func() ContainerStats {
		t.Helper()
		running, stats, err := p.SampleStats(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if running != 1 || len(stats) != 1 || stats[0].SiteID != site {
			t.Fatalf("running %d, stats %+v: want the one site", running, stats)
		}
		return stats[0]
	}
	first := sample()
	if first.MemoryBytes == 0 || first.CPUTotal == 0 || first.OnlineCPUs == 0 || first.Read.IsZero() {
		t.Fatalf("first sample: %+v", first)
	}
	if first.ContainerID != p.Status(site).ContainerID {
		t.Fatalf("sampled container %s, the site's is %s", first.ContainerID, p.Status(site).ContainerID)
	}
	if _, ok := first.CPUPercent(ContainerStats{}); ok {
		t.Fatal("CPU use from a first sample alone")
	}

	get(t, upstream, "/burn?ms=300")
	second := sample()
	cpu, ok := second.CPUPercent(first)
	if !ok || cpu <= 0 || cpu > 100*float64(second.OnlineCPUs) {
		t.Fatalf("CPU between the samples: %v %v (burned 300 ms; %+v then %+v)", cpu, ok, first, second)
	}

	if err := p.StopSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	if running, stats, err := p.SampleStats(ctx, 2); err != nil || running != 0 || len(stats) != 0 {
		t.Fatalf("after the stop: %d running, %+v, %v", running, stats, err)
	}
}

// A start that requests waited for is reported once, on the node that
// started the container; a node that finds it running reports none; a
// failed start is reported as failed.
func TestOnColdStart(t *testing.T) {
	t.Parallel()
	type report struct {
		site string
		ok   bool
		took time.Duration
	}
	reports := make(chan report, 16)
	hook := func(c *Config) {
		c.OnColdStart = func(siteID string, took time.Duration, ok bool) { reports <- report{siteID, ok, took} }
	}
	p1 := newProv(t, hook)
	cfg := p1.cfg
	p2 := startProv(t, cfg)
	site := randID("s")
	ensure(t, p1, testSpec(site))
	if r := <-reports; r.site != site || !r.ok || r.took <= 0 {
		t.Fatalf("report of the start: %+v", r)
	}
	ensure(t, p2, testSpec(site)) // running already: the other node's container
	failing := randID("s")
	if _, err := p1.Ensure(context.Background(), testSpec(failing, "EXIT_AT_START", "1")); err == nil {
		t.Fatal("a container that exits at start started")
	}
	if r := <-reports; r.site != failing || r.ok {
		t.Fatalf("report after the failed start: %+v (the second node reported a start it did not make?)", r)
	}
	if len(reports) != 0 {
		t.Fatalf("more reports: %+v", <-reports)
	}
}
