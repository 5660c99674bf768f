package multitenant

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/figures"
	"github.com/agistaffers/caddy-multitenant/prewarm"
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

// figuresCollector exports the figures of the platform's requests, and
// with perSite each site's. It reads the recorder at scrape time, so the
// hot path pays only for the recorder's atomics.
type figuresCollector struct {
	recorder *figures.Recorder
	perSite  bool
	bounds   []float64 // the latency buckets' upper bounds, in seconds

	requests, errors, latency                                           *prometheus.Desc
	siteRequests, siteErrors, siteLatency, siteStarts, siteCPU, siteMem *prometheus.Desc
}

func newFiguresCollector(r *figures.Recorder, perSite bool) *figuresCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("caddy_tenants_"+name, help, labels, nil)
	}
	c := &figuresCollector{
		recorder: r,
		perSite:  perSite,
		requests: desc("requests_total", "Answers to requests for sites, the platform's pages included."),
		errors:   desc("request_errors_total", "Answers to requests for sites with a 5xx status."),
		latency:  desc("request_duration_seconds", "How long answers to requests for sites took."),

		siteRequests: desc("site_requests_total", "Answers to requests for the site.", "site_id"),
		siteErrors:   desc("site_request_errors_total", "Answers to requests for the site with a 5xx status.", "site_id"),
		siteLatency:  desc("site_request_duration_seconds", "How long answers to requests for the site took.", "site_id"),
		siteStarts:   desc("site_cold_starts_total", "Starts of the site's container that requests waited for.", "site_id"),
		siteCPU:      desc("site_cpu_percent", "CPU the site's container used in the last minute, in percent of one CPU.", "site_id"),
		siteMem:      desc("site_memory_bytes", "Memory the site's container uses, page cache left out, sampled once a minute.", "site_id"),
	}
	for _, b := range figures.Bounds() {
		c.bounds = append(c.bounds, b.Seconds())
	}
	return c
}

func (c *figuresCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.errors
	ch <- c.latency
	if c.perSite {
		for _, d := range []*prometheus.Desc{c.siteRequests, c.siteErrors, c.siteLatency, c.siteStarts, c.siteCPU, c.siteMem} {
			ch <- d
		}
	}
}

func (c *figuresCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.recorder.Totals()
	ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(t.Latency.Count()))
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(t.Errors))
	ch <- c.histogram(c.latency, &t)
	if !c.perSite {
		return
	}
	for _, s := range c.recorder.Sites() {
		id := s.ID()
		t := s.Totals()
		ch <- prometheus.MustNewConstMetric(c.siteRequests, prometheus.CounterValue, float64(t.Latency.Count()), id)
		ch <- prometheus.MustNewConstMetric(c.siteErrors, prometheus.CounterValue, float64(t.Errors), id)
		ch <- c.histogram(c.siteLatency, &t, id)
		ch <- prometheus.MustNewConstMetric(c.siteStarts, prometheus.CounterValue, float64(t.ColdStarts), id)
		if sample, ok := s.Sample(); ok {
			ch <- prometheus.MustNewConstMetric(c.siteMem, prometheus.GaugeValue, float64(sample.MemoryBytes), id)
			if sample.HasCPU {
				ch <- prometheus.MustNewConstMetric(c.siteCPU, prometheus.GaugeValue, sample.CPUPercent, id)
			}
		}
	}
}

// histogram turns the recorder's latency buckets into Prometheus's
// cumulative ones.
func (c *figuresCollector) histogram(d *prometheus.Desc, t *figures.Totals, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(c.bounds))
	var cumulative uint64
	for i, upper := range c.bounds {
		cumulative += t.Latency[i]
		buckets[upper] = cumulative
	}
	return prometheus.MustNewConstHistogram(d, t.Latency.Count(), t.LatencySum.Seconds(), buckets, labels...)
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

// prewarmCollector exports the pre-warm scheduler's counts, read at
// scrape time.
type prewarmCollector struct {
	scheduler    *prewarm.Scheduler
	starts, hits *prometheus.Desc
}

func newPrewarmCollector(s *prewarm.Scheduler) *prewarmCollector {
	return &prewarmCollector{
		scheduler: s,
		starts:    prometheus.NewDesc("caddy_tenants_prewarm_starts_total", "Sites this node started before an hour slot their model expected a first request in.", nil, nil),
		hits:      prometheus.NewDesc("caddy_tenants_prewarm_hits_total", "Pre-warms of this node whose slot had its first visitor before the site went back to sleep.", nil, nil),
	}
}

func (c *prewarmCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.starts
	ch <- c.hits
}

func (c *prewarmCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.scheduler.Stats()
	ch <- prometheus.MustNewConstMetric(c.starts, prometheus.CounterValue, float64(s.Starts))
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
}
