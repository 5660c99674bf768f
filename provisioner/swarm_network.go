package provisioner

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"go.uber.org/zap"
)

// Customer overlays keep customers apart on a swarm as customer bridges do
// on one engine (network.go): each customer's services share an attachable
// overlay of their own, named as the bridge would be, made with the
// customer's first service and removed with its last; a site without
// egress is on the customer's internal overlay, which the customer's other
// services made after it join too. Subnets come from the swarm's own
// address pool (docker swarm init --default-addr-pool).

// siteNetworks makes sure spec's overlays exist and returns the service's
// attachments: its customer's (internal one without egress), the internal
// one if there is one, and Config.Network. By network ID: Swarm allows two
// networks of one name, and a name would then be ambiguous.
func (r *SwarmRuntime) siteNetworks(ctx context.Context, spec *Spec) ([]swarm.NetworkAttachmentConfig, error) {
	key := networkKey(spec)
	unlock := r.nets.lock(key)
	defer unlock()
	var nets []network.Summary
	primary, err := r.ensureOverlay(ctx, key, spec.NoEgress)
	if err != nil {
		return nil, err
	}
	nets = append(nets, primary)
	if !spec.NoEgress {
		internal, found, err := r.overlay(ctx, networkName(r.cfg.Namespace, key, true))
		if err != nil {
			return nil, err
		}
		if found {
			nets = append(nets, internal)
		}
	}
	var att []swarm.NetworkAttachmentConfig
	for _, n := range nets {
		if r.cfg.OnNetwork != nil {
			if err := r.cfg.OnNetwork(ctx, n.ID, n.Name, subnetOf(&n)); err != nil {
				return nil, fmt.Errorf("making overlay %s reachable: %w", n.Name, err)
			}
		}
		att = append(att, swarm.NetworkAttachmentConfig{Target: n.ID})
	}
	if r.cfg.Network != "" {
		att = append(att, swarm.NetworkAttachmentConfig{Target: r.cfg.Network})
	}
	return att, nil
}

// subnetOf is n's first IPv4 subnet, the zero Prefix if none.
func subnetOf(n *network.Summary) netip.Prefix {
	for _, c := range n.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
			return p
		}
	}
	return netip.Prefix{}
}

// overlay returns the namespace's overlay named name, the oldest one if a
// race made two.
func (r *SwarmRuntime) overlay(ctx context.Context, name string) (network.Summary, bool, error) {
	n, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{Scope: "swarm"})
	switch {
	case isNotFound(err):
		return network.Summary{}, false, nil
	case err == nil && n.Name == name:
		return n, n.Labels[LabelNamespace] == r.cfg.Namespace, nil
	case err == nil:
		// Inspect resolves ID prefixes too: not ours by that name.
		return network.Summary{}, false, nil
	case !strings.Contains(err.Error(), "ambiguous"):
		return network.Summary{}, false, fmt.Errorf("inspecting network %s: %w", name, err)
	}
	list, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return network.Summary{}, false, fmt.Errorf("listing networks named %s: %w", name, err)
	}
	var found []network.Summary
	for _, n := range list {
		// The filter matches substrings.
		if n.Name == name && n.Labels[LabelNamespace] == r.cfg.Namespace {
			found = append(found, n)
		}
	}
	if len(found) == 0 {
		return network.Summary{}, false, nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Created.Before(found[j].Created) })
	return found[0], true, nil
}

// ensureOverlay returns the key's overlay (its internal one with
// internal), created if missing, on a subnet of Config.SubnetPool when
// that is set. Call with the key's lock held.
func (r *SwarmRuntime) ensureOverlay(ctx context.Context, key string, internal bool) (network.Summary, error) {
	name := networkName(r.cfg.Namespace, key, internal)
	if n, found, err := r.overlay(ctx, name); err != nil || found {
		return n, err
	}
	r.subnetMu.Lock()
	defer r.subnetMu.Unlock()
	for attempt := 1; ; attempt++ {
		opts := network.CreateOptions{
			Driver:     "overlay",
			Attachable: true,
			Internal:   internal,
			Labels: map[string]string{
				LabelNamespace: r.cfg.Namespace,
				LabelCustomer:  key,
				LabelEgress:    strconv.FormatBool(!internal),
			},
		}
		if r.cfg.SubnetPool.IsValid() {
			subnet, err := r.freeSubnet(ctx)
			if err != nil {
				return network.Summary{}, fmt.Errorf("creating overlay %s: %w", name, err)
			}
			opts.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet.String()}}}
		}
		_, err := r.cli.NetworkCreate(ctx, name, opts)
		switch {
		case err == nil:
			r.log.Info("created customer overlay", zap.String("network", name), zap.Bool("internal", internal))
		case nameTaken(err):
		case subnetTaken(err) && attempt < 20:
			continue // another process took it
		default:
			return network.Summary{}, fmt.Errorf("creating overlay %s: %w", name, err)
		}
		return r.allocated(ctx, name)
	}
}

// allocated waits until the manager has given the overlay name its subnet
// (inspected right after its creation it may have none yet) and returns it.
func (r *SwarmRuntime) allocated(ctx context.Context, name string) (network.Summary, error) {
	for {
		n, found, err := r.overlay(ctx, name)
		switch {
		case err != nil:
			return n, err
		case !found:
			return n, fmt.Errorf("overlay %s missing after its creation", name)
		case subnetOf(&n).IsValid():
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("waiting for the subnet of overlay %s: %w", name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// freeSubnet is the first subnet of the pool that overlaps no network the
// manager has.
func (r *SwarmRuntime) freeSubnet(ctx context.Context) (netip.Prefix, error) {
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("listing networks: %w", err)
	}
	var used []netip.Prefix
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				used = append(used, p)
			}
		}
	}
	pool, bits := r.cfg.SubnetPool, r.cfg.SubnetBits
	for p := netip.PrefixFrom(pool.Addr(), bits); pool.Contains(p.Addr()); {
		if !slices.ContainsFunc(used, p.Overlaps) {
			return p, nil
		}
		next := p.Addr()
		for range 1 << (32 - bits) {
			next = next.Next()
		}
		if !next.IsValid() {
			break
		}
		p = netip.PrefixFrom(next, bits)
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d left in the subnet pool %s", bits, pool)
}

// releaseOverlays removes the key's overlays once no service of the key is
// left (stopped ones count: they need them to start again). An overlay
// still held by a task shutting down is left for the next release.
func (r *SwarmRuntime) releaseOverlays(ctx context.Context, key string) error {
	unlock := r.nets.lock(key)
	defer unlock()
	svcs, err := r.services(ctx)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		if s.Spec.Labels[LabelCustomer] == key {
			return nil
		}
	}
	var errs []error
	for _, internal := range []bool{false, true} {
		name := networkName(r.cfg.Namespace, key, internal)
		n, found, err := r.overlay(ctx, name)
		if err != nil || !found {
			errs = append(errs, err)
			continue
		}
		if r.cfg.OnNetworkRelease != nil {
			if err := r.cfg.OnNetworkRelease(ctx, n.ID, n.Name, subnetOf(&n)); err != nil {
				errs = append(errs, fmt.Errorf("releasing overlay %s: %w", name, err))
				continue
			}
		}
		if err := r.cli.NetworkRemove(ctx, n.ID); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("removing overlay %s: %w", name, err))
			continue
		}
		r.log.Info("removed customer overlay", zap.String("network", name))
	}
	return errors.Join(errs...)
}
