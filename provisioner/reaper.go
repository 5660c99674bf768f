package provisioner

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// reap pauses and stops idle containers until ctx ends. It is started by
// Start and stopped by Stop. The tick is a fraction of the shorter of
// PauseAfter and IdleTimeout so that a site pauses or stops close to its
// deadline, but at most a second (and at least 10ms) to keep the scan
// cheap.
func (p *Provisioner) reap(ctx context.Context) {
	defer p.wg.Done()
	tick := min(p.idleStep()/4, time.Second)
	tick = max(tick, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.reapOnce(ctx)
		}
	}
}

// idleStep is the shortest idle period the reaper acts on: PauseAfter
// when sites pause, else IdleTimeout (0 when neither applies).
func (p *Provisioner) idleStep() time.Duration {
	if p.pauseEnabled() {
		return p.cfg.PauseAfter
	}
	return p.cfg.IdleTimeout
}

// reapOnce stops every site idle for IdleTimeout, running or paused, and
// pauses every running one idle for PauseAfter, a few at a time: a
// container that ignores SIGTERM takes StopTimeout, and should not hold up
// the others. Then it bounds the paused sites' memory.
func (p *Provisioner) reapOnce(ctx context.Context) {
	now := time.Now()
	idleTimeout, pause := p.cfg.IdleTimeout, p.pauseEnabled()
	var g errgroup.Group
	g.SetLimit(4)
	for _, st := range p.sites.all() {
		if st.busy() {
			continue
		}
		idle := st.idleFor(now)
		switch {
		case st.upstream.Load() != nil && idleTimeout > 0 && idle >= idleTimeout:
			g.Go(func() error {
				if p.stopIfIdle(ctx, st, idleTimeout) {
					p.metrics.idleStops.Inc()
					p.log.Info("stopped idle site", zap.String("site_id", st.id), zap.Duration("idle_timeout", idleTimeout))
				}
				return nil
			})
		case st.upstream.Load() != nil && pause && idle >= p.cfg.PauseAfter:
			g.Go(func() error {
				if p.pauseIfIdle(ctx, st, p.cfg.PauseAfter) {
					p.metrics.pauses.Inc()
					p.log.Info("paused idle site", zap.String("site_id", st.id), zap.Duration("pause_after", p.cfg.PauseAfter))
				}
				return nil
			})
		case st.paused.Load() != nil && idleTimeout > 0 && idle >= idleTimeout:
			g.Go(func() error {
				if p.stopPausedIfIdle(ctx, st, idleTimeout) {
					p.metrics.idleStops.Inc()
					p.log.Info("stopped idle paused site", zap.String("site_id", st.id), zap.Duration("idle_timeout", idleTimeout))
				}
				return nil
			})
		}
	}
	g.Wait()
	p.trimPaused(ctx)
}
