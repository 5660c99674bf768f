package provisioner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// A rollout replaces a running site's container without a gap: the new
// container (named candidateName) starts beside the live one, and only
// once it is ready does the site's upstream switch to it, atomically for
// the hot path; the requests and upgraded connections still on the old
// container finish (DrainTimeout at most), then the old container is
// stopped and removed and the new one takes its name. A new container
// that does not become ready is removed and the old one never stops
// serving. The whole of it holds the site's lock, so another node's
// start of the site waits for its outcome rather than meet half of it.

// RolloutOptions say what a rollout runs and whom it tells.
type RolloutOptions struct {
	// Spec is called under the site's lock and returns what to run; ok
	// false calls the rollout off (a newer release came meanwhile).
	Spec func(ctx context.Context) (spec Spec, ok bool, err error)
	// Switched, if set, is called once the new container serves this
	// node's requests and before the old one drains: when the other
	// nodes must be told to switch too. For a site that does not run it
	// is called with "" while the lock is still held, so that no start
	// makes a container from what the site ran before.
	Switched func(ctx context.Context, containerID string)
}

// RolloutResult says how a rollout went.
type RolloutResult struct {
	// Skipped: Spec called the rollout off.
	Skipped bool
	// Stopped: no container of the site ran, so none was started; the
	// site's next start makes its container from the spec.
	Stopped bool
	// BriefStop says why the live container stopped before the new one
	// started; "" when they overlapped.
	BriefStop string
	// ContainerID and Upstream are the new container's.
	ContainerID, Upstream string
	// Drained is how long the old container took to finish what it
	// served; DrainTimedOut is set when it had not within DrainTimeout.
	Drained       time.Duration
	DrainTimedOut bool
}

// Reasons a rollout stops the live container before the new one starts.
const (
	briefStopVolume   = "the template does not allow two containers to share the site's volume (share_volume)"
	briefStopCapacity = "max_running leaves no room for a second container"
)

// Rollout replaces the site's running container with one made from the
// spec opts.Spec returns (see the comment above RolloutOptions). A site
// with no running container is left as it is (Stopped). A new container
// that fails to start or to become ready within StartTimeout is removed
// and its failure, a *StartError with its last log lines, returned; the
// live container serves throughout.
func (p *Provisioner) Rollout(ctx context.Context, siteID string, opts RolloutOptions) (RolloutResult, error) {
	var res RolloutResult
	if !validName.MatchString(siteID) {
		return res, fmt.Errorf("invalid site id %q", siteID)
	}
	if !p.engineUp.Load() {
		return res, ErrEngineUnavailable
	}
	st, release, err := p.hold(ctx, siteID)
	if err != nil {
		return res, err
	}
	defer release()

	spec, ok, err := opts.Spec(ctx)
	switch {
	case err != nil:
		return res, err
	case !ok:
		res.Skipped = true
		return res, nil
	}
	if err := spec.validate(); err != nil {
		return res, err
	}
	// A candidate left by a rollout cut short goes first.
	ro, ok := p.rt.(RuntimeRollouts)
	if !ok {
		return p.rolloutInPlace(ctx, st, &spec, res, opts)
	}
	if err := ro.DiscardCandidate(ctx, siteID); err != nil {
		return res, err
	}
	live, err := p.rt.Inspect(ctx, siteID)
	switch {
	case err != nil:
		return res, err
	case live.State == InstanceAbsent:
		return p.notRunning(ctx, st, res, opts)
	case live.State != InstanceRunning:
		if err := p.removeLocked(ctx, st, false); err != nil {
			return res, err
		}
		return p.notRunning(ctx, st, res, opts)
	case len(live.Running) > 1:
		// The candidate replaces one container: the autoscaler's extra
		// replicas go first (drained), and come back from the new spec
		// when the load asks for them again.
		if _, err := p.scaleDownLocked(ctx, st, 1); err != nil {
			return res, fmt.Errorf("scaling site %s to one replica for its rollout: %w", siteID, err)
		}
		if live, err = p.rt.Inspect(ctx, siteID); err != nil {
			return res, err
		}
	}
	if err := p.checkCapabilities(&spec); err != nil {
		return res, startErr(spec.SiteID, "checking capabilities", err)
	}
	if err := ro.Prepare(ctx, &spec); err != nil {
		return res, err
	}
	unreserve := func() {}
	if spec.DataPath != "" && !spec.ShareVolume {
		res.BriefStop = briefStopVolume
	} else {
		unreserve, err = p.reserve(ctx, st)
		switch {
		case errors.Is(err, ErrCapacity):
			res.BriefStop, unreserve = briefStopCapacity, func() {}
		case err != nil:
			return res, err
		}
	}
	defer unreserve()
	if res.BriefStop != "" {
		return p.replaceInPlace(ctx, ro, st, &spec, live, res, opts)
	}
	return p.startBeside(ctx, ro, st, &spec, live, res, opts)
}

// notRunning ends the rollout of a site without a running container.
func (p *Provisioner) notRunning(ctx context.Context, st *siteState, res RolloutResult, opts RolloutOptions) (RolloutResult, error) {
	res.Stopped = true
	if opts.Switched != nil {
		opts.Switched(ctx, "")
	}
	return res, nil
}

// rolloutInPlace rolls out on a runtime without candidates: Ensure
// updates the running instance in place (Swarm replaces its tasks, the
// new one started first) and the rollout waits for it to be ready. A
// stopped site is only marked: its next start makes it from the new spec.
func (p *Provisioner) rolloutInPlace(ctx context.Context, st *siteState, spec *Spec, res RolloutResult, opts RolloutOptions) (RolloutResult, error) {
	live, err := p.rt.Inspect(ctx, st.id)
	switch {
	case err != nil:
		return res, err
	case live.State != InstanceRunning:
		return p.notRunning(ctx, st, res, opts)
	}
	if err := p.checkCapabilities(spec); err != nil {
		return res, startErr(spec.SiteID, "checking capabilities", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	inst, err := p.rt.Ensure(ctx, spec)
	if err == nil {
		inst, err = p.rt.Scale(ctx, st.id, max(live.Replicas, 1))
	}
	if err == nil && len(inst.Running) == 0 {
		err = errors.New("no replica runs")
	}
	if err == nil {
		err = p.waitReady(ctx, spec, inst.Running[0])
	}
	if err != nil {
		return res, p.failStart(st, spec.SiteID, err)
	}
	inst.Running = p.readyOf(ctx, spec, inst.Running)
	p.switchTo(st, &inst, spec, false)
	res.ContainerID, res.Upstream = inst.ID, inst.Running[0].Upstream
	if opts.Switched != nil {
		opts.Switched(ctx, inst.ID)
	}
	p.log.Info("rolled out site in place", zap.String("site_id", st.id), zap.String("instance_id", inst.ID))
	return res, nil
}

// startBeside starts the new container while the live one serves, then
// switches, drains and retires the live one.
func (p *Provisioner) startBeside(ctx context.Context, ro RuntimeRollouts, st *siteState, spec *Spec, live RuntimeInstance, res RolloutResult, opts RolloutOptions) (RolloutResult, error) {
	c, err := p.startCandidate(ctx, ro, spec)
	if err != nil {
		return res, err
	}
	old := p.switchTo(st, &c, spec, false)
	res.ContainerID, res.Upstream = c.ID, c.Running[0].Upstream
	if opts.Switched != nil {
		opts.Switched(ctx, c.ID)
	}
	res.Drained, res.DrainTimedOut = p.drain(ctx, st, old, live.ID)
	p.retire(ctx, ro, spec, live, c.ID)
	p.log.Info("rolled out site", zap.String("site_id", st.id), zap.String("container_id", c.ID),
		zap.String("old_container_id", live.ID), zap.Duration("drained", res.Drained), zap.Bool("drain_timed_out", res.DrainTimedOut))
	return res, nil
}

// replaceInPlace stops the live container (once what it serves is done;
// new requests wait for the rollout meanwhile) and starts the new one in
// its place; if that fails, the live one starts again.
func (p *Provisioner) replaceInPlace(ctx context.Context, ro RuntimeRollouts, st *siteState, spec *Spec, live RuntimeInstance, res RolloutResult, opts RolloutOptions) (RolloutResult, error) {
	old := p.setNotRunning(st)
	res.Drained, res.DrainTimedOut = p.drain(ctx, st, old, live.ID)
	if err := ro.StopReplica(ctx, live.ID); err != nil {
		p.restore(ctx, ro, st, live)
		return res, err
	}
	c, err := p.startCandidate(ctx, ro, spec)
	if err != nil {
		p.restore(ctx, ro, st, live)
		return res, err
	}
	p.switchTo(st, &c, spec, false)
	res.ContainerID, res.Upstream = c.ID, c.Running[0].Upstream
	if opts.Switched != nil {
		opts.Switched(ctx, c.ID)
	}
	p.retire(ctx, ro, spec, live, c.ID)
	p.log.Info("rolled out site with a brief stop", zap.String("site_id", st.id), zap.String("container_id", c.ID),
		zap.String("reason", res.BriefStop))
	return res, nil
}

// restore starts the live container again after a replacement failed.
func (p *Provisioner) restore(ctx context.Context, ro RuntimeRollouts, st *siteState, live RuntimeInstance) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StartTimeout)
	defer cancel()
	c, err := ro.StartReplica(ctx, st.id, live.ID)
	spec := adoptedSpec(&c)
	if err == nil && len(c.Running) == 0 {
		err = errors.New("the live container runs without an upstream")
	}
	if err == nil {
		err = p.waitReady(ctx, &spec, c.Running[0])
	}
	if err != nil {
		p.log.Error("starting the live container again after a failed rollout", zap.String("site_id", st.id), zap.Error(err))
		return
	}
	p.switchTo(st, &c, &spec, true)
}

// startCandidate creates and starts the new container of spec beside the
// live one and waits until it is ready, within StartTimeout. On failure
// the candidate is removed, with the networks it alone used, and the
// error is a *StartError with its last log lines.
func (p *Provisioner) startCandidate(ctx context.Context, ro RuntimeRollouts, spec *Spec) (RuntimeInstance, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	p.dockerStarts.Add(1)
	c, err := ro.StartCandidate(ctx, spec)
	if err == nil && len(c.Running) == 0 {
		err = startErr(spec.SiteID, "finding upstream", errors.New("the new container runs without an upstream"))
	}
	if err == nil {
		err = p.waitReady(ctx, spec, c.Running[0])
	}
	if err == nil {
		return c, nil
	}
	// The cleanup runs to its end even when the caller gave up.
	cleanup, cancelCleanup := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StopTimeout+10*time.Second)
	defer cancelCleanup()
	se := startErr(spec.SiteID, "starting container", err)
	if errors.Is(err, context.DeadlineExceeded) {
		se.Reason = fmt.Sprintf("not ready within %s", p.cfg.StartTimeout)
	}
	if se.LogTail == "" && c.ID != "" {
		se.LogTail = p.logTail(cleanup, c.ID, 20)
	}
	if rerr := ro.DiscardCandidate(cleanup, spec.SiteID); rerr != nil {
		p.log.Error("removing the container of a failed rollout", zap.String("site_id", spec.SiteID), zap.Error(rerr))
	}
	return c, se
}

// switchTo makes instance c's replica the site's on the hot path and
// returns the backend it replaced, if any.
func (p *Provisioner) switchTo(st *siteState, c *RuntimeInstance, spec *Spec, adopted bool) *backend {
	old := p.setReady(st, c.Running)
	if adopted {
		st.mu.Lock()
		st.probe = *spec // the policy is learnt from Refresh
		st.mu.Unlock()
	} else {
		st.keepSpec(spec)
	}
	p.watchHealthOf(st, spec, adopted)
	st.mu.Lock()
	st.version, st.lastStart = c.TemplateVersion, time.Now()
	st.mu.Unlock()
	p.notify(st)
	return old
}

// drainPoll is how often a drain looks at the counts, and peerPoll how
// often it asks about the other nodes (they report once a second).
const (
	drainPoll = 10 * time.Millisecond
	peerPoll  = 250 * time.Millisecond
)

// drain waits until nothing this node sent to old (and nothing that began
// during a cold start) is in flight, and no other node uses containerID,
// DrainTimeout at most; it returns how long it waited and whether it gave
// up. A failing question to the other nodes counts as their using it.
func (p *Provisioner) drain(ctx context.Context, st *siteState, old *backend, containerID string) (time.Duration, bool) {
	return p.drainWith(ctx, st, old, containerID, p.cfg.PeersUse != nil)
}

// drainWith is drain, asking the other nodes only with peers.
func (p *Provisioner) drainWith(ctx context.Context, st *siteState, old *backend, containerID string, peers bool) (time.Duration, bool) {
	began := time.Now()
	deadline := time.NewTimer(p.cfg.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	peersBusy := peers && p.cfg.PeersUse != nil
	var asked time.Time
	for {
		if peersBusy && time.Since(asked) >= peerPoll {
			asked = time.Now()
			busy, err := p.cfg.PeersUse(ctx, st.id, containerID)
			if err != nil {
				p.log.Debug("asking whether other nodes use a container", zap.String("site_id", st.id), zap.Error(err))
			}
			peersBusy = busy || err != nil
		}
		localBusy := (old != nil && old.busy()) || st.unbound.Load() > 0
		if !localBusy && !peersBusy {
			return time.Since(began), false
		}
		select {
		case <-ctx.Done():
			return time.Since(began), true
		case <-deadline.C:
			p.log.Warn("old container still busy after the drain timeout; stopping it", zap.String("site_id", st.id),
				zap.String("container_id", containerID), zap.Duration("drain_timeout", p.cfg.DrainTimeout))
			return time.Since(began), true
		case <-tick.C:
		}
	}
}

// retire stops and removes the old container, gives the new one the
// site's container name, and removes the networks of the site's former
// customer if it was their last container. It runs to its end even when
// the caller gave up: a rollout is not left half done.
func (p *Provisioner) retire(ctx context.Context, ro RuntimeRollouts, spec *Spec, old RuntimeInstance, newID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StopTimeout+30*time.Second)
	defer cancel()
	ro.Retire(ctx, spec, old, newID)
}
