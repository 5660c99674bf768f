package multitenant

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// resolverCollector exports the resolver's counters. It reads them at
// scrape time, so the hot path pays only for its own atomic counters.
type resolverCollector struct {
	resolver                                                          *tenants.Resolver
	hits, misses, negativeHits, evictions, queries, cached, connected *prometheus.Desc
}

func newResolverCollector(r *tenants.Resolver) *resolverCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("caddy_tenants_resolver_"+name, help, nil, nil)
	}
	return &resolverCollector{
		resolver:     r,
		hits:         desc("cache_hits_total", "Hosts answered from the resolver cache."),
		misses:       desc("cache_misses_total", "Hosts not in the cache that needed a lookup."),
		negativeHits: desc("negative_hits_total", "Unknown hosts answered without a query (negative cache or host index)."),
		evictions:    desc("evictions_total", "Cached hosts evicted by change notifications or reconnects."),
		queries:      desc("queries_total", "Database lookups made (misses coalesced)."),
		cached:       desc("cached_hosts", "Hosts currently cached, known and unknown."),
		connected:    desc("listener_connected", "1 while the change listener is connected (the cache is known fresh), else 0."),
	}
}

func (c *resolverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.negativeHits, c.evictions, c.queries, c.cached, c.connected} {
		ch <- d
	}
}

func (c *resolverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.resolver.Stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.negativeHits, prometheus.CounterValue, float64(s.NegativeHits))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions))
	ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(s.Queries))
	ch <- prometheus.MustNewConstMetric(c.cached, prometheus.GaugeValue, float64(s.Entries))
	connected := 0.0
	if c.resolver.Connected() {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, connected)
}

// collectorSet is a prometheus.Registerer that only remembers collectors,
// so the shared platform's metrics can be registered on the registry of
// every config that uses it (Caddy makes one registry per config).
type collectorSet struct {
	mu         sync.Mutex
	collectors []prometheus.Collector
}

func (s *collectorSet) add(c prometheus.Collector) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collectors = append(s.collectors, c)
}

func (s *collectorSet) Register(c prometheus.Collector) error { s.add(c); return nil }

func (s *collectorSet) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		s.add(c)
	}
}

func (s *collectorSet) Unregister(c prometheus.Collector) bool { return false }

// registerOn registers every collector on reg; one already there (from
// the previous config sharing this platform) is fine.
func (s *collectorSet) registerOn(reg prometheus.Registerer, logger *zap.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.collectors {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); !ok {
				logger.Warn("registering metrics", zap.Error(err))
			}
		}
	}
}
