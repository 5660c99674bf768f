package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Two nodes on one database: a site that node B serves is not idle to
// node A, whose reaper must leave it running, whether B holds a WebSocket
// to it or serves it steady requests; once nobody uses it, it stops.
func TestNodesShareActivity(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{IdleTimeout: "5s"})
	b := p.node()
	s := p.site("shared", nil)
	if st, _, _ := p.get(host("shared"), "/", nil); st != http.StatusOK {
		t.Fatalf("through A: %d", st)
	}
	first := p.containers(s.ID)[0].ID

	conn := p.openUpgradedAt(b, host("shared"))
	time.Sleep(12 * time.Second) // more than twice the idle timeout
	if !p.running(s.ID) {
		t.Fatal("A stopped the site while B held a WebSocket to it")
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatalf("WebSocket through B: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through B after the idle timeout: %q %v", buf, err)
	}
	conn.Close()

	for deadline := time.Now().Add(12 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		st, body, _, err := tryGetAt(b, host("shared"), "/", nil)
		if err != nil || st != http.StatusOK || body != "hello from shared" {
			t.Fatalf("steady GET through B: %d %q %v", st, body, err)
		}
	}
	if c := p.containers(s.ID); len(c) != 1 || c[0].ID != first || c[0].State != "running" {
		t.Fatalf("containers after B's use: %+v, want %s running all along", c, first)
	}
	if n := p.caddy.Metric("caddy_tenants_idle_stops_total") + b.Metric("caddy_tenants_idle_stops_total"); n != 0 {
		t.Fatalf("%v idle stops while B used the site", n)
	}
	eventually(t, 30*time.Second, "the site stops once neither node uses it", func() bool { return !p.running(s.ID) })
}

// A template change through node B's API while node A serves the site:
// the container is recreated under the site's lock, and A holds its
// requests meanwhile; not one of them fails.
func TestTemplateChangeThroughOtherNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost)})
	b := p.node()
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	s := p.site("moving", nil)
	if st, _, _ := p.get(host("moving"), "/", nil); st != http.StatusOK {
		t.Fatalf("through A: %d", st)
	}
	other := &tenants.Template{Slug: "other", Name: "Other", Image: p.template.Image, Port: 8080,
		Env: map[string]string{"GREETING": "other"}, HealthPath: "/health"}
	if err := p.store.CreateTemplate(ctx, "e2e", other); err != nil {
		t.Fatal(err)
	}

	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, body, _, err := p.tryGet(host("moving"), "/", nil)
				if err != nil || st != http.StatusOK || body != "hello from moving" {
					failed.Add(1)
					failures.Store(fmt.Sprint(st, " ", err), true)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	bp := *p
	bp.caddy = b
	ap := &adminPlatform{testPlatform: &bp, token: token}
	if st, _, body := ap.api(token, http.MethodPatch, "/api/v1/sites/"+s.ID, map[string]string{"template_id": other.ID}, nil); st != http.StatusOK {
		t.Fatalf("PATCH through B: %d %s", st, body)
	}
	eventually(t, 30*time.Second, "A serves the new template", func() bool {
		st, body, _ := p.get(host("moving"), "/env", nil)
		var env map[string]string
		return st == http.StatusOK && json.Unmarshal([]byte(body), &env) == nil && env["GREETING"] == "other"
	})
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		failures.Range(func(k, _ any) bool { t.Logf("failure: %v", k); return true })
		t.Fatalf("%d ok, %d failed across the change", ok.Load(), failed.Load())
	}
}
