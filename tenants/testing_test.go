package tenants

import (
	"context"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// newTestStore returns a store on a fresh, migrated schema of its own.
func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	return newTestStoreTB(t)
}

func newTestStoreTB(t testing.TB) (*Store, string) {
	t.Helper()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	if _, err := Migrate(context.Background(), pool, schema); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	return NewStore(pool, Options{BaseDomain: "example.com", Reserved: []string{"admin", "www"}}), schema
}

// fixture creates a customer, a template and a site.
func fixture(t *testing.T, s *Store) (*Customer, *Template, *Site) {
	t.Helper()
	ctx := context.Background()
	c := &Customer{Email: "ada@example.org", Name: "Ada"}
	if err := s.CreateCustomer(ctx, "test", c); err != nil {
		t.Fatalf("creating customer: %v", err)
	}
	tpl := &Template{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80, Env: map[string]string{"A": "1"}}
	if err := s.CreateTemplate(ctx, "test", tpl); err != nil {
		t.Fatalf("creating template: %v", err)
	}
	site := &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "ada"}
	if err := s.CreateSite(ctx, "test", site); err != nil {
		t.Fatalf("creating site: %v", err)
	}
	return c, tpl, site
}
