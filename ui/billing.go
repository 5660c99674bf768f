package ui

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The billing pages: for operators the Stripe events the webhook
// recorded and what each did; for a customer's users their plan, status
// and the way to Stripe's billing portal.

func (u *UI) routesBilling() {
	u.op("GET /billing", u.billingEvents)
	u.cu("GET /billing", u.customerBilling)
	u.cu("POST /billing/portal", u.customerBillingPortal)
}

// billingPage is how many events one page shows.
const billingPage = 50

type billingData struct {
	Configured bool
	Events     []tenants.BillingEventRow
	Older      string
}

func (u *UI) billingEvents(w http.ResponseWriter, r *http.Request, req *request) error {
	list, err := u.svc.ListBillingEvents(r.Context(), tenants.BillingEventFilter{Before: r.URL.Query().Get("before"), Limit: billingPage})
	if err != nil {
		return err
	}
	d := billingData{Configured: u.svc.Billing() != nil, Events: list}
	if len(list) == billingPage {
		d.Older = "?before=" + url.QueryEscape(list[len(list)-1].ID)
	}
	u.render(w, http.StatusOK, "billing", u.view(r, req, "Billing", "billing", d))
	return nil
}

type customerBillingData struct {
	Customer   *manage.Customer
	Plan       *tenants.Plan
	Configured bool
}

func (u *UI) customerBillingView(r *http.Request, req *request) (*view, error) {
	c, err := req.Scope.Customer(r.Context())
	if err != nil {
		return nil, err
	}
	d := customerBillingData{Customer: c, Configured: u.svc.Billing() != nil}
	if c.PlanID != "" {
		// The plan's name and limits only: what the customer pays for.
		if d.Plan, err = u.svc.GetPlan(r.Context(), c.PlanID); err != nil && !manage.IsCode(err, manage.NotFound) {
			return nil, err
		}
	}
	return u.view(r, req, "Billing", "billing", d), nil
}

func (u *UI) customerBilling(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.customerBillingView(r, req)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "billing_customer", v)
	return nil
}

func (u *UI) customerBillingPortal(w http.ResponseWriter, r *http.Request, req *request) error {
	target, err := req.Scope.Portal(r.Context(), actor(req), baseURL(r)+"/billing")
	if err != nil {
		var me *manage.Error
		if !errors.As(manage.Wrap(err), &me) || (me.Code != manage.NotConfigured && me.Code != manage.Upstream && me.Code != manage.Conflict) {
			return err
		}
		// Shown on the billing page, in the service's words.
		v, verr := u.customerBillingView(r, req)
		if verr != nil {
			return verr
		}
		v.Error = me.Message
		u.render(w, statusOf(err), "billing_customer", v)
		return nil
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}
