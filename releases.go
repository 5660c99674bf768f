package multitenant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The release side of the runtime adapter: rollouts and builds for the
// admin service, serialized per site across processes by the site's
// release lock; and the platform's part: following other nodes'
// rollouts, and settling those a crash cut short.

// RollOut rolls a release out under the site's release lock: its spec
// read under the container lock, made a container spec the way a
// request's route makes one.
func (rt *siteRuntime) RollOut(ctx context.Context, r manage.RollOut) (*manage.RollOutResult, error) {
	p, err := rt.prov(ctx)
	if err != nil {
		return nil, err
	}
	unlock, err := rt.releases.Lock(ctx, r.SiteID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res, err := p.Rollout(ctx, r.SiteID, provisioner.RolloutOptions{
		Spec: func(ctx context.Context) (provisioner.Spec, bool, error) {
			rs, ok, err := r.Spec(ctx)
			if err != nil || !ok {
				return provisioner.Spec{}, ok, err
			}
			route, err := rt.store.SiteRoute(ctx, r.SiteID)
			if err != nil {
				return provisioner.Spec{}, false, err
			}
			return rt.policy.releaseSpec(route, rs), true, nil
		},
		Switched: r.Live,
	})
	out := &manage.RollOutResult{Skipped: res.Skipped, Stopped: res.Stopped, BriefStop: res.BriefStop,
		ContainerID: res.ContainerID, Drained: res.Drained, DrainTimedOut: res.DrainTimedOut}
	var se *provisioner.StartError
	if errors.As(err, &se) {
		out.Failure = failure(se, time.Now())
		return out, nil
	}
	return out, runtimeErr(err)
}

// Build builds the image of a site's release under its release lock.
func (rt *siteRuntime) Build(ctx context.Context, siteID string, release int, buildContext io.Reader, log io.Writer) (string, error) {
	p, err := rt.prov(ctx)
	if err != nil {
		return "", err
	}
	unlock, err := rt.releases.Lock(ctx, siteID)
	if err != nil {
		return "", err
	}
	defer unlock()
	image, err := p.Build(ctx, siteID, release, buildContext, log)
	var be *provisioner.BuildError
	if errors.As(err, &be) {
		return "", fmt.Errorf("%w: %w", manage.ErrBuildFailed, err)
	}
	return image, runtimeErr(err)
}

// PruneImages removes the site's build images but keep.
func (rt *siteRuntime) PruneImages(ctx context.Context, siteID string, keep []string) error {
	p, err := rt.prov(ctx)
	if err != nil {
		return err
	}
	return runtimeErr(p.PruneImages(ctx, siteID, keep))
}

// followReleases switches this node's requests for a site to its new
// container when a release of it goes live on another node (or the CLI):
// the change notification names the site, the live release its
// container. Started by the platform, it runs until ctx ends.
func (p *platform) followReleases(ctx context.Context) {
	for {
		var siteID string
		select {
		case <-ctx.Done():
			return
		case siteID = <-p.released:
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := p.store.LiveRelease(fctx, siteID)
		if err == nil && r.ContainerID != "" {
			err = p.prov.Follow(fctx, siteID, r.ContainerID)
		}
		cancel()
		if err != nil && !errors.Is(err, tenants.ErrNotFound) && ctx.Err() == nil {
			// Its requests fail over once the old container is gone.
			p.logger.Warn("following a site's rollout", zap.String("site_id", siteID), zap.Error(err))
		}
	}
}

// noteRelease takes a change notification from the resolver's listener
// without blocking it.
func (p *platform) noteRelease(c tenants.Change) {
	if c.Table != "releases" {
		return
	}
	select {
	case p.released <- c.SiteID:
	default:
		p.logger.Warn("release queue full; the site's requests fail over instead", zap.String("site_id", c.SiteID))
	}
}

// settleReleases, once the database and the engine are there, settles
// what a process that died left of its rollouts: a new container whose
// release went live takes over (the old one drained and removed), any
// other is removed, and the releases nobody rolls out any more are
// failed. Never are two containers left serving a site.
func (p *platform) settleReleases(ctx context.Context) error {
	unfinished, err := p.store.UnfinishedReleases(ctx)
	if err != nil {
		return err
	}
	sites := map[string][]int{}
	for _, id := range p.prov.Unsettled() {
		sites[id] = nil
	}
	for _, r := range unfinished {
		sites[r.SiteID] = append(sites[r.SiteID], r.Number)
	}
	var errs []error
	for siteID, numbers := range sites {
		errs = append(errs, p.settleSite(ctx, siteID, numbers))
	}
	return errors.Join(errs...)
}

// Outcome of a release a restart cut short.
const outcomeInterrupted = "interrupted: the process rolling it out stopped; the live release serves on"

func (p *platform) settleSite(ctx context.Context, siteID string, unfinished []int) error {
	unlock, ok, err := p.runtime.releases.TryLock(ctx, siteID)
	if err != nil || !ok {
		return err // another process is at it
	}
	defer unlock()
	var live string
	if r, err := p.store.LiveRelease(ctx, siteID); err == nil {
		live = r.ContainerID
	} else if !errors.Is(err, tenants.ErrNotFound) {
		return err
	}
	if err := p.prov.Settle(ctx, siteID, func(id string) bool { return id == live }); err != nil {
		return fmt.Errorf("settling the rollout of site %s: %w", siteID, err)
	}
	for _, n := range unfinished {
		if err := p.store.FinishRelease(ctx, siteID, n, tenants.ReleaseFailed, outcomeInterrupted, ""); err != nil {
			return err
		}
	}
	return nil
}
