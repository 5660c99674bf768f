package multitenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddy.RegisterModule(Permission{})
}

// Permission is tls.permission.tenant: it lets on-demand TLS get (or load
// from storage) a certificate for a host only when that host belongs to a
// site of the tenants app.
//
// A host is allowed when it resolves to a site, whatever the standing of
// the site or its customer: a suspended site still needs a certificate so
// that its "suspended" page is served over HTTPS. A custom domain is
// allowed only once it is verified; a host whose site was deleted, a
// reserved subdomain, the base domain itself and any unknown host are
// denied.
//
// The answer comes from the app's resolver, so a cached host costs no
// query, and hosts cached before PostgreSQL went away keep their
// certificates while it is down. A host that is not cached while the
// database is unreachable is denied: nothing can vouch for it.
//
// It needs the tenants app (the global option `tenants`).
//
// Caddyfile (global options):
//
//	on_demand_tls {
//		permission tenant
//	}
type Permission struct {
	resolver *tenants.Resolver
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Permission) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.permission.tenant",
		New: func() caddy.Module { return new(Permission) },
	}
}

// Provision takes the resolver of the tenants app. Like the app's own
// Provision it does no I/O.
func (p *Permission) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	app, err := tenantsApp(ctx, "permission tenant")
	if err != nil {
		return err
	}
	p.resolver = app.platform.resolver
	return nil
}

// CertificateAllowed returns nil when name may have a certificate. A
// denial wraps caddytls.ErrPermissionDenied (so Caddy treats it as a
// decision, not a failure); when the database could not be asked it also
// wraps tenants.ErrUnavailable.
func (p *Permission) CertificateAllowed(ctx context.Context, name string) error {
	route, err := p.resolver.Resolve(ctx, name)
	switch {
	case err == nil && route.Routable():
		return nil
	case err == nil:
		return p.deny(name, "custom domain not verified", nil)
	case errors.Is(err, tenants.ErrUnknownHost):
		return p.deny(name, "host belongs to no site", nil)
	case errors.Is(err, tenants.ErrUnavailable):
		// Denying is the only safe answer without the database; the
		// resolver has already warned about the outage, and the client's
		// next handshake asks again.
		return p.deny(name, "tenant database unavailable", err)
	default:
		// The handshake was abandoned: not a decision about the host.
		return fmt.Errorf("checking certificate permission for %s: %w", name, err)
	}
}

func (p *Permission) deny(name, reason string, cause error) error {
	if c := p.logger.Check(zapcore.DebugLevel, "denied on-demand certificate"); c != nil {
		c.Write(zap.String("host", name), zap.String("reason", reason))
	}
	if cause != nil {
		return fmt.Errorf("%w: %s: %s: %w", caddytls.ErrPermissionDenied, name, reason, cause)
	}
	return fmt.Errorf("%w: %s: %s", caddytls.ErrPermissionDenied, name, reason)
}

// Interface guards
var (
	_ caddytls.OnDemandPermission = (*Permission)(nil)
	_ caddy.Provisioner           = (*Permission)(nil)
	_ caddyfile.Unmarshaler       = (*Permission)(nil)
)
