// Package figures keeps the figures of the sites a process serves, in
// memory: what the hot path counts (requests by latency, 5xx answers;
// atomics only, no lock, no allocation) and, once a minute, the minute
// rolled up from those counts, kept in a ring per site until it is saved.
//
// It knows nothing of HTTP, SQL or Docker: the caller observes requests
// and cold starts, hands in its containers' samples when it rolls a
// minute up, and saves what Pending returns.
package figures

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// RingMinutes is how many unsaved minutes a site keeps: while the
// database is away, the oldest beyond this are dropped.
const RingMinutes = 60

// Recorder keeps the figures of every site it was told about. Observe,
// ColdStart, Site, Totals and Sites are safe for concurrent use; Roll,
// Pending, Saved and Forget belong to one goroutine, the one that saves
// the figures.
type Recorder struct {
	sites atomic.Pointer[map[string]*Site] // copied on write: reads take no lock
	mu    sync.Mutex                       // serializes writers of sites; guards retired
	// retired are the counts of forgotten sites, so that the platform's
	// totals never go down.
	retired Totals

	coldStarts, failures atomic.Uint64 // every site's, failed starts included

	// Owned by the saving goroutine.
	rolledColdStarts, rolledFailures uint64
	platform                         ring[PlatformMinute]
}

// Site is one site's figures. Its methods are safe for concurrent use.
type Site struct {
	id string

	latency      [Buckets]atomic.Uint64 // requests by latency: their sum is the requests
	errors       atomic.Uint64          // answers with a 5xx status
	latencySum   atomic.Int64           // nanoseconds, for Prometheus's _sum
	coldStarts   atomic.Uint64
	coldStartSum atomic.Int64  // nanoseconds
	cpuBits      atomic.Uint64 // the last sample's CPU percent (float64 bits); NaN for none
	memory       atomic.Int64  // the last sample's memory; -1 for none

	// Owned by the saving goroutine.
	rolled  counts
	minutes ring[Minute]
}

// counts are a site's cumulative counts at one moment.
type counts struct {
	latency      Histogram
	errors       uint64
	coldStarts   uint64
	coldStartSum time.Duration
}

// Minute is what this process saw of a site in one minute.
type Minute struct {
	SiteID string
	// At is the minute's start.
	At time.Time
	// Latency counts the requests by latency: its Count is the requests.
	Latency Histogram
	// Errors are the answers with a 5xx status.
	Errors uint64
	// ColdStarts are the starts of the site's container that requests
	// waited for, and ColdStartTime their durations added up.
	ColdStarts    uint64
	ColdStartTime time.Duration
	// Container is the site's container as sampled at the minute's end;
	// nil when it was not (not running, or no engine).
	Container *Sample
}

// Sample is what the engine told of a site's container.
type Sample struct {
	// MemoryBytes is the memory in use, page cache left out.
	MemoryBytes uint64
	// CPUPercent is the CPU time used since the previous sample, in
	// percent of one CPU; HasCPU is false for a first sample.
	CPUPercent float64
	HasCPU     bool
}

// PlatformMinute is what this process saw of the platform in one minute.
type PlatformMinute struct {
	At time.Time
	// Running is the number of site containers running at the minute's
	// end; -1 when the engine was not asked.
	Running int
	// ColdStarts and Failures count the container starts that succeeded
	// and failed.
	ColdStarts, Failures uint64
}

// Totals are counts since the process started.
type Totals struct {
	// Latency counts the requests by latency: its Count is the requests,
	// LatencySum their durations added up.
	Latency    Histogram
	LatencySum time.Duration
	Errors     uint64
	// ColdStarts and ColdStartTime are the cold starts that succeeded and
	// their durations added up; Failures (the platform's only) those
	// that failed.
	ColdStarts    uint64
	ColdStartTime time.Duration
	Failures      uint64
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{platform: newRing[PlatformMinute](RingMinutes)}
}

// Site returns the figures of the site with id, made on first use. It is
// the hot path: once the site is known, a map lookup on a snapshot, no
// lock, no allocation.
func (r *Recorder) Site(id string) *Site {
	if m := r.sites.Load(); m != nil {
		if s := (*m)[id]; s != nil {
			return s
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	if s := old[id]; s != nil {
		return s
	}
	m := make(map[string]*Site, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	s := &Site{id: id, minutes: newRing[Minute](RingMinutes)}
	s.cpuBits.Store(math.Float64bits(math.NaN()))
	s.memory.Store(-1)
	m[id] = s
	r.sites.Store(&m)
	return s
}

// snapshot returns the current sites; callers must not modify it.
func (r *Recorder) snapshot() map[string]*Site {
	if m := r.sites.Load(); m != nil {
		return *m
	}
	return nil
}

// Observe counts one answer of the site: its status and how long it took.
func (s *Site) Observe(status int, took time.Duration) {
	s.latency[bucket(took)].Add(1)
	s.latencySum.Add(int64(took))
	if status >= 500 && status < 600 {
		s.errors.Add(1)
	}
}

// ColdStart counts a start of the site's container that requests waited
// for: one that took took, or (ok false) failed.
func (r *Recorder) ColdStart(siteID string, took time.Duration, ok bool) {
	if !ok {
		r.failures.Add(1)
		return
	}
	s := r.Site(siteID)
	s.coldStarts.Add(1)
	s.coldStartSum.Add(int64(took))
	r.coldStarts.Add(1)
}

// ID returns the site's id.
func (s *Site) ID() string { return s.id }

func (s *Site) counts() counts {
	var c counts
	for i := range s.latency {
		c.latency[i] = s.latency[i].Load()
	}
	c.errors = s.errors.Load()
	c.coldStarts = s.coldStarts.Load()
	c.coldStartSum = time.Duration(s.coldStartSum.Load())
	return c
}

// Totals returns the site's counts since the process started.
func (s *Site) Totals() Totals {
	c := s.counts()
	return Totals{Latency: c.latency, LatencySum: time.Duration(s.latencySum.Load()), Errors: c.errors,
		ColdStarts: c.coldStarts, ColdStartTime: c.coldStartSum}
}

// Sample returns the site's container as last sampled, and false when it
// was not sampled at the last roll-up.
func (s *Site) Sample() (Sample, bool) {
	mem := s.memory.Load()
	if mem < 0 {
		return Sample{}, false
	}
	cpu := math.Float64frombits(s.cpuBits.Load())
	return Sample{MemoryBytes: uint64(mem), CPUPercent: cpu, HasCPU: !math.IsNaN(cpu)}, true
}

// Sites returns every site the recorder keeps figures of.
func (r *Recorder) Sites() []*Site {
	m := r.snapshot()
	out := make([]*Site, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}

// IDs returns the ids of every site the recorder keeps figures of.
func (r *Recorder) IDs() []string {
	m := r.snapshot()
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}

// Totals returns the platform's counts since the process started: every
// site's, forgotten ones included.
func (r *Recorder) Totals() Totals {
	// Under mu, so that a site Forget retires counts once: in the
	// snapshot or in retired.
	r.mu.Lock()
	t, sites := r.retired, r.snapshot()
	r.mu.Unlock()
	for _, s := range sites {
		t.add(s.Totals())
	}
	t.Failures = r.failures.Load()
	return t
}

func (t *Totals) add(o Totals) {
	t.Latency.Add(&o.Latency)
	t.LatencySum += o.LatencySum
	t.Errors += o.Errors
	t.ColdStarts += o.ColdStarts
	t.ColdStartTime += o.ColdStartTime
}

// Roll ends the minute that began at: each site's counts since the
// previous Roll, with its container's sample from samples (by site id),
// become the site's minute, and running (-1: unknown) with the starts
// since the previous Roll the platform's. A site with nothing to tell
// gets no minute. Roll returns how many unsaved minutes it dropped to
// make room.
//
// A minute's counts are those between two Rolls: a request is counted
// once, in the minute rolled up after it ended.
func (r *Recorder) Roll(at time.Time, samples map[string]Sample, running int) (dropped int) {
	for id := range samples {
		r.Site(id) // a container no request of this process reached yet
	}
	for _, s := range r.snapshot() {
		now := s.counts()
		m := Minute{SiteID: s.id, At: at, Errors: now.errors - s.rolled.errors,
			ColdStarts: now.coldStarts - s.rolled.coldStarts, ColdStartTime: now.coldStartSum - s.rolled.coldStartSum}
		for i := range m.Latency {
			m.Latency[i] = now.latency[i] - s.rolled.latency[i]
		}
		s.rolled = now
		if sample, ok := samples[s.id]; ok {
			m.Container = &sample
			cpu := math.NaN()
			if sample.HasCPU {
				cpu = sample.CPUPercent
			}
			s.cpuBits.Store(math.Float64bits(cpu))
			s.memory.Store(int64(min(sample.MemoryBytes, math.MaxInt64)))
		} else {
			s.cpuBits.Store(math.Float64bits(math.NaN()))
			s.memory.Store(-1)
		}
		if m.Container == nil && m.ColdStarts == 0 && m.Errors == 0 && m.Latency.Count() == 0 {
			continue
		}
		if s.minutes.push(m) {
			dropped++
		}
	}
	starts, failures := r.coldStarts.Load(), r.failures.Load()
	if r.platform.push(PlatformMinute{At: at, Running: running,
		ColdStarts: starts - r.rolledColdStarts, Failures: failures - r.rolledFailures}) {
		dropped++
	}
	r.rolledColdStarts, r.rolledFailures = starts, failures
	return dropped
}

// Pending returns the minutes not saved yet, each site's and the
// platform's oldest first.
func (r *Recorder) Pending() ([]Minute, []PlatformMinute) {
	var sites []Minute
	for _, s := range r.snapshot() {
		sites = s.minutes.appendTo(sites)
	}
	return sites, r.platform.appendTo(nil)
}

// Saved forgets the minutes Pending returned: they are saved.
func (r *Recorder) Saved() {
	for _, s := range r.snapshot() {
		s.minutes.reset()
	}
	r.platform.reset()
}

// Forget drops the figures of sites that no longer exist. Their counts
// stay in the platform's totals.
func (r *Recorder) Forget(ids []string) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	m := make(map[string]*Site, len(old))
	for k, v := range old {
		m[k] = v
	}
	for _, id := range ids {
		if s := m[id]; s != nil {
			r.retired.add(s.Totals())
			delete(m, id)
		}
	}
	r.sites.Store(&m)
}
