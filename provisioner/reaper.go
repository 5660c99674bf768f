package provisioner

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// reap stops idle containers until ctx ends. It is started by Start and
// stopped by Stop. The tick is a fraction of IdleTimeout so that a site
// stops close to its deadline, but at most a second (and at least 10ms) to
// keep the scan cheap.
func (p *Provisioner) reap(ctx context.Context) {
	defer p.wg.Done()
	tick := min(p.cfg.IdleTimeout/4, time.Second)
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

// reapOnce stops every site idle for IdleTimeout, a few at a time: a
// container that ignores SIGTERM takes StopTimeout, and should not hold up
// the others.
func (p *Provisioner) reapOnce(ctx context.Context) {
	now := time.Now()
	var g errgroup.Group
	g.SetLimit(4)
	for _, st := range p.sites.all() {
		if st.upstream.Load() == nil || st.busy() || st.idleFor(now) < p.cfg.IdleTimeout {
			continue
		}
		g.Go(func() error {
			if p.stopIfIdle(ctx, st, p.cfg.IdleTimeout) {
				p.metrics.idleStops.Inc()
				p.log.Info("stopped idle site", zap.String("site_id", st.id), zap.Duration("idle_timeout", p.cfg.IdleTimeout))
			}
			return nil
		})
	}
	g.Wait()
}
