package ui

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// snapshot is what a customer's user must not change of another's site.
func (tu *testUI) snapshot() string {
	tu.t.Helper()
	ctx := context.Background()
	sites, err := tu.svc.AllSites(ctx, manage.SiteFilter{})
	if err != nil {
		tu.t.Fatal(err)
	}
	domains, err := tu.svc.AllDomains(ctx, "")
	if err != nil {
		tu.t.Fatal(err)
	}
	audit, err := tu.svc.ListAudit(ctx, tenants.AuditFilter{Limit: 500})
	if err != nil {
		tu.t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range sites {
		b.WriteString(s.ID + " " + s.Subdomain + " " + s.Status + " " + s.State + " " + s.UpdatedAt.String() + "\n")
	}
	for _, d := range domains {
		b.WriteString(d.ID + " " + d.Hostname + " " + d.UpdatedAt.String() + "\n")
	}
	b.WriteString(strings.Repeat("a", len(audit)))
	return b.String()
}

func TestPortalScoping(t *testing.T) {
	tu := newTestUI(t, manage.Config{Verifier: quietVerifier()})
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	other, _ := tu.customerUser("b@example.com")
	tu.seedSite(a.ID, tmpl, "alpha", map[string]string{"GREETING": "hello-alpha"})
	beta := tu.seedSite(other.ID, tmpl, "beta", nil)
	ctx := context.Background()
	dom, err := tu.svc.CreateDomain(ctx, "test", manage.DomainInput{Site: beta.ID, Hostname: "www.beta-shop.org"})
	if err != nil {
		t.Fatal(err)
	}
	own, err := tu.svc.CreateDomain(ctx, "test", manage.DomainInput{Site: "alpha", Hostname: "www.alpha-shop.org"})
	if err != nil {
		t.Fatal(err)
	}

	b := tu.browser()
	b.login("a@example.com")

	status, _, body := b.get("/")
	if status != 200 || !strings.Contains(body, `href="/sites/alpha"`) || strings.Contains(body, "beta") {
		t.Fatalf("home shows the customer's sites only: %d\n%s", status, body)
	}
	// Their own site's pages work, without the operators' parts.
	for _, p := range []string{"/sites/alpha", "/sites/alpha/logs", "/sites/alpha/domains", "/sites/alpha/status"} {
		status, _, body := b.get(p)
		if status != 200 {
			t.Fatalf("own %s: %d\n%s", p, status, body)
		}
		if strings.Contains(body, "hello-alpha") || strings.Contains(body, "/env") || strings.Contains(body, "/delete\"") && p == "/sites/alpha" {
			t.Fatalf("own %s shows operators' parts:\n%s", p, body)
		}
	}
	if _, _, body := b.get("/sites/alpha"); strings.Contains(body, "/actions/redeploy") {
		t.Fatalf("a customer's user gets no redeploy button:\n%s", body)
	}
	status, _, body = b.post("/sites/alpha/actions/start", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "this server runs no containers") {
		t.Fatalf("own start without a runtime: %d\n%s", status, body)
	}

	before := tu.snapshot()
	for _, ref := range []string{beta.ID, "beta"} {
		for _, p := range []string{"/sites/" + ref, "/sites/" + ref + "/logs", "/sites/" + ref + "/logs/stream", "/sites/" + ref + "/domains", "/sites/" + ref + "/status", "/sites/" + ref + "/releases"} {
			if status, _, body := b.get(p); status != http.StatusNotFound {
				t.Fatalf("GET %s of another customer: %d\n%s", p, status, body)
			}
		}
		for _, p := range []string{"/sites/" + ref + "/actions/start", "/sites/" + ref + "/actions/stop", "/sites/" + ref + "/actions/redeploy",
			"/sites/" + ref + "/domains/" + dom.ID + "/verify", "/sites/" + ref + "/domains/" + dom.ID + "/delete",
			"/sites/" + ref + "/domains/www.beta-shop.org/delete", "/sites/" + ref + "/env", "/sites/" + ref + "/delete"} {
			if status, _, body := b.post(p, url.Values{"env": {"X=1"}, "purge": {"1"}}); status != http.StatusNotFound {
				t.Fatalf("POST %s of another customer: %d\n%s", p, status, body)
			}
		}
		if status, _, body := b.post("/sites/"+ref+"/domains", url.Values{"hostname": {"evil.example.org"}}); status != http.StatusNotFound {
			t.Fatalf("adding a domain to another customer's site: %d\n%s", status, body)
		}
	}
	// Another's domain through their own site is no better.
	for _, p := range []string{"/sites/alpha/domains/" + dom.ID + "/verify", "/sites/alpha/domains/" + dom.ID + "/delete", "/sites/alpha/domains/www.beta-shop.org/delete"} {
		if status, _, body := b.post(p, nil); status != http.StatusNotFound {
			t.Fatalf("POST %s: %d\n%s", p, status, body)
		}
	}
	// Operators' pages and their own site's operator actions are not theirs.
	for _, p := range []string{"/sites", "/sites/new", "/domains", "/templates", "/templates/export"} {
		if status, _, _ := b.get(p); status != http.StatusNotFound {
			t.Fatalf("GET %s as a customer's user: %d", p, status)
		}
	}
	for _, p := range []string{"/sites/alpha/env", "/sites/alpha/delete", "/sites/new"} {
		if status, _, _ := b.post(p, url.Values{"env": {"X=1"}, "customer_id": {other.ID}, "template_id": {tmpl}, "subdomain": {"sneaky"}}); status != http.StatusNotFound {
			t.Fatalf("POST %s as a customer's user: %d", p, status)
		}
	}
	if after := tu.snapshot(); after != before {
		t.Fatalf("a customer's user changed something:\nbefore %s\nafter %s", before, after)
	}
	if s, err := tu.svc.GetSite(ctx, "alpha"); err != nil || s.Env["GREETING"] != "hello-alpha" || len(s.Env) != 1 {
		t.Fatalf("own site changed: %+v %v", s, err)
	}

	// Their own domains they may manage.
	status, loc, _ := b.post("/sites/alpha/domains", url.Values{"hostname": {"shop.alpha-shop.org"}})
	if status != http.StatusSeeOther || loc != "/sites/alpha/domains" {
		t.Fatalf("adding own domain: %d %q", status, loc)
	}
	if status, _, body := b.post("/sites/alpha/domains/"+own.ID+"/verify", nil); status != 200 || !strings.Contains(body, "not verified yet") {
		t.Fatalf("verifying own domain: %d\n%s", status, body)
	}
	if status, _, _ := b.post("/sites/alpha/domains/"+own.ID+"/delete", nil); status != http.StatusSeeOther {
		t.Fatalf("removing own domain: %d", status)
	}
	if list, _ := tu.svc.AllDomains(ctx, "alpha"); len(list) != 1 || list[0].Hostname != "shop.alpha-shop.org" {
		t.Fatalf("own domains: %v", list)
	}
}

func TestSiteStatusStream(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	tu.seedSite(a.ID, tmpl, "alpha", nil)
	b := tu.browser()
	b.login("op@example.com")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tu.url+"/sites/alpha/status", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	r := bufio.NewReader(resp.Body)
	var got []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v after %q", err, got)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			break
		}
		got = append(got, line)
	}
	if got[0] != "event: html" || !strings.Contains(strings.Join(got, "\n"), "never started") {
		t.Fatalf("first event: %q", got)
	}
	for _, l := range got[1:] {
		if !strings.HasPrefix(l, "data: ") {
			t.Fatalf("an event line not data: %q", l)
		}
	}
}
