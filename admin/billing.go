package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// WebhookPath is where Stripe delivers webhook events. It is outside
// Prefix and needs no API key: Stripe's signature authenticates it.
const WebhookPath = "/webhooks/stripe"

// Error codes of billing.
const (
	CodeInvalidSignature = "invalid_signature"
	CodeStripe           = "stripe_error"
	CodeNotConfigured    = "billing_not_configured"
)

var errNoBilling = apiErr(http.StatusNotImplemented, CodeNotConfigured, "",
	"billing is not configured: add stripe { secret_key … webhook_secret … } to the tenants global option")

// Customer is a customer as the API shows it: with its billing state.
type Customer struct {
	tenants.Customer
	Billing CustomerBilling `json:"billing"`
}

// CustomerBilling is the billing state of a customer; the plan is the
// customer's plan_id.
type CustomerBilling struct {
	tenants.Billing
	// GraceEndsAt is when a past_due customer will be suspended unless
	// they pay.
	GraceEndsAt *time.Time `json:"grace_ends_at,omitempty"`
}

// customerOut adds the billing state to c.
func (a *API) customerOut(ctx context.Context, c *tenants.Customer) (*Customer, error) {
	b, err := a.store.GetBilling(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	return a.withBilling(c, b), nil
}

// customersOut adds the billing state to each of list, in one query.
func (a *API) customersOut(ctx context.Context, list []tenants.Customer) ([]Customer, error) {
	ids := make([]string, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	states, err := a.store.ListBilling(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Customer, len(list))
	for i := range list {
		b := states[list[i].ID]
		out[i] = *a.withBilling(&list[i], &b)
	}
	return out, nil
}

func (a *API) withBilling(c *tenants.Customer, b *tenants.Billing) *Customer {
	out := &Customer{Customer: *c, Billing: CustomerBilling{Billing: *b}}
	if c.Status == tenants.CustomerPastDue && b.PastDueSince != nil && a.cfg.Billing != nil {
		end := b.PastDueSince.Add(a.cfg.Billing.GracePeriod())
		out.Billing.GraceEndsAt = &end
	}
	return out
}

// createStripeCustomer gives a customer just created its Stripe customer.
// If Stripe fails the customer is deleted again, so that an error answer
// leaves nothing behind and the request can simply be retried.
func (a *API) createStripeCustomer(r *http.Request, c *tenants.Customer) error {
	if a.cfg.Billing == nil || c.StripeCustomerID != "" {
		return nil
	}
	err := a.cfg.Billing.EnsureCustomer(r.Context(), actor(r), c)
	if err == nil {
		return nil
	}
	if derr := a.store.DeleteCustomer(context.WithoutCancel(r.Context()), actor(r), c.ID, false); derr != nil {
		a.logFor(r).Error("removing customer after its stripe customer failed", zap.String("customer_id", c.ID), zap.Error(derr))
	}
	return err
}

// CheckoutInput is the body of POST /customers/{id}/checkout.
type CheckoutInput struct {
	// Plan is the plan's slug or id.
	Plan string `json:"plan"`
	// SuccessURL is where Stripe sends the customer after paying; it may
	// contain {CHECKOUT_SESSION_ID}.
	SuccessURL string `json:"success_url"`
	// CancelURL is where Stripe sends the customer who goes back.
	CancelURL string `json:"cancel_url"`
}

// PortalInput is the (optional) body of POST /customers/{id}/portal.
type PortalInput struct {
	// ReturnURL is where the portal's "return" link leads; default: the
	// portal configuration's.
	ReturnURL string `json:"return_url,omitempty"`
}

// SessionURL is the answer of checkout and portal: where to send the
// customer.
type SessionURL struct {
	URL string `json:"url"`
}

// billingCustomer returns the customer of the path, with a Stripe
// customer (made now if it has none), unless the customer is canceled.
func (a *API) billingCustomer(r *http.Request) (*tenants.Customer, error) {
	if a.cfg.Billing == nil {
		return nil, errNoBilling
	}
	id, err := id(r, "customer")
	if err != nil {
		return nil, err
	}
	c, err := a.store.GetCustomer(r.Context(), id)
	if err != nil {
		return nil, notFoundAs(err, "customer")
	}
	if c.Status == tenants.CustomerCanceled {
		return nil, apiErr(http.StatusConflict, CodeConflict, "status", "the customer is canceled; set its status first")
	}
	if err := a.cfg.Billing.EnsureCustomer(r.Context(), actor(r), c); err != nil {
		return nil, err
	}
	return c, nil
}

func (a *API) checkout(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Billing == nil {
		return errNoBilling
	}
	var in CheckoutInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Plan) == "" {
		return invalidParam("plan", "required: the plan's slug or id")
	}
	for field, v := range map[string]string{"success_url": in.SuccessURL, "cancel_url": in.CancelURL} {
		if err := checkURL(field, v, true); err != nil {
			return err
		}
	}
	c, err := a.billingCustomer(r)
	if err != nil {
		return err
	}
	plan, err := a.store.FindPlan(r.Context(), in.Plan)
	if errors.Is(err, tenants.ErrNotFound) {
		return invalidParam("plan", "no such plan")
	}
	if err != nil {
		return err
	}
	u, err := a.cfg.Billing.CheckoutURL(r.Context(), c, plan, in.SuccessURL, in.CancelURL)
	if errors.Is(err, billing.ErrNoPrice) {
		return invalidParam("plan", err.Error())
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, SessionURL{URL: u})
	return nil
}

func (a *API) portal(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Billing == nil {
		return errNoBilling
	}
	var in PortalInput
	if r.ContentLength != 0 {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return bodyError(err)
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := decodeJSON(body, &in); err != nil {
				return err
			}
		}
	}
	if err := checkURL("return_url", in.ReturnURL, false); err != nil {
		return err
	}
	c, err := a.billingCustomer(r)
	if err != nil {
		return err
	}
	u, err := a.cfg.Billing.PortalURL(r.Context(), c, in.ReturnURL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, SessionURL{URL: u})
	return nil
}

// MaxURLLen is the longest URL checkout and portal take, in characters.
const MaxURLLen = 2048

// checkURL refuses anything but an absolute http(s) URL of at most
// MaxURLLen characters; empty is allowed unless required.
func checkURL(field, v string, required bool) error {
	if v == "" {
		if required {
			return invalidParam(field, "required: an absolute http(s) URL")
		}
		return nil
	}
	if utf8.RuneCountInString(v) > MaxURLLen {
		return invalidParam(field, fmt.Sprintf("longer than %d characters", MaxURLLen))
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalidParam(field, "must be an absolute http(s) URL")
	}
	return nil
}

func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return bodyTooLarge(tooLarge.Limit)
	}
	return err
}

// serveWebhook receives a Stripe event. It answers 400 to a delivery
// whose signature does not verify (nothing changes), 200 to one applied
// or already applied, 5xx when it could not be applied: Stripe retries
// those.
func (a *API) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Billing == nil {
		writeError(w, r, apiErr(http.StatusNotFound, CodeNotFound, "", "no Stripe webhook here: billing is not configured"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, r, apiErr(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", r.Method+" is not allowed here; allowed: POST"))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, r, a.toAPIError(r, bodyError(err)))
		return
	}
	res, err := a.cfg.Billing.HandleWebhook(r.Context(), body, r.Header.Get("Stripe-Signature"))
	if errors.Is(err, billing.ErrSignature) {
		a.logFor(r).Warn("stripe webhook refused", zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		writeError(w, r, apiErr(http.StatusBadRequest, CodeInvalidSignature, "", "the Stripe-Signature header does not verify"))
		return
	}
	if err != nil {
		writeError(w, r, a.toAPIError(r, err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// servingStatus reports whether a customer in status has sites serving.
func servingStatus(status string) bool {
	return status == tenants.CustomerActive || status == tenants.CustomerPastDue
}

// stopCustomerSites stops the containers of a customer an operator just
// suspended or canceled, as billing does for the customers it suspends;
// visitors already get the "suspended" page. A failure is logged: with
// billing configured its sweep stops what is left.
func (a *API) stopCustomerSites(r *http.Request, customerID string) {
	if a.cfg.Runtime == nil {
		return
	}
	ids, err := a.store.CustomerSiteIDs(r.Context(), customerID)
	if err != nil {
		a.logFor(r).Warn("listing sites of suspended customer", zap.String("customer_id", customerID), zap.Error(err))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	for _, id := range ids {
		if err := a.cfg.Runtime.Stop(ctx, id); err != nil {
			a.logFor(r).Warn("stopping site of suspended customer", zap.String("site_id", id), zap.Error(err))
		}
	}
}
