package provisioner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// StartIfRoom starts into free room, and at MaxRunning fails with
// ErrCapacity where Ensure would stop the least recently used idle site:
// the idle site keeps running. Room made, it starts.
func TestStartIfRoomNeverEvicts(t *testing.T) {
	t.Parallel()
	p := newProv(t, func(c *Config) { c.MaxRunning = 1 })
	idle, early := randID("idle"), randID("early")
	ensure(t, p, testSpec(idle))
	if _, err := p.StartIfRoom(context.Background(), testSpec(early)); !errors.Is(err, ErrCapacity) {
		t.Fatalf("StartIfRoom at max_running: %v, want ErrCapacity", err)
	}
	if _, ok := p.Upstream(idle); !ok {
		t.Fatal("the idle site was stopped to make room for StartIfRoom")
	}
	if _, ok := p.Upstream(early); ok || p.Running() != 1 {
		t.Fatalf("started beyond max_running: running %d", p.Running())
	}
	if got := metricValue(t, p.metrics.evictions); got != 0 {
		t.Errorf("evictions = %v", got)
	}
	if err := p.StopSite(context.Background(), idle); err != nil {
		t.Fatal(err)
	}
	upstream, err := p.StartIfRoom(context.Background(), testSpec(early))
	if err != nil {
		t.Fatalf("StartIfRoom with room: %v", err)
	}
	if got := get(t, upstream, "/"); got == "" {
		t.Fatal("the started site does not answer")
	}
	// A request's start is Ensure's again: it evicts the idle site.
	ensure(t, p, testSpec(idle))
	if _, ok := p.Upstream(early); ok {
		t.Fatal("a request's start did not make room")
	}
}

// A request that comes while a pre-warm of its site finds no room is not
// refused with it: it waits for the pre-warm's start and, that one having
// found no room, makes room itself. The pre-warm is no cold start in the
// metrics.
func TestRequestDuringStartIfRoomMakesRoom(t *testing.T) {
	t.Parallel()
	// The pre-warm's start is held in its spec refresh (before it asks
	// for room) until the request is on its way.
	entered, release := make(chan struct{}), make(chan struct{})
	var held sync.Once
	p := newProv(t, func(c *Config) {
		c.MaxRunning = 1
		c.Refresh = func(_ context.Context, s Spec) (Spec, error) {
			if s.SiteID != "" && s.Env["HOLD"] == "1" {
				held.Do(func() { close(entered); <-release })
			}
			return s, nil
		}
	})
	idle, site := randID("idle"), randID("site")
	ensure(t, p, testSpec(idle))
	colds := metricValue(t, p.metrics.coldStarts.WithLabelValues("started"))
	spec := testSpec(site)
	spec.Env = map[string]string{"HOLD": "1"}
	var warmErr error
	warmed := make(chan struct{})
	go func() {
		defer close(warmed)
		_, warmErr = p.StartIfRoom(context.Background(), spec)
	}()
	<-entered
	type result struct {
		upstream string
		err      error
	}
	requested := make(chan result, 1)
	go func() {
		u, err := p.Ensure(context.Background(), spec)
		requested <- result{u, err}
	}()
	time.Sleep(50 * time.Millisecond) // the request reaches Ensure's wait
	close(release)
	<-warmed
	r := <-requested
	if !errors.Is(warmErr, ErrCapacity) {
		t.Fatalf("the pre-warm at max_running: %v, want ErrCapacity", warmErr)
	}
	if r.err != nil {
		t.Fatalf("the request during the pre-warm: %v, want it to make room", r.err)
	}
	if got := get(t, r.upstream, "/"); got == "" {
		t.Fatal("the site does not answer")
	}
	if _, ok := p.Upstream(idle); ok {
		t.Fatal("the idle site still runs: no room was made")
	}
	if got := metricValue(t, p.metrics.coldStarts.WithLabelValues("started")); got != colds+1 {
		t.Fatalf("cold starts %v → %v, want the request's start only", colds, got)
	}
}
