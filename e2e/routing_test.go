package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	status, body, h := p.get(host("alpha"), "/", nil)
	if status != http.StatusOK || body != "hello from alpha" {
		t.Fatalf("first request: %d %q", status, body)
	}
	// The {tenant.*} placeholders, through header_down.
	if h.Get("X-Tenant-Site") != s.ID || h.Get("X-Tenant-Subdomain") != "alpha" ||
		h.Get("X-Tenant-Customer") != p.customer.ID || !strings.HasPrefix(h.Get("X-Tenant-Upstream"), "127.0.0.1:") {
		t.Fatalf("placeholders: site %q subdomain %q customer %q upstream %q", h.Get("X-Tenant-Site"),
			h.Get("X-Tenant-Subdomain"), h.Get("X-Tenant-Customer"), h.Get("X-Tenant-Upstream"))
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

// The built-in pages can be replaced from pages_dir, one file each; pages
// without a file there stay built in.
func TestPagesDirOverrides(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	page := `<p>nothing at {{.Host}} ({{.Status}})</p>`
	if err := os.WriteFile(filepath.Join(dir, "not_found.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	p := newPlatform(t, platformOptions{PagesDir: dir})
	status, body, h := p.get(host("ghost"), "/", nil)
	if status != http.StatusNotFound || body != "<p>nothing at ghost.example.com (404)</p>" || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("custom 404: %d %q %q", status, body, h.Get("Content-Type"))
	}
	p.customer.Status = "suspended"
	if err := p.store.UpdateCustomer(context.Background(), "e2e", p.customer); err != nil {
		t.Fatal(err)
	}
	p.site("paused", nil)
	if status, body, _ := p.get(host("paused"), "/", nil); status != http.StatusServiceUnavailable || !strings.Contains(body, "suspended") {
		t.Fatalf("built-in suspended page: %d %q", status, body)
	}
}
