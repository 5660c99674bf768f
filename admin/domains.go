package admin

import (
	"net/http"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Domain bodies and answers are the admin service's.
type (
	DomainInput  = manage.DomainInput
	Domain       = manage.Domain
	VerifyResult = manage.VerifyResult
)

// DomainPatch is the body of PATCH /domains/{id}: an operator may mark a
// domain verified (or not) by hand. A hostname never changes: add the new
// one and remove the old.
type DomainPatch struct {
	Verified *bool `json:"verified,omitempty"`
}

func (a *API) listDomains(w http.ResponseWriter, r *http.Request) error {
	return a.writeDomains(w, r, query(r).Get("site_id"))
}

func (a *API) listSiteDomains(w http.ResponseWriter, r *http.Request) error {
	s, err := a.svc.GetSite(r.Context(), ref(r))
	if err != nil {
		return err
	}
	return a.writeDomains(w, r, s.ID)
}

func (a *API) writeDomains(w http.ResponseWriter, r *http.Request, site string) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.svc.ListDomains(r.Context(), site, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(d *Domain) string { return d.ID }))
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
	s, err := a.svc.GetSite(r.Context(), ref(r))
	if err != nil {
		return err
	}
	var in DomainInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Site != "" && in.Site != s.ID && in.Site != s.Subdomain {
		return invalidParam("site_id", "differs from the site of the path; leave it out")
	}
	in.Site = s.ID
	return a.addDomain(w, r, in)
}

func (a *API) addDomain(w http.ResponseWriter, r *http.Request, in DomainInput) error {
	d, err := a.svc.CreateDomain(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	return created(w, "/domains/"+d.ID, d)
}

func (a *API) getDomain(w http.ResponseWriter, r *http.Request) error {
	d, err := a.svc.GetDomain(r.Context(), ref(r))
	return ok(w, d, err)
}

func (a *API) patchDomain(w http.ResponseWriter, r *http.Request) error {
	var p DomainPatch
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	if p.Verified == nil {
		d, err := a.svc.GetDomain(r.Context(), ref(r))
		return ok(w, d, err)
	}
	d, err := a.svc.SetDomainVerified(r.Context(), actor(r), ref(r), *p.Verified)
	return ok(w, d, err)
}

func (a *API) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.svc.DeleteDomain(r.Context(), actor(r), ref(r)); err != nil {
		return err
	}
	return noContent(w)
}

// verifyDomain checks the domain's DNS now and marks it verified when it
// passes; see manage.Service.VerifyDomain.
func (a *API) verifyDomain(w http.ResponseWriter, r *http.Request) error {
	if err := decodeOptionalEmpty(r); err != nil {
		return err
	}
	res, err := a.svc.VerifyDomain(r.Context(), actor(r), ref(r), false)
	return ok(w, res, err)
}
