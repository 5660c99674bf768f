package provisioner

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/swarm"
)

// Host implements RuntimeHost: the most any ready node of the swarm has,
// memory and CPUs each, since a site's task runs on one node and limits
// no node could give would keep it pending for ever. (The manager's own
// size, as the Docker runtime reports its engine's, would refuse limits
// that a larger worker can give.)
func (r *SwarmRuntime) Host(ctx context.Context) (Host, error) {
	nodes, err := r.cfg.Client.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return Host{}, fmt.Errorf("asking the swarm for its nodes' sizes: %w", err)
	}
	var h Host
	ready := 0
	for _, n := range nodes {
		if n.Status.State != swarm.NodeStateReady || n.Spec.Availability != swarm.NodeAvailabilityActive {
			continue
		}
		ready++
		res := n.Description.Resources
		h.MemoryBytes = max(h.MemoryBytes, res.MemoryBytes)
		h.CPUs = max(h.CPUs, int(res.NanoCPUs/1e9))
	}
	if ready == 0 {
		return Host{}, fmt.Errorf("asking the swarm for its nodes' sizes: none of its %d nodes is ready and active", len(nodes))
	}
	return h, nil
}

var _ RuntimeHost = (*SwarmRuntime)(nil)
