package admin

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The failed-authentication limit: a client may fail AuthBurst times at
// once, then once per AuthRefill; at most AuthClients clients are
// tracked.
const (
	AuthBurst   = 10
	AuthRefill  = 6 * time.Second
	AuthClients = 10000
)

// authLimiter limits failed authentications per client with a token
// bucket each: a failure takes a token, a client without one is refused
// before its key is even looked at, and tokens come back one per refill.
// Requests with a valid key take nothing, so they are never slowed by
// it; but while a client's bucket is empty, its valid requests are
// refused too, else guessing would go on.
//
// Clients are IPv4 addresses and IPv6 /64 networks (one host usually has
// a whole /64). At most maxClients are tracked: a full bucket is the same
// as none and is dropped first, then the one closest to full.
type authLimiter struct {
	burst      float64
	refill     time.Duration
	maxClients int
	now        func() time.Time

	mu      sync.Mutex
	clients map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was right
}

func newAuthLimiter(burst int, refill time.Duration, maxClients int) *authLimiter {
	return &authLimiter{burst: float64(burst), refill: refill, maxClients: maxClients, now: time.Now,
		clients: make(map[netip.Prefix]*bucket)}
}

// wait returns how long the client must wait before its next attempt;
// zero when it may try now.
func (l *authLimiter) wait(client netip.Prefix) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		return 0
	}
	tokens := l.tokens(b, l.now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(l.refill))
}

// fail takes a token from the client for a failed authentication.
func (l *authLimiter) fail(client netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= l.maxClients {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.clients[client] = b
	}
	b.tokens, b.at = math.Max(l.tokens(b, now)-1, 0), now
}

// tokens returns what b holds at now.
func (l *authLimiter) tokens(b *bucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.refill))
}

// evict makes room for one client: full buckets go, else the fullest.
// It scans every client, but only when the table is full, which takes
// maxClients clients failing within a burst's refill time.
func (l *authLimiter) evict(now time.Time) {
	var fullest netip.Prefix
	most := -1.0
	for c, b := range l.clients {
		t := l.tokens(b, now)
		if t >= l.burst {
			delete(l.clients, c)
			continue
		}
		if t > most {
			fullest, most = c, t
		}
	}
	if len(l.clients) >= l.maxClients {
		delete(l.clients, fullest)
	}
}

// clientKey is the bucket of a client address: the address itself for
// IPv4, its /64 for IPv6. addr is an IP, optionally with a port (a
// RemoteAddr); one that does not parse shares the zero prefix.
func clientKey(addr string) netip.Prefix {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// Limiter limits failed authentications per client address the way the
// API does, for the other doors of the admin host (the web UI's sign-in).
// It is safe for concurrent use.
type Limiter struct{ l *authLimiter }

// NewLimiter returns a limiter allowing burst failures at once, then one
// per refill, per client.
func NewLimiter(burst int, refill time.Duration) *Limiter {
	return &Limiter{l: newAuthLimiter(burst, refill, AuthClients)}
}

// Wait returns how long the client at addr (an IP, optionally with a
// port) must wait before its next attempt; zero when it may try now.
func (l *Limiter) Wait(addr string) time.Duration { return l.l.wait(clientKey(addr)) }

// Fail counts a failed attempt of the client at addr.
func (l *Limiter) Fail(addr string) { l.l.fail(clientKey(addr)) }
