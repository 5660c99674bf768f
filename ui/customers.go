package ui

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The customers pages: list and search, create, and one customer's page
// with its sites, billing, users and every action on it.

func (u *UI) routesCustomers() {
	u.op("GET /customers", u.customersList)
	u.op("GET /customers/new", u.customerNew)
	u.op("POST /customers", u.customerCreate)
	u.op("GET /customers/{ref}", u.customerDetail)
	u.op("POST /customers/{ref}", u.customerUpdate)
	u.op("POST /customers/{ref}/suspend", u.customerStatus(tenants.CustomerSuspended, "suspended"))
	u.op("POST /customers/{ref}/resume", u.customerStatus(tenants.CustomerActive, "active again"))
	u.op("POST /customers/{ref}/delete", u.customerDelete)
	u.op("POST /customers/{ref}/portal", u.customerPortal)
	u.op("POST /customers/{ref}/invite", u.customerInvite)
}

// customersPage is how many customers one page of the list shows.
const customersPage = 50

type customersData struct {
	Customers []manage.Customer
	Q, Status string
	Statuses  []string
	// Page is the 1-based page shown; Prev and Next the query strings of
	// its neighbours ("" when there is none).
	Page            int
	Prev, Next      string
	Total, From, To int
}

func (u *UI) customersList(w http.ResponseWriter, r *http.Request, req *request) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	status := r.URL.Query().Get("status")
	if status != "" && !slices.Contains(tenants.CustomerStatuses, status) {
		return badField("status", "must be one of "+strings.Join(tenants.CustomerStatuses, ", "))
	}
	// Customers are searched here, not in SQL: an operator's list is small
	// enough to read whole, and the search is a plain substring.
	all, err := u.svc.AllCustomers(r.Context(), status)
	if err != nil {
		return err
	}
	var list []manage.Customer
	needle := strings.ToLower(q)
	for _, c := range all {
		if needle == "" || strings.Contains(strings.ToLower(c.Email), needle) || strings.Contains(strings.ToLower(c.Name), needle) {
			list = append(list, c)
		}
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	d := customersData{Q: q, Status: status, Statuses: tenants.CustomerStatuses, Page: page, Total: len(list)}
	from := (page - 1) * customersPage
	if from > len(list) {
		from = len(list)
	}
	to := min(from+customersPage, len(list))
	d.Customers, d.From, d.To = list[from:to], from+1, to
	pageQuery := func(p int) string {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if status != "" {
			v.Set("status", status)
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		return "?" + v.Encode()
	}
	if page > 1 {
		d.Prev = pageQuery(page - 1)
	}
	if to < len(list) {
		d.Next = pageQuery(page + 1)
	}
	u.render(w, http.StatusOK, "customers", u.view(r, req, "Customers", "customers", d))
	return nil
}

type customerFormData struct {
	Plans    []tenants.Plan
	Statuses []string
	Customer *manage.Customer
}

func (u *UI) plansForForm(r *http.Request) ([]tenants.Plan, error) {
	return u.svc.ListPlans(r.Context(), manage.Page{Limit: 500})
}

func (u *UI) customerNew(w http.ResponseWriter, r *http.Request, req *request) error {
	plans, err := u.plansForForm(r)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "customer_new", u.view(r, req, "New customer", "customers", customerFormData{Plans: plans, Statuses: tenants.CustomerStatuses}))
	return nil
}

func (u *UI) customerCreate(w http.ResponseWriter, r *http.Request, req *request) error {
	in := manage.CustomerInput{Email: strings.TrimSpace(r.PostFormValue("email")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Status: r.PostFormValue("status"), Plan: r.PostFormValue("plan_id")}
	c, err := u.svc.CreateCustomer(r.Context(), actor(req), in)
	if err != nil {
		plans, perr := u.plansForForm(r)
		if perr != nil {
			return perr
		}
		v := u.view(r, req, "New customer", "customers", customerFormData{Plans: plans, Statuses: tenants.CustomerStatuses})
		return u.formFailed(w, r, v, "customer_new", err)
	}
	return u.redirect(w, r, req, "/customers/"+url.PathEscape(c.ID), "Customer "+c.Email+" added.")
}

type customerData struct {
	Customer *manage.Customer
	Sites    []manage.Site
	Users    []manage.User
	Plans    []tenants.Plan
	// Billing says whether Stripe is configured.
	Billing bool
	// Invitation is the link just made, shown this once.
	Invitation *manage.Invitation
	InviteURL  string
}

func (u *UI) customerView(r *http.Request, req *request, ref string) (*view, *customerData, error) {
	ctx := r.Context()
	c, err := u.svc.GetCustomer(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	d := &customerData{Customer: c, Billing: u.svc.Billing() != nil}
	if d.Sites, err = u.svc.AllSites(ctx, manage.SiteFilter{Customer: c.ID}); err != nil {
		return nil, nil, err
	}
	if d.Users, err = u.svc.ListUsers(ctx, tenants.UserFilter{CustomerID: c.ID}); err != nil {
		return nil, nil, err
	}
	if d.Plans, err = u.plansForForm(r); err != nil {
		return nil, nil, err
	}
	return u.view(r, req, "Customer "+c.Email, "customers", d), d, nil
}

func (u *UI) customerDetail(w http.ResponseWriter, r *http.Request, req *request) error {
	v, _, err := u.customerView(r, req, r.PathValue("ref"))
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "customer", v)
	return nil
}

func (u *UI) customerUpdate(w http.ResponseWriter, r *http.Request, req *request) error {
	email, name := strings.TrimSpace(r.PostFormValue("email")), strings.TrimSpace(r.PostFormValue("name"))
	plan := r.PostFormValue("plan_id")
	c, err := u.svc.UpdateCustomer(r.Context(), actor(req), r.PathValue("ref"), manage.CustomerPatch{Email: &email, Name: &name, Plan: &plan})
	if err != nil {
		v, _, verr := u.customerView(r, req, r.PathValue("ref"))
		if verr != nil {
			return verr
		}
		return u.formFailed(w, r, v, "customer", err)
	}
	return u.redirect(w, r, req, "/customers/"+url.PathEscape(c.ID), "Customer "+c.Email+" saved.")
}

func (u *UI) customerStatus(status, word string) handler {
	return func(w http.ResponseWriter, r *http.Request, req *request) error {
		c, err := u.svc.SetCustomerStatus(r.Context(), actor(req), r.PathValue("ref"), status)
		if err != nil {
			return err
		}
		return u.redirect(w, r, req, "/customers/"+url.PathEscape(c.ID), "Customer "+c.Email+" is "+word+".")
	}
}

func (u *UI) customerDelete(w http.ResponseWriter, r *http.Request, req *request) error {
	cascade := r.PostFormValue("cascade") != ""
	n, err := u.svc.DeleteCustomer(r.Context(), actor(req), r.PathValue("ref"), cascade, r.PostFormValue("purge") != "")
	if manage.IsCode(err, manage.Conflict) && !cascade {
		err = &manage.Error{Code: manage.Conflict, Message: "The customer still has sites: remove them first, or tick “also remove its sites”."}
	}
	if err != nil {
		return u.customerRefused(w, r, req, err)
	}
	msg := "Customer removed."
	if n > 0 {
		msg = "Customer removed with " + strconv.Itoa(n) + " site(s)."
	}
	return u.redirect(w, r, req, "/customers", msg)
}

// customerPortal sends the operator to the customer's Stripe billing
// portal, returning to the customer's page.
func (u *UI) customerPortal(w http.ResponseWriter, r *http.Request, req *request) error {
	ref := r.PathValue("ref")
	target, err := u.svc.Portal(r.Context(), actor(req), ref, baseURL(r)+"/customers/"+url.PathEscape(ref))
	if err != nil {
		return u.customerRefused(w, r, req, err)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// customerInvite makes a one-time link for a user of the customer and
// shows it on the customer's page this once (never in a flash, which
// another page might show).
func (u *UI) customerInvite(w http.ResponseWriter, r *http.Request, req *request) error {
	inv, err := u.svc.InviteCustomerUser(r.Context(), actor(req), r.PathValue("ref"),
		strings.TrimSpace(r.PostFormValue("invite_email")), strings.TrimSpace(r.PostFormValue("invite_name")))
	v, d, verr := u.customerView(r, req, r.PathValue("ref"))
	if verr != nil {
		return verr
	}
	if err != nil {
		if !manage.IsCode(err, manage.Invalid) && !manage.IsCode(err, manage.Conflict) {
			return err
		}
		// The invitation form's fields are named apart from the edit
		// form's: its error goes next to its own input.
		var me *manage.Error
		errors.As(err, &me)
		v.Form, v.Errors["invite_email"] = r.PostForm, me.Message
		u.render(w, statusOf(err), "customer", v)
		return nil
	}
	d.Invitation, d.InviteURL = inv, baseURL(r)+inv.Path
	u.render(w, http.StatusOK, "customer", v)
	return nil
}

// customerRefused shows the customer's page again with why an action was
// refused (billing not configured, sites in the way), with the error's
// status; the error page shows anything else.
func (u *UI) customerRefused(w http.ResponseWriter, r *http.Request, req *request, err error) error {
	var me *manage.Error
	if !errors.As(manage.Wrap(err), &me) || (me.Code != manage.Conflict && me.Code != manage.NotConfigured && me.Code != manage.Upstream) {
		return err
	}
	v, _, verr := u.customerView(r, req, r.PathValue("ref"))
	if verr != nil {
		return verr
	}
	v.Error = me.Message
	u.render(w, statusOf(err), "customer", v)
	return nil
}
