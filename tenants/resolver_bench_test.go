package tenants

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// cachedResolver returns a resolver holding n cached routes shaped like
// real ones (template with env, site env).
func cachedResolver(n int) *Resolver {
	r := NewResolver(nil, ResolverConfig{BaseDomain: "example.com"})
	for i := range n {
		host := fmt.Sprintf("site-%d.example.com", i)
		r.put(host, &cacheEntry{route: &Route{
			Host: host, SiteID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Subdomain: fmt.Sprintf("site-%d", i),
			SiteStatus: SiteActive, SiteEnv: map[string]string{"SITE_NAME": host},
			CustomerID: "11111111-1111-1111-1111-111111111111", CustomerStatus: CustomerActive, Verified: true,
			Template: Template{ID: "22222222-2222-2222-2222-222222222222", Slug: "static", Image: "nginx:1.27", Port: 80,
				Env: map[string]string{"A": "1"}, CapAdd: []string{}, Version: 1},
		}})
	}
	return r
}

// BenchmarkResolveHit is the hot path: a cached host, 10,000 sites cached.
func BenchmarkResolveHit(b *testing.B) {
	r := cachedResolver(10_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := r.Resolve(ctx, "site-4242.example.com"); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkResolveHitWithPort is a hit for a Host header carrying a port.
func BenchmarkResolveHitWithPort(b *testing.B) {
	r := cachedResolver(10_000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(ctx, "site-4242.example.com:8080"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveMiss is a cache miss answered by PostgreSQL.
func BenchmarkResolveMiss(b *testing.B) {
	s, schema := newBenchStore(b)
	r := NewResolver(s, ResolverConfig{Schema: schema, BaseDomain: "example.com"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Flush()
		if _, err := r.Resolve(ctx, "ada.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolverMemory reports the heap held by 10,000 cached routes.
func BenchmarkResolverMemory(b *testing.B) {
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := cachedResolver(10_000)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/10_000, "B/site")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/10k-sites")
		runtime.KeepAlive(r)
	}
}

func newBenchStore(b *testing.B) (*Store, string) {
	b.Helper()
	s, schema := newTestStoreTB(b)
	c := &Customer{Email: "ada@example.org", Name: "Ada"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.CreateCustomer(ctx, "bench", c); err != nil {
		b.Fatal(err)
	}
	tpl := &Template{Slug: "static", Name: "Static", Image: "nginx:1.27", Port: 80}
	if err := s.CreateTemplate(ctx, "bench", tpl); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateSite(ctx, "bench", &Site{CustomerID: c.ID, TemplateID: tpl.ID, Subdomain: "ada"}); err != nil {
		b.Fatal(err)
	}
	return s, schema
}
