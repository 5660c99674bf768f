package provisioner

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// A running site whose health path starts failing turns unhealthy after
// UnhealthyAfter checks, is restarted after RestartAfter, and is healthy
// again in the new process; every change of health is reported. A site
// whose restart is off stays unhealthy and keeps running.
func TestHealthChecksRestartUnhealthy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []Health
	p := newProv(t, func(c *Config) {
		c.HealthChecks = true
		c.OnChange = func(rt SiteRuntime) {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 || seen[len(seen)-1] != rt.Health {
				seen = append(seen, rt.Health)
			}
		}
	})
	site := randID("s")
	spec := testSpec(site)
	spec.HealthPath, spec.HealthInterval, spec.UnhealthyAfter, spec.RestartAfter = "/health", 100*time.Millisecond, 2, 6
	up := ensure(t, p, spec)
	waitFor(t, 10*time.Second, "a passing check", func() bool { return p.Status(site).Health == HealthHealthy })
	first := p.Status(site).LastStart

	if st, _ := do(t, http.MethodPost, "http://"+up+"/sick", nil); st != http.StatusOK {
		t.Fatalf("POST /sick: %d", st)
	}
	waitFor(t, 10*time.Second, "unhealthy", func() bool {
		rt := p.Status(site)
		return rt.Health == HealthUnhealthy || rt.Restarting || rt.LastStart.After(first)
	})
	waitFor(t, 30*time.Second, "restarted and healthy", func() bool {
		rt := p.Status(site)
		return rt.State == StateRunning && rt.Health == HealthHealthy && rt.LastStart.After(first)
	})
	if n := p.dockerStarts.Load(); n != 2 {
		t.Errorf("%d starts, want 2", n)
	}
	if got := metricValue(t, p.metrics.healthRestarts); got != 1 {
		t.Errorf("health restarts: %v", got)
	}
	if got := metricValue(t, p.metrics.unhealthy); got != 0 {
		t.Errorf("unhealthy sites: %v", got)
	}
	mu.Lock()
	saw := append([]Health(nil), seen...)
	mu.Unlock()
	unhealthy := false
	for _, h := range saw {
		unhealthy = unhealthy || h == HealthUnhealthy
	}
	if !unhealthy || saw[len(saw)-1] != HealthHealthy {
		t.Errorf("health reported: %v", saw)
	}

	// Without restarts it stays up and unhealthy.
	other := randID("s")
	spec = testSpec(other)
	spec.HealthPath, spec.HealthInterval, spec.UnhealthyAfter, spec.RestartAfter = "/health", 100*time.Millisecond, 2, -1
	up = ensure(t, p, spec)
	do(t, http.MethodPost, "http://"+up+"/sick", nil)
	waitFor(t, 10*time.Second, "unhealthy, restart off", func() bool { return p.Status(other).HealthFailures >= 8 })
	if rt := p.Status(other); rt.Health != HealthUnhealthy || rt.State != StateRunning || n(p) != 3 {
		t.Fatalf("restart off: %+v, %d starts", rt, n(p))
	}
	if got := metricValue(t, p.metrics.unhealthy); got != 1 {
		t.Errorf("unhealthy sites: %v", got)
	}
}

func n(p *Provisioner) int64 { return p.dockerStarts.Load() }
