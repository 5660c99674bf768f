package provisioner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
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
	list, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: p.namespaceFilter()})
	if err != nil {
		return fmt.Errorf("listing containers of namespace %s: %w", p.cfg.Namespace, err)
	}
	for _, s := range list {
		siteID := s.Labels[LabelSite]
		if !validName.MatchString(siteID) {
			continue
		}
		c, err := p.cli.ContainerInspect(ctx, s.ID)
		if isNotFound(err) {
			continue // removed meanwhile
		} else if err != nil {
			return fmt.Errorf("inspecting container %s: %w", s.ID, err)
		}
		// Only the container with the deterministic name is the site's;
		// a look-alike (copied labels) is left alone. A rollout's
		// candidate waits for Settle.
		name := strings.TrimPrefix(c.Name, "/")
		if p.ours(&c, siteID) && name == candidateName(p.cfg.Namespace, siteID) {
			p.unsettled.Store(siteID, true)
			continue
		}
		if !p.ours(&c, siteID) || name != containerName(p.cfg.Namespace, siteID) {
			p.log.Warn("ignoring container with foreign name", zap.String("container_id", c.ID), zap.String("name", c.Name))
			continue
		}
		p.adoptOne(ctx, life, siteID, &c)
	}
	return nil
}

func (p *Provisioner) adoptOne(ctx, life context.Context, siteID string, c *container.InspectResponse) {
	st := p.sites.getOrCreate(siteID)
	st.op.Lock()
	defer st.op.Unlock()
	running := c.State != nil && c.State.Running
	st.mu.Lock()
	st.containerID, st.version = c.ID, labelVersion(c)
	st.state = StateStopped
	if c.State != nil {
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && !t.IsZero() {
			st.lastStart = t
		}
		if t, err := time.Parse(time.RFC3339Nano, c.State.FinishedAt); err == nil && !t.IsZero() && !running {
			st.lastStop = t
		}
	}
	st.mu.Unlock()
	ready, paused := false, running && c.State.Paused
	if paused {
		spec := adoptedSpec(siteID, c)
		upstream, err := p.upstreamOf(c, spec.Port)
		if err != nil {
			p.log.Warn("adopting paused container without upstream", zap.String("site_id", siteID), zap.Error(err))
		} else {
			b := newBackend(st, &p.clock, upstream, c.ID)
			p.setPaused(st, b)
			st.mu.Lock()
			st.state = StatePaused
			st.mu.Unlock()
			// Its health checks follow b once it is woken.
			p.watchHealthOf(st, &spec, true)
			st.mu.Lock()
			st.health.backend = b
			st.mu.Unlock()
			p.measurePaused(ctx, st, c.ID)
		}
	}
	if running && !paused {
		spec := adoptedSpec(siteID, c)
		upstream, err := p.upstreamOf(c, spec.Port)
		direct := p.directAddr(c, spec.Port)
		switch {
		case err != nil:
			p.log.Warn("adopting running container without upstream", zap.String("site_id", siteID), zap.Error(err))
		case p.ready(ctx, &spec, upstream, direct):
			ready = true
			p.setReady(st, upstream, c.ID)
			p.watchHealthOf(st, &spec, true)
		default:
			st.mu.Lock()
			st.state = StateStarting
			st.mu.Unlock()
			p.wg.Add(1)
			go p.finishStart(life, st, spec, c.ID, upstream, direct)
		}
	}
	p.log.Info("adopted container", zap.String("site_id", siteID), zap.String("container_id", c.ID),
		zap.Bool("running", running && !paused), zap.Bool("paused", paused), zap.Bool("ready", ready))
	p.notify(st)
}

// adoptedSpec is what a container tells of the spec it was made from:
// enough to wait for it to be ready.
func adoptedSpec(siteID string, c *container.InspectResponse) Spec {
	spec := Spec{SiteID: siteID, Port: sitePort(c)}
	if c.Config != nil {
		spec.HealthPath = c.Config.Labels[LabelHealthPath]
	}
	return spec
}

// ready probes once whether a site is ready.
func (p *Provisioner) ready(ctx context.Context, spec *Spec, upstream, direct string) bool {
	ok, _ := p.probe(ctx, spec, upstream, direct)
	return ok
}

// finishStart waits, as a start does, for a container adopted while it
// was still starting; its start had been cut short with the process that
// made it. It holds the site's op meanwhile, so requests wait on it as on
// any start. It ends with life (Stop), leaving the container to the next
// process.
func (p *Provisioner) finishStart(life context.Context, st *siteState, spec Spec, id, upstream, direct string) {
	defer p.wg.Done()
	st.op.Lock()
	defer st.op.Unlock()
	ctx, cancel := context.WithTimeout(life, p.cfg.StartTimeout)
	defer cancel()
	err := p.waitReady(ctx, &spec, id, upstream, direct)
	switch {
	case err == nil:
		p.setReady(st, upstream, id)
		p.watchHealthOf(st, &spec, true)
		p.notify(st)
		p.log.Info("adopted site is ready", zap.String("site_id", spec.SiteID), zap.String("upstream", upstream))
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
	cand, err := p.cli.ContainerInspect(ctx, candidateName(p.cfg.Namespace, siteID))
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("inspecting the new container of site %s: %w", siteID, err)
	case !finish(cand.ID):
		p.log.Info("undoing a rollout cut short", zap.String("site_id", siteID), zap.String("container_id", cand.ID))
		return p.removeContainer(ctx, cand.ID)
	}
	p.log.Info("finishing a rollout cut short", zap.String("site_id", siteID), zap.String("container_id", cand.ID))
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	if cand.State == nil || !cand.State.Running {
		if err := p.cli.ContainerStart(ctx, cand.ID, container.StartOptions{}); err != nil {
			return startErr(siteID, "starting container", err)
		}
	}
	if cand, err = p.cli.ContainerInspect(ctx, cand.ID); err != nil {
		return fmt.Errorf("inspecting the new container of site %s: %w", siteID, err)
	}
	spec := adoptedSpec(siteID, &cand)
	upstream, err := p.upstreamOf(&cand, spec.Port)
	if err == nil {
		err = p.waitReady(ctx, &spec, cand.ID, upstream, p.directAddr(&cand, spec.Port))
	}
	if err != nil {
		return p.failStart(st, siteID, err)
	}
	old := p.switchTo(st, &cand, upstream, &spec, true)
	live, err := p.cli.ContainerInspect(ctx, containerName(p.cfg.Namespace, siteID))
	if err != nil {
		// Gone already: only its name is left to take.
		live = container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: containerName(p.cfg.Namespace, siteID)},
			Config: &container.Config{}}
	} else {
		p.drain(ctx, st, old, live.ID)
	}
	spec.CustomerID = cand.Config.Labels[LabelCustomer]
	p.retire(ctx, &spec, &live, cand.ID)
	return nil
}
