package ui

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// TestSiteWarmForm: the site page's warm-start form sets the site's own
// serve-stale setting (on, off, back to the template's) and pre-warm, and
// a bad value comes back as the form's error.
func TestSiteWarmForm(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	tu.seedSite(a.ID, tmpl, "alpha", nil)
	b := tu.browser()
	b.login("op@example.com")

	_, _, body := b.get("/sites/alpha")
	mustContain(t, "site page", body, `action="/sites/alpha/warm"`, `as its template says (starting page)`, `name="prewarm" type="checkbox" value="1" checked`)

	site := func() *manage.Site {
		t.Helper()
		s, err := tu.svc.GetSite(context.Background(), "alpha")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	status, loc, _ := b.post("/sites/alpha/warm", url.Values{"serve_stale": {"on"}})
	if status != http.StatusSeeOther || loc != "/sites/alpha#warm" {
		t.Fatalf("saving warm starts: %d %q", status, loc)
	}
	if s := site(); s.ServeStale == nil || !*s.ServeStale || s.Prewarm {
		t.Fatalf("after serve stale on, pre-warm unchecked: serve_stale %v, prewarm %v", s.ServeStale, s.Prewarm)
	}
	_, _, body = b.get("/sites/alpha")
	mustContain(t, "site page", body, `<option value="on" selected>`, `name="prewarm" type="checkbox" value="1">`)

	if status, _, _ := b.post("/sites/alpha/warm", url.Values{"serve_stale": {""}, "prewarm": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("saving warm starts: %d", status)
	}
	if s := site(); s.ServeStale != nil || !s.Prewarm {
		t.Fatalf("after the template's setting, pre-warm checked: serve_stale %v, prewarm %v", s.ServeStale, s.Prewarm)
	}

	status, _, body = b.post("/sites/alpha/warm", url.Values{"serve_stale": {"sometimes"}})
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("a bad serve_stale: %d", status)
	}
	mustContain(t, "form again", body, "must be on, off or empty")
}
