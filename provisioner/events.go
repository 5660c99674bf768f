package provisioner

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"
)

// watchEvents follows the runtime's events of this namespace, so a replica
// that crashes (or is stopped behind our back) stops being proxied to: its
// next request goes through Ensure and starts it again. Pauses and wakes
// tell of other nodes' ones. Started by Start, stopped by Stop; a stream
// that ends (an engine gone) is asked for again with backoff. Events
// missed meanwhile are caught by the next failed proxy attempt's caller
// or the idle reaper.
func (p *Provisioner) watchEvents(ctx context.Context) {
	defer p.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		evs, err := p.rt.Events(ctx)
		if err == nil {
			backoff = 100 * time.Millisecond
			for ev := range evs {
				p.onEvent(ev)
			}
		}
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("runtime event stream ended", zap.Error(err), zap.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// onEvent applies one event of the runtime's.
func (p *Provisioner) onEvent(ev RuntimeEvent) {
	switch ev.Action {
	case ReplicaPaused:
		p.onPause(ev)
	case ReplicaUnpaused:
		p.onUnpause(ev)
	case ReplicaExited:
		p.onDie(ev)
	case ReplicaRetiring:
		// Another node (or this one) is scaling the site down: its
		// requests stop going to the replica before it goes.
		if st := p.sites.get(ev.SiteID); st != nil {
			p.dropExtra(st, ev.Replica, "retired by a scale-down")
		}
	case ReplicaStarted:
		// A start says nothing against the replicas this node proxies to:
		// a rollout's candidate, or another node's scale-up, which this
		// node's autoscaler takes up when its share of the load asks.
	default:
		p.onState(ev)
	}
}

// onState applies a state report (from a runtime that reports states, not
// replicas' changes: Swarm). A site whose replica this node proxies to is
// no longer among the running ones (scaled to 0 by another node, its task
// died or was moved to another node) is hidden from the hot path: its next
// request ensures it again, which waits for the replacement. A report
// read before the site became ready here is stale.
func (p *Provisioner) onState(ev RuntimeEvent) {
	st := p.sites.get(ev.SiteID)
	if st == nil {
		return
	}
	b := st.upstream.Load()
	if b == nil {
		return
	}
	if slices.Contains(ev.Upstreams, b.upstream) {
		// The first replica runs on; an extra one that no longer does
		// is dropped (one that started is the autoscaler's to add, once
		// ready).
		kept := slices.DeleteFunc(slices.Clone(b.replicas), func(r Replica) bool {
			return !slices.Contains(ev.Upstreams, r.Upstream)
		})
		if len(kept) < len(b.replicas) {
			p.keepReplicas(st, b, kept, "no longer reported running")
		}
		return
	}
	st.mu.Lock()
	stale := ev.Time.Before(st.readyAt)
	st.mu.Unlock()
	if stale || !p.hide(st, b) {
		return
	}
	st.mu.Lock()
	p.resetHealth(&st.health)
	st.state, st.lastStop = StateStopped, time.Now()
	if ev.State != InstanceStopped && ev.State != InstanceAbsent {
		st.lastExit = st.lastStop // not a stop of ours: it ended, or moved
	}
	st.mu.Unlock()
	p.log.Warn("site's replica no longer runs", zap.String("site_id", st.id), zap.String("upstream", b.upstream),
		zap.String("state", string(ev.State)))
	p.notify(st)
}

func (p *Provisioner) onDie(ev RuntimeEvent) {
	st := p.sites.get(ev.SiteID)
	if st == nil {
		return
	}
	if p.dropExtra(st, ev.Replica, "exited") {
		return // scaled down by another node, or crashed: the others serve on
	}
	st.mu.Lock()
	stale := ev.Time.Before(st.lastStart) || (st.containerID != "" && st.containerID != ev.Replica)
	st.mu.Unlock()
	if !stale {
		if b := st.paused.Load(); b != nil && b.containerID == ev.Replica && p.dropPaused(st, b) {
			// A paused container killed behind our back.
			st.mu.Lock()
			st.state, st.lastStop = StateStopped, time.Now()
			st.lastExit = st.lastStop
			st.mu.Unlock()
			p.notify(st)
			return
		}
	}
	// Our own stops hide the upstream first, so they end here too.
	if stale || p.setNotRunning(st) == nil {
		return
	}
	st.mu.Lock()
	st.state, st.lastStop = StateStopped, time.Now()
	st.lastExit = st.lastStop
	st.mu.Unlock()
	p.log.Warn("site container exited", zap.String("site_id", st.id), zap.String("container_id", ev.Replica),
		zap.String("exit_code", ev.ExitCode))
	p.notify(st)
}
