package provisioner

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// The warm tier: a site idle for PauseAfter has its container frozen
// (docker pause, the cgroup freezer) instead of stopped. Its memory, its
// sockets and its published port stay; it uses no CPU. The next request
// thaws it (docker unpause) and is proxied to the same upstream at once:
// the app never booted again, so there is nothing to wait for. After
// IdleTimeout a paused site is stopped as a running one would be.
//
// A paused site has no upstream (the hot path misses it and goes through
// Ensure, which wakes it) and its frozen backend in siteState.paused.

// pauseEnabled reports whether idle sites are paused before they stop: a
// pause_after not below idle_timeout would never pause anything.
func (p *Provisioner) pauseEnabled() bool {
	_, canPause := p.rt.(RuntimePauser)
	return canPause && p.cfg.PauseAfter > 0 && (p.cfg.IdleTimeout == 0 || p.cfg.PauseAfter < p.cfg.IdleTimeout)
}

// Paused returns the number of sites whose container this provisioner
// knows to be paused.
func (p *Provisioner) Paused() int { return int(p.paused.Load()) }

// IsPaused reports whether the site's container is paused as far as this
// provisioner knows: the next request wakes it in milliseconds, so
// nothing (a stale copy, the starting page) should stand in for it.
func (p *Provisioner) IsPaused(siteID string) bool {
	st := p.sites.get(siteID)
	return st != nil && st.paused.Load() != nil
}

// setPaused records b as the site's frozen backend.
func (p *Provisioner) setPaused(st *siteState, b *backend) {
	if st.paused.Swap(b) == nil {
		p.paused.Add(1)
		p.metrics.paused.Inc()
	}
}

// clearPaused forgets the site's frozen backend, if any, and returns it.
func (p *Provisioner) clearPaused(st *siteState) *backend {
	b := st.paused.Swap(nil)
	if b != nil {
		p.paused.Add(-1)
		p.metrics.paused.Dec()
		st.pausedMemory.Store(0)
	}
	return b
}

// dropPaused forgets b as the site's frozen backend unless something else
// (our wake, an event) did first; it reports whether it was this call.
func (p *Provisioner) dropPaused(st *siteState, b *backend) bool {
	if !st.paused.CompareAndSwap(b, nil) {
		return false
	}
	p.paused.Add(-1)
	p.metrics.paused.Dec()
	st.pausedMemory.Store(0)
	return true
}

// pauseIfIdle pauses st if it is running, has nothing in flight on any
// node and has been inactive for at least idle. Like stopIfIdle it never
// waits for st.op and takes the site off the hot path with hideIfIdle: a
// request that begins after waits in Ensure for the pause to be done,
// then wakes the site.
func (p *Provisioner) pauseIfIdle(ctx context.Context, st *siteState, idle time.Duration) bool {
	if b := st.upstream.Load(); b != nil && len(b.replicas) > 1 {
		// Pausing freezes one container: the autoscaler takes the site
		// back to one replica first (or the idle stop stops them all).
		return false
	}
	if !st.op.TryLock() {
		return false
	}
	defer st.op.Unlock()
	old := p.hideIfIdle(st, idle)
	if old == nil {
		return false
	}
	// Marked before the engine is asked, so that the pause event of our
	// own pause finds the site paused already and is no news.
	p.setPaused(st, old)
	// Stamped before too: another node's wake, and its unpause event,
	// can come before the engine's answer reaches us.
	st.mu.Lock()
	st.lastPause = time.Now()
	st.mu.Unlock()
	pauser, _ := p.rt.(RuntimePauser)
	if pauser == nil {
		p.clearPaused(st)
		p.setRunning(st, old)
		return false
	}
	if err := pauser.Pause(ctx, st.id, old.containerID); err != nil {
		// Typically the container exited meanwhile (its die event hides
		// the upstream again); otherwise it serves on.
		p.clearPaused(st)
		p.setRunning(st, old)
		p.log.Warn("pausing idle site", zap.String("site_id", st.id), zap.Error(err))
		return false
	}
	st.mu.Lock()
	st.state = StatePaused
	st.mu.Unlock()
	p.notify(st)
	p.measurePaused(ctx, st, old.containerID)
	return true
}

// measurePaused reads the memory a paused container holds (it does not
// change while frozen), for MaxPausedMemory.
func (p *Provisioner) measurePaused(ctx context.Context, st *siteState, containerID string) {
	if p.cfg.MaxPausedMemory <= 0 {
		return
	}
	rs, ok := p.rt.(RuntimeStats)
	if !ok {
		return
	}
	s, err := rs.ReplicaStats(ctx, containerID)
	if err != nil {
		p.log.Debug("reading the memory of a paused site", zap.String("site_id", st.id), zap.Error(err))
		return
	}
	if b := st.paused.Load(); b != nil && b.containerID == containerID {
		st.pausedMemory.Store(s.MemoryBytes)
	}
}

// stopPausedIfIdle stops st if it is paused, nothing waits to use it on
// any node and it has been inactive for at least idle. It never waits
// for st.op: a site being woken is not a candidate.
func (p *Provisioner) stopPausedIfIdle(ctx context.Context, st *siteState, idle time.Duration) bool {
	if !st.op.TryLock() {
		return false
	}
	defer st.op.Unlock()
	if st.paused.Load() == nil || st.busy() || st.idleFor(time.Now()) < idle {
		return false
	}
	// The engine thaws a paused container to deliver the stop signal.
	p.clearPaused(st)
	if err := p.stopInstance(ctx, st); err != nil {
		// It may still be there, paused; the next Ensure inspects it
		// and wakes it if so.
		p.log.Error("stopping paused site", zap.String("site_id", st.id), zap.Error(err))
		return false
	}
	return true
}

// wakeLocked thaws the site's paused container and publishes its upstream
// again; st.op is held. ok is false when the site was not paused here or
// the container is no longer paused (another node woke or stopped it):
// then the caller starts it as any stopped site, which finds out which.
func (p *Provisioner) wakeLocked(ctx context.Context, st *siteState) (upstream string, ok bool) {
	b := st.paused.Load()
	if b == nil {
		return "", false
	}
	began := time.Now()
	st.mu.Lock()
	st.lastWake = began
	st.mu.Unlock()
	err := errNotSupported
	if pauser, ok := p.rt.(RuntimePauser); ok {
		err = pauser.Unpause(ctx, st.id, b.containerID)
	}
	p.clearPaused(st)
	if err != nil {
		p.log.Info("waking paused site", zap.String("site_id", st.id), zap.Error(err))
		return "", false
	}
	p.awake(st, b)
	p.metrics.wakes.Inc()
	p.log.Debug("woke paused site", zap.String("site_id", st.id), zap.Duration("duration", time.Since(began)))
	return b.upstream, true
}

// awake publishes the thawed backend b of st: the same container, the
// same upstream, its health checks resumed (they follow b).
func (p *Provisioner) awake(st *siteState, b *backend) {
	st.lastActive.Store(time.Now().UnixNano())
	st.mu.Lock()
	st.state = StateRunning
	st.mu.Unlock()
	p.setRunning(st, b)
	p.notify(st)
}

// onPause learns of a pause by another node on the engine: the site's
// container is frozen, so this node must stop proxying to it and wake it
// at the next request. A pause this node made, or one older than its last
// wake, is no news. The engine itself sometimes reports a pause of ours
// again just after our wake (its containerd monitor marks the container
// paused when containerd's late "paused" event arrives after the
// unpause); it then shows the container paused, so it is taken as one:
// the next request, or the wake below, unpauses it. Should this node be using the site (the other node
// paused it before this node's activity reached it), it wakes the site
// at once rather than leave its requests frozen.
func (p *Provisioner) onPause(ev RuntimeEvent) {
	st := p.sites.get(ev.SiteID)
	if st == nil || st.paused.Load() != nil {
		return
	}
	st.mu.Lock()
	stale := ev.Time.UnixNano() < st.lastWake.UnixNano() || ev.Time.UnixNano() < st.lastStart.UnixNano()
	st.mu.Unlock()
	b := st.upstream.Load()
	if stale || b == nil || b.containerID != ev.Replica || !p.hide(st, b) {
		return
	}
	p.setPaused(st, b)
	st.mu.Lock()
	st.state, st.lastPause = StatePaused, ev.Time
	st.mu.Unlock()
	p.log.Info("site paused by another node", zap.String("site_id", st.id), zap.String("container_id", ev.Replica))
	p.notify(st)
	if st.inflight.Load() > 0 || st.upgraded.Load() > 0 {
		p.wg.Add(1)
		go p.wakeNow(st)
	}
}

// wakeNow wakes st for the requests and connections this node has on it;
// owned by p.wg, bounded by StartTimeout.
func (p *Provisioner) wakeNow(st *siteState) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
	defer cancel()
	st.op.Lock()
	defer st.op.Unlock()
	p.wakeLocked(ctx, st)
}

// onUnpause learns of a wake by another node: the container serves
// again at the upstream it had.
func (p *Provisioner) onUnpause(ev RuntimeEvent) {
	st := p.sites.get(ev.SiteID)
	if st == nil {
		return
	}
	b := st.paused.Load()
	if b == nil || b.containerID != ev.Replica {
		return
	}
	st.mu.Lock()
	stale := ev.Time.UnixNano() < st.lastPause.UnixNano()
	st.mu.Unlock()
	// Our own wake clears paused first or races us here to the same end.
	if stale || !p.dropPaused(st, b) {
		return
	}
	p.awake(st, b)
}

// trimPaused stops paused sites, least recently used first, while the
// memory they hold together is above MaxPausedMemory.
func (p *Provisioner) trimPaused(ctx context.Context) {
	if p.cfg.MaxPausedMemory <= 0 {
		return
	}
	var total uint64
	for _, st := range p.sites.all() {
		if st.paused.Load() != nil {
			total += st.pausedMemory.Load()
		}
	}
	var tried map[*siteState]bool
	for total > uint64(p.cfg.MaxPausedMemory) {
		victim := p.lruPaused(nil, tried)
		if victim == nil {
			return
		}
		if tried == nil {
			tried = make(map[*siteState]bool)
		}
		tried[victim] = true
		mem := victim.pausedMemory.Load()
		if p.stopPausedIfIdle(ctx, victim, 0) {
			total -= min(mem, total)
			p.metrics.evictions.Inc()
			p.log.Info("stopped least recently used paused site to bound paused memory",
				zap.String("site_id", victim.id), zap.Uint64("memory_bytes", mem), zap.Int64("max_paused_memory", p.cfg.MaxPausedMemory))
		}
	}
}

// lruPaused returns the paused, non-busy site with the oldest activity,
// other than self and those already tried.
func (p *Provisioner) lruPaused(self *siteState, tried map[*siteState]bool) *siteState {
	var best *siteState
	var bestActive int64
	for _, st := range p.sites.all() {
		if st == self || tried[st] || st.paused.Load() == nil || st.busy() {
			continue
		}
		if la := st.lastUse(); best == nil || la < bestActive {
			best, bestActive = st, la
		}
	}
	return best
}
