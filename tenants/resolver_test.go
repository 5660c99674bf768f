package tenants

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

func newTestResolver(t *testing.T, s *Store, schema string) *Resolver {
	t.Helper()
	r := NewResolver(s, ResolverConfig{Schema: schema, BaseDomain: "example.com", Reserved: []string{"admin", "www"}})
	return r
}

// startResolver starts r's listener and waits until it is connected.
func startResolver(t *testing.T, r *Resolver) {
	t.Helper()
	r.Start()
	t.Cleanup(r.Stop)
	eventually(t, 10*time.Second, "resolver connected", r.Connected)
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestResolveSubdomainAndCustomDomain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, schema := newTestStore(t)
	c, tpl, site := fixture(t, s)
	site.Env = map[string]string{"A": "site", "B": "2"}
	if err := s.UpdateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	shop := &Domain{SiteID: site.ID, Hostname: "shop.example.org"}
	if err := s.CreateDomain(ctx, "test", shop); err != nil {
		t.Fatal(err)
	}
	r := newTestResolver(t, s, schema)

	route, err := r.Resolve(ctx, "ADA.example.com.:443")
	if err != nil {
		t.Fatal(err)
	}
	if route.Host != "ada.example.com" || route.SiteID != site.ID || route.CustomerID != c.ID || route.Template.ID != tpl.ID ||
		route.Template.Image != "nginx:1.27" || route.CustomDomain || !route.Verified || !route.Serving() {
		t.Fatalf("route = %+v", route)
	}
	if env := route.Env(); env["A"] != "site" || env["B"] != "2" {
		t.Fatalf("env = %v, want site overrides on template defaults", env)
	}
	again, err := r.Resolve(ctx, "ada.example.com")
	if err != nil || again != route {
		t.Fatalf("second resolve = %p, %v; want the cached %p", again, err, route)
	}
	if st := r.Stats(); st.Queries != 1 || st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("stats = %+v, want 1 query, 1 hit, 1 miss", st)
	}

	custom, err := r.Resolve(ctx, "shop.example.org")
	if err != nil || custom.SiteID != site.ID || !custom.CustomDomain || custom.Verified {
		t.Fatalf("unverified custom domain = %+v, %v; want its site, not verified", custom, err)
	}

	for _, host := range []string{"example.com", "admin.example.com", "www.example.com", "a.ada.example.com", "nobody.example.com", "nobody.example.org", "127.0.0.1", ""} {
		if _, err := r.Resolve(ctx, host); !errors.Is(err, ErrUnknownHost) {
			t.Errorf("Resolve(%q) = %v, want ErrUnknownHost", host, err)
		}
	}
}

// Concurrent misses for one host share one query.
func TestResolveCoalescesMisses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, schema := newTestStore(t)
	fixture(t, s)
	r := newTestResolver(t, s, schema)

	// Hold the lookup's query in the database until every caller waits on it.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE sites IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	const callers = 100
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			route, err := r.Resolve(ctx, "ada.example.com")
			if err == nil && route.Subdomain != "ada" {
				err = fmt.Errorf("wrong route %+v", route)
			}
			errs <- err
		}()
	}
	eventually(t, 10*time.Second, "all callers waiting", func() bool { return r.Stats().Misses == callers })
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if q := r.Stats().Queries; q != 1 {
		t.Fatalf("%d concurrent misses made %d queries, want 1", callers, q)
	}
}

// A flood of random hosts never reaches the database once the host index
// is loaded.
func TestResolveRandomHostsCostNoQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, schema := newTestStore(t)
	fixture(t, s)
	r := newTestResolver(t, s, schema)
	startResolver(t, r)
	before := r.Stats().Queries
	for i := range 1000 {
		host := fmt.Sprintf("random-%d-%d.example.com", i, time.Now().UnixNano())
		if i%2 == 1 {
			host = fmt.Sprintf("shop-%d.example.net", i)
		}
		if _, err := r.Resolve(ctx, host); !errors.Is(err, ErrUnknownHost) {
			t.Fatalf("Resolve(%q) = %v", host, err)
		}
	}
	if q := r.Stats().Queries - before; q != 0 {
		t.Fatalf("1000 unknown hosts made %d queries, want 0", q)
	}
	if _, err := r.Resolve(ctx, "ada.example.com"); err != nil {
		t.Fatalf("known host after the flood: %v", err)
	}
}

// Without the index (listener not started), unknown hosts cost one query
// each and are remembered negatively, within MaxNegative.
func TestNegativeCacheIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, schema := newTestStore(t)
	r := NewResolver(s, ResolverConfig{Schema: schema, BaseDomain: "example.com", MaxNegative: 128, NegativeTTL: time.Minute})
	for i := range 500 {
		if _, err := r.Resolve(ctx, fmt.Sprintf("n%d.example.com", i)); !errors.Is(err, ErrUnknownHost) {
			t.Fatal(err)
		}
	}
	if st := r.Stats(); st.Entries > 128 || st.Entries < 64 {
		t.Fatalf("%d negative entries cached, want at most 128 (and a useful share of it)", st.Entries)
	}
	queries := r.Stats().Queries
	if _, err := r.Resolve(ctx, "n499.example.com"); !errors.Is(err, ErrUnknownHost) {
		t.Fatal(err)
	}
	if r.Stats().Queries != queries {
		t.Fatal("a host just found unknown was queried again")
	}
}

// Changes reach the cache through NOTIFY within a second, evicting exactly
// what they concern.
func TestResolverFollowsChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, schema := newTestStore(t)
	c, tpl, site := fixture(t, s)
	other := &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "other"}
	if err := s.CreateSite(ctx, "test", other); err != nil {
		t.Fatal(err)
	}
	r := newTestResolver(t, s, schema)
	startResolver(t, r)
	resolve := func(host string) (*Route, error) { return r.Resolve(ctx, host) }
	within := func(what string, cond func() bool) { t.Helper(); eventually(t, time.Second, what, cond) }

	if _, err := resolve("ada.example.com"); err != nil {
		t.Fatal(err)
	}
	otherRoute, err := resolve("other.example.com")
	if err != nil {
		t.Fatal(err)
	}

	// A new site resolves at once, though its host was unknown a moment ago.
	if _, err := resolve("new.example.com"); !errors.Is(err, ErrUnknownHost) {
		t.Fatal(err)
	}
	if err := s.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "new"}); err != nil {
		t.Fatal(err)
	}
	within("new site resolves", func() bool { _, err := resolve("new.example.com"); return err == nil })

	// Suspending the customer.
	c.Status = CustomerSuspended
	if err := s.UpdateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	within("customer suspension seen", func() bool { rt, err := resolve("ada.example.com"); return err == nil && !rt.Serving() })

	// Renaming a site: the old host is gone, the new one resolves; the
	// other site's cached entry is untouched.
	site.Subdomain = "lovelace"
	if err := s.UpdateSite(ctx, "test", site); err != nil {
		t.Fatal(err)
	}
	within("rename seen", func() bool {
		_, oldErr := resolve("ada.example.com")
		_, newErr := resolve("lovelace.example.com")
		return errors.Is(oldErr, ErrUnknownHost) && newErr == nil
	})

	// A template change bumps the version seen by its sites.
	if err := s.UpdateTemplate(ctx, "test", tpl); err != nil {
		t.Fatal(err)
	}
	within("template change seen", func() bool { rt, err := resolve("lovelace.example.com"); return err == nil && rt.Template.Version == 2 })

	// A plan given to the customer, then changed: its limits reach the
	// route (plans notify, like the tables routing reads).
	plan := &Plan{Slug: "small", Name: "Small", MemoryBytes: 64 << 20}
	if err := s.CreatePlan(ctx, "test", plan); err != nil {
		t.Fatal(err)
	}
	c.PlanID = plan.ID
	if err := s.UpdateCustomer(ctx, "test", c); err != nil {
		t.Fatal(err)
	}
	within("plan given", func() bool {
		rt, err := resolve("lovelace.example.com")
		return err == nil && rt.PlanID == plan.ID && rt.Plan.MemoryBytes == 64<<20
	})
	plan.MemoryBytes, plan.PidsLimit = 128<<20, 99
	if err := s.UpdatePlan(ctx, "test", plan); err != nil {
		t.Fatal(err)
	}
	within("plan change seen", func() bool {
		rt, err := resolve("lovelace.example.com")
		return err == nil && rt.Plan == Limits{MemoryBytes: 128 << 20, PidsLimit: 99}
	})

	// Adding, verifying and removing a custom domain.
	d := &Domain{SiteID: site.ID, Hostname: "lovelace.example.org"}
	if err := s.CreateDomain(ctx, "test", d); err != nil {
		t.Fatal(err)
	}
	within("domain added", func() bool { rt, err := resolve("lovelace.example.org"); return err == nil && !rt.Verified })
	if _, err := s.SetDomainVerified(ctx, "test", d.ID, true); err != nil {
		t.Fatal(err)
	}
	within("domain verified", func() bool { rt, err := resolve("lovelace.example.org"); return err == nil && rt.Verified })
	if err := s.DeleteDomain(ctx, "test", d.ID); err != nil {
		t.Fatal(err)
	}
	within("domain removed", func() bool { _, err := resolve("lovelace.example.org"); return errors.Is(err, ErrUnknownHost) })

	if rt, err := resolve("other.example.com"); err != nil || rt.Template.Version != 2 {
		t.Fatalf("other site: %+v, %v", rt, err)
	}
	_ = otherRoute
}

// Cached routes keep serving while the database is unreachable; uncached
// hosts get ErrUnavailable; everything recovers when it comes back.
func TestResolverSurvivesDatabaseOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	direct, schema := newTestStore(t)
	c, tpl, _ := fixture(t, direct)
	if err := direct.CreateSite(ctx, "test", &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "later"}); err != nil {
		t.Fatal(err)
	}

	proxy := pgtest.NewCutter(t)
	pool, err := pgxpool.New(ctx, proxy.URL(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := NewStore(pool, direct.opts)
	r := newTestResolver(t, s, schema)
	startResolver(t, r)
	if _, err := r.Resolve(ctx, "ada.example.com"); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	eventually(t, 10*time.Second, "listener notices the outage", func() bool { return !r.Connected() })
	for range 20 {
		if rt, err := r.Resolve(ctx, "ada.example.com"); err != nil || rt.Subdomain != "ada" {
			t.Fatalf("cached host during outage: %v", err)
		}
	}
	if _, err := r.Resolve(ctx, "later.example.com"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("uncached host during outage: %v, want ErrUnavailable", err)
	}

	proxy.Restore()
	eventually(t, 15*time.Second, "listener reconnects", r.Connected)
	if rt, err := r.Resolve(ctx, "later.example.com"); err != nil || rt.Subdomain != "later" {
		t.Fatalf("after recovery: %+v, %v", rt, err)
	}
}
