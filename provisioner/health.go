package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Defaults of a Spec's health monitoring.
const (
	DefaultHealthInterval = 30 * time.Second
	DefaultUnhealthyAfter = 3
	DefaultRestartAfter   = 5
)

// Health is what the checks of a running site's health path say.
type Health string

// Healths reported in SiteRuntime.
const (
	HealthUnknown   Health = ""          // not checked since it started, or no health path
	HealthHealthy   Health = "healthy"   // the last check passed
	HealthUnhealthy Health = "unhealthy" // UnhealthyAfter checks in a row failed
)

// healthChecks bounds the checks in flight at once: a platform of many
// sites whose checks hang until their timeout must not pile up goroutines.
const healthChecks = 32

// healthSpec is what the checks of one container go by.
type healthSpec struct {
	path           string
	interval       time.Duration
	unhealthyAfter int
	restartAfter   int // 0: never restart
}

func healthOf(spec *Spec) healthSpec {
	h := healthSpec{path: spec.HealthPath, interval: spec.HealthInterval,
		unhealthyAfter: spec.UnhealthyAfter, restartAfter: spec.RestartAfter}
	if h.interval <= 0 {
		h.interval = DefaultHealthInterval
	}
	if h.unhealthyAfter <= 0 {
		h.unhealthyAfter = DefaultUnhealthyAfter
	}
	switch {
	case h.restartAfter == 0:
		h.restartAfter = DefaultRestartAfter
	case h.restartAfter < 0:
		h.restartAfter = 0
	}
	return h
}

// siteHealth is the health monitoring of the container a site runs now;
// guarded by siteState.mu.
type siteHealth struct {
	spec      *Spec // what the container was started from: its restart's spec
	adopted   bool  // spec is what the container's labels tell, not a full one
	cfg       healthSpec
	backend   *backend // the container the checks are about
	state     Health
	fails     int
	since     time.Time // when the failures in a row began
	lastCheck time.Time
	lastErr   string
	next      time.Time
	checking  bool
	// Restarts the checks made back off like failed starts: a site that a
	// restart does not heal is not restarted every few checks.
	restartBackoff time.Duration
	restartUntil   time.Time
	restarting     bool // a restart of the checks' making is under way
}

// watchHealthOf (re)starts the health monitoring of st for the container
// it was just made ready in, from spec; adopted says spec is only what
// the container's labels tell. The backoff of restarts is kept: a new
// container is not proof of a healed site.
func (p *Provisioner) watchHealthOf(st *siteState, spec *Spec, adopted bool) {
	cp := *spec
	st.mu.Lock()
	defer st.mu.Unlock()
	h := &st.health
	h.spec, h.adopted, h.cfg = &cp, adopted, healthOf(&cp)
	h.backend = st.upstream.Load()
	p.resetHealth(h)
	h.next = time.Now().Add(h.cfg.interval)
}

// resetHealth forgets what the checks said of the container (it stopped,
// or another replaced it); st.mu is held.
func (p *Provisioner) resetHealth(h *siteHealth) {
	if h.state == HealthUnhealthy {
		p.metrics.unhealthy.Dec()
	}
	h.state, h.fails, h.since, h.lastErr, h.lastCheck = HealthUnknown, 0, time.Time{}, "", time.Time{}
}

// watchHealth checks the health path of every running site on its
// interval until ctx ends; started by Start, stopped by Stop. Every node
// serving a site checks it: the checks are reads, an unhealthy state is
// each node's own view, and a restart happens under the site's lock and
// only when the container still is the one that failed (see restart).
func (p *Provisioner) watchHealth(ctx context.Context) {
	defer p.wg.Done()
	slots := make(chan struct{}, healthChecks)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		wake := now.Add(time.Second)
		for _, st := range p.sites.all() {
			b := st.upstream.Load()
			st.mu.Lock()
			h := &st.health
			due := b != nil && h.backend == b && h.cfg.path != "" && !h.checking && !now.Before(h.next)
			if due {
				select {
				case slots <- struct{}{}:
					h.checking = true
				default:
					due = false // all slots busy: next round
				}
			}
			if b != nil && h.backend == b && h.cfg.path != "" && !h.checking && h.next.Before(wake) {
				wake = h.next
			}
			st.mu.Unlock()
			if due {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					defer func() { <-slots }()
					p.checkHealth(ctx, st, b)
				}()
			}
		}
		timer.Reset(max(time.Until(wake), 10*time.Millisecond))
	}
}

// checkHealth checks b's health path once and acts on the result.
func (p *Provisioner) checkHealth(ctx context.Context, st *siteState, b *backend) {
	st.mu.Lock()
	h := &st.health
	if h.adopted && p.cfg.Refresh != nil {
		// A container found running tells its health path only; the
		// source has the rest (interval, thresholds, what a restart
		// makes).
		spec := *h.spec
		st.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, probeTimeout)
		fresh, err := p.cfg.Refresh(rctx, spec)
		cancel()
		st.mu.Lock()
		if err == nil && h.backend == b {
			h.spec, h.adopted, h.cfg = &fresh, false, healthOf(&fresh)
		}
	}
	cfg := h.cfg
	st.mu.Unlock()

	// The timeout is not the interval's: a short interval must not turn a
	// busy machine's slow answers into failures. The next check is an
	// interval after this one ends, so checks of a site never overlap.
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	err := healthGet(cctx, b.upstream, cfg.path)
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := time.Now()

	st.mu.Lock()
	h.checking = false
	h.next = now.Add(cfg.interval)
	if h.backend != b || st.upstream.Load() != b {
		st.mu.Unlock() // stopped or replaced meanwhile: not about this container any more
		return
	}
	h.lastCheck = now
	changed, restart := false, false
	was := h.state
	if err == nil {
		// The first pass is a change too: what follows a restart
		// resolves the incident.
		changed = h.state != HealthHealthy
		h.state, h.fails, h.since, h.lastErr = HealthHealthy, 0, time.Time{}, ""
		h.restartBackoff, h.restartUntil = 0, time.Time{}
	} else {
		if h.fails == 0 {
			h.since = now
		}
		h.fails++
		h.lastErr = err.Error()
		if h.fails >= cfg.unhealthyAfter && h.state != HealthUnhealthy {
			h.state, changed = HealthUnhealthy, true
		}
		restart = cfg.restartAfter > 0 && h.fails >= cfg.restartAfter && !now.Before(h.restartUntil)
	}
	p.metrics.healthChecks.WithLabelValues(healthResult(err)).Inc()
	fails, since := h.fails, h.since
	st.mu.Unlock()

	if changed {
		switch {
		case err != nil:
			p.metrics.unhealthy.Inc()
			p.log.Warn("site unhealthy", zap.String("site_id", st.id), zap.Int("failed_checks", fails), zap.Error(err))
		case was == HealthUnhealthy:
			p.metrics.unhealthy.Dec()
			p.log.Info("site healthy again", zap.String("site_id", st.id))
		}
		p.notify(st)
	}
	if restart {
		p.restartUnhealthy(ctx, st, b, since, fails)
	}
}

// healthResult labels a check's outcome for the metrics.
func healthResult(err error) string {
	if err == nil {
		return "passed"
	}
	return "failed"
}

// healthGet asks upstream for path; a 2xx answer is healthy.
func healthGet(ctx context.Context, upstream, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+upstream+path, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health check %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// restartUnhealthy restarts the site's container b after fails checks in
// a row failed since then. Under the site's lock (across nodes) it first
// makes sure the container is still b and was not started again since
// the failures began: another node checking the same site may have
// restarted it already, and a second restart would only cut the healed
// one short.
func (p *Provisioner) restartUnhealthy(ctx context.Context, st *siteState, b *backend, since time.Time, fails int) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StopTimeout+p.cfg.StartTimeout+5*time.Second)
	defer cancel()
	held, release, err := p.hold(ctx, st.id)
	if err != nil {
		return // ctx ended
	}
	defer release()
	if st.upstream.Load() != b {
		return
	}
	if inst, err := p.rt.Inspect(ctx, st.id); err == nil && inst.State == InstanceRunning && inst.StartedAt.After(since) {
		return // restarted by another node: its own checks will tell
	}
	st.mu.Lock()
	h := &st.health
	spec := *h.spec
	h.restartBackoff = min(max(2*h.restartBackoff, minFailBackoff), maxFailBackoff)
	h.restartUntil = time.Now().Add(h.restartBackoff)
	h.restarting = true
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		h.restarting = false
		st.mu.Unlock()
	}()
	if spec.Image == "" && p.cfg.Refresh == nil {
		p.log.Warn("not restarting unhealthy site: its spec is unknown", zap.String("site_id", st.id))
		return
	}

	p.log.Warn("restarting unhealthy site", zap.String("site_id", st.id), zap.Int("failed_checks", fails))
	p.metrics.healthRestarts.Inc()
	if err := p.stopLocked(ctx, held); err != nil {
		p.log.Error("stopping unhealthy site", zap.String("site_id", st.id), zap.Error(err))
		return
	}
	if _, err := p.startHeld(ctx, held, &spec); err != nil {
		if errors.Is(err, ErrCapacity) {
			p.log.Warn("no capacity to restart unhealthy site", zap.String("site_id", st.id))
			return
		}
		p.failStart(held, st.id, err)
		return
	}
	p.log.Info("restarted unhealthy site", zap.String("site_id", st.id))
}

// fill sets rt's health fields; st.mu is held.
func (h *siteHealth) fill(rt *SiteRuntime) {
	rt.Health, rt.HealthFailures, rt.HealthError = h.state, h.fails, h.lastErr
	rt.HealthCheckedAt, rt.Restarting = h.lastCheck, h.restarting
	if h.state == HealthUnhealthy {
		rt.UnhealthySince = h.since
	}
}
