package multitenant

import (
	"github.com/prometheus/client_golang/prometheus"

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
