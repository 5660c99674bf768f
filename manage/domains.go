package manage

import (
	"context"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// DomainInput adds a custom domain to a site (id or subdomain).
type DomainInput struct {
	Site     string `json:"site_id,omitempty"`
	Hostname string `json:"hostname"`
}

// Domain is a custom domain as operators see it: with its site's
// subdomain.
type Domain struct {
	tenants.Domain
	Subdomain string `json:"subdomain"`
}

// ListDomains returns a page of custom domains, of one site when site
// (id or subdomain) is not empty.
func (s *Service) ListDomains(ctx context.Context, site string, page Page) ([]Domain, error) {
	siteID, err := refID(ctx, site, s.site, "site_id", func(s *tenants.Site) string { return s.ID })
	if err != nil {
		return nil, err
	}
	list, err := s.store.ListDomains(ctx, siteID, page)
	if err != nil {
		return nil, fail("domain", err)
	}
	return s.domainsOut(ctx, list)
}

// AllDomains returns every custom domain, of one site when site is set.
func (s *Service) AllDomains(ctx context.Context, site string) ([]Domain, error) {
	return all(func(p Page) ([]Domain, error) { return s.ListDomains(ctx, site, p) }, func(d *Domain) string { return d.ID })
}

// GetDomain returns the domain ref names (id or hostname).
func (s *Service) GetDomain(ctx context.Context, ref string) (*Domain, error) {
	d, err := s.domain(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	return s.domainOut(ctx, d)
}

// CreateDomain adds a custom hostname to a site, unverified: it routes,
// and gets a certificate, once verified (VerifyDomain).
func (s *Service) CreateDomain(ctx context.Context, actor string, in DomainInput) (*Domain, error) {
	site, err := s.site(ctx, "site_id", in.Site)
	if err != nil {
		return nil, err
	}
	d := &tenants.Domain{SiteID: site.ID, Hostname: in.Hostname}
	if err := s.store.CreateDomain(ctx, actor, d); err != nil {
		return nil, fail("domain", err)
	}
	return &Domain{Domain: *d, Subdomain: site.Subdomain}, nil
}

// SetDomainVerified marks the domain ref names verified or not, by hand.
func (s *Service) SetDomainVerified(ctx context.Context, actor, ref string, verified bool) (*Domain, error) {
	d, err := s.domain(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if d, err = s.store.SetDomainVerified(ctx, actor, d.ID, verified); err != nil {
		return nil, fail("domain", err)
	}
	return s.domainOut(ctx, d)
}

// DeleteDomain removes the domain ref names.
func (s *Service) DeleteDomain(ctx context.Context, actor, ref string) (*tenants.Domain, error) {
	d, err := s.domain(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	return d, fail("domain", s.store.DeleteDomain(ctx, actor, d.ID))
}

// VerifyResult is what a verification found.
type VerifyResult struct {
	Domain   *Domain `json:"domain"`
	Verified bool    `json:"verified"`
	// Method is how the domain was verified: "txt", "cname", "address",
	// or "manual" (forced).
	Method string `json:"method,omitempty"`
	// Reason says why it is not verified (yet).
	Reason string `json:"reason,omitempty"`
	// Expect describes the DNS records that verify the domain.
	Expect []string `json:"expect"`
}

// VerifyDomain checks the DNS of the domain ref names now and marks it
// verified when it passes (force marks it without asking DNS). A failed
// check never un-verifies a verified domain (a DNS hiccup must not take a
// site down; SetDomainVerified does that), and a verified domain that
// passes again is left as it is.
func (s *Service) VerifyDomain(ctx context.Context, actor, ref string, force bool) (*VerifyResult, error) {
	d, err := s.domain(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Expect: s.verifier.Expect(d.Hostname, d.VerifyToken)}
	if force {
		res.Method = "manual"
	} else {
		res.Method, res.Reason = s.verifier.Verify(ctx, d.Hostname, d.VerifyToken)
	}
	if res.Method != "" && !d.Verified {
		if d, err = s.store.SetDomainVerified(ctx, actor, d.ID, true); err != nil {
			return nil, fail("domain", err)
		}
	}
	res.Verified = d.Verified
	if res.Domain, err = s.domainOut(ctx, d); err != nil {
		return nil, err
	}
	return res, nil
}

// Verifier returns how the service verifies domains, for the records it
// expects.
func (s *Service) Verifier() *Verifier { return s.verifier }

func (s *Service) domainOut(ctx context.Context, d *tenants.Domain) (*Domain, error) {
	out, err := s.domainsOut(ctx, []tenants.Domain{*d})
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

func (s *Service) domainsOut(ctx context.Context, list []tenants.Domain) ([]Domain, error) {
	subdomains := map[string]string{}
	out := make([]Domain, len(list))
	for i, d := range list {
		sub, ok := subdomains[d.SiteID]
		if !ok {
			site, err := s.store.GetSite(ctx, d.SiteID)
			if err != nil {
				return nil, fail("site", err)
			}
			sub = site.Subdomain
			subdomains[d.SiteID] = sub
		}
		out[i] = Domain{Domain: d, Subdomain: sub}
	}
	return out, nil
}
