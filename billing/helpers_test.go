package billing

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/billing/billingtest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fixture is a billing service on a fresh schema of the test database,
// with one customer (linked to a Stripe customer), a plan and two sites.
type fixture struct {
	t        *testing.T
	pool     *pgxpool.Pool
	store    *tenants.Store
	svc      *Service
	sites    *recordingSites
	customer *tenants.Customer
	plan     *tenants.Plan
	siteIDs  []string
}

type fixtureOptions struct {
	APIURL        string        // Default: a port nothing listens on (no Stripe calls expected)
	GracePeriod   time.Duration // Default: 72h
	CheckInterval time.Duration
	Prices        map[string]string
}

func newFixture(t *testing.T, opts fixtureOptions) *fixture {
	t.Helper()
	ctx := context.Background()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	if _, err := tenants.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	if opts.APIURL == "" {
		opts.APIURL = "http://127.0.0.1:9"
	}
	f := &fixture{t: t, pool: pool, store: tenants.NewStore(pool, tenants.Options{BaseDomain: "example.com"}), sites: newRecordingSites()}
	var err error
	f.svc, err = New(Config{SecretKey: billingtest.SecretKey, WebhookSecret: billingtest.WebhookSecret, APIURL: opts.APIURL,
		GracePeriod: opts.GracePeriod, CheckInterval: opts.CheckInterval, Prices: opts.Prices, Store: f.store, Sites: f.sites})
	if err != nil {
		t.Fatal(err)
	}
	f.plan = &tenants.Plan{Slug: "basic", Name: "Basic", StripePriceID: "price_basic"}
	if err := f.store.CreatePlan(ctx, "test", f.plan); err != nil {
		t.Fatal(err)
	}
	f.customer = &tenants.Customer{Email: "payer@example.org", Name: "Payer", StripeCustomerID: "cus_payer"}
	if err := f.store.CreateCustomer(ctx, "test", f.customer); err != nil {
		t.Fatal(err)
	}
	tpl := &tenants.Template{Slug: "static", Name: "Static", Image: "nginx:alpine", Port: 80}
	if err := f.store.CreateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"payer-one", "payer-two"} {
		s := &tenants.Site{CustomerID: f.customer.ID, TemplateID: tpl.ID, Subdomain: sub}
		if err := f.store.CreateSite(ctx, "test", s); err != nil {
			t.Fatal(err)
		}
		f.siteIDs = append(f.siteIDs, s.ID)
	}
	slices.Sort(f.siteIDs)
	return f
}

// deliver signs payload now with the webhook secret and hands it to the
// service, failing the test on an error.
func (f *fixture) deliver(payload []byte) *WebhookResult {
	f.t.Helper()
	res, err := f.svc.HandleWebhook(context.Background(), payload, billingtest.Sign(payload, billingtest.WebhookSecret, time.Now()))
	if err != nil {
		f.t.Fatalf("delivering %s: %v", payload, err)
	}
	return res
}

// state returns the customer with its billing state.
func (f *fixture) state() (*tenants.Customer, *tenants.Billing) {
	f.t.Helper()
	c, err := f.store.GetCustomer(context.Background(), f.customer.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := f.store.GetBilling(context.Background(), f.customer.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return c, b
}

func (f *fixture) wantStatus(want string) {
	f.t.Helper()
	if c, _ := f.state(); c.Status != want {
		f.t.Fatalf("customer status %q, want %q", c.Status, want)
	}
}

// audit returns the customer's audit entries, oldest first.
func (f *fixture) audit() []tenants.AuditEntry {
	f.t.Helper()
	list, err := f.store.ListAudit(context.Background(), tenants.AuditFilter{Entity: "customer", EntityID: f.customer.ID, Limit: 500})
	if err != nil {
		f.t.Fatal(err)
	}
	slices.Reverse(list)
	return list
}

func (f *fixture) eventRows() int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM billing_events`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// recordingSites is the SiteStopper of these tests: it records stops.
// The real one, the provisioner on Docker, is exercised end to end in
// e2e/billing_test.go.
type recordingSites struct {
	mu      sync.Mutex
	running map[string]bool
	stopped []string
	fail    bool
}

func newRecordingSites() *recordingSites { return &recordingSites{running: map[string]bool{}} }

func (r *recordingSites) StopSite(ctx context.Context, siteID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("engine unavailable")
	}
	r.stopped = append(r.stopped, siteID)
	delete(r.running, siteID)
	return nil
}

func (r *recordingSites) Running(siteID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[siteID]
}

func (r *recordingSites) setRunning(ids ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.running[id] = true
	}
}

// takeStopped returns the sites stopped since the last call, sorted.
func (r *recordingSites) takeStopped() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.stopped
	r.stopped = nil
	slices.Sort(out)
	return out
}
