package manage

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/figures"
)

// Figures are what sites and the platform did over a window, from what
// every node saves once a minute, all nodes added up. The window is cut
// into steps of whole minutes, aligned to multiples of the step (a step
// of an hour starts on the hour, UTC), the last one the step now is in.

// Bounds of a window and its steps.
const (
	// DefaultFiguresWindow is the window when none is given.
	DefaultFiguresWindow = 24 * time.Hour
	// MaxFiguresWindow is the longest window: figures are kept 30 days.
	MaxFiguresWindow = 30 * 24 * time.Hour
	// MaxFiguresPoints is the most steps a window is cut into.
	MaxFiguresPoints = 1500
)

// defaultFiguresPoints is about how many steps a window is cut into when
// no step is given: as many as a chart shows well.
const defaultFiguresPoints = 100

// niceSteps are the steps a window without one takes, the shortest that
// keeps it within defaultFiguresPoints.
var niceSteps = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// Point is one value of a series at a time (the start of its bucket).
type Point struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// Series is a named time series with a unit ("requests", "errors", "ms",
// "bytes", "percent", "count"). Series of counts have a point for every
// step, 0 when nothing happened; the others (latencies, cold-start
// durations, CPU, memory, running containers) only for steps that have a
// value.
type Series struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit"`
	Points []Point `json:"points"`
}

// SiteFigures are a site's figures over a window, bucketed by step.
type SiteFigures struct {
	SiteID string    `json:"site_id"`
	Since  time.Time `json:"since"`
	// Step is the length of a bucket, in nanoseconds in JSON.
	Step time.Duration `json:"step"`
	// Requests are the answers the site's visitors got (the platform's
	// pages while it starts included), and Errors those with a 5xx status.
	Requests Series `json:"requests"`
	Errors   Series `json:"errors"`
	// LatencyP50 and LatencyP95 are percentiles of how long the answers
	// took, in milliseconds, from a fixed histogram: exact to its bucket,
	// interpolated inside it.
	LatencyP50 Series `json:"latency_p50"`
	LatencyP95 Series `json:"latency_p95"`
	// ColdStarts are the container starts visitors waited for, and
	// ColdStartMs their mean duration, from the first request to ready.
	ColdStarts  Series `json:"cold_starts"`
	ColdStartMs Series `json:"cold_start_ms"`
	// CPU is the container's mean CPU use, in percent of one CPU, and
	// Memory the most memory it used (page cache left out), sampled once
	// a minute while it runs.
	CPU    Series `json:"cpu"`
	Memory Series `json:"memory"`
}

// PlatformFigures are the platform's over a window: running containers,
// cold starts, failed starts.
type PlatformFigures struct {
	Since time.Time `json:"since"`
	// Step is the length of a bucket, in nanoseconds in JSON.
	Step time.Duration `json:"step"`
	// Running is the most site containers running at once, sampled once a
	// minute.
	Running Series `json:"running"`
	// ColdStarts and Failures are the container starts visitors waited
	// for that succeeded and that failed.
	ColdStarts Series `json:"cold_starts"`
	Failures   Series `json:"failures"`
}

// SiteFigures returns the figures of the site ref names (id or
// subdomain) over the last window, in steps of step; 0 takes the default
// window (24h) and a step cutting it into about 100.
func (s *Service) SiteFigures(ctx context.Context, ref string, window, step time.Duration) (*SiteFigures, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	since, step, n, err := figureSteps(time.Now(), window, step)
	if err != nil {
		return nil, err
	}
	buckets, err := s.store.SiteFigures(ctx, site.ID, since, step, n)
	if err != nil {
		return nil, fail("site", err)
	}
	f := &SiteFigures{SiteID: site.ID, Since: since, Step: step,
		Requests:    newSeries("requests", "requests", n),
		Errors:      newSeries("errors", "errors", n),
		LatencyP50:  newSeries("latency_p50", "ms", n),
		LatencyP95:  newSeries("latency_p95", "ms", n),
		ColdStarts:  newSeries("cold_starts", "count", n),
		ColdStartMs: newSeries("cold_start_ms", "ms", n),
		CPU:         newSeries("cpu", "percent", n),
		Memory:      newSeries("memory", "bytes", n),
	}
	for i, b := range buckets {
		at := since.Add(time.Duration(i) * step)
		f.Requests.add(at, float64(b.Requests))
		f.Errors.add(at, float64(b.Errors))
		f.ColdStarts.add(at, float64(b.ColdStarts))
		h := figures.HistogramOf(b.Latency)
		if p, ok := h.Quantile(0.5); ok {
			f.LatencyP50.add(at, ms(p))
		}
		if p, ok := h.Quantile(0.95); ok {
			f.LatencyP95.add(at, ms(p))
		}
		if b.ColdStarts > 0 {
			f.ColdStartMs.add(at, round(b.ColdStartMs/float64(b.ColdStarts), 1))
		}
		if b.CPUPercent != nil {
			f.CPU.add(at, round(*b.CPUPercent, 100))
		}
		if b.MemoryBytes != nil {
			f.Memory.add(at, float64(*b.MemoryBytes))
		}
	}
	return f, nil
}

// PlatformFigures returns the platform's figures over the last window, in
// steps of step; 0 takes the defaults, as for SiteFigures.
func (s *Service) PlatformFigures(ctx context.Context, window, step time.Duration) (*PlatformFigures, error) {
	since, step, n, err := figureSteps(time.Now(), window, step)
	if err != nil {
		return nil, err
	}
	buckets, err := s.store.PlatformFigures(ctx, since, step, n)
	if err != nil {
		return nil, fail("figures", err)
	}
	f := &PlatformFigures{Since: since, Step: step,
		Running:    newSeries("running", "count", n),
		ColdStarts: newSeries("cold_starts", "count", n),
		Failures:   newSeries("failures", "count", n),
	}
	for i, b := range buckets {
		at := since.Add(time.Duration(i) * step)
		f.ColdStarts.add(at, float64(b.ColdStarts))
		f.Failures.add(at, float64(b.Failures))
		if b.Running != nil {
			f.Running.add(at, float64(*b.Running))
		}
	}
	return f, nil
}

// figureSteps checks a window and step (0 for the defaults) and returns
// the start of the first of the n steps ending with the one now is in.
func figureSteps(now time.Time, window, step time.Duration) (since time.Time, _ time.Duration, n int, err error) {
	if window == 0 {
		window = DefaultFiguresWindow
	}
	switch {
	case window < time.Minute:
		return since, 0, 0, invalid("window", "must be at least 1m")
	case window > MaxFiguresWindow:
		return since, 0, 0, invalid("window", "must be at most 30 days (720h): figures are kept that long")
	}
	if step == 0 {
		step = niceSteps[len(niceSteps)-1]
		for _, s := range niceSteps {
			if window/s <= defaultFiguresPoints {
				step = s
				break
			}
		}
	}
	switch {
	case step < time.Minute || step%time.Minute != 0:
		return since, 0, 0, invalid("step", "must be a whole number of minutes: figures are kept per minute")
	case step > window:
		return since, 0, 0, invalid("step", "must not be longer than the window (%s)", shortDuration(window))
	}
	n = int((window + step - 1) / step)
	if n > MaxFiguresPoints {
		return since, 0, 0, invalid("step", "%s in steps of %s are %d points, at most %d: take a longer step",
			shortDuration(window), shortDuration(step), n, MaxFiguresPoints)
	}
	end := now.UTC().Truncate(step).Add(step)
	return end.Add(-time.Duration(n) * step), step, n, nil
}

func newSeries(name, unit string, n int) Series {
	return Series{Name: name, Unit: unit, Points: make([]Point, 0, n)}
}

func (s *Series) add(at time.Time, v float64) { s.Points = append(s.Points, Point{At: at, Value: v}) }

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1000) }

// round rounds v to 1/per.
func round(v, per float64) float64 { return math.Round(v*per) / per }

// shortDuration writes d without Go's trailing zero units: 24h, not
// 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
