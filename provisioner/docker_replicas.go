package provisioner

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// LabelReplica numbers a site's extra containers (2, 3, …) on the Docker
// runtime, where an autoscaled site's replica N is the container
// tenant-NS-SITE-rN and replica 1 the site's own container.
const LabelReplica = "caddy-multitenant.replica"

// replicaName is the name of the site's replica i (1: the site's own
// container).
func replicaName(ns, siteID string, i int) string {
	if i <= 1 {
		return containerName(ns, siteID)
	}
	return containerName(ns, siteID) + "-r" + strconv.Itoa(i)
}

// replicaIndex is the replica number container c of the site has by its
// name and label, 0 when it is none of the site's extra replicas.
func (r *DockerRuntime) replicaIndex(c *container.InspectResponse, siteID string) int {
	if !r.ours(c, siteID) {
		return 0
	}
	i, err := strconv.Atoi(c.Config.Labels[LabelReplica])
	name := strings.TrimSuffix(strings.TrimPrefix(c.Name, "/"), retiringSuffix) // a retiring one is still the site's
	if err != nil || i < 2 || name != replicaName(r.cfg.Namespace, siteID, i) {
		return 0
	}
	return i
}

// retiring reports whether c is a replica a scale-down retired.
func retiring(c *container.InspectResponse) bool { return strings.HasSuffix(c.Name, retiringSuffix) }

// extras returns the site's extra replicas (2, 3, …), inspected, by index.
func (r *DockerRuntime) extras(ctx context.Context, siteID string) ([]container.InspectResponse, error) {
	f := r.namespaceFilter()
	f.Add("label", LabelSite+"="+siteID)
	f.Add("label", LabelReplica)
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing replicas of site %s: %w", siteID, err)
	}
	return r.inspectExtras(ctx, siteID, list)
}

func (r *DockerRuntime) inspectExtras(ctx context.Context, siteID string, list []container.Summary) ([]container.InspectResponse, error) {
	var out []container.InspectResponse
	for _, s := range list {
		c, err := r.cli.ContainerInspect(ctx, s.ID)
		if isNotFound(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("inspecting container %s: %w", s.ID, err)
		}
		if r.replicaIndex(&c, siteID) > 0 {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return r.replicaIndex(&out[i], siteID) < r.replicaIndex(&out[j], siteID) })
	return out, nil
}

// withExtras adds the running ones of extras to inst, the site's own
// container's instance, as its replicas 2, 3, … (in that order).
func (r *DockerRuntime) withExtras(inst RuntimeInstance, extras []container.InspectResponse) RuntimeInstance {
	if inst.State != InstanceRunning {
		return inst
	}
	for i := range extras {
		c := &extras[i]
		if c.State == nil || !c.State.Running || c.State.Paused {
			continue
		}
		rep, err := r.replicaOf(c, inst.Port)
		if err != nil {
			continue
		}
		inst.Running = append(inst.Running, rep)
		inst.Upstreams = append(inst.Upstreams, rep.Upstream)
		inst.Replicas++
	}
	return inst
}

// scaleExtras makes the site's extra replicas 2..replicas run, made from
// the spec Ensure last had, and stops and removes those above: the last
// ones go first, as Runtime.Scale says.
func (r *DockerRuntime) scaleExtras(ctx context.Context, siteID string, replicas int) ([]container.InspectResponse, error) {
	extras, err := r.extras(ctx, siteID)
	if err != nil {
		return nil, err
	}
	have := map[int]container.InspectResponse{}
	for _, c := range extras {
		have[r.replicaIndex(&c, siteID)] = c
	}
	var kept []container.InspectResponse
	for i, c := range have {
		if i <= replicas {
			continue
		}
		if err := r.StopReplica(ctx, c.ID); err != nil {
			return nil, err
		}
		if err := r.removeContainer(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	if replicas < 2 {
		return nil, nil
	}
	v, ok := r.specs.Load(siteID)
	if !ok {
		return nil, fmt.Errorf("scaling site %s: no spec known (Ensure first)", siteID)
	}
	spec := v.(Spec)
	for i := 2; i <= replicas; i++ {
		c, ok := have[i]
		if ok && (retiring(&c) || c.Config != nil && c.Config.Labels[LabelSpec] != spec.hash()) {
			// Retired by a scale-down cut short (the other processes
			// no longer send it requests), or made from an older spec
			// (the site's own container was replaced since).
			if err := r.removeContainer(ctx, c.ID); err != nil {
				return nil, err
			}
			ok = false
		}
		if !ok {
			unlock := r.netLocks.lock(networkKey(&spec))
			c, _, err = r.createNamed(ctx, &spec, replicaName(r.cfg.Namespace, siteID, i), i)
			unlock()
			if err != nil {
				return nil, startErr(siteID, "creating container", err)
			}
		}
		if c.State == nil || !c.State.Running {
			if err := r.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				return nil, startErr(siteID, "starting container", err)
			}
			if c, err = r.cli.ContainerInspect(ctx, c.ID); err != nil {
				return nil, startErr(siteID, "inspecting container", err)
			}
			if _, err := r.replicaOf(&c, spec.Port); err != nil {
				if se := r.exitError(ctx, siteID, c.ID); se != nil {
					return nil, se
				}
				return nil, startErr(siteID, "finding upstream", err)
			}
		}
		kept = append(kept, c)
	}
	return kept, nil
}

// removeExtras stops and removes all the site's extra replicas.
func (r *DockerRuntime) removeExtras(ctx context.Context, siteID string) error {
	if _, err := r.scaleExtras(ctx, siteID, 1); err != nil {
		return err
	}
	return nil
}

// retiringSuffix ends the name of an extra replica a scale-down is about
// to remove (RetireReplica).
const retiringSuffix = "-retiring"

// RetireReplica implements RuntimeRetirer by renaming the extra replica
// (tenant-NS-SITE-rN-retiring): the rename is an engine event every
// process on the engine sees. Its replica label keeps it the site's
// replica N until Scale removes it. The site's own container is never
// retired: a scale-down keeps it.
func (r *DockerRuntime) RetireReplica(ctx context.Context, siteID, id string) error {
	c, err := r.cli.ContainerInspect(ctx, id)
	switch {
	case isNotFound(err):
		return nil // gone already
	case err != nil:
		return fmt.Errorf("inspecting replica %s: %w", id, err)
	}
	i := r.replicaIndex(&c, siteID)
	if i < 2 {
		return fmt.Errorf("container %s is not an extra replica of site %s", id, siteID)
	}
	name := replicaName(r.cfg.Namespace, siteID, i) + retiringSuffix
	if strings.TrimPrefix(c.Name, "/") == name {
		return nil
	}
	if err := r.cli.ContainerRename(ctx, id, name); err != nil && !isNotFound(err) {
		return fmt.Errorf("renaming replica %s to %s: %w", id, name, err)
	}
	return nil
}
