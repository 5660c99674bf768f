package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

const readyPath = "/.well-known/caddy-multitenant/ready"

// staleSite makes a site on a serve-stale template whose app takes 2 s
// to listen, and waits until Caddy knows it.
func (p *testPlatform) staleSite(subdomain string) *tenants.Site {
	p.t.Helper()
	return p.staleSiteListening(subdomain, "2s")
}

// staleSiteListening is staleSite with the app listening after delay.
func (p *testPlatform) staleSiteListening(subdomain, delay string) *tenants.Site {
	p.t.Helper()
	p.template.ServeStale = true
	if err := p.store.UpdateTemplate(context.Background(), "e2e", p.template); err != nil {
		p.t.Fatal(err)
	}
	return p.site(subdomain, map[string]string{"LISTEN_DELAY": delay})
}

// stopSite kills the site's container and waits until every node sees it
// stopped (the readiness probe never starts a site).
func (p *testPlatform) stopSite(s *tenants.Site, nodes ...*caddytest.Process) {
	p.t.Helper()
	for _, c := range p.containers(s.ID) {
		if c.State == "running" {
			if err := p.docker.ContainerKill(context.Background(), c.ID, "KILL"); err != nil {
				p.t.Fatal(err)
			}
		}
	}
	for _, node := range append([]*caddytest.Process{p.caddy}, nodes...) {
		eventually(p.t, 10*time.Second, "caddy sees the site stopped", func() bool {
			st, _, _, err := tryGetAt(node, host(s.Subdomain), readyPath, nil)
			return err == nil && st == http.StatusServiceUnavailable
		})
	}
}

// isStale checks the marks of a copy served while the site starts, and
// returns its Age.
func isStale(t *testing.T, what string, h http.Header) int {
	t.Helper()
	if got := h.Get("Cache-Status"); got != "caddy-multitenant; hit; detail=stale-while-starting" {
		t.Fatalf("%s: Cache-Status %q", what, got)
	}
	if got := h.Get("Warning"); got != `110 - "Response is Stale"` {
		t.Fatalf("%s: Warning %q", what, got)
	}
	age, err := strconv.Atoi(h.Get("Age"))
	if err != nil || age < 0 {
		t.Fatalf("%s: Age %q", what, h.Get("Age"))
	}
	return age
}

func notStale(t *testing.T, what string, h http.Header) {
	t.Helper()
	if h.Get("Cache-Status") != "" || h.Get("Warning") != "" {
		t.Fatalf("%s: served as a stale copy (Cache-Status %q, Warning %q)", what, h.Get("Cache-Status"), h.Get("Warning"))
	}
}

// A site that serves stale answers a GET while it starts with the last
// good answer (Age, Cache-Status, Warning), starts in the background, and
// the next request after the start gets the live site. Answers that set
// cookies, are private or no-store, vary on more than Accept-Encoding, or
// went to a request with cookies are never kept: those requests wait for
// the live site.
func TestServeStaleWhileStarting(t *testing.T) {
	t.Parallel()
	// With the race detector: the copies are written by one request's
	// goroutine and read by others, and the start runs on after them.
	p := newPlatform(t, platformOptions{Race: true})
	s := p.staleSite("stale")
	h := host("stale")

	status, live1, _ := p.get(h, "/page", nil)
	if status != http.StatusOK || !strings.HasPrefix(live1, "page ") {
		t.Fatalf("first GET /page: %d %q", status, live1)
	}
	never := []string{
		"/page?header=Set-Cookie:session=1",
		"/page?header=Cache-Control:private",
		"/page?header=Cache-Control:no-store",
		"/page?header=Cache-Control:max-age=60,%20no-cache",
		"/page?header=Vary:Cookie",
	}
	for _, path := range never {
		if st, body, _ := p.get(h, path, nil); st != http.StatusOK || body != live1 {
			t.Fatalf("GET %s: %d %q", path, st, body)
		}
	}
	withCookie := http.Header{"Cookie": {"session=1"}}
	if st, _, _ := p.get(h, "/page?cookie", withCookie); st != http.StatusOK {
		t.Fatalf("GET with a cookie: %d", st)
	}
	time.Sleep(1100 * time.Millisecond) // an Age of at least 1

	p.stopSite(s)
	var wg sync.WaitGroup
	for _, path := range append(never, "/page?cookie") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			header := http.Header{}
			if path == "/page?cookie" {
				header = withCookie
			}
			st, body, got, err := p.tryGet(h, path, header)
			if err != nil || st != http.StatusOK || body == live1 || !strings.HasPrefix(body, "page ") {
				t.Errorf("GET %s during the start: %d %q %v, want the live site's answer", path, st, body, err)
				return
			}
			if got.Get("Cache-Status") != "" {
				t.Errorf("GET %s during the start was served a copy: %v", path, got)
			}
		}()
	}
	status, body, got := p.get(h, "/page", nil)
	if status != http.StatusOK || body != live1 {
		t.Fatalf("GET /page during the start: %d %q, want the copy %q", status, body, live1)
	}
	if age := isStale(t, "GET /page during the start", got); age < 1 {
		t.Fatalf("Age %d of a copy kept over a second", age)
	}
	if got.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("the copy lost its Content-Type: %v", got)
	}
	if p.running(s.ID) && readyNow(p, h) {
		t.Fatal("the site was already up: the copy proves nothing")
	}
	wg.Wait()

	// Without a new request for /page the site comes up (the start went
	// on after the stale answer), and /page is live.
	eventually(t, 30*time.Second, "the site is up", func() bool { return readyNow(p, h) })
	status, live2, got := p.get(h, "/page", nil)
	if status != http.StatusOK || live2 == live1 || !strings.HasPrefix(live2, "page ") {
		t.Fatalf("GET /page after the start: %d %q (the copy was %q)", status, live2, live1)
	}
	notStale(t, "GET /page after the start", got)

	// A GET that forces a reload is never answered with a copy.
	p.stopSite(s)
	reload := http.Header{"Cache-Control": {"no-cache"}, "Pragma": {"no-cache"}}
	status, body, got = p.get(h, "/page", reload)
	if status != http.StatusOK || body == live2 {
		t.Fatalf("forced reload during a start: %d %q", status, body)
	}
	notStale(t, "forced reload", got)

	// The stale answer alone starts the site: nothing but the readiness
	// probe (which never starts a site) asks for it after.
	p.stopSite(s)
	status, _, got = p.get(h, "/page", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /page during the last start: %d", status)
	}
	isStale(t, "GET /page during the last start", got)
	eventually(t, 30*time.Second, "the site started in the background is up", func() bool { return readyNow(p, h) })
}

func readyNow(p *testPlatform, h string) bool {
	st, _, _, err := p.tryGet(h, readyPath, nil)
	return err == nil && st == http.StatusNoContent
}

// The per-site bound holds in memory and in PostgreSQL (least recently
// used out first, a body over max_response_bytes never kept), and a
// second node that never served the site answers from the copy in
// PostgreSQL during a start.
func TestServeStaleBoundAndOtherNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const maxSite = 64 << 10
	p := newPlatform(t, platformOptions{Tenants: "serve_stale {\n\t\t\tmax_site_bytes 64KiB\n\t\t\tmax_response_bytes 30KiB\n\t\t}"})
	// Three stale answers through B must all come before the start
	// they set off is done: a start long enough for a loaded machine.
	s := p.staleSiteListening("bounded", "6s")
	h := host("bounded")

	// Six answers of 20 KB: three fit in 64 KiB; and one of 40 KB.
	page := func(n int) string { return fmt.Sprintf("/page?size=20000&n=%d", n) }
	var live string
	for n := 1; n <= 6; n++ {
		st, body, _ := p.get(h, page(n), nil)
		if st != http.StatusOK || len(body) != 20000 {
			t.Fatalf("GET %s: %d, %d bytes", page(n), st, len(body))
		}
		live = body
	}
	if st, body, _ := p.get(h, "/page?size=40000", nil); st != http.StatusOK || len(body) != 40000 {
		t.Fatalf("GET 40 KB: %d, %d bytes", st, len(body))
	}
	eventually(t, 10*time.Second, "the copies are written behind", func() bool {
		n, _, err := p.store.StaleStats(ctx, s.ID)
		return err == nil && n == 3
	})
	if n, size, _ := p.store.StaleStats(ctx, s.ID); n != 3 || size > maxSite {
		t.Fatalf("in PostgreSQL: %d copies, %d bytes (bound %d)", n, size, maxSite)
	}

	b := p.node()
	p.stopSite(s, b)
	// Node B never served the site: its copies come from PostgreSQL.
	for n := 4; n <= 6; n++ {
		st, body, got, err := tryGetAt(b, h, page(n), nil)
		if err != nil || st != http.StatusOK || body != live {
			t.Fatalf("GET %s through B during the start: %d, %d bytes, %v", page(n), st, len(body), err)
		}
		isStale(t, "GET through B", got)
	}
	// On node A, evicted and oversized answers were not kept: they wait
	// for the live site.
	for _, path := range []string{page(1), page(3), "/page?size=40000"} {
		st, body, got := p.get(h, path, nil)
		if st != http.StatusOK || body == live || !strings.HasPrefix(body, "page ") {
			t.Fatalf("GET %s during the start: %d %.40q", path, st, body)
		}
		notStale(t, "GET "+path, got)
	}
	// The live answers are kept in their turn; the bound still holds.
	time.Sleep(1500 * time.Millisecond) // past a write-behind
	if n, size, _ := p.store.StaleStats(ctx, s.ID); n != 3 || size > maxSite {
		t.Fatalf("after the start: %d copies, %d bytes in PostgreSQL (bound %d)", n, size, maxSite)
	}
}
