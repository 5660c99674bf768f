package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// 5. Unknown hosts get the 404 page, and 1,000 distinct random hosts cost
// a bounded number of SQL queries.
func TestUnknownHostsAreCheap(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	p.site("known", nil)
	// The first request for a known host proves the listener is up and
	// the host index loaded (the resolver reports its queries).
	eventually(t, 10*time.Second, "known site serves", func() bool {
		st, _, _ := p.get(host("known"), "/", nil)
		return st == http.StatusOK
	})
	status, body, _ := p.get(host("nobody"), "/", nil)
	if status != http.StatusNotFound || !contains(body, "Site not found") {
		t.Fatalf("unknown host: %d %q", status, body)
	}
	before := p.caddy.Metric("caddy_tenants_resolver_queries_total")
	for i := range 1000 {
		h := fmt.Sprintf("r%d-%d.example.com", i, time.Now().UnixNano())
		if i%2 == 1 {
			h = fmt.Sprintf("random-%d.example.net", i)
		}
		if st, _, _ := p.get(h, "/", nil); st != http.StatusNotFound {
			t.Fatalf("%s: %d", h, st)
		}
	}
	// The bound: unknown hosts are answered from the host index, so the
	// flood costs no query at all; allow for nothing else.
	if q := p.caddy.Metric("caddy_tenants_resolver_queries_total") - before; q > 0 {
		t.Fatalf("1000 random hosts made %v queries, want 0", q)
	}
}

// 8. Caddy restarted while containers run: they are adopted (same
// container, no duplicate) and served without a new start.
func TestRestartAdoptsContainers(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	s := p.site("adopted", nil)
	if st, _, _ := p.get(host("adopted"), "/", nil); st != http.StatusOK {
		t.Fatal(st)
	}
	before := p.containers(s.ID)
	p.caddy.Restart()
	status, body, _ := p.get(host("adopted"), "/", nil)
	if status != http.StatusOK || body != "hello from adopted" {
		t.Fatalf("after restart: %d %q", status, body)
	}
	after := p.containers(s.ID)
	if len(after) != 1 || after[0].ID != before[0].ID {
		t.Fatalf("containers after restart %v, before %v", after, before)
	}
	if starts := p.caddy.Metric("caddy_tenants_cold_starts_total"); starts != 0 {
		t.Fatalf("restarted caddy made %v cold starts, want 0", starts)
	}
}

// 9. A template version bump with a new image: the next cold start runs the
// new image, the volume data stays.
func TestTemplateUpgradeNewImage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{IdleTimeout: "2s"})
	v2 := testimage.Build(t, "caddy-multitenant-testsite:v2")
	s := p.site("upgrade", nil)
	p.put(host("upgrade"), "data.txt", "survives")
	eventually(t, 15*time.Second, "idle stop", func() bool { return !p.running(s.ID) })
	p.template.Image = v2
	if err := p.store.UpdateTemplate(ctx, "e2e", p.template); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the change reaches the resolver within a second
	status, body, _ := p.get(host("upgrade"), "/file?name=data.txt", nil)
	if status != http.StatusOK || body != "survives" {
		t.Fatalf("data after upgrade: %d %q", status, body)
	}
	c := p.containers(s.ID)
	if len(c) != 1 || c[0].Image != v2 {
		t.Fatalf("containers after upgrade: %+v, want one running %s", c, v2)
	}
}

// 10. An image that exits at once: the error page, and a bounded number of
// start attempts over 10 s (no restart storm).
func TestCrashingSiteDoesNotStorm(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	s := p.site("crash", map[string]string{"EXIT_AT_START": "1"})
	if status, _, _ := p.get(host("crash"), "/", nil); status != http.StatusBadGateway {
		t.Fatalf("crashing site: %d", status)
	}
	status, body, _ := p.get(host("crash"), "/", http.Header{"Accept": {"text/html"}})
	if status != http.StatusBadGateway || !contains(body, "could not be started") {
		t.Fatalf("crashing site, browser: %d %q", status, body)
	}
	if contains(body, "exit") || contains(body, s.ID) {
		t.Fatalf("error page leaks internals: %q", body)
	}
	deadline := time.Now().Add(10 * time.Second)
	requests := 0
	for time.Now().Before(deadline) {
		st, _, h := p.get(host("crash"), "/", nil)
		if st != http.StatusBadGateway || h.Get("Retry-After") == "" {
			t.Fatalf("crashing site: %d, Retry-After %q", st, h.Get("Retry-After"))
		}
		requests++
		time.Sleep(20 * time.Millisecond)
	}
	attempts := p.caddy.Metric(`caddy_tenants_cold_starts_total{result="failed"}`)
	if attempts < 1 || attempts > 6 {
		t.Fatalf("%d requests over 10s made %v start attempts, want 1-6", requests, attempts)
	}
	if !contains(p.caddy.Logs(), "site failed to start") {
		t.Fatal("the full reason is not in the log")
	}
}

// 11. A site that needs 3 s to listen: a browser navigation gets the
// starting page and then the content; an API client is held and gets the
// content.
func TestSlowStart(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	p.site("slow", map[string]string{"LISTEN_DELAY": "3s"})
	p.site("slowapi", map[string]string{"LISTEN_DELAY": "3s"})

	browser := http.Header{"Accept": {"text/html,application/xhtml+xml"}}
	began := time.Now()
	status, body, h := p.get(host("slow"), "/", browser)
	if status != http.StatusServiceUnavailable || !contains(body, "Starting") || h.Get("Retry-After") == "" {
		t.Fatalf("browser during start: %d %q", status, body)
	}
	if waited := time.Since(began); waited < 1500*time.Millisecond || waited > 3500*time.Millisecond {
		t.Fatalf("browser got the starting page after %s, want about page_after (2s)", waited)
	}
	// What the page's script polls says 503 while starting, 204 when ready.
	eventually(t, 15*time.Second, "ready probe", func() bool {
		st, _, _ := p.get(host("slow"), "/.well-known/caddy-multitenant/ready", nil)
		return st == http.StatusNoContent
	})
	if status, body, _ := p.get(host("slow"), "/", browser); status != http.StatusOK || body != "hello from slow" {
		t.Fatalf("browser after start: %d %q", status, body)
	}

	began = time.Now()
	status, body, _ = p.get(host("slowapi"), "/", http.Header{"Accept": {"application/json"}})
	if status != http.StatusOK || body != "hello from slowapi" {
		t.Fatalf("api client: %d %q", status, body)
	}
	if waited := time.Since(began); waited < 3*time.Second {
		t.Fatalf("api client answered after %s, before the site could listen", waited)
	}
}

// 12. max_running 2 with three sites: the least recently used idle one is
// stopped to make room.
func TestMaxRunningStopsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{MaxRunning: 2})
	a, b, c := p.site("one", nil), p.site("two", nil), p.site("three", nil)
	for _, sub := range []string{"one", "two"} {
		if st, _, _ := p.get(host(sub), "/", nil); st != http.StatusOK {
			t.Fatal(st)
		}
	}
	// Activity is recorded on a clock that ticks every 250 ms with this
	// idle_timeout: keep the requests further apart than that.
	time.Sleep(600 * time.Millisecond)
	p.get(host("one"), "/", nil) // two is now the least recently used
	time.Sleep(600 * time.Millisecond)
	if st, body, _ := p.get(host("three"), "/", nil); st != http.StatusOK || body != "hello from three" {
		t.Fatalf("third site: %d %q", st, body)
	}
	if !p.running(a.ID) || p.running(b.ID) || !p.running(c.ID) {
		t.Fatalf("running: one %v two %v three %v; want two stopped", p.running(a.ID), p.running(b.ID), p.running(c.ID))
	}
	if ev := p.caddy.Metric("caddy_tenants_capacity_evictions_total"); ev != 1 {
		t.Fatalf("capacity evictions = %v, want 1", ev)
	}
}

// 13. A config reload (the same config, through the admin API) while a
// load generator runs: no failed request, and still one reaper.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	p.site("steady", nil)
	if st, _, _ := p.get(host("steady"), "/", nil); st != http.StatusOK {
		t.Fatal(st)
	}
	stop := p.load(host("steady"), "hello from steady", 8)
	time.Sleep(500 * time.Millisecond)
	for range 3 {
		if err := p.caddy.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	r := stop()
	if r.failed != 0 || r.ok < 100 {
		t.Fatalf("%d ok, %d failed during reloads: %v", r.ok, r.failed, r.failures)
	}
	// One platform (one reaper, one listener) survived the reloads.
	if n := strings.Count(p.caddy.Logs(), `"msg":"provisioner started"`); n > 1 {
		t.Fatalf("%d provisioners (reapers) started", n)
	}
}

// 7. PostgreSQL stopped mid-run: cached running sites keep answering, a new
// host gets 503, and everything recovers without restarting Caddy.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	dsn, pgUp, pgDown := ownPostgres(t)
	p := newPlatform(t, platformOptions{DatabaseURL: dsn, Schema: "outage"})
	p.site("cached", nil)
	// "later" is never requested before the outage, so it is not cached.
	p.siteQuiet("later", nil)
	// Serve "cached" until a request is answered from the resolver's
	// cache (the listener's first connect flushes what was cached before).
	eventually(t, 10*time.Second, "listener connected", func() bool {
		return p.caddy.Metric("caddy_tenants_resolver_listener_connected") == 1
	})
	eventually(t, 10*time.Second, "cached site served from the cache", func() bool {
		hits := p.caddy.Metric("caddy_tenants_resolver_cache_hits_total")
		st, _, _ := p.get(host("cached"), "/", nil)
		return st == http.StatusOK && p.caddy.Metric("caddy_tenants_resolver_cache_hits_total") > hits
	})

	pgDown()
	p.store.Pool().Reset()
	for range 50 {
		if st, body, _ := p.get(host("cached"), "/", nil); st != http.StatusOK || body != "hello from cached" {
			t.Fatalf("cached site during outage: %d %q", st, body)
		}
	}
	status, _, h := p.get(host("later"), "/", nil)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("uncached site during outage: %d, Retry-After %q", status, h.Get("Retry-After"))
	}

	pgUp()
	eventually(t, 20*time.Second, "recovery", func() bool {
		st, body, _ := p.get(host("later"), "/", nil)
		return st == http.StatusOK && body == "hello from later"
	})
	// Changes flow again.
	c := p.customer
	c.Status = tenants.CustomerSuspended
	if err := p.store.UpdateCustomer(context.Background(), "e2e", c); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "changes after recovery", func() bool {
		st, _, _ := p.get(host("cached"), "/", nil)
		return st == http.StatusServiceUnavailable
	})
}

// ownPostgres starts a PostgreSQL cluster of the test's own, which it may
// stop (pgDown) and start again (pgUp) at the same address; it is removed
// when the test ends.
func ownPostgres(t *testing.T) (dsn string, pgUp, pgDown func()) {
	t.Helper()
	// Directly under the temp root, not inside t.TempDir (mode 0700): the
	// postgres OS user must reach it, or pg-up.sh would put the cluster
	// elsewhere and nothing would remove it.
	dir, err := os.MkdirTemp("", "caddy-multitenant-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	script := filepath.Join(caddytest.ModuleRoot(), "scripts")
	// A port of the ephemeral range rather than pg-up.sh's default of
	// 25432 and up: other tests' clusters, started while this one is down,
	// scan from there and would take its port.
	_, port, _ := strings.Cut(caddytest.FreeAddr(t), ":")
	up := func() string {
		cmd := exec.Command(filepath.Join(script, "pg-up.sh"), dir)
		cmd.Env = append(os.Environ(), "PGPORT_WANTED="+port)
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("pg-up: %v\n%s", err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	pgDown = func() {
		if out, err := exec.Command(filepath.Join(script, "pg-down.sh"), dir).CombinedOutput(); err != nil {
			t.Fatalf("pg-down: %v %s", err, out)
		}
	}
	dsn = up()
	t.Cleanup(pgDown)
	pgUp = func() {
		if got := up(); got != dsn {
			t.Fatalf("database came back at %s, was %s", got, dsn)
		}
	}
	return dsn, pgUp, pgDown
}

// Caddy starts while PostgreSQL is down: tenant hosts answer 503 with
// Retry-After, and serve once the database is back, without a restart.
func TestStartsWithoutDatabase(t *testing.T) {
	t.Parallel()
	dsn, pgUp, pgDown := ownPostgres(t)
	p := newPlatform(t, platformOptions{DatabaseURL: dsn, Schema: "nodb", BeforeCaddy: func(p *testPlatform) {
		p.siteQuiet("early", nil)
		pgDown()
	}})
	status, _, h := p.get(host("early"), "/", nil)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("tenant host without database: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
	pgUp()
	p.databaseBack("early")
}

// PostgreSQL restarts and a change is made at once, before the listener
// is back: a container is never made from the stale cached route (the
// provisioner asks the database under the site's lock), the listener
// retries at most a second apart, and a site created then is served.
func TestChangeRightAfterDatabaseRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, pgUp, pgDown := ownPostgres(t)
	p := newPlatform(t, platformOptions{DatabaseURL: dsn, Schema: "restart"})
	s := p.site("stale", nil)
	eventually(t, 10*time.Second, "site served from the cache", func() bool {
		hits := p.caddy.Metric("caddy_tenants_resolver_cache_hits_total")
		st, _, _ := p.get(host("stale"), "/", nil)
		return st == http.StatusOK && p.caddy.Metric("caddy_tenants_resolver_cache_hits_total") > hits
	})

	pgDown()
	p.store.Pool().Reset()
	time.Sleep(8 * time.Second) // long enough for any backoff to grow
	pgUp()
	// What the admin API does on a template change, at once.
	p.template.Env["GREETING"] = "after-restart"
	if err := p.store.UpdateTemplate(ctx, "e2e", p.template); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.containers(s.ID) {
		if err := p.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	p.siteQuiet("newcomer", nil)

	status, body, _ := p.get(host("stale"), "/env", nil)
	var env map[string]string
	if status != http.StatusOK || json.Unmarshal([]byte(body), &env) != nil || env["GREETING"] != "after-restart" {
		t.Fatalf("site recreated right after the restart: %d %q, want the database's definition", status, body)
	}
	eventually(t, 10*time.Second, "the new site serves", func() bool {
		st, body, _ := p.get(host("newcomer"), "/", nil)
		return st == http.StatusOK && body == "hello from newcomer"
	})
	for _, line := range strings.Split(p.caddy.Logs(), "\n") {
		if !contains(line, "change listener disconnected") {
			continue
		}
		var entry struct {
			RetryIn float64 `json:"retry_in"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry.RetryIn > 1 {
			t.Fatalf("the change listener waited %vs to retry, want at most a second: %s", entry.RetryIn, line)
		}
	}
}
