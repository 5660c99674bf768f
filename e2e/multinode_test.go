package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	echoes(t, conn, "WebSocket through B after the idle timeout")
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

	stop := p.load(host("moving"), "hello from moving", 4)
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
	if r := stop(); r.failed != 0 || r.ok == 0 {
		t.Fatalf("%d ok, %d failed across the change: %v", r.ok, r.failed, r.failures)
	}
}
