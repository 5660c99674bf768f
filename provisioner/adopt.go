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
// or config reload never creates a duplicate: running containers become
// known-running (with a fresh idle period), the others are remembered as
// stopped. A running container is trusted to be ready.
func (p *Provisioner) adopt(ctx context.Context) error {
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
		p.adoptOne(siteID, &c)
	}
	return nil
}

func (p *Provisioner) adoptOne(siteID string, c *container.InspectResponse) {
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
	if running {
		upstream, err := p.upstreamOf(c, sitePort(c))
		if err != nil {
			p.log.Warn("adopting running container without upstream", zap.String("site_id", siteID), zap.Error(err))
		} else {
			st.lastActive.Store(time.Now().UnixNano())
			st.mu.Lock()
			st.state = StateRunning
			st.mu.Unlock()
			p.setRunning(st, upstream)
		}
	}
	p.log.Info("adopted container", zap.String("site_id", siteID), zap.String("container_id", c.ID), zap.Bool("running", running))
	p.notify(st)
}
