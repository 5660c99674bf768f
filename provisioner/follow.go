package provisioner

import (
	"context"
	"fmt"

	"go.uber.org/zap"
)

// Follow switches this node's requests for the site to its container
// containerID when another process rolled the site out to it: the old
// container drains here as it does on the node that rolled out (whose
// drain waits for this one's, see Config.PeersUse). A site this node does
// not route to, or already routes there, is left alone; its next start
// finds the site's container as any start does.
func (p *Provisioner) Follow(ctx context.Context, siteID, containerID string) error {
	st := p.sites.get(siteID)
	if st == nil {
		return nil
	}
	b := st.upstream.Load()
	if b == nil || b.containerID == containerID {
		return nil
	}
	ro, ok := p.rt.(RuntimeRollouts)
	if !ok {
		return nil // no second instance to follow: the instance is updated in place
	}
	c, err := ro.InspectReplica(ctx, siteID, containerID)
	switch {
	case err != nil:
		return err
	case c.State != InstanceRunning:
		return nil // replaced again meanwhile (the newer switch says so), or not the site's
	case len(c.Running) == 0:
		return fmt.Errorf("container %s runs without an upstream", containerID)
	}
	upstream := c.Running[0].Upstream
	nb := newBackend(st, &p.clock, []Replica{{ID: c.ID, Upstream: upstream}})
	if !st.upstream.CompareAndSwap(b, nb) {
		return nil
	}
	p.countExtras(b, nb)
	st.mu.Lock()
	st.containerID, st.version = c.ID, c.TemplateVersion
	st.mu.Unlock()
	p.notify(st)
	p.log.Info("following the site's rollout to its new container", zap.String("site_id", siteID),
		zap.String("container_id", c.ID), zap.String("upstream", upstream))
	return nil
}
