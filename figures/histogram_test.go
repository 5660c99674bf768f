package figures

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{time.Millisecond, 0}, // a bound belongs to its bucket
		{time.Millisecond + 1, 1},
		{6 * time.Millisecond, 4},
		{time.Minute, Buckets - 2},
		{time.Minute + 1, Buckets - 1},
		{time.Hour, Buckets - 1},
		{-time.Second, 0},
	} {
		if got := bucket(c.d); got != c.want {
			t.Errorf("bucket(%s) = %d, want %d", c.d, got, c.want)
		}
	}
	if !slices.IsSorted(Bounds()) || len(Bounds()) != Buckets-1 {
		t.Fatalf("bounds: %v", Bounds())
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	var empty Histogram
	if _, ok := empty.Quantile(0.5); ok {
		t.Fatal("an empty histogram has a median")
	}
	var h Histogram
	h[bucket(6*time.Millisecond)] = 100 // all in (5ms, 7ms]
	for q, want := range map[float64]time.Duration{0: 5 * time.Millisecond, 0.5: 6 * time.Millisecond, 1: 7 * time.Millisecond} {
		if got, _ := h.Quantile(q); got != want {
			t.Errorf("q%.2f = %s, want %s", q, got, want)
		}
	}
	var slow Histogram
	slow[Buckets-1] = 3
	if got, _ := slow.Quantile(0.95); got != time.Minute {
		t.Errorf("a quantile beyond the slowest bound: %s, want the bound", got)
	}
	// 90 fast requests and 10 slow ones: the median is fast, p95 slow.
	var mixed Histogram
	mixed[bucket(2*time.Millisecond)] = 90
	mixed[bucket(900*time.Millisecond)] = 10
	if p50, _ := mixed.Quantile(0.5); p50 <= time.Millisecond || p50 > 2*time.Millisecond {
		t.Errorf("p50 %s, want within (1ms, 2ms]", p50)
	}
	if p95, _ := mixed.Quantile(0.95); p95 <= 700*time.Millisecond || p95 > time.Second {
		t.Errorf("p95 %s, want within (700ms, 1s]", p95)
	}
}

// Histograms of several nodes, saved and read back as counts and added
// up, are the histogram of all their requests: percentiles of the sum are
// those of one node that served everything, and each lies in the bucket
// of the true percentile.
func TestHistogramsMergeExactly(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	one := NewRecorder().Site("s")
	nodes := []*Site{NewRecorder().Site("s"), NewRecorder().Site("s"), NewRecorder().Site("s")}
	for range 10000 {
		// Log-uniform from 0.1 ms to 10 s.
		d := time.Duration(float64(100*time.Microsecond) * math.Pow(10, 5*rng.Float64()))
		all = append(all, d)
		one.Observe(200, d)
		nodes[rng.IntN(len(nodes))].Observe(200, d)
	}
	var merged Histogram
	for _, n := range nodes {
		tot := n.Totals()
		saved := HistogramOf(tot.Latency.Counts())
		merged.Add(&saved)
	}
	whole := one.Totals().Latency
	if merged != whole {
		t.Fatalf("merged histogram %v, want %v", merged, whole)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		got, ok := merged.Quantile(q)
		want, _ := whole.Quantile(q)
		if !ok || got != want {
			t.Errorf("q%.2f: merged %s, one node %s", q, got, want)
		}
		truth := all[int(q*float64(len(all)))-1]
		if bucket(got) != bucket(truth) {
			t.Errorf("q%.2f: %s is not in the bucket of the true %s", q, got, truth)
		}
	}
}

func TestCountsRoundTrip(t *testing.T) {
	t.Parallel()
	var h Histogram
	h[0], h[3] = 5, 2
	c := h.Counts()
	if !slices.Equal(c, []int64{5, 0, 0, 2}) {
		t.Fatalf("counts %v: trailing empty buckets are left off", c)
	}
	if HistogramOf(c) != h {
		t.Fatalf("round trip: %v", HistogramOf(c))
	}
	var empty Histogram
	if len(empty.Counts()) != 0 {
		t.Fatal("an empty histogram saves as no counts")
	}
	long := make([]int64, Buckets+3)
	long[Buckets+2] = 4
	if got := HistogramOf(long); got[Buckets-1] != 4 {
		t.Fatalf("counts beyond the last bucket go to it: %v", got)
	}
}
