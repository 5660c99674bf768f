package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Three Caddy nodes on one database and engine behave as one: first
// requests spread over all three start the site once; a change through
// node A's API reaches node C within a second; a WebSocket held through
// C keeps A's and B's reapers off the site.
func TestThreeNodesAsOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{IdleTimeout: "4s", Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost)})
	nodes := []*caddytest.Process{p.caddy, p.node(), p.node()}
	a, c := nodes[0], nodes[2]
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	api := &adminPlatform{testPlatform: p, token: token}
	s := p.site("trio", nil)
	for i, n := range nodes {
		eventually(t, 5*time.Second, fmt.Sprintf("node %d knows the site", i), func() bool {
			st, _, _, err := tryGetAt(n, host("trio"), "/.well-known/caddy-multitenant/ready", nil)
			return err == nil && st != http.StatusNotFound
		})
	}

	// 90 first requests at once, a third through each node: one container,
	// every answer the site's.
	var wg sync.WaitGroup
	errs := make(chan string, 90)
	for i := range 90 {
		wg.Add(1)
		go func(n *caddytest.Process) {
			defer wg.Done()
			st, body, _, err := tryGetAt(n, host("trio"), "/", nil)
			if err != nil || st != http.StatusOK || body != "hello from trio" {
				errs <- fmt.Sprintf("%d %q %v", st, body, err)
			}
		}(nodes[i%3])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a first request: %s", e)
	}
	if list := p.containers(s.ID); len(list) != 1 {
		t.Fatalf("%d containers for one site across three nodes, want 1", len(list))
	}

	// A change through A's API reaches C within a second: suspending the
	// customer gives C's visitors the suspended page.
	changed := time.Now()
	api.mustAPI("PATCH", "/api/v1/customers/"+p.customer.ID, map[string]string{"status": "suspended"}, http.StatusOK, nil)
	var seen time.Duration
	eventually(t, 5*time.Second, "node C serves the suspended page", func() bool {
		st, body, _, err := tryGetAt(c, host("trio"), "/", nil)
		if err == nil && st == http.StatusServiceUnavailable && strings.Contains(body, "suspended") {
			seen = time.Since(changed)
			return true
		}
		return false
	})
	if seen > time.Second {
		t.Errorf("node C saw node A's change after %s, want within 1s", seen)
	}
	t.Logf("node A's change reached node C after %s", seen)
	api.mustAPI("PATCH", "/api/v1/customers/"+p.customer.ID, map[string]string{"status": "active"}, http.StatusOK, nil)
	eventually(t, 30*time.Second, "the site serves through C again", func() bool {
		st, body, _, err := tryGetAt(c, host("trio"), "/", nil)
		return err == nil && st == http.StatusOK && body == "hello from trio"
	})

	// A WebSocket held through C: neither A nor B stops the site.
	first := p.containers(s.ID)
	conn := p.openUpgradedAt(c, host("trio"))
	time.Sleep(10 * time.Second) // more than twice the idle timeout
	if !p.running(s.ID) {
		t.Fatal("a node stopped the site while C held a WebSocket to it")
	}
	echoes(t, conn, "WebSocket through C after the idle timeout")
	conn.Close()
	if now := p.containers(s.ID); len(now) != 1 || len(first) != 1 || now[0].ID != first[0].ID {
		t.Fatalf("containers changed while the site was in use: %v → %v", first, now)
	}
	eventually(t, 30*time.Second, "the site stops once no node uses it", func() bool { return !p.running(s.ID) })
	if n := a.Metric("caddy_tenants_idle_stops_total") + nodes[1].Metric("caddy_tenants_idle_stops_total") + c.Metric("caddy_tenants_idle_stops_total"); n < 1 {
		t.Errorf("%v idle stops after the WebSocket closed, want at least 1", n)
	}
}
