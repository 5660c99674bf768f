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
// ready become known-running (with a fresh idle period), running ones
// that are not (a process ended during their start) are waited for as a
// start is, until life ends, and the others are remembered as stopped.
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
		// a look-alike (copied labels) is left alone.
		if !p.ours(&c, siteID) || strings.TrimPrefix(c.Name, "/") != containerName(p.cfg.Namespace, siteID) {
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
	ready := false
	if running {
		spec := adoptedSpec(siteID, c)
		upstream, err := p.upstreamOf(c, spec.Port)
		direct := p.directAddr(c, spec.Port)
		switch {
		case err != nil:
			p.log.Warn("adopting running container without upstream", zap.String("site_id", siteID), zap.Error(err))
		case p.ready(ctx, &spec, upstream, direct):
			ready = true
			p.setReady(st, upstream)
		default:
			st.mu.Lock()
			st.state = StateStarting
			st.mu.Unlock()
			p.wg.Add(1)
			go p.finishStart(life, st, spec, c.ID, upstream, direct)
		}
	}
	p.log.Info("adopted container", zap.String("site_id", siteID), zap.String("container_id", c.ID),
		zap.Bool("running", running), zap.Bool("ready", ready))
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
		p.setReady(st, upstream)
		p.notify(st)
		p.log.Info("adopted site is ready", zap.String("site_id", spec.SiteID), zap.String("upstream", upstream))
	case life.Err() == nil:
		p.failStart(st, spec.SiteID, err)
	}
}
