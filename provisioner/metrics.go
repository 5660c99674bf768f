package provisioner

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// metrics are the provisioner's Prometheus collectors. Two provisioners (the
// old and the new config during a Caddy reload) register on the same
// registry; the second one reuses the first one's collectors instead of
// failing, so the series continue across reloads.
type metrics struct {
	coldStarts       *prometheus.CounterVec
	coldStartSeconds prometheus.Histogram
	running          prometheus.Gauge
	paused           prometheus.Gauge
	pauses           prometheus.Counter
	wakes            prometheus.Counter
	idleStops        prometheus.Counter
	evictions        prometheus.Counter
	healthChecks     *prometheus.CounterVec
	healthRestarts   prometheus.Counter
	unhealthy        prometheus.Gauge
	extraReplicas    prometheus.Gauge
	scales           *prometheus.CounterVec
}

const metricsNamespace = "caddy_tenants"

func newMetrics(reg prometheus.Registerer, log *zap.Logger) *metrics {
	m := &metrics{
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "cold_starts_total",
			Help:      "Container starts triggered by requests, by result (started, failed, capacity).",
		}, []string{"result"}),
		coldStartSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "cold_start_duration_seconds",
			Help:      "Time from the first request to a stopped site until its container was ready.",
			Buckets:   []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60},
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "running_containers",
			Help:      "Site containers currently known to be running.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "paused_containers",
			Help:      "Site containers currently known to be paused (asleep, warm: woken without a start).",
		}),
		pauses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "idle_pauses_total",
			Help:      "Site containers paused because they were idle for pause_after.",
		}),
		wakes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "wakes_total",
			Help:      "Paused site containers woken by a request (no container start).",
		}),
		idleStops: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "idle_stops_total",
			Help:      "Site containers stopped because they were idle.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "capacity_evictions_total",
			Help:      "Idle or paused site containers stopped to make room under max_running or max_paused_memory.",
		}),
		healthChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "health_checks_total",
			Help:      "Checks of running sites' health paths, by result (passed, failed).",
		}, []string{"result"}),
		healthRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "health_restarts_total",
			Help:      "Site containers restarted because their health checks kept failing.",
		}),
		unhealthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "unhealthy_sites",
			Help:      "Running sites whose health checks failed unhealthy_after times in a row.",
		}),
		extraReplicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace,
			Name:      "extra_replicas",
			Help:      "Replicas beyond the first that running sites are balanced over (the autoscaler's).",
		}),
		scales: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "scale_events_total",
			Help:      "Replica count changes of the autoscaler, by direction (up, down) and result (done, capacity, failed).",
		}, []string{"direction", "result"}),
	}
	if reg == nil {
		return m
	}
	m.coldStarts = register(reg, m.coldStarts, log)
	m.coldStartSeconds = register(reg, m.coldStartSeconds, log)
	m.running = register(reg, m.running, log)
	m.paused = register(reg, m.paused, log)
	m.pauses = register(reg, m.pauses, log)
	m.wakes = register(reg, m.wakes, log)
	m.idleStops = register(reg, m.idleStops, log)
	m.evictions = register(reg, m.evictions, log)
	m.healthChecks = register(reg, m.healthChecks, log)
	m.healthRestarts = register(reg, m.healthRestarts, log)
	m.unhealthy = register(reg, m.unhealthy, log)
	m.extraReplicas = register(reg, m.extraReplicas, log)
	m.scales = register(reg, m.scales, log)
	return m
}

// register registers c, or returns the identical collector registered
// earlier (by a previous config) so both update the same series.
func register[T prometheus.Collector](reg prometheus.Registerer, c T, log *zap.Logger) T {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing
		}
	}
	// A conflicting collector under our name is a programming error
	// elsewhere; metrics are not worth failing the server for.
	log.Warn("registering metric", zap.Error(err))
	return c
}
