package tenants

import (
	"context"
	"testing"
)

// TestWarmSettings: a site's serve-stale setting overrides its template's
// (nil takes the template's) in the route every request resolves, and
// pre-warm is on for a new site until a change turns it off.
func TestWarmSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, tpl, site := fixture(t, s)

	if !site.Prewarm || site.ServeStale != nil {
		t.Fatalf("new site: prewarm %v, serve_stale %v; want on and the template's", site.Prewarm, site.ServeStale)
	}
	route := func() *Route {
		t.Helper()
		r, err := s.SiteRoute(ctx, site.ID)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := route(); r.ServeStale() || !r.SitePrewarm {
		t.Fatalf("route of a new site: serve stale %v, prewarm %v", r.ServeStale(), r.SitePrewarm)
	}

	tpl.ServeStale = true
	if err := s.UpdateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTemplate(ctx, tpl.ID); err != nil || !got.ServeStale {
		t.Fatalf("template after update: %+v, %v", got, err)
	}
	if r := route(); !r.ServeStale() || r.SiteServeStale != nil {
		t.Fatalf("site on a serve-stale template: serve stale %v (own %v), want the template's (on)", r.ServeStale(), r.SiteServeStale)
	}

	off := false
	site.ServeStale, site.Prewarm = &off, false
	if err := s.UpdateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	if r := route(); r.ServeStale() || r.SitePrewarm {
		t.Fatalf("site with its own settings off: serve stale %v, prewarm %v", r.ServeStale(), r.SitePrewarm)
	}
	list, err := s.ListSites(ctx, SiteFilter{}, Page{})
	if err != nil || len(list) != 1 || list[0].ServeStale == nil || *list[0].ServeStale || list[0].Prewarm {
		t.Fatalf("ListSites = %+v, %v", list, err)
	}

	site.ServeStale = nil
	if err := s.UpdateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	if r := route(); !r.ServeStale() {
		t.Fatal("site back on its template's setting does not serve stale")
	}
}
