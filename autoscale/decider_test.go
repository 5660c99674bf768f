package autoscale

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// phase is a stretch of the synthetic clock with a steady load; replicas,
// when set, is the count the site is found at as the phase begins (a
// change from outside the decider).
type phase struct {
	dur      time.Duration
	load     float64
	replicas int
}

// change is a decision the simulation applied: at is the time since the
// first sample.
type change struct {
	at       time.Duration
	from, to int
}

func (c change) String() string { return fmt.Sprintf("%v:%d→%d", c.at, c.from, c.to) }

// simulate feeds d one sample every step through phases, starting at
// replicas, and applies each decision at once (the next sample sees the
// count it asked for), as the provisioner will.
func simulate(t *testing.T, d *Decider, replicas int, step time.Duration, phases []phase) (changes []change, reasons []string) {
	t.Helper()
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var at time.Duration
	for _, p := range phases {
		if p.replicas != 0 {
			replicas = p.replicas
		}
		for end := at + p.dur; at < end; at += step {
			want, reason := d.Observe(t0.Add(at), p.load, replicas)
			if want < 1 || want > d.Config().Max {
				t.Fatalf("at %v: want %d outside 1..%d", at, want, d.Config().Max)
			}
			if want != replicas {
				if reason == "" {
					t.Fatalf("at %v: %d→%d without a reason", at, replicas, want)
				}
				changes = append(changes, change{at, replicas, want})
				reasons = append(reasons, reason)
				replicas = want
			} else if reason != "" {
				t.Fatalf("at %v: no change but reason %q", at, reason)
			}
		}
	}
	return changes, reasons
}

func TestDecider(t *testing.T) {
	t.Parallel()
	s := time.Second
	for _, tc := range []struct {
		name     string
		cfg      Config
		replicas int
		step     time.Duration
		phases   []phase
		want     []change
	}{
		{
			// The first window is covered at 6s; after the change the
			// windows restart at the next sample (7s), so the next step
			// comes a full window later, at 13s; then Max holds.
			name: "sustained load scales up one step per window up to max",
			cfg:  Config{Target: 10, Max: 3}, replicas: 1, step: s,
			phases: []phase{{dur: 60 * s, load: 100}},
			want:   []change{{6 * s, 1, 2}, {13 * s, 2, 3}},
		},
		{
			// Many samples a second change nothing: the windows are
			// time, not a count of samples.
			name: "sample rate does not change the windows",
			cfg:  Config{Target: 10, Max: 2}, replicas: 1, step: 10 * time.Millisecond,
			phases: []phase{{dur: 20 * s, load: 11}},
			want:   []change{{6 * s, 1, 2}},
		},
		{
			// 3s at 14 over a baseline of 5: the 6s window's average
			// peaks at (3×14 + 3×5)/6 = 9.5, not above the target.
			name: "a burst shorter than the up window does not scale",
			cfg:  Config{Target: 10, Max: 3}, replicas: 1, step: s,
			phases: []phase{{dur: 20 * s, load: 5}, {dur: 3 * s, load: 14}, {dur: 20 * s, load: 5}},
		},
		{
			// 2s at 30 with nothing else: the average reaches 10, equal
			// to the target, which is not above it.
			name: "a burst at exactly the target's share does not scale",
			cfg:  Config{Target: 10, Max: 3}, replicas: 1, step: s,
			phases: []phase{{dur: 10 * s, load: 0}, {dur: 2 * s, load: 30}, {dur: 20 * s, load: 0}},
		},
		{
			// A load under the target from the start: nothing is decided
			// until the down window is covered, at 60s, then one replica
			// a window: 61s+60s.
			name: "load below one replica fewer scales down only after the down window",
			cfg:  Config{Target: 10, Max: 3}, replicas: 3, step: s,
			phases: []phase{{dur: 200 * s, load: 4}},
			want:   []change{{60 * s, 3, 2}, {121 * s, 2, 1}},
		},
		{
			// Up at 6s, then the load stops at 10s: the windows began
			// again at 7s, so the replica goes at 67s, not earlier, even
			// though the site has been idle since 10s.
			name: "a load drop scales down a down window after the last change",
			cfg:  Config{Target: 10, Max: 2}, replicas: 1, step: s,
			phases: []phase{{dur: 10 * s, load: 50}, {dur: 120 * s, load: 0}},
			want:   []change{{6 * s, 1, 2}, {67 * s, 2, 1}},
		},
		{
			// 25 in flight on 3 replicas: above what 2 carry (20), at
			// most what 3 carry (30): neither way.
			name: "a load between the thresholds holds",
			cfg:  Config{Target: 10, Max: 4}, replicas: 3, step: s,
			phases: []phase{{dur: 200 * s, load: 25}},
		},
		{
			name: "never below one replica",
			cfg:  Config{Target: 10, Max: 3}, replicas: 1, step: s,
			phases: []phase{{dur: 300 * s, load: 0}},
		},
		{
			name: "max 1 never scales",
			cfg:  Config{Target: 10, Max: 1}, replicas: 1, step: s,
			phases: []phase{{dur: 120 * s, load: 1000}},
		},
		{
			name: "the default config never scales",
			cfg:  Config{}, replicas: 1, step: s,
			phases: []phase{{dur: 120 * s, load: 1000}},
		},
		{
			// 15 in flight on one replica for 5s, then the site is found
			// at 2 (another node scaled it) with 25: the windows restart
			// at 5s, so 25 > 20 scales at 11s, not at 6s.
			name: "replicas changed from outside restart the windows",
			cfg:  Config{Target: 10, Max: 4}, replicas: 1, step: s,
			phases: []phase{{dur: 5 * s, load: 15}, {dur: 20 * s, load: 25, replicas: 2}},
			want:   []change{{11 * s, 2, 3}},
		},
		{
			// The plan's cap fell under the running count: back to Max
			// at once.
			name: "above max comes back to max",
			cfg:  Config{Target: 10, Max: 2}, replicas: 4, step: s,
			phases: []phase{{dur: 3 * s, load: 100}},
			want:   []change{{0, 4, 2}},
		},
		{
			name: "a site observed at 0 replicas is brought to 1",
			cfg:  Config{Target: 10, Max: 2}, replicas: 0, step: s,
			phases: []phase{{dur: 3 * s, load: 0}},
			want:   []change{{0, 0, 1}},
		},
		{
			// Short windows of one's own: up after 2s, down 10s after.
			name: "configured windows",
			cfg:  Config{Target: 5, Max: 2, UpWindow: 2 * s, DownWindow: 10 * s}, replicas: 1, step: s,
			phases: []phase{{dur: 4 * s, load: 6}, {dur: 30 * s, load: 1}},
			want:   []change{{2 * s, 1, 2}, {13 * s, 2, 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, _ := simulate(t, New(tc.cfg), tc.replicas, tc.step, tc.phases)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("changes %v, want %v", got, tc.want)
			}
		})
	}
}

// The reasons name the average, the threshold and the window. The first
// scale-down's window (8s to 67s) holds the last two samples at 23.4:
// (2×23.4 + 58×2)/60 = 2.7.
func TestDeciderReasons(t *testing.T) {
	t.Parallel()
	s := time.Second
	_, reasons := simulate(t, New(Config{Target: 10, Max: 3}), 2, s, []phase{{dur: 10 * s, load: 23.4}, {dur: 200 * s, load: 2}})
	want := []string{"in-flight 23.4 > target 10 x 2 replicas for 6s", "in-flight 2.7 <= target 10 x 2 replicas for 60s", "in-flight 2.0 <= target 10 x 1 replica for 60s"}
	if strings.Join(reasons, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reasons:\n%s\nwant:\n%s", strings.Join(reasons, "\n"), strings.Join(want, "\n"))
	}
}

// DecidedOn is the average behind the latest change, as its reason
// words it.
func TestDeciderDecidedOn(t *testing.T) {
	t.Parallel()
	d := New(Config{Target: 10, Max: 2})
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	if d.DecidedOn() != 0 {
		t.Fatalf("before any change: %v", d.DecidedOn())
	}
	for i := range 7 {
		d.Observe(t0.Add(time.Duration(i)*time.Second), 23.5, 1)
	}
	if got := d.DecidedOn(); got != 23.5 {
		t.Fatalf("after scaling up on 23.5: %v", got)
	}
	if want, _ := d.Observe(t0.Add(7*time.Second), 0, 5); want != 2 || d.DecidedOn() != 0 {
		t.Fatalf("5 replicas over max 2: want %d, decided on %v", want, d.DecidedOn())
	}
}

// A clock that steps back counts as no time passing: no decision on a
// window that was never covered.
func TestDeciderClockBack(t *testing.T) {
	t.Parallel()
	d := New(Config{Target: 10, Max: 2})
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		if want, _ := d.Observe(t0.Add(time.Duration(i)*time.Second), 100, 1); want != 1 {
			t.Fatalf("sample %d: want %d before the window is covered", i, want)
		}
	}
	for i := range 10 {
		if want, _ := d.Observe(t0.Add(-time.Duration(i)*time.Second), 100, 1); want != 1 {
			t.Fatalf("clock back %ds: want %d", i, want)
		}
	}
	if want, _ := d.Observe(t0.Add(6*time.Second), 100, 1); want != 2 {
		t.Fatalf("at 6s: want %d, not 2", want)
	}
}

// A new config: new windows restart them, a new Max applies at once.
func TestDeciderSetConfig(t *testing.T) {
	t.Parallel()
	d := New(Config{Target: 10, Max: 1})
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		if want, _ := d.Observe(t0.Add(time.Duration(i)*time.Second), 100, 1); want != 1 {
			t.Fatalf("max 1 scaled to %d", want)
		}
	}
	d.SetConfig(Config{Target: 10, Max: 2})
	if want, _ := d.Observe(t0.Add(10*time.Second), 100, 1); want != 2 {
		t.Fatalf("after max 2, a covered window over the target: want %d", want)
	}
	d.SetConfig(Config{Target: 10, Max: 2, UpWindow: 3 * time.Second})
	if c := d.Config(); c.DownWindow != DefaultDownWindow || c.UpWindow != 3*time.Second {
		t.Fatalf("config %+v", c)
	}
	for i := 11; i < 14; i++ {
		if want, _ := d.Observe(t0.Add(time.Duration(i)*time.Second), 100, 1); want != 1 {
			t.Fatalf("at %ds, %ds into the restarted 3s window: want %d", i, i-11, want)
		}
	}
	if want, _ := d.Observe(t0.Add(14*time.Second), 100, 1); want != 2 {
		t.Fatalf("3s into the restarted window: want %d", want)
	}
}

// Observe allocates nothing while it changes nothing.
func TestDeciderAllocs(t *testing.T) {
	d := New(Config{Target: 10, Max: 4})
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(100 * time.Millisecond)
		d.Observe(now, 25, 3)
	})
	if allocs != 0 {
		t.Fatalf("Observe allocates %v per call", allocs)
	}
}

// BenchmarkObserve is one sample of a site holding at 3 replicas, both
// windows covered (each Observe averages both rings).
func BenchmarkObserve(b *testing.B) {
	d := New(Config{Target: 10, Max: 4})
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for range 1000 {
		now = now.Add(100 * time.Millisecond)
		d.Observe(now, 25, 3)
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(100 * time.Millisecond)
		if want, _ := d.Observe(now, 25, 3); want != 3 {
			b.Fatalf("want %d", want)
		}
	}
}
