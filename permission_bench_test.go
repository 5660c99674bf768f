package multitenant

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// benchPermission returns a Permission on a resolver over a real, migrated
// schema holding one site, with that site's host already cached.
func benchPermission(b *testing.B) *Permission {
	b.Helper()
	ctx := context.Background()
	schema := pgtest.Schema(b)
	pool := pgtest.Pool(b, schema)
	if _, err := tenants.Migrate(ctx, pool, schema); err != nil {
		b.Fatal(err)
	}
	store := tenants.NewStore(pool, tenants.Options{BaseDomain: "example.com"})
	c := &tenants.Customer{Email: "owner@example.org", Name: "Owner"}
	if err := store.CreateCustomer(ctx, "bench", c); err != nil {
		b.Fatal(err)
	}
	tpl := &tenants.Template{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}
	if err := store.CreateTemplate(ctx, "bench", tpl); err != nil {
		b.Fatal(err)
	}
	if err := store.CreateSite(ctx, "bench", &tenants.Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "alpha"}); err != nil {
		b.Fatal(err)
	}
	// No listener: nothing evicts the entry during the run.
	r := tenants.NewResolver(store, tenants.ResolverConfig{Schema: schema, BaseDomain: "example.com"})
	p := &Permission{resolver: r, logger: zap.NewNop()}
	if err := p.CertificateAllowed(ctx, "alpha.example.com"); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPermissionCacheHit is the check certmagic makes for a handshake
// whose certificate is not in memory yet, for a host already resolved.
func BenchmarkPermissionCacheHit(b *testing.B) {
	p := benchPermission(b)
	queries := p.resolver.Stats().Queries
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.CertificateAllowed(ctx, "alpha.example.com"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if q := p.resolver.Stats().Queries - queries; q != 0 {
		b.Fatalf("%d queries on cache hits", q)
	}
}

// BenchmarkPermissionCacheHitParallel is the same under concurrent
// handshakes.
func BenchmarkPermissionCacheHitParallel(b *testing.B) {
	p := benchPermission(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.CertificateAllowed(ctx, "alpha.example.com"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPermissionDenyUnknown is a handshake with a random SNI: the
// host index answers it, the denial costs its error value.
func BenchmarkPermissionDenyUnknown(b *testing.B) {
	p := benchPermission(b)
	ctx := context.Background()
	// Index loading happens when the listener connects; do it once here.
	p.resolver.Start()
	b.Cleanup(p.resolver.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for !p.resolver.Connected() {
		if time.Now().After(deadline) {
			b.Fatal("resolver listener did not connect within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	queries := p.resolver.Stats().Queries
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.CertificateAllowed(ctx, "nobody.example.com"); err == nil {
			b.Fatal("unknown host allowed")
		}
	}
	b.StopTimer()
	if q := p.resolver.Stats().Queries - queries; q != 0 {
		b.Fatalf("%d queries for an unknown host", q)
	}
}
