package figures

import "time"

// latencyBounds are the upper bounds of the latency histogram's buckets;
// one more bucket holds everything slower. They are fixed, not per site
// or per node, so that histograms from any nodes and minutes add up
// bucket by bucket, and percentiles of the sum are exact to the bucket.
// They are also the stored format (a histogram is saved as its counts):
// changing them needs a migration of the saved figures.
var latencyBounds = [...]time.Duration{
	1 * time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond,
	7 * time.Millisecond, 10 * time.Millisecond, 15 * time.Millisecond, 20 * time.Millisecond,
	30 * time.Millisecond, 50 * time.Millisecond, 70 * time.Millisecond, 100 * time.Millisecond,
	150 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond,
	700 * time.Millisecond, 1 * time.Second, 1500 * time.Millisecond, 2 * time.Second,
	3 * time.Second, 5 * time.Second, 7 * time.Second, 10 * time.Second,
	15 * time.Second, 20 * time.Second, 30 * time.Second, 60 * time.Second,
}

// Buckets is the number of buckets of a Histogram: one per bound, and the
// last for everything slower than the slowest bound.
const Buckets = len(latencyBounds) + 1

// Histogram counts latencies per bucket.
type Histogram [Buckets]uint64

// Bounds returns the buckets' upper bounds, the last bucket's (+Inf) left
// out.
func Bounds() []time.Duration { return latencyBounds[:] }

// bucket returns the index of the bucket d falls in: the first whose
// bound is not below d.
func bucket(d time.Duration) int {
	lo, hi := 0, len(latencyBounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if latencyBounds[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Count returns how many latencies h holds.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// Add adds o's counts to h.
func (h *Histogram) Add(o *Histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// Quantile returns the latency below which the fraction q of h's
// latencies fall, interpolated linearly inside its bucket (as
// Prometheus's histogram_quantile does), and false for an empty h. A
// quantile in the last bucket is the slowest bound: nothing tells how
// much slower it was.
func (h *Histogram) Quantile(q float64) (time.Duration, bool) {
	total := h.Count()
	if total == 0 {
		return 0, false
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var below uint64
	for i, c := range h {
		if c == 0 || float64(below+c) < rank {
			below += c
			continue
		}
		if i == len(latencyBounds) {
			return latencyBounds[i-1], true
		}
		var lower time.Duration
		if i > 0 {
			lower = latencyBounds[i-1]
		}
		upper := latencyBounds[i]
		frac := (rank - float64(below)) / float64(c)
		return lower + time.Duration(frac*float64(upper-lower)), true
	}
	return latencyBounds[len(latencyBounds)-1], true
}

// Counts returns h's counts with its trailing empty buckets left off: the
// form it is saved in, short for the usual fast site.
func (h *Histogram) Counts() []int64 {
	n := len(h)
	for n > 0 && h[n-1] == 0 {
		n--
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(h[i])
	}
	return out
}

// HistogramOf returns the histogram whose counts are counts (as Counts
// returns them; counts beyond the last bucket are added to it, negative
// ones ignored).
func HistogramOf(counts []int64) Histogram {
	var h Histogram
	for i, c := range counts {
		if c > 0 {
			h[min(i, Buckets-1)] += uint64(c)
		}
	}
	return h
}
