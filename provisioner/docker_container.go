package provisioner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"
	"go.uber.org/zap"
)

// Labels stamped on every container and volume the provisioner creates.
const (
	LabelNamespace       = "caddy-multitenant.namespace"
	LabelSite            = "caddy-multitenant.site"
	LabelTemplate        = "caddy-multitenant.template"
	LabelTemplateVersion = "caddy-multitenant.template-version"
	LabelPort            = "caddy-multitenant.port"
	LabelSpec            = "caddy-multitenant.spec"
	// LabelHealthPath is the spec's HealthPath, for a container adopted
	// before it was ready.
	LabelHealthPath = "caddy-multitenant.health-path"
)

func containerName(ns, siteID string) string { return "tenant-" + ns + "-" + siteID }
func volumeName(ns, siteID string) string    { return "tenant-" + ns + "-" + siteID + "-data" }

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
func isConflict(err error) bool { return cerrdefs.IsConflict(err) }

// isNotPaused reports the engine's refusal to unpause a container that is
// not paused (someone woke or stopped it first); the engine says so in
// words only.
func isNotPaused(err error) bool {
	return isConflict(err) || strings.Contains(err.Error(), "is not paused")
}

func (r *DockerRuntime) labels(spec *Spec) map[string]string {
	return siteLabels(r.cfg.Namespace, spec)
}

// siteLabels are what a site's container (or Swarm service) of namespace
// ns carries: who it is, what made it, how to reach it.
func siteLabels(ns string, spec *Spec) map[string]string {
	return map[string]string{
		LabelNamespace:       ns,
		LabelSite:            spec.SiteID,
		LabelTemplate:        spec.TemplateSlug,
		LabelTemplateVersion: strconv.Itoa(spec.TemplateVersion),
		LabelPort:            strconv.Itoa(spec.Port),
		LabelSpec:            spec.hash(),
		LabelHealthPath:      spec.HealthPath,
		LabelCustomer:        networkKey(spec),
		LabelEgress:          strconv.FormatBool(!spec.NoEgress),
	}
}

// hash fingerprints everything of a Spec that shapes its container, so a
// change of any of it (the site's env, another template, new limits, the
// site moved to another customer), not only a template version bump, gives
// the site a fresh container at its next start.
func (s *Spec) hash() string {
	b, _ := json.Marshal(struct {
		Image, DataPath, HealthPath      string
		Port                             int
		Env                              map[string]string // json sorts map keys
		MemoryBytes, NanoCPUs, PidsLimit int64
		CapAdd                           []string
		CustomerID, User                 string
		ReadOnly, NoEgress               bool
	}{s.Image, s.DataPath, s.HealthPath, s.Port, s.Env, s.MemoryBytes, s.NanoCPUs, s.PidsLimit, s.CapAdd,
		s.CustomerID, s.User, s.ReadOnly, s.NoEgress})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// outdated reports whether container c no longer matches spec. A container
// made from a newer version of the same template is kept: the spec then
// comes from a stale cache (another node's change not seen yet), and
// downgrading it would make two nodes take turns recreating it.
func outdated(c *container.InspectResponse, spec *Spec) bool {
	if c.Config == nil {
		return true
	}
	labels := c.Config.Labels
	if labels[LabelTemplate] == spec.TemplateSlug && labelVersion(c) > spec.TemplateVersion {
		return false
	}
	if labelVersion(c) < spec.TemplateVersion {
		return true
	}
	return labels[LabelSpec] != spec.hash()
}

// namespaceFilter selects this provisioner's containers (or volumes).
func (r *DockerRuntime) namespaceFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelNamespace+"="+r.cfg.Namespace))
}

// tmpfsTmp is the writable /tmp of a read-only container; it counts
// against the container's memory limit.
const tmpfsTmp = "rw,nosuid,nodev,size=64m"

// containerConfig turns a Spec into Docker's create parameters, applying the
// per-site defaults: the spec's limits (swap no more than the memory
// limit), no-new-privileges, every capability dropped except CapAdd, its
// user and read-only root, restart policy "no" (this package owns the
// lifecycle), capped json-file logs, the site volume, and the customer's
// network primary, with the port published on PublishIP only where Caddy
// dials it there.
func (r *DockerRuntime) containerConfig(spec *Spec, primary string, replica int) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	port := nat.Port(strconv.Itoa(spec.Port) + "/tcp")
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env) // deterministic, for inspect diffs and tests

	labels := r.labels(spec)
	if replica > 1 {
		labels[LabelReplica] = strconv.Itoa(replica)
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Env:          env,
		Labels:       labels,
		User:         spec.User,
		ExposedPorts: nat.PortSet{port: struct{}{}},
	}
	hc := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": "10m", "max-file": "3"},
		},
		SecurityOpt:    []string{"no-new-privileges"},
		CapDrop:        []string{"ALL"},
		CapAdd:         spec.CapAdd,
		ReadonlyRootfs: spec.ReadOnly,
		NetworkMode:    container.NetworkMode(primary),
		Resources: container.Resources{
			Memory:   spec.MemoryBytes,
			NanoCPUs: spec.NanoCPUs,
		},
	}
	if spec.MemoryBytes > 0 {
		// Memory plus swap: as much swap as memory, never unlimited.
		hc.Resources.MemorySwap = 2 * spec.MemoryBytes
	}
	if spec.PidsLimit > 0 {
		pids := spec.PidsLimit
		hc.Resources.PidsLimit = &pids
	}
	if spec.ReadOnly {
		hc.Tmpfs = map[string]string{"/tmp": tmpfsTmp}
	}
	if spec.DataPath != "" {
		hc.Mounts = []mount.Mount{{
			Type:   mount.TypeVolume,
			Source: volumeName(r.cfg.Namespace, spec.SiteID),
			Target: spec.DataPath,
		}}
	}
	if !r.dialsContainer(labels) {
		hc.PortBindings = nat.PortMap{port: []nat.PortBinding{{HostIP: r.cfg.PublishIP, HostPort: ""}}}
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{primary: {}}}
	return cfg, hc, nc
}

// ensureImage pulls spec.Image if it is not present locally, logging the
// pull's progress lines.
func (r *DockerRuntime) ensureImage(ctx context.Context, ref string) error {
	if _, err := r.cli.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("inspecting image %s: %w", ref, err)
	}
	r.log.Info("pulling image", zap.String("image", ref))
	rc, err := r.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pulling image %s: %w", ref, err)
	}
	defer rc.Close()
	err = readMessages(rc, func(msg engineMessage) error {
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
		// Download/extract progress ticks are noise; layer and image
		// milestones are worth a line.
		if msg.Status != "Downloading" && msg.Status != "Extracting" {
			r.log.Info("pull progress", zap.String("image", ref), zap.String("layer", msg.ID), zap.String("status", msg.Status))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pulling image %s: %w", ref, err)
	}
	if _, err := r.cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("image %s missing after pull: %w", ref, err)
	}
	return nil
}

// engineMessage is one line of the engine's progress streams (pulls and
// builds), which report failures inside the stream rather than as an
// HTTP error.
type engineMessage struct {
	Stream string `json:"stream"`
	Status string `json:"status"`
	ID     string `json:"id"`
	Error  string `json:"error"`
}

// readMessages calls fn with each message of a progress stream until it
// ends or fn fails.
func readMessages(r io.Reader, fn func(engineMessage) error) error {
	dec := json.NewDecoder(r)
	for {
		var msg engineMessage
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
}

// ensureVolume creates the site's labeled volume; creating an existing
// volume is a no-op in Docker, which keeps data across recreates.
func (r *DockerRuntime) ensureVolume(ctx context.Context, spec *Spec) error {
	_, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{
		Name:   volumeName(r.cfg.Namespace, spec.SiteID),
		Labels: map[string]string{LabelNamespace: r.cfg.Namespace, LabelSite: spec.SiteID},
	})
	if err != nil {
		return fmt.Errorf("creating volume: %w", err)
	}
	return nil
}

// ours reports whether an inspected container belongs to this namespace and
// site: a name collision with a foreign container must not be adopted.
func (r *DockerRuntime) ours(c *container.InspectResponse, siteID string) bool {
	return c.Config != nil && c.Config.Labels[LabelNamespace] == r.cfg.Namespace && c.Config.Labels[LabelSite] == siteID
}

func labelVersion(c *container.InspectResponse) int {
	if c.Config == nil {
		return 0
	}
	v, _ := strconv.Atoi(c.Config.Labels[LabelTemplateVersion])
	return v
}

// ensureContainer finds or creates the site's container on its customer's
// networks and returns its inspect data. A container from an older spec is
// replaced (the named volume survives); a name conflict with a container
// created concurrently (another node) is resolved by adopting it. oldKey
// is the network key of a replaced container that belonged to another one
// (the site moved to another customer), whose networks may now be unused.
func (r *DockerRuntime) ensureContainer(ctx context.Context, spec *Spec) (c container.InspectResponse, created bool, oldKey string, err error) {
	key := networkKey(spec)
	unlock := r.netLocks.lock(key)
	defer unlock()
	name := containerName(r.cfg.Namespace, spec.SiteID)
	c, err = r.cli.ContainerInspect(ctx, name)
	switch {
	case err == nil:
		if !r.ours(&c, spec.SiteID) {
			return c, false, "", fmt.Errorf("container %s exists but is not labeled for namespace %s and site %s", name, r.cfg.Namespace, spec.SiteID)
		}
		if !outdated(&c, spec) {
			return c, false, "", nil
		}
		r.log.Info("recreating container for changed site definition",
			zap.String("site_id", spec.SiteID), zap.String("container_id", c.ID),
			zap.String("old_template", c.Config.Labels[LabelTemplate]), zap.Int("old_version", labelVersion(&c)),
			zap.String("new_template", spec.TemplateSlug), zap.Int("new_version", spec.TemplateVersion))
		if k := c.Config.Labels[LabelCustomer]; k != key {
			oldKey = k
		}
		if err := r.removeContainer(ctx, c.ID); err != nil {
			return c, false, "", err
		}
	case !isNotFound(err):
		return c, false, "", fmt.Errorf("inspecting container %s: %w", name, err)
	}
	c, created, err = r.createNamed(ctx, spec, name, 1)
	return c, created, oldKey, err
}

// createNamed creates a container for spec named name on the customer's
// networks and returns its inspect data; a name conflict with a container
// created concurrently (another node) is resolved by adopting it. Call
// with the spec's network lock held.
func (r *DockerRuntime) createNamed(ctx context.Context, spec *Spec, name string, replica int) (c container.InspectResponse, created bool, err error) {
	primary, extra, err := r.siteNetworks(ctx, spec)
	if err != nil {
		return c, false, fmt.Errorf("preparing networks: %w", err)
	}
	cfg, hc, nc := r.containerConfig(spec, primary, replica)
	resp, err := r.cli.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	if isNotFound(err) && r.forgetNetworks(spec) {
		// The network went (another node removed the customer's last
		// container meanwhile): make it again, once.
		if primary, extra, err = r.siteNetworks(ctx, spec); err != nil {
			return c, false, fmt.Errorf("preparing networks: %w", err)
		}
		cfg, hc, nc = r.containerConfig(spec, primary, replica)
		resp, err = r.cli.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	}
	if isConflict(err) {
		// Another node created it first. Docker reserves the name before
		// the container is registered, so it may not be inspectable yet.
		for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
			c, ierr := r.cli.ContainerInspect(ctx, name)
			if ierr == nil && r.ours(&c, spec.SiteID) {
				return c, false, nil
			}
			if ierr == nil || !isNotFound(ierr) {
				break
			}
			select {
			case <-ctx.Done():
				return c, false, fmt.Errorf("creating container %s: %w", name, ctx.Err())
			case <-time.After(delay):
			}
		}
	}
	if err != nil {
		return c, false, fmt.Errorf("creating container %s: %w", name, err)
	}
	for _, w := range resp.Warnings {
		r.log.Warn("container create warning", zap.String("site_id", spec.SiteID), zap.String("warning", w))
	}
	for _, n := range extra {
		if err := r.cli.NetworkConnect(ctx, n, resp.ID, nil); err != nil {
			return c, false, fmt.Errorf("connecting container %s to network %s: %w", name, n, err)
		}
	}
	c, err = r.cli.ContainerInspect(ctx, resp.ID)
	if err != nil {
		return c, false, fmt.Errorf("inspecting container %s: %w", name, err)
	}
	return c, true, nil
}

// forgetNetworks drops what this process remembers of spec's networks,
// and reports whether it remembered any (whether a retry can help).
func (r *DockerRuntime) forgetNetworks(spec *Spec) bool {
	key := networkKey(spec)
	_, a := r.networks.LoadAndDelete(networkName(r.cfg.Namespace, key, false))
	_, b := r.networks.LoadAndDelete(networkName(r.cfg.Namespace, key, true))
	return a || b
}

// removeContainer force-removes a container (volumes are named, so they are
// not affected); a missing container is not an error.
func (r *DockerRuntime) removeContainer(ctx context.Context, id string) error {
	err := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	return nil
}

// upstreamOf derives the dial address of a running container: its IP on
// its customer network where Caddy dials containers directly (network
// mode, no egress), else the host port published on PublishIP.
func (r *DockerRuntime) upstreamOf(c *container.InspectResponse, port int) (string, error) {
	if c.NetworkSettings == nil || c.Config == nil {
		return "", errors.New("container has no network settings")
	}
	if primary := r.primaryNetwork(c.Config.Labels); primary != "" && r.dialsContainer(c.Config.Labels) {
		ep := c.NetworkSettings.Networks[primary]
		if ep == nil || ep.IPAddress == "" {
			return "", fmt.Errorf("container has no address on network %s", primary)
		}
		return net.JoinHostPort(ep.IPAddress, strconv.Itoa(port)), nil
	}
	if r.cfg.Network != "" {
		// A container from before customer networks, on Caddy's network.
		if ep := c.NetworkSettings.Networks[r.cfg.Network]; ep != nil && ep.IPAddress != "" {
			return net.JoinHostPort(ep.IPAddress, strconv.Itoa(port)), nil
		}
	}
	bindings := c.NetworkSettings.Ports[nat.Port(strconv.Itoa(port)+"/tcp")]
	for _, b := range bindings {
		if b.HostPort != "" && (b.HostIP == r.cfg.PublishIP || len(bindings) == 1) {
			return net.JoinHostPort(r.cfg.PublishIP, b.HostPort), nil
		}
	}
	return "", fmt.Errorf("port %d/tcp is not published on %s", port, r.cfg.PublishIP)
}

// sitePort recovers the container port of an adopted container (the Spec
// is not known at adoption time) from its label, else its exposed ports.
func sitePort(c *container.InspectResponse) int {
	if c.Config == nil {
		return 0
	}
	if port, err := strconv.Atoi(c.Config.Labels[LabelPort]); err == nil && port > 0 {
		return port
	}
	for p := range c.Config.ExposedPorts {
		if p.Proto() == "tcp" {
			return p.Int()
		}
	}
	return 0
}

// directAddr is the container's own address on its customer network (or,
// for an older container, its first one), used to probe readiness behind a
// published port; "" if it has none.
func (r *DockerRuntime) directAddr(c *container.InspectResponse, port int) string {
	if c.NetworkSettings == nil {
		return ""
	}
	var ip string
	if c.Config != nil {
		if ep := c.NetworkSettings.Networks[r.primaryNetwork(c.Config.Labels)]; ep != nil {
			ip = ep.IPAddress
		}
	}
	if ip == "" {
		ip = c.NetworkSettings.IPAddress
	}
	if ip == "" {
		for _, ep := range c.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress != "" {
				ip = ep.IPAddress
				break
			}
		}
	}
	if ip == "" {
		return ""
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// imageCheckTimeout bounds asking a registry whether an image exists.
const imageCheckTimeout = 10 * time.Second

// CheckImage returns nil when image is on the engine's host or its
// registry has it (asked for the manifest, nothing pulled), else why not.
func (r *DockerRuntime) CheckImage(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, imageCheckTimeout)
	defer cancel()
	if _, err := r.cli.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("inspecting image %s: %w", ref, err)
	}
	if _, err := r.cli.DistributionInspect(ctx, ref, ""); err != nil {
		return fmt.Errorf("image %s is not on the host and its registry does not answer for it: %w", ref, err)
	}
	return nil
}
