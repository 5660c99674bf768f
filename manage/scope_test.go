package manage

import (
	"context"
	"testing"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// A customer's scope reaches that customer's sites and domains only: what
// belongs to another is NotFound by id and by natural key, for reading and
// for acting, and nothing changes.
func TestCustomerScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, Config{})
	if _, err := s.CreateTemplate(ctx, "t", TemplateInput{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}); err != nil {
		t.Fatal(err)
	}
	mine := mustCustomer(t, s, "mine@example.org")
	theirs := mustCustomer(t, s, "theirs@example.org")
	mySite, err := s.CreateSite(ctx, "t", SiteInput{Customer: mine.ID, Template: "static", Subdomain: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	theirSite, err := s.CreateSite(ctx, "t", SiteInput{Customer: theirs.ID, Template: "static", Subdomain: "theirs"})
	if err != nil {
		t.Fatal(err)
	}
	theirDomain, err := s.CreateDomain(ctx, "t", DomainInput{Site: theirSite.ID, Hostname: "theirs.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	scope := s.ForCustomer(mine.ID)

	sites, err := scope.Sites(ctx)
	if err != nil || len(sites) != 1 || sites[0].ID != mySite.ID {
		t.Fatalf("the scope's sites: %+v %v", sites, err)
	}
	if got, err := scope.Site(ctx, "mine"); err != nil || got.ID != mySite.ID {
		t.Fatalf("own site by subdomain: %v", err)
	}
	if _, err := scope.CreateDomain(ctx, "me", DomainInput{Site: "mine", Hostname: "mine.example.net"}); err != nil {
		t.Fatalf("adding a domain to an own site: %v", err)
	}

	audit := func() int {
		list, err := s.ListAudit(ctx, tenants.AuditFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	before := audit()
	for _, ref := range []string{theirSite.ID, "theirs"} {
		for name, call := range map[string]func() error{
			"site":     func() error { _, err := scope.Site(ctx, ref); return err },
			"status":   func() error { _, err := scope.SiteStatus(ctx, ref); return err },
			"restart":  func() error { _, err := scope.SiteAction(ctx, "me", ref, ActionRestart); return err },
			"stop":     func() error { _, err := scope.SiteAction(ctx, "me", ref, ActionStop); return err },
			"logs":     func() error { _, err := scope.SiteLogs(ctx, ref, 10, false); return err },
			"figures":  func() error { _, err := scope.SiteFigures(ctx, ref, 0, 0); return err },
			"prewarms": func() error { _, err := scope.SitePrewarms(ctx, ref, 0); return err },
			"releases": func() error {
				_, err := scope.Releases(ctx, ref, 0, 10)
				return err
			},
			"domains": func() error { _, err := scope.Domains(ctx, ref); return err },
		} {
			if err := call(); !IsCode(err, NotFound) {
				t.Errorf("%s of another customer's site %q: %v, want NotFound", name, ref, err)
			}
		}
		_, err := scope.CreateDomain(ctx, "me", DomainInput{Site: ref, Hostname: "sneaky.example.net"})
		wantCode(t, err, Invalid, "site_id")
	}
	for _, ref := range []string{theirDomain.ID, theirDomain.Hostname} {
		if _, err := scope.VerifyDomain(ctx, "me", ref); !IsCode(err, NotFound) {
			t.Errorf("verifying another customer's domain %q: %v", ref, err)
		}
		if _, err := scope.DeleteDomain(ctx, "me", ref); !IsCode(err, NotFound) {
			t.Errorf("removing another customer's domain %q: %v", ref, err)
		}
	}
	if after := audit(); after != before {
		t.Fatalf("refused actions wrote %d audit entries", after-before)
	}
	if _, err := s.GetDomain(ctx, theirDomain.ID); err != nil {
		t.Fatalf("another customer's domain is gone: %v", err)
	}
	if _, err := scope.SiteAction(ctx, "me", "mine", ActionRedeploy); !IsCode(err, Invalid) {
		t.Fatalf("a customer's user redeployed: %v", err)
	}
}

func mustCustomer(t *testing.T, s *Service, email string) *Customer {
	t.Helper()
	c, err := s.CreateCustomer(context.Background(), "t", CustomerInput{Email: email, Name: email})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Passwords: argon2id hashes verify, wrong passwords and foreign hashes do
// not, and sign-in cannot tell an unknown email from a wrong password.
func TestPasswordsAndAuthenticate(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("own hash: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(h, "correct horse batterY"); ok {
		t.Fatal("a wrong password verified")
	}
	if _, err := VerifyPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Fatal("a bcrypt hash was taken for argon2id")
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}

	ctx := context.Background()
	s := newService(t, Config{})
	if _, err := s.CreateOperator(ctx, "t", "op@example.org", "Op", "short"); !IsCode(err, Invalid) {
		t.Fatalf("a short password: %v", err)
	}
	if _, err := s.CreateOperator(ctx, "t", "op@example.org", "Op", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOperator(ctx, "t", "op@example.org", "Op", "correct horse battery"); !IsCode(err, Conflict) {
		t.Fatalf("a second operator with one email: %v", err)
	}
	if u, err := s.Authenticate(ctx, "op@example.org", "correct horse battery"); err != nil || !u.Operator() {
		t.Fatalf("sign-in: %v", err)
	}
	_, wrong := s.Authenticate(ctx, "op@example.org", "wrong password here")
	_, unknown := s.Authenticate(ctx, "nobody@example.org", "correct horse battery")
	if !IsCode(wrong, Denied) || !IsCode(unknown, Denied) || wrong.Error() != unknown.Error() {
		t.Fatalf("failed sign-ins differ: %v / %v", wrong, unknown)
	}
	if err := s.DeleteUser(ctx, "t", "op@example.org"); !IsCode(err, Conflict) {
		t.Fatalf("removing the last operator: %v", err)
	}
}
