package multitenant

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	caddy.RegisterModule(Upstreams{})
}

// upstreamVar is the request variable through which the tenant handler
// hands the site's address to this upstream source.
const upstreamVar = "tenant.upstream"

// Upstreams is the dynamic upstream source of reverse_proxy that sends a
// request to the container the tenant handler resolved (and, if needed,
// started) for it. It must run after the tenant handler in the same route;
// `tenant_proxy` sets both up.
//
// Caddyfile, inside reverse_proxy:
//
//	dynamic tenant
type Upstreams struct{}

// CaddyModule returns the Caddy module information.
func (Upstreams) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.tenant",
		New: func() caddy.Module { return new(Upstreams) },
	}
}

var errNoTenantUpstream = errors.New("no tenant upstream for this request: the tenant handler must run before reverse_proxy")

// GetUpstreams returns the upstream the tenant handler resolved.
func (Upstreams) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	addr, _ := caddyhttp.GetVar(r.Context(), upstreamVar).(string)
	if addr == "" {
		return nil, errNoTenantUpstream
	}
	// A fresh Upstream each time: reverse_proxy writes to the ones it is
	// given, so sharing them across concurrent requests would race.
	return []*reverseproxy.Upstream{{Dial: addr}}, nil
}

// Interface guards
var (
	_ reverseproxy.UpstreamSource = (*Upstreams)(nil)
	_ caddyfile.Unmarshaler       = (*Upstreams)(nil)
)
