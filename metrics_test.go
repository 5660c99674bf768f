package multitenant

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agistaffers/caddy-multitenant/figures"
)

// The platform's request series are always there; each site's only with
// metrics per_site.
func TestFiguresCollector(t *testing.T) {
	t.Parallel()
	r := figures.NewRecorder()
	a, b := r.Site("a"), r.Site("b")
	a.Observe(200, 3*time.Millisecond)
	a.Observe(503, 30*time.Millisecond)
	b.Observe(200, 2*time.Second)
	r.ColdStart("b", time.Second, true)
	r.Roll(time.Now().Truncate(time.Minute), map[string]figures.Sample{"b": {MemoryBytes: 4096, CPUPercent: 7, HasCPU: true}}, 1)

	// gather returns the value of each series, by name and site_id ("" for
	// none): a counter's or gauge's value, a histogram's count.
	gather := func(perSite bool) map[[2]string]float64 {
		t.Helper()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(newFiguresCollector(r, perSite))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[[2]string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var site string
				if l := m.GetLabel(); len(l) > 0 {
					site = l[0].GetValue()
				}
				h := m.GetHistogram()
				if h != nil && len(h.GetBucket()) != figures.Buckets-1 {
					t.Errorf("%s: %d buckets", mf.GetName(), len(h.GetBucket()))
				}
				out[[2]string{mf.GetName(), site}] = m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(h.GetSampleCount())
			}
		}
		return out
	}
	platform := gather(false)
	want := map[[2]string]float64{
		{"caddy_tenants_requests_total", ""}:           3,
		{"caddy_tenants_request_errors_total", ""}:     1,
		{"caddy_tenants_request_duration_seconds", ""}: 3,
	}
	if len(platform) != len(want) {
		t.Errorf("platform series: %v", platform)
	}
	for k, v := range want {
		if platform[k] != v {
			t.Errorf("%v = %v, want %v", k, platform[k], v)
		}
	}

	perSite := gather(true)
	for k, v := range map[[2]string]float64{
		{"caddy_tenants_site_requests_total", "a"}:           2,
		{"caddy_tenants_site_request_errors_total", "a"}:     1,
		{"caddy_tenants_site_request_duration_seconds", "b"}: 1,
		{"caddy_tenants_site_cold_starts_total", "b"}:        1,
		{"caddy_tenants_site_memory_bytes", "b"}:             4096,
		{"caddy_tenants_site_cpu_percent", "b"}:              7,
		{"caddy_tenants_requests_total", ""}:                 3,
		{"caddy_tenants_site_request_errors_total", "b"}:     0,
		{"caddy_tenants_site_request_duration_seconds", "a"}: 2,
	} {
		if got, ok := perSite[k]; !ok || got != v {
			t.Errorf("%v = %v (%v), want %v", k, got, ok, v)
		}
	}
	if _, ok := perSite[[2]string{"caddy_tenants_site_memory_bytes", "a"}]; ok {
		t.Error("memory of a site that was not sampled")
	}
	if len(perSite) != len(want)+2*4+2 { // 4 series a site, and b's sample
		t.Errorf("%d series with per_site: %v", len(perSite), perSite)
	}
}
