package multitenant

import (
	"encoding/json"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("tenant", parseTenant)
	httpcaddyfile.RegisterDirective("tenant_proxy", parseTenantProxy)
	httpcaddyfile.RegisterDirectiveOrder("tenant", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("tenant_proxy", httpcaddyfile.Before, "reverse_proxy")
}

// parseTenant sets up the tenant handler alone; see Handler for syntax.
func parseTenant(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if err := h.unmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalOption reads one of the handler's own subdirectives; ok is
// false when the current token is not one of them.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser) error {
	switch d.Val() {
	case "page_after":
		return durationArg(d, &h.PageAfter)
	case "pages_dir":
		return oneArg(d, &h.PagesDir)
	}
	return d.Errf("unrecognized tenant option %q", d.Val())
}

// DefaultStreamCloseDelay is how long tenant_proxy keeps upgraded
// connections (WebSockets) of an unloaded config open after a reload,
// unless stream_close_delay says otherwise.
const DefaultStreamCloseDelay = 10 * time.Minute

// DefaultRetries is how often tenant_proxy retries a failed attempt,
// unless lb_retries or lb_try_duration says otherwise.
const DefaultRetries = 2

// parseTenantProxy sets up the tenant handler followed by a reverse_proxy
// whose upstreams are the tenant's container, the way php_fastcgi wraps
// reverse_proxy. It takes the tenant handler's subdirectives and every
// reverse_proxy subdirective:
//
// Unlike plain reverse_proxy, stream_close_delay defaults to 10m, so a
// config reload does not cut every tenant's WebSockets at once, and a
// failed attempt is retried (lb_retries defaults to 2 when neither it nor
// lb_try_duration is set): before a retry the site is ensured again, so a
// container that another node recreates is waited for instead of failing
// the request.
//
//	tenant_proxy [<matcher>] {
//		page_after <duration>
//		pages_dir  <directory>
//		# any reverse_proxy subdirective, e.g.
//		header_up X-Tenant {tenant.site_id}
//		transport http {
//			dial_timeout 2s
//		}
//	}
func parseTenantProxy(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	userMatcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	// The remaining tokens are read twice: first for our own options,
	// which are deleted, then by reverse_proxy's own unmarshaler.
	dispenser := h.NewFromNextSegment()
	tenantHandler := new(Handler)
	for dispenser.Next() {
		for dispenser.NextBlock(0) {
			if dispenser.Nesting() != 1 {
				continue
			}
			switch dispenser.Val() {
			case "page_after", "pages_dir":
				if err := tenantHandler.unmarshalOption(dispenser); err != nil {
					return nil, err
				}
				dispenser.DeleteN(2)
			case "to", "dynamic":
				return nil, dispenser.Errf("tenant_proxy chooses its upstream itself; %s is not allowed", dispenser.Val())
			}
		}
	}
	dispenser.Reset()

	rpHandler := &reverseproxy.Handler{
		DynamicUpstreamsRaw: caddyconfig.JSONModuleObject(Upstreams{}, "source", "tenant", nil),
	}
	dispenser.Next() // directive name
	if err := rpHandler.UnmarshalCaddyfile(dispenser); err != nil {
		return nil, err
	}
	if err := rpHandler.FinalizeUnmarshalCaddyfile(h); err != nil {
		return nil, err
	}
	// A config reload would otherwise cut every tenant's WebSockets at
	// once; tenants come and go without reloads, so reloads are operator
	// changes that open connections should outlive where they can.
	if rpHandler.StreamCloseDelay == 0 {
		rpHandler.StreamCloseDelay = caddy.Duration(DefaultStreamCloseDelay)
	}
	if rpHandler.LoadBalancing == nil {
		rpHandler.LoadBalancing = new(reverseproxy.LoadBalancing)
	}
	if lb := rpHandler.LoadBalancing; lb.Retries == 0 && lb.TryDuration == 0 {
		lb.Retries = DefaultRetries
	}

	route := caddyhttp.Route{
		HandlersRaw: []json.RawMessage{
			caddyconfig.JSONModuleObject(tenantHandler, "handler", "tenant", nil),
			caddyconfig.JSONModuleObject(rpHandler, "handler", "reverse_proxy", nil),
		},
	}
	if userMatcherSet != nil {
		route.MatcherSetsRaw = []caddy.ModuleMap{userMatcherSet}
	}
	return []httpcaddyfile.ConfigValue{{Class: "route", Value: route}}, nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
