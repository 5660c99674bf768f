package e2e

import (
	"net/http"
	"sync"
	"testing"
)

// 1. The first request to a stopped site starts exactly one container and
// returns the site's content.
func TestFirstRequestStartsSite(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	s := p.site("alpha", nil)
	if n := len(p.containers(s.ID)); n != 0 {
		t.Fatalf("%d containers before the first request", n)
	}
	status, body, _ := p.get(host("alpha"), "/", nil)
	if status != http.StatusOK || body != "hello from alpha" {
		t.Fatalf("first request: %d %q", status, body)
	}
	if c := p.containers(s.ID); len(c) != 1 || c[0].State != "running" {
		t.Fatalf("containers after first request: %+v", c)
	}
	status, body, _ = p.get(host("alpha"), "/", nil)
	if status != http.StatusOK || body != "hello from alpha" || len(p.containers(s.ID)) != 1 {
		t.Fatalf("second request: %d %q", status, body)
	}
}

// 2. 200 concurrent first requests: one container, all answered.
func TestConcurrentFirstRequests(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	s := p.site("herd", nil)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body, _, err := p.tryGet(host("herd"), "/", nil)
			if err != nil || status != http.StatusOK || body != "hello from herd" {
				errs <- http.StatusText(status) + " " + body
				if err != nil {
					errs <- err.Error()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request failed: %s", e)
	}
	if c := p.containers(s.ID); len(c) != 1 {
		t.Fatalf("%d containers for one site after %d concurrent requests", len(c), n)
	}
	if starts := p.caddy.Metric(`caddy_tenants_cold_starts_total{result="started"}`); starts != 1 {
		t.Fatalf("cold starts = %v, want 1", starts)
	}
}
