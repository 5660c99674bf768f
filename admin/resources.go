package admin

import (
	"net/http"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Request bodies. Create bodies hold the writable fields; patch bodies the
// same as pointers, where a missing member leaves the field as it is.
// Unknown members (ids, timestamps, typos) are refused.

// CustomerInput is the body of POST /customers.
type CustomerInput struct {
	Email                string `json:"email"`
	Name                 string `json:"name"`
	Status               string `json:"status,omitempty"`
	PlanID               string `json:"plan_id,omitempty"`
	StripeCustomerID     string `json:"stripe_customer_id,omitempty"`
	StripeSubscriptionID string `json:"stripe_subscription_id,omitempty"`
}

// CustomerPatch is the body of PATCH /customers/{id}.
type CustomerPatch struct {
	Email                *string `json:"email,omitempty"`
	Name                 *string `json:"name,omitempty"`
	Status               *string `json:"status,omitempty"`
	PlanID               *string `json:"plan_id,omitempty"`
	StripeCustomerID     *string `json:"stripe_customer_id,omitempty"`
	StripeSubscriptionID *string `json:"stripe_subscription_id,omitempty"`
}

func (p *CustomerPatch) apply(c *tenants.Customer) {
	set(&c.Email, p.Email)
	set(&c.Name, p.Name)
	set(&c.Status, p.Status)
	set(&c.PlanID, p.PlanID)
	set(&c.StripeCustomerID, p.StripeCustomerID)
	set(&c.StripeSubscriptionID, p.StripeSubscriptionID)
}

// PlanInput is the body of POST /plans.
type PlanInput struct {
	Slug          string `json:"slug"`
	Name          string `json:"name"`
	StripePriceID string `json:"stripe_price_id,omitempty"`
	MaxSites      int    `json:"max_sites,omitempty"`
	MemoryBytes   int64  `json:"memory_bytes,omitempty"`
	NanoCPUs      int64  `json:"nano_cpus,omitempty"`
	PidsLimit     int64  `json:"pids_limit,omitempty"`
}

// PlanPatch is the body of PATCH /plans/{id}.
type PlanPatch struct {
	Slug          *string `json:"slug,omitempty"`
	Name          *string `json:"name,omitempty"`
	StripePriceID *string `json:"stripe_price_id,omitempty"`
	MaxSites      *int    `json:"max_sites,omitempty"`
	MemoryBytes   *int64  `json:"memory_bytes,omitempty"`
	NanoCPUs      *int64  `json:"nano_cpus,omitempty"`
	PidsLimit     *int64  `json:"pids_limit,omitempty"`
}

func (p *PlanPatch) apply(pl *tenants.Plan) {
	set(&pl.Slug, p.Slug)
	set(&pl.Name, p.Name)
	set(&pl.StripePriceID, p.StripePriceID)
	set(&pl.MaxSites, p.MaxSites)
	set(&pl.MemoryBytes, p.MemoryBytes)
	set(&pl.NanoCPUs, p.NanoCPUs)
	set(&pl.PidsLimit, p.PidsLimit)
}

// TemplateInput is the body of POST /templates.
type TemplateInput struct {
	Slug        string            `json:"slug"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Image       string            `json:"image"`
	Port        int               `json:"port"`
	Env         map[string]string `json:"env,omitempty"`
	DataPath    string            `json:"data_path,omitempty"`
	HealthPath  string            `json:"health_path,omitempty"`
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	NanoCPUs    int64             `json:"nano_cpus,omitempty"`
	PidsLimit   int64             `json:"pids_limit,omitempty"`
	CapAdd      []string          `json:"cap_add,omitempty"`
}

func (in *TemplateInput) template() *tenants.Template {
	return &tenants.Template{Slug: in.Slug, Name: in.Name, Description: in.Description, Image: in.Image,
		Port: in.Port, Env: in.Env, DataPath: in.DataPath, HealthPath: in.HealthPath,
		MemoryBytes: in.MemoryBytes, NanoCPUs: in.NanoCPUs, PidsLimit: in.PidsLimit, CapAdd: in.CapAdd}
}

// TemplatePatch is the body of PATCH /templates/{id}. Env and cap_add
// replace the whole map or list. Every update bumps the template's
// version: sites recreate their container from it at their next start.
type TemplatePatch struct {
	Slug        *string            `json:"slug,omitempty"`
	Name        *string            `json:"name,omitempty"`
	Description *string            `json:"description,omitempty"`
	Image       *string            `json:"image,omitempty"`
	Port        *int               `json:"port,omitempty"`
	Env         *map[string]string `json:"env,omitempty"`
	DataPath    *string            `json:"data_path,omitempty"`
	HealthPath  *string            `json:"health_path,omitempty"`
	MemoryBytes *int64             `json:"memory_bytes,omitempty"`
	NanoCPUs    *int64             `json:"nano_cpus,omitempty"`
	PidsLimit   *int64             `json:"pids_limit,omitempty"`
	CapAdd      *[]string          `json:"cap_add,omitempty"`
}

func (p *TemplatePatch) apply(t *tenants.Template) {
	set(&t.Slug, p.Slug)
	set(&t.Name, p.Name)
	set(&t.Description, p.Description)
	set(&t.Image, p.Image)
	set(&t.Port, p.Port)
	set(&t.Env, p.Env)
	set(&t.DataPath, p.DataPath)
	set(&t.HealthPath, p.HealthPath)
	set(&t.MemoryBytes, p.MemoryBytes)
	set(&t.NanoCPUs, p.NanoCPUs)
	set(&t.PidsLimit, p.PidsLimit)
	set(&t.CapAdd, p.CapAdd)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func created(w http.ResponseWriter, path string, v any) error {
	w.Header().Set("Location", Prefix+path)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// id returns the {id} of the path; ids that are not uuids are 404 at once.
func id(r *http.Request, what string) (string, error) {
	v := r.PathValue("id")
	if !isUUID(v) {
		return "", notFound(what)
	}
	return v, nil
}

// notFoundAs renames the store's ErrNotFound for the resource at hand.
func notFoundAs(err error, what string) error {
	if err == tenants.ErrNotFound {
		return notFound(what)
	}
	return err
}

// Customers

func (a *API) listCustomers(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.store.ListCustomers(r.Context(), tenants.CustomerFilter{Status: query(r).Get("status")}, p)
	if err != nil {
		return err
	}
	out, err := a.customersOut(r.Context(), items)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(out, p, func(c *Customer) string { return c.ID }))
	return nil
}

func (a *API) createCustomer(w http.ResponseWriter, r *http.Request) error {
	var in CustomerInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	c := &tenants.Customer{Email: in.Email, Name: in.Name, Status: in.Status, PlanID: in.PlanID,
		StripeCustomerID: in.StripeCustomerID, StripeSubscriptionID: in.StripeSubscriptionID}
	if err := a.store.CreateCustomer(r.Context(), actor(r), c); err != nil {
		return err
	}
	if err := a.createStripeCustomer(r, c); err != nil {
		return err
	}
	out, err := a.customerOut(r.Context(), c)
	if err != nil {
		return err
	}
	return created(w, "/customers/"+c.ID, out)
}

func (a *API) getCustomer(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "customer")
	if err != nil {
		return err
	}
	c, err := a.store.GetCustomer(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "customer")
	}
	out, err := a.customerOut(r.Context(), c)
	if err != nil {
		return notFoundAs(err, "customer")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) patchCustomer(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "customer")
	if err != nil {
		return err
	}
	var p CustomerPatch
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	c, err := a.store.GetCustomer(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "customer")
	}
	wasServing := servingStatus(c.Status)
	p.apply(c)
	if err := a.store.UpdateCustomer(r.Context(), actor(r), c); err != nil {
		return notFoundAs(err, "customer")
	}
	if wasServing && !servingStatus(c.Status) {
		a.stopCustomerSites(r, c.ID)
	}
	out, err := a.customerOut(r.Context(), c)
	if err != nil {
		return notFoundAs(err, "customer")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteCustomer deletes a customer. One that still has sites is a
// conflict unless ?cascade=true: then its sites and domains go in the same
// transaction, and their containers are removed after it (volumes kept
// unless ?purge=true).
func (a *API) deleteCustomer(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "customer")
	if err != nil {
		return err
	}
	cascade, err := boolParam(r, "cascade")
	if err != nil {
		return err
	}
	purge, err := boolParam(r, "purge")
	if err != nil {
		return err
	}
	var siteIDs []string
	if cascade {
		for p := (tenants.Page{Limit: 500}); ; {
			sites, err := a.store.ListSites(r.Context(), tenants.SiteFilter{CustomerID: id}, p)
			if err != nil {
				return err
			}
			for _, s := range sites {
				siteIDs = append(siteIDs, s.ID)
			}
			if len(sites) < p.Limit {
				break
			}
			p.After = sites[len(sites)-1].ID
		}
	}
	if err := a.store.DeleteCustomer(r.Context(), actor(r), id, cascade); err != nil {
		return notFoundAs(err, "customer")
	}
	for _, siteID := range siteIDs {
		a.removeContainer(r, siteID, purge)
	}
	return noContent(w)
}

// Plans

func (a *API) listPlans(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.store.ListPlans(r.Context(), p)
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
	p := &tenants.Plan{Slug: in.Slug, Name: in.Name, StripePriceID: in.StripePriceID, MaxSites: in.MaxSites,
		MemoryBytes: in.MemoryBytes, NanoCPUs: in.NanoCPUs, PidsLimit: in.PidsLimit}
	if err := a.store.CreatePlan(r.Context(), actor(r), p); err != nil {
		return err
	}
	return created(w, "/plans/"+p.ID, p)
}

func (a *API) getPlan(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "plan")
	if err != nil {
		return err
	}
	p, err := a.store.GetPlan(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "plan")
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) patchPlan(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "plan")
	if err != nil {
		return err
	}
	var patch PlanPatch
	if err := decodeBody(r, &patch); err != nil {
		return err
	}
	p, err := a.store.GetPlan(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "plan")
	}
	patch.apply(p)
	if err := a.store.UpdatePlan(r.Context(), actor(r), p); err != nil {
		return notFoundAs(err, "plan")
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) deletePlan(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "plan")
	if err != nil {
		return err
	}
	if err := a.store.DeletePlan(r.Context(), actor(r), id); err != nil {
		return notFoundAs(err, "plan")
	}
	return noContent(w)
}

// Templates

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.store.ListTemplates(r.Context(), p)
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
	t := in.template()
	if err := a.store.CreateTemplate(r.Context(), actor(r), t); err != nil {
		return err
	}
	return created(w, "/templates/"+t.ID, t)
}

func (a *API) getTemplate(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "template")
	if err != nil {
		return err
	}
	t, err := a.store.GetTemplate(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "template")
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *API) patchTemplate(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "template")
	if err != nil {
		return err
	}
	var patch TemplatePatch
	if err := decodeBody(r, &patch); err != nil {
		return err
	}
	t, err := a.store.GetTemplate(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "template")
	}
	patch.apply(t)
	if err := a.store.UpdateTemplate(r.Context(), actor(r), t); err != nil {
		return notFoundAs(err, "template")
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *API) deleteTemplate(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "template")
	if err != nil {
		return err
	}
	if err := a.store.DeleteTemplate(r.Context(), actor(r), id); err != nil {
		return notFoundAs(err, "template")
	}
	return noContent(w)
}

// Audit

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := query(r)
	f := tenants.AuditFilter{Entity: q.Get("entity"), EntityID: q.Get("entity_id")}
	limit, err := limitParam(r)
	if err != nil {
		return err
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
	items, err := a.store.ListAudit(r.Context(), f)
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
