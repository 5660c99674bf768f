package provisioner

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap"
)

// Remove implements Runtime. With purge, the volume is removed on the node
// it is on (through Config.NodeClient) once the service's last container
// there is gone; the customer's overlays go with its last service.
func (r *SwarmRuntime) Remove(ctx context.Context, siteID string, purge bool) error {
	unlock := r.sites.lock(siteID)
	defer unlock()
	svc, found, err := r.inspectService(ctx, siteID)
	if err != nil || !found {
		return err
	}
	if err := r.cli.ServiceRemove(ctx, svc.ID); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing service %s: %w", svc.Spec.Name, err)
	}
	if err := r.waitGone(ctx, &svc); err != nil {
		return err
	}
	if node := svc.Spec.Labels[LabelSwarmNode]; purge && node != "" && hasVolume(&svc) {
		if err := r.removeVolume(ctx, siteID, node); err != nil {
			return err
		}
	}
	// Tasks leave their overlays a moment after they are gone.
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err := r.releaseOverlays(ctx, svc.Spec.Labels[LabelCustomer])
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			r.log.Warn("customer overlays left", zap.String("site_id", siteID), zap.Error(err))
			return nil // the service is gone; a later release takes them
		case <-time.After(delay):
		}
	}
}

// waitGone polls until no task of the removed service svc is left running.
func (r *SwarmRuntime) waitGone(ctx context.Context, svc *swarm.Service) error {
	for {
		list, err := r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("listing tasks of %s: %w", svc.Spec.Name, err)
		}
		left := slices.ContainsFunc(list, func(t swarm.Task) bool { return t.Status.State == swarm.TaskStateRunning })
		if !left {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the tasks of removed service %s: %w", svc.Spec.Name, ctx.Err())
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

// removeVolume removes the site's volume on node, retrying while the
// service's last container there still holds it.
func (r *SwarmRuntime) removeVolume(ctx context.Context, siteID, node string) error {
	name := volumeName(r.cfg.Namespace, siteID)
	if r.cfg.NodeClient == nil {
		return fmt.Errorf("volume %s is left on node %s: no client of that node's engine (SwarmConfig.NodeClient)", name, node)
	}
	cli, err := r.cfg.NodeClient(node)
	if err != nil {
		return fmt.Errorf("volume %s on node %s: %w", name, node, err)
	}
	for {
		err := cli.VolumeRemove(ctx, name, false)
		if err == nil || isNotFound(err) {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("removing volume %s on node %s: %w", name, node, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("removing volume %s on node %s: %w (last: %v)", name, node, ctx.Err(), err)
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

// Events implements Runtime by polling the namespace's services and tasks
// every PollInterval: the engine's event stream has no task events, and a
// task moved to another node shows only in its task list. A site's event
// comes when its state, replica count or upstreams change, an absent one
// when its service is gone. Failed polls are logged and retried.
func (r *SwarmRuntime) Events(ctx context.Context) (<-chan RuntimeEvent, error) {
	// The first poll is synchronous: an unreachable engine is the caller's
	// error, and the first events are the state at the start.
	began := time.Now()
	first, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan RuntimeEvent)
	go func() {
		defer close(ch)
		last := map[string]RuntimeEvent{}
		list, polled := first, began
		for {
			seen := map[string]bool{}
			for _, inst := range list {
				ev := RuntimeEvent{SiteID: inst.SiteID, State: inst.State, Replicas: inst.Replicas, Upstreams: inst.Upstreams, Time: polled}
				seen[inst.SiteID] = true
				if prev, ok := last[inst.SiteID]; ok && sameEvent(prev, ev) {
					continue
				}
				last[inst.SiteID] = ev
				if !send(ctx, ch, ev) {
					return
				}
			}
			for id := range last {
				if !seen[id] {
					delete(last, id)
					if !send(ctx, ch, RuntimeEvent{SiteID: id, State: InstanceAbsent, Time: polled}) {
						return
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.PollInterval):
			}
			var err error
			polled = time.Now()
			if list, err = r.List(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.log.Warn("polling the swarm's services", zap.Error(err))
				list = nil
				// Nothing is known: report nothing as gone.
				for id := range last {
					list = append(list, RuntimeInstance{SiteID: id, State: last[id].State, Replicas: last[id].Replicas, Upstreams: last[id].Upstreams})
				}
			}
		}
	}()
	return ch, nil
}

func sameEvent(a, b RuntimeEvent) bool {
	return a.State == b.State && a.Replicas == b.Replicas && slices.Equal(a.Upstreams, b.Upstreams)
}

func send(ctx context.Context, ch chan<- RuntimeEvent, ev RuntimeEvent) bool {
	select {
	case ch <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
