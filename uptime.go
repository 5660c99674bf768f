package multitenant

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// uptimePruneEvery is how often a node prunes the uptime history (every
// node does; the deletes are idempotent).
const uptimePruneEvery = time.Hour

// uptimeChange is a site entering an uptime state ("" for none: removed).
type uptimeChange struct {
	siteID, state string
	at            time.Time
}

// uptimeRecorder turns the provisioner's state changes into each site's
// uptime history: observe keeps the changes of state (never blocking the
// provisioner), run saves them.
type uptimeRecorder struct {
	store  *tenants.Store
	logger *zap.Logger
	queue  chan uptimeChange

	mu   sync.Mutex
	last map[string]string // per site: the state queued last
}

func newUptimeRecorder(store *tenants.Store, logger *zap.Logger) *uptimeRecorder {
	return &uptimeRecorder{store: store, logger: logger, queue: make(chan uptimeChange, 4096), last: map[string]string{}}
}

// uptimeState is the uptime state rt puts the site in, and since when;
// ok is false for a change that ends no state (created, starting: the
// site is still what it was).
func uptimeState(rt provisioner.SiteRuntime, now time.Time) (state string, at time.Time, ok bool) {
	switch {
	case rt.State == provisioner.StateFailed:
		return tenants.UptimeFailed, orNow(rt.FailedAt, now), true
	case rt.Restarting:
		return tenants.UptimeUnhealthy, now, true
	case rt.State == provisioner.StateRunning && rt.Health == provisioner.HealthUnhealthy:
		return tenants.UptimeUnhealthy, now, true
	case rt.State == provisioner.StateRunning:
		return tenants.UptimeUp, now, true
	case rt.State == provisioner.StateStopped && !rt.LastExit.IsZero() && rt.LastExit.Equal(rt.LastStop):
		return tenants.UptimeFailed, rt.LastExit, true // it exited on its own
	case rt.State == provisioner.StateStopped:
		return tenants.UptimeAsleep, orNow(rt.LastStop, now), true
	case rt.State == provisioner.StatePaused:
		return tenants.UptimeAsleep, orNow(rt.LastPause, now), true
	case rt.State == provisioner.StateRemoved:
		return "", now, true
	}
	return "", time.Time{}, false
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// observe takes one of the provisioner's state changes; it never blocks.
func (u *uptimeRecorder) observe(rt provisioner.SiteRuntime) {
	state, at, ok := uptimeState(rt, time.Now())
	if !ok {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if prev, seen := u.last[rt.SiteID]; seen && prev == state {
		return
	}
	select {
	case u.queue <- uptimeChange{siteID: rt.SiteID, state: state, at: at}:
		u.last[rt.SiteID] = state
		if state == "" {
			delete(u.last, rt.SiteID)
		}
	default:
		u.logger.Warn("uptime queue full; dropping a change", zap.String("site_id", rt.SiteID))
	}
}

// run saves the queued changes in order and prunes old history until
// ctx ends. A change that fails to save (the database is away) is
// retried with the ones after it, in order.
func (u *uptimeRecorder) run(ctx context.Context) {
	prune := time.NewTicker(uptimePruneEvery)
	defer prune.Stop()
	retry := time.NewTimer(0)
	<-retry.C
	var pending []uptimeChange
	failing := false
	save := func() {
		for len(pending) > 0 {
			c := pending[0]
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := u.store.RecordUptime(sctx, c.siteID, c.state, c.at)
			cancel()
			if err != nil {
				if ctx.Err() == nil && !failing {
					u.logger.Warn("recording uptime; will retry", zap.String("site_id", c.siteID), zap.Error(err))
					failing = true
				}
				retry.Reset(time.Second)
				return
			}
			failing = false
			pending = pending[1:]
		}
	}
	u.pruneOnce(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-u.queue:
			pending = append(pending, c)
			if !failing {
				save()
			}
		case <-retry.C:
			save()
		case <-prune.C:
			u.pruneOnce(ctx)
		}
	}
}

func (u *uptimeRecorder) pruneOnce(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := u.store.PruneUptime(pctx, tenants.UptimeRetention); err != nil && ctx.Err() == nil {
		u.logger.Debug("pruning uptime history", zap.Error(err))
	}
}
