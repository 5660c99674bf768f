package multitenant

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/stale"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// DefaultPageAfter is how long a browser navigation waits for a starting
// site before it gets the "starting" page instead.
const DefaultPageAfter = 2 * time.Second

// Handler resolves the request's host to a site, makes sure the site's
// container runs (starting it if needed) and hands its address to the
// `tenant` upstream source of the reverse_proxy that follows. Requests for
// unknown hosts, suspended sites, sites still starting or failing to start
// get a page of their own instead. A site that serves stale (its
// template's or its own serve_stale setting) answers a cacheable GET
// while it is not running with its last good response, if one is kept,
// and starts in the background (see ServeStaleConfig).
//
// It sets the placeholders {tenant.site_id}, {tenant.subdomain},
// {tenant.customer_id} and {tenant.upstream}.
//
// Caddyfile (usually through tenant_proxy, which also sets up the proxy):
//
//	tenant [<matcher>] {
//		page_after <duration>
//		pages_dir  <directory>
//		stay_asleep { … }      # see StayAsleep
//	}
type Handler struct {
	// PageAfter is how long a browser navigation (a GET accepting HTML)
	// waits for a starting site before it is shown the self-refreshing
	// "starting" page. Other clients wait up to the app's start_timeout.
	// Default: 2s.
	PageAfter caddy.Duration `json:"page_after,omitempty"`

	// PagesDir is a directory whose not_found.html, suspended.html,
	// starting.html, error.html and unavailable.html (each optional)
	// replace the built-in pages. Default: none (built-in pages).
	PagesDir string `json:"pages_dir,omitempty"`

	// StayAsleep names the requests (uptime monitors, crawlers,
	// /robots.txt, /favicon.ico) that do not wake a stopped site and are
	// no activity of a running one. Default: on, with the default lists
	// (see StayAsleep).
	StayAsleep *StayAsleep `json:"stay_asleep,omitempty"`

	// platform is captured at Provision: a request of this config may
	// outlive it (a cold start past the grace period of a reload).
	platform *platform
	pages    pageSet
	quiet    *quietRequests
	logger   *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tenant",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision loads the tenants app and the pages.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.PageAfter < 0 {
		return errors.New("page_after: must not be negative")
	}
	if h.PageAfter == 0 {
		h.PageAfter = caddy.Duration(DefaultPageAfter)
	}
	app, err := tenantsApp(ctx, "the tenant handler")
	if err != nil {
		return err
	}
	h.platform = app.platform
	if h.quiet, err = h.StayAsleep.provision(); err != nil {
		return err
	}
	h.pages, err = loadPages(h.PagesDir)
	return err
}

// ServeHTTP routes the request to its site.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (err error) {
	began := time.Now()
	p := h.platform
	route, err := p.resolver.Resolve(r.Context(), r.Host)
	switch {
	case err == nil && route.Routable():
	case err == nil, errors.Is(err, tenants.ErrUnknownHost):
		return h.pages.serve(w, r, pageNotFound, http.StatusNotFound, 0)
	case errors.Is(err, tenants.ErrUnavailable):
		return h.pages.serve(w, r, pageUnavailable, http.StatusServiceUnavailable, 5)
	default:
		return err // the client went away
	}

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	var upstream string
	repl.Map(func(key string) (any, bool) {
		switch key {
		case "tenant.site_id":
			return route.SiteID, true
		case "tenant.subdomain":
			return route.Subdomain, true
		case "tenant.customer_id":
			return route.CustomerID, true
		case "tenant.upstream":
			return upstream, true
		}
		return nil, false
	})

	if !route.Serving() {
		return h.pages.serve(w, r, pageSuspended, http.StatusServiceUnavailable, 0)
	}

	// Begin before anything else: the idle reaper never stops a site with
	// a request in flight. A monitor's or crawler's is no activity: it
	// does not keep the site awake.
	quiet := h.quiet.matches(r)
	var end func()
	if quiet {
		end = p.prov.BeginPassive(route.SiteID)
	} else {
		end = p.prov.Begin(route.SiteID)
	}
	defer end()

	if r.URL.Path == readyPath {
		if _, running := p.prov.Upstream(route.SiteID); running {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return h.pages.serve(w, r, pageStarting, http.StatusServiceUnavailable, 2)
	}

	// The site's figures count every answer from here on, whoever gives
	// it (the site, the proxy, a page of ours while it starts), by the
	// status the client got; the readiness polling of the starting page
	// above is not the site's.
	upgrade := isUpgrade(r)
	sw := takeStatusWriter(w, upgrade)
	w = sw
	defer func() {
		p.figures.Site(route.SiteID).Observe(sw.statusOf(err), sw.took(began))
		if !upgrade {
			sw.release()
		}
	}()

	upstream, running := p.prov.Upstream(route.SiteID)
	if !running && quiet {
		return h.quiet.serve(w, r)
	}
	if !running && route.ServeStale() {
		if resp, ok := p.stale.lookup(r, route); ok {
			p.stale.startInBackground(p.policy.spec(route))
			return serveStale(w, resp)
		}
	}
	if !running {
		var handled bool
		upstream, handled, err = h.coldStart(w, r, route)
		if handled || err != nil {
			return err
		}
	}
	caddyhttp.SetVar(r.Context(), upstreamVar, upstream)
	caddyhttp.SetVar(r.Context(), routeVar, route)
	if quiet {
		caddyhttp.SetVar(r.Context(), quietVar, true)
	}

	if upgrade {
		endUpgraded := p.prov.BeginUpgraded(route.SiteID)
		defer endUpgraded()
	} else if route.ServeStale() && stale.StorableRequest(r) {
		return p.stale.record(w, r, route, next)
	}
	return next.ServeHTTP(w, r)
}

// coldStart starts the site's container and waits for it: a browser
// navigation for page_after at most (then it gets the starting page, and
// the start goes on), any other client for start_timeout. handled is true
// when a page was written instead.
func (h *Handler) coldStart(w http.ResponseWriter, r *http.Request, route *tenants.Route) (upstream string, handled bool, err error) {
	p := h.platform
	wait := p.settings.startTimeout
	navigation := isNavigation(r)
	if navigation && time.Duration(h.PageAfter) < wait {
		wait = time.Duration(h.PageAfter)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	upstream, err = p.prov.Ensure(ctx, p.policy.spec(route))
	if err == nil {
		return upstream, false, nil
	}
	if r.Context().Err() != nil {
		return "", true, r.Context().Err() // the client went away; the start goes on
	}

	var startErr *provisioner.StartError
	switch {
	case errors.Is(err, context.DeadlineExceeded) && navigation:
		return "", true, h.pages.serve(w, r, pageStarting, http.StatusServiceUnavailable, 2)
	case errors.Is(err, context.DeadlineExceeded):
		h.logger.Warn("site did not start in time", zap.String("host", route.Host), zap.String("site_id", route.SiteID), zap.Duration("waited", wait))
		return "", true, h.pages.serve(w, r, pageUnavailable, http.StatusServiceUnavailable, 5)
	case errors.Is(err, provisioner.ErrEngineUnavailable):
		return "", true, h.pages.serve(w, r, pageUnavailable, http.StatusServiceUnavailable, 5)
	case errors.Is(err, provisioner.ErrCapacity):
		h.logger.Warn("no capacity to start site", zap.String("host", route.Host), zap.String("site_id", route.SiteID))
		return "", true, h.pages.serve(w, r, pageUnavailable, http.StatusServiceUnavailable, 10)
	case errors.As(err, &startErr):
		if c := h.logger.Check(zapcore.ErrorLevel, "site failed to start"); c != nil {
			c.Write(zap.String("host", route.Host), zap.String("site_id", route.SiteID),
				zap.String("reason", startErr.Reason), zap.Int("exit_code", startErr.ExitCode),
				zap.String("log_tail", startErr.LogTail), zap.Error(startErr.Err))
		}
		return "", true, h.pages.serve(w, r, pageError, http.StatusBadGateway, retryAfter(p.prov.Status(route.SiteID).RetryAfter))
	default:
		h.logger.Error("starting site", zap.String("host", route.Host), zap.String("site_id", route.SiteID), zap.Error(err))
		return "", true, h.pages.serve(w, r, pageError, http.StatusBadGateway, 0)
	}
}

// retryAfter turns a retry time into whole seconds from now, at least 1.
func retryAfter(at time.Time) int {
	if at.IsZero() {
		return 0
	}
	return max(1, int(math.Ceil(time.Until(at).Seconds())))
}

// isNavigation reports whether r looks like a browser loading a page,
// which is better served a "starting" page than a long wait.
func isNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") && !isUpgrade(r)
}

// isUpgrade reports whether r asks for a protocol upgrade (WebSocket over
// HTTP/1.1, or HTTP/2's extended CONNECT), which holds a connection to the
// site open as long as it lasts.
func isUpgrade(r *http.Request) bool {
	if r.ProtoMajor >= 2 {
		return r.Method == http.MethodConnect && r.Header.Get(":protocol") != ""
	}
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for token := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "upgrade") {
				return true
			}
		}
	}
	return false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
