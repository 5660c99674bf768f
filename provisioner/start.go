package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// start is the body of the per-site singleflight: it runs detached from any
// caller's ctx (callers may give up; the start goes on for the others),
// bounded by StartTimeout.
func (p *Provisioner) start(st *siteState, spec Spec, roomOnly bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
	defer cancel()
	began := time.Now()

	st.op.Lock()
	defer st.op.Unlock()
	if roomOnly {
		// Under op: no other start of the site runs meanwhile.
		st.roomOnly = true
		defer func() { st.roomOnly = false }()
	}
	// A start that finished while we waited for op (or a backoff opened by
	// it) decides for us.
	if b := st.upstream.Load(); b != nil {
		return b.upstream, nil
	}
	// A paused site is thawed, not started: the same container, the same
	// upstream, nothing to wait for.
	if u, ok := p.wakeLocked(ctx, st); ok {
		return u, nil
	}
	if se := st.backoffErr(began); se != nil {
		return "", se
	}

	upstream, err := p.startLocked(ctx, st, &spec)
	switch {
	case err == nil:
		if !roomOnly { // a pre-warm is no cold start: no request waited
			p.metrics.coldStarts.WithLabelValues("started").Inc()
			p.metrics.coldStartSeconds.Observe(time.Since(began).Seconds())
		}
		p.log.Info("site started", zap.String("site_id", spec.SiteID), zap.String("upstream", upstream),
			zap.Duration("duration", time.Since(began)))
		if st.startedSince(began) {
			p.coldStarted(spec.SiteID, began, true)
		}
		return upstream, nil
	case errors.Is(err, ErrCapacity):
		// Not the site's fault: no backoff, the next request may find room.
		if roomOnly {
			return "", fmt.Errorf("starting site %s into free room: %w", spec.SiteID, err)
		}
		p.metrics.coldStarts.WithLabelValues("capacity").Inc()
		p.log.Warn("no capacity to start site", zap.String("site_id", spec.SiteID), zap.Int("max_running", p.cfg.MaxRunning))
		if p.cfg.OnCapacity != nil {
			p.cfg.OnCapacity(spec.SiteID)
		}
		return "", fmt.Errorf("starting site %s: %w", spec.SiteID, err)
	}

	se := p.failStart(st, spec.SiteID, err)
	p.coldStarted(spec.SiteID, began, false)
	return "", se
}

// coldStarted reports a start requests waited for to Config.OnColdStart.
func (p *Provisioner) coldStarted(siteID string, began time.Time, ok bool) {
	if p.cfg.OnColdStart != nil {
		p.cfg.OnColdStart(siteID, time.Since(began), ok)
	}
}

// failStart records a failed start: the error, and the backoff window
// in which Ensure fails fast. A container that may still run (not ready
// in time, a failing health check) is stopped rather than left up
// untracked.
func (p *Provisioner) failStart(st *siteState, siteID string, err error) *StartError {
	reason := "starting container"
	if errors.Is(err, context.DeadlineExceeded) {
		reason = fmt.Sprintf("not ready within %s", p.cfg.StartTimeout)
	}
	se := startErr(siteID, reason, err)
	if se.ExitCode < 0 {
		sctx, scancel := context.WithTimeout(context.Background(), p.cfg.StopTimeout+5*time.Second)
		if err := p.stopInstance(sctx, st); err != nil {
			p.log.Warn("stopping container after failed start", zap.String("site_id", siteID), zap.Error(err))
		}
		scancel()
	}
	st.recordFailure(se, time.Now())
	p.metrics.coldStarts.WithLabelValues("failed").Inc()
	p.log.Error("site failed to start", zap.String("site_id", siteID), zap.String("reason", se.Reason),
		zap.Int("exit_code", se.ExitCode), zap.String("log_tail", se.LogTail), zap.Error(se.Err))
	p.notify(st)
	return se
}

// startLocked does the work of a start under the site's lock; st.op is
// held.
func (p *Provisioner) startLocked(ctx context.Context, st *siteState, spec *Spec) (string, error) {
	unlock, err := p.lock(ctx, spec.SiteID)
	if err != nil {
		return "", err
	}
	defer unlock()
	return p.startHeld(ctx, st, spec)
}

// startHeld does the work of a start; st.op and the site's lock are held.
func (p *Provisioner) startHeld(ctx context.Context, st *siteState, spec *Spec) (string, error) {
	if p.cfg.Refresh != nil {
		fresh, err := p.cfg.Refresh(ctx, *spec)
		if err != nil {
			return "", fmt.Errorf("refreshing the spec of site %s: %w", spec.SiteID, err)
		}
		*spec = fresh
	}

	release, err := p.reserve(ctx, st)
	if err != nil {
		return "", err
	}
	defer release()

	if err := p.checkCapabilities(spec); err != nil {
		return "", startErr(spec.SiteID, "checking capabilities", err)
	}
	inst, err := p.rt.Ensure(ctx, spec)
	if err != nil {
		return "", startErr(spec.SiteID, "creating container", err)
	}
	st.mu.Lock()
	st.containerID, st.version = inst.ID, inst.TemplateVersion
	if inst.Created {
		st.state = StateCreated
	}
	st.mu.Unlock()
	if inst.Created {
		p.notify(st)
	}

	// Started by another node (under its lock) or left running by a
	// previous process: just wait for it to be ready (thawed first when
	// another node paused it unbeknown to us).
	alreadyRunning := inst.State == InstanceRunning || inst.State == InstancePaused
	st.mu.Lock()
	st.state = StateStarting
	if !alreadyRunning {
		st.lastStart = time.Now()
	}
	st.mu.Unlock()
	p.notify(st)
	if !alreadyRunning {
		p.dockerStarts.Add(1)
	}
	var rep Replica
	for {
		// As many replicas as run already (another node scaled the site up).
		if inst, err = p.rt.Scale(ctx, spec.SiteID, max(inst.Replicas, 1)); err != nil {
			return "", startErr(spec.SiteID, "starting container", err)
		}
		if len(inst.Running) == 0 {
			return "", startErr(spec.SiteID, "finding upstream", errors.New("no replica runs"))
		}
		rep = inst.Running[0]
		err := p.waitReady(ctx, spec, rep)
		if err == nil {
			break
		}
		if !errors.Is(err, errReplicaGone) {
			return "", err
		}
		// Swarm gave up on the task (its node lost, not yet noticed when
		// Scale listed it): the next Scale waits for its replacement.
		p.log.Info("replica gone during start; waiting for its replacement",
			zap.String("site_id", spec.SiteID), zap.String("replica", rep.ID), zap.Error(err))
	}

	st.keepSpec(spec)
	p.setReady(st, p.readyOf(ctx, spec, inst.Running))
	p.watchHealthOf(st, spec, false)
	p.notify(st)
	return rep.Upstream, nil
}

// readyOf returns replicas (the first known ready) but the others that
// are not ready yet: those another node scaled the site up with, one of
// them still starting. The autoscaler adds those later, once ready.
func (p *Provisioner) readyOf(ctx context.Context, spec *Spec, replicas []Replica) []Replica {
	out := replicas[:1:1]
	for _, rep := range replicas[1:] {
		if p.ready(ctx, spec, rep) {
			out = append(out, rep)
		}
	}
	return out
}

// setReady marks the site running, balanced over replicas (at least
// one; the first is its container), with a full idle period and its
// failures forgotten; it returns the backend it replaced, if any.
func (p *Provisioner) setReady(st *siteState, replicas []Replica) *backend {
	st.lastActive.Store(time.Now().UnixNano())
	st.mu.Lock()
	st.state, st.containerID, st.readyAt = StateRunning, replicas[0].ID, time.Now()
	st.failErr, st.failBackoff, st.failUntil = nil, 0, time.Time{}
	st.mu.Unlock()
	return p.setRunning(st, newBackend(st, &p.clock, replicas))
}

// checkCapabilities refuses a spec adding a capability the platform does
// not allow: the store checks templates when they are written, this holds
// for one written before the operator took an allowance back.
func (p *Provisioner) checkCapabilities(spec *Spec) error {
	if p.cfg.AllowedCapabilities == nil {
		return nil
	}
	for _, c := range spec.CapAdd {
		if !slices.Contains(p.cfg.AllowedCapabilities, strings.TrimPrefix(strings.ToUpper(c), "CAP_")) {
			return fmt.Errorf("capability %s is not allowed on this platform (tenants option allow_capabilities)", c)
		}
	}
	return nil
}
