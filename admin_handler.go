package multitenant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	cerrdefs "github.com/containerd/errdefs"

	"github.com/agistaffers/caddy-multitenant/admin"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddy.RegisterModule(AdminHandler{})
	httpcaddyfile.RegisterHandlerDirective("tenant_admin", parseTenantAdmin)
	httpcaddyfile.RegisterDirectiveOrder("tenant_admin", httpcaddyfile.Before, "reverse_proxy")
}

// AdminHandler serves the platform's admin REST API under /api/v1 (see
// package admin) and passes every other request on to the next handler.
// It needs the tenants app.
//
// Caddyfile:
//
//	admin.example.com {
//		tenant_admin {
//			max_body     1MiB                        # largest request body
//			public_ips   203.0.113.10 2001:db8::10   # custom domains pointing here verify
//			cname_target edge.example.com            # custom domains CNAMEd to this verify
//			dns_resolver 127.0.0.1:53                # ask this DNS server when verifying
//		}
//	}
type AdminHandler struct {
	// MaxBody is the largest request body the API reads, in bytes; larger
	// ones are refused with 413. Default: 1048576 (1 MiB).
	MaxBody int64 `json:"max_body,omitempty"`

	// PublicIPs are the platform's public addresses: a custom domain whose
	// A/AAAA records all point at them counts as verified. Default: none.
	PublicIPs []string `json:"public_ips,omitempty"`

	// CNAMETarget is the hostname customers CNAME their domains to; a
	// custom domain that is a CNAME of it counts as verified. Default: none.
	CNAMETarget string `json:"cname_target,omitempty"`

	// DNSResolver is the DNS server (host:port) domain verification asks,
	// instead of the system's resolver. Default: none (the system's).
	DNSResolver string `json:"dns_resolver,omitempty"`

	api *admin.API
}

// CaddyModule returns the Caddy module information.
func (AdminHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tenant_admin",
		New: func() caddy.Module { return new(AdminHandler) },
	}
}

// Provision wires the API to the tenants app's store and provisioner.
func (h *AdminHandler) Provision(ctx caddy.Context) error {
	if h.MaxBody < 0 {
		return errors.New("max_body: must not be negative")
	}
	v := &admin.Verifier{CNAMETarget: h.CNAMETarget}
	for _, s := range h.PublicIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("public_ips: %q is not an IP address", s)
		}
		v.PublicIPs = append(v.PublicIPs, ip)
	}
	if h.CNAMETarget != "" {
		if _, err := tenants.NormalizeHost(h.CNAMETarget); err != nil {
			return fmt.Errorf("cname_target: %q is not a hostname", h.CNAMETarget)
		}
	}
	if h.DNSResolver != "" {
		if _, _, err := net.SplitHostPort(h.DNSResolver); err != nil {
			return fmt.Errorf("dns_resolver: %q is not host:port", h.DNSResolver)
		}
		v.Resolver = admin.NewResolver(h.DNSResolver)
	}
	app, err := tenantsApp(ctx, "tenant_admin")
	if err != nil {
		return err
	}
	p := app.platform
	h.api = admin.New(admin.Config{
		Store:    p.store,
		Runtime:  &adminRuntime{p: p},
		Verifier: v,
		Billing:  p.billing,
		MaxBody:  h.MaxBody,
		Logger:   ctx.Logger(),
	})
	return nil
}

// ServeHTTP serves /api/v1 (and, with billing, /webhooks/stripe) and
// passes anything else to next.
func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.api.Handles(r.URL.Path) {
		h.api.ServeHTTP(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

func parseTenantAdmin(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(AdminHandler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens; see
// AdminHandler for the syntax.
func (h *AdminHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "max_body":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := parseSize(s)
			if err != nil {
				return d.Errf("max_body: %v", err)
			}
			h.MaxBody = n
		case "public_ips":
			ips := d.RemainingArgs()
			if len(ips) == 0 {
				return d.Err("public_ips: expected at least one address")
			}
			h.PublicIPs = append(h.PublicIPs, ips...)
		case "cname_target":
			if err := oneArg(d, &h.CNAMETarget); err != nil {
				return err
			}
		case "dns_resolver":
			if err := oneArg(d, &h.DNSResolver); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized tenant_admin option %q", d.Val())
		}
	}
	return nil
}

// parseSize reads a byte size: a number with an optional unit, B, KB,
// KiB, MB, MiB, GB or GiB.
func parseSize(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 1 {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512KiB or 1MiB", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "kib": 1 << 10, "mb": 1e6, "mib": 1 << 20, "gb": 1e9, "gib": 1 << 30}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q", s, unit)
	}
	return int64(f * mult), nil
}

// adminRuntime is the admin API's view of the platform's provisioner. It
// holds the platform, not the app: a request (a log stream above all)
// may outlive the config that took it.
type adminRuntime struct {
	p *platform
}

func (rt *adminRuntime) prov() *provisioner.Provisioner { return rt.p.prov }

// spec builds the site's container spec from the store.
func (rt *adminRuntime) spec(ctx context.Context, siteID string) (provisioner.Spec, error) {
	return rt.p.policy.siteSpec(ctx, rt.p.store, siteID)
}

func (rt *adminRuntime) Start(ctx context.Context, siteID string) (string, error) {
	s, err := rt.spec(ctx, siteID)
	if err != nil {
		return "", err
	}
	upstream, err := rt.prov().Ensure(ctx, s)
	return upstream, runtimeErr(err)
}

func (rt *adminRuntime) Stop(ctx context.Context, siteID string) error {
	return rt.prov().StopSite(ctx, siteID)
}

func (rt *adminRuntime) Restart(ctx context.Context, siteID string) (string, error) {
	s, err := rt.spec(ctx, siteID)
	if err != nil {
		return "", err
	}
	if err := rt.prov().StopSite(ctx, siteID); err != nil {
		return "", err
	}
	upstream, err := rt.prov().Ensure(ctx, s)
	return upstream, runtimeErr(err)
}

func (rt *adminRuntime) Redeploy(ctx context.Context, siteID string) (string, error) {
	s, err := rt.spec(ctx, siteID)
	if err != nil {
		return "", err
	}
	upstream, err := rt.prov().Recreate(ctx, s)
	return upstream, runtimeErr(err)
}

func (rt *adminRuntime) Remove(ctx context.Context, siteID string, purge bool) error {
	return rt.prov().RemoveSite(ctx, siteID, purge)
}

func (rt *adminRuntime) Status(siteID string) admin.RuntimeStatus {
	return adminStatus(rt.prov().Status(siteID))
}

func (rt *adminRuntime) Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error) {
	rc, err := rt.prov().Logs(ctx, siteID, tail, follow)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %v", admin.ErrNoContainer, err)
	}
	return rc, err
}

func (rt *adminRuntime) HostLimits(ctx context.Context) (tenants.Limits, error) {
	host, err := rt.prov().Host(ctx)
	return tenants.Limits{MemoryBytes: host.MemoryBytes, NanoCPUs: host.NanoCPUs()}, err
}

// runtimeErr marks the provisioner's start failures for the API.
func runtimeErr(err error) error {
	var se *provisioner.StartError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, provisioner.ErrCapacity):
		return fmt.Errorf("%w: %v", admin.ErrNoCapacity, err)
	case errors.As(err, &se), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", admin.ErrStartFailed, err)
	}
	return err
}

func adminStatus(s provisioner.SiteRuntime) admin.RuntimeStatus {
	return admin.RuntimeStatus{
		SiteID:        s.SiteID,
		State:         string(s.State),
		ContainerID:   s.ContainerID,
		Upstream:      s.Upstream,
		LastStartedAt: timeOrNil(s.LastStart),
		LastStoppedAt: timeOrNil(s.LastStop),
		LastActiveAt:  timeOrNil(s.LastActivity),
		InFlight:      s.InFlight,
		Upgraded:      s.Upgraded,
		Error:         s.Error,
		RetryAfter:    timeOrNil(s.RetryAfter),
	}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Interface guards
var (
	_ caddy.Provisioner           = (*AdminHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*AdminHandler)(nil)
	_ caddyfile.Unmarshaler       = (*AdminHandler)(nil)
	_ admin.Runtime               = (*adminRuntime)(nil)
)
