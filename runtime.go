package multitenant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// siteRuntime is the admin service's view of a provisioner: it builds each
// site's container spec from the store the way a request does from its
// route, and words the provisioner's failures for the service. The server
// gives it the platform's provisioner; the CLI one of its own, made at the
// first action that needs the engine.
type siteRuntime struct {
	store  *tenants.Store
	policy sitePolicy
	// releases serializes a site's builds and rollouts across processes.
	releases *tenants.SiteLocker
	prov     func(ctx context.Context) (*provisioner.Provisioner, error)
	// started returns the provisioner if it exists yet, for what needs no
	// engine (Status); nil when none was made.
	started func() *provisioner.Provisioner
}

func (rt *siteRuntime) spec(ctx context.Context, siteID string) (provisioner.Spec, error) {
	return rt.policy.siteSpec(ctx, rt.store, siteID)
}

// act builds the site's spec from the store and runs fn with it on the
// provisioner.
func (rt *siteRuntime) act(ctx context.Context, siteID string, fn func(*provisioner.Provisioner, provisioner.Spec) error) error {
	sp, err := rt.spec(ctx, siteID)
	if err != nil {
		return err
	}
	p, err := rt.prov(ctx)
	if err != nil {
		return err
	}
	return runtimeErr(fn(p, sp))
}

func (rt *siteRuntime) Start(ctx context.Context, siteID string) error {
	return rt.act(ctx, siteID, func(p *provisioner.Provisioner, sp provisioner.Spec) error {
		_, err := p.Ensure(ctx, sp)
		return err
	})
}

func (rt *siteRuntime) Stop(ctx context.Context, siteID string) error {
	p, err := rt.prov(ctx)
	if err != nil {
		return err
	}
	return runtimeErr(p.StopSite(ctx, siteID))
}

func (rt *siteRuntime) Restart(ctx context.Context, siteID string) error {
	return rt.act(ctx, siteID, func(p *provisioner.Provisioner, sp provisioner.Spec) error {
		if err := p.StopSite(ctx, siteID); err != nil {
			return err
		}
		_, err := p.Ensure(ctx, sp)
		return err
	})
}

// Redeploy recreates the container under the site's lock across nodes,
// so a node serving the site waits instead of failing requests.
func (rt *siteRuntime) Redeploy(ctx context.Context, siteID string) error {
	return rt.act(ctx, siteID, func(p *provisioner.Provisioner, sp provisioner.Spec) error {
		_, err := p.Recreate(ctx, sp)
		return err
	})
}

func (rt *siteRuntime) Remove(ctx context.Context, siteID string, purge bool) error {
	p, err := rt.prov(ctx)
	if err != nil {
		return err
	}
	return runtimeErr(p.RemoveSite(ctx, siteID, purge))
}

func (rt *siteRuntime) Status(siteID string) manage.RuntimeStatus {
	p := rt.started()
	if p == nil {
		return manage.RuntimeStatus{}
	}
	return runtimeStatus(p.Status(siteID))
}

func (rt *siteRuntime) Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error) {
	p, err := rt.prov(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := p.Logs(ctx, siteID, tail, follow)
	return rc, runtimeErr(err)
}

func (rt *siteRuntime) HostLimits(ctx context.Context) (tenants.Limits, error) {
	p, err := rt.prov(ctx)
	if err != nil {
		return tenants.Limits{}, err
	}
	host, err := p.Host(ctx)
	return tenants.Limits{MemoryBytes: host.MemoryBytes, NanoCPUs: host.NanoCPUs()}, runtimeErr(err)
}

func (rt *siteRuntime) CheckImage(ctx context.Context, image string) error {
	p, err := rt.prov(ctx)
	if err != nil {
		return err
	}
	return p.CheckImage(ctx, image)
}

// ExportVolume writes the site's volume for a backup (see
// backup.Volumes).
func (rt *siteRuntime) ExportVolume(ctx context.Context, siteID string, w io.Writer) error {
	return rt.act(ctx, siteID, func(p *provisioner.Provisioner, sp provisioner.Spec) error {
		return p.ExportVolume(ctx, sp, w)
	})
}

// ImportVolume replaces the site's volume from a backup (see
// backup.Volumes).
func (rt *siteRuntime) ImportVolume(ctx context.Context, siteID string, r io.Reader) error {
	return rt.act(ctx, siteID, func(p *provisioner.Provisioner, sp provisioner.Spec) error {
		return p.ImportVolume(ctx, sp, r)
	})
}

// billingSites is billing's view of the platform's containers: the admin
// service's actions, as every client's. The service is made after billing
// (it calls billing too), before anything runs.
type billingSites struct{ p *platform }

func (s billingSites) StopSite(ctx context.Context, siteID string) error {
	return s.p.sites.StopSite(ctx, siteID)
}

func (s billingSites) Running(siteID string) bool { return s.p.sites.SiteRunning(siteID) }

// runtimeErr marks the provisioner's failures with the admin service's
// sentinels; the engine's own words stay inside, for the log.
func runtimeErr(err error) error {
	var se *provisioner.StartError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, provisioner.ErrEngineUnavailable), client.IsErrConnectionFailed(err):
		return fmt.Errorf("%w: %w", manage.ErrEngineUnavailable, err)
	case errors.Is(err, provisioner.ErrCapacity):
		return fmt.Errorf("%w: %w", manage.ErrNoCapacity, err)
	case errors.As(err, &se), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", manage.ErrStartFailed, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", manage.ErrNoContainer, err)
	}
	return err
}

func runtimeStatus(s provisioner.SiteRuntime) manage.RuntimeStatus {
	st := manage.RuntimeStatus{
		SiteID:        s.SiteID,
		State:         string(s.State),
		ContainerID:   s.ContainerID,
		Upstream:      s.Upstream,
		LastStartedAt: timeOrNil(s.LastStart),
		LastStoppedAt: timeOrNil(s.LastStop),
		LastActiveAt:  timeOrNil(s.LastActivity),
		InFlight:      s.InFlight,
		Upgraded:      s.Upgraded,
		RetryAfter:    timeOrNil(s.RetryAfter),

		Health:          string(s.Health),
		HealthFailures:  s.HealthFailures,
		HealthError:     s.HealthError,
		HealthCheckedAt: timeOrNil(s.HealthCheckedAt),
		UnhealthySince:  timeOrNil(s.UnhealthySince),
		Restarting:      s.Restarting,

		Replicas:    s.Replicas,
		Upstreams:   s.Upstreams,
		MaxReplicas: s.MaxReplicas,
	}
	if s.Failure != nil {
		st.Failure = failure(s.Failure, s.FailedAt)
	}
	return st
}

// failure is the admin service's view of a failed start at at.
func failure(se *provisioner.StartError, at time.Time) *manage.Failure {
	f := &manage.Failure{Reason: se.Reason, LogTail: se.LogTail, At: at}
	if se.ExitCode >= 0 {
		code := se.ExitCode
		f.ExitCode = &code
	}
	return f
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Interface guards
var (
	_ manage.Runtime      = (*siteRuntime)(nil)
	_ manage.Releaser     = (*siteRuntime)(nil)
	_ billing.SiteStopper = billingSites{}
	_ backup.Volumes      = (*siteRuntime)(nil)
)
