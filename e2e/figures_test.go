package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Known traffic through two nodes of the built Caddy, some of it 5xx
// from the site itself: the admin API reads back the right counts, both
// nodes' added up once each has rolled its minute up, with latency
// percentiles, the one cold start, the container's real memory and the
// running container; each node's Prometheus series (metrics per_site)
// count its own requests; and a node that stops saves its last minute.
func TestSiteFigures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{Tenants: "metrics per_site",
		Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost)})
	b := p.node()
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	api := &adminPlatform{testPlatform: p, token: token}
	s := p.site("figs", nil)

	send := func(node *caddytest.Process, path string, want, n int) {
		t.Helper()
		for range n {
			st, _, _, err := tryGetAt(node, host("figs"), path, nil)
			if err != nil || st != want {
				t.Fatalf("GET %s: %d %v, want %d", path, st, err, want)
			}
		}
	}
	send(p.caddy, "/", 200, 10) // the first one starts the container
	send(p.caddy, "/status?code=503", 503, 3)
	send(p.caddy, "/status?code=404", 404, 1) // an answer, not an error
	send(b, "/", 200, 5)                      // B finds the container running: no cold start of its own
	send(b, "/status?code=500", 500, 2)

	// Each node counts its own answers at once.
	for _, c := range []struct {
		node           *caddytest.Process
		requests, errs float64
	}{{p.caddy, 14, 3}, {b, 7, 2}} {
		if got := c.node.Metric("caddy_tenants_site_requests_total"); got != c.requests {
			t.Errorf("site_requests_total of a node: %v, want %v", got, c.requests)
		}
		if got := c.node.Metric("caddy_tenants_site_request_errors_total"); got != c.errs {
			t.Errorf("site_request_errors_total of a node: %v, want %v", got, c.errs)
		}
		if got := c.node.Metric("caddy_tenants_requests_total"); got != c.requests {
			t.Errorf("requests_total of a node: %v, want %v", got, c.requests)
		}
	}

	// Through the API, once both nodes rolled their minute up and sampled
	// the container (at the end of the minute: up to about a minute).
	var f manage.SiteFigures
	read := func() {
		t.Helper()
		api.mustAPI("GET", "/api/v1/sites/figs/figures?window=1h&step=1m", nil, http.StatusOK, &f)
	}
	waitFigures(t, 150*time.Second, "both nodes' figures with a container sample", read, func() bool {
		return sum(f.Requests) == 21 && len(f.Memory.Points) > 0
	})
	if f.SiteID != s.ID || f.Step != time.Minute || len(f.Requests.Points) != 60 {
		t.Fatalf("figures of %s, step %s, %d points", f.SiteID, f.Step, len(f.Requests.Points))
	}
	if got := sum(f.Errors); got != 5 {
		t.Errorf("errors %v, want 5 (3 through A, 2 through B)", got)
	}
	if got := sum(f.ColdStarts); got != 1 {
		t.Errorf("cold starts %v, want 1", got)
	}
	if len(f.ColdStartMs.Points) != 1 || f.ColdStartMs.Points[0].Value <= 0 {
		t.Errorf("cold start duration: %+v", f.ColdStartMs.Points)
	}
	if len(f.LatencyP50.Points) == 0 || len(f.LatencyP95.Points) == 0 {
		t.Errorf("latency percentiles: %+v %+v", f.LatencyP50.Points, f.LatencyP95.Points)
	}
	for _, pt := range f.Memory.Points {
		if pt.Value < 64<<10 || pt.Value > 64<<20 {
			t.Errorf("memory of the container %v bytes: not what a small Go server in 64 MiB uses", pt.Value)
		}
	}

	var pf manage.PlatformFigures
	api.mustAPI("GET", "/api/v1/figures?window=1h&step=1m", nil, http.StatusOK, &pf)
	if sum(pf.ColdStarts) != 1 || sum(pf.Failures) != 0 || highest(pf.Running) != 1 {
		t.Errorf("platform: %v cold starts, %v failures, %v running at most", sum(pf.ColdStarts), sum(pf.Failures), highest(pf.Running))
	}

	// A node that stops saves the minute so far: B's last requests show
	// without waiting for a roll-up of A's.
	send(b, "/", 200, 4)
	b.Stop()
	waitFigures(t, 10*time.Second, "B's last requests, saved as it stopped", read, func() bool { return sum(f.Requests) == 25 })
}

// waitFigures reads until ok holds, once a second, failing after within.
func waitFigures(t *testing.T, within time.Duration, what string, read func(), ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(time.Second) {
		read()
		if ok() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}

func sum(s manage.Series) float64 {
	var n float64
	for _, p := range s.Points {
		n += p.Value
	}
	return n
}

func highest(s manage.Series) float64 {
	var n float64
	for _, p := range s.Points {
		n = max(n, p.Value)
	}
	return n
}
