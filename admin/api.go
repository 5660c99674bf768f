// Package admin is the platform's admin HTTP API: a JSON REST API under
// /api/v1 over customers, plans, templates, sites and domains, with site
// actions (start, stop, restart, redeploy, status, logs), custom domain
// verification, the audit log and an OpenAPI 3 description of itself.
//
// It only translates HTTP to and from the admin service (package manage),
// which does every action; it knows nothing of Caddy, SQL or Docker. The
// root package mounts it as the http.handlers.tenant_admin module.
//
// Every request carries "Authorization: Bearer <api key>". GET (and HEAD)
// need a key of read or write scope, everything else a write key. Failed
// authentications are limited per client address (a burst, then 429 with
// Retry-After). Errors have one shape, see Error; every response has an
// X-Request-Id header.
package admin

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Prefix is the path every API route lives under.
const Prefix = "/api/v1"

// Config sets up an API.
type Config struct {
	// Service is the admin service every route calls. Required.
	Service *manage.Service
	// MaxBody is the largest request body read, in bytes. Default: 1 MiB.
	MaxBody int64
	// MaxUpload is the largest build context a deploy takes, in bytes.
	// Default: 100 MiB.
	MaxUpload int64
	// ClientIP returns the address of the client that sent r, as the
	// server resolved it (behind trusted proxies, the forwarded one), for
	// limiting failed authentications per client; "" or a nil ClientIP
	// means the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// API is the admin API's HTTP handler for everything under Prefix.
type API struct {
	cfg     Config
	svc     *manage.Service
	store   *tenants.Store // for authentication only
	mux     *http.ServeMux
	routes  []Route
	log     *zap.Logger
	limiter *authLimiter
}

// Route is one method and path of the API, the path as OpenAPI writes it
// (e.g. /api/v1/sites/{id}).
type Route struct {
	Method, Path string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// New returns the API for cfg.
func New(cfg Config) *API {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	a := &API{cfg: cfg, svc: cfg.Service, store: cfg.Service.Store(), mux: http.NewServeMux(), log: cfg.Logger,
		limiter: newAuthLimiter(AuthBurst, AuthRefill, AuthClients)}
	a.register()
	return a
}

// Routes returns every method and path the API serves.
func (a *API) Routes() []Route { return slices.Clone(a.routes) }

// handle routes method and path to h. The route takes the query
// parameters its operation documents, and no others.
func (a *API) handle(method, path string, h handlerFunc) {
	a.routes = append(a.routes, Route{method, Prefix + strings.TrimSuffix(path, "{$}")})
	params := documentedQuery(method, strings.TrimSuffix(path, "{$}"))
	a.mux.HandleFunc(method+" "+Prefix+path, func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.RawQuery, params)
		if err == nil {
			err = h(w, withQuery(r, q))
		}
		if err != nil {
			writeError(w, r, a.toAPIError(r, err))
		}
	})
}

// documentedQuery returns the query parameters of the operation at
// method and path.
func documentedQuery(method, path string) []string {
	for _, op := range operations {
		if op.method == method && op.path == path {
			return op.query
		}
	}
	return nil
}

func (a *API) register() {
	a.handle("GET", "/{$}", a.index)
	a.handle("GET", "/openapi.json", a.openAPI)

	a.handle("GET", "/customers", a.listCustomers)
	a.handle("POST", "/customers", a.createCustomer)
	a.handle("GET", "/customers/{id}", a.getCustomer)
	a.handle("PATCH", "/customers/{id}", a.patchCustomer)
	a.handle("DELETE", "/customers/{id}", a.deleteCustomer)
	a.handle("POST", "/customers/{id}/checkout", a.checkout)
	a.handle("POST", "/customers/{id}/portal", a.portal)

	a.handle("GET", "/plans", a.listPlans)
	a.handle("POST", "/plans", a.createPlan)
	a.handle("GET", "/plans/{id}", a.getPlan)
	a.handle("PATCH", "/plans/{id}", a.patchPlan)
	a.handle("DELETE", "/plans/{id}", a.deletePlan)

	a.handle("GET", "/templates", a.listTemplates)
	a.handle("POST", "/templates", a.createTemplate)
	a.handle("GET", "/templates/{id}", a.getTemplate)
	a.handle("PATCH", "/templates/{id}", a.patchTemplate)
	a.handle("DELETE", "/templates/{id}", a.deleteTemplate)

	a.handle("GET", "/sites", a.listSites)
	a.handle("POST", "/sites", a.createSite)
	a.handle("GET", "/sites/{id}", a.getSite)
	a.handle("PATCH", "/sites/{id}", a.patchSite)
	a.handle("DELETE", "/sites/{id}", a.deleteSite)
	a.handle("POST", "/sites/{id}/start", a.siteAction("start"))
	a.handle("POST", "/sites/{id}/stop", a.siteAction("stop"))
	a.handle("POST", "/sites/{id}/restart", a.siteAction("restart"))
	a.handle("POST", "/sites/{id}/redeploy", a.siteAction("redeploy"))
	a.handle("GET", "/sites/{id}/status", a.siteStatus)
	a.handle("GET", "/sites/{id}/logs", a.siteLogs)
	a.handle("GET", "/sites/{id}/releases", a.listReleases)
	a.handle("GET", "/sites/{id}/releases/{n}", a.getRelease)
	a.handle("POST", "/sites/{id}/rollback", a.rollback)
	a.handle("POST", "/sites/{id}/deploy", a.deploy)
	a.handle("GET", "/sites/{id}/figures", a.siteFigures)
	a.handle("GET", "/sites/{id}/uptime", a.siteUptime)
	a.handle("GET", "/sites/{id}/prewarms", a.sitePrewarms)
	a.handle("GET", "/sites/{id}/scale-events", a.siteScaleEvents)
	a.handle("GET", "/sites/{id}/domains", a.listSiteDomains)
	a.handle("POST", "/sites/{id}/domains", a.createSiteDomain)

	a.handle("GET", "/domains", a.listDomains)
	a.handle("POST", "/domains", a.createDomain)
	a.handle("GET", "/domains/{id}", a.getDomain)
	a.handle("PATCH", "/domains/{id}", a.patchDomain)
	a.handle("DELETE", "/domains/{id}", a.deleteDomain)
	a.handle("POST", "/domains/{id}/verify", a.verifyDomain)

	a.handle("GET", "/audit", a.listAudit)

	a.handle("GET", "/backups", a.listBackups)
	a.handle("POST", "/backups", a.createBackup)
	a.handle("GET", "/backups/{id}", a.getBackup)
	a.handle("GET", "/backups/{id}/archive", a.downloadBackup)
	a.handle("POST", "/backups/{id}/restore", a.restoreBackup)
	a.handle("GET", "/figures", a.platformFigures)

	// The Stripe webhook authenticates by Stripe's signature, not an API
	// key, so ServeHTTP matches it before authentication.
	a.routes = append(a.routes, Route{http.MethodPost, WebhookPath})
}

// Handles reports whether the API serves path (everything under Prefix).
func Handles(path string) bool {
	return path == Prefix || strings.HasPrefix(path, Prefix+"/")
}

// Handles reports whether this API serves path: everything under Prefix,
// and the Stripe webhook when billing is configured.
func (a *API) Handles(path string) bool {
	return Handles(path) || (path == WebhookPath && a.svc.Billing() != nil)
}

// ServeHTTP authenticates the request, checks its scope and routes it.
// Requests without a valid key get 401 whatever their path, so the API
// reveals nothing to them, not even which routes exist.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = withRequestID(w, r)
	limit := a.cfg.MaxBody
	if isUpload(r) {
		limit = a.cfg.MaxUpload
	}
	if r.ContentLength > limit {
		writeError(w, r, bodyTooLarge(limit))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)

	// Before authentication: Stripe has no API key, its signature is
	// checked instead.
	if r.URL.Path == WebhookPath {
		a.serveWebhook(w, r)
		return
	}

	public := r.URL.Path == Prefix+"/openapi.json" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	if !public {
		key, err := a.authorize(w, r)
		if err != nil {
			writeError(w, r, a.toAPIError(r, err))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), keyCtx{}, key))
	}

	if r.URL.Path == Prefix {
		r.URL.Path += "/" // the index, either way
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		if allow := a.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", r.Method+" is not allowed here; allowed: "+strings.Join(allow, ", ")))
			return
		}
		writeError(w, r, apiErr(http.StatusNotFound, CodeNotFound, "", "no such API route"))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// authorize returns the request's API key if it may make the request. A
// client that failed to authenticate too often is refused before its key
// is looked at; a failure counts against it, nothing else does (a
// database outage is not the client's failure).
func (a *API) authorize(w http.ResponseWriter, r *http.Request) (*tenants.APIKey, error) {
	client := a.client(r)
	if wait := a.limiter.wait(client); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		e := apiErr(http.StatusTooManyRequests, CodeRateLimited, "",
			fmt.Sprintf("too many failed authentications from this address; retry in %d seconds", secs))
		e.retryAfter = secs
		return nil, e
	}
	key, err := a.authenticate(r)
	if err == errUnauthorized {
		a.limiter.fail(client)
		w.Header().Set("WWW-Authenticate", `Bearer realm="tenant_admin"`)
	}
	if err != nil {
		return nil, err
	}
	if !readOnly(r.Method) && key.Scope != tenants.ScopeWrite {
		return nil, apiErr(http.StatusForbidden, CodeForbidden, "", "this API key is read-only")
	}
	return key, nil
}

// client returns the rate-limiting bucket of the request's client.
func (a *API) client(r *http.Request) netip.Prefix {
	if a.cfg.ClientIP != nil {
		if ip := a.cfg.ClientIP(r); ip != "" {
			return clientKey(ip)
		}
	}
	return clientKey(r.RemoteAddr)
}

// allowed returns the methods the request's path is served for.
func (a *API) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}
