package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/autoscale"
)

// DefaultScaleInterval is how often the autoscaler samples the sites'
// requests in flight (Config.ScaleInterval).
const DefaultScaleInterval = time.Second

// DefaultScalePolicyRefresh is how often the policy of an awake site is
// asked of Config.Refresh again (Config.ScalePolicyRefresh).
const DefaultScalePolicyRefresh = time.Minute

// scalePolicy is a site's autoscaling settings, from its spec.
type scalePolicy struct {
	max    int // at least 1; 1 never scales
	target int // 0: autoscale.DefaultTarget
}

func policyOf(spec *Spec) scalePolicy {
	return scalePolicy{max: max(spec.MaxReplicas, 1), target: spec.TargetConcurrency}
}

// ScaleEvent is a change of a site's replica count by the autoscaler.
type ScaleEvent struct {
	SiteID string
	At     time.Time
	// From and To are the replica counts before and after.
	From, To int
	// Reason is the decision's ("in-flight 23.4 > target 10 x 2 replicas
	// for 6s"), InFlight the average it was decided on.
	Reason   string
	InFlight float64
}

// keepSpec keeps what the autoscaler needs of the spec the site started
// or rolled out with: its policy, and how to probe a new replica.
func (st *siteState) keepSpec(spec *Spec) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.scale, st.scaleKnown, st.scaleAt, st.probe = policyOf(spec), true, time.Now(), *spec
}

// autoscale samples every awake site's requests in flight (its own and
// the other nodes', see SetPeerActivity) each ScaleInterval, and changes
// the replica count of those whose Decider asks for it. The Deciders are
// this goroutine's alone; it ends with ctx, each scale it began with it.
func (p *Provisioner) autoscale(ctx context.Context) {
	defer p.wg.Done()
	deciders := map[string]*autoscale.Decider{}
	tick := time.NewTicker(p.cfg.ScaleInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			p.autoscaleOnce(ctx, now, deciders)
		}
	}
}

// autoscaleOnce is one round of the autoscaler.
func (p *Provisioner) autoscaleOnce(ctx context.Context, now time.Time, deciders map[string]*autoscale.Decider) {
	sites := p.sites.all()
	for id := range deciders {
		if st := sites[id]; st == nil || st.upstream.Load() == nil {
			delete(deciders, id) // asleep: its next wake starts from one replica
		}
	}
	for id, st := range sites {
		b := st.upstream.Load()
		if b == nil || st.scaling.Load() {
			continue
		}
		st.mu.Lock()
		policy, known, learnt := st.scale, st.scaleKnown, st.scaleAt
		st.mu.Unlock()
		if p.cfg.Refresh != nil && (!known || now.Sub(learnt) >= p.cfg.ScalePolicyRefresh) {
			// This round's sample is skipped: the Decider keeps its
			// windows, and a decision is never lost to a busy site.
			p.goScale(st, func() { p.learnPolicy(ctx, st) })
			continue
		}
		if !known {
			continue // without Refresh an adopted site keeps what it runs
		}
		replicas := len(b.replicas)
		if policy.max <= 1 && replicas <= 1 {
			delete(deciders, id)
			continue
		}
		cfg := autoscale.Config{Target: policy.target, Max: policy.max,
			UpWindow: p.cfg.ScaleUpWindow, DownWindow: p.cfg.ScaleDownWindow}
		d := deciders[id]
		if d == nil {
			d = autoscale.New(cfg)
			deciders[id] = d
		} else {
			d.SetConfig(cfg)
		}
		inFlight := float64(st.inflight.Load() + st.peerInFlight.Load())
		want, reason := d.Observe(now, inFlight, replicas)
		if want == replicas {
			continue
		}
		decidedOn := d.DecidedOn()
		p.goScale(st, func() { p.scale(ctx, st, b, want, reason, decidedOn) })
	}
}

// goScale runs f, a scale of st (or what prepares one), in a goroutine
// of the provisioner's unless one of st runs already.
func (p *Provisioner) goScale(st *siteState, f func()) {
	if !st.scaling.CompareAndSwap(false, true) {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer st.scaling.Store(false)
		f()
	}()
}

// learnPolicy asks Config.Refresh for the policy of a site: one this
// process adopted rather than started (the instance does not carry it),
// or one whose policy was learnt ScalePolicyRefresh ago.
func (p *Provisioner) learnPolicy(ctx context.Context, st *siteState) {
	st.mu.Lock()
	spec := st.probe
	st.mu.Unlock()
	spec.SiteID = st.id
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	fresh, err := p.cfg.Refresh(ctx, spec)
	if err == nil {
		spec.MaxReplicas, spec.TargetConcurrency = fresh.MaxReplicas, fresh.TargetConcurrency
	} else {
		// The site is gone or suspended (Refresh answers from its cache
		// when the database is down): one replica, as for any site
		// whose template does not scale.
		p.log.Debug("learning an adopted site's scaling policy", zap.String("site_id", st.id), zap.Error(err))
	}
	st.mu.Lock()
	st.scale, st.scaleKnown, st.scaleAt = policyOf(&spec), true, time.Now()
	st.mu.Unlock()
}

// scale changes the replicas of st, which serves from backend from, to
// want, under the site's locks; what changed meanwhile (a stop, a
// rollout, another node's scale) makes it give up or take the engine's
// count as it is. It is given up when a start, stop or rollout of the
// site runs: the next round decides again.
func (p *Provisioner) scale(ctx context.Context, st *siteState, from *backend, want int, reason string, decidedOn float64) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	if !st.op.TryLock() {
		return
	}
	defer st.op.Unlock()
	unlock, err := p.lock(ctx, st.id)
	if err != nil {
		p.log.Warn("scaling site", zap.String("site_id", st.id), zap.Error(err))
		return
	}
	defer unlock()
	if st.upstream.Load() != from {
		return
	}
	have := len(from.replicas)
	direction := "up"
	var scaled bool // the engine's count changed, not only what this node balances over
	if want < have {
		direction = "down"
		scaled, err = p.scaleDownLocked(ctx, st, want)
	} else {
		scaled, err = p.scaleUpLocked(ctx, st, want)
	}
	result := "done"
	switch {
	case errors.Is(err, ErrCapacity):
		result = "capacity"
	case err != nil:
		result = "failed"
	}
	p.metrics.scales.WithLabelValues(direction, result).Inc()
	if err != nil {
		p.log.Warn("scaling site", zap.String("site_id", st.id), zap.Int("from", have), zap.Int("to", want),
			zap.String("reason", reason), zap.Error(err))
		return
	}
	to := extrasOf(st.upstream.Load()) + 1
	if !scaled {
		// Another node scaled it first: this one only follows.
		p.log.Info("following the site's scale by another node", zap.String("site_id", st.id),
			zap.Int("from", have), zap.Int("to", to))
		p.notify(st)
		return
	}
	p.log.Info("scaled site", zap.String("site_id", st.id), zap.Int("from", have), zap.Int("to", to),
		zap.String("reason", reason))
	p.notify(st)
	if p.cfg.OnScale != nil && to != have {
		p.cfg.OnScale(ScaleEvent{SiteID: st.id, At: time.Now(), From: have, To: to, Reason: reason, InFlight: decidedOn})
	}
}

// scaleUpLocked makes the site run want replicas (another node may have
// made them already), waits until each new one is ready and balances the
// site's requests over them all; st.op and the site's lock are held. The
// new replicas take free room under MaxRunning only: a scale-up never
// stops another site.
func (p *Provisioner) scaleUpLocked(ctx context.Context, st *siteState, want int) (scaled bool, err error) {
	b := st.upstream.Load()
	if b == nil {
		return false, errors.New("site stopped meanwhile")
	}
	inst, err := p.rt.Inspect(ctx, st.id)
	if err != nil {
		return false, err
	}
	if inst.State != InstanceRunning {
		return false, fmt.Errorf("instance is %s", inst.State)
	}
	if len(inst.Running) < want {
		release, err := p.reserveExtra(want - len(inst.Running))
		if err != nil {
			return false, err
		}
		inst, err = p.rt.Scale(ctx, st.id, want)
		release()
		if err != nil {
			return false, err
		}
		scaled = true
	}
	st.mu.Lock()
	probe := st.probe
	st.mu.Unlock()
	replicas := slices.Clone(b.replicas)
	for _, rep := range inst.Running {
		if len(replicas) == want {
			break
		}
		if slices.ContainsFunc(replicas, func(r Replica) bool { return r.ID == rep.ID }) {
			continue
		}
		if err := p.waitReady(ctx, &probe, rep); err != nil {
			if _, ok := p.rt.(RuntimeRetirer); ok && scaled {
				// The runtime removes the last replicas, the ones just
				// made: a replica that never gets ready is not left
				// running unused.
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StopTimeout+30*time.Second)
				if _, serr := p.rt.Scale(sctx, st.id, len(b.replicas)); serr != nil {
					p.log.Warn("removing a replica that did not get ready", zap.String("site_id", st.id), zap.Error(serr))
				}
				cancel()
			}
			return scaled, fmt.Errorf("waiting for replica %s: %w", rep.ID, err)
		}
		replicas = append(replicas, rep)
	}
	p.keepReplicas(st, b, replicas, "")
	return scaled, nil
}

// reserveExtra takes room for n more replicas under MaxRunning, never
// making any (see scaleUpLocked).
func (p *Provisioner) reserveExtra(n int) (release func(), err error) {
	if p.cfg.MaxRunning <= 0 {
		return func() {}, nil
	}
	p.capMu.Lock()
	defer p.capMu.Unlock()
	if int(p.running.Load()+p.paused.Load()+p.extras.Load())+p.starting+n > p.cfg.MaxRunning {
		return nil, fmt.Errorf("%d more replicas: %w", n, ErrCapacity)
	}
	p.starting += n
	return func() {
		p.capMu.Lock()
		p.starting -= n
		p.capMu.Unlock()
	}, nil
}

// scaleDownLocked makes the site run want replicas (at least 1): the
// requests stop going to those that go, here and (RuntimeRetirer) on the
// other nodes, those in flight to them end (DrainTimeout at most), then
// the runtime removes them; st.op and the site's lock are held. Where
// the runtime picks the replicas that go itself (Swarm), the guess
// drained may be wrong: requests in flight to the one it picked fail
// over to the others by reverse_proxy's retries.
func (p *Provisioner) scaleDownLocked(ctx context.Context, st *siteState, want int) (scaled bool, err error) {
	want = max(want, 1)
	inst, err := p.rt.Inspect(ctx, st.id)
	if err != nil {
		return false, err
	}
	b := st.upstream.Load()
	if len(inst.Running) > want && b != nil {
		// Runtime.Scale removes the last ones in Running order.
		going := inst.Running[want:]
		kept := slices.DeleteFunc(slices.Clone(b.replicas), func(r Replica) bool {
			return slices.ContainsFunc(going, func(g Replica) bool { return g.ID == r.ID })
		})
		if len(kept) == 0 {
			kept = b.replicas[:1]
		}
		if len(kept) < len(b.replicas) {
			p.keepReplicas(st, b, kept, "")
		}
		// The other nodes drop them too (their drains are their own):
		// the drain waits until none sends them requests.
		retirer, _ := p.rt.(RuntimeRetirer)
		for _, g := range going {
			if retirer != nil {
				if err := retirer.RetireReplica(ctx, st.id, g.ID); err != nil {
					return false, err
				}
			}
			// Without a retirer the others learn of it only when it
			// goes: waiting for them would only wait out DrainTimeout.
			p.drainWith(ctx, st, b, g.ID, retirer != nil)
		}
	}
	if len(inst.Running) > want {
		if inst, err = p.rt.Scale(ctx, st.id, want); err != nil {
			return false, err
		}
		scaled = true
	}
	// What runs now is what the requests go to (another node may have
	// scaled down first, or Swarm removed another replica than guessed).
	if b := st.upstream.Load(); b != nil {
		kept := slices.DeleteFunc(slices.Clone(b.replicas), func(r Replica) bool {
			return !slices.ContainsFunc(inst.Running, func(run Replica) bool { return run.ID == r.ID })
		})
		if len(kept) > 0 && len(kept) < len(b.replicas) {
			p.keepReplicas(st, b, kept, "")
		}
	}
	return scaled, nil
}

// keepReplicas balances the site's requests over replicas (at least one,
// the first being the site's first) instead of those of b, unless b is
// no longer the site's backend; the requests in flight on b still count
// for a drain of the new one. why, if set, is logged. It returns the new
// backend, nil when b had been replaced meanwhile.
func (p *Provisioner) keepReplicas(st *siteState, b *backend, replicas []Replica, why string) *backend {
	if len(replicas) == 0 {
		return nil
	}
	nb := newBackend(st, &p.clock, replicas)
	b.busy() // lets go of the backends before b that nothing is in flight on
	nb.prev.Store(b)
	if !st.upstream.CompareAndSwap(b, nb) {
		return nil
	}
	p.countExtras(b, nb)
	if why != "" {
		p.log.Info("site's replicas changed", zap.String("site_id", st.id), zap.Int("from", len(b.replicas)),
			zap.Int("to", len(replicas)), zap.String("why", why))
		p.notify(st)
	}
	return nb
}

// dropExtra stops balancing the site's requests to its extra replica id
// (not its first); it reports whether id was one.
func (p *Provisioner) dropExtra(st *siteState, id, why string) bool {
	b := st.upstream.Load()
	if b == nil {
		return false
	}
	for _, r := range b.replicas[1:] {
		if r.ID == id {
			p.dropReplica(st, b, r.Upstream, why)
			return true
		}
	}
	return false
}

// dropReplica stops balancing the site's requests to its extra replica at
// upstream (it ended, could not be reached, or is retiring: why); the
// others serve on.
func (p *Provisioner) dropReplica(st *siteState, b *backend, upstream, why string) {
	if kept, ok := b.without(upstream); ok && len(kept) > 0 && kept[0].ID == b.containerID {
		p.keepReplicas(st, b, kept, "replica "+upstream+" "+why)
	}
}
