package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// The domains pages: a site's custom domains (shared with the site's
// customer's users through siteScope) with the DNS records that verify
// them, and every custom domain for operators.

func (u *UI) routesDomains() {
	u.op("GET /domains", u.domainsList)
	u.both("GET /sites/{ref}/domains", u.siteDomains)
	u.both("POST /sites/{ref}/domains", u.domainAdd)
	u.both("POST /sites/{ref}/domains/{domain}/verify", u.domainVerify)
	u.both("POST /sites/{ref}/domains/{domain}/delete", u.domainDelete)
}

func (u *UI) domainsList(w http.ResponseWriter, r *http.Request, req *request) error {
	list, err := u.svc.AllDomains(r.Context(), "")
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "domains", u.view(r, req, "Custom domains", "domains", list))
	return nil
}

// domainRow is a domain with the DNS records that would verify it.
type domainRow struct {
	manage.Domain
	Records []string
}

type siteDomainsData struct {
	Site    *manage.Site
	Domains []domainRow
	// Result is a verification that did not pass, shown with its reason.
	Result *manage.VerifyResult
}

// dnsRecords are the zone-file lines of which any one verifies hostname:
// the TXT record holding its token, a CNAME to the platform's target, or
// A/AAAA records to the platform's addresses only (manage.Verifier).
func (u *UI) dnsRecords(hostname, token string) []string {
	out := []string{fmt.Sprintf("%s%s. 300 IN TXT %q", manage.TXTPrefix, hostname, token)}
	v := u.svc.Verifier()
	if v == nil {
		return out
	}
	if t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(v.CNAMETarget)), "."); t != "" {
		out = append(out, fmt.Sprintf("%s. 300 IN CNAME %s.", hostname, t))
	}
	if len(v.PublicIPs) > 0 {
		var lines []string
		for _, ip := range v.PublicIPs {
			kind := "A"
			if ip.Unmap().Is6() {
				kind = "AAAA"
			}
			lines = append(lines, fmt.Sprintf("%s. 300 IN %s %s", hostname, kind, ip.Unmap()))
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return out
}

// siteDomainsData reads the page of the site ref names.
func (u *UI) siteDomainsData(ctx context.Context, sc siteScope, ref string) (*siteDomainsData, error) {
	site, err := sc.Site(ctx, ref)
	if err != nil {
		return nil, err
	}
	list, err := sc.Domains(ctx, site.ID)
	if err != nil {
		return nil, err
	}
	d := &siteDomainsData{Site: site}
	for _, dom := range list {
		d.Domains = append(d.Domains, domainRow{Domain: dom, Records: u.dnsRecords(dom.Hostname, dom.VerifyToken)})
	}
	return d, nil
}

func (u *UI) siteDomains(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := u.siteDomainsData(r.Context(), u.sites(req), r.PathValue("ref"))
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "site_domains", u.view(r, req, "Domains of "+d.Site.Subdomain, "sites", d))
	return nil
}

func (u *UI) domainAdd(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sc := u.sites(req)
	d, err := u.siteDomainsData(ctx, sc, r.PathValue("ref"))
	if err != nil {
		return err
	}
	host := strings.TrimSpace(r.PostFormValue("hostname"))
	dom, err := sc.CreateDomain(ctx, actor(req), manage.DomainInput{Site: d.Site.ID, Hostname: host})
	if err != nil {
		v := u.view(r, req, "Domains of "+d.Site.Subdomain, "sites", d).withError(err, r.PostForm)
		u.render(w, statusOf(err), "site_domains", v)
		return nil
	}
	return u.redirect(w, r, req, domainsPath(d.Site), dom.Hostname+" added; create one of the DNS records shown, then verify it.")
}

// siteDomain returns the page of the site ref names and its domain ref
// names: NotFound unless the domain is the site's (and the site is one
// the user may see).
func (u *UI) siteDomain(ctx context.Context, sc siteScope, ref, domRef string) (*siteDomainsData, *manage.Domain, error) {
	d, err := u.siteDomainsData(ctx, sc, ref)
	if err != nil {
		return nil, nil, err
	}
	for i := range d.Domains {
		if dom := &d.Domains[i].Domain; dom.ID == domRef || strings.EqualFold(dom.Hostname, domRef) {
			return d, dom, nil
		}
	}
	return nil, nil, &manage.Error{Code: manage.NotFound, Message: fmt.Sprintf("site %s has no domain %s", d.Site.Subdomain, domRef)}
}

// domainVerify checks the domain's DNS now: verified, it goes back to the
// list with a message; not (yet), the page shows what was found.
func (u *UI) domainVerify(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sc := u.sites(req)
	d, dom, err := u.siteDomain(ctx, sc, r.PathValue("ref"), r.PathValue("domain"))
	if err != nil {
		return err
	}
	res, err := sc.VerifyDomain(ctx, actor(req), dom.ID)
	if err != nil {
		return err
	}
	if res.Verified {
		how := map[string]string{"txt": "by its TXT record", "cname": "by its CNAME", "address": "by its addresses", "manual": "by hand"}[res.Method]
		return u.redirect(w, r, req, domainsPath(d.Site), strings.TrimSpace(dom.Hostname+" is verified "+how)+".")
	}
	d.Result = res
	u.render(w, http.StatusOK, "site_domains", u.view(r, req, "Domains of "+d.Site.Subdomain, "sites", d))
	return nil
}

func (u *UI) domainDelete(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sc := u.sites(req)
	d, dom, err := u.siteDomain(ctx, sc, r.PathValue("ref"), r.PathValue("domain"))
	if err != nil {
		return err
	}
	if _, err := sc.DeleteDomain(ctx, actor(req), dom.ID); err != nil {
		return err
	}
	return u.redirect(w, r, req, domainsPath(d.Site), dom.Hostname+" removed.")
}

func domainsPath(site *manage.Site) string {
	return "/sites/" + url.PathEscape(site.Subdomain) + "/domains"
}
