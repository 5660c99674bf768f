package provisioner

import (
	"context"
	"errors"

	"go.uber.org/zap"
)

// adopt takes over the namespace's existing containers, so that a restart
// or config reload never creates a duplicate: running containers that are
// ready become known-running (with a fresh idle period), paused ones
// known-paused (never probed: a frozen app answers nothing; the next
// request wakes them), running ones that are not ready (a process ended
// during their start) are waited for as a start is, until life ends, and
// the others are remembered as stopped.
func (p *Provisioner) adopt(ctx, life context.Context) error {
	list, err := p.rt.List(ctx)
	if err != nil {
		return err
	}
	for i := range list {
		inst := &list[i]
		if inst.Rollout {
			// A rollout's candidate waits for Settle.
			p.unsettled.Store(inst.SiteID, true)
		}
		if inst.State == InstanceAbsent {
			continue
		}
		p.adoptOne(ctx, life, inst)
	}
	return nil
}

func (p *Provisioner) adoptOne(ctx, life context.Context, inst *RuntimeInstance) {
	siteID := inst.SiteID
	st := p.sites.getOrCreate(siteID)
	st.op.Lock()
	defer st.op.Unlock()
	running := inst.State == InstanceRunning || inst.State == InstanceStarting
	paused := inst.State == InstancePaused
	st.mu.Lock()
	st.containerID, st.version = inst.ID, inst.TemplateVersion
	st.state = StateStopped
	if !inst.StartedAt.IsZero() {
		st.lastStart = inst.StartedAt
	}
	if !inst.StoppedAt.IsZero() {
		st.lastStop = inst.StoppedAt
	}
	st.mu.Unlock()
	ready := false
	spec := adoptedSpec(inst)
	st.mu.Lock()
	st.probe = spec
	st.mu.Unlock()
	switch {
	case paused && len(inst.Running) == 0:
		p.log.Warn("adopting paused instance without upstream", zap.String("site_id", siteID))
	case paused:
		rep := inst.Running[0]
		b := newBackend(st, &p.clock, []Replica{rep})
		p.setPaused(st, b)
		st.mu.Lock()
		st.state = StatePaused
		st.mu.Unlock()
		// Its health checks follow b once it is woken.
		p.watchHealthOf(st, &spec, true)
		st.mu.Lock()
		st.health.backend = b
		st.mu.Unlock()
		p.measurePaused(ctx, st, rep.ID)
	case running && len(inst.Running) == 0:
		p.log.Warn("adopting running instance without upstream", zap.String("site_id", siteID))
	case running && p.ready(ctx, &spec, inst.Running[0]):
		ready = true
		// With what the autoscaler (of this node before its restart,
		// or of another) added; its policy is learnt from Refresh.
		p.setReady(st, p.readyOf(ctx, &spec, inst.Running))
		p.watchHealthOf(st, &spec, true)
	case running:
		st.mu.Lock()
		st.state = StateStarting
		st.mu.Unlock()
		p.wg.Add(1)
		go p.finishStart(life, st, spec, inst.Running[0])
	}
	p.log.Info("adopted instance", zap.String("site_id", siteID), zap.String("instance_id", inst.ID),
		zap.Bool("running", running), zap.Bool("paused", paused), zap.Bool("ready", ready))
	p.notify(st)
}

// adoptedSpec is what an instance tells of the spec it was made from:
// enough to wait for it to be ready.
func adoptedSpec(inst *RuntimeInstance) Spec {
	return Spec{SiteID: inst.SiteID, Port: inst.Port, HealthPath: inst.HealthPath, CustomerID: inst.CustomerKey}
}

// ready probes once whether a site's replica is ready.
func (p *Provisioner) ready(ctx context.Context, spec *Spec, rep Replica) bool {
	ok, _ := p.probe(ctx, spec, rep)
	return ok
}

// finishStart waits, as a start does, for a container adopted while it
// was still starting; its start had been cut short with the process that
// made it. It holds the site's op meanwhile, so requests wait on it as on
// any start. It ends with life (Stop), leaving the container to the next
// process.
func (p *Provisioner) finishStart(life context.Context, st *siteState, spec Spec, rep Replica) {
	defer p.wg.Done()
	st.op.Lock()
	defer st.op.Unlock()
	ctx, cancel := context.WithTimeout(life, p.cfg.StartTimeout)
	defer cancel()
	err := p.waitReady(ctx, &spec, rep)
	switch {
	case err == nil:
		p.setReady(st, []Replica{rep})
		p.watchHealthOf(st, &spec, true)
		p.notify(st)
		p.log.Info("adopted site is ready", zap.String("site_id", spec.SiteID), zap.String("upstream", rep.Upstream))
	case life.Err() == nil:
		p.failStart(st, spec.SiteID, err)
	}
}

// Unsettled returns the sites whose rollout a previous process left half
// done: the new container was there at Start. Settle finishes or undoes
// each.
func (p *Provisioner) Unsettled() []string {
	var ids []string
	p.unsettled.Range(func(k, _ any) bool {
		ids = append(ids, k.(string))
		return true
	})
	return ids
}

// Settle finishes or undoes the rollout of the site a process left half
// done (see Unsettled): with finish reporting true for the new container
// (the one its release went live with) it becomes the site's, the old
// one drained and removed, as the rollout would have ended; otherwise the
// new one is removed and the old one serves on. Never are two left.
func (p *Provisioner) Settle(ctx context.Context, siteID string, finish func(containerID string) bool) error {
	st, release, err := p.hold(ctx, siteID)
	if err != nil {
		return err
	}
	defer release()
	defer p.unsettled.Delete(siteID)
	ro, ok := p.rt.(RuntimeRollouts)
	if !ok {
		return nil // rollouts update the instance in place: none is left half done
	}
	cand, err := ro.Candidate(ctx, siteID)
	switch {
	case err != nil:
		return err
	case cand.State == InstanceAbsent:
		return nil
	case !finish(cand.ID):
		p.log.Info("undoing a rollout cut short", zap.String("site_id", siteID), zap.String("container_id", cand.ID))
		return ro.DiscardCandidate(ctx, siteID)
	}
	p.log.Info("finishing a rollout cut short", zap.String("site_id", siteID), zap.String("container_id", cand.ID))
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	if cand.State != InstanceRunning {
		if cand, err = ro.StartReplica(ctx, siteID, cand.ID); err != nil {
			return p.failStart(st, siteID, err)
		}
	}
	spec := adoptedSpec(&cand)
	if len(cand.Running) == 0 {
		err = startErr(siteID, "finding upstream", errors.New("the new container runs without an upstream"))
	} else {
		err = p.waitReady(ctx, &spec, cand.Running[0])
	}
	if err != nil {
		return p.failStart(st, siteID, err)
	}
	old := p.switchTo(st, &cand, &spec, true)
	live, err := p.rt.Inspect(ctx, siteID)
	if err != nil || live.State == InstanceAbsent {
		live = RuntimeInstance{SiteID: siteID} // gone already: only its name is left to take
	} else {
		p.drain(ctx, st, old, live.ID)
	}
	p.retire(ctx, ro, &spec, live, cand.ID)
	return nil
}
