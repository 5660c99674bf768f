package provisioner

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// stopLocked hides the site from the hot path and stops its container;
// st.op is held.
func (p *Provisioner) stopLocked(ctx context.Context, st *siteState) error {
	p.setNotRunning(st)
	p.clearPaused(st)
	return p.stopInstance(ctx, st)
}

// stopInstance stops the site's replicas (SIGTERM, SIGKILL after the
// grace period) and records the stop; a missing instance counts as
// stopped.
func (p *Provisioner) stopInstance(ctx context.Context, st *siteState) error {
	if err := p.rt.Stop(ctx, st.id); err != nil {
		return fmt.Errorf("stopping site %s: %w", st.id, err)
	}
	st.mu.Lock()
	st.state, st.lastStop = StateStopped, time.Now()
	st.mu.Unlock()
	p.notify(st)
	return nil
}

// hideIfIdle hides st's upstream if it is running, has nothing in flight
// and has been inactive for at least idle, and returns the hidden backend;
// st.op is held. The counts are checked again after the upstream is
// hidden: a request that called Begin before reading the upstream is seen
// here (then the upstream is published again and nil returned), one that
// reads it after finds none and waits in Ensure on st.op.
func (p *Provisioner) hideIfIdle(st *siteState, idle time.Duration) *backend {
	old := p.setNotRunning(st)
	if old == nil {
		return nil
	}
	if st.busy() || st.idleFor(time.Now()) < idle {
		p.setRunning(st, old)
		return nil
	}
	return old
}

// stopIfIdle stops st if it is running, has nothing in flight and has been
// inactive for at least idle. It never waits for st.op: a site being
// started or stopped is not a candidate.
//
// The upstream is hidden before the in-flight counts are checked again: a
// request that called Begin before reading the upstream is either seen
// here (and the stop is called off) or finds no upstream and goes through
// Ensure, which waits on st.op until the stop is done and starts the site
// again.
func (p *Provisioner) stopIfIdle(ctx context.Context, st *siteState, idle time.Duration) bool {
	if !st.op.TryLock() {
		return false
	}
	defer st.op.Unlock()
	if p.hideIfIdle(st, idle) == nil {
		return false
	}
	if err := p.stopInstance(ctx, st); err != nil {
		// The container may still run; the next Ensure inspects it and
		// adopts it if so.
		p.log.Error("stopping idle site", zap.String("site_id", st.id), zap.Error(err))
		return false
	}
	return true
}
