package provisioner

import (
	"context"
	"net"
	"strconv"

	"github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap"
)

// How Caddy reaches a site's tasks (SwarmConfig.Dial).
const (
	// DialTaskIP dials a task's IP on an overlay Caddy is on (or routes
	// to): no port is published.
	DialTaskIP = "task_ip"
	// DialHostPort has the engine publish the site's port on the node a
	// task runs on (mode=host: no routing mesh, no IPVS) at a port it
	// picks per task, dialed at the node's address.
	DialHostPort = "host_port"
)

// publishedPorts is the endpoint's ports of a service of a site listening
// on port: none, or the site's port published on each task's node.
func (r *SwarmRuntime) publishedPorts(port int) []swarm.PortConfig {
	if r.cfg.Dial != DialHostPort {
		return nil
	}
	return []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(port),
		PublishMode: swarm.PortConfigPublishModeHost}}
}

// hostPortOf is the address task t's port is published at on its node
// (DialHostPort), "" until the engine reports it.
func (r *SwarmRuntime) hostPortOf(ctx context.Context, t *swarm.Task, port int) string {
	var published uint32
	for _, p := range t.Status.PortStatus.Ports {
		if p.TargetPort == uint32(port) && p.PublishMode == swarm.PortConfigPublishModeHost && p.PublishedPort != 0 {
			published = p.PublishedPort
		}
	}
	if published == 0 || t.NodeID == "" {
		return ""
	}
	addr := r.nodeAddr(ctx, t.NodeID)
	if addr == "" {
		return ""
	}
	return net.JoinHostPort(addr, strconv.FormatUint(uint64(published), 10))
}

// nodeAddr is the address node id is reached at (the one it advertises
// to the swarm), asked once per node; "" when the manager cannot say.
func (r *SwarmRuntime) nodeAddr(ctx context.Context, id string) string {
	if v, ok := r.nodeAddrs.Load(id); ok {
		return v.(string)
	}
	n, _, err := r.cli.NodeInspectWithRaw(ctx, id)
	if err != nil {
		r.log.Debug("reading a node's address", zap.String("node_id", id), zap.Error(err))
		return ""
	}
	addr := n.Status.Addr
	if ip := net.ParseIP(addr); (ip == nil || ip.IsUnspecified()) && n.ManagerStatus != nil {
		// A manager may report 0.0.0.0 there; its swarm address is right.
		addr, _, _ = net.SplitHostPort(n.ManagerStatus.Addr)
	}
	if ip := net.ParseIP(addr); ip == nil || ip.IsUnspecified() {
		return ""
	}
	r.nodeAddrs.Store(id, addr)
	return addr
}

// dialChanged reports whether svc publishes its port where the runtime
// no longer dials it, or the reverse (the operator changed dial): Ensure
// then updates it.
func (r *SwarmRuntime) dialChanged(svc *swarm.Service) bool {
	published := false
	if ep := svc.Spec.EndpointSpec; ep != nil {
		for _, p := range ep.Ports {
			published = published || p.PublishMode == swarm.PortConfigPublishModeHost
		}
	}
	return published != (r.cfg.Dial == DialHostPort)
}
