package provisioner

import (
	"sync"
	"sync/atomic"
	"time"
)

// siteState is everything the provisioner knows about one site. The hot
// path (Upstream, Begin, end) touches only the atomics; the cold path
// serializes on op and guards the descriptive fields with mu.
type siteState struct {
	id string

	// upstream is non-nil exactly while the container is known to be
	// running and ready. Clearing it is how a stop announces itself to the
	// hot path; replacing it is how a rollout switches containers.
	upstream   atomic.Pointer[backend]
	inflight   atomic.Int64 // requests between Begin and end
	upgraded   atomic.Int64 // open upgraded connections (WebSockets)
	lastActive atomic.Int64 // unix nanoseconds of the last Begin or end
	// unbound counts the requests in flight that began while no container
	// was known (a cold start): whichever container they reached, a
	// rollout waits for them too.
	unbound atomic.Int64

	// What other nodes on the engine do with the site (SetPeerActivity).
	peerBusy     atomic.Bool  // a request or upgraded connection in flight there
	peerActive   atomic.Int64 // unix nanoseconds of their last activity; 0 for none
	peerInFlight atomic.Int64 // their requests in flight, for the autoscaler

	// paused is the frozen backend while the site's container is paused
	// (see pause.go), nil otherwise; upstream is nil meanwhile.
	// pausedMemory is what the frozen container holds, once read.
	paused       atomic.Pointer[backend]
	pausedMemory atomic.Uint64

	// roomOnly is set, under op, while a StartIfRoom start runs: it
	// takes free room only.
	roomOnly bool

	// endFn and endUpgradedFn are allocated once so that Begin returns
	// them without allocating a closure per request.
	endFn         func()
	endUpgradedFn func()
	endPassiveFn  func() // an end that is no activity (BeginPassive)

	// op serializes container operations (start, stop, remove) on this
	// site, so that a stop can never interleave with a start.
	op sync.Mutex

	mu          sync.Mutex // guards the fields below
	containerID string
	state       State
	version     int
	lastStart   time.Time
	readyAt     time.Time // when the site last became ready here
	lastStop    time.Time
	lastExit    time.Time
	lastPause   time.Time // when the container was last paused (here or by another node)
	lastWake    time.Time // when this node last woke it
	failErr     *StartError
	failedAt    time.Time
	failUntil   time.Time
	failBackoff time.Duration
	health      siteHealth
	// scale is the site's scaling policy, from the spec it last started
	// or rolled out with, asked of Config.Refresh again now and then (a
	// plan's cap can change without a release); scaleKnown is false for
	// a site adopted, until the autoscaler asked.
	scale      scalePolicy
	scaleKnown bool
	scaleAt    time.Time // when scale was last learnt
	// probe is what readiness probes of a new replica need (the spec's
	// port and health path, its timeouts), kept from the last start.
	probe Spec
	// scaling is set while a scale of the site runs (autoscale.go), so
	// that the autoscaler never queues a second one behind it.
	scaling atomic.Bool
}

func newSiteState(id string, clock *coarseClock) *siteState {
	st := &siteState{id: id}
	st.lastActive.Store(clock.now())
	st.endFn = func() {
		st.lastActive.Store(clock.now())
		st.unbound.Add(-1)
		st.inflight.Add(-1)
	}
	st.endUpgradedFn = func() {
		st.lastActive.Store(clock.now())
		st.upgraded.Add(-1)
	}
	st.endPassiveFn = func() {
		st.unbound.Add(-1)
		st.inflight.Add(-1)
	}
	return st
}

// backend is the replicas a site is served from, with the requests in
// flight to them: a rollout drains the old one while the new one serves,
// and a scale-down drains the backend without the replica it removes
// before removing it. A backend is immutable but for its counters: a
// change of replicas publishes a new one.
type backend struct {
	// upstream and containerID are the first replica's: the site's own
	// container (Docker) or its first task (Swarm).
	upstream    string
	containerID string
	// replicas are every replica the site's requests are balanced over,
	// the first one first; upstreams are their dial addresses, in the
	// same order, shared read-only with the hot path (Upstreams).
	replicas  []Replica
	upstreams []string
	inflight  atomic.Int64
	// prev is the backend this one replaced when only the replicas
	// changed (a scale): the requests in flight on it are the same
	// containers', so a drain of this one waits for them too. It is
	// let go once they ended.
	prev atomic.Pointer[backend]
	// endFn and endPassiveFn are allocated with the backend, so that
	// Begin and BeginPassive return them without allocating per request.
	endFn        func()
	endPassiveFn func()
}

// newBackend returns a backend over replicas (at least one).
func newBackend(st *siteState, clock *coarseClock, replicas []Replica) *backend {
	b := &backend{upstream: replicas[0].Upstream, containerID: replicas[0].ID, replicas: replicas}
	b.upstreams = make([]string, len(replicas))
	for i, r := range replicas {
		b.upstreams[i] = r.Upstream
	}
	b.endFn = func() {
		st.lastActive.Store(clock.now())
		b.inflight.Add(-1)
		st.inflight.Add(-1)
	}
	b.endPassiveFn = func() {
		b.inflight.Add(-1)
		st.inflight.Add(-1)
	}
	return b
}

// busy reports whether requests are in flight on b, or on the backends
// before it of the same containers; it lets go of those before it that
// have none (so the chain is as long as the backends still in use).
func (b *backend) busy() bool {
	busy := b.inflight.Load() > 0
	if prev := b.prev.Load(); prev != nil {
		if prev.busy() {
			busy = true
		} else {
			b.prev.CompareAndSwap(prev, nil)
		}
	}
	return busy
}

// without returns the replicas of b but the one dialed at upstream, and
// whether it was one of them.
func (b *backend) without(upstream string) ([]Replica, bool) {
	out := make([]Replica, 0, len(b.replicas))
	for _, r := range b.replicas {
		if r.Upstream != upstream {
			out = append(out, r)
		}
	}
	return out, len(out) < len(b.replicas)
}

// busy reports whether a request or upgraded connection is in flight,
// here or on another node.
func (st *siteState) busy() bool {
	return st.inflight.Load() > 0 || st.upgraded.Load() > 0 || st.peerBusy.Load()
}

// lastUse is the unix nanoseconds of the site's last activity on any node.
func (st *siteState) lastUse() int64 {
	return max(st.lastActive.Load(), st.peerActive.Load())
}

// idleFor reports how long the site has had no activity on any node (0
// while busy).
func (st *siteState) idleFor(now time.Time) time.Duration {
	if st.busy() {
		return 0
	}
	return now.Sub(time.Unix(0, st.lastUse()))
}

// startedSince reports whether this process started the container at or
// after t, rather than found it running.
func (st *siteState) startedSince(t time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.lastStart.Before(t)
}

// backoffErr returns the last start failure while its backoff window lasts.
func (st *siteState) backoffErr(now time.Time) *StartError {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.failErr != nil && now.Before(st.failUntil) {
		return st.failErr
	}
	return nil
}

const (
	minFailBackoff = time.Second
	maxFailBackoff = 30 * time.Second
)

// recordFailure remembers err and opens (or doubles) the backoff window
// during which Ensure fails fast: a crashing site must not become a restart
// loop driven by its visitors.
func (st *siteState) recordFailure(err *StartError, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.failBackoff == 0:
		st.failBackoff = minFailBackoff
	default:
		st.failBackoff = min(2*st.failBackoff, maxFailBackoff)
	}
	st.failErr, st.failedAt = err, now
	st.failUntil = now.Add(st.failBackoff)
	st.state = StateFailed
}

// clearFailure forgets the last start failure and its backoff.
func (st *siteState) clearFailure() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failErr, st.failBackoff, st.failUntil = nil, 0, time.Time{}
}

func (st *siteState) snapshot() SiteRuntime {
	st.mu.Lock()
	defer st.mu.Unlock()
	rt := SiteRuntime{
		SiteID:          st.id,
		State:           st.state,
		ContainerID:     st.containerID,
		TemplateVersion: st.version,
		LastStart:       st.lastStart,
		LastStop:        st.lastStop,
		LastPause:       st.lastPause,
		LastExit:        st.lastExit,
		InFlight:        st.inflight.Load(),
		Upgraded:        st.upgraded.Load(),
	}
	if b := st.upstream.Load(); b != nil {
		rt.Upstream, rt.Upstreams, rt.Replicas = b.upstream, b.upstreams, len(b.upstreams)
	}
	rt.MaxReplicas = max(st.scale.max, 1)
	if la := st.lastActive.Load(); la != 0 {
		rt.LastActivity = time.Unix(0, la)
	}
	st.health.fill(&rt)
	if st.failErr != nil {
		rt.Error = st.failErr.Error()
		rt.RetryAfter = st.failUntil
		rt.Failure, rt.FailedAt = st.failErr, st.failedAt
	}
	return rt
}

// registry maps site IDs to their state. Reads are a plain map lookup on an
// immutable snapshot (no lock, no allocation); writes copy the map. Sites are
// added once per site and process, so the copy is off the hot path.
type registry struct {
	clock *coarseClock
	m     atomic.Pointer[map[string]*siteState]
	mu    sync.Mutex // serializes writers
}

func (r *registry) get(id string) *siteState {
	m := r.m.Load()
	if m == nil {
		return nil
	}
	return (*m)[id]
}

func (r *registry) getOrCreate(id string) *siteState {
	if st := r.get(id); st != nil {
		return st
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.get(id); st != nil {
		return st
	}
	old := r.all()
	m := make(map[string]*siteState, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	st := newSiteState(id, r.clock)
	m[id] = st
	r.m.Store(&m)
	return st
}

func (r *registry) delete(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.all()
	if _, ok := old[id]; !ok {
		return
	}
	m := make(map[string]*siteState, len(old))
	for k, v := range old {
		if k != id {
			m[k] = v
		}
	}
	r.m.Store(&m)
}

// all returns the current snapshot; callers must not modify it.
func (r *registry) all() map[string]*siteState {
	m := r.m.Load()
	if m == nil {
		return nil
	}
	return *m
}
