package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The warm tier through Caddy: an idle site is paused after pause_after
// (the engine shows it paused; the CLI, the API and the web UI say so;
// the gauge counts it), and the next request is answered by the same
// container woken, without a start.
func TestPausedSiteWakesWithoutStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{Tenants: "pause_after 1s", Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost)})
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	api := &adminPlatform{testPlatform: p, token: token}
	jar := p.signInOperator(p.caddy)
	s := p.site("warm", nil)
	if st, body, _ := p.get(host("warm"), "/", nil); st != http.StatusOK || body != "hello from warm" {
		t.Fatalf("first GET: %d %q", st, body)
	}
	cs := p.containers(s.ID)
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	id := cs[0].ID
	// Not inspectSite: its GET would wake the site.
	inspect := func() container.InspectResponse {
		t.Helper()
		c, err := p.docker.ContainerInspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	startedAt := inspect().State.StartedAt

	eventually(t, 10*time.Second, "the idle pause", func() bool { return inspect().State.Paused })
	eventually(t, 5*time.Second, "the paused gauge", func() bool { return p.caddy.Metric("caddy_tenants_paused_containers") == 1 })
	if n := p.caddy.Metric("caddy_tenants_running_containers"); n != 0 {
		t.Errorf("running gauge %v while paused", n)
	}
	c := p.cli()
	var status struct{ State string }
	c.json(&status, "sites", "status", "warm")
	if status.State != "paused" {
		t.Errorf("sites status while paused: state %q", status.State)
	}
	if out := c.ok("sites", "ls"); !strings.Contains(out, "paused") {
		t.Errorf("sites ls while paused:\n%s", out)
	}
	var live struct{ State, Source string }
	api.mustAPI("GET", "/api/v1/sites/"+s.ID+"/status", nil, http.StatusOK, &live)
	if live.State != "paused" || live.Source != "live" {
		t.Errorf("API status while paused: %+v", live)
	}
	if st, body := uiGetAt(t, p.caddy, jar, "/sites/warm"); st != http.StatusOK || !strings.Contains(body, "asleep (warm)") {
		t.Errorf("the site's page while paused: %d, no \"asleep (warm)\":\n%s", st, body)
	}
	if st, body := uiGetAt(t, p.caddy, jar, "/"); st != http.StatusOK || !strings.Contains(body, "1 asleep (warm)") {
		t.Errorf("the overview while paused: %d, no \"1 asleep (warm)\":\n%s", st, body)
	}
	if !inspect().State.Paused {
		t.Fatal("looking at the status woke the site")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	msgs, _ := p.docker.Events(ctx, events.ListOptions{Since: fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()), Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("container", id),
		filters.Arg("event", string(events.ActionStart)), filters.Arg("event", string(events.ActionUnPause)))})
	var mu sync.Mutex
	var seen []events.Action
	go func() {
		for m := range msgs {
			mu.Lock()
			seen = append(seen, m.Action)
			mu.Unlock()
		}
	}()
	if st, body, _ := p.get(host("warm"), "/", nil); st != http.StatusOK || body != "hello from warm" {
		t.Fatalf("GET while paused: %d %q", st, body)
	}
	eventually(t, 5*time.Second, "the unpause event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	if len(seen) != 1 || seen[0] != events.ActionUnPause {
		t.Errorf("engine events of the wake = %v, want one unpause and no start", seen)
	}
	mu.Unlock()
	if got := inspect(); got.ID != id || got.State.StartedAt != startedAt || got.State.Paused {
		t.Errorf("container after the wake: %s %+v (was %s, started %s)", got.ID, got.State, id, startedAt)
	}
	if n := p.caddy.Metric("caddy_tenants_wakes_total"); n != 1 {
		t.Errorf("wakes = %v, want 1", n)
	}
	if n := p.caddy.Metric(`caddy_tenants_cold_starts_total{result="started"}`); n != 1 {
		t.Errorf("cold starts = %v, want the first one only", n)
	}
	if n := p.caddy.Metric("caddy_tenants_paused_containers"); n != 0 {
		t.Errorf("paused gauge %v after the wake", n)
	}
}

// A paused site that serves stale is woken, not stood in for: its kept
// answer is older than what the woken container says at once.
func TestPausedServeStaleSiteIsWokenNotServedStale(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{Tenants: "pause_after 1s"})
	s := p.staleSite("warmstale")
	h := host("warmstale")
	st, live, _ := p.get(h, "/page", nil)
	if st != http.StatusOK || !strings.HasPrefix(live, "page ") {
		t.Fatalf("first GET /page: %d %q", st, live)
	}
	id := p.containers(s.ID)[0].ID
	eventually(t, 10*time.Second, "the idle pause", func() bool {
		c, err := p.docker.ContainerInspect(context.Background(), id)
		return err == nil && c.State.Paused
	})
	st, body, header := p.get(h, "/page", nil)
	if st != http.StatusOK || body != live || header.Get("Cache-Status") != "" || header.Get("Age") != "" {
		t.Fatalf("GET /page of the paused site: %d %q, Cache-Status %q, Age %q; want the woken container's answer %q, no copy",
			st, body, header.Get("Cache-Status"), header.Get("Age"), live)
	}
	if n := p.caddy.Metric("caddy_tenants_wakes_total"); n != 1 {
		t.Errorf("wakes = %v, want 1", n)
	}
}
