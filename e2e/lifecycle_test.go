package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// put writes a file into the site's volume through Caddy.
func (p *testPlatform) put(host, name, content string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+p.caddy.HTTP+"/file?name="+name, strings.NewReader(content))
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		p.t.Fatalf("PUT file: %s", resp.Status)
	}
}

// 3. With a short idle_timeout the container stops after idle; the next
// request starts it again; a file in the volume survives stop/start and a
// recreate.
func TestIdleStopAndVolume(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{IdleTimeout: "2s"})
	s := p.site("idle", nil)
	p.put(host("idle"), "note.txt", "kept")
	firstID := p.containers(s.ID)[0].ID

	eventually(t, 15*time.Second, "idle container stops", func() bool { return !p.running(s.ID) })
	// Counted once Docker's stop call returns, a moment after the
	// container shows as stopped.
	eventually(t, 5*time.Second, "idle stop counted", func() bool {
		return p.caddy.Metric("caddy_tenants_idle_stops_total") == 1
	})
	status, body, _ := p.get(host("idle"), "/file?name=note.txt", nil)
	if status != http.StatusOK || body != "kept" {
		t.Fatalf("file after idle stop/start: %d %q", status, body)
	}
	if c := p.containers(s.ID); len(c) != 1 || c[0].ID != firstID {
		t.Fatalf("restart after idle created another container: %+v (was %s)", c, firstID)
	}

	// A template change recreates the container at the next start; the
	// volume stays.
	p.template.Env["GREETING"] = "v2"
	if err := p.store.UpdateTemplate(context.Background(), "e2e", p.template); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "idle container stops again", func() bool { return !p.running(s.ID) })
	status, body, _ = p.get(host("idle"), "/file?name=note.txt", nil)
	if status != http.StatusOK || body != "kept" {
		t.Fatalf("file after recreate: %d %q", status, body)
	}
	c := p.containers(s.ID)
	if len(c) != 1 || c[0].ID == firstID {
		t.Fatalf("template change did not recreate the container: %+v", c)
	}
	_, envJSON, _ := p.get(host("idle"), "/env", nil)
	var env map[string]string
	if err := json.Unmarshal([]byte(envJSON), &env); err != nil || env["GREETING"] != "v2" || env["SITE_NAME"] != "idle" {
		t.Fatalf("env after recreate: %v (%v)", env, err)
	}
}

// 4. An open WebSocket keeps the site running past idle_timeout; closing it
// lets the site stop.
func TestUpgradedConnectionKeepsSiteAwake(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{IdleTimeout: "2s"})
	s := p.site("socket", nil)
	conn := p.openUpgraded(host("socket"))
	time.Sleep(5 * time.Second) // more than twice the idle timeout
	if !p.running(s.ID) {
		t.Fatal("site stopped while a WebSocket was open")
	}
	echoes(t, conn, "after the idle timeout")
	conn.Close()
	eventually(t, 15*time.Second, "site stops after the WebSocket closes", func() bool { return !p.running(s.ID) })
}

// 6. A custom domain routes to its site; adding/removing a domain,
// suspending a customer or changing a site's template take effect within
// a second, without a config reload.
func TestChangesTakeEffectWithoutReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{})
	s := p.site("shop", nil)
	if status, body, _ := p.get(host("shop"), "/", nil); status != http.StatusOK || body != "hello from shop" {
		t.Fatalf("subdomain: %d %q", status, body)
	}
	within := func(what string, cond func() bool) { t.Helper(); eventually(t, time.Second, what, cond) }
	status := func(h string) int { st, _, _ := p.get(h, "/", nil); return st }

	// Unknown, then an unverified custom domain: not routed.
	if st := status("www.shop-owner.org"); st != http.StatusNotFound {
		t.Fatalf("unknown custom domain: %d", st)
	}
	d := &tenants.Domain{SiteID: s.ID, Hostname: "www.shop-owner.org"}
	if err := p.store.CreateDomain(ctx, "e2e", d); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st := status("www.shop-owner.org"); st != http.StatusNotFound {
		t.Fatalf("unverified custom domain served: %d", st)
	}
	if _, err := p.store.SetDomainVerified(ctx, "e2e", d.ID, true); err != nil {
		t.Fatal(err)
	}
	within("verified custom domain routes", func() bool {
		st, body, _ := p.get("WWW.Shop-Owner.org.", "/", nil)
		return st == http.StatusOK && body == "hello from shop"
	})

	// Suspending the customer: the suspended page, no start.
	p.customer.Status = tenants.CustomerSuspended
	if err := p.store.UpdateCustomer(ctx, "e2e", p.customer); err != nil {
		t.Fatal(err)
	}
	within("suspension", func() bool {
		st, body, _ := p.get(host("shop"), "/", nil)
		return st == http.StatusServiceUnavailable && contains(body, "suspended")
	})
	p.customer.Status = tenants.CustomerActive
	if err := p.store.UpdateCustomer(ctx, "e2e", p.customer); err != nil {
		t.Fatal(err)
	}
	within("reactivation", func() bool { return status(host("shop")) == http.StatusOK })

	// Moving the site to another template.
	other := &tenants.Template{Slug: "other", Name: "Other", Image: p.template.Image, Port: 8080,
		Env: map[string]string{"GREETING": "other"}, HealthPath: "/health"}
	if err := p.store.CreateTemplate(ctx, "e2e", other); err != nil {
		t.Fatal(err)
	}
	s.TemplateID = other.ID
	if err := p.store.UpdateSite(ctx, "e2e", s); err != nil {
		t.Fatal(err)
	}
	// The running container is not interrupted: the template applies at
	// its next start. Give the change one second to reach the resolver,
	// stop the container behind Caddy's back, and the next request must
	// start it from the new template.
	time.Sleep(time.Second)
	for _, c := range p.containers(s.ID) {
		timeout := 1
		if err := p.docker.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "restart from the new template", func() bool {
		st, body, _ := p.get(host("shop"), "/env", nil)
		var env map[string]string
		return st == http.StatusOK && json.Unmarshal([]byte(body), &env) == nil && env["GREETING"] == "other"
	})

	// Removing the domain.
	if err := p.store.DeleteDomain(ctx, "e2e", d.ID); err != nil {
		t.Fatal(err)
	}
	within("domain removal", func() bool { return status("www.shop-owner.org") == http.StatusNotFound })
}

// Caddy killed (kill -9) during a cold start and started again: the
// container the dead process started is adopted as starting, not as
// ready, so no request is proxied to it before it listens. An API client
// is held until it is ready; a browser gets the starting page.
func TestKilledDuringColdStartAdoptsStartingContainer(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	s := p.site("killed", map[string]string{"LISTEN_DELAY": "10s"})
	go p.tryGet(host("killed"), "/", nil) // its answer dies with the process
	eventually(t, 15*time.Second, "the start is under way", func() bool { return p.running(s.ID) })
	before := p.containers(s.ID)
	p.caddy.Kill()
	p.caddy.Start()

	status, body, h := p.get(host("killed"), "/", http.Header{"Accept": {"text/html"}})
	if status != http.StatusOK && (status != http.StatusServiceUnavailable || !contains(body, "Starting") || h.Get("Retry-After") == "") {
		t.Fatalf("browser after the restart: %d %q", status, body)
	}
	if status, body, _ := p.get(host("killed"), "/", nil); status != http.StatusOK || body != "hello from killed" {
		t.Fatalf("api client after the restart: %d %q", status, body)
	}
	if after := p.containers(s.ID); len(after) != 1 || after[0].ID != before[0].ID {
		t.Fatalf("containers after the restart %v, before %v", after, before)
	}
}
