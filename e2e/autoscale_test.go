package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// hostnameLoad sends GET /hostname?ms=… to host through Caddy from
// workers goroutines until stop, counting the replicas that answered
// (their hostnames) and every answer that was not a 200 with one.
type hostnameLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	hostnames  map[string]int
	failures   map[string]bool
	done       chan struct{}
	wg         sync.WaitGroup
}

func (p *testPlatform) hostnameLoad(host string, workers int, sleep time.Duration) *hostnameLoad {
	l := &hostnameLoad{hostnames: map[string]int{}, failures: map[string]bool{}, done: make(chan struct{})}
	path := fmt.Sprintf("/hostname?ms=%d", sleep.Milliseconds())
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				st, body, _, err := p.tryGet(host, path, nil)
				l.mu.Lock()
				if err != nil || st != http.StatusOK || body == "" {
					l.failed.Add(1)
					l.failures[fmt.Sprint(st, " ", err)] = true
				} else {
					l.ok.Add(1)
					l.hostnames[body]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *hostnameLoad) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hostnames)
}

func (l *hostnameLoad) stop() {
	close(l.done)
	l.wg.Wait()
}

// Autoscaling through Caddy: a load over the template's target
// concurrency grows the site to max_replicas, every replica answers
// (distinct hostnames), the status and metrics say so; once the load
// drops it shrinks back to one replica; not one request fails
// throughout, and the decisions are recorded.
func TestAutoscaleThroughCaddy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{
		Tenants: "scale_up_window 1s\n\t\tscale_down_window 5s",
		Sites:   fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost),
		BeforeCaddy: func(p *testPlatform) {
			p.template.MaxReplicas, p.template.TargetConcurrency = 3, 2
			if err := p.store.UpdateTemplate(ctx, "e2e", p.template); err != nil {
				t.Fatal(err)
			}
		},
	})
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	ap := &adminPlatform{testPlatform: p, token: token}
	s := p.site("scaling", nil)
	if st, body, _ := p.get(host("scaling"), "/hostname", nil); st != http.StatusOK || body == "" {
		t.Fatalf("first request: %d %q", st, body)
	}
	status := func() manage.RuntimeStatus {
		var rs manage.RuntimeStatus
		if st, _, body := ap.api(token, http.MethodGet, "/api/v1/sites/"+s.ID+"/status", nil, &rs); st != http.StatusOK {
			t.Fatalf("status: %d %s", st, body)
		}
		return rs
	}
	if rs := status(); rs.Replicas != 1 || rs.MaxReplicas != 3 {
		t.Fatalf("status before the load: %d replicas of max %d, want 1 of 3", rs.Replicas, rs.MaxReplicas)
	}

	// 12 requests in flight, each 200ms: 6 replicas' worth at target 2,
	// so up to the max of 3.
	heavy := p.hostnameLoad(host("scaling"), 12, 200*time.Millisecond)
	eventually(t, 60*time.Second, "3 replicas running", func() bool { return len(p.runningContainers(s.ID)) == 3 })
	eventually(t, 30*time.Second, "answers from all 3 replicas", func() bool { return heavy.distinct() == 3 })
	if rs := status(); rs.Replicas != 3 || len(rs.Upstreams) != 3 {
		t.Errorf("status under load: %d replicas, upstreams %v; want 3", rs.Replicas, rs.Upstreams)
	}
	if n := p.caddy.Metric("caddy_tenants_extra_replicas"); n != 2 {
		t.Errorf("caddy_tenants_extra_replicas = %v, want 2", n)
	}
	// The web UI's live status panel and the site's Scaling section.
	jar := p.signInOperator(p.caddy)
	if st, body := uiGetAt(t, p.caddy, jar, "/sites/scaling/status"); st != http.StatusOK || !contains(body, "3 serving") {
		t.Errorf("the UI's status panel: %d, want 3 replicas serving: %s", st, body)
	}
	if st, body := uiGetAt(t, p.caddy, jar, "/sites/scaling"); st != http.StatusOK || !contains(body, "Up to 3 replicas") ||
		!contains(body, "1 → 2") {
		t.Errorf("the UI's site page: %d, want its Scaling section with the decisions: %s", st, body)
	}
	heavy.stop()

	// A light load (1 request at a time) while it shrinks: the replicas
	// that go are drained first.
	light := p.hostnameLoad(host("scaling"), 1, 0)
	eventually(t, 60*time.Second, "back to 1 replica", func() bool { return len(p.containers(s.ID)) == 1 })
	time.Sleep(time.Second)
	light.stop()
	if rs := status(); rs.Replicas != 1 {
		t.Errorf("status after the load: %d replicas, want 1", rs.Replicas)
	}

	for name, l := range map[string]*hostnameLoad{"heavy": heavy, "light": light} {
		if l.failed.Load() != 0 || l.ok.Load() == 0 {
			t.Errorf("%s load: %d ok, %d failed: %v", name, l.ok.Load(), l.failed.Load(), l.failures)
		}
	}
	t.Logf("heavy load: %d ok over %v; light load: %d ok", heavy.ok.Load(), heavy.hostnames, light.ok.Load())

	events := p.scaleEvents(ctx, s.ID, 4)
	for _, e := range events {
		if e.Reason == "" || e.Node == "" || e.InFlight <= 0 && e.ToReplicas > e.FromReplicas {
			t.Errorf("scale event %+v: no reason, node or in-flight average", e)
		}
	}
	steps := scaleSteps(events)
	if want := [][2]int{{1, 2}, {2, 3}, {3, 2}, {2, 1}}; !slices.Equal(steps, want) {
		t.Errorf("scale events %v, want %v", steps, want)
	}
}

// scaleEvents waits until at least n of the site's scaling decisions are
// recorded and returns them, oldest first.
func (p *testPlatform) scaleEvents(ctx context.Context, siteID string, n int) []tenants.ScaleEvent {
	p.t.Helper()
	var events []tenants.ScaleEvent
	eventually(p.t, 10*time.Second, fmt.Sprintf("%d scale events recorded", n), func() bool {
		newest, err := p.store.SiteScaleEvents(ctx, siteID, 20)
		if err != nil {
			p.t.Fatal(err)
		}
		slices.Reverse(newest)
		events = newest
		return len(events) >= n
	})
	return events
}

// scaleSteps are the from → to replica counts of events.
func scaleSteps(events []tenants.ScaleEvent) [][2]int {
	steps := make([][2]int, len(events))
	for i, e := range events {
		steps[i] = [2]int{e.FromReplicas, e.ToReplicas}
	}
	return steps
}

// runningContainers lists the site's running containers.
func (p *testPlatform) runningContainers(siteID string) []string {
	var ids []string
	for _, c := range p.containers(siteID) {
		if c.State == "running" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// hostnameLoadAt is hostnameLoad through another node.
func (p *testPlatform) hostnameLoadAt(node *caddytest.Process, host string, workers int, sleep time.Duration) *hostnameLoad {
	q := *p
	q.caddy = node
	return q.hostnameLoad(host, workers, sleep)
}

// Two nodes autoscale a site as one: the load spread over both (each
// node's in-flight shared through the database) makes one scale-up in the
// engine, which both nodes balance over, and one scale-down after it,
// drained on both nodes: not one request fails.
func TestAutoscaleAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{
		Tenants: "scale_up_window 2s\n\t\tscale_down_window 4s",
		BeforeCaddy: func(p *testPlatform) {
			// 2 per replica: half the load (6 in flight through one node)
			// alone is over the target of one replica, so each node would
			// scale up on its own.
			p.template.MaxReplicas, p.template.TargetConcurrency = 2, 2
			if err := p.store.UpdateTemplate(ctx, "e2e", p.template); err != nil {
				t.Fatal(err)
			}
		},
	})
	b := p.node()
	s := p.site("pair", nil)
	if st, _, _ := p.get(host("pair"), "/hostname", nil); st != http.StatusOK {
		t.Fatalf("first request: %d", st)
	}
	loadA := p.hostnameLoad(host("pair"), 6, 200*time.Millisecond)
	loadB := p.hostnameLoadAt(b, host("pair"), 6, 200*time.Millisecond)
	eventually(t, 60*time.Second, "both nodes answered from 2 replicas", func() bool {
		return loadA.distinct() == 2 && loadB.distinct() == 2
	})
	time.Sleep(3 * time.Second) // more than the up window: no third replica, no second scale-up
	loadA.stop()
	loadB.stop()
	if n := len(p.containers(s.ID)); n != 2 {
		t.Errorf("%d containers under load, want 2", n)
	}
	// A light load through both nodes while one of them scales down:
	// the other stops sending to the replica before it goes.
	lightA := p.hostnameLoad(host("pair"), 1, 20*time.Millisecond)
	lightB := p.hostnameLoadAt(b, host("pair"), 1, 20*time.Millisecond)
	eventually(t, 60*time.Second, "back to 1 replica", func() bool { return len(p.containers(s.ID)) == 1 })
	time.Sleep(time.Second)
	lightA.stop()
	lightB.stop()
	for name, l := range map[string]*hostnameLoad{"A": loadA, "B": loadB, "light A": lightA, "light B": lightB} {
		if l.failed.Load() != 0 || l.ok.Load() == 0 {
			t.Errorf("load through %s: %d ok, %d failed: %v", name, l.ok.Load(), l.failed.Load(), l.failures)
		}
	}

	p.scaleEvents(ctx, s.ID, 2)
	time.Sleep(2 * time.Second) // a duplicate would be saved by now
	if got, want := scaleSteps(p.scaleEvents(ctx, s.ID, 2)), [][2]int{{1, 2}, {2, 1}}; !slices.Equal(got, want) {
		t.Errorf("scale events %v, want one up to 2 and one down to 1", got)
	}
	if up, down := p.caddy.Metric("caddy_tenants_extra_replicas"), b.Metric("caddy_tenants_extra_replicas"); up != 0 || down != 0 {
		t.Errorf("extra replicas after the scale-down: A %v, B %v, want 0", up, down)
	}
}
