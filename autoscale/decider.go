// Package autoscale decides how many replicas a site should run from the
// requests it has in flight: one Decider per awake site, fed a sample of
// the site's in-flight requests (summed over every node) and its current
// replica count, answers the count it wants and why.
//
// The policy is the concurrency target of Knative's autoscaler, made
// deliberately small and explainable:
//
//   - Target is the number of in-flight requests one replica is meant
//     to carry (a template's target_concurrency).
//   - Up: when the average in-flight over the last UpWindow (default 6s)
//     exceeds Target × replicas, one replica is added, up to Max (a
//     template's max_replicas, capped by the customer's plan).
//   - Down: when the average over the last DownWindow (default 60s) is at
//     most Target × (replicas − 1), what the site would carry with one
//     replica fewer, one is removed, never below 1. Scaling to 0 is the
//     idle reaper's business, not this package's.
//   - One step at a time, and after every change (ours, or the replica
//     count changing under us: another node's decision, an operator, a
//     failed scale) both windows start again: a decision is only ever
//     made on samples taken at the replica count it is about, and only
//     once they fully cover their window.
//
// Why the down window is ten times the up window: adding a replica late
// costs latency now, removing one early costs a cold start soon after
// (the next burst finds one replica fewer and scales up again). Traffic
// that dips for a few seconds between bursts would otherwise remove and
// re-add a replica on every dip: flapping, which costs more than keeping
// the replica a minute longer. Knative makes the same trade with its
// 60s stable window against its 6s panic window (the panic window may
// only scale up); here the short window is the only way up and the long
// one the only way down, which is the same asymmetry without a mode.
//
// A burst shorter than UpWindow counts by its share of the window: it
// scales up only when it raises the window's average above the target,
// which is what "above the target for a stable window" means for an
// average.
//
// Memory is bounded: each window is a ring of a fixed number of time
// buckets (a running sum and count each), however often Observe is
// called; Observe allocates nothing unless it decides a change (for its
// reason). A Decider is not safe for concurrent use: its owner (the
// provisioner's loop for the site) calls it from one goroutine.
package autoscale

import (
	"strconv"
	"time"
)

// Defaults of Config.
const (
	DefaultTarget     = 10
	DefaultMax        = 1
	DefaultUpWindow   = 6 * time.Second
	DefaultDownWindow = 60 * time.Second
)

// Config is one site's scaling policy.
type Config struct {
	// Target is the in-flight requests per replica aimed for. Default: 10.
	Target int
	// Max is the most replicas the site may run. Default: 1 (no scaling).
	Max int
	// UpWindow is how long the average in-flight must have exceeded the
	// target before a replica is added. Default: 6s.
	UpWindow time.Duration
	// DownWindow is how long the average must have been at most what one
	// replica fewer would carry before a replica is removed; longer than
	// UpWindow, to avoid flapping. Default: 60s.
	DownWindow time.Duration
}

// withDefaults fills in what c leaves unset (or sets out of range).
func (c Config) withDefaults() Config {
	if c.Target < 1 {
		c.Target = DefaultTarget
	}
	if c.Max < 1 {
		c.Max = DefaultMax
	}
	if c.UpWindow <= 0 {
		c.UpWindow = DefaultUpWindow
	}
	if c.DownWindow <= 0 {
		c.DownWindow = DefaultDownWindow
	}
	return c
}

// Decider keeps one site's recent samples and decides its replica count.
// The zero value is not ready: use New.
type Decider struct {
	cfg  Config
	up   ring
	down ring
	// last is the replica count of the previous Observe, 0 before the
	// first; a different count restarts the windows.
	last int
	// started is when the windows began (the first sample since the last
	// restart); ok is false until there is one.
	started time.Time
	ok      bool
	// prev is the latest sample's time, so that a clock stepping back
	// does not take the buckets apart.
	prev time.Time
	// decided is the average the latest change was decided on.
	decided float64
}

// New returns a Decider for cfg (defaults filled in).
func New(cfg Config) *Decider {
	d := &Decider{}
	d.SetConfig(cfg)
	return d
}

// DecidedOn is the in-flight average the latest change Observe asked for
// was decided on (0 before any, and for a count brought back within
// 1..Max): what a record of the decision keeps beside its reason.
func (d *Decider) DecidedOn() float64 { return d.decided }

// Config returns the policy in use, defaults filled in.
func (d *Decider) Config() Config { return d.cfg }

// SetConfig changes the policy (a template or plan changed); a change of
// either window restarts them, a new Target or Max applies from the next
// Observe.
func (d *Decider) SetConfig(cfg Config) {
	cfg = cfg.withDefaults()
	if cfg.UpWindow != d.cfg.UpWindow || cfg.DownWindow != d.cfg.DownWindow {
		d.up.width = cfg.UpWindow / ringBuckets
		d.down.width = cfg.DownWindow / ringBuckets
		d.reset()
	}
	d.cfg = cfg
}

// reset restarts both windows: the next sample is their first.
func (d *Decider) reset() {
	d.ok = false
	d.up.clear()
	d.down.clear()
}

// Observe records that the site had inFlight requests in flight at now
// while running replicas replicas, and returns the replica count it
// wants: replicas+1, replicas-1 or replicas, always within 1..Max. reason
// says why when want differs from replicas, and is "" otherwise. A
// replica count below 1 or above Max is brought back within them at
// once. Calls must come from one goroutine, with now not going backwards
// (a step back counts as no time passing).
func (d *Decider) Observe(now time.Time, inFlight float64, replicas int) (want int, reason string) {
	switch {
	case replicas < 1:
		d.last, d.decided = replicas, 0
		d.reset()
		return 1, "below 1 replica while awake"
	case replicas > d.cfg.Max:
		d.last, d.decided = replicas, 0
		d.reset()
		return d.cfg.Max, "above max " + strconv.Itoa(d.cfg.Max) + " replicas"
	}
	if replicas != d.last {
		d.last = replicas
		d.reset()
	}
	if d.ok && now.Before(d.prev) {
		now = d.prev
	}
	d.prev = now
	if !d.ok {
		d.started, d.ok = now, true
	}
	d.up.add(d.started, now, inFlight)
	d.down.add(d.started, now, inFlight)
	covered := now.Sub(d.started)

	target := float64(d.cfg.Target)
	if replicas < d.cfg.Max && covered >= d.cfg.UpWindow {
		if avg := d.up.average(d.started, now); avg > target*float64(replicas) {
			d.reset()
			d.decided = avg
			return replicas + 1, explain(avg, " > target ", d.cfg.Target, replicas, d.cfg.UpWindow)
		}
	}
	if replicas > 1 && covered >= d.cfg.DownWindow {
		if avg := d.down.average(d.started, now); avg <= target*float64(replicas-1) {
			d.reset()
			d.decided = avg
			return replicas - 1, explain(avg, " <= target ", d.cfg.Target, replicas-1, d.cfg.DownWindow)
		}
	}
	return replicas, ""
}

// explain words a decision: "in-flight 23.4 > target 10 x 2 replicas
// for 6s".
func explain(avg float64, op string, target, replicas int, window time.Duration) string {
	b := make([]byte, 0, 64)
	b = append(b, "in-flight "...)
	b = strconv.AppendFloat(b, avg, 'f', 1, 64)
	b = append(b, op...)
	b = strconv.AppendInt(b, int64(target), 10)
	b = append(b, " x "...)
	b = strconv.AppendInt(b, int64(replicas), 10)
	if replicas == 1 {
		b = append(b, " replica for "...)
	} else {
		b = append(b, " replicas for "...)
	}
	if window%time.Second == 0 {
		b = strconv.AppendInt(b, int64(window/time.Second), 10)
		b = append(b, 's')
	} else {
		b = append(b, window.String()...)
	}
	return string(b)
}

// ringBuckets is how many buckets a window is cut into: the window an
// average reads is exact to one bucket (a tenth of a second of the
// default up window, a second of the down window).
const ringBuckets = 60

// ring is a window of samples as running sums per time bucket. Bucket i
// holds the samples of the i-th width since the windows started; a
// bucket from more than a window ago is overwritten when its slot comes
// round again, and skipped by average until then.
type ring struct {
	width   time.Duration
	buckets [ringBuckets]bucket
}

type bucket struct {
	index int64 // which width since the start the sums are of
	sum   float64
	n     int
}

func (r *ring) clear() {
	for i := range r.buckets {
		r.buckets[i] = bucket{}
	}
}

func (r *ring) index(start, t time.Time) int64 {
	if r.width <= 0 {
		return int64(t.Sub(start))
	}
	return int64(t.Sub(start) / r.width)
}

func (r *ring) add(start, t time.Time, v float64) {
	i := r.index(start, t)
	b := &r.buckets[i%ringBuckets]
	if b.index != i || b.n == 0 {
		*b = bucket{index: i}
	}
	b.sum += v
	b.n++
}

// average is the mean of the samples in the last ringBuckets buckets up
// to now's.
func (r *ring) average(start, now time.Time) float64 {
	cur := r.index(start, now)
	var sum float64
	var n int
	for i := range r.buckets {
		b := &r.buckets[i]
		if b.n > 0 && b.index > cur-ringBuckets && b.index <= cur {
			sum += b.sum
			n += b.n
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}
