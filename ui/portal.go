package ui

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The customer portal: a customer's users see their own sites, and the
// site pages they share with operators (detail, status, logs, actions,
// domains) reach the data through siteScope, which is the customer's
// manage.CustomerScope for them and never the whole service.

func (u *UI) routesPortal() {
	u.cu("GET /{$}", u.portalHome)
}

// siteScope is what the site pages shared by operators and customers'
// users ask of the admin service. manage.CustomerScope has it as it is;
// operators get opScope, the whole service.
type siteScope interface {
	Site(ctx context.Context, ref string) (*manage.Site, error)
	SiteStatus(ctx context.Context, ref string) (*manage.RuntimeStatus, error)
	SiteAction(ctx context.Context, actor, ref, action string) (*manage.RuntimeStatus, error)
	SiteLogs(ctx context.Context, ref string, tail int, follow bool) (io.ReadCloser, error)
	SiteFigures(ctx context.Context, ref string, window, step time.Duration) (*manage.SiteFigures, error)
	SiteUptime(ctx context.Context, ref string, window time.Duration) (*manage.SiteUptime, error)
	SitePrewarms(ctx context.Context, ref string, limit int) ([]manage.Prewarm, error)
	SiteScaling(ctx context.Context, ref string, limit int) (*manage.SiteScaling, error)
	Releases(ctx context.Context, ref string, before, limit int) ([]manage.Release, error)
	Domains(ctx context.Context, siteRef string) ([]manage.Domain, error)
	CreateDomain(ctx context.Context, actor string, in manage.DomainInput) (*manage.Domain, error)
	VerifyDomain(ctx context.Context, actor, ref string) (*manage.VerifyResult, error)
	DeleteDomain(ctx context.Context, actor, ref string) (*tenants.Domain, error)
}

var _ siteScope = (*manage.CustomerScope)(nil)

// opScope is the whole service as siteScope, for operators.
type opScope struct{ s *manage.Service }

func (o opScope) Site(ctx context.Context, ref string) (*manage.Site, error) {
	return o.s.GetSite(ctx, ref)
}

func (o opScope) SiteUptime(ctx context.Context, ref string, window time.Duration) (*manage.SiteUptime, error) {
	return o.s.SiteUptime(ctx, ref, window)
}

func (o opScope) SitePrewarms(ctx context.Context, ref string, limit int) ([]manage.Prewarm, error) {
	return o.s.SitePrewarms(ctx, ref, limit)
}

func (o opScope) SiteScaling(ctx context.Context, ref string, limit int) (*manage.SiteScaling, error) {
	return o.s.SiteScaling(ctx, ref, limit)
}

func (o opScope) Releases(ctx context.Context, ref string, before, limit int) ([]manage.Release, error) {
	return o.s.ListReleases(ctx, ref, before, limit)
}

func (o opScope) SiteStatus(ctx context.Context, ref string) (*manage.RuntimeStatus, error) {
	return o.s.SiteStatus(ctx, ref)
}

func (o opScope) SiteAction(ctx context.Context, actor, ref, action string) (*manage.RuntimeStatus, error) {
	return o.s.SiteAction(ctx, actor, ref, action)
}

func (o opScope) SiteLogs(ctx context.Context, ref string, tail int, follow bool) (io.ReadCloser, error) {
	return o.s.SiteLogs(ctx, ref, tail, follow)
}

func (o opScope) SiteFigures(ctx context.Context, ref string, window, step time.Duration) (*manage.SiteFigures, error) {
	return o.s.SiteFigures(ctx, ref, window, step)
}

func (o opScope) Domains(ctx context.Context, siteRef string) ([]manage.Domain, error) {
	return o.s.AllDomains(ctx, siteRef)
}

func (o opScope) CreateDomain(ctx context.Context, actor string, in manage.DomainInput) (*manage.Domain, error) {
	return o.s.CreateDomain(ctx, actor, in)
}

func (o opScope) VerifyDomain(ctx context.Context, actor, ref string) (*manage.VerifyResult, error) {
	return o.s.VerifyDomain(ctx, actor, ref, false)
}

func (o opScope) DeleteDomain(ctx context.Context, actor, ref string) (*tenants.Domain, error) {
	return o.s.DeleteDomain(ctx, actor, ref)
}

// sites returns what req may reach of the sites: the customer's scope for
// a customer's user, the whole service for an operator.
func (u *UI) sites(req *request) siteScope {
	if req.Scope != nil {
		return req.Scope
	}
	return opScope{u.svc}
}

// portalData is a customer's home: their sites.
type portalData struct {
	Customer   *manage.Customer
	Sites      []manage.Site
	BaseDomain string
}

func (u *UI) portalHome(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	if req.Scope == nil {
		return notFound
	}
	c, err := req.Scope.Customer(ctx)
	if err != nil {
		return err
	}
	sites, err := req.Scope.Sites(ctx)
	if err != nil {
		return err
	}
	d := portalData{Customer: c, Sites: sites, BaseDomain: u.baseDomain()}
	u.render(w, http.StatusOK, "portal", u.view(r, req, "Your sites", "sites", d))
	return nil
}
