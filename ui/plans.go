package ui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The plans pages: what customers pay for, with the container limits
// their sites get where the template sets none.

func (u *UI) routesPlans() {
	u.op("GET /plans", u.plansList)
	u.op("GET /plans/new", u.planNew)
	u.op("POST /plans", u.planCreate)
	u.op("GET /plans/{ref}", u.planEdit)
	u.op("POST /plans/{ref}", u.planUpdate)
	u.op("POST /plans/{ref}/delete", u.planDelete)
}

func (u *UI) plansList(w http.ResponseWriter, r *http.Request, req *request) error {
	plans, err := u.plansForForm(r)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "plans", u.view(r, req, "Plans", "plans", plans))
	return nil
}

// planForm is a plan as its form shows it: limits in the units people
// type.
type planForm struct {
	Plan                *tenants.Plan
	Memory, CPUs, Pids  string
	MaxSites            int
	MaxReplicas         string // "" for no cap
	Action, Title, Verb string
}

func newPlanForm(p *tenants.Plan) planForm {
	if p == nil {
		return planForm{MaxSites: 1, Action: "/plans", Title: "New plan", Verb: "Add plan"}
	}
	f := planForm{Plan: p, Memory: memoryText(p.MemoryBytes), CPUs: cpusText(p.NanoCPUs), MaxSites: p.MaxSites,
		Action: "/plans/" + url.PathEscape(p.ID), Title: "Plan " + p.Slug, Verb: "Save"}
	if p.PidsLimit > 0 {
		f.Pids = formatInt(p.PidsLimit)
	}
	if p.MaxReplicas != nil {
		f.MaxReplicas = strconv.Itoa(*p.MaxReplicas)
	}
	return f
}

// readPlanForm reads the form's fields as a full plan input (the edit form
// shows every field, so a patch of all of them is the same).
func readPlanForm(r *http.Request) (manage.PlanInput, error) {
	in := manage.PlanInput{Slug: strings.TrimSpace(r.PostFormValue("slug")), Name: strings.TrimSpace(r.PostFormValue("name")),
		StripePriceID: strings.TrimSpace(r.PostFormValue("stripe_price_id"))}
	maxSites, err := formInt(r.PostForm, "max_sites")
	if err != nil {
		return in, err
	}
	if maxSites > int64(tenants.MaxPlanSites) || maxSites < 0 {
		return in, badField("max_sites", "must be from 1 to 1000000")
	}
	in.MaxSites = int(maxSites)
	if in.MemoryBytes, err = formMemory(r.PostForm, "memory_bytes"); err != nil {
		return in, err
	}
	if in.NanoCPUs, err = formCPUs(r.PostForm, "nano_cpus"); err != nil {
		return in, err
	}
	if in.PidsLimit, err = formInt(r.PostForm, "pids_limit"); err != nil {
		return in, err
	}
	// Empty is no cap.
	if strings.TrimSpace(r.PostFormValue("max_replicas")) != "" {
		n, err := formInt(r.PostForm, "max_replicas")
		if err != nil {
			return in, err
		}
		if n < 1 || n > tenants.MaxReplicas {
			return in, badField("max_replicas", "must be from 1 to 64, or empty for no cap")
		}
		replicas := int(n)
		in.MaxReplicas = &replicas
	}
	return in, nil
}

func (u *UI) planNew(w http.ResponseWriter, r *http.Request, req *request) error {
	u.render(w, http.StatusOK, "plan", u.view(r, req, "New plan", "plans", newPlanForm(nil)))
	return nil
}

func (u *UI) planCreate(w http.ResponseWriter, r *http.Request, req *request) error {
	in, err := readPlanForm(r)
	var p *tenants.Plan
	if err == nil {
		p, err = u.svc.CreatePlan(r.Context(), actor(req), in)
	}
	if err != nil {
		return u.formFailed(w, r, u.view(r, req, "New plan", "plans", newPlanForm(nil)), "plan", err)
	}
	return u.redirect(w, r, req, "/plans", "Plan "+p.Slug+" added.")
}

func (u *UI) planEdit(w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := u.svc.GetPlan(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "plan", u.view(r, req, "Plan "+p.Slug, "plans", newPlanForm(p)))
	return nil
}

func (u *UI) planUpdate(w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := u.svc.GetPlan(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	in, err := readPlanForm(r)
	if err == nil {
		_, err = u.svc.UpdatePlan(r.Context(), actor(req), p.ID, manage.PlanPatch{Slug: &in.Slug, Name: &in.Name,
			StripePriceID: &in.StripePriceID, MaxSites: &in.MaxSites, MemoryBytes: &in.MemoryBytes,
			NanoCPUs: &in.NanoCPUs, PidsLimit: &in.PidsLimit, MaxReplicas: manage.Nullable[int]{Set: true, Value: in.MaxReplicas}})
	}
	if err != nil {
		return u.formFailed(w, r, u.view(r, req, "Plan "+p.Slug, "plans", newPlanForm(p)), "plan", err)
	}
	return u.redirect(w, r, req, "/plans", "Plan "+in.Slug+" saved.")
}

func (u *UI) planDelete(w http.ResponseWriter, r *http.Request, req *request) error {
	p, err := u.svc.GetPlan(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	if err := u.svc.DeletePlan(r.Context(), actor(req), p.ID); err != nil {
		return err
	}
	return u.redirect(w, r, req, "/plans", "Plan "+p.Slug+" removed.")
}
