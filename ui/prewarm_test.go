package ui

import (
	"context"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The site's page lists its pre-warms: the hour, the likelihood and
// what came of it, a first visitor or none; the customer's own user sees
// them too; a site never pre-warmed says how it would be.
func TestSitePagePrewarms(t *testing.T) {
	tu := newTestUI(t, manage.Config{Verifier: quietVerifier()})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	site := tu.seedSite(a.ID, tmpl, "alpha", nil)
	tu.seedSite(a.ID, tmpl, "beta", nil)
	ctx := context.Background()
	hit := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	miss := hit.Add(24 * time.Hour)
	id, _, err := tu.store.RecordPrewarm(ctx, site.ID, hit, 0.75, hit.Add(-2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tu.store.RecordPrewarm(ctx, site.ID, miss, 0.5, miss.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := tu.store.SetPrewarmFirstRequests(ctx, []tenants.PrewarmFirstRequest{{EventID: id, At: hit.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	b := tu.browser()
	b.login("op@example.com")
	_, _, body := b.get("/sites/alpha")
	mustContain(t, "/sites/alpha", body, "Pre-warms", "Mon Nov 30, 09:00 UTC", "75 %", "pre-warmed at 08:58, first visitor 09:01",
		"Tue Dec 1, 09:00 UTC", "50 %", "pre-warmed at 08:59, no visitor<")
	_, _, body = b.get("/sites/beta")
	mustContain(t, "/sites/beta", body, "Not pre-warmed yet")
	off := false
	if _, err := tu.svc.UpdateSite(ctx, "test", "beta", manage.SitePatch{Prewarm: &off}); err != nil {
		t.Fatal(err)
	}
	_, _, body = b.get("/sites/beta")
	mustContain(t, "/sites/beta", body, "Pre-warm is off for this site.")

	cb := tu.browser()
	cb.login("a@example.com")
	_, _, body = cb.get("/sites/alpha")
	mustContain(t, "the customer's /sites/alpha", body, "pre-warmed at 08:58, first visitor 09:01")
}
