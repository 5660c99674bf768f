package multitenant

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddy.RegisterModule(Upstreams{})
}

// Request variables through which the tenant handler hands the site's
// address, and its route, to this upstream source.
const (
	upstreamVar = "tenant.upstream"
	routeVar    = "tenant.route"
	quietVar    = "tenant.quiet" // set for a request that must not wake its site (stay_asleep)
)

// Upstreams is the dynamic upstream source of reverse_proxy that sends a
// request to the container the tenant handler resolved (and, if needed,
// started) for it. It must run after the tenant handler in the same route;
// `tenant_proxy` sets both up.
//
// When an attempt fails and reverse_proxy retries (tenant_proxy retries by
// default), the source tells the provisioner the upstream failed and
// ensures the site again before the retry: a container that another node
// is recreating is waited for, under the site's lock, instead of failing
// the request.
//
// Caddyfile, inside reverse_proxy:
//
//	dynamic tenant
type Upstreams struct {
	platform *platform // captured at Provision, like the handler's
}

// CaddyModule returns the Caddy module information.
func (Upstreams) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.tenant",
		New: func() caddy.Module { return new(Upstreams) },
	}
}

var errNoTenantUpstream = errors.New("no tenant upstream for this request: the tenant handler must run before reverse_proxy")

// Provision takes the platform of the tenants app.
func (u *Upstreams) Provision(ctx caddy.Context) error {
	app, err := tenantsApp(ctx, "the tenant upstream source")
	if err != nil {
		return err
	}
	u.platform = app.platform
	return nil
}

// GetUpstreams returns the upstream the tenant handler resolved, and the
// site's other replicas with it when the autoscaler runs several:
// reverse_proxy balances over them with its own selection policy, health
// checks and retries.
func (u *Upstreams) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	addr, _ := caddyhttp.GetVar(r.Context(), upstreamVar).(string)
	if addr == "" {
		return nil, errNoTenantUpstream
	}
	// Fresh Upstreams each time: reverse_proxy writes to the ones it is
	// given, so sharing them across concurrent requests would race.
	if route, _ := caddyhttp.GetVar(r.Context(), routeVar).(*tenants.Route); route != nil && u.platform != nil {
		// Only while addr is one of them: a retry's ResetCache may have
		// set an upstream of a replacement the replicas are not yet of.
		if all := u.platform.prov.Upstreams(route.SiteID); len(all) > 1 && slices.Contains(all, addr) {
			ups := make([]*reverseproxy.Upstream, len(all))
			for i, a := range all {
				ups[i] = &reverseproxy.Upstream{Dial: a}
			}
			return ups, nil
		}
	}
	return []*reverseproxy.Upstream{{Dial: addr}}, nil
}

// ResetCache runs before reverse_proxy retries a failed attempt: the
// failed upstream is reported, and the site ensured again (waiting, as a
// cold start does, up to start_timeout); the retry gets the upstream that
// returns. An error leaves the request's upstream as it was.
func (u *Upstreams) ResetCache(r *http.Request) error {
	route, _ := caddyhttp.GetVar(r.Context(), routeVar).(*tenants.Route)
	failed, _ := caddyhttp.GetVar(r.Context(), upstreamVar).(string)
	if route == nil || failed == "" {
		return errNoTenantUpstream
	}
	p := u.platform
	p.prov.Unreachable(route.SiteID, failed)
	if quiet, _ := caddyhttp.GetVar(r.Context(), quietVar).(bool); quiet {
		// A monitor's or crawler's retry takes a container another node
		// started meanwhile, but never starts one.
		upstream, running := p.prov.Upstream(route.SiteID)
		if !running {
			return errNoTenantUpstream
		}
		caddyhttp.SetVar(r.Context(), upstreamVar, upstream)
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.settings.startTimeout)
	defer cancel()
	upstream, err := p.prov.Ensure(ctx, p.policy.spec(route))
	if err != nil {
		return err
	}
	caddyhttp.SetVar(r.Context(), upstreamVar, upstream)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner                  = (*Upstreams)(nil)
	_ reverseproxy.UpstreamSource        = (*Upstreams)(nil)
	_ reverseproxy.CachingUpstreamSource = (*Upstreams)(nil)
	_ caddyfile.Unmarshaler              = (*Upstreams)(nil)
)
