package figures

import (
	"sync"
	"testing"
	"time"
)

var minute0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestRollMinutes(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	s := r.Site("a")
	for range 7 {
		s.Observe(200, 3*time.Millisecond)
	}
	s.Observe(502, 40*time.Millisecond)
	s.Observe(404, time.Millisecond)
	r.ColdStart("a", 800*time.Millisecond, true)
	r.ColdStart("a", 0, false)
	r.Site("idle")

	if dropped := r.Roll(minute0, map[string]Sample{"a": {MemoryBytes: 1 << 20}, "adopted": {MemoryBytes: 2 << 20, CPUPercent: 12.5, HasCPU: true}}, 2); dropped != 0 {
		t.Fatalf("dropped %d", dropped)
	}
	sites, platform := r.Pending()
	byID := map[string]Minute{}
	for _, m := range sites {
		byID[m.SiteID] = m
	}
	a := byID["a"]
	if a.Latency.Count() != 9 || a.Errors != 1 || a.ColdStarts != 1 || a.ColdStartTime != 800*time.Millisecond ||
		!a.At.Equal(minute0) || a.Container == nil || a.Container.MemoryBytes != 1<<20 || a.Container.HasCPU {
		t.Fatalf("minute of a: %+v", a)
	}
	if ad, ok := byID["adopted"]; !ok || ad.Container == nil || ad.Container.CPUPercent != 12.5 || ad.Latency.Count() != 0 {
		t.Fatalf("a container no request reached gets a minute of its sample: %+v", ad)
	}
	if _, ok := byID["idle"]; ok || len(sites) != 2 {
		t.Fatalf("a site with nothing to tell gets no minute: %+v", sites)
	}
	if len(platform) != 1 || platform[0].Running != 2 || platform[0].ColdStarts != 1 || platform[0].Failures != 1 {
		t.Fatalf("platform minute: %+v", platform)
	}
	if got, ok := r.Site("adopted").Sample(); !ok || got.MemoryBytes != 2<<20 {
		t.Fatalf("last sample: %+v %v", got, ok)
	}
	r.Saved()

	// The next minute holds only what came after.
	s.Observe(200, time.Millisecond)
	r.Roll(minute0.Add(time.Minute), nil, -1)
	sites, platform = r.Pending()
	if len(sites) != 1 || sites[0].Latency.Count() != 1 || sites[0].Errors != 0 || sites[0].ColdStarts != 0 || sites[0].Container != nil {
		t.Fatalf("second minute: %+v", sites)
	}
	if platform[0].Running != -1 || platform[0].ColdStarts != 0 {
		t.Fatalf("second platform minute: %+v", platform)
	}
	if _, ok := r.Site("a").Sample(); ok {
		t.Fatal("a site not sampled in the last roll-up has no sample")
	}
	tot := r.Totals()
	if tot.Latency.Count() != 10 || tot.Errors != 1 || tot.ColdStarts != 1 || tot.Failures != 1 {
		t.Fatalf("totals: %+v", tot)
	}
}

// While nothing is saved (the database is away) each site keeps its last
// RingMinutes minutes, and says how many it dropped.
func TestRingBounded(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	s := r.Site("a")
	var dropped int
	for i := range RingMinutes + 5 {
		s.Observe(200, time.Duration(i+1)*time.Millisecond)
		dropped += r.Roll(minute0.Add(time.Duration(i)*time.Minute), nil, 0)
	}
	sites, platform := r.Pending()
	if len(sites) != RingMinutes || len(platform) != RingMinutes || dropped != 10 {
		t.Fatalf("%d site minutes, %d platform minutes, %d dropped", len(sites), len(platform), dropped)
	}
	if first := sites[0].At; !first.Equal(minute0.Add(5 * time.Minute)) {
		t.Fatalf("oldest kept minute %s: the oldest are dropped", first)
	}
	r.Saved()
	if sites, platform := r.Pending(); len(sites)+len(platform) != 0 {
		t.Fatalf("after Saved: %d, %d", len(sites), len(platform))
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	r.Site("gone").Observe(500, time.Millisecond)
	r.Site("kept").Observe(200, time.Millisecond)
	r.Forget([]string{"gone", "never-known"})
	if ids := r.IDs(); len(ids) != 1 || ids[0] != "kept" {
		t.Fatalf("ids after Forget: %v", ids)
	}
	if tot := r.Totals(); tot.Latency.Count() != 2 || tot.Errors != 1 {
		t.Fatalf("the platform's totals keep a forgotten site's counts: %+v", tot)
	}
}

// Every request observed while minutes are rolled up concurrently is in
// exactly one minute.
func TestObserveWhileRolling(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	const workers, each = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := r.Site([]string{"a", "b"}[w%2])
			for i := range each {
				s.Observe(200+300*(i%2), time.Duration(i)*time.Microsecond)
			}
		}()
	}
	var requests, errors uint64
	roll := func(i int) {
		r.Roll(minute0.Add(time.Duration(i)*time.Minute), nil, 0)
		sites, _ := r.Pending()
		for _, m := range sites {
			requests += m.Latency.Count()
			errors += m.Errors
		}
		r.Saved()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
			roll(i)
			if requests != workers*each || errors != workers*each/2 {
				t.Fatalf("%d requests, %d errors in the minutes; want %d, %d", requests, errors, workers*each, workers*each/2)
			}
			return
		default:
			roll(i)
		}
	}
}

// The hot path: a known site's Observe takes no lock and allocates nothing.
func BenchmarkObserve(b *testing.B) {
	r := NewRecorder()
	r.Site("2f1d8a5e-0c1b-4a7e-9a55-6f1f2b3c4d5e")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Site("2f1d8a5e-0c1b-4a7e-9a55-6f1f2b3c4d5e").Observe(200, 4*time.Millisecond)
		}
	})
}
