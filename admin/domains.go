package admin

import (
	"net/http"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// DomainInput is the body of POST /domains (site_id required) and of
// POST /sites/{id}/domains (site_id taken from the path).
type DomainInput struct {
	SiteID   string `json:"site_id,omitempty"`
	Hostname string `json:"hostname"`
}

// DomainPatch is the body of PATCH /domains/{id}: an operator may mark a
// domain verified (or not) by hand. A hostname never changes: add the new
// one and remove the old.
type DomainPatch struct {
	Verified *bool `json:"verified,omitempty"`
}

// VerifyResult is the answer of POST /domains/{id}/verify.
type VerifyResult struct {
	Domain   *tenants.Domain `json:"domain"`
	Verified bool            `json:"verified"`
	// Method is how the domain was verified: "txt", "cname" or "address".
	Method string `json:"method,omitempty"`
	// Reason says why it is not verified (yet).
	Reason string `json:"reason,omitempty"`
	// Expect describes the DNS records that verify the domain.
	Expect []string `json:"expect"`
}

func (a *API) listDomains(w http.ResponseWriter, r *http.Request) error {
	return a.writeDomains(w, r, query(r).Get("site_id"))
}

func (a *API) listSiteDomains(w http.ResponseWriter, r *http.Request) error {
	s, err := a.site(r)
	if err != nil {
		return err
	}
	return a.writeDomains(w, r, s.ID)
}

func (a *API) writeDomains(w http.ResponseWriter, r *http.Request, siteID string) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.store.ListDomains(r.Context(), siteID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(d *tenants.Domain) string { return d.ID }))
	return nil
}

func (a *API) createDomain(w http.ResponseWriter, r *http.Request) error {
	var in DomainInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	return a.addDomain(w, r, in)
}

func (a *API) createSiteDomain(w http.ResponseWriter, r *http.Request) error {
	s, err := a.site(r)
	if err != nil {
		return err
	}
	var in DomainInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.SiteID != "" && in.SiteID != s.ID {
		return invalidParam("site_id", "differs from the site of the path; leave it out")
	}
	in.SiteID = s.ID
	return a.addDomain(w, r, in)
}

func (a *API) addDomain(w http.ResponseWriter, r *http.Request, in DomainInput) error {
	d := &tenants.Domain{SiteID: in.SiteID, Hostname: in.Hostname}
	if err := a.store.CreateDomain(r.Context(), actor(r), d); err != nil {
		return err
	}
	return created(w, "/domains/"+d.ID, d)
}

func (a *API) domain(r *http.Request) (*tenants.Domain, error) {
	id, err := id(r, "domain")
	if err != nil {
		return nil, err
	}
	d, err := a.store.GetDomain(r.Context(), id)
	if err != nil {
		return nil, notFoundAs(err, "domain")
	}
	return d, nil
}

func (a *API) getDomain(w http.ResponseWriter, r *http.Request) error {
	d, err := a.domain(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (a *API) patchDomain(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "domain")
	if err != nil {
		return err
	}
	var p DomainPatch
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	if p.Verified == nil {
		d, err := a.store.GetDomain(r.Context(), id)
		if err != nil {
			return notFoundAs(err, "domain")
		}
		writeJSON(w, http.StatusOK, d)
		return nil
	}
	d, err := a.store.SetDomainVerified(r.Context(), actor(r), id, *p.Verified)
	if err != nil {
		return notFoundAs(err, "domain")
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (a *API) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "domain")
	if err != nil {
		return err
	}
	if err := a.store.DeleteDomain(r.Context(), actor(r), id); err != nil {
		return notFoundAs(err, "domain")
	}
	return noContent(w)
}

// verifyDomain checks the domain's DNS now and marks it verified when it
// passes. A failed check never un-verifies a verified domain (a DNS
// hiccup must not take a site down); PATCH verified=false does that.
func (a *API) verifyDomain(w http.ResponseWriter, r *http.Request) error {
	d, err := a.domain(r)
	if err != nil {
		return err
	}
	if err := decodeOptionalEmpty(r); err != nil {
		return err
	}
	v := a.cfg.Verifier
	res := VerifyResult{Domain: d, Expect: v.Expect(d.Hostname, d.VerifyToken)}
	method, reason := v.Verify(r.Context(), d.Hostname, d.VerifyToken)
	res.Method, res.Reason = method, reason
	if method != "" {
		res.Verified = true
		if !d.Verified {
			if res.Domain, err = a.store.SetDomainVerified(r.Context(), actor(r), d.ID, true); err != nil {
				return notFoundAs(err, "domain")
			}
		}
	} else if d.Verified {
		res.Verified = true
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
