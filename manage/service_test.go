package manage

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// newService is a service on a fresh schema of the test database, without
// containers.
func newService(t *testing.T, cfg Config) *Service {
	t.Helper()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	if _, err := tenants.Migrate(context.Background(), pool, schema); err != nil {
		t.Fatal(err)
	}
	cfg.Store = tenants.NewStore(pool, tenants.Options{BaseDomain: "example.com", Reserved: []string{"admin", "www"}})
	return New(cfg)
}

func wantCode(t *testing.T, err error, code Code, field string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code || e.Field != field {
		t.Fatalf("got %v, want an *Error %s field %q", err, code, field)
	}
}

// Wherever an action takes an id it takes the natural key too; a missing
// reference is NotFound (a path) or Invalid naming the field (a body).
func TestReferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, Config{})
	plan, err := s.CreatePlan(ctx, "t", PlanInput{Slug: "basic", Name: "Basic", MaxSites: 5})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateCustomer(ctx, "t", CustomerInput{Email: "Ada@Example.org", Name: "Ada", Plan: "basic"})
	if err != nil {
		t.Fatal(err)
	}
	if c.PlanID != plan.ID || c.PlanSlug != "basic" {
		t.Fatalf("customer's plan: %+v", c)
	}
	if _, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}); err != nil {
		t.Fatal(err)
	}
	site, err := s.CreateSite(ctx, "t", SiteInput{Customer: "ada@example.org", Template: "static", Subdomain: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	if site.CustomerEmail != "Ada@Example.org" || site.TemplateSlug != "static" || site.State != StateAbsent {
		t.Fatalf("site as answered: %+v", site)
	}
	for _, ref := range []string{site.ID, "ada"} {
		if got, err := s.GetSite(ctx, ref); err != nil || got.ID != site.ID {
			t.Errorf("GetSite(%q) = %+v, %v", ref, got, err)
		}
	}
	d, err := s.CreateDomain(ctx, "t", DomainInput{Site: "ada", Hostname: "www.ada-shop.test"})
	if err != nil || d.Subdomain != "ada" {
		t.Fatalf("domain: %+v %v", d, err)
	}
	if got, err := s.GetDomain(ctx, "WWW.Ada-Shop.test."); err != nil || got.ID != d.ID {
		t.Errorf("GetDomain by hostname: %+v %v", got, err)
	}
	sites, err := s.AllSites(ctx, SiteFilter{Customer: "ada@example.org", Template: "static"})
	if err != nil || len(sites) != 1 {
		t.Errorf("sites of the customer by email: %+v %v", sites, err)
	}

	_, err = s.GetSite(ctx, "nosuch")
	wantCode(t, err, NotFound, "")
	if !strings.Contains(err.Error(), `no site "nosuch"`) {
		t.Errorf("message %q", err)
	}
	_, err = s.GetCustomer(ctx, "x\x00y")
	wantCode(t, err, NotFound, "")
	_, err = s.CreateSite(ctx, "t", SiteInput{Customer: "nobody@example.org", Template: "static", Subdomain: "b"})
	wantCode(t, err, Invalid, "customer_id")
	_, err = s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Template: "nope", Subdomain: "b"})
	wantCode(t, err, Invalid, "template_id")
	_, err = s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Subdomain: "b"})
	wantCode(t, err, Invalid, "template_id")
	_, err = s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Template: "static", Subdomain: "www"})
	wantCode(t, err, Invalid, "subdomain")
	_, err = s.ListSites(ctx, SiteFilter{Template: "nope"}, Page{})
	wantCode(t, err, Invalid, "template_id")
}

// A plan's max_sites holds, decided in the transaction that adds a site:
// concurrent adds for one customer count each other.
func TestPlanMaxSites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, Config{})
	if _, err := s.CreatePlan(ctx, "t", PlanInput{Slug: "trio", Name: "Trio", MaxSites: 3}); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateCustomer(ctx, "t", CustomerInput{Email: "m@example.org", Name: "M", Plan: "trio"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateCustomer(ctx, "t", CustomerInput{Email: "o@example.org", Name: "O"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Template: "static", Subdomain: "m" + string(rune('a'+i))})
		}()
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case IsCode(err, Conflict):
			wantCode(t, err, Conflict, "customer_id")
			if !strings.Contains(err.Error(), "plan trio allows 3 sites") {
				t.Errorf("conflict message: %v", err)
			}
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if created != 3 {
		t.Fatalf("%d sites created, want the plan's 3", created)
	}
	// Moving a site to the full customer is refused too.
	site, err := s.CreateSite(ctx, "t", SiteInput{Customer: other.ID, Template: "static", Subdomain: "other"})
	if err != nil {
		t.Fatal(err)
	}
	moved := c.Email
	_, err = s.UpdateSite(ctx, "t", site.ID, SitePatch{Customer: &moved})
	wantCode(t, err, Conflict, "customer_id")
}

// Verifying keeps a verified domain verified when its DNS fails now (a
// hiccup must not take a site down) and writes nothing when it passes
// again.
func TestVerifyDomain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dns := dnstest.Start(t)
	s := newService(t, Config{Verifier: &Verifier{Resolver: NewResolver(dns.Addr)}})
	c, _ := s.CreateCustomer(ctx, "t", CustomerInput{Email: "v@example.org", Name: "V"})
	if _, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Template: "static", Subdomain: "v"}); err != nil {
		t.Fatal(err)
	}
	d, err := s.CreateDomain(ctx, "t", DomainInput{Site: "v", Hostname: "shop.v.test"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.VerifyDomain(ctx, "t", d.Hostname, false)
	if err != nil || res.Verified || res.Reason == "" {
		t.Fatalf("before DNS: %+v %v", res, err)
	}
	dns.SetTXT(TXTPrefix+"shop.v.test", d.VerifyToken)
	if res, err = s.VerifyDomain(ctx, "t", d.Hostname, false); err != nil || !res.Verified || res.Method != "txt" {
		t.Fatalf("with DNS: %+v %v", res, err)
	}
	audits := func() int {
		list, err := s.ListAudit(ctx, tenants.AuditFilter{Entity: "domain", EntityID: d.ID})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	n := audits()
	if res, err = s.VerifyDomain(ctx, "t", d.Hostname, false); err != nil || !res.Verified || audits() != n {
		t.Fatalf("passing again: %+v %v, %d audit entries (was %d)", res, err, audits(), n)
	}
	dns.SetTXT(TXTPrefix+"shop.v.test", "wrong")
	if res, err = s.VerifyDomain(ctx, "t", d.Hostname, false); err != nil || !res.Verified || res.Method != "" || res.Reason == "" {
		t.Fatalf("DNS failing after verification: %+v %v", res, err)
	}
}

// Without a runtime site actions say so; without billing checkout does.
func TestWithoutRuntimeOrBilling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, Config{})
	c, _ := s.CreateCustomer(ctx, "t", CustomerInput{Email: "n@example.org", Name: "N"})
	if _, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSite(ctx, "t", SiteInput{Customer: c.ID, Template: "static", Subdomain: "n"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.SiteAction(ctx, "t", "n", ActionStart)
	wantCode(t, err, NoRuntime, "")
	_, err = s.Checkout(ctx, "t", c.ID, CheckoutInput{Plan: "x", SuccessURL: "https://a.test/", CancelURL: "https://a.test/"})
	wantCode(t, err, NotConfigured, "")
}
