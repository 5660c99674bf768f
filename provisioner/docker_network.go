package provisioner

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"go.uber.org/zap"
)

// Customer networks keep customers apart. Each customer's containers share
// a bridge network of their own (created with the customer's first
// container, removed with its last); Docker's isolation rules drop any
// traffic between two such bridges, so a customer's sites reach each other
// and never another customer's. A site without egress sits on the
// customer's second, internal network (no route out); the customer's other
// containers are connected to it too, so its sites still reach each other.
//
// Every network gets a subnet of its own from Config.SubnetPool (Docker's
// default pools hold about 30 networks) and a host interface named
// "tn<12 hex digits>", so an operator can fence all of them off the host's
// own services with one firewall rule on "tn+".

// Labels of customer networks (and, for the customer, of containers).
const (
	// LabelCustomer is the network key: the customer id, or "site-<id>"
	// for a site without a customer.
	LabelCustomer = "caddy-multitenant.customer"
	// LabelEgress is "true" on networks and containers that reach the
	// outside, "false" on internal ones.
	LabelEgress = "caddy-multitenant.egress"
)

// Subnets of customer networks, by default.
var DefaultSubnetPool = netip.MustParsePrefix("172.16.0.0/16")

// DefaultSubnetBits is the prefix length of one customer network's subnet:
// a /26 holds 61 containers besides the gateway.
const DefaultSubnetBits = 26

func validSubnetPool(pool netip.Prefix, bits int) error {
	switch {
	case !pool.Addr().Is4():
		return fmt.Errorf("subnet pool %s: must be an IPv4 range", pool)
	case pool.Masked() != pool:
		return fmt.Errorf("subnet pool %s: host bits set; did you mean %s?", pool, pool.Masked())
	case bits < pool.Bits() || bits > 29:
		return fmt.Errorf("subnet size /%d: must be between /%d (the pool) and /29", bits, pool.Bits())
	}
	return nil
}

func networkKey(spec *Spec) string {
	if spec.CustomerID != "" {
		return spec.CustomerID
	}
	return "site-" + spec.SiteID
}

func networkName(ns, key string, internal bool) string {
	name := "tenant-" + ns + "-net-" + key
	if internal {
		name += "-internal"
	}
	return name
}

// bridgeName is a network's host interface: Linux allows 15 characters,
// and a fixed prefix lets one firewall rule cover them all.
func bridgeName(network string) string {
	sum := sha256.Sum256([]byte(network))
	return "tn" + hex.EncodeToString(sum[:6])
}

// primaryNetwork is the network a container of ours was created on, from
// its labels; "" for a container made before customer networks.
func (r *DockerRuntime) primaryNetwork(labels map[string]string) string {
	key := labels[LabelCustomer]
	if key == "" {
		return ""
	}
	return networkName(r.cfg.Namespace, key, labels[LabelEgress] == "false")
}

// dialsContainer reports whether Caddy reaches a container by its address
// on its network rather than through a published port: in network mode,
// and for sites without egress (internal networks publish nothing).
func (r *DockerRuntime) dialsContainer(labels map[string]string) bool {
	return r.cfg.Network != "" || labels[LabelEgress] == "false"
}

// siteNetworks makes sure the networks of spec's container exist and
// returns them: the one it is created on, then those it joins after. Call
// with the key's network lock held.
func (r *DockerRuntime) siteNetworks(ctx context.Context, spec *Spec) (primary string, extra []string, err error) {
	key := networkKey(spec)
	internal := networkName(r.cfg.Namespace, key, true)
	if spec.NoEgress {
		created, err := r.ensureNetwork(ctx, key, true)
		if err != nil {
			return "", nil, err
		}
		if created {
			r.connectCustomer(ctx, key, internal)
		}
		return internal, nil, nil
	}
	if _, err := r.ensureNetwork(ctx, key, false); err != nil {
		return "", nil, err
	}
	if ok, err := r.networkExists(ctx, internal); err != nil {
		return "", nil, err
	} else if ok {
		extra = []string{internal}
	}
	return networkName(r.cfg.Namespace, key, false), extra, nil
}

// ensureNetwork creates the key's network (its internal one with internal)
// unless it exists, and reports whether it did.
func (r *DockerRuntime) ensureNetwork(ctx context.Context, key string, internal bool) (bool, error) {
	name := networkName(r.cfg.Namespace, key, internal)
	if ok, err := r.networkExists(ctx, name); err != nil || ok {
		return false, err
	}
	if err := r.createNetwork(ctx, name, key, internal); err != nil {
		return false, err
	}
	r.log.Info("created customer network", zap.String("network", name), zap.String("bridge", bridgeName(name)), zap.Bool("internal", internal))
	r.networks.Store(name, true)
	r.attachCaddy(ctx, name)
	return true, nil
}

// networkExists reports whether the named network exists, from memory
// when this process has seen it (a network another node removed shows as
// a failed create or start, which forgets it).
func (r *DockerRuntime) networkExists(ctx context.Context, name string) (bool, error) {
	if _, ok := r.networks.Load(name); ok {
		return true, nil
	}
	_, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	switch {
	case err == nil:
		r.networks.Store(name, true)
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("inspecting network %s: %w", name, err)
}

// subnetMu serializes subnet allocation in this process, across
// provisioners (a reload runs two): they share the engine's address space.
var subnetMu sync.Mutex

// createNetwork creates a bridge network on a free subnet of the pool. A
// subnet taken meanwhile (by another process) is retried on the next free
// one; the name taken meanwhile means the network is there.
func (r *DockerRuntime) createNetwork(ctx context.Context, name, key string, internal bool) error {
	subnetMu.Lock()
	defer subnetMu.Unlock()
	for attempt := 1; ; attempt++ {
		subnet, err := r.freeSubnet(ctx)
		if err != nil {
			return fmt.Errorf("creating network %s: %w", name, err)
		}
		_, err = r.cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver:   "bridge",
			Internal: internal,
			IPAM: &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{
				Subnet:  subnet.String(),
				Gateway: subnet.Addr().Next().String(),
			}}},
			Options: map[string]string{"com.docker.network.bridge.name": bridgeName(name)},
			Labels: map[string]string{
				LabelNamespace: r.cfg.Namespace,
				LabelCustomer:  key,
				LabelEgress:    strconv.FormatBool(!internal),
			},
		})
		switch {
		case err == nil, nameTaken(err):
			return nil
		case subnetTaken(err) && attempt < 20:
			// Another process took it: maybe for this very network.
			if _, ierr := r.cli.NetworkInspect(ctx, name, network.InspectOptions{}); ierr == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("creating network %s: %w", name, ctx.Err())
			case <-time.After(time.Duration(attempt) * time.Duration(1+mathrand.IntN(10)) * time.Millisecond):
			}
			continue
		}
		return fmt.Errorf("creating network %s on %s: %w", name, subnet, err)
	}
}

// subnetTaken reports Docker's refusal of a subnet another network has.
func subnetTaken(err error) bool {
	return err != nil && strings.Contains(err.Error(), "overlaps")
}

// nameTaken reports Docker's refusal of a network name that exists.
func nameTaken(err error) bool {
	return err != nil && (isConflict(err) || strings.Contains(err.Error(), "already exists"))
}

// freeSubnet returns the first subnet of the pool that overlaps no
// network of the engine and no address of this host.
func (r *DockerRuntime) freeSubnet(ctx context.Context) (netip.Prefix, error) {
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("listing networks: %w", err)
	}
	var used []netip.Prefix
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if pfx, err := netip.ParsePrefix(c.Subnet); err == nil {
				used = append(used, pfx)
			}
		}
	}
	used = append(used, hostPrefixes()...)
	pool, bits := r.cfg.SubnetPool, r.cfg.SubnetBits
	base := pool.Addr().As4()
	first := binary.BigEndian.Uint32(base[:])
	size := uint32(1) << (32 - bits)
	for i := range uint32(1) << (bits - pool.Bits()) {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], first+i*size)
		candidate := netip.PrefixFrom(netip.AddrFrom4(a), bits)
		if !slices.ContainsFunc(used, candidate.Overlaps) {
			return candidate, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d left in the subnet pool %s (one per customer network): widen the docker subnet_pool option", bits, pool)
}

// hostPrefixes are this host's own IPv4 networks, which a customer network
// must not shadow (Docker checks its own pools against them, not explicit
// subnets). A remote engine's host is not seen; its networks are.
func hostPrefixes() []netip.Prefix {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		pfx, err := netip.ParsePrefix(ipn.String())
		if err == nil && pfx.Addr().Is4() && !pfx.Addr().IsLoopback() {
			out = append(out, pfx.Masked())
		}
	}
	return out
}

// caddyContainers lists the containers on Config.Network that are not
// sites: Caddy's own.
func (r *DockerRuntime) caddyContainers(ctx context.Context) ([]string, error) {
	if r.cfg.Network == "" {
		return nil, nil
	}
	list, err := r.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("network", r.cfg.Network))})
	if err != nil {
		return nil, fmt.Errorf("listing containers on network %s: %w", r.cfg.Network, err)
	}
	var ids []string
	for _, c := range list {
		if c.Labels[LabelSite] == "" {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// attachCaddy connects Caddy's containers to the named customer network,
// so Caddy dials the customer's containers there. Failures are logged: the
// site's start then fails on an unreachable upstream and is retried.
func (r *DockerRuntime) attachCaddy(ctx context.Context, name string) {
	ids, err := r.caddyContainers(ctx)
	if err != nil {
		r.log.Error("attaching caddy to customer network", zap.String("network", name), zap.Error(err))
		return
	}
	for _, id := range ids {
		r.connect(ctx, name, id)
	}
}

// connectCustomer connects the key's other containers to its new internal
// network, so the customer's sites with and without egress reach each
// other.
func (r *DockerRuntime) connectCustomer(ctx context.Context, key, internal string) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.customerFilter(key)})
	if err != nil {
		r.log.Error("connecting customer containers to internal network", zap.String("network", internal), zap.Error(err))
		return
	}
	for _, c := range list {
		if c.Labels[LabelEgress] != "false" {
			r.connect(ctx, internal, c.ID)
		}
	}
}

func (r *DockerRuntime) connect(ctx context.Context, networkName, containerID string) {
	err := r.cli.NetworkConnect(ctx, networkName, containerID, nil)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		r.log.Error("connecting container to network", zap.String("network", networkName), zap.String("container_id", containerID), zap.Error(err))
	}
}

func (r *DockerRuntime) customerFilter(key string) filters.Args {
	f := r.namespaceFilter()
	f.Add("label", LabelCustomer+"="+key)
	return f
}

// releaseNetworks removes the key's networks once no container of the
// key is left (stopped ones count: they need it to start again).
func (r *DockerRuntime) releaseNetworks(ctx context.Context, key string) error {
	unlock := r.netLocks.lock(key)
	defer unlock()
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.customerFilter(key)})
	if err != nil {
		return fmt.Errorf("listing containers of network %s: %w", key, err)
	}
	if len(list) > 0 {
		return nil
	}
	var errs []error
	for _, internal := range []bool{false, true} {
		errs = append(errs, r.removeNetwork(ctx, networkName(r.cfg.Namespace, key, internal)))
	}
	return errors.Join(errs...)
}

// removeNetwork disconnects what is left on a network (Caddy's
// containers) and removes it; a missing network is not an error.
func (r *DockerRuntime) removeNetwork(ctx context.Context, name string) error {
	r.networks.Delete(name)
	n, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if isNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("inspecting network %s: %w", name, err)
	}
	for id := range n.Containers {
		if err := r.cli.NetworkDisconnect(ctx, n.ID, id, true); err != nil && !isNotFound(err) {
			return fmt.Errorf("disconnecting %s from network %s: %w", id, name, err)
		}
	}
	if err := r.cli.NetworkRemove(ctx, n.ID); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing network %s: %w", name, err)
	}
	r.log.Info("removed customer network", zap.String("network", name))
	return nil
}

// reconcileNetworks, at start, removes the namespace's networks whose
// customer has no container left and, in network mode, connects Caddy's
// containers to the others (Caddy's container may be new).
func (r *DockerRuntime) reconcileNetworks(ctx context.Context) error {
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: r.namespaceFilter()})
	if err != nil {
		return fmt.Errorf("listing networks of namespace %s: %w", r.cfg.Namespace, err)
	}
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.namespaceFilter()})
	if err != nil {
		return fmt.Errorf("listing containers of namespace %s: %w", r.cfg.Namespace, err)
	}
	inUse := make(map[string]bool)
	for _, c := range list {
		inUse[c.Labels[LabelCustomer]] = true
	}
	caddy, err := r.caddyContainers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nets {
		key := n.Labels[LabelCustomer]
		switch {
		case key == "":
			// Not a customer network (a namespace network of an older
			// version): left alone.
		case !inUse[key]:
			errs = append(errs, r.releaseNetworks(ctx, key))
		default:
			for _, id := range caddy {
				r.connect(ctx, n.Name, id)
			}
		}
	}
	return errors.Join(errs...)
}

// keyLocks hands out one mutex per key, kept only while used.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (k *keyLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyLock)
	}
	l := k.m[key]
	if l == nil {
		l = new(keyLock)
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
