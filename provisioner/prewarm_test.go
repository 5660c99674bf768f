package provisioner

import (
	"context"
	"errors"
	"testing"
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
