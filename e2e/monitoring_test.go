package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/alerts"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// A site whose health path starts failing is marked unhealthy (in the
// API's status), restarted after restart_after failed checks, and healthy
// again: the webhook hears of one incident, "firing" once and "resolved"
// once, each signed, and the uptime history shows it.
func TestSiteUnhealthyRestarted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hook := newWebhookReceiver(t, "s3cret")
	p := newPlatform(t, platformOptions{
		Tenants: fmt.Sprintf(`alerts {
			webhook %s {
				secret s3cret
			}
			resolve_after 2s
		}`, hook.srv.URL),
		Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost),
	})
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	api := &adminPlatform{testPlatform: p, token: token}
	p.template = &tenants.Template{Slug: "checked", Name: "Checked", Image: p.template.Image, Port: 8080,
		HealthPath: "/health", HealthIntervalMs: 200, UnhealthyAfter: 2, RestartAfter: 20, MemoryBytes: 64 << 20, PidsLimit: 64}
	if err := p.store.CreateTemplate(ctx, "e2e", p.template); err != nil {
		t.Fatal(err)
	}
	s := p.site("sick", nil)
	if st, _, _ := p.get(host("sick"), "/", nil); st != http.StatusOK {
		t.Fatalf("GET /: %d", st)
	}
	status := func() manage.RuntimeStatus {
		var st manage.RuntimeStatus
		api.mustAPI("GET", "/api/v1/sites/"+s.ID+"/status", nil, http.StatusOK, &st)
		return st
	}
	eventually(t, 30*time.Second, "the checks find the site healthy", func() bool { return status().Health == "healthy" })
	first := status().LastStartedAt

	if st, body := post(t, p, host("sick"), "/sick"); st != http.StatusOK {
		t.Fatalf("POST /sick: %d %s", st, body)
	}
	listedHealth := func() string {
		var list struct {
			Items []manage.Site `json:"items"`
		}
		api.mustAPI("GET", "/api/v1/sites", nil, http.StatusOK, &list)
		for _, l := range list.Items {
			if l.ID == s.ID {
				return l.Health
			}
		}
		return ""
	}
	eventually(t, 30*time.Second, "the API shows the site unhealthy, in its status and the list of sites", func() bool {
		st := status()
		return st.Health == manage.HealthUnhealthy && st.HealthFailures >= 2 && st.UnhealthySince != nil &&
			listedHealth() == manage.HealthUnhealthy
	})
	eventually(t, 60*time.Second, "the site is restarted and healthy again", func() bool {
		st := status()
		return st.State == manage.StateRunning && st.Health == "healthy" && st.LastStartedAt != nil && st.LastStartedAt.After(*first)
	})
	if got := p.caddy.Metric("caddy_tenants_health_restarts_total"); got < 1 {
		t.Errorf("health_restarts_total: %v", got)
	}
	if st, _, _ := p.get(host("sick"), "/", nil); st != http.StatusOK {
		t.Fatalf("GET / after the restart: %d", st)
	}

	eventually(t, 60*time.Second, "the webhook accepts the firing alert", func() bool {
		return hook.count(alerts.RuleUnhealthy, alerts.StatusFiring) == 1
	})
	eventually(t, 60*time.Second, "the webhook accepts the resolved alert", func() bool {
		return hook.count(alerts.RuleUnhealthy, alerts.StatusResolved) == 1
	})
	hook.mu.Lock()
	var fired, resolved int
	for _, n := range hook.accepted {
		if n.Rule != alerts.RuleUnhealthy {
			continue
		}
		if n.Subject != s.ID {
			t.Errorf("alert about %q, want the site %s", n.Subject, s.ID)
		}
		switch n.Status {
		case alerts.StatusFiring:
			fired++
		case alerts.StatusResolved:
			resolved++
		}
	}
	bad := hook.bad
	hook.mu.Unlock()
	if len(bad) != 0 {
		t.Fatalf("deliveries refused: %v", bad)
	}
	if fired != 1 || resolved != 1 {
		t.Fatalf("%d firing and %d resolved site_unhealthy notifications, want one each", fired, resolved)
	}

	// The history: up, unhealthy, up again; no sleep, no failure.
	var up manage.SiteUptime
	eventually(t, 10*time.Second, "the uptime history shows the incident", func() bool {
		api.mustAPI("GET", "/api/v1/sites/sick/uptime?window=1h", nil, http.StatusOK, &up)
		var states []string
		for _, in := range up.Intervals {
			states = append(states, in.State)
		}
		return strings.Join(states, ",") == "up,unhealthy,up"
	})
	if up.UptimePercent == nil || *up.UptimePercent <= 0 || *up.UptimePercent >= 100 {
		t.Fatalf("uptime percentage %v, want between 0 and 100", up.UptimePercent)
	}
	if up.Seconds[tenants.UptimeUnhealthy] <= 0 || up.Seconds[tenants.UptimeAsleep] != 0 {
		t.Fatalf("seconds per state: %v", up.Seconds)
	}
}

// post sends POST path to host through Caddy.
func post(t *testing.T, p *testPlatform, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+p.caddy.HTTP+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

const googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

// Crawlers and monitors do not wake a stopped site: they get the
// configured answer (robots.txt one that allows everything) and no
// container starts; on a running site they are served but are no
// activity, so the site still idles out.
func TestCrawlerDoesNotWake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{IdleTimeout: "2s", Proxy: `stay_asleep {
			more_user_agents e2e-monitor
			retry_after 2m
		}`})
	s := p.site("sleepy", nil)
	ua := func(agent string) http.Header { return http.Header{"User-Agent": {agent}} }

	for _, agent := range []string{googlebot, "E2E-Monitor/1.0", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"} {
		st, body, h := p.get(host("sleepy"), "/", ua(agent))
		if st != http.StatusServiceUnavailable || h.Get("Retry-After") != "120" || !contains(body, "asleep") {
			t.Fatalf("%s on a stopped site: %d, Retry-After %q, %q", agent, st, h.Get("Retry-After"), body)
		}
	}
	if st, body, _ := p.get(host("sleepy"), "/robots.txt", nil); st != http.StatusOK || body != "User-agent: *\nAllow: /\n" {
		t.Fatalf("robots.txt of a stopped site: %d %q", st, body)
	}
	if st, _, h := p.get(host("sleepy"), "/favicon.ico", nil); st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("favicon.ico of a stopped site: %d", st)
	}
	if c := p.containers(s.ID); len(c) != 0 {
		t.Fatalf("quiet requests made %d containers", len(c))
	}

	// A visitor wakes it; the crawler then gets the site itself.
	if st, body, _ := p.get(host("sleepy"), "/", nil); st != http.StatusOK || !contains(body, "hello from sleepy") {
		t.Fatalf("a visitor: %d %q", st, body)
	}
	served := false
	eventually(t, 60*time.Second, "the site idles out while the crawler keeps asking", func() bool {
		st, body, _ := p.get(host("sleepy"), "/", ua(googlebot))
		served = served || (st == http.StatusOK && contains(body, "hello from sleepy"))
		time.Sleep(100 * time.Millisecond) // a crawler's pace, well under the idle timeout
		return !p.running(s.ID)
	})
	if !served {
		t.Fatal("the crawler was never served by the running site")
	}
	c, err := p.docker.ContainerInspect(ctx, p.containers(s.ID)[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	started := c.State.StartedAt
	if st, _, _ := p.get(host("sleepy"), "/", ua(googlebot)); st != http.StatusServiceUnavailable {
		t.Fatalf("the crawler on the site asleep again: %d", st)
	}
	if c, err = p.docker.ContainerInspect(ctx, c.ID); err != nil || c.State.StartedAt != started || c.State.Running {
		t.Fatalf("the crawler started the container again: %v %v", c.State.StartedAt, err)
	}
}
