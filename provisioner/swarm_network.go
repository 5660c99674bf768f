package provisioner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

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
	var ids []string
	if spec.NoEgress {
		id, err := r.ensureOverlay(ctx, key, true)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	} else {
		id, err := r.ensureOverlay(ctx, key, false)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
		internal, err := r.overlay(ctx, networkName(r.cfg.Namespace, key, true))
		if err != nil {
			return nil, err
		}
		if internal != "" {
			ids = append(ids, internal)
		}
	}
	if r.cfg.Network != "" {
		ids = append(ids, r.cfg.Network)
	}
	att := make([]swarm.NetworkAttachmentConfig, len(ids))
	for i, id := range ids {
		att[i] = swarm.NetworkAttachmentConfig{Target: id}
	}
	return att, nil
}

// overlay returns the ID of the namespace's overlay named name ("" if none),
// the oldest one if a race made two.
func (r *SwarmRuntime) overlay(ctx context.Context, name string) (string, error) {
	list, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("name", name), filters.Arg("driver", "overlay"),
		filters.Arg("label", LabelNamespace+"="+r.cfg.Namespace))})
	if err != nil {
		return "", fmt.Errorf("listing networks named %s: %w", name, err)
	}
	var found []network.Summary
	for _, n := range list {
		if n.Name == name { // the filter matches substrings
			found = append(found, n)
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Created.Before(found[j].Created) })
	return found[0].ID, nil
}

// ensureOverlay returns the ID of the key's overlay (its internal one with
// internal), created if missing. Call with the key's lock held.
func (r *SwarmRuntime) ensureOverlay(ctx context.Context, key string, internal bool) (string, error) {
	name := networkName(r.cfg.Namespace, key, internal)
	if id, err := r.overlay(ctx, name); err != nil || id != "" {
		return id, err
	}
	resp, err := r.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver:     "overlay",
		Attachable: true,
		Internal:   internal,
		Labels: map[string]string{
			LabelNamespace: r.cfg.Namespace,
			LabelCustomer:  key,
			LabelEgress:    strconv.FormatBool(!internal),
		},
	})
	if err != nil {
		if nameTaken(err) {
			return r.overlay(ctx, name)
		}
		return "", fmt.Errorf("creating overlay %s: %w", name, err)
	}
	r.log.Info("created customer overlay", zap.String("network", name), zap.Bool("internal", internal))
	return resp.ID, nil
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
		id, err := r.overlay(ctx, name)
		if err != nil || id == "" {
			errs = append(errs, err)
			continue
		}
		if err := r.cli.NetworkRemove(ctx, id); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("removing overlay %s: %w", name, err))
			continue
		}
		r.log.Info("removed customer overlay", zap.String("network", name))
	}
	return errors.Join(errs...)
}
