package provisioner

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// scaleRecorder keeps the OnScale events of a provisioner.
type scaleRecorder struct {
	mu     sync.Mutex
	events []ScaleEvent
}

func (r *scaleRecorder) record(e ScaleEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *scaleRecorder) steps() [][2]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][2]int
	for _, e := range r.events {
		out = append(out, [2]int{e.From, e.To})
	}
	return out
}

func fastScaling(rec *scaleRecorder) func(*Config) {
	return func(c *Config) {
		c.ScaleInterval = 50 * time.Millisecond
		c.ScaleUpWindow = 300 * time.Millisecond
		c.ScaleDownWindow = 1500 * time.Millisecond
		c.OnScale = rec.record
	}
}

// hold begins n requests of siteID and returns what ends them.
func hold(p *Provisioner, siteID string, n int) (release func()) {
	ends := make([]func(), n)
	for i := range ends {
		ends[i] = p.Begin(siteID)
	}
	return func() {
		for _, end := range ends {
			end()
		}
	}
}

// TestAutoscaleOnDocker: requests in flight above the target grow a site
// to its max replicas one at a time, each a container of its own that
// answers; another provisioner on the engine adopts them all; without
// the load it shrinks back to one replica, and the extra containers go.
func TestAutoscaleOnDocker(t *testing.T) {
	rec := &scaleRecorder{}
	p := newProv(t, fastScaling(rec))
	id := randID("as")
	spec := testSpec(id)
	spec.MaxReplicas, spec.TargetConcurrency = 3, 2
	first := ensure(t, p, spec)
	if got := p.Upstreams(id); !slices.Equal(got, []string{first}) {
		t.Fatalf("upstreams after the start = %v, want [%s]", got, first)
	}

	release := hold(p, id, 7) // 7 > 2 x 3: up to 3
	waitFor(t, 60*time.Second, "3 replicas", func() bool { return len(p.Upstreams(id)) == 3 })
	ups := slices.Clone(p.Upstreams(id))
	if ups[0] != first {
		t.Errorf("the first replica changed: %v, was %s", ups, first)
	}
	hostnames := map[string]bool{}
	for _, u := range ups {
		hostnames[get(t, u, "/hostname")] = true
	}
	if len(hostnames) != 3 {
		t.Errorf("hostnames of the 3 replicas = %v, want 3 distinct", hostnames)
	}
	if n := len(siteContainers(t, p.cfg.Namespace, id)); n != 3 {
		t.Errorf("site has %d containers, want 3", n)
	}
	if st := p.Status(id); st.Replicas != 3 || st.MaxReplicas != 3 || len(st.Upstreams) != 3 {
		t.Errorf("status: replicas %d of max %d, upstreams %v; want 3 of 3", st.Replicas, st.MaxReplicas, st.Upstreams)
	}
	if got := metricValue(t, p.metrics.extraReplicas); got != 2 {
		t.Errorf("extra_replicas = %v, want 2", got)
	}

	// A second process on the engine (a restart, another node) serves
	// from all three.
	p2 := startProv(t, Config{Client: p.cfg.Client, Namespace: p.cfg.Namespace, StartTimeout: 30 * time.Second,
		StopTimeout: 2 * time.Second, Logger: p.log.Named("second")})
	if got := p2.Upstreams(id); !slices.Equal(got, ups) {
		t.Errorf("adopted upstreams = %v, want %v", got, ups)
	}

	release()
	waitFor(t, 60*time.Second, "1 replica", func() bool { return len(p.Upstreams(id)) == 1 })
	if got := p.Upstreams(id); got[0] != first {
		t.Errorf("upstreams after the scale-down = %v, want [%s]", got, first)
	}
	waitFor(t, 10*time.Second, "the extra containers removed", func() bool {
		return len(siteContainers(t, p.cfg.Namespace, id)) == 1
	})
	// The other process saw them go (their die events).
	waitFor(t, 10*time.Second, "the second process down to 1 replica", func() bool {
		return len(p2.Upstreams(id)) == 1
	})
	if got := get(t, first, "/hostname"); got == "" {
		t.Error("the first replica no longer answers")
	}
	want := [][2]int{{1, 2}, {2, 3}, {3, 2}, {2, 1}}
	// Recorded once the scale is done, after the containers went.
	waitFor(t, 10*time.Second, "4 scale events", func() bool { return len(rec.steps()) >= len(want) })
	if got := rec.steps(); !slices.Equal(got, want) {
		t.Errorf("scale events = %v, want %v", got, want)
	}
	for _, e := range rec.events {
		if e.Reason == "" || e.SiteID != id {
			t.Errorf("scale event %+v: no reason, or another site's", e)
		}
	}
	if got := metricValue(t, p.metrics.extraReplicas); got != 0 {
		t.Errorf("extra_replicas = %v, want 0", got)
	}
}

// TestAutoscaleWithinMaxRunning: extra replicas count under MaxRunning,
// and a scale-up takes free room only.
func TestAutoscaleWithinMaxRunning(t *testing.T) {
	rec := &scaleRecorder{}
	p := newProv(t, func(c *Config) {
		fastScaling(rec)(c)
		c.MaxRunning = 2
	})
	id := randID("as")
	spec := testSpec(id)
	spec.DataPath = ""
	spec.MaxReplicas, spec.TargetConcurrency = 3, 1
	ensure(t, p, spec)
	release := hold(p, id, 10)
	defer release()
	waitFor(t, 60*time.Second, "2 replicas", func() bool { return len(p.Upstreams(id)) == 2 })
	waitFor(t, 10*time.Second, "a scale-up refused for capacity", func() bool {
		return metricValue(t, p.metrics.scales.WithLabelValues("up", "capacity")) > 0
	})
	if n := len(p.Upstreams(id)); n != 2 {
		t.Errorf("%d replicas under max_running 2", n)
	}
	// A second site finds no room: the extra replica is busy, not idle.
	other := testSpec(randID("as"))
	other.DataPath = ""
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Ensure(ctx, other); !errors.Is(err, ErrCapacity) {
		t.Errorf("a third container under max_running 2: %v, want ErrCapacity", err)
	}
}

// A backend replaced by a scale counts the requests still in flight on
// the ones before it, and lets go of those with none.
func TestBackendChain(t *testing.T) {
	var clock coarseClock
	clock.set()
	st := newSiteState("chain", &clock)
	rep := func(id string) Replica { return Replica{ID: id, Upstream: id + ":80"} }
	b1 := newBackend(st, &clock, []Replica{rep("a")})
	b2 := newBackend(st, &clock, []Replica{rep("a"), rep("b")})
	b2.prev.Store(b1)
	b3 := newBackend(st, &clock, []Replica{rep("a")})
	b3.prev.Store(b2)
	b1.inflight.Add(1)
	b3.inflight.Add(1)
	if !b3.busy() || b3.prev.Load() != b2 || b2.prev.Load() != b1 {
		t.Fatal("b3 not busy, or its chain cut, with requests on b1 and b3")
	}
	b3.inflight.Add(-1)
	if !b3.busy() {
		t.Fatal("b3 not busy with a request on b1")
	}
	b1.inflight.Add(-1)
	if b3.busy() || b3.prev.Load() != nil {
		t.Fatalf("b3 busy %v, prev %p: want idle and the chain let go", b3.busy(), b3.prev.Load())
	}
	if got, ok := b2.without("b:80"); !ok || len(got) != 1 || got[0].ID != "a" {
		t.Errorf("without(b:80) = %v, %v", got, ok)
	}
}

// A site's policy is asked of Refresh again while it runs: a plan that
// lets it scale (max_replicas raised without a release) takes effect.
func TestAutoscalePolicyRefresh(t *testing.T) {
	rec := &scaleRecorder{}
	var mu sync.Mutex
	maxReplicas := 1
	p := newProv(t, func(c *Config) {
		fastScaling(rec)(c)
		c.ScalePolicyRefresh = 200 * time.Millisecond
		c.Refresh = func(_ context.Context, spec Spec) (Spec, error) {
			mu.Lock()
			defer mu.Unlock()
			spec.MaxReplicas, spec.TargetConcurrency = maxReplicas, 1
			return spec, nil
		}
	})
	id := randID("as")
	spec := testSpec(id)
	spec.DataPath = ""
	ensure(t, p, spec)
	release := hold(p, id, 4)
	defer release()
	time.Sleep(time.Second) // windows over: still one replica, the policy says 1
	if n := len(p.Upstreams(id)); n != 1 {
		t.Fatalf("%d replicas at max_replicas 1", n)
	}
	mu.Lock()
	maxReplicas = 2
	mu.Unlock()
	waitFor(t, 30*time.Second, "2 replicas once the policy allows them", func() bool { return len(p.Upstreams(id)) == 2 })
	if st := p.Status(id); st.MaxReplicas != 2 {
		t.Errorf("status max_replicas %d, want 2", st.MaxReplicas)
	}
}
