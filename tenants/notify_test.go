package tenants

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestNotify checks that every kind of change reaches a LISTEN connection
// with the keys a cache needs to evict exactly what changed.
func TestNotify(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, schema := newTestStore(t)

	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+ChangeChannel); err != nil {
		t.Fatal(err)
	}
	// next returns the next change of this test's schema; parallel tests
	// share the channel.
	next := func() Change {
		t.Helper()
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				t.Fatalf("waiting for notification: %v", err)
			}
			c, err := ParseChange(n.Payload)
			if err != nil {
				t.Fatal(err)
			}
			if c.Schema == schema {
				return c
			}
		}
	}

	c := &Customer{Email: "n@example.org", Name: "N"}
	if err := s.CreateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Table != "customers" || got.Op != "insert" || got.ID != c.ID || got.CustomerID != c.ID {
		t.Fatalf("customer insert: %+v", got)
	}
	tpl := &Template{Slug: "t", Name: "T", Image: "nginx", Port: 80}
	if err := s.CreateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Table != "templates" || got.Op != "insert" || got.TemplateID != tpl.ID {
		t.Fatalf("template insert: %+v", got)
	}
	site := &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "old"}
	if err := s.CreateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Table != "sites" || got.Op != "insert" || got.SiteID != site.ID ||
		got.CustomerID != c.ID || got.TemplateID != tpl.ID || !slices.Equal(got.Subdomains, []string{"old"}) {
		t.Fatalf("site insert: %+v", got)
	}
	site.Subdomain = "new"
	if err := s.UpdateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Op != "update" || !slices.Equal(got.Subdomains, []string{"new", "old"}) {
		t.Fatalf("site rename must name both subdomains: %+v", got)
	}
	d := &Domain{SiteID: site.ID, Hostname: "shop.example.org"}
	if err := s.CreateDomain(ctx, "test", d); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Table != "domains" || got.Op != "insert" || got.SiteID != site.ID || !slices.Equal(got.Hostnames, []string{"shop.example.org"}) {
		t.Fatalf("domain insert: %+v", got)
	}
	if _, err := s.SetDomainVerified(ctx, "test", d.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Table != "domains" || got.Op != "update" || got.ID != d.ID {
		t.Fatalf("domain verify: %+v", got)
	}
	c.Status = CustomerSuspended
	if err := s.UpdateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Table != "customers" || got.Op != "update" || got.CustomerID != c.ID {
		t.Fatalf("customer update: %+v", got)
	}
	if err := s.UpdateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	if got := next(); got.Table != "templates" || got.Op != "update" || got.TemplateID != tpl.ID {
		t.Fatalf("template update: %+v", got)
	}
	if err := s.DeleteSite(ctx, "test", site.ID); err != nil {
		t.Fatal(err)
	}
	// The cascade deletes the domain first, within the same statement.
	got := []Change{next(), next()}
	slices.SortFunc(got, func(a, b Change) int { return len(a.Table) - len(b.Table) })
	if got[0].Table != "sites" || got[0].Op != "delete" || got[0].SiteID != site.ID || !slices.Equal(got[0].Subdomains, []string{"new"}) {
		t.Fatalf("site delete: %+v", got[0])
	}
	if got[1].Table != "domains" || got[1].Op != "delete" || !slices.Equal(got[1].Hostnames, []string{"shop.example.org"}) {
		t.Fatalf("cascaded domain delete: %+v", got[1])
	}
}
