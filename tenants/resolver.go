package tenants

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownHost is returned for a host that belongs to no site.
var ErrUnknownHost = errors.New("unknown host")

// Resolver defaults.
const (
	DefaultNegativeTTL = 30 * time.Second
	DefaultMaxNegative = 10_000
	lookupTimeout      = 5 * time.Second
	shardCount         = 256

	// listenRetryMax caps the listener's backoff: while it is away, cached
	// routes may be stale and new hosts unknown, so it must be back within
	// a second of the database. A connection attempt every half second
	// costs a down server nothing.
	listenRetryMax = 500 * time.Millisecond
)

// ResolverConfig configures a Resolver.
type ResolverConfig struct {
	// Schema whose change notifications apply to this resolver. Default: tenants.
	Schema string
	// BaseDomain: <label>.<BaseDomain> is the site with subdomain <label>.
	// Default: none (only custom domains resolve).
	BaseDomain string
	// Reserved subdomains never resolve. Default: none.
	Reserved []string
	// NegativeTTL is how long a host the database did not know is
	// remembered as unknown. Default: 30s.
	NegativeTTL time.Duration
	// MaxNegative bounds the remembered unknown hosts. Default: 10,000.
	MaxNegative int
	// Logger. Default: a no-op logger.
	Logger *zap.Logger
	// OnChange, if set, is told of every change notification applied,
	// from the listener's goroutine: it must not block. Default: none.
	OnChange func(Change)
}

// ResolverStats counts what the resolver did since it was made.
type ResolverStats struct {
	Hits, Misses, NegativeHits, Evictions, Queries uint64
	Entries                                        int
}

// Resolver maps hosts to routes. A hit is one atomic load of a shard's
// immutable map and a map read: no lock, no write to shared memory but a
// counter, no query, no allocation. Writers (misses, evictions) copy the
// shard's map, which 256 shards keep small. A miss is one indexed
// query, shared (singleflight) by every request for that host meanwhile.
//
// Hosts that belong to no site never reach the database: the resolver keeps
// an index of every subdomain and custom hostname (a few dozen bytes a
// site), loaded when its LISTEN connection comes up and grown by change
// notifications, and answers "unknown" from it. So a flood of random hosts
// costs no queries at all, whatever their number. The index may hold names
// that no longer exist (it is a superset); a lookup that finds nothing
// removes them and the answer is cached negatively for NegativeTTL.
//
// Change notifications evict exactly the entries they concern; a
// reconnect of the LISTEN connection flushes everything, since changes may
// have been missed. While the database is down, cached routes keep being
// served and uncached hosts get ErrUnavailable.
type Resolver struct {
	store    *Store
	cfg      ResolverConfig
	reserved map[string]struct{}
	logger   *zap.Logger

	seed      maphash.Seed
	shards    [shardCount]shard
	negatives atomic.Int64 // negative entries in all shards, at most MaxNegative

	indexMu    sync.RWMutex
	index      map[string]struct{} // "s:<subdomain>" and "h:<hostname>"
	indexReady atomic.Bool
	generation atomic.Uint64 // bumped by every change, so a lookup racing one is not cached

	lookups singleflight.Group
	stats   struct{ hits, misses, negativeHits, evictions, queries atomic.Uint64 }

	connected atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
}

type shard struct {
	mu        sync.Mutex                             // serializes writers
	entries   atomic.Pointer[map[string]*cacheEntry] // replaced, never modified
	negatives int                                    // guarded by mu
}

func (sh *shard) load() map[string]*cacheEntry { return *sh.entries.Load() }

// cacheEntry is a resolved route, or (route nil) a host known not to exist
// until expires.
type cacheEntry struct {
	route   *Route
	expires time.Time
}

// NewResolver returns a resolver on store. It does no I/O until Start or
// the first Resolve.
func NewResolver(store *Store, cfg ResolverConfig) *Resolver {
	if cfg.Schema == "" {
		cfg.Schema = DefaultSchema
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.MaxNegative <= 0 {
		cfg.MaxNegative = DefaultMaxNegative
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	r := &Resolver{
		store:    store,
		cfg:      cfg,
		reserved: make(map[string]struct{}, len(cfg.Reserved)),
		logger:   cfg.Logger,
		seed:     maphash.MakeSeed(),
	}
	for _, name := range cfg.Reserved {
		r.reserved[name] = struct{}{}
	}
	for i := range r.shards {
		empty := make(map[string]*cacheEntry)
		r.shards[i].entries.Store(&empty)
	}
	return r
}

// Resolve returns the route of host (as sent by a client: any case, port,
// trailing dot, Unicode). Errors: ErrUnknownHost, ErrUnavailable, or ctx's.
func (r *Resolver) Resolve(ctx context.Context, host string) (*Route, error) {
	host, err := NormalizeHost(host)
	if err != nil {
		r.stats.negativeHits.Add(1)
		return nil, ErrUnknownHost
	}
	sh := &r.shards[maphash.String(r.seed, host)%shardCount]
	entry := sh.load()[host]
	if entry != nil {
		if entry.route != nil {
			r.stats.hits.Add(1)
			return entry.route, nil
		}
		if time.Now().Before(entry.expires) {
			r.stats.negativeHits.Add(1)
			return nil, ErrUnknownHost
		}
	}

	sub, hostname, ok := r.classify(host)
	if !ok || !r.mayExist(sub, hostname) {
		r.stats.negativeHits.Add(1)
		return nil, ErrUnknownHost
	}
	r.stats.misses.Add(1)
	ch := r.lookups.DoChan(host, func() (any, error) {
		return r.lookup(host, sub, hostname)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Route), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lookup queries one host. It runs once for all concurrent callers, so it
// is bounded by its own timeout, not by any one caller's context.
func (r *Resolver) lookup(host, sub, hostname string) (*Route, error) {
	gen := r.generation.Load()
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	r.stats.queries.Add(1)
	route, err := r.store.lookupRoute(ctx, sub, hostname)
	fresh := r.generation.Load() == gen
	if ce := r.logger.Check(zap.DebugLevel, "looked up host"); ce != nil {
		ce.Write(zap.String("host", host), zap.Bool("found", err == nil), zap.Bool("cached", fresh), zap.Error(err))
	}
	switch {
	case err == nil:
		route.Host = host
		if fresh {
			r.put(host, &cacheEntry{route: route})
		}
		return route, nil
	case errors.Is(err, ErrNotFound):
		if fresh {
			r.forget(sub, hostname)
			r.put(host, &cacheEntry{expires: time.Now().Add(r.cfg.NegativeTTL)})
		}
		return nil, ErrUnknownHost
	default:
		r.logger.Warn("resolving host", zap.String("host", host), zap.Error(err))
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
}

// classify splits host into the subdomain of the base domain it names, or
// the custom hostname it is. ok is false for hosts that can never be a
// site: the base domain itself, reserved or nested subdomains of it.
func (r *Resolver) classify(host string) (sub, hostname string, ok bool) {
	base := r.cfg.BaseDomain
	if base == "" {
		return "", host, true
	}
	if host == base {
		return "", "", false
	}
	if len(host) > len(base)+1 && host[len(host)-len(base)-1] == '.' && strings.HasSuffix(host, base) {
		label := host[:len(host)-len(base)-1]
		if strings.IndexByte(label, '.') >= 0 {
			return "", "", false
		}
		if _, reserved := r.reserved[label]; reserved {
			return "", "", false
		}
		return label, "", true
	}
	return "", host, true
}

// mayExist consults the host index; before it is loaded, everything may.
func (r *Resolver) mayExist(sub, hostname string) bool {
	if !r.indexReady.Load() {
		return true
	}
	r.indexMu.RLock()
	defer r.indexMu.RUnlock()
	if sub != "" {
		_, ok := r.index["s:"+sub]
		return ok
	}
	_, ok := r.index["h:"+hostname]
	return ok
}

func (r *Resolver) forget(sub, hostname string) {
	if !r.indexReady.Load() {
		return
	}
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	if sub != "" {
		delete(r.index, "s:"+sub)
	} else {
		delete(r.index, "h:"+hostname)
	}
}

// put caches an entry, keeping the negative entries within MaxNegative:
// when full, an arbitrary negative entry of the same shard makes room, or
// (the shard has none) the new one is not remembered.
func (r *Resolver) put(host string, e *cacheEntry) {
	idx := maphash.String(r.seed, host) % shardCount
	sh := &r.shards[idx]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	entries := maps.Clone(sh.load())
	if old := entries[host]; old != nil && old.route == nil {
		sh.negatives--
		r.negatives.Add(-1)
	}
	if e.route == nil {
		if r.negatives.Load() >= int64(r.cfg.MaxNegative) {
			// Full: make room in this shard, else in another one, else
			// do not remember this host.
			if sh.negatives > 0 {
				dropNegative(entries)
				sh.negatives--
				r.negatives.Add(-1)
			} else if !r.dropNegativeElsewhere(idx) {
				return
			}
		}
		sh.negatives++
		r.negatives.Add(1)
	}
	entries[host] = e
	sh.entries.Store(&entries)
}

// dropNegative removes an arbitrary negative entry of entries.
func dropNegative(entries map[string]*cacheEntry) {
	for h, e := range entries {
		if e.route == nil {
			delete(entries, h)
			return
		}
	}
}

// dropNegativeElsewhere removes a negative entry from a shard other than
// skip. It only try-locks, as the caller holds skip's lock: two writers
// must never wait on each other's shard.
func (r *Resolver) dropNegativeElsewhere(skip uint64) bool {
	for i := range uint64(shardCount) {
		idx := (skip + 1 + i) % shardCount
		sh := &r.shards[idx]
		if idx == skip || !sh.mu.TryLock() {
			continue
		}
		if sh.negatives > 0 {
			entries := maps.Clone(sh.load())
			dropNegative(entries)
			sh.entries.Store(&entries)
			sh.negatives--
			r.negatives.Add(-1)
			sh.mu.Unlock()
			return true
		}
		sh.mu.Unlock()
	}
	return false
}

// Apply evicts what change concerns and records the names it mentions in
// the host index. Changes of other schemas are ignored.
func (r *Resolver) Apply(c Change) {
	if c.Schema != r.cfg.Schema {
		return
	}
	r.generation.Add(1)
	hosts := make(map[string]struct{}, len(c.Subdomains)+len(c.Hostnames))
	if r.indexReady.Load() {
		r.indexMu.Lock()
		for _, s := range c.Subdomains {
			r.index["s:"+s] = struct{}{}
		}
		for _, h := range c.Hostnames {
			r.index["h:"+h] = struct{}{}
		}
		r.indexMu.Unlock()
	}
	for _, s := range c.Subdomains {
		if r.cfg.BaseDomain != "" {
			hosts[s+"."+r.cfg.BaseDomain] = struct{}{}
		}
	}
	for _, h := range c.Hostnames {
		hosts[h] = struct{}{}
	}
	evicted := r.evict(func(host string, e *cacheEntry) bool {
		if _, ok := hosts[host]; ok {
			return true
		}
		if e.route == nil {
			return false
		}
		switch c.Table {
		case "sites", "domains", "releases":
			return e.route.SiteID == c.SiteID
		case "customers":
			return e.route.CustomerID == c.CustomerID
		case "templates":
			return e.route.Template.ID == c.TemplateID
		case "plans":
			return e.route.PlanID == c.ID
		}
		return false
	})
	if evicted > 0 {
		r.logger.Debug("evicted cached hosts", zap.String("table", c.Table), zap.String("op", c.Op), zap.String("id", c.ID), zap.Int("hosts", evicted))
	}
}

// Flush forgets every cached host.
func (r *Resolver) Flush() {
	r.generation.Add(1)
	r.evict(func(string, *cacheEntry) bool { return true })
}

func (r *Resolver) evict(match func(string, *cacheEntry) bool) int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		var kept map[string]*cacheEntry
		for host, e := range sh.load() {
			if !match(host, e) {
				continue
			}
			if kept == nil {
				kept = maps.Clone(sh.load())
			}
			if e.route == nil {
				sh.negatives--
				r.negatives.Add(-1)
			} else {
				n++
			}
			delete(kept, host)
		}
		if kept != nil {
			sh.entries.Store(&kept)
		}
		sh.mu.Unlock()
	}
	r.stats.evictions.Add(uint64(n))
	return n
}

// Stats returns the resolver's counters.
func (r *Resolver) Stats() ResolverStats {
	s := ResolverStats{
		Hits:         r.stats.hits.Load(),
		Misses:       r.stats.misses.Load(),
		NegativeHits: r.stats.negativeHits.Load(),
		Evictions:    r.stats.evictions.Load(),
		Queries:      r.stats.queries.Load(),
	}
	for i := range r.shards {
		s.Entries += len(r.shards[i].load())
	}
	return s
}

// Connected reports whether the change listener is connected, i.e.
// whether cached entries are known to be fresh.
func (r *Resolver) Connected() bool { return r.connected.Load() }

// Start runs the change listener until Stop. It returns at once; the
// listener connects (and reconnects) in the background.
func (r *Resolver) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.listenLoop(ctx)
	}()
}

// Stop ends the change listener and waits for it.
func (r *Resolver) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// listenLoop keeps a LISTEN connection up, with backoff between attempts.
func (r *Resolver) listenLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := r.listen(ctx)
		r.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		r.logger.Warn("change listener disconnected; cached hosts keep serving", zap.Error(err), zap.Duration("retry_in", backoff))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, listenRetryMax)
	}
}

// listen connects, subscribes, resynchronizes (flush and reload the host
// index: changes may have been missed while disconnected) and applies
// notifications until the connection fails or ctx ends.
func (r *Resolver) listen(ctx context.Context) error {
	connCfg := r.store.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, connCfg)
	if err != nil {
		return fmt.Errorf("connecting change listener: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+ChangeChannel); err != nil {
		return fmt.Errorf("listening for changes: %w", err)
	}
	if err := r.reloadIndex(ctx); err != nil {
		return err
	}
	r.Flush()
	r.connected.Store(true)
	r.logger.Debug("change listener connected")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("waiting for changes: %w", err)
		}
		c, err := ParseChange(n.Payload)
		if err != nil {
			r.logger.Error("ignoring malformed change notification", zap.String("payload", n.Payload), zap.Error(err))
			continue
		}
		r.Apply(c)
		if r.cfg.OnChange != nil && c.Schema == r.cfg.Schema {
			r.cfg.OnChange(c)
		}
	}
}

func (r *Resolver) reloadIndex(ctx context.Context) error {
	index := make(map[string]struct{})
	err := r.store.hostNames(ctx, func(sub, hostname string) {
		if sub != "" {
			index["s:"+sub] = struct{}{}
		} else {
			index["h:"+hostname] = struct{}{}
		}
	})
	if err != nil {
		return err
	}
	r.indexMu.Lock()
	r.index = index
	r.indexMu.Unlock()
	r.indexReady.Store(true)
	return nil
}
