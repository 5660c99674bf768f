package admin

import (
	"net/http"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Request bodies are the admin service's input types (package manage):
// create bodies hold the writable fields, patch bodies the same as
// pointers, where a missing member leaves the field as it is. Unknown
// members (ids, timestamps, typos) are refused. Wherever a body or a path
// takes an id it takes the natural key too: a customer's email, a plan's
// or template's slug, a site's subdomain, a domain's hostname.
type (
	CustomerInput = manage.CustomerInput
	CustomerPatch = manage.CustomerPatch
	PlanInput     = manage.PlanInput
	PlanPatch     = manage.PlanPatch
	TemplateInput = manage.TemplateInput
	TemplatePatch = manage.TemplatePatch
)

func created(w http.ResponseWriter, path string, v any) error {
	w.Header().Set("Location", Prefix+path)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func ok(w http.ResponseWriter, v any, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// ref returns the {id} of the path: an id or a natural key.
func ref(r *http.Request) string { return r.PathValue("id") }

// Customers

func (a *API) listCustomers(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.svc.ListCustomers(r.Context(), query(r).Get("status"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(c *manage.Customer) string { return c.ID }))
	return nil
}

func (a *API) createCustomer(w http.ResponseWriter, r *http.Request) error {
	var in CustomerInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	c, err := a.svc.CreateCustomer(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	return created(w, "/customers/"+c.ID, c)
}

func (a *API) getCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := a.svc.GetCustomer(r.Context(), ref(r))
	return ok(w, c, err)
}

func (a *API) patchCustomer(w http.ResponseWriter, r *http.Request) error {
	var p CustomerPatch
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	c, err := a.svc.UpdateCustomer(r.Context(), actor(r), ref(r), p)
	return ok(w, c, err)
}

// deleteCustomer deletes a customer; one that still has sites is a
// conflict unless ?cascade=true (?purge=true removes their volumes too).
func (a *API) deleteCustomer(w http.ResponseWriter, r *http.Request) error {
	cascade, err := boolParam(r, "cascade")
	if err != nil {
		return err
	}
	purge, err := boolParam(r, "purge")
	if err != nil {
		return err
	}
	if _, err := a.svc.DeleteCustomer(r.Context(), actor(r), ref(r), cascade, purge); err != nil {
		return err
	}
	return noContent(w)
}

// Plans

func (a *API) listPlans(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.svc.ListPlans(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(p *tenants.Plan) string { return p.ID }))
	return nil
}

func (a *API) createPlan(w http.ResponseWriter, r *http.Request) error {
	var in PlanInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	p, err := a.svc.CreatePlan(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	return created(w, "/plans/"+p.ID, p)
}

func (a *API) getPlan(w http.ResponseWriter, r *http.Request) error {
	p, err := a.svc.GetPlan(r.Context(), ref(r))
	return ok(w, p, err)
}

func (a *API) patchPlan(w http.ResponseWriter, r *http.Request) error {
	var patch PlanPatch
	if err := decodeBody(r, &patch); err != nil {
		return err
	}
	p, err := a.svc.UpdatePlan(r.Context(), actor(r), ref(r), patch)
	return ok(w, p, err)
}

func (a *API) deletePlan(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.DeletePlan(r.Context(), actor(r), ref(r)); err != nil {
		return err
	}
	return noContent(w)
}

// Templates

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.svc.ListTemplates(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(t *tenants.Template) string { return t.ID }))
	return nil
}

func (a *API) createTemplate(w http.ResponseWriter, r *http.Request) error {
	var in TemplateInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	t, err := a.svc.CreateTemplate(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	return created(w, "/templates/"+t.ID, t)
}

func (a *API) getTemplate(w http.ResponseWriter, r *http.Request) error {
	t, err := a.svc.GetTemplate(r.Context(), ref(r))
	return ok(w, t, err)
}

func (a *API) patchTemplate(w http.ResponseWriter, r *http.Request) error {
	var patch TemplatePatch
	if err := decodeBody(r, &patch); err != nil {
		return err
	}
	t, err := a.svc.UpdateTemplate(r.Context(), actor(r), ref(r), patch)
	return ok(w, t, err)
}

func (a *API) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	if err := a.svc.DeleteTemplate(r.Context(), actor(r), ref(r)); err != nil {
		return err
	}
	return noContent(w)
}

// Audit

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := tenants.AuditFilter{Entity: q.Get("entity"), EntityID: q.Get("entity_id"), Actor: q.Get("actor")}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	if f.ActorExact, err = boolParam(r, "actor_exact"); err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(t.name); s != "" {
			if *t.dst, err = time.Parse(time.RFC3339, s); err != nil {
				return invalidParam(t.name, "must be an RFC 3339 time, such as 2026-01-02T15:04:05Z")
			}
		}
	}
	f.Limit = limit
	if s := q.Get("before"); s != "" {
		var n int64
		for _, c := range []byte(s) {
			if c < '0' || c > '9' || n > 1<<53 {
				return invalidParam("before", "must be the id of an audit entry")
			}
			n = n*10 + int64(c-'0')
		}
		f.BeforeID = n
	}
	items, err := a.svc.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if items == nil {
		items = []tenants.AuditEntry{}
	}
	out := struct {
		Items      []auditEntry `json:"items"`
		NextBefore int64        `json:"next_before,omitempty"`
	}{Items: make([]auditEntry, len(items))}
	for i, e := range items {
		out.Items[i] = auditEntry{ID: e.ID, At: e.At.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), Actor: e.Actor,
			Action: e.Action, Entity: e.Entity, EntityID: e.EntityID, Before: rawOrNil(e.Before), After: rawOrNil(e.After)}
	}
	if limit == 0 {
		limit = 50
	}
	if len(items) == limit {
		out.NextBefore = items[len(items)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// auditEntry shows before and after as JSON objects, not base64.
type auditEntry struct {
	ID       int64  `json:"id"`
	At       string `json:"at"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Entity   string `json:"entity"`
	EntityID string `json:"entity_id"`
	Before   any    `json:"before"`
	After    any    `json:"after"`
}
