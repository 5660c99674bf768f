package tenants

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Every text field takes up to its limit in characters, whatever their
// size in bytes, and refuses one more, NUL and invalid UTF-8, naming the
// field; what would reach PostgreSQL is checked before any SQL.
func TestTextLimits(t *testing.T) {
	t.Parallel()
	store := &Store{opts: Options{BaseDomain: "example.com"}}
	const uuid = "6f1c1d5e-0000-4000-8000-000000000000"
	customer := func(mod func(*Customer)) error {
		c := &Customer{Email: "a@example.org", Name: "A", Status: CustomerActive}
		mod(c)
		return validateCustomer(c)
	}
	plan := func(mod func(*Plan)) error {
		p := &Plan{Slug: "p", Name: "P", MaxSites: 1}
		mod(p)
		return validatePlan(p)
	}
	template := func(mod func(*Template)) error {
		tpl := &Template{Slug: "t", Name: "T", Image: "nginx:1.27", Port: 80}
		mod(tpl)
		return validateTemplate(tpl)
	}
	site := func(mod func(*Site)) error {
		s := &Site{CustomerID: uuid, TemplateID: uuid, Subdomain: "s", Status: SiteActive}
		mod(s)
		return store.validateSite(s)
	}
	domain := func(mod func(*Domain)) error {
		d := &Domain{SiteID: uuid, Hostname: "shop.test"}
		mod(d)
		return store.validateDomain(d)
	}
	// "é" is two bytes: a limit counted in bytes would refuse the fits.
	chars := func(n int) string { return strings.Repeat("é", n) }
	local := func(n int) string { return strings.Repeat("é", n-len("@example.org")) + "@example.org" }
	path := func(n int) string { return "/" + strings.Repeat("é", n-1) }
	host := func(n int) string { return strings.Repeat("a.", (n-1)/2) + strings.Repeat("b", 1+(n-1)%2) }
	// The longest references: a 255-character name, a tag, a sha512 digest.
	image := func(n int) string {
		name := "registry.test/" + strings.Repeat("a", 255-len("registry.test/"))
		digest := "@sha512:" + strings.Repeat("0", 128)
		return name + ":" + strings.Repeat("t", n-len(name)-1-len(digest)) + digest
	}
	cases := []struct {
		field string
		max   int
		check func(v string) error
		fit   func(n int) string // a valid value of n characters
		small string             // a short valid value
	}{
		{"email", MaxEmailLen, func(v string) error { return customer(func(c *Customer) { c.Email = v }) }, local, "a@example.org"},
		{"name", MaxNameLen, func(v string) error { return customer(func(c *Customer) { c.Name = v }) }, chars, "é"},
		{"name", MaxNameLen, func(v string) error { return plan(func(p *Plan) { p.Name = v }) }, chars, "é"},
		{"name", MaxNameLen, func(v string) error { return template(func(t *Template) { t.Name = v }) }, chars, "é"},
		{"description", MaxDescriptionLen, func(v string) error { return template(func(t *Template) { t.Description = v }) }, chars, "é"},
		{"image", MaxImageLen, func(v string) error { return template(func(t *Template) { t.Image = v }) }, image, "nginx"},
		{"data_path", MaxPathLen, func(v string) error { return template(func(t *Template) { t.DataPath = v }) }, path, "/é"},
		{"health_path", MaxPathLen, func(v string) error { return template(func(t *Template) { t.HealthPath = v }) }, path, "/é"},
		{"env.FOO", MaxEnvValueLen, func(v string) error { return template(func(t *Template) { t.Env = map[string]string{"FOO": v} }) }, chars, "é"},
		{"env.FOO", MaxEnvValueLen, func(v string) error { return site(func(s *Site) { s.Env = map[string]string{"FOO": v} }) }, chars, "é"},
		{"hostname", MaxHostnameLen, func(v string) error { return domain(func(d *Domain) { d.Hostname = v }) }, host, "shop.test"},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s (%d)", c.field, c.max)
		if err := c.check(c.fit(c.max)); err != nil {
			t.Errorf("%s: %d characters refused: %v", name, c.max, err)
		}
		for _, bad := range []struct{ what, v, msg string }{
			{"one character more", c.fit(c.max + 1), "longer than"},
			{"NUL", c.small + "\x00", "NUL"},
			{"invalid UTF-8", c.small + "\xff", "UTF-8"},
		} {
			err := c.check(bad.v)
			if !isInvalid(err, c.field) || !strings.Contains(err.Error(), bad.msg) {
				t.Errorf("%s, %s: %v, want a validation error on %s saying %q", name, bad.what, err, c.field, bad.msg)
			}
		}
	}
}

// Env maps are bounded in entries and name length; a bad name is the
// map's field, a bad value names its variable.
func TestEnvLimits(t *testing.T) {
	t.Parallel()
	full := map[string]string{}
	for i := range MaxEnvEntries {
		full[fmt.Sprintf("V%d", i)] = "x"
	}
	if err := ValidateEnv("env", full); err != nil {
		t.Fatalf("%d variables refused: %v", MaxEnvEntries, err)
	}
	full["ONE_MORE"] = "x"
	if err := ValidateEnv("env", full); !isInvalid(err, "env") {
		t.Errorf("%d variables: %v", MaxEnvEntries+1, err)
	}
	long := "V" + strings.Repeat("A", MaxEnvNameLen-1)
	if err := ValidateEnv("env", map[string]string{long: "x"}); err != nil {
		t.Errorf("a %d-character name refused: %v", MaxEnvNameLen, err)
	}
	if err := ValidateEnv("env", map[string]string{long + "A": "x"}); !isInvalid(err, "env") {
		t.Errorf("a %d-character name: %v", MaxEnvNameLen+1, err)
	}
	if err := ValidateEnv("env", map[string]string{"A\x00": "x"}); !isInvalid(err, "env") {
		t.Errorf("a name with NUL: %v", err)
	}
}

// Stripe ids are checked for the shape Stripe gives them; max_sites fits
// its integer column.
func TestStripeIDsAndMaxSites(t *testing.T) {
	t.Parallel()
	customer := func(cus, sub string) error {
		return validateCustomer(&Customer{Email: "a@example.org", Name: "A", Status: CustomerActive,
			StripeCustomerID: cus, StripeSubscriptionID: sub})
	}
	price := func(id string) error {
		return validatePlan(&Plan{Slug: "p", Name: "P", MaxSites: 1, StripePriceID: id})
	}
	maxLen := "cus_" + strings.Repeat("A", MaxStripeIDLen-4)
	for _, ok := range []error{customer("", ""), customer("cus_NffrFeUfNV2Hib", "sub_1MowQVLkdIwHu7ixeRlqHVzs"),
		customer(maxLen, ""), price(""), price("price_1MoBy5LkdIwHu7ixZhnattbh")} {
		if ok != nil {
			t.Errorf("valid Stripe id refused: %v", ok)
		}
	}
	for _, bad := range []string{"cus_", "sub_123", "cus", "cus_a-b", "cus_a_b", "cus_a b", "cus_é", "cus_a\x00", maxLen + "A", " cus_a"} {
		if err := customer(bad, ""); !isInvalid(err, "stripe_customer_id") {
			t.Errorf("stripe_customer_id %q: %v", bad, err)
		}
	}
	for _, bad := range []string{"cus_123", "sub_", "sub_x.y"} {
		if err := customer("", bad); !isInvalid(err, "stripe_subscription_id") {
			t.Errorf("stripe_subscription_id %q: %v", bad, err)
		}
	}
	for _, bad := range []string{"prod_1", "plan_basic", "price_", "price_pro_monthly"} {
		if err := price(bad); !isInvalid(err, "stripe_price_id") {
			t.Errorf("stripe_price_id %q: %v", bad, err)
		}
	}
	if err := validatePlan(&Plan{Slug: "p", Name: "P", MaxSites: MaxPlanSites}); err != nil {
		t.Errorf("max_sites %d refused: %v", MaxPlanSites, err)
	}
	for _, n := range []int{0, -1, MaxPlanSites + 1, 1 << 31, 1 << 40} {
		if err := validatePlan(&Plan{Slug: "p", Name: "P", MaxSites: n}); !isInvalid(err, "max_sites") {
			t.Errorf("max_sites %d: %v", n, err)
		}
	}
}

// Listing filters take only values that can match: a status that does
// not exist, an entity the audit log does not record or an id that is no
// uuid is refused naming the filter, not answered with everything or
// nothing.
func TestListFiltersAreValidated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestStore(t)
	fixture(t, s)
	_, err := s.ListCustomers(ctx, CustomerFilter{Status: "bogus"}, Page{})
	wantInvalid(t, err, "status")
	_, err = s.ListSites(ctx, SiteFilter{Status: "active;"}, Page{})
	wantInvalid(t, err, "status")
	_, err = s.ListSites(ctx, SiteFilter{CustomerID: "nope"}, Page{})
	wantInvalid(t, err, "customer_id")
	_, err = s.ListAudit(ctx, AuditFilter{Entity: "sites"})
	wantInvalid(t, err, "entity")
	_, err = s.ListAudit(ctx, AuditFilter{Entity: "site", EntityID: "1 OR 1=1"})
	wantInvalid(t, err, "entity_id")
	for _, st := range CustomerStatuses {
		if _, err := s.ListCustomers(ctx, CustomerFilter{Status: st}, Page{}); err != nil {
			t.Errorf("status %s: %v", st, err)
		}
	}
	if list, err := s.ListAudit(ctx, AuditFilter{Entity: "site"}); err != nil || len(list) != 1 {
		t.Errorf("audit of sites: %d entries, %v", len(list), err)
	}
	// A plan reference that is neither a uuid nor a slug is not looked up.
	if _, err := s.FindPlan(ctx, strings.Repeat("x", 1000)); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindPlan(1000 x): %v", err)
	}
}

func isInvalid(err error, field string) bool {
	var ve *ValidationError
	return errors.As(err, &ve) && ve.Field == field
}
