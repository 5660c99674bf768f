package manage

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Customer is a customer as operators see it: with its plan's slug and its
// billing state.
type Customer struct {
	tenants.Customer
	PlanSlug string          `json:"plan_slug,omitempty"`
	Billing  CustomerBilling `json:"billing"`
}

// CustomerBilling is the billing state of a customer; the plan is the
// customer's plan_id.
type CustomerBilling struct {
	tenants.Billing
	// GraceEndsAt is when a past_due customer will be suspended unless
	// they pay.
	GraceEndsAt *time.Time `json:"grace_ends_at,omitempty"`
}

// CustomerInput is what a new customer is made of.
type CustomerInput struct {
	Email                string `json:"email"`
	Name                 string `json:"name"`
	Status               string `json:"status,omitempty"`
	Plan                 string `json:"plan_id,omitempty"` // id or slug
	StripeCustomerID     string `json:"stripe_customer_id,omitempty"`
	StripeSubscriptionID string `json:"stripe_subscription_id,omitempty"`
}

// CustomerPatch changes the given fields of a customer.
type CustomerPatch struct {
	Email                *string `json:"email,omitempty"`
	Name                 *string `json:"name,omitempty"`
	Status               *string `json:"status,omitempty"`
	Plan                 *string `json:"plan_id,omitempty"` // id or slug; "" for none
	StripeCustomerID     *string `json:"stripe_customer_id,omitempty"`
	StripeSubscriptionID *string `json:"stripe_subscription_id,omitempty"`
}

// ListCustomers returns a page of customers, of one status when status is
// not empty.
func (s *Service) ListCustomers(ctx context.Context, status string, page Page) ([]Customer, error) {
	list, err := s.store.ListCustomers(ctx, tenants.CustomerFilter{Status: status}, page)
	if err != nil {
		return nil, fail("customer", err)
	}
	out, err := s.customersOut(ctx, list)
	return out, fail("customer", err)
}

// AllCustomers returns every customer of status ("" for all).
func (s *Service) AllCustomers(ctx context.Context, status string) ([]Customer, error) {
	return all(func(p Page) ([]Customer, error) { return s.ListCustomers(ctx, status, p) }, func(c *Customer) string { return c.ID })
}

// GetCustomer returns the customer ref names (id or email).
func (s *Service) GetCustomer(ctx context.Context, ref string) (*Customer, error) {
	c, err := s.customer(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	return s.customerOut(ctx, c)
}

// CreateCustomer adds a customer and, with billing, its Stripe customer;
// if Stripe fails the customer goes again, so a failed call leaves nothing
// behind and can simply be retried.
func (s *Service) CreateCustomer(ctx context.Context, actor string, in CustomerInput) (*Customer, error) {
	planID, err := refID(ctx, in.Plan, s.plan, "plan_id", func(p *tenants.Plan) string { return p.ID })
	if err != nil {
		return nil, err
	}
	c := &tenants.Customer{Email: in.Email, Name: in.Name, Status: in.Status, PlanID: planID,
		StripeCustomerID: in.StripeCustomerID, StripeSubscriptionID: in.StripeSubscriptionID}
	if err := s.store.CreateCustomer(ctx, actor, c); err != nil {
		return nil, fail("customer", err)
	}
	if s.billing != nil && c.StripeCustomerID == "" {
		if err := s.billing.EnsureCustomer(ctx, actor, c); err != nil {
			if derr := s.store.DeleteCustomer(context.WithoutCancel(ctx), actor, c.ID, false); derr != nil {
				s.log.Error("removing customer after its stripe customer failed", zap.String("customer_id", c.ID), zap.Error(derr))
			}
			return nil, fail("customer", err)
		}
	}
	return s.customerOut(ctx, c)
}

// UpdateCustomer changes the customer ref names. Suspending or canceling
// a customer stops its sites' containers at once, as billing does
// (visitors get the "suspended" page either way).
func (s *Service) UpdateCustomer(ctx context.Context, actor, ref string, p CustomerPatch) (*Customer, error) {
	c, err := s.customer(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	wasServing := Serving(c.Status)
	set(&c.Email, p.Email)
	set(&c.Name, p.Name)
	set(&c.Status, p.Status)
	set(&c.StripeCustomerID, p.StripeCustomerID)
	set(&c.StripeSubscriptionID, p.StripeSubscriptionID)
	if p.Plan != nil {
		if c.PlanID, err = refID(ctx, *p.Plan, s.plan, "plan_id", func(p *tenants.Plan) string { return p.ID }); err != nil {
			return nil, err
		}
	}
	if err := s.store.UpdateCustomer(ctx, actor, c); err != nil {
		return nil, fail("customer", err)
	}
	if wasServing && !Serving(c.Status) {
		s.StopCustomerSites(ctx, c.ID)
	}
	return s.customerOut(ctx, c)
}

// SetCustomerStatus suspends (suspended, canceled) or resumes (active)
// the customer ref names.
func (s *Service) SetCustomerStatus(ctx context.Context, actor, ref, status string) (*Customer, error) {
	return s.UpdateCustomer(ctx, actor, ref, CustomerPatch{Status: &status})
}

// Serving reports whether a customer in status has its sites serve.
func Serving(status string) bool {
	return status == tenants.CustomerActive || status == tenants.CustomerPastDue
}

// StopCustomerSites stops the containers of a customer's sites; a failure
// is logged (with billing, its sweep stops what is left).
func (s *Service) StopCustomerSites(ctx context.Context, customerID string) {
	if s.runtime == nil {
		return
	}
	ids, err := s.store.CustomerSiteIDs(ctx, customerID)
	if err != nil {
		s.log.Warn("listing sites of suspended customer", zap.String("customer_id", customerID), zap.Error(err))
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, id := range ids {
		if err := s.runtime.Stop(ctx, id); err != nil {
			s.log.Warn("stopping site of suspended customer", zap.String("site_id", id), zap.Error(err))
		}
	}
}

// StopSite stops the site's container (billing's sweep stops the sites
// that must not serve through it).
func (s *Service) StopSite(ctx context.Context, siteID string) error {
	if s.runtime == nil {
		return errNoRuntime
	}
	return fail("site", s.runtime.Stop(ctx, siteID))
}

// SiteRunning reports whether this process knows the site's container to
// be running.
func (s *Service) SiteRunning(siteID string) bool {
	return s.liveStatus(siteID).State == StateRunning
}

// DeleteCustomer removes the customer ref names. One that still has sites
// is a Conflict unless cascade: then its sites and domains go in the same
// transaction, and their containers after it (volumes kept unless purge).
func (s *Service) DeleteCustomer(ctx context.Context, actor, ref string, cascade, purge bool) (removedSites int, err error) {
	c, err := s.customer(ctx, "", ref)
	if err != nil {
		return 0, err
	}
	var siteIDs []string
	if cascade {
		if siteIDs, err = s.store.CustomerSiteIDs(ctx, c.ID); err != nil {
			return 0, fail("customer", err)
		}
	}
	if err := s.store.DeleteCustomer(ctx, actor, c.ID, cascade); err != nil {
		return 0, fail("customer", err)
	}
	for _, id := range siteIDs {
		s.removeContainer(ctx, id, purge)
	}
	return len(siteIDs), nil
}

// CheckoutInput asks for a Stripe Checkout session.
type CheckoutInput struct {
	// Plan is the plan's slug or id.
	Plan string `json:"plan"`
	// SuccessURL is where Stripe sends the customer after paying; it may
	// contain {CHECKOUT_SESSION_ID}.
	SuccessURL string `json:"success_url"`
	// CancelURL is where Stripe sends the customer who goes back.
	CancelURL string `json:"cancel_url"`
}

// Checkout returns the URL of a Stripe Checkout session in subscription
// mode for the customer ref names, on the plan.
func (s *Service) Checkout(ctx context.Context, actor, ref string, in CheckoutInput) (string, error) {
	if s.billing == nil {
		return "", errNoBilling
	}
	if strings.TrimSpace(in.Plan) == "" {
		return "", invalid("plan", "required: the plan's slug or id")
	}
	if err := checkURL("success_url", in.SuccessURL, true); err != nil {
		return "", err
	}
	if err := checkURL("cancel_url", in.CancelURL, true); err != nil {
		return "", err
	}
	c, err := s.billingCustomer(ctx, actor, ref)
	if err != nil {
		return "", err
	}
	plan, err := s.plan(ctx, "plan", in.Plan)
	if err != nil {
		return "", err
	}
	u, err := s.billing.CheckoutURL(ctx, c, plan, in.SuccessURL, in.CancelURL)
	return u, fail("plan", err)
}

// Portal returns the URL of a Stripe billing portal session for the
// customer ref names; returnURL may be empty.
func (s *Service) Portal(ctx context.Context, actor, ref, returnURL string) (string, error) {
	if s.billing == nil {
		return "", errNoBilling
	}
	if err := checkURL("return_url", returnURL, false); err != nil {
		return "", err
	}
	c, err := s.billingCustomer(ctx, actor, ref)
	if err != nil {
		return "", err
	}
	u, err := s.billing.PortalURL(ctx, c, returnURL)
	return u, fail("customer", err)
}

var errNoBilling = &Error{Code: NotConfigured,
	Message: "billing is not configured: add stripe { secret_key … webhook_secret … } to the tenants global option"}

// billingCustomer returns the customer with a Stripe customer (made now if
// it has none), unless it is canceled.
func (s *Service) billingCustomer(ctx context.Context, actor, ref string) (*tenants.Customer, error) {
	c, err := s.customer(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if c.Status == tenants.CustomerCanceled {
		return nil, conflict("status", "the customer is canceled; set its status first")
	}
	if err := s.billing.EnsureCustomer(ctx, actor, c); err != nil {
		return nil, fail("customer", err)
	}
	return c, nil
}

// MaxURLLen is the longest URL checkout and portal take, in characters.
const MaxURLLen = 2048

// checkURL refuses anything but an absolute http(s) URL of at most
// MaxURLLen characters; empty is allowed unless required.
func checkURL(field, v string, required bool) error {
	if v == "" {
		if required {
			return invalid(field, "required: an absolute http(s) URL")
		}
		return nil
	}
	if utf8.RuneCountInString(v) > MaxURLLen {
		return invalid(field, "longer than %d characters", MaxURLLen)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid(field, "must be an absolute http(s) URL")
	}
	return nil
}

// customerOut adds the plan's slug and the billing state to c.
func (s *Service) customerOut(ctx context.Context, c *tenants.Customer) (*Customer, error) {
	out, err := s.customersOut(ctx, []tenants.Customer{*c})
	if err != nil {
		return nil, fail("customer", err)
	}
	return &out[0], nil
}

// customersOut adds plans' slugs and billing states to each of list.
func (s *Service) customersOut(ctx context.Context, list []tenants.Customer) ([]Customer, error) {
	ids := make([]string, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	states, err := s.store.ListBilling(ctx, ids)
	if err != nil {
		return nil, err
	}
	slugs, err := s.planSlugs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Customer, len(list))
	for i, c := range list {
		b := states[c.ID]
		out[i] = Customer{Customer: c, PlanSlug: slugs[c.PlanID], Billing: CustomerBilling{Billing: b}}
		if c.Status == tenants.CustomerPastDue && b.PastDueSince != nil && s.billing != nil {
			end := b.PastDueSince.Add(s.billing.GracePeriod())
			out[i].Billing.GraceEndsAt = &end
		}
	}
	return out, nil
}

// planSlugs maps plan ids to slugs: plans are few.
func (s *Service) planSlugs(ctx context.Context) (map[string]string, error) {
	plans, err := all(func(p Page) ([]tenants.Plan, error) { return s.store.ListPlans(ctx, p) }, func(p *tenants.Plan) string { return p.ID })
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(plans))
	for _, p := range plans {
		m[p.ID] = p.Slug
	}
	return m, nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
