package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func wantConflict(t *testing.T, err error, field string) {
	t.Helper()
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want a conflict on %s", err, field)
	}
	if ce.Field != field {
		t.Fatalf("conflict on %q, want %q", ce.Field, field)
	}
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a validation error on %s", err, field)
	}
	if ve.Field != field {
		t.Fatalf("validation error on %q (%v), want %q", ve.Field, err, field)
	}
}

func TestCustomers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)

	c := &Customer{Email: "ada@example.org", Name: "Ada"}
	if err := s.CreateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.Status != CustomerActive || c.CreatedAt.IsZero() {
		t.Fatalf("created customer not filled in: %+v", c)
	}
	got, err := s.GetCustomer(ctx, c.ID)
	if err != nil || got.Email != c.Email || got.PlanID != "" {
		t.Fatalf("GetCustomer = %+v, %v", got, err)
	}
	wantConflict(t, s.CreateCustomer(ctx, "test", &Customer{Email: "ada@example.org", Name: "Other"}), "email")
	wantInvalid(t, s.CreateCustomer(ctx, "test", &Customer{Email: "nope", Name: "X"}), "email")
	wantInvalid(t, s.CreateCustomer(ctx, "test", &Customer{Email: "b@example.org", Name: "X", Status: "gone"}), "status")
	wantInvalid(t, s.CreateCustomer(ctx, "test", &Customer{Email: "b@example.org", Name: "X", PlanID: "00000000-0000-0000-0000-000000000001"}), "plan_id")

	plan := &Plan{Slug: "basic", Name: "Basic", MaxSites: 3, StripePriceID: "price_123"}
	if err := s.CreatePlan(ctx, "test", plan); err != nil {
		t.Fatal(err)
	}
	c.PlanID, c.Status, c.StripeCustomerID = plan.ID, CustomerPastDue, "cus_1"
	if err := s.UpdateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	if byStripe, err := s.GetCustomerByStripeID(ctx, "cus_1"); err != nil || byStripe.ID != c.ID || byStripe.PlanID != plan.ID {
		t.Fatalf("GetCustomerByStripeID = %+v, %v", byStripe, err)
	}
	if err := s.DeletePlan(ctx, "test", plan.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting a plan in use: %v, want conflict", err)
	}

	other := &Customer{Email: "bob@example.org", Name: "Bob"}
	if err := s.CreateCustomer(ctx, "test", other); err != nil {
		t.Fatal(err)
	}
	pastDue, err := s.ListCustomers(ctx, CustomerFilter{Status: CustomerPastDue}, Page{})
	if err != nil || len(pastDue) != 1 || pastDue[0].ID != c.ID {
		t.Fatalf("ListCustomers(past_due) = %+v, %v", pastDue, err)
	}
	first, err := s.ListCustomers(ctx, CustomerFilter{}, Page{Limit: 1})
	if err != nil || len(first) != 1 {
		t.Fatalf("page 1 = %+v, %v", first, err)
	}
	second, err := s.ListCustomers(ctx, CustomerFilter{}, Page{Limit: 1, After: first[0].ID})
	if err != nil || len(second) != 1 || second[0].ID == first[0].ID {
		t.Fatalf("page 2 = %+v, %v", second, err)
	}

	if err := s.DeleteCustomer(ctx, "test", other.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCustomer(ctx, other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v, want ErrNotFound", err)
	}
	if err := s.DeleteCustomer(ctx, "test", other.ID, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v, want ErrNotFound", err)
	}
	if _, err := s.GetCustomer(ctx, "not-a-uuid"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get malformed id: %v, want ErrNotFound", err)
	}
	if err := s.UpdateCustomer(ctx, "test", &Customer{ID: "00000000-0000-0000-0000-000000000009", Email: "x@example.org", Name: "X", Status: "active"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update missing: %v, want ErrNotFound", err)
	}
}

func TestDeleteCustomerWithSites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	c, _, site := fixture(t, s)
	if err := s.DeleteCustomer(ctx, "test", c.ID, false); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting a customer with sites: %v, want conflict", err)
	}
	if _, err := s.GetSite(ctx, site.ID); err != nil {
		t.Fatalf("refused delete removed the site: %v", err)
	}
	if err := s.DeleteCustomer(ctx, "test", c.ID, true); err != nil {
		t.Fatalf("cascade delete: %v", err)
	}
	if _, err := s.GetSite(ctx, site.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("site after cascade: %v, want ErrNotFound", err)
	}
	audit, err := s.ListAudit(ctx, AuditFilter{Entity: "site", EntityID: site.ID})
	if err != nil || len(audit) != 2 || audit[0].Action != "delete" || audit[1].Action != "create" {
		t.Fatalf("site audit = %+v, %v; want delete then create", audit, err)
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	tpl := &Template{Slug: "ghost", Name: "Ghost", Image: "ghost:5-alpine", Port: 2368,
		Env: map[string]string{"NODE_ENV": "production"}, DataPath: "/var/lib/ghost/content",
		HealthPath: "/ghost/api/admin/site/", MemoryBytes: 256 << 20, NanoCPUs: 5e8, PidsLimit: 200, CapAdd: []string{"CHOWN"}}
	if err := s.CreateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	if tpl.Version != 1 {
		t.Fatalf("new template at version %d, want 1", tpl.Version)
	}
	got, err := s.GetTemplateBySlug(ctx, "ghost")
	if err != nil || got.Env["NODE_ENV"] != "production" || len(got.CapAdd) != 1 || got.MemoryBytes != 256<<20 {
		t.Fatalf("GetTemplateBySlug = %+v, %v", got, err)
	}
	wantConflict(t, s.CreateTemplate(ctx, "test", &Template{Slug: "ghost", Name: "G2", Image: "ghost", Port: 1}), "slug")
	tpl.Image = "ghost:6-alpine"
	if err := s.UpdateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	if tpl.Version != 2 || tpl.Image != "ghost:6-alpine" {
		t.Fatalf("updated template = version %d image %s, want 2 ghost:6-alpine", tpl.Version, tpl.Image)
	}
	noEnv := &Template{Slug: "bare", Name: "Bare", Image: "busybox", Port: 8080}
	if err := s.CreateTemplate(ctx, "test", noEnv); err != nil {
		t.Fatalf("template without env or caps: %v", err)
	}
	if noEnv.Env == nil || noEnv.CapAdd == nil {
		t.Fatalf("template without env reads back nil maps: %+v", noEnv)
	}
	list, err := s.ListTemplates(ctx, Page{})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListTemplates = %d, %v", len(list), err)
	}
	if err := s.DeleteTemplate(ctx, "test", noEnv.ID); err != nil {
		t.Fatal(err)
	}
}

func TestSites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	c, tpl, site := fixture(t, s)

	wantConflict(t, s.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "ada"}), "subdomain")
	wantInvalid(t, s.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "admin"}), "subdomain")
	wantInvalid(t, s.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "Bad_Name"}), "subdomain")
	wantInvalid(t, s.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: "00000000-0000-0000-0000-000000000001", Subdomain: "x"}), "template_id")
	wantInvalid(t, s.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: "nope", Subdomain: "x"}), "template_id")
	wantInvalid(t, s.CreateSite(ctx, "test", &Site{CustomerID: "00000000-0000-0000-0000-000000000001", TemplateID: tpl.ID, Subdomain: "x"}), "customer_id")
	wantInvalid(t, s.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "x", Env: map[string]string{"1BAD": "v"}}), "env")
	if err := s.DeleteTemplate(ctx, "test", tpl.ID); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting a template in use: %v, want conflict", err)
	}

	site.Env = map[string]string{"GREETING": "hi"}
	site.Status = SiteSuspended
	if err := s.UpdateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSiteBySubdomain(ctx, "ada")
	if err != nil || got.Env["GREETING"] != "hi" || got.Status != SiteSuspended {
		t.Fatalf("GetSiteBySubdomain = %+v, %v", got, err)
	}
	list, err := s.ListSites(ctx, SiteFilter{CustomerID: c.ID, Status: SiteSuspended}, Page{})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListSites = %+v, %v", list, err)
	}
	if list, err := s.ListSites(ctx, SiteFilter{Status: SiteActive}, Page{}); err != nil || len(list) != 0 {
		t.Fatalf("ListSites(active) = %+v, %v", list, err)
	}

	now := site.UpdatedAt
	if err := s.SaveRuntimes(ctx, []SiteRuntime{{SiteID: site.ID, ContainerID: "abc", State: "running", Upstream: "127.0.0.1:1234", LastStartedAt: &now},
		{SiteID: "00000000-0000-0000-0000-000000000001", State: "running"}}); err != nil {
		t.Fatalf("saving runtimes (one of a deleted site): %v", err)
	}
	rt, err := s.GetRuntime(ctx, site.ID)
	if err != nil || rt.ContainerID != "abc" || rt.Upstream != "127.0.0.1:1234" {
		t.Fatalf("GetRuntime = %+v, %v", rt, err)
	}

	if err := s.DeleteSite(ctx, "test", site.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRuntime(ctx, site.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("runtime after site delete: %v, want ErrNotFound", err)
	}
}

func TestDomains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	_, _, site := fixture(t, s)

	d := &Domain{SiteID: site.ID, Hostname: "WWW.Ada-Shop.COM."}
	if err := s.CreateDomain(ctx, "test", d); err != nil {
		t.Fatal(err)
	}
	if d.Hostname != "www.ada-shop.com" || d.Verified || len(d.VerifyToken) != 32 {
		t.Fatalf("created domain = %+v", d)
	}
	wantConflict(t, s.CreateDomain(ctx, "test", &Domain{SiteID: site.ID, Hostname: "www.ada-shop.com"}), "hostname")
	wantInvalid(t, s.CreateDomain(ctx, "test", &Domain{SiteID: site.ID, Hostname: "shop.example.com"}), "hostname")
	wantInvalid(t, s.CreateDomain(ctx, "test", &Domain{SiteID: site.ID, Hostname: "bad host"}), "hostname")
	// A port is refused, not dropped as it is from a Host header.
	wantInvalid(t, s.CreateDomain(ctx, "test", &Domain{SiteID: site.ID, Hostname: "shop.ada.org:443"}), "hostname")
	wantInvalid(t, s.CreateDomain(ctx, "test", &Domain{SiteID: "00000000-0000-0000-0000-000000000001", Hostname: "x.org"}), "site_id")

	idn := &Domain{SiteID: site.ID, Hostname: "bücher.example.org"}
	if err := s.CreateDomain(ctx, "test", idn); err != nil || idn.Hostname != "xn--bcher-kva.example.org" {
		t.Fatalf("IDN domain = %+v, %v", idn, err)
	}
	if got, err := s.GetDomainByHostname(ctx, "BÜCHER.example.org."); err != nil || got.ID != idn.ID {
		t.Fatalf("GetDomainByHostname(unicode) = %+v, %v", got, err)
	}

	v, err := s.SetDomainVerified(ctx, "test", d.ID, true)
	if err != nil || !v.Verified || v.VerifiedAt == nil {
		t.Fatalf("SetDomainVerified = %+v, %v", v, err)
	}
	list, err := s.ListDomains(ctx, site.ID, Page{})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListDomains = %+v, %v", list, err)
	}
	if err := s.DeleteDomain(ctx, "test", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDomain(ctx, d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted domain: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	token, key, err := s.CreateAPIKey(ctx, "test", "deploy bot", ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.AuthenticateAPIKey(ctx, token)
	if err != nil || got.ID != key.ID || got.Scope != ScopeWrite {
		t.Fatalf("AuthenticateAPIKey = %+v, %v", got, err)
	}
	// Another last character: one the token does not end with.
	other := "A"
	if strings.HasSuffix(token, other) {
		other = "B"
	}
	for _, bad := range []string{"", "mtk_", token + "x", token[:len(token)-1] + other, "mtk_" + key.KeyID + "_", "Bearer " + token} {
		if _, err := s.AuthenticateAPIKey(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Fatalf("AuthenticateAPIKey(%q) = %v, want ErrNotFound", bad, err)
		}
	}
	if _, _, err := s.CreateAPIKey(ctx, "test", "x", "admin"); err == nil {
		t.Fatal("scope admin accepted")
	}
	if err := s.RevokeAPIKey(ctx, "test", key.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateAPIKey(ctx, token); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked key authenticates: %v", err)
	}
	keys, err := s.ListAPIKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].RevokedAt == nil {
		t.Fatalf("ListAPIKeys = %+v, %v", keys, err)
	}
	b, _ := json.Marshal(keys[0])
	if bytes.Contains(b, key.SecretHash) || bytes.Contains(b, []byte("secret_hash")) {
		t.Fatal("api key JSON exposes the secret hash")
	}
}

func TestAuditRecordsBeforeAndAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	c := &Customer{Email: "a@example.org", Name: "A"}
	if err := s.CreateCustomer(ctx, "alice", c); err != nil {
		t.Fatal(err)
	}
	c.Name = "B"
	if err := s.UpdateCustomer(ctx, "bob", c); err != nil {
		t.Fatal(err)
	}
	entries, err := s.ListAudit(ctx, AuditFilter{Entity: "customer", EntityID: c.ID})
	if err != nil || len(entries) != 2 {
		t.Fatalf("ListAudit = %+v, %v", entries, err)
	}
	upd := entries[0]
	var before, after Customer
	if err := json.Unmarshal(upd.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(upd.After, &after); err != nil {
		t.Fatal(err)
	}
	if upd.Actor != "bob" || upd.Action != "update" || before.Name != "A" || after.Name != "B" {
		t.Fatalf("update audit = %+v (before %s, after %s)", upd, before.Name, after.Name)
	}
	if entries[1].Actor != "alice" || entries[1].Before != nil {
		t.Fatalf("create audit = %+v", entries[1])
	}
	// A refused write leaves no audit entry.
	_ = s.CreateCustomer(ctx, "eve", &Customer{Email: "a@example.org", Name: "dup"})
	all, _ := s.ListAudit(ctx, AuditFilter{})
	for _, e := range all {
		if e.Actor == "eve" {
			t.Fatalf("refused write audited: %+v", e)
		}
	}
	counts, err := s.Count(ctx)
	if err != nil || counts.Customers != 1 {
		t.Fatalf("Count = %+v, %v", counts, err)
	}
}

// SQL metacharacters are data, never SQL.
func TestMetacharactersAreData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	evil := `Robert'); DROP TABLE customers;-- \ % _ "`
	c := &Customer{Email: "bobby@example.org", Name: evil}
	if err := s.CreateCustomer(ctx, "x'; DROP TABLE audit_log;--", c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCustomer(ctx, c.ID)
	if err != nil || got.Name != evil {
		t.Fatalf("name round trip = %q, %v", got.Name, err)
	}
	// A filter value that matches nothing is refused before any SQL.
	_, err = s.ListCustomers(ctx, CustomerFilter{Status: "' OR 1=1 --"}, Page{})
	wantInvalid(t, err, "status")
}
