package manage

import (
	"context"
	"io"
	"time"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// CustomerScope is the admin service as one customer's own users see it:
// their sites, their domains, their billing, and nothing else. Every
// method checks that what a reference names belongs to the customer
// before acting, and answers NotFound when it does not, the same answer
// as for what does not exist, so ids of other customers' sites cannot
// even be probed. It is for the customer portal of the web UI; operators
// use the Service itself.
type CustomerScope struct {
	s          *Service
	customerID string
}

// ForCustomer returns the service scoped to the customer with id.
func (s *Service) ForCustomer(customerID string) *CustomerScope {
	return &CustomerScope{s: s, customerID: customerID}
}

// CustomerID is the id of the customer the scope serves.
func (c *CustomerScope) CustomerID() string { return c.customerID }

// Customer returns the scope's customer.
func (c *CustomerScope) Customer(ctx context.Context) (*Customer, error) {
	return c.s.GetCustomer(ctx, c.customerID)
}

// Sites returns the customer's sites.
func (c *CustomerScope) Sites(ctx context.Context) ([]Site, error) {
	return c.s.AllSites(ctx, SiteFilter{Customer: c.customerID})
}

// site returns the site ref names if the customer owns it.
func (c *CustomerScope) site(ctx context.Context, ref string) (*tenants.Site, error) {
	site, err := c.s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if site.CustomerID != c.customerID {
		return nil, &Error{Code: NotFound, Message: noSuch("site", ref)}
	}
	return site, nil
}

// domain returns the domain ref names if one of the customer's sites has
// it.
func (c *CustomerScope) domain(ctx context.Context, ref string) (*tenants.Domain, error) {
	d, err := c.s.domain(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if _, err := c.site(ctx, d.SiteID); err != nil {
		return nil, &Error{Code: NotFound, Message: noSuch("domain", ref)}
	}
	return d, nil
}

// Site returns the customer's site ref names.
func (c *CustomerScope) Site(ctx context.Context, ref string) (*Site, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.GetSite(ctx, site.ID)
}

// SiteStatus returns the state of the customer's site ref names.
func (c *CustomerScope) SiteStatus(ctx context.Context, ref string) (*RuntimeStatus, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.SiteStatus(ctx, site.ID)
}

// SiteAction starts, stops or restarts the customer's site ref names.
// Redeploying (a new release) stays the operators'.
func (c *CustomerScope) SiteAction(ctx context.Context, actor, ref, action string) (*RuntimeStatus, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	switch action {
	case ActionStart, ActionStop, ActionRestart:
	default:
		return nil, invalid("action", "must be one of start, stop, restart")
	}
	return c.s.SiteAction(ctx, actor, site.ID, action)
}

// SiteLogs returns the output of the customer's site ref names.
func (c *CustomerScope) SiteLogs(ctx context.Context, ref string, tail int, follow bool) (io.ReadCloser, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.SiteLogs(ctx, site.ID, tail, follow)
}

// SiteFigures returns the figures of the customer's site ref names.
func (c *CustomerScope) SiteFigures(ctx context.Context, ref string, window, step time.Duration) (*SiteFigures, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.SiteFigures(ctx, site.ID, window, step)
}

// Releases returns the releases of the customer's site ref names.
func (c *CustomerScope) Releases(ctx context.Context, ref string, before, limit int) ([]Release, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.ListReleases(ctx, site.ID, before, limit)
}

// Release returns release n of the customer's site ref names, with its
// log (secrets masked, as operators see it).
func (c *CustomerScope) Release(ctx context.Context, ref string, n int) (*Release, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.GetRelease(ctx, site.ID, n)
}

// Domains returns the custom domains of the customer's site ref names.
func (c *CustomerScope) Domains(ctx context.Context, siteRef string) ([]Domain, error) {
	site, err := c.site(ctx, siteRef)
	if err != nil {
		return nil, err
	}
	return c.s.AllDomains(ctx, site.ID)
}

// CreateDomain adds a custom domain to the customer's site in.Site.
func (c *CustomerScope) CreateDomain(ctx context.Context, actor string, in DomainInput) (*Domain, error) {
	site, err := c.site(ctx, in.Site)
	if err != nil {
		if IsCode(err, NotFound) {
			return nil, invalid("site_id", "%s", noSuch("site", in.Site))
		}
		return nil, err
	}
	in.Site = site.ID
	return c.s.CreateDomain(ctx, actor, in)
}

// VerifyDomain checks the DNS of the customer's domain ref names.
func (c *CustomerScope) VerifyDomain(ctx context.Context, actor, ref string) (*VerifyResult, error) {
	d, err := c.domain(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.VerifyDomain(ctx, actor, d.ID, false)
}

// DeleteDomain removes the customer's domain ref names.
func (c *CustomerScope) DeleteDomain(ctx context.Context, actor, ref string) (*tenants.Domain, error) {
	d, err := c.domain(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.DeleteDomain(ctx, actor, d.ID)
}

// Portal returns a Stripe billing portal URL for the customer.
func (c *CustomerScope) Portal(ctx context.Context, actor, returnURL string) (string, error) {
	return c.s.Portal(ctx, actor, c.customerID, returnURL)
}

// SitePrewarms returns the pre-warms of the customer's site ref names.
func (c *CustomerScope) SitePrewarms(ctx context.Context, ref string, limit int) ([]Prewarm, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.SitePrewarms(ctx, site.ID, limit)
}

// SiteScaling returns the autoscaling and the latest scaling decisions
// of the customer's site ref names.
func (c *CustomerScope) SiteScaling(ctx context.Context, ref string, limit int) (*SiteScaling, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.SiteScaling(ctx, site.ID, limit)
}

// SiteUptime returns the uptime history of the customer's site ref names.
func (c *CustomerScope) SiteUptime(ctx context.Context, ref string, window time.Duration) (*SiteUptime, error) {
	site, err := c.site(ctx, ref)
	if err != nil {
		return nil, err
	}
	return c.s.SiteUptime(ctx, site.ID, window)
}
