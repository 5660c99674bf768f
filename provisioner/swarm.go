package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"go.uber.org/zap"
)

// LabelSwarmNode is, on a service with a volume, the hostname of the node
// its volume is on: recorded when its first task runs, and from its next
// scale-up a node.hostname constraint, so the data stays where it is.
const LabelSwarmNode = "caddy-multitenant.node"

// SwarmConfig configures a SwarmRuntime.
type SwarmConfig struct {
	// Client talks to a manager of the swarm; the caller owns it.
	Client *client.Client
	// Namespace is stamped on every service (LabelNamespace), as the
	// Docker runtime stamps containers. Default: "default".
	Namespace string
	// Network, if set, is an attachable overlay Caddy reaches task IPs on;
	// every service joins it besides its customer's overlay and is dialed
	// there. Empty: tasks are dialed on their customer's overlay, which
	// Caddy must then be attached to. Default: "".
	Network string
	// EndpointMode is "dnsrr" (no virtual IP: what works without IPVS) or
	// "vip". Caddy dials tasks directly either way. Default: "dnsrr".
	EndpointMode string
	// Dial is how Caddy reaches a task: DialTaskIP, its IP on an overlay
	// (Network, or the customer's), or DialHostPort, a port the engine
	// publishes for it on its node (mode=host, a free port per task),
	// dialed at the node's address: for a Caddy outside the swarm's
	// overlays. Default: DialTaskIP.
	Dial string
	// Constraints are placement constraints every service gets
	// ("node.role==worker", "node.labels.tenants==true"). Default: none.
	Constraints []string
	// RestartDelay is how long Swarm waits before replacing a task that
	// ended (its own default, 5 s, would add to every failover).
	// Default: 100ms.
	RestartDelay time.Duration
	// StopGracePeriod is how long a task has between SIGTERM and SIGKILL.
	// Default: 10s.
	StopGracePeriod time.Duration
	// PollInterval is how often Scale, Stop and Events read the tasks.
	// Default: 50ms.
	PollInterval time.Duration
	// SubnetPool, if valid, is where customer overlays get their subnets,
	// SubnetBits long each (the first free one, against every network the
	// manager has): what Caddy routes to when it is not a task itself.
	// Unset: the swarm's own address pool (docker swarm init
	// --default-addr-pool). Default: unset, /24.
	SubnetPool netip.Prefix
	SubnetBits int
	// OnNetwork, if set, is called with each customer overlay a service is
	// put on (its ID, name and subnet) at every Ensure, and must make Caddy
	// reach the overlay's task IPs (attach Caddy's container to it, route
	// the subnet); it must be idempotent. OnNetworkRelease is called before
	// the overlay is removed, to undo that (an attached container keeps an
	// overlay from going). Needed when Network is empty. Default: none.
	OnNetwork        func(ctx context.Context, id, name string, subnet netip.Prefix) error
	OnNetworkRelease func(ctx context.Context, id, name string, subnet netip.Prefix) error
	// NodeClient returns a client of the engine of the node named hostname,
	// for what only a node's engine does: removing a site's volume there
	// (Remove with purge). Nil: a purge leaves the volume, and says so.
	NodeClient func(hostname string) (*client.Client, error)
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// SwarmRuntime runs each site as a replicated Swarm service named as its
// container would be (tenant-NS-SITE), labeled as containers are, on its
// customer's own attachable overlay (an internal one for a site without
// egress), with the template's limits as resources, no published port and
// no registry query (images are on the nodes, or pulled by them). A site
// with a volume mounts it as a node-local volume and is pinned by
// constraint to the node it first ran on (LabelSwarmNode).
type SwarmRuntime struct {
	cli   *client.Client
	cfg   SwarmConfig
	log   *zap.Logger
	sites keyLocks // one operation per site at a time, in this process
	nets  keyLocks // one network creation per customer at a time
	// subnetMu serializes subnet allocation among this runtime's customers.
	subnetMu sync.Mutex
	// nodeAddrs are the nodes' addresses by ID (DialHostPort).
	nodeAddrs sync.Map
}

// NewSwarmRuntime checks cfg and returns a runtime on its swarm.
func NewSwarmRuntime(cfg SwarmConfig) (*SwarmRuntime, error) {
	if cfg.Client == nil {
		return nil, errors.New("swarm runtime: no client of a manager")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if !validName.MatchString(cfg.Namespace) {
		return nil, fmt.Errorf("swarm runtime: invalid namespace %q", cfg.Namespace)
	}
	switch cfg.EndpointMode {
	case "":
		cfg.EndpointMode = string(swarm.ResolutionModeDNSRR)
	case string(swarm.ResolutionModeDNSRR), string(swarm.ResolutionModeVIP):
	default:
		return nil, fmt.Errorf("swarm runtime: endpoint mode %q: must be dnsrr or vip", cfg.EndpointMode)
	}
	switch cfg.Dial {
	case "":
		cfg.Dial = DialTaskIP
	case DialTaskIP, DialHostPort:
	default:
		return nil, fmt.Errorf("swarm runtime: dial %q: must be %s or %s", cfg.Dial, DialTaskIP, DialHostPort)
	}
	if cfg.RestartDelay <= 0 {
		cfg.RestartDelay = 100 * time.Millisecond
	}
	if cfg.StopGracePeriod <= 0 {
		cfg.StopGracePeriod = 10 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.SubnetBits == 0 {
		cfg.SubnetBits = 24
	}
	if cfg.SubnetPool.IsValid() {
		if err := validSubnetPool(cfg.SubnetPool, cfg.SubnetBits); err != nil {
			return nil, fmt.Errorf("swarm runtime: %w", err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &SwarmRuntime{cli: cfg.Client, cfg: cfg, log: cfg.Logger}, nil
}

func (r *SwarmRuntime) serviceName(siteID string) string {
	return containerName(r.cfg.Namespace, siteID)
}

// labels are a container's labels (container.go), for the service.
func (r *SwarmRuntime) labels(spec *Spec) map[string]string { return siteLabels(r.cfg.Namespace, spec) }

func (r *SwarmRuntime) ours(svc *swarm.Service, siteID string) bool {
	l := svc.Spec.Labels
	return l[LabelNamespace] == r.cfg.Namespace && l[LabelSite] == siteID && svc.Spec.Name == r.serviceName(siteID)
}

// serviceOutdated is outdated (container.go) for a service's labels.
func serviceOutdated(svc *swarm.Service, spec *Spec) bool {
	l := svc.Spec.Labels
	v, _ := strconv.Atoi(l[LabelTemplateVersion])
	switch {
	case l[LabelTemplate] == spec.TemplateSlug && v > spec.TemplateVersion:
		return false
	case v < spec.TemplateVersion:
		return true
	}
	return l[LabelSpec] != spec.hash()
}

// inspectService returns the site's service; found is false when there is
// none.
func (r *SwarmRuntime) inspectService(ctx context.Context, siteID string) (svc swarm.Service, found bool, err error) {
	name := r.serviceName(siteID)
	svc, _, err = r.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	switch {
	case isNotFound(err):
		return svc, false, nil
	case err != nil:
		return svc, false, fmt.Errorf("inspecting service %s: %w", name, err)
	case !r.ours(&svc, siteID):
		// Inspect resolves ID prefixes and names alike: only the exact
		// name with our labels is the site's.
		return svc, false, fmt.Errorf("service %s exists but is not labeled for namespace %s and site %s", name, r.cfg.Namespace, siteID)
	}
	return svc, true, nil
}

// Ensure implements Runtime. A service from an older spec is updated in
// place (Swarm replaces its tasks, if it runs any, one by one); its
// replica count, volume node and pin are kept.
func (r *SwarmRuntime) Ensure(ctx context.Context, spec *Spec) (RuntimeInstance, error) {
	if err := spec.validate(); err != nil {
		return RuntimeInstance{}, err
	}
	unlock := r.sites.lock(spec.SiteID)
	defer unlock()
	for attempt := 0; ; attempt++ {
		svc, found, err := r.inspectService(ctx, spec.SiteID)
		if err != nil {
			return RuntimeInstance{}, err
		}
		if !found {
			inst, err := r.create(ctx, spec)
			if isConflict(err) && attempt < 3 {
				continue // another process created it: take it from there
			}
			return inst, err
		}
		if !serviceOutdated(&svc, spec) && !r.dialChanged(&svc) {
			return r.instance(ctx, &svc)
		}
		r.log.Info("updating service for changed site definition", zap.String("site_id", spec.SiteID),
			zap.String("old_spec", svc.Spec.Labels[LabelSpec]), zap.String("new_spec", spec.hash()))
		next, err := r.serviceSpec(ctx, spec)
		if err != nil {
			return RuntimeInstance{}, err
		}
		next.Mode = svc.Spec.Mode
		if node := svc.Spec.Labels[LabelSwarmNode]; node != "" && spec.DataPath != "" {
			next.Labels[LabelSwarmNode] = node
			pin(&next, node)
		}
		_, err = r.cli.ServiceUpdate(ctx, svc.ID, svc.Version, next, swarm.ServiceUpdateOptions{})
		if outOfSequence(err) && attempt < 20 {
			continue
		}
		if err != nil {
			return RuntimeInstance{}, fmt.Errorf("updating service %s: %w", svc.Spec.Name, err)
		}
		if svc, _, err = r.cli.ServiceInspectWithRaw(ctx, svc.ID, swarm.ServiceInspectOptions{}); err != nil {
			return RuntimeInstance{}, fmt.Errorf("inspecting service %s: %w", next.Name, err)
		}
		return r.instance(ctx, &svc)
	}
}

func (r *SwarmRuntime) create(ctx context.Context, spec *Spec) (RuntimeInstance, error) {
	ss, err := r.serviceSpec(ctx, spec)
	if err != nil {
		return RuntimeInstance{}, err
	}
	// No registry query: the nodes have the image or pull it themselves,
	// and the manager's digest pinning would make every node pull.
	resp, err := r.cli.ServiceCreate(ctx, ss, swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		if isConflict(err) || strings.Contains(err.Error(), "already exists") {
			return RuntimeInstance{}, fmt.Errorf("creating service %s: %w", ss.Name, errConflict{err})
		}
		return RuntimeInstance{}, fmt.Errorf("creating service %s: %w", ss.Name, err)
	}
	for _, w := range resp.Warnings {
		r.log.Warn("service create warning", zap.String("site_id", spec.SiteID), zap.String("warning", w))
	}
	svc, _, err := r.cli.ServiceInspectWithRaw(ctx, resp.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		return RuntimeInstance{}, fmt.Errorf("inspecting service %s: %w", ss.Name, err)
	}
	inst, err := r.instance(ctx, &svc)
	inst.Created = true
	return inst, err
}

// errConflict marks a name taken, so isConflict holds for it whatever the
// engine's error type.
type errConflict struct{ error }

func (e errConflict) Unwrap() error { return e.error }
func (errConflict) Conflict()       {}

// serviceSpec turns spec into a service at 0 replicas: the Docker
// runtime's per-site defaults (container.go) where Swarm has them.
func (r *SwarmRuntime) serviceSpec(ctx context.Context, spec *Spec) (swarm.ServiceSpec, error) {
	nets, err := r.siteNetworks(ctx, spec)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("preparing networks: %w", err)
	}
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	labels := r.labels(spec)
	grace, delay := r.cfg.StopGracePeriod, r.cfg.RestartDelay
	cs := &swarm.ContainerSpec{
		Image:           spec.Image,
		Labels:          maps.Clone(labels),
		Env:             env,
		User:            spec.User,
		ReadOnly:        spec.ReadOnly,
		StopGracePeriod: &grace,
		CapabilityDrop:  []string{"ALL"},
		CapabilityAdd:   spec.CapAdd,
		Privileges:      &swarm.Privileges{NoNewPrivileges: true},
	}
	if spec.ReadOnly {
		cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: "/tmp",
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20}})
	}
	if spec.DataPath != "" {
		cs.Mounts = append(cs.Mounts, mount.Mount{
			Type: mount.TypeVolume, Source: volumeName(r.cfg.Namespace, spec.SiteID), Target: spec.DataPath,
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{LabelNamespace: r.cfg.Namespace, LabelSite: spec.SiteID}},
		})
	}
	var zero uint64
	ss := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: r.serviceName(spec.SiteID), Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{
				NanoCPUs: spec.NanoCPUs, MemoryBytes: spec.MemoryBytes, Pids: spec.PidsLimit,
			}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
			Placement:     &swarm.Placement{Constraints: append([]string(nil), r.cfg.Constraints...)},
			Networks:      nets,
			LogDriver:     &swarm.Driver{Name: "json-file", Options: map[string]string{"max-size": "10m", "max-file": "3"}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionMode(r.cfg.EndpointMode), Ports: r.publishedPorts(spec.Port)},
	}
	return ss, nil
}

// pin adds a node.hostname constraint for node to ss, once.
func pin(ss *swarm.ServiceSpec, node string) bool {
	c := "node.hostname==" + node
	if ss.TaskTemplate.Placement == nil {
		ss.TaskTemplate.Placement = &swarm.Placement{}
	}
	for _, have := range ss.TaskTemplate.Placement.Constraints {
		if have == c {
			return false
		}
	}
	ss.TaskTemplate.Placement.Constraints = append(ss.TaskTemplate.Placement.Constraints, c)
	return true
}

func outOfSequence(err error) bool {
	return err != nil && strings.Contains(err.Error(), "update out of sequence")
}

// Inspect implements Runtime.
func (r *SwarmRuntime) Inspect(ctx context.Context, siteID string) (RuntimeInstance, error) {
	svc, found, err := r.inspectService(ctx, siteID)
	if err != nil {
		return RuntimeInstance{}, err
	}
	if !found {
		return RuntimeInstance{SiteID: siteID, State: InstanceAbsent}, nil
	}
	return r.instance(ctx, &svc)
}

// List implements Runtime.
func (r *SwarmRuntime) List(ctx context.Context) ([]RuntimeInstance, error) {
	svcs, err := r.services(ctx)
	if err != nil {
		return nil, err
	}
	tasks, err := r.runningTasks(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []RuntimeInstance
	for i := range svcs {
		out = append(out, r.instanceOf(&svcs[i], tasks[svcs[i].ID]))
	}
	return out, nil
}

// services lists the namespace's services that are a site's (named as
// the site's: a look-alike with copied labels is left alone).
func (r *SwarmRuntime) services(ctx context.Context) ([]swarm.Service, error) {
	list, err := r.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelNamespace+"="+r.cfg.Namespace))})
	if err != nil {
		return nil, fmt.Errorf("listing services of namespace %s: %w", r.cfg.Namespace, err)
	}
	out := list[:0]
	for _, s := range list {
		if id := s.Spec.Labels[LabelSite]; validName.MatchString(id) && r.ours(&s, id) {
			out = append(out, s)
		}
	}
	return out, nil
}

// instance reads svc's running tasks into its instance.
func (r *SwarmRuntime) instance(ctx context.Context, svc *swarm.Service) (RuntimeInstance, error) {
	tasks, err := r.runningTasks(ctx, svc.ID)
	if err != nil {
		return RuntimeInstance{}, err
	}
	return r.instanceOf(svc, tasks[svc.ID]), nil
}

func (r *SwarmRuntime) instanceOf(svc *swarm.Service, tasks []swarmTask) RuntimeInstance {
	l := svc.Spec.Labels
	inst := RuntimeInstance{
		SiteID: l[LabelSite], ID: svc.ID, SpecHash: l[LabelSpec],
		TemplateSlug: l[LabelTemplate], HealthPath: l[LabelHealthPath],
		CustomerKey: l[LabelCustomer], Node: l[LabelSwarmNode],
	}
	inst.TemplateVersion, _ = strconv.Atoi(l[LabelTemplateVersion])
	inst.Port, _ = strconv.Atoi(l[LabelPort])
	if m := svc.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		inst.Replicas = int(*m.Replicas)
	}
	for _, t := range tasks {
		switch {
		case !t.running || !t.wanted:
		case !r.dialable(&t):
		case r.cfg.Dial == DialHostPort:
			// The engine's port mapping may accept before the app
			// listens: probed as such (no Probe).
			inst.Running = append(inst.Running, Replica{ID: t.id, Upstream: t.hostPort})
		default:
			// Caddy dials the task itself: its address is its probe's.
			u := joinHostPort(t.ip, inst.Port)
			inst.Running = append(inst.Running, Replica{ID: t.id, Upstream: u, Probe: u})
		}
	}
	sort.Slice(inst.Running, func(i, j int) bool { return inst.Running[i].Upstream < inst.Running[j].Upstream })
	for _, rep := range inst.Running {
		inst.Upstreams = append(inst.Upstreams, rep.Upstream)
	}
	switch {
	case inst.Replicas == 0 && len(tasks) == 0:
		inst.State = InstanceStopped
	case inst.Replicas == 0:
		inst.State = InstanceStopping
	case inst.Replicas > 0 && len(inst.Upstreams) == inst.Replicas:
		inst.State = InstanceRunning
	default:
		inst.State = InstanceStarting
	}
	return inst
}

// Logs implements Runtime: the service's logs, its tasks' interleaved.
func (r *SwarmRuntime) Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error) {
	rc, err := r.cli.ServiceLogs(ctx, r.serviceName(siteID), logOptions(tail, follow))
	if err != nil {
		return nil, fmt.Errorf("logs of site %s: %w", siteID, err)
	}
	return demuxLogs(rc), nil
}

// Interface guards
var _ Runtime = (*SwarmRuntime)(nil)
