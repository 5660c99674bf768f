package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// TestSiteStaleCopies: an operator's site page says how many stale
// responses PostgreSQL keeps of the site and their size; a customer's
// does not.
func TestSiteStaleCopies(t *testing.T) {
	tu := newTestUI(t, manage.Config{})
	tu.operator("op@example.com")
	tmpl := tu.seedTemplate("blog")
	a, _ := tu.customerUser("a@example.com")
	site := tu.seedSite(a.ID, tmpl, "alpha", nil)
	b := tu.browser()
	b.login("op@example.com")

	_, _, body := b.get("/sites/alpha")
	mustContain(t, "site page without copies", body, `Kept for serving stale: 0 responses, –`)

	now := time.Now()
	copies := []tenants.StaleResponse{
		{SiteID: site.ID, Key: "GET alpha.example.com/", Status: 200, Body: make([]byte, 3000), StoredAt: now},
		{SiteID: site.ID, Key: "GET alpha.example.com/about", Status: 200, Body: make([]byte, 2000), StoredAt: now},
	}
	if err := tu.svc.Store().SaveStaleResponses(context.Background(), copies, 1<<20); err != nil {
		t.Fatal(err)
	}
	_, _, body = b.get("/sites/alpha")
	mustContain(t, "site page with two copies", body, `Kept for serving stale: 2 responses, 4.9 KiB`)

	c := tu.browser()
	c.login("a@example.com")
	status, _, body := c.get("/sites/alpha")
	if status != http.StatusOK || strings.Contains(body, "Kept for serving stale") {
		t.Fatalf("the customer's site page: %d, shows the copies: %v", status, strings.Contains(body, "Kept for serving stale"))
	}
}
