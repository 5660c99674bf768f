package provisioner

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/events"
	"go.uber.org/zap"
)

// watchEvents follows the engine's "die" events for this namespace, so a
// container that crashes (or is stopped behind our back) stops being
// proxied to: its next request goes through Ensure and restarts it. Its
// "pause" and "unpause" events tell of other nodes' pauses and wakes. Started
// by Start, stopped by Stop; reconnects with backoff. Events missed while
// disconnected are caught by the next failed proxy attempt's caller or the
// idle reaper.
func (p *Provisioner) watchEvents(ctx context.Context) {
	defer p.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		f := p.namespaceFilter()
		f.Add("type", string(events.ContainerEventType))
		f.Add("event", string(events.ActionDie))
		f.Add("event", string(events.ActionPause))
		f.Add("event", string(events.ActionUnPause))
		msgs, errs := p.cli.Events(ctx, events.ListOptions{Filters: f})
	recv:
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				backoff = 100 * time.Millisecond
				switch m.Action {
				case events.ActionPause:
					p.onPause(m)
				case events.ActionUnPause:
					p.onUnpause(m)
				default:
					p.onDie(m)
				}
			case err := <-errs:
				if ctx.Err() != nil {
					return
				}
				p.log.Warn("docker event stream ended", zap.Error(err), zap.Duration("retry_in", backoff))
				break recv
			}
		}
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

func (p *Provisioner) onDie(m events.Message) {
	st := p.sites.get(m.Actor.Attributes[LabelSite])
	if st == nil {
		return
	}
	st.mu.Lock()
	stale := m.TimeNano < st.lastStart.UnixNano() || (st.containerID != "" && st.containerID != m.Actor.ID)
	st.mu.Unlock()
	if !stale {
		if b := st.paused.Load(); b != nil && b.containerID == m.Actor.ID && p.dropPaused(st, b) {
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
	p.log.Warn("site container exited", zap.String("site_id", st.id), zap.String("container_id", m.Actor.ID),
		zap.String("exit_code", m.Actor.Attributes["exitCode"]))
	p.notify(st)
}
