package provisioner

import (
	"context"

	"go.uber.org/zap"
)

// reserve takes a slot under MaxRunning for a start of self, stopping the
// least recently used paused site, else the least recently used idle
// running one, if all slots are taken (paused containers hold one each); it returns
// ErrCapacity if none is idle. The slot is held until release; by then a
// successful start counts in p.running.
//
// Only sites this provisioner knows as running are counted: containers
// started by another node on the same engine are that node's to limit.
func (p *Provisioner) reserve(ctx context.Context, self *siteState) (release func(), err error) {
	if p.cfg.MaxRunning <= 0 {
		return func() {}, nil
	}
	// capMu makes check-and-reserve atomic, so concurrent starts of
	// different sites cannot overshoot MaxRunning together.
	p.capMu.Lock()
	defer p.capMu.Unlock()
	var tried map[*siteState]bool
	for int(p.running.Load()+p.paused.Load()+p.extras.Load())+p.starting >= p.cfg.MaxRunning {
		if self.roomOnly {
			return nil, ErrCapacity // a pre-warm stops no site
		}
		// Paused sites go first: they serve nobody now, and a running
		// idle one may be about to.
		stop := p.stopPausedIfIdle
		victim := p.lruPaused(self, tried)
		if victim == nil {
			stop, victim = p.stopIfIdle, p.lruIdle(self, tried)
		}
		if victim == nil {
			return nil, ErrCapacity
		}
		if tried == nil {
			tried = make(map[*siteState]bool)
		}
		tried[victim] = true
		if stop(ctx, victim, 0) {
			p.metrics.evictions.Inc()
			p.log.Info("stopped least recently used site to make room",
				zap.String("site_id", victim.id), zap.String("for_site_id", self.id), zap.Int("max_running", p.cfg.MaxRunning))
		}
	}
	p.starting++
	return func() {
		p.capMu.Lock()
		p.starting--
		p.capMu.Unlock()
	}, nil
}

// lruIdle returns the running, non-busy site with the oldest activity,
// other than self and those already tried.
func (p *Provisioner) lruIdle(self *siteState, tried map[*siteState]bool) *siteState {
	var best *siteState
	var bestActive int64
	for _, st := range p.sites.all() {
		if st == self || tried[st] || st.upstream.Load() == nil || st.busy() {
			continue
		}
		if la := st.lastUse(); best == nil || la < bestActive {
			best, bestActive = st, la
		}
	}
	return best
}
