// Package ui is the platform's web UI: server-rendered pages for operators
// (every site, customer, template and setting) and for customers' own
// users (their sites, logs, domains and billing), served by tenant_admin
// on the admin host beside the REST API.
//
// It only translates forms and pages to and from the admin service
// (package manage), the same calls the API makes, so a form shows the
// same validation errors the API returns. Customers' users get a
// manage.CustomerScope, never the service, so what they see and do is
// scoped in the service layer.
//
// Pages are html/template documents embedded in the binary, with one
// hand-written stylesheet and one small script that only enhances (live
// status and logs over server-sent events): every page works without
// JavaScript, and nothing is fetched from anywhere but the admin host.
package ui

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Config sets up a UI.
type Config struct {
	// Service is the admin service every page calls. Required.
	Service *manage.Service
	// Platform tells the settings, overview and certificate pages what
	// only the running server knows. Optional.
	Platform Platform
	// SessionIdle ends a session unused this long. Default: 2h.
	SessionIdle time.Duration
	// SessionLifetime ends a session this long after sign-in, however
	// used. Default: 24h.
	SessionLifetime time.Duration
	// Issuer names the platform in authenticator apps. Default:
	// caddy-multitenant.
	Issuer string
	// MaxUpload is the largest build context the deploy form takes, in
	// bytes. Default: 100 MiB.
	MaxUpload int64
	// ClientIP returns the client address of r as the server resolved it;
	// nil means the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// Platform is what the UI asks of the running server.
type Platform interface {
	// Settings returns the effective tenants configuration, for reading.
	Settings() any
	// Health checks the platform's parts (database, engine, listener).
	Health(ctx context.Context) []Check
	// Certificates lists the certificates in storage.
	Certificates(ctx context.Context) ([]Certificate, error)
	// MaxRunning is the most containers that may run at once (0: no
	// limit).
	MaxRunning() int
}

// Check is the health of one part of the platform.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Certificate is a certificate kept in storage.
type Certificate struct {
	Host     string
	Issuer   string
	NotAfter time.Time
}

// Defaults of Config.
const (
	DefaultSessionIdle     = 2 * time.Hour
	DefaultSessionLifetime = 24 * time.Hour
	DefaultIssuer          = "caddy-multitenant"
	DefaultMaxUpload       = 100 << 20
)

// UI is the web UI's HTTP handler.
type UI struct {
	cfg      Config
	svc      *manage.Service
	store    *tenants.Store // sessions only
	log      *zap.Logger
	pages    pageSet
	limiter  loginLimiter
	operator *http.ServeMux // what operators may reach
	customer *http.ServeMux // what a customer's users may reach
	public   *http.ServeMux // what anyone may reach: sign-in, invitations, static files
	builds   *builds        // deploys started from the browser (builds.go)
}

// New returns the UI for cfg.
func New(cfg Config) (*UI, error) {
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	pages, err := loadPages()
	if err != nil {
		return nil, err
	}
	u := &UI{cfg: cfg, svc: cfg.Service, store: cfg.Service.Store(), log: cfg.Logger, pages: pages,
		limiter: newLoginLimiter(), operator: http.NewServeMux(), customer: http.NewServeMux(), public: http.NewServeMux()}
	u.routes()
	return u, nil
}

// routes registers every page. Each area of the UI registers its own in
// its file; op and cu take handlers that need a signed-in operator or
// customer's user, pub those anyone may reach.
func (u *UI) routes() {
	u.routesStatic()
	u.routesAuth()
	u.routesOverview()
	u.routesCustomers()
	u.routesPlans()
	u.routesTemplates()
	u.routesSites()
	u.routesDomains()
	u.routesReleases()
	u.routesBackups()
	u.routesCertificates()
	u.routesBilling()
	u.routesAudit()
	u.routesKeys()
	u.routesUsers()
	u.routesSettings()
	u.routesPortal()
}

// op registers a page for operators.
func (u *UI) op(pattern string, h handler) { u.operator.Handle(pattern, u.wrap(h)) }

// cu registers a page for customers' users.
func (u *UI) cu(pattern string, h handler) { u.customer.Handle(pattern, u.wrap(h)) }

// both registers a page for operators and customers' users alike (the
// handler looks at req.Scope).
func (u *UI) both(pattern string, h handler) {
	u.op(pattern, h)
	u.cu(pattern, h)
}

// pub registers a page anyone may reach.
func (u *UI) pub(pattern string, h handler) { u.public.Handle(pattern, u.wrapPublic(h)) }

// ServeHTTP serves the page of r: public pages to anyone, every other to a
// signed-in user of the right kind, and the sign-in page to anyone else.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := u.public.Handler(r); pattern != "" {
		u.public.ServeHTTP(w, r)
		return
	}
	req, err := u.session(r)
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	if req == nil || !req.Session.Complete {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(safeNext(r.URL.RequestURI())), http.StatusSeeOther)
			return
		}
		u.renderError(w, r, nil, errSignedOut)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), requestKey{}, req))
	if req.User.Operator() {
		u.operator.ServeHTTP(w, r)
		return
	}
	u.customer.ServeHTTP(w, r)
}
