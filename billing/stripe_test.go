package billing

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/billing/billingtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Every Stripe API call the service makes, against stripe-mock: customer
// creation, a subscription Checkout Session, a billing portal session.
func TestStripeCalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{APIURL: billingtest.StripeMock(t)})
	ctx := context.Background()

	c := &tenants.Customer{Email: "fresh@example.org", Name: "Fresh"}
	if err := f.store.CreateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EnsureCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.StripeCustomerID, "cus_") {
		t.Fatalf("stripe customer id %q", c.StripeCustomerID)
	}
	if stored, _ := f.store.GetCustomer(ctx, c.ID); stored.StripeCustomerID != c.StripeCustomerID {
		t.Fatalf("stored stripe customer id %q, want %q", stored.StripeCustomerID, c.StripeCustomerID)
	}

	checkout, err := f.svc.CheckoutURL(ctx, c, f.plan, "https://shop.example.org/ok", "https://shop.example.org/cancel")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := url.Parse(checkout); err != nil || u.Scheme != "https" {
		t.Fatalf("checkout url %q: %v", checkout, err)
	}
	portal, err := f.svc.PortalURL(ctx, c, "https://shop.example.org/account")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := url.Parse(portal); err != nil || u.Scheme != "https" {
		t.Fatalf("portal url %q: %v", portal, err)
	}

	// A plan without a price cannot be checked out; no call is made.
	free := &tenants.Plan{Slug: "free", Name: "Free"}
	if _, err := f.svc.CheckoutURL(ctx, c, free, "https://a.example/", "https://a.example/"); !errors.Is(err, ErrNoPrice) {
		t.Fatalf("plan without price: %v", err)
	}
	// Stripe refusing a request (stripe-mock takes test-mode keys only)
	// is an ErrStripe naming what was done.
	live, err := New(Config{SecretKey: "sk_live_refused", WebhookSecret: billingtest.WebhookSecret, APIURL: f.svc.cfg.APIURL, Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.CheckoutURL(ctx, c, f.plan, "https://a.example/", "https://a.example/"); !errors.Is(err, ErrStripe) || !strings.Contains(err.Error(), "checkout session") {
		t.Fatalf("refused checkout: %v", err)
	}
}

// The configured price of a slug wins over the plan's own.
func TestPriceOf(t *testing.T) {
	svc, err := New(Config{SecretKey: "sk_test_x", WebhookSecret: "whsec_x", Prices: map[string]string{"pro": "price_cfg"}, Store: &tenants.Store{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.PriceOf(&tenants.Plan{Slug: "pro", StripePriceID: "price_db"}); got != "price_cfg" {
		t.Fatalf("configured slug: %q", got)
	}
	if got := svc.PriceOf(&tenants.Plan{Slug: "basic", StripePriceID: "price_db"}); got != "price_db" {
		t.Fatalf("plan's own price: %q", got)
	}
}

// Stripe unreachable: an ErrStripe, after stripe-go's few retries.
func TestStripeUnreachable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{}) // api_url: a port nothing listens on
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := &tenants.Customer{ID: "00000000-0000-0000-0000-000000000001", Email: "x@example.org", Name: "X"}
	if _, err := f.svc.CreateCustomer(ctx, c); !errors.Is(err, ErrStripe) {
		t.Fatalf("unreachable stripe: %v", err)
	}
}

// Bad settings are refused, each naming its field.
func TestConfigValidate(t *testing.T) {
	good := Config{SecretKey: "sk_test_1", WebhookSecret: "whsec_1"}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"secret_key", func(c *Config) { c.SecretKey = "" }},
		{"secret_key", func(c *Config) { c.SecretKey = "pk_test_1" }},
		{"webhook_secret", func(c *Config) { c.WebhookSecret = "" }},
		{"webhook_secret", func(c *Config) { c.WebhookSecret = "secret" }},
		{"api_url", func(c *Config) { c.APIURL = "ftp://stripe" }},
		{"api_url", func(c *Config) { c.APIURL = "http://127.0.0.1:1/v1" }},
		{"grace_period", func(c *Config) { c.GracePeriod = -time.Second }},
		{"check_interval", func(c *Config) { c.CheckInterval = -time.Second }},
		{"prices", func(c *Config) { c.Prices = map[string]string{"Not A Slug": "price_1"} }},
		{"prices", func(c *Config) { c.Prices = map[string]string{"basic": ""} }},
	} {
		cfg := good
		tc.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	ok := good
	ok.APIURL, ok.Prices = "http://127.0.0.1:12111", map[string]string{"basic": "price_1"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Stripe delivering one event twice at once: one applies, the other is a
// duplicate; the customer changes once.
func TestWebhookConcurrentRedelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	payload := billingtest.Event(t, "evt_twice", EventInvoicePaymentFailed, time.Now(), billingtest.Invoice("in_1", "cus_payer", "sub_1"))
	sig := billingtest.Sign(payload, billingtest.WebhookSecret, time.Now())
	auditBefore := len(f.audit())
	var wg sync.WaitGroup
	outcomes := make([]string, 8)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.svc.HandleWebhook(context.Background(), payload, sig)
			if err != nil {
				t.Error(err)
				return
			}
			outcomes[i] = res.Outcome
		}()
	}
	wg.Wait()
	applied := 0
	for _, o := range outcomes {
		switch o {
		case tenants.BillingApplied:
			applied++
		case tenants.BillingDuplicate:
		default:
			t.Fatalf("outcome %q", o)
		}
	}
	if applied != 1 {
		t.Fatalf("applied %d times: %v", applied, outcomes)
	}
	if n := len(f.audit()) - auditBefore; n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
}
