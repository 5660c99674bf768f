package provisioner

import (
	"testing"
)

// benchProvisioner has one site marked running; the hot path needs no
// Docker engine, so this runs anywhere.
func benchProvisioner(b *testing.B) *Provisioner {
	p, err := New(Config{Host: "unix:///nonexistent.sock"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop() })
	for _, id := range []string{"site-a", "site-b", "site-c"} {
		p.setReady(p.sites.getOrCreate(id), []Replica{{Upstream: "127.0.0.1:8080"}})
	}
	return p
}

// BenchmarkHotPath is what a request to a running site costs the
// provisioner: Begin, Upstream, end.
func BenchmarkHotPath(b *testing.B) {
	p := benchProvisioner(b)
	b.ReportAllocs()
	for b.Loop() {
		end := p.Begin("site-b")
		if _, ok := p.Upstream("site-b"); !ok {
			b.Fatal("not running")
		}
		end()
	}
}

// BenchmarkHotPathParallel runs the hot path from all Ps on one site (the
// worst case for contention on its counters).
func BenchmarkHotPathParallel(b *testing.B) {
	p := benchProvisioner(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			end := p.Begin("site-b")
			if _, ok := p.Upstream("site-b"); !ok {
				b.Fatal("not running")
			}
			end()
		}
	})
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	p, err := New(Config{Host: "unix:///nonexistent.sock"})
	if err != nil {
		t.Fatal(err)
	}
	p.setReady(p.sites.getOrCreate("site"), []Replica{{Upstream: "127.0.0.1:8080"}})
	allocs := testing.AllocsPerRun(1000, func() {
		end := p.Begin("site")
		p.Upstream("site")
		end()
		p.BeginUpgraded("site")()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per hot-path request, want 0", allocs)
	}
}
