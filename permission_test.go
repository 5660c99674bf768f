package multitenant

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// permFixture is a migrated schema with one customer and template, and a
// Permission whose resolver follows the schema's change notifications,
// as it does inside Caddy.
type permFixture struct {
	t        *testing.T
	store    *tenants.Store
	resolver *tenants.Resolver
	perm     *Permission
	logs     *observer.ObservedLogs
	customer *tenants.Customer
	template *tenants.Template
}

// newPermFixture connects through dsn when given (a URL whose search_path
// is the schema), else directly.
func newPermFixture(t *testing.T, schema, dsn string) *permFixture {
	t.Helper()
	ctx := context.Background()
	direct := pgtest.Pool(t, schema)
	if _, err := tenants.Migrate(ctx, direct, schema); err != nil {
		t.Fatal(err)
	}
	pool := direct
	if dsn != "" {
		var err error
		if pool, err = pgxpool.New(ctx, dsn); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
	}
	opts := tenants.Options{BaseDomain: "example.com", Reserved: []string{"admin", "www"}}
	f := &permFixture{t: t, store: tenants.NewStore(direct, opts)}
	f.resolver = tenants.NewResolver(tenants.NewStore(pool, opts), tenants.ResolverConfig{
		Schema: schema, BaseDomain: "example.com", Reserved: []string{"admin", "www"},
	})
	f.resolver.Start()
	t.Cleanup(f.resolver.Stop)
	waitFor(t, 10*time.Second, "resolver listener connected", f.resolver.Connected)

	core, logs := observer.New(zapcore.DebugLevel)
	f.logs = logs
	f.perm = &Permission{resolver: f.resolver, logger: zap.New(core)}

	f.customer = &tenants.Customer{Email: "owner@example.org", Name: "Owner"}
	if err := f.store.CreateCustomer(ctx, "test", f.customer); err != nil {
		t.Fatal(err)
	}
	f.template = &tenants.Template{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}
	if err := f.store.CreateTemplate(ctx, "test", f.template); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *permFixture) site(sub string) *tenants.Site {
	f.t.Helper()
	s := &tenants.Site{CustomerID: f.customer.ID, TemplateID: f.template.ID, Subdomain: sub}
	if err := f.store.CreateSite(context.Background(), "test", s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *permFixture) allowed(host string) {
	f.t.Helper()
	if err := f.perm.CertificateAllowed(context.Background(), host); err != nil {
		f.t.Fatalf("%s: %v, want allowed", host, err)
	}
}

func (f *permFixture) denied(host string) error {
	f.t.Helper()
	err := f.perm.CertificateAllowed(context.Background(), host)
	if !errors.Is(err, caddytls.ErrPermissionDenied) {
		f.t.Fatalf("%s: %v, want an error wrapping caddytls.ErrPermissionDenied", host, err)
	}
	return err
}

// eventuallyAllowed waits for a change notification to reach the
// resolver: the store's write and the cache eviction are asynchronous.
func (f *permFixture) eventuallyAllowed(host string, want bool) {
	f.t.Helper()
	waitFor(f.t, 10*time.Second, host+" allowed="+map[bool]string{true: "true", false: "false"}[want], func() bool {
		err := f.perm.CertificateAllowed(context.Background(), host)
		return (err == nil) == want
	})
}

// cached waits until host is allowed from the cache alone: a lookup that
// raced a change notification is answered but not cached.
func (f *permFixture) cached(host string) {
	f.t.Helper()
	waitFor(f.t, 10*time.Second, host+" cached", func() bool {
		before := f.resolver.Stats().Queries
		err := f.perm.CertificateAllowed(context.Background(), host)
		return err == nil && f.resolver.Stats().Queries == before
	})
}

func TestPermissionAllowsSitesOnly(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t, pgtest.Schema(t), "")
	f.site("alpha")

	// A new site's name reaches the host index with its change
	// notification; until then it is unknown.
	f.eventuallyAllowed("alpha.example.com", true)
	f.allowed("ALPHA.example.com.") // SNI is case-insensitive; certmagic may pass either
	for _, host := range []string{
		"nobody.example.com",   // no such site
		"example.com",          // the base domain itself
		"www.example.com",      // reserved
		"a.alpha.example.com",  // nested under a site
		"alpha.example.org",    // another domain
		"127.0.0.1",            // IP SNI
		"not a host name.test", // garbage
	} {
		f.denied(host)
	}
}

// Suspended sites and customers keep their certificates: their visitors
// get the "suspended" page, over HTTPS.
func TestPermissionAllowsSuspended(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newPermFixture(t, pgtest.Schema(t), "")
	s := f.site("paused")
	s.Status = tenants.SiteSuspended
	if err := f.store.UpdateSite(ctx, "test", s); err != nil {
		t.Fatal(err)
	}
	f.eventuallyAllowed("paused.example.com", true)

	f.site("unpaid")
	f.eventuallyAllowed("unpaid.example.com", true)
	f.customer.Status = tenants.CustomerSuspended
	if err := f.store.UpdateCustomer(ctx, "test", f.customer); err != nil {
		t.Fatal(err)
	}
	// The suspension evicts both hosts; their next lookups see it.
	waitFor(t, 10*time.Second, "suspension reaches the resolver", func() bool {
		r, err := f.resolver.Resolve(ctx, "unpaid.example.com")
		return err == nil && r.CustomerStatus == tenants.CustomerSuspended
	})
	f.allowed("unpaid.example.com")
	f.allowed("paused.example.com")
}

// A deleted site loses its permission, also when it was cached.
func TestPermissionDeniesDeletedSite(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t, pgtest.Schema(t), "")
	s := f.site("gone")
	f.cached("gone.example.com")
	if err := f.store.DeleteSite(context.Background(), "test", s.ID); err != nil {
		t.Fatal(err)
	}
	f.eventuallyAllowed("gone.example.com", false)
	f.denied("gone.example.com")
}

// A custom domain gets a certificate only once verified, and loses it when
// unverified again.
func TestPermissionCustomDomainNeedsVerification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newPermFixture(t, pgtest.Schema(t), "")
	s := f.site("shop")
	d := &tenants.Domain{SiteID: s.ID, Hostname: "www.shop.test"}
	if err := f.store.CreateDomain(ctx, "test", d); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "unverified domain denied as such", func() bool {
		err := f.perm.CertificateAllowed(ctx, "www.shop.test")
		return errors.Is(err, caddytls.ErrPermissionDenied) && strings.Contains(err.Error(), "not verified")
	})
	if _, err := f.store.SetDomainVerified(ctx, "test", d.ID, true); err != nil {
		t.Fatal(err)
	}
	f.eventuallyAllowed("www.shop.test", true)
	if _, err := f.store.SetDomainVerified(ctx, "test", d.ID, false); err != nil {
		t.Fatal(err)
	}
	f.eventuallyAllowed("www.shop.test", false)
}

// A cached host is answered without a query, and unknown hosts are
// answered from the host index without one either: handshakes with random
// SNI cannot load the database.
func TestPermissionCacheHitsDoNotQuery(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t, pgtest.Schema(t), "")
	f.site("alpha")
	f.cached("alpha.example.com")
	before := f.resolver.Stats().Queries
	for i := range 100 {
		f.allowed("alpha.example.com")
		f.denied("random-" + strings.Repeat("x", i%7) + ".example.com")
	}
	if q := f.resolver.Stats().Queries - before; q != 0 {
		t.Fatalf("%d queries for cached and unknown hosts, want 0", q)
	}
}

// While PostgreSQL is unreachable, cached hosts keep their permission and
// uncached ones are denied with a reason that says why.
func TestPermissionDatabaseDown(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	proxy := pgtest.NewCutter(t)
	f := newPermFixture(t, schema, proxy.URL(t, schema))
	f.site("cached")
	f.site("uncached")
	f.eventuallyAllowed("uncached.example.com", true) // in the host index,
	f.resolver.Flush()                                // but not cached
	f.cached("cached.example.com")

	proxy.Cut()
	waitFor(t, 10*time.Second, "listener notices the outage", func() bool { return !f.resolver.Connected() })
	for range 10 {
		f.allowed("cached.example.com")
	}
	err := f.denied("uncached.example.com")
	if !errors.Is(err, tenants.ErrUnavailable) || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("uncached host while the database is down: %v, want a denial wrapping tenants.ErrUnavailable", err)
	}
	f.denied("nobody.example.com") // the host index still answers this one

	proxy.Restore()
	waitFor(t, 15*time.Second, "listener reconnects", f.resolver.Connected)
	f.allowed("uncached.example.com")
}

// Denials are logged at debug level with the host; allowed hosts are not
// logged at all.
func TestPermissionLogsDenials(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t, pgtest.Schema(t), "")
	f.site("alpha")
	f.eventuallyAllowed("alpha.example.com", true)
	f.logs.TakeAll() // denials of alpha before its notification arrived
	f.allowed("alpha.example.com")
	f.denied("nobody.example.com")
	entries := f.logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log entries, want 1 (the denial): %+v", len(entries), entries)
	}
	e := entries[0]
	if e.Level != zapcore.DebugLevel || e.ContextMap()["host"] != "nobody.example.com" || e.ContextMap()["reason"] == "" {
		t.Fatalf("denial logged as %v %q %v", e.Level, e.Message, e.ContextMap())
	}
}

// An abandoned handshake is not a decision about the host.
func TestPermissionCancelledContext(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	proxy := pgtest.NewCutter(t)
	f := newPermFixture(t, schema, proxy.URL(t, schema))
	f.site("slow")
	// Put the name in the host index now rather than wait for the
	// notification, so that the check must ask the database.
	f.resolver.Apply(tenants.Change{Schema: schema, Table: "sites", Op: "insert", Subdomains: []string{"slow"}})
	proxy.Stall()        // connections accept but the database never answers
	t.Cleanup(proxy.Cut) // before the pool closes: it waits for the stalled lookup
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.perm.CertificateAllowed(ctx, "slow.example.com")
	if !errors.Is(err, context.Canceled) || errors.Is(err, caddytls.ErrPermissionDenied) {
		t.Fatalf("cancelled check: %v, want context.Canceled and no denial", err)
	}
}

func TestPermissionCaddyfile(t *testing.T) {
	var p Permission
	if err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`tenant`)); err != nil {
		t.Fatal(err)
	}
	for input, want := range map[string]string{
		`tenant extra`:       "wrong argument count",
		"tenant {\n\tfoo\n}": "takes no options",
	} {
		var p Permission
		err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", input, err, want)
		}
	}

	// The whole global option, through Caddy's own adapter.
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`{
	on_demand_tls {
		permission tenant
	}
}
https:// {
	tls {
		on_demand
	}
	respond ok
}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %+v", warnings)
	}
	var cfg struct {
		Apps struct {
			TLS struct {
				Automation struct {
					Policies []struct {
						Subjects []string `json:"subjects"`
						OnDemand bool     `json:"on_demand"`
					} `json:"policies"`
					OnDemand struct {
						Permission json.RawMessage `json:"permission"`
					} `json:"on_demand"`
				} `json:"automation"`
			} `json:"tls"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := string(cfg.Apps.TLS.Automation.OnDemand.Permission); got != `{"module":"tenant"}` {
		t.Fatalf("permission adapted to %s\nwhole config: %s", got, adapted)
	}
	// The catch-all's policy covers every host (subdomains and custom
	// domains alike) on demand: that is why the README's site block is
	// `https://` alone.
	if p := cfg.Apps.TLS.Automation.Policies; len(p) != 1 || !p[0].OnDemand || len(p[0].Subjects) != 0 {
		t.Fatalf("policies: %+v, want one on-demand policy for every host", p)
	}
}

// Without the tenants app the config is refused with a message that says
// what is missing (instead of the empty app's "database_url: required").
func TestPermissionNeedsTenantsApp(t *testing.T) {
	cfg := `{"apps": {"tls": {"automation": {"on_demand": {"permission": {"module": "tenant"}}}}}}`
	var c caddy.Config
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	err := caddy.Validate(&c)
	if err == nil || !strings.Contains(err.Error(), "needs the tenants app") {
		t.Fatalf("validate without tenants app: %v", err)
	}
}

// With the tenants app configured the module provisions (without any I/O:
// the DSN points nowhere) and takes the app's resolver.
func TestPermissionProvisions(t *testing.T) {
	cfg := `{"apps": {
		"tenants": {"database_url": "postgres://nobody@127.0.0.1:1/none", "base_domain": "example.com"},
		"tls": {"automation": {"on_demand": {"permission": {"module": "tenant"}}}}
	}}`
	var c caddy.Config
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&c); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
