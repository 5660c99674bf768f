package provisioner

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap"
)

// swarmTask is what a runtime needs of one task: where it is, and whether
// it runs.
type swarmTask struct {
	id, node string
	// ip is its address on the network Caddy dials ("" until the manager
	// assigned one).
	ip string
	// hostPort is where its node publishes its port (DialHostPort),
	// "" until known.
	hostPort string
	// running: it runs; wanted: the manager wants it to (a task being
	// stopped runs, unwanted, and takes no traffic).
	running, wanted bool
}

// dialable reports whether Caddy knows where to dial t.
func (r *SwarmRuntime) dialable(t *swarmTask) bool {
	if r.cfg.Dial == DialHostPort {
		return t.hostPort != ""
	}
	return t.ip != ""
}

func joinHostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// dialNetwork is the network svc's tasks are dialed on: Config.Network,
// else its customer's overlay.
func (r *SwarmRuntime) dialNetwork(labels map[string]string) string {
	if r.cfg.Network != "" {
		return r.cfg.Network
	}
	return networkName(r.cfg.Namespace, labels[LabelCustomer], labels[LabelEgress] == "false")
}

// runningTasks returns, by service ID, the tasks of serviceID (all the
// namespace's services with "") that run or are to run.
func (r *SwarmRuntime) runningTasks(ctx context.Context, serviceID string) (map[string][]swarmTask, error) {
	f := filters.NewArgs()
	if serviceID != "" {
		f.Add("service", serviceID)
	}
	list, err := r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing tasks: %w", err)
	}
	out := make(map[string][]swarmTask)
	for _, t := range list {
		var labels map[string]string
		if t.Spec.ContainerSpec != nil {
			labels = t.Spec.ContainerSpec.Labels
		}
		if labels[LabelNamespace] != r.cfg.Namespace ||
			(t.DesiredState != swarm.TaskStateRunning && t.Status.State != swarm.TaskStateRunning) {
			continue
		}
		out[t.ServiceID] = append(out[t.ServiceID], r.taskOf(ctx, &t, labels))
	}
	return out, nil
}

// taskOf is what Caddy needs of task t of a service labeled labels.
func (r *SwarmRuntime) taskOf(ctx context.Context, t *swarm.Task, labels map[string]string) swarmTask {
	network := r.dialNetwork(labels)
	st := swarmTask{id: t.ID, node: t.NodeID, running: t.Status.State == swarm.TaskStateRunning,
		wanted: t.DesiredState == swarm.TaskStateRunning}
	if r.cfg.Dial == DialHostPort {
		port, _ := strconv.Atoi(labels[LabelPort])
		st.hostPort = r.hostPortOf(ctx, t, port)
	}
	for _, att := range t.NetworksAttachments {
		if att.Network.Spec.Name != network || len(att.Addresses) == 0 {
			continue
		}
		if ip, _, err := net.ParseCIDR(att.Addresses[0]); err == nil {
			st.ip = ip.String()
		}
	}
	return st
}

// Scale implements Runtime. An update racing another (the manager's own
// just after a create bumps the version too, or another process's) fails
// "update out of sequence": the service is read again and the update
// retried. A site with a volume is pinned to the node it runs on once it
// first runs (LabelSwarmNode): a label now, which restarts nothing, and
// the constraint at its next update from 0 replicas, when no task would
// be replaced for it.
func (r *SwarmRuntime) Scale(ctx context.Context, siteID string, replicas int) (RuntimeInstance, error) {
	if replicas < 0 {
		return RuntimeInstance{}, fmt.Errorf("scaling site %s to %d replicas", siteID, replicas)
	}
	unlock := r.sites.lock(siteID)
	defer unlock()
	begun := time.Now()
	svc, err := r.setReplicas(ctx, siteID, uint64(replicas))
	if err != nil {
		return RuntimeInstance{}, err
	}
	inst, err := r.waitReplicas(ctx, &svc, replicas, begun)
	if err != nil {
		return inst, err
	}
	if replicas > 0 && inst.Node == "" && hasVolume(&svc) {
		if err := r.recordNode(ctx, siteID); err != nil {
			return inst, err
		}
		return r.Inspect(ctx, siteID)
	}
	return inst, nil
}

// Stop implements Runtime.
func (r *SwarmRuntime) Stop(ctx context.Context, siteID string) error {
	unlock := r.sites.lock(siteID)
	defer unlock()
	svc, err := r.setReplicas(ctx, siteID, 0)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = r.waitReplicas(ctx, &svc, 0, time.Now())
	return err
}

func hasVolume(svc *swarm.Service) bool {
	if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, m := range cs.Mounts {
			if m.Type == "volume" {
				return true
			}
		}
	}
	return false
}

// setReplicas updates the site's service to replicas (pinning it first
// when it has a recorded node and runs nothing), unless it has them.
func (r *SwarmRuntime) setReplicas(ctx context.Context, siteID string, replicas uint64) (swarm.Service, error) {
	for {
		svc, found, err := r.inspectService(ctx, siteID)
		if err != nil {
			return svc, err
		}
		if !found {
			return svc, fmt.Errorf("scaling site %s: %w", siteID, errNotFound{fmt.Errorf("no service %s", r.serviceName(siteID))})
		}
		m := svc.Spec.Mode.Replicated
		if m == nil {
			return svc, fmt.Errorf("service %s is not replicated", svc.Spec.Name)
		}
		current := uint64(0)
		if m.Replicas != nil {
			current = *m.Replicas
		}
		pinned := false
		if node := svc.Spec.Labels[LabelSwarmNode]; node != "" && current == 0 {
			pinned = pin(&svc.Spec, node)
		}
		if current == replicas && !pinned {
			return svc, nil
		}
		m.Replicas = &replicas
		_, err = r.cli.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			return svc, nil
		}
		if !outOfSequence(err) {
			return svc, fmt.Errorf("scaling service %s to %d: %w", svc.Spec.Name, replicas, err)
		}
		select {
		case <-ctx.Done():
			return svc, fmt.Errorf("scaling service %s to %d: %w (last: %v)", svc.Spec.Name, replicas, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// errNotFound marks a missing service, so isNotFound holds for it.
type errNotFound struct{ error }

func (e errNotFound) Unwrap() error { return e.error }
func (errNotFound) NotFound()       {}

// waitReplicas polls svc's tasks until replicas of them run with an
// address (none runs, for 0), failing early on a task the engine rejected
// or that failed since begun.
func (r *SwarmRuntime) waitReplicas(ctx context.Context, svc *swarm.Service, replicas int, begun time.Time) (RuntimeInstance, error) {
	for {
		list, err := r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
		if err != nil {
			return RuntimeInstance{}, fmt.Errorf("listing tasks of %s: %w", svc.Spec.Name, err)
		}
		var running []swarmTask
		busy := 0
		for _, t := range list {
			if t.DesiredState == swarm.TaskStateRunning || t.Status.State == swarm.TaskStateRunning {
				busy++
			}
			if t.DesiredState != swarm.TaskStateRunning {
				if replicas > 0 && t.Status.Err != "" && t.Status.Timestamp.After(begun) &&
					(t.Status.State == swarm.TaskStateRejected || t.Status.State == swarm.TaskStateFailed) {
					return RuntimeInstance{}, fmt.Errorf("service %s: task %s %s: %s", svc.Spec.Name, t.ID, t.Status.State, t.Status.Err)
				}
				continue
			}
			running = append(running, r.taskOf(ctx, &t, svc.Spec.Labels))
		}
		ready := 0
		for _, t := range running {
			if t.running && r.dialable(&t) {
				ready++
			}
		}
		if (replicas == 0 && busy == 0) || (replicas > 0 && ready >= replicas) {
			return r.instanceOf(svc, running), nil
		}
		select {
		case <-ctx.Done():
			return RuntimeInstance{}, fmt.Errorf("waiting for %d running tasks of %s (%d running, %d busy): %w",
				replicas, svc.Spec.Name, ready, busy, ctx.Err())
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

// recordNode labels the site's service with the hostname of the node its
// task runs on, where its volume now is.
func (r *SwarmRuntime) recordNode(ctx context.Context, siteID string) error {
	for {
		svc, found, err := r.inspectService(ctx, siteID)
		if err != nil || !found || svc.Spec.Labels[LabelSwarmNode] != "" {
			return err
		}
		tasks, err := r.runningTasks(ctx, svc.ID)
		if err != nil {
			return err
		}
		var nodeID string
		for _, t := range tasks[svc.ID] {
			if t.running && t.wanted {
				nodeID = t.node
				break
			}
		}
		if nodeID == "" {
			return nil
		}
		node, _, err := r.cli.NodeInspectWithRaw(ctx, nodeID)
		if err != nil {
			return fmt.Errorf("inspecting node %s: %w", nodeID, err)
		}
		svc.Spec.Labels[LabelSwarmNode] = node.Description.Hostname
		_, err = r.cli.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{})
		if err == nil {
			r.log.Info("site's volume pinned to its node", zap.String("site_id", siteID), zap.String("node", node.Description.Hostname))
			return nil
		}
		if !outOfSequence(err) {
			return fmt.Errorf("recording the node of service %s: %w", svc.Spec.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recording the node of service %s: %w", svc.Spec.Name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
