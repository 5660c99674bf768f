package figures

// ring holds the last len(buf) values pushed: a full ring drops its
// oldest value for a new one, so memory stays bounded however long the
// database is away. The zero ring holds nothing; make one with newRing.
type ring[T any] struct {
	buf   []T
	start int // index of the oldest value
	n     int // values held
}

func newRing[T any](size int) ring[T] { return ring[T]{buf: make([]T, size)} }

// push adds v, dropping the oldest value if the ring is full; it reports
// whether one was dropped.
func (r *ring[T]) push(v T) (dropped bool) {
	if len(r.buf) == 0 {
		return true
	}
	if r.n == len(r.buf) {
		r.buf[r.start] = v
		r.start = (r.start + 1) % len(r.buf)
		return true
	}
	r.buf[(r.start+r.n)%len(r.buf)] = v
	r.n++
	return false
}

// appendTo appends the values, oldest first, to out.
func (r *ring[T]) appendTo(out []T) []T {
	for i := range r.n {
		out = append(out, r.buf[(r.start+i)%len(r.buf)])
	}
	return out
}

// reset empties the ring.
func (r *ring[T]) reset() {
	var zero T
	for i := range r.buf {
		r.buf[i] = zero
	}
	r.start, r.n = 0, 0
}

// count returns how many values the ring holds.
func (r *ring[T]) count() int { return r.n }
