package provisioner

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/client"
	"go.uber.org/zap"
)

// DockerConfig configures a DockerRuntime. Zero values mean the documented
// default; the Provisioner fills it from its Config when it is given no
// Runtime.
type DockerConfig struct {
	// Client is the Docker client, shared by the caller, who must have
	// negotiated its API version. If nil, a client is made from Host (or
	// the DOCKER_* environment), negotiated at the first List and closed
	// by Close.
	Client *client.Client
	// Host is the Docker host used when Client is nil. Default:
	// $DOCKER_HOST, else the local socket.
	Host string
	// Namespace is stamped on every container and volume. Default
	// "default".
	Namespace string
	// PublishIP is the host IP site ports are published on. Default
	// 127.0.0.1.
	PublishIP string
	// Network names the Docker network Caddy's own containers are on (see
	// Config.Network). Default "".
	Network string
	// SubnetPool and SubnetBits are where customer networks get their
	// subnets. Default 172.16.0.0/16 in /26s.
	SubnetPool netip.Prefix
	SubnetBits int
	// StopTimeout is the grace period between SIGTERM and SIGKILL.
	// Default 10s.
	StopTimeout time.Duration
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// DockerRuntime runs each site as one container of one Docker engine,
// named tenant-NS-SITE and labeled with what made it, on its customer's
// own bridge network, its port published on PublishIP (or dialed on that
// network where Caddy runs in a container). Besides Runtime it pauses
// (RuntimePauser), runs a second container beside a site's live one for
// rollouts (RuntimeRollouts), builds images, reads stats and volumes.
type DockerRuntime struct {
	cli       *client.Client
	ownClient bool
	negotiate sync.Once
	cfg       DockerConfig
	log       *zap.Logger

	networks sync.Map   // names of customer networks known to exist
	subnetMu sync.Mutex // one subnet allocation at a time
	netLocks keyLocks   // per network key: creating containers vs removing the networks

	// specs holds the last spec Ensure was given per site: a start that
	// finds the container's network gone makes the container anew from it.
	specs sync.Map
}

// NewDockerRuntime checks cfg and returns a runtime on its engine. It
// does not talk to the engine.
func NewDockerRuntime(cfg DockerConfig) (*DockerRuntime, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if !validName.MatchString(cfg.Namespace) {
		return nil, fmt.Errorf("invalid namespace %q", cfg.Namespace)
	}
	if cfg.PublishIP == "" {
		cfg.PublishIP = "127.0.0.1"
	}
	if !cfg.SubnetPool.IsValid() {
		cfg.SubnetPool = DefaultSubnetPool
	}
	if cfg.SubnetBits == 0 {
		cfg.SubnetBits = DefaultSubnetBits
	}
	if err := validSubnetPool(cfg.SubnetPool, cfg.SubnetBits); err != nil {
		return nil, err
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	r := &DockerRuntime{cli: cfg.Client, cfg: cfg, log: cfg.Logger}
	if r.cli == nil {
		opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
		if cfg.Host != "" {
			opts = append(opts, client.WithHost(cfg.Host))
		}
		cli, err := client.NewClientWithOpts(opts...)
		if err != nil {
			return nil, fmt.Errorf("docker client: %w", err)
		}
		r.cli, r.ownClient = cli, true
	}
	return r, nil
}

// Close closes the client the runtime made; a shared one is the caller's.
func (r *DockerRuntime) Close() error {
	if r.ownClient {
		return r.cli.Close()
	}
	return nil
}

// engineErr marks an error of an engine that does not answer.
func engineErr(err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%w: %w", ErrEngineUnavailable, err)
	}
	return err
}

// Ensure implements Runtime: the image pulled when missing, the volume
// made, the container found or made on its customer's networks (replaced
// when outdated, its former customer's networks released). Failures are
// *StartErrors saying which step failed.
func (r *DockerRuntime) Ensure(ctx context.Context, spec *Spec) (RuntimeInstance, error) {
	if err := r.ensureImage(ctx, spec.Image); err != nil {
		return RuntimeInstance{}, startErr(spec.SiteID, "pulling image", err)
	}
	if spec.DataPath != "" {
		if err := r.ensureVolume(ctx, spec); err != nil {
			return RuntimeInstance{}, startErr(spec.SiteID, "preparing volume", err)
		}
	}
	c, created, oldKey, err := r.ensureContainer(ctx, spec)
	if oldKey != "" {
		if err := r.releaseNetworks(ctx, oldKey); err != nil {
			r.log.Warn("removing networks of the site's former customer", zap.String("site_id", spec.SiteID), zap.Error(err))
		}
	}
	if err != nil {
		return RuntimeInstance{}, startErr(spec.SiteID, "creating container", err)
	}
	r.specs.Store(spec.SiteID, *spec)
	inst := r.instanceOf(&c)
	inst.Created = created
	if !created {
		extras, err := r.extras(ctx, spec.SiteID)
		if err != nil {
			return RuntimeInstance{}, err
		}
		inst = r.withExtras(inst, extras)
	}
	return inst, nil
}

// Scale implements Runtime: the site's own container is replica 1,
// started (thawed when paused) as the others, its extra containers 2, 3,
// … made from the spec Ensure last had, those above replicas stopped and
// removed (the last ones first). It returns them with their upstreams
// once the engine runs them. A container that exits before its port is
// bound is a *StartError with its exit code and last log lines.
func (r *DockerRuntime) Scale(ctx context.Context, siteID string, replicas int) (RuntimeInstance, error) {
	switch {
	case replicas == 0:
		if err := r.Stop(ctx, siteID); err != nil {
			return RuntimeInstance{}, err
		}
		return r.Inspect(ctx, siteID)
	case replicas < 0:
		return RuntimeInstance{}, fmt.Errorf("scaling site %s to %d replicas", siteID, replicas)
	}
	c, err := r.inspectSite(ctx, siteID)
	if err != nil {
		return RuntimeInstance{}, startErr(siteID, "inspecting container", err)
	}
	switch {
	case c.State != nil && c.State.Running && c.State.Paused:
		// Paused by another node (or a previous process) unbeknown to the
		// caller: thawed, it is ready as it was.
		if err := r.cli.ContainerUnpause(ctx, c.ID); err != nil && !isNotPaused(err) {
			return RuntimeInstance{}, startErr(siteID, "unpausing container", err)
		}
		if c, err = r.cli.ContainerInspect(ctx, c.ID); err != nil {
			return RuntimeInstance{}, startErr(siteID, "inspecting container", err)
		}
	case c.State == nil || !c.State.Running:
		// NotModified: already started (by another node racing us
		// without a Locker), which is what we wanted.
		err := r.cli.ContainerStart(ctx, c.ID, container.StartOptions{})
		if isNotFound(err) {
			// The container's network is gone (removed with what was the
			// customer's last container, on another node): a container
			// made anew gets it back.
			if v, ok := r.specs.Load(siteID); ok {
				spec := v.(Spec)
				r.forgetNetworks(&spec)
				if err = r.removeContainer(ctx, c.ID); err == nil {
					if c, _, _, err = r.ensureContainer(ctx, &spec); err == nil {
						err = r.cli.ContainerStart(ctx, c.ID, container.StartOptions{})
					}
				}
			}
		}
		if err != nil && !cerrdefs.IsNotModified(err) {
			return RuntimeInstance{}, startErr(siteID, "starting container", err)
		}
		// Ports and addresses are assigned at start.
		if c, err = r.cli.ContainerInspect(ctx, c.ID); err != nil {
			return RuntimeInstance{}, startErr(siteID, "inspecting container", err)
		}
	}
	if _, err := r.replicaOf(&c, sitePort(&c)); err != nil {
		// Typically the container exited before its port was bound.
		if se := r.exitError(ctx, siteID, c.ID); se != nil {
			return RuntimeInstance{}, se
		}
		return RuntimeInstance{}, startErr(siteID, "finding upstream", err)
	}
	extras, err := r.scaleExtras(ctx, siteID, replicas)
	if err != nil {
		return RuntimeInstance{}, err
	}
	return r.withExtras(r.instanceOf(&c), extras), nil
}

// Stop implements Runtime: the extra replicas removed, the site's own
// container stopped.
func (r *DockerRuntime) Stop(ctx context.Context, siteID string) error {
	if err := r.removeExtras(ctx, siteID); err != nil {
		return err
	}
	return r.StopReplica(ctx, containerName(r.cfg.Namespace, siteID))
}

// StopReplica stops container id (SIGTERM, SIGKILL after StopTimeout); a
// missing one counts as stopped.
func (r *DockerRuntime) StopReplica(ctx context.Context, id string) error {
	timeout := int(r.cfg.StopTimeout.Round(time.Second) / time.Second)
	if err := r.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil && !isNotFound(err) {
		return fmt.Errorf("stopping container %s: %w", id, err)
	}
	return nil
}

// Inspect implements Runtime. A container of the site's name that is not
// the namespace's and site's is an error.
func (r *DockerRuntime) Inspect(ctx context.Context, siteID string) (RuntimeInstance, error) {
	c, err := r.inspectSite(ctx, siteID)
	if isNotFound(err) {
		return RuntimeInstance{SiteID: siteID, State: InstanceAbsent}, nil
	} else if err != nil {
		return RuntimeInstance{}, err
	}
	extras, err := r.extras(ctx, siteID)
	if err != nil {
		return RuntimeInstance{}, err
	}
	return r.withExtras(r.instanceOf(&c), extras), nil
}

// inspectSite inspects the site's container, refusing a foreign one.
func (r *DockerRuntime) inspectSite(ctx context.Context, siteID string) (container.InspectResponse, error) {
	name := containerName(r.cfg.Namespace, siteID)
	c, err := r.cli.ContainerInspect(ctx, name)
	switch {
	case isNotFound(err):
		return c, err
	case err != nil:
		return c, fmt.Errorf("inspecting container %s: %w", name, err)
	case !r.ours(&c, siteID):
		return c, fmt.Errorf("container %s exists but is not labeled for namespace %s and site %s", name, r.cfg.Namespace, siteID)
	}
	return c, nil
}

// List implements Runtime. Only a container with its site's name is the
// site's instance; a look-alike (copied labels) is left alone. A rollout's
// second container marks its site's instance Rollout (an instance State
// InstanceAbsent when it is alone).
func (r *DockerRuntime) List(ctx context.Context) ([]RuntimeInstance, error) {
	if r.ownClient {
		r.negotiate.Do(func() { r.cli.NegotiateAPIVersion(ctx) })
	}
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.namespaceFilter()})
	if err != nil {
		return nil, engineErr(fmt.Errorf("listing containers of namespace %s: %w", r.cfg.Namespace, err))
	}
	var out []RuntimeInstance
	index := map[string]int{}
	rollouts := map[string]bool{}
	extras := map[string][]container.Summary{}
	for _, s := range list {
		siteID := s.Labels[LabelSite]
		if !validName.MatchString(siteID) {
			continue
		}
		c, err := r.cli.ContainerInspect(ctx, s.ID)
		if isNotFound(err) {
			continue // removed meanwhile
		} else if err != nil {
			return nil, engineErr(fmt.Errorf("inspecting container %s: %w", s.ID, err))
		}
		name := strings.TrimPrefix(c.Name, "/")
		if r.ours(&c, siteID) && name == candidateName(r.cfg.Namespace, siteID) {
			rollouts[siteID] = true
			continue
		}
		if r.replicaIndex(&c, siteID) > 0 {
			extras[siteID] = append(extras[siteID], s)
			continue
		}
		if !r.ours(&c, siteID) || name != containerName(r.cfg.Namespace, siteID) {
			r.log.Warn("ignoring container with foreign name", zap.String("container_id", c.ID), zap.String("name", c.Name))
			continue
		}
		index[siteID] = len(out)
		out = append(out, r.instanceOf(&c))
	}
	for siteID, list := range extras {
		i, ok := index[siteID]
		if !ok {
			continue // removed with the next Stop, Scale or Remove of the site
		}
		cs, err := r.inspectExtras(ctx, siteID, list)
		if err != nil {
			return nil, engineErr(err)
		}
		out[i] = r.withExtras(out[i], cs)
	}
	for siteID := range rollouts {
		if i, ok := index[siteID]; ok {
			out[i].Rollout = true
		} else {
			out = append(out, RuntimeInstance{SiteID: siteID, State: InstanceAbsent, Rollout: true})
		}
	}
	return out, nil
}

// Remove implements Runtime: the site's container (and a rollout's second
// one) removed, its customer's networks with the customer's last
// container, and with purge its volume.
func (r *DockerRuntime) Remove(ctx context.Context, siteID string, purge bool) error {
	if err := r.removeExtras(ctx, siteID); err != nil {
		return fmt.Errorf("removing site %s: %w", siteID, err)
	}
	name := containerName(r.cfg.Namespace, siteID)
	var key string
	if c, err := r.cli.ContainerInspect(ctx, name); err == nil && r.ours(&c, siteID) {
		key = c.Config.Labels[LabelCustomer]
	}
	for _, n := range []string{name, candidateName(r.cfg.Namespace, siteID)} {
		if err := r.removeContainer(ctx, n); err != nil {
			return fmt.Errorf("removing site %s: %w", siteID, err)
		}
	}
	if key != "" {
		if err := r.releaseNetworks(ctx, key); err != nil {
			r.log.Warn("removing customer networks", zap.String("site_id", siteID), zap.Error(err))
		}
	}
	if purge {
		if err := r.cli.VolumeRemove(ctx, volumeName(r.cfg.Namespace, siteID), true); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing volume of site %s: %w", siteID, err)
		}
	}
	return nil
}

// Logs implements Runtime: the container's stdout and stderr.
func (r *DockerRuntime) Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error) {
	rc, err := r.cli.ContainerLogs(ctx, containerName(r.cfg.Namespace, siteID), logOptions(tail, follow))
	if err != nil {
		return nil, fmt.Errorf("logs of site %s: %w", siteID, err)
	}
	return demuxLogs(rc), nil
}

// Events implements Runtime with the engine's start, die, pause and unpause
// events of the namespace's containers, one RuntimeEvent each (Action
// set). The stream is reconnected with backoff; events missed meanwhile
// are lost.
func (r *DockerRuntime) Events(ctx context.Context) (<-chan RuntimeEvent, error) {
	ch := make(chan RuntimeEvent)
	go func() {
		defer close(ch)
		backoff := 100 * time.Millisecond
		for {
			f := r.namespaceFilter()
			f.Add("type", string(events.ContainerEventType))
			f.Add("event", string(events.ActionStart))
			f.Add("event", string(events.ActionDie))
			f.Add("event", string(events.ActionPause))
			f.Add("event", string(events.ActionUnPause))
			f.Add("event", string(events.ActionRename))
			msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: f})
		recv:
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-msgs:
					backoff = 100 * time.Millisecond
					ev := dockerEvent(m)
					if ev.SiteID == "" {
						continue // no news of a site
					}
					if !send(ctx, ch, ev) {
						return
					}
				case err := <-errs:
					if ctx.Err() != nil {
						return
					}
					r.log.Warn("docker event stream ended", zap.Error(err), zap.Duration("retry_in", backoff))
					break recv
				}
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}()
	return ch, nil
}

// dockerEvent is what an engine event says of its container.
func dockerEvent(m events.Message) RuntimeEvent {
	ev := RuntimeEvent{
		SiteID: m.Actor.Attributes[LabelSite], Replica: m.Actor.ID,
		Time: time.Unix(0, m.TimeNano), ExitCode: m.Actor.Attributes["exitCode"],
	}
	switch m.Action {
	case events.ActionPause:
		ev.Action, ev.State, ev.Replicas = ReplicaPaused, InstancePaused, 1
	case events.ActionUnPause:
		ev.Action, ev.State, ev.Replicas = ReplicaUnpaused, InstanceRunning, 1
	case events.ActionStart:
		ev.Action, ev.State, ev.Replicas = ReplicaStarted, InstanceRunning, 1
	case events.ActionRename:
		if !strings.HasSuffix(m.Actor.Attributes["name"], retiringSuffix) {
			return RuntimeEvent{} // a rollout's candidate taking the site's name
		}
		ev.Action, ev.State, ev.Replicas = ReplicaRetiring, InstanceRunning, 1
	default:
		ev.Action, ev.State = ReplicaExited, InstanceStopped
	}
	return ev
}

// Pause implements RuntimePauser (docker pause: the cgroup freezer).
func (r *DockerRuntime) Pause(ctx context.Context, _, id string) error {
	if err := r.cli.ContainerPause(ctx, id); err != nil {
		return fmt.Errorf("pausing container %s: %w", id, err)
	}
	return nil
}

// Unpause implements RuntimePauser.
func (r *DockerRuntime) Unpause(ctx context.Context, _, id string) error {
	err := r.cli.ContainerUnpause(ctx, id)
	if err != nil && !strings.Contains(err.Error(), "is not paused") {
		return fmt.Errorf("unpausing container %s: %w", id, err)
	}
	return nil
}

// WaitExit implements ReplicaWatcher.
func (r *DockerRuntime) WaitExit(ctx context.Context, id string) (int, error) {
	exited, waitErr := r.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-exited:
		return int(res.StatusCode), nil
	case err := <-waitErr:
		return 0, err
	}
}

// Host implements RuntimeHost: the engine's machine.
func (r *DockerRuntime) Host(ctx context.Context) (Host, error) {
	info, err := r.cli.Info(ctx)
	if err != nil {
		return Host{}, fmt.Errorf("asking the docker engine for its host's size: %w", err)
	}
	return Host{MemoryBytes: info.MemTotal, CPUs: info.NCPU}, nil
}

// Reconcile implements RuntimeReconciler: customer networks no container
// uses any more (a crash between a site's removal and its networks') are
// removed.
func (r *DockerRuntime) Reconcile(ctx context.Context) error { return r.reconcileNetworks(ctx) }

// instanceOf is the instance container c is.
func (r *DockerRuntime) instanceOf(c *container.InspectResponse) RuntimeInstance {
	inst := RuntimeInstance{ID: c.ID, State: InstanceStopped, Port: sitePort(c), TemplateVersion: labelVersion(c)}
	if c.Config != nil {
		l := c.Config.Labels
		inst.SiteID, inst.SpecHash, inst.TemplateSlug = l[LabelSite], l[LabelSpec], l[LabelTemplate]
		inst.HealthPath, inst.CustomerKey = l[LabelHealthPath], l[LabelCustomer]
	}
	running := c.State != nil && c.State.Running
	if c.State != nil {
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && !t.IsZero() {
			inst.StartedAt = t
		}
		if t, err := time.Parse(time.RFC3339Nano, c.State.FinishedAt); err == nil && !t.IsZero() && !running {
			inst.StoppedAt = t
		}
	}
	if !running {
		return inst
	}
	inst.State, inst.Replicas = InstanceRunning, 1
	if c.State.Paused {
		inst.State = InstancePaused
	}
	rep, err := r.replicaOf(c, inst.Port)
	if err != nil {
		r.log.Warn("running container without upstream", zap.String("site_id", inst.SiteID), zap.String("container_id", c.ID), zap.Error(err))
		return inst
	}
	inst.Running, inst.Upstreams = []Replica{rep}, []string{rep.Upstream}
	return inst
}

// replicaOf is running container c as a replica serving port.
func (r *DockerRuntime) replicaOf(c *container.InspectResponse, port int) (Replica, error) {
	upstream, err := r.upstreamOf(c, port)
	if err != nil {
		return Replica{}, err
	}
	return Replica{ID: c.ID, Upstream: upstream, Probe: r.directAddr(c, port)}, nil
}

// exitError returns a *StartError describing the container's exit if it is
// not running, else nil.
func (r *DockerRuntime) exitError(ctx context.Context, siteID, id string) *StartError {
	c, err := r.cli.ContainerInspect(ctx, id)
	if err != nil || c.State == nil || c.State.Running {
		return nil
	}
	return &StartError{
		SiteID:   siteID,
		Reason:   "container exited during start",
		ExitCode: c.State.ExitCode,
		LogTail:  r.LogTail(ctx, id, 20),
	}
}

// Interface guards
var (
	_ Runtime           = (*DockerRuntime)(nil)
	_ RuntimePauser     = (*DockerRuntime)(nil)
	_ ReplicaWatcher    = (*DockerRuntime)(nil)
	_ RuntimeRollouts   = (*DockerRuntime)(nil)
	_ RuntimeRetirer    = (*DockerRuntime)(nil)
	_ RuntimeHost       = (*DockerRuntime)(nil)
	_ RuntimeReconciler = (*DockerRuntime)(nil)
	_ RuntimeImages     = (*DockerRuntime)(nil)
	_ RuntimeStats      = (*DockerRuntime)(nil)
	_ RuntimeVolumes    = (*DockerRuntime)(nil)
	_ io.Closer         = (*DockerRuntime)(nil)
)
