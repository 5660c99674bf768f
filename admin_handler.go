package multitenant

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/agistaffers/caddy-multitenant/admin"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
	"github.com/agistaffers/caddy-multitenant/ui"
)

func init() {
	caddy.RegisterModule(AdminHandler{})
}

// AdminHandler serves the platform's admin REST API under /api/v1 (see
// package admin) and passes every other request on to the next handler.
// It needs the tenants app.
//
// Everything it serves, and everything it passes on, carries the admin
// host's security headers (admin.SetSecurityHeaders): no framing, no
// referrer, no sniffing, and a Content-Security-Policy that loads nothing
// for the API and only the site's own resources for pages. Failed API
// authentications are limited per client IP as Caddy resolves it (see
// the server's trusted_proxies).
//
// Caddyfile:
//
//	admin.example.com {
//		tenant_admin {
//			max_body     1MiB                        # largest request body
//			max_upload   100MiB                      # largest build context of a deploy
//			public_ips   203.0.113.10 2001:db8::10   # custom domains pointing here verify
//			cname_target edge.example.com            # custom domains CNAMEd to this verify
//			dns_resolver 127.0.0.1:53                # ask this DNS server when verifying
//			session_idle 2h                          # web UI sessions unused this long end
//			session_lifetime 24h                     # web UI sessions end this long after sign-in
//			no_ui                                    # serve the API only
//		}
//	}
type AdminHandler struct {
	// MaxBody is the largest request body the API reads, in bytes; larger
	// ones are refused with 413. Default: 1048576 (1 MiB).
	MaxBody int64 `json:"max_body,omitempty"`

	// MaxUpload is the largest build context (tar.gz) a deploy from source
	// takes, in bytes; larger ones are refused with 413. Default:
	// 104857600 (100 MiB).
	MaxUpload int64 `json:"max_upload,omitempty"`

	// PublicIPs are the platform's public addresses: a custom domain whose
	// A/AAAA records all point at them counts as verified. Default: none.
	PublicIPs []string `json:"public_ips,omitempty"`

	// CNAMETarget is the hostname customers CNAME their domains to; a
	// custom domain that is a CNAME of it counts as verified. Default: none.
	CNAMETarget string `json:"cname_target,omitempty"`

	// DNSResolver is the DNS server (host:port) domain verification asks,
	// instead of the system's resolver. Default: none (the system's).
	DNSResolver string `json:"dns_resolver,omitempty"`

	// SessionIdle ends a web UI session unused this long. Default: 2h.
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`

	// SessionLifetime ends a web UI session this long after sign-in,
	// however used. Default: 24h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// NoUI turns the web UI off: requests outside the API go on to the
	// next handler. Default: false (the UI is served at /).
	NoUI bool `json:"no_ui,omitempty"`

	api *admin.API
	ui  *ui.UI
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
	if h.MaxUpload < 0 {
		return errors.New("max_upload: must not be negative")
	}
	v := &manage.Verifier{CNAMETarget: h.CNAMETarget}
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
		v.Resolver = manage.NewResolver(h.DNSResolver)
	}
	app, err := tenantsApp(ctx, "tenant_admin")
	if err != nil {
		return err
	}
	svc := app.platform.service(v, ctx.Logger())
	h.api = admin.New(admin.Config{
		Service:   svc,
		MaxBody:   h.MaxBody,
		MaxUpload: h.MaxUpload,
		ClientIP:  clientIP,
		Logger:    ctx.Logger(),
	})
	if h.SessionIdle < 0 || h.SessionLifetime < 0 {
		return errors.New("session_idle, session_lifetime: must not be negative")
	}
	if h.NoUI {
		return nil
	}
	platform, err := newUIPlatform(app, ctx.Storage())
	if err != nil {
		return fmt.Errorf("web ui: %w", err)
	}
	h.ui, err = ui.New(ui.Config{
		Service:         svc,
		Platform:        platform,
		SessionIdle:     time.Duration(h.SessionIdle),
		SessionLifetime: time.Duration(h.SessionLifetime),
		MaxUpload:       h.MaxUpload,
		ClientIP:        clientIP,
		Logger:          ctx.Logger().Named("ui"),
	})
	return err
}

// Cleanup stops what the web UI runs on its own (deploys started from
// the browser) when the config is unloaded.
func (h *AdminHandler) Cleanup() error {
	if h.ui != nil {
		h.ui.Close()
	}
	return nil
}

// ServeHTTP serves /api/v1 (and, with billing, /webhooks/stripe), and
// the web UI at every other path (or, with no_ui, passes it to next).
func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.api.Handles(r.URL.Path) {
		admin.SetSecurityHeaders(w.Header(), admin.PolicyAPI)
		h.api.ServeHTTP(w, r)
		return nil
	}
	admin.SetSecurityHeaders(w.Header(), admin.PolicyPages)
	if h.ui != nil {
		h.ui.ServeHTTP(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// clientIP is the client address Caddy resolved for r: the forwarded one
// when the request came through a trusted proxy.
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// Interface guards
var (
	_ caddy.Provisioner           = (*AdminHandler)(nil)
	_ caddy.CleanerUpper          = (*AdminHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*AdminHandler)(nil)
	_ caddyfile.Unmarshaler       = (*AdminHandler)(nil)
)
