package provisioner

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"go.uber.org/zap"
)

// candidateName is the container a rollout starts beside the site's
// live one; it takes the live one's name once that is gone.
func candidateName(ns, siteID string) string { return containerName(ns, siteID) + "-next" }

// Prepare implements RuntimeRollouts: the image pulled when missing, the
// volume made.
func (r *DockerRuntime) Prepare(ctx context.Context, spec *Spec) error {
	if err := r.ensureImage(ctx, spec.Image); err != nil {
		return startErr(spec.SiteID, "pulling image", err)
	}
	if spec.DataPath != "" {
		if err := r.ensureVolume(ctx, spec); err != nil {
			return startErr(spec.SiteID, "preparing volume", err)
		}
	}
	return nil
}

// Candidate implements RuntimeRollouts: the site's -next container.
func (r *DockerRuntime) Candidate(ctx context.Context, siteID string) (RuntimeInstance, error) {
	name := candidateName(r.cfg.Namespace, siteID)
	c, err := r.cli.ContainerInspect(ctx, name)
	switch {
	case isNotFound(err):
		return RuntimeInstance{SiteID: siteID, State: InstanceAbsent}, nil
	case err != nil:
		return RuntimeInstance{}, fmt.Errorf("inspecting the new container of site %s: %w", siteID, err)
	case !r.ours(&c, siteID):
		return RuntimeInstance{}, fmt.Errorf("container %s exists but is not labeled for namespace %s and site %s", name, r.cfg.Namespace, siteID)
	}
	return r.instanceOf(&c), nil
}

// StartCandidate implements RuntimeRollouts: the -next container made
// from spec on its customer's networks and started. A failure is a
// *StartError (with the container's last log lines once it ran); the
// container is left for DiscardCandidate.
func (r *DockerRuntime) StartCandidate(ctx context.Context, spec *Spec) (RuntimeInstance, error) {
	unlockNet := r.netLocks.lock(networkKey(spec))
	c, _, err := r.createNamed(ctx, spec, candidateName(r.cfg.Namespace, spec.SiteID), 1)
	unlockNet()
	if err != nil {
		return RuntimeInstance{}, startErr(spec.SiteID, "creating container", err)
	}
	fail := func(err error) (RuntimeInstance, error) {
		se := startErr(spec.SiteID, "starting container", err)
		if se.LogTail == "" {
			se.LogTail = r.LogTail(context.WithoutCancel(ctx), c.ID, 20)
		}
		return RuntimeInstance{ID: c.ID, SiteID: spec.SiteID}, se
	}
	if err := r.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return fail(err)
	}
	if c, err = r.cli.ContainerInspect(ctx, c.ID); err != nil {
		return fail(err)
	}
	if _, err := r.replicaOf(&c, spec.Port); err != nil {
		if se := r.exitError(ctx, spec.SiteID, c.ID); se != nil {
			return fail(se)
		}
		return fail(err)
	}
	return r.instanceOf(&c), nil
}

// DiscardCandidate implements RuntimeRollouts: the -next container
// removed, and its customer's networks if nothing else uses them.
func (r *DockerRuntime) DiscardCandidate(ctx context.Context, siteID string) error {
	name := candidateName(r.cfg.Namespace, siteID)
	var key string
	if c, err := r.cli.ContainerInspect(ctx, name); err == nil && r.ours(&c, siteID) {
		key = c.Config.Labels[LabelCustomer]
	}
	if err := r.removeContainer(ctx, name); err != nil {
		return err
	}
	if key != "" {
		if err := r.releaseNetworks(ctx, key); err != nil {
			r.log.Warn("removing customer networks", zap.String("site_id", siteID), zap.Error(err))
		}
	}
	return nil
}

// StartReplica implements RuntimeRollouts: stopped container id started
// again, returned running.
func (r *DockerRuntime) StartReplica(ctx context.Context, siteID, id string) (RuntimeInstance, error) {
	if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return RuntimeInstance{}, startErr(siteID, "starting container", err)
	}
	return r.InspectReplica(ctx, siteID, id)
}

// InspectReplica implements RuntimeRollouts: container id as an instance
// of the site (State InstanceAbsent when it is gone or not the site's).
func (r *DockerRuntime) InspectReplica(ctx context.Context, siteID, id string) (RuntimeInstance, error) {
	c, err := r.cli.ContainerInspect(ctx, id)
	switch {
	case isNotFound(err):
		return RuntimeInstance{SiteID: siteID, State: InstanceAbsent}, nil
	case err != nil:
		return RuntimeInstance{}, fmt.Errorf("inspecting container %s: %w", id, err)
	case !r.ours(&c, siteID):
		return RuntimeInstance{SiteID: siteID, State: InstanceAbsent}, nil
	}
	return r.instanceOf(&c), nil
}

// Retire implements RuntimeRollouts: the old container stopped and
// removed, the new one renamed to the site's name, and the networks of the
// site's former customer released when the site moved.
func (r *DockerRuntime) Retire(ctx context.Context, spec *Spec, old RuntimeInstance, id string) {
	oldID := old.ID
	if oldID == "" {
		oldID = containerName(r.cfg.Namespace, spec.SiteID) // gone already: only its name is left to take
	}
	if err := r.StopReplica(ctx, oldID); err != nil {
		r.log.Warn("stopping the old container", zap.String("site_id", spec.SiteID), zap.Error(err))
	}
	if err := r.removeContainer(ctx, oldID); err != nil {
		r.log.Error("removing the old container", zap.String("site_id", spec.SiteID), zap.Error(err))
		return
	}
	if err := r.cli.ContainerRename(ctx, id, containerName(r.cfg.Namespace, spec.SiteID)); err != nil {
		r.log.Error("renaming the new container", zap.String("site_id", spec.SiteID), zap.Error(err))
	}
	if key := old.CustomerKey; key != "" && key != networkKey(spec) {
		if err := r.releaseNetworks(ctx, key); err != nil {
			r.log.Warn("removing networks of the site's former customer", zap.String("site_id", spec.SiteID), zap.Error(err))
		}
	}
}
