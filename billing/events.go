package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// SignatureTolerance is how far a webhook's signature may be dated from
// now, in the past or the future: Stripe's recommended window, which
// bounds how long a captured delivery could be replayed (and a replay
// changes nothing anyway, see HandleWebhook).
const SignatureTolerance = webhook.DefaultTolerance

// ErrSignature means a webhook delivery is not from Stripe as far as we
// can tell: its Stripe-Signature header is missing, malformed, wrong, too
// old or dated in the future, or the signed body is not an event.
var ErrSignature = errors.New("invalid stripe webhook signature")

// Event types the service acts on. Any other type is recorded and
// otherwise ignored.
const (
	EventCheckoutCompleted    = "checkout.session.completed"
	EventSubscriptionCreated  = "customer.subscription.created"
	EventSubscriptionUpdated  = "customer.subscription.updated"
	EventSubscriptionDeleted  = "customer.subscription.deleted"
	EventInvoicePaid          = "invoice.paid"
	EventInvoicePaymentFailed = "invoice.payment_failed"
)

// OutcomeUnhandled is the outcome of an event of a type the service does
// not act on; the others are tenants.Billing*.
const OutcomeUnhandled = "unhandled"

// WebhookResult reports what one delivery did.
type WebhookResult struct {
	EventID    string `json:"event_id"`
	Type       string `json:"type"`
	Outcome    string `json:"outcome"` // applied, duplicate, stale, ignored, no_customer, unhandled
	CustomerID string `json:"customer_id,omitempty"`
	Status     string `json:"status,omitempty"` // the customer's status after the event
}

// Actor is the audit log's actor of the changes an event makes.
func Actor(eventID string) string { return "stripe:" + eventID }

// HandleWebhook verifies a webhook delivery and applies its event once.
// payload is the request body exactly as received, signature its
// Stripe-Signature header. A bad signature is ErrSignature and changes
// nothing. The event's id is recorded in the transaction of its effect,
// so a redelivery is a "duplicate" with no second effect, and an event
// older than the newest one applied to its customer is "stale": recorded,
// no effect. When the event suspends a customer, their sites' containers
// are stopped before it returns.
func (s *Service) HandleWebhook(ctx context.Context, payload []byte, signature string) (*WebhookResult, error) {
	// The API version check is off: events are read through the few
	// fields below, which every API version since 2020 has (with the
	// moved ones looked up in both places), and refusing an event would
	// only make Stripe retry it for days.
	ev, err := webhook.ConstructEventWithOptions(payload, signature, s.cfg.WebhookSecret, webhook.ConstructEventOptions{
		Tolerance:                SignatureTolerance,
		IgnoreAPIVersionMismatch: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if err := checkSignedAt(signature, time.Now()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if ev.ID == "" || ev.Type == "" || ev.Data == nil {
		return nil, fmt.Errorf("%w: the signed body is not an event", ErrSignature)
	}
	in := tenants.BillingEventInput{ID: ev.ID, Type: string(ev.Type), Created: time.Unix(ev.Created, 0).UTC(), Payload: payload}
	res := &WebhookResult{EventID: ev.ID, Type: in.Type}

	var obj object
	if err := json.Unmarshal(ev.Data.Raw, &obj); err != nil {
		// Signed by Stripe but not the shape we know: record it so it is
		// not retried forever, and say so.
		s.log.Warn("stripe event object not understood; recorded without effect",
			zap.String("event_id", ev.ID), zap.String("type", in.Type), zap.Error(err))
		obj = object{}
	}
	target, decide, err := s.decision(ctx, in, &obj)
	if err != nil {
		return nil, err
	}
	br, err := s.store.ApplyBillingEvent(ctx, Actor(ev.ID), in, target, decide)
	if err != nil {
		return nil, fmt.Errorf("applying stripe event %s: %w", ev.ID, err)
	}
	res.Outcome = br.Outcome
	if decide == nil && br.Outcome == tenants.BillingNoCustomer {
		res.Outcome = OutcomeUnhandled
	}
	if br.After != nil {
		res.CustomerID, res.Status = br.After.ID, br.After.Status
	}
	log := s.log.Info
	if res.Outcome == tenants.BillingNoCustomer {
		log = s.log.Warn
	}
	log("stripe event", zap.String("event_id", ev.ID), zap.String("type", in.Type), zap.String("outcome", res.Outcome),
		zap.String("customer_id", res.CustomerID), zap.String("status", res.Status))
	if s.cfg.OnStatus != nil && res.Outcome == tenants.BillingApplied && br.After != nil {
		s.cfg.OnStatus(br.After.ID, br.After.Status)
	}
	if br.Changed() && serving(br.Before.Status) && !serving(br.After.Status) {
		s.stopCustomerSites(ctx, br.After.ID)
	}
	return res, nil
}

// serving reports whether a customer in status may have running sites.
func serving(status string) bool {
	return status == tenants.CustomerActive || status == tenants.CustomerPastDue
}

// object holds the fields of an event's object that the service reads:
// a Checkout Session, a Subscription or an Invoice. Fields that moved
// between API versions are read from both places.
type object struct {
	ID                string            `json:"id"`
	Customer          ref               `json:"customer"`
	ClientReferenceID string            `json:"client_reference_id"`
	Metadata          map[string]string `json:"metadata"`
	Mode              string            `json:"mode"`           // checkout session
	PaymentStatus     string            `json:"payment_status"` // checkout session
	Subscription      ref               `json:"subscription"`   // checkout session; invoice before 2025-03-31
	Status            string            `json:"status"`         // subscription
	CurrentPeriodEnd  int64             `json:"current_period_end"`
	Items             struct {
		Data []struct {
			Price            struct{ ID string } `json:"price"`
			CurrentPeriodEnd int64               `json:"current_period_end"` // 2025-03-31 and later
		} `json:"data"`
	} `json:"items"`
	SubscriptionDetails *struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"subscription_details"` // invoice before 2025-03-31
	Parent *struct {
		SubscriptionDetails *struct {
			Subscription ref               `json:"subscription"`
			Metadata     map[string]string `json:"metadata"`
		} `json:"subscription_details"`
	} `json:"parent"` // invoice, 2025-03-31 and later
}

// ref is an id field that may come expanded into its object.
type ref string

func (r *ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*r = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = ref(s)
	default:
		var o struct{ ID string }
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = ref(o.ID)
	}
	return nil
}

// invoiceSubscription returns the subscription an invoice bills and the
// metadata it carries.
func (o *object) invoiceSubscription() (string, map[string]string) {
	if o.Parent != nil && o.Parent.SubscriptionDetails != nil {
		return string(o.Parent.SubscriptionDetails.Subscription), o.Parent.SubscriptionDetails.Metadata
	}
	if o.SubscriptionDetails != nil {
		return string(o.Subscription), o.SubscriptionDetails.Metadata
	}
	return string(o.Subscription), nil
}

func (o *object) periodEnd() *time.Time {
	end := o.CurrentPeriodEnd
	if end == 0 && len(o.Items.Data) > 0 {
		end = o.Items.Data[0].CurrentPeriodEnd
	}
	if end == 0 {
		return nil
	}
	t := time.Unix(end, 0).UTC()
	return &t
}

// decision returns the customer an event is about and how it changes
// them; a nil decide means the type is not one the service acts on. Plans
// are looked up here, before the event's transaction, so that the
// decision itself is pure.
func (s *Service) decision(ctx context.Context, ev tenants.BillingEventInput, o *object) (tenants.BillingTarget, func(*tenants.BilledCustomer) bool, error) {
	target := tenants.BillingTarget{StripeCustomerID: string(o.Customer)}
	at := ev.Created
	switch ev.Type {
	case EventCheckoutCompleted:
		target.CustomerID = o.ClientReferenceID
		if target.CustomerID == "" {
			target.CustomerID = o.Metadata["customer_id"]
		}
		planID, err := s.knownPlan(ctx, o.Metadata["plan_id"])
		if err != nil {
			return target, nil, err
		}
		return target, func(c *tenants.BilledCustomer) bool {
			return checkoutCompleted(c, o, planID)
		}, nil

	case EventSubscriptionCreated, EventSubscriptionUpdated, EventSubscriptionDeleted:
		target.CustomerID = o.Metadata["customer_id"]
		var price string
		if len(o.Items.Data) > 0 {
			price = o.Items.Data[0].Price.ID
		}
		planID, err := s.planForPrice(ctx, price)
		if err != nil {
			return target, nil, err
		}
		status := o.Status
		if ev.Type == EventSubscriptionDeleted {
			status = "canceled" // a deleted subscription is canceled, whatever else it says
		}
		return target, func(c *tenants.BilledCustomer) bool {
			return subscriptionChanged(c, o.ID, status, o.periodEnd(), planID, at)
		}, nil

	case EventInvoicePaid, EventInvoicePaymentFailed:
		sub, meta := o.invoiceSubscription()
		target.CustomerID = meta["customer_id"]
		paid := ev.Type == EventInvoicePaid
		return target, func(c *tenants.BilledCustomer) bool {
			return invoiceSettled(c, sub, paid, at)
		}, nil
	}
	return target, nil, nil
}

// knownPlan returns id when it is a plan's id, else "" (a session made
// elsewhere, or a plan deleted since).
func (s *Service) knownPlan(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	p, err := s.store.GetPlan(ctx, id)
	if errors.Is(err, tenants.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

// The status machine. Each function edits c for one event and reports
// whether the event applies to c at all. Billing moves customers between
// active, past_due and suspended only: a customer an operator marked
// canceled stays canceled whatever Stripe says.

// checkoutCompleted links the subscription (and plan) a completed
// subscription checkout created; a paid checkout reactivates the customer.
func checkoutCompleted(c *tenants.BilledCustomer, o *object, planID string) bool {
	if o.Mode != "" && o.Mode != "subscription" {
		return false
	}
	if sub := string(o.Subscription); sub != "" {
		c.StripeSubscriptionID = sub
	}
	if c.StripeCustomerID == "" {
		c.StripeCustomerID = string(o.Customer)
	}
	if planID != "" {
		c.PlanID = planID
	}
	if o.PaymentStatus == "paid" || o.PaymentStatus == "no_payment_required" {
		activate(c)
	}
	return true
}

// subscriptionChanged follows the status of the customer's subscription.
// An event about another subscription than the linked one applies only
// when that one is live: then the customer has moved to it (a new
// checkout after a cancellation). So a late event about an old, canceled
// subscription cannot suspend a customer who pays for a new one.
func subscriptionChanged(c *tenants.BilledCustomer, subID, status string, periodEnd *time.Time, planID string, at time.Time) bool {
	live := status == "active" || status == "trialing"
	if c.StripeSubscriptionID != "" && c.StripeSubscriptionID != subID && !live {
		return false
	}
	c.StripeSubscriptionID = subID
	c.SubscriptionStatus = status
	if periodEnd != nil {
		c.CurrentPeriodEnd = periodEnd
	}
	if planID != "" {
		c.PlanID = planID
	}
	switch status {
	case "active", "trialing":
		activate(c)
	case "past_due":
		fallBehind(c, at)
	case "unpaid", "canceled", "paused":
		suspend(c)
	}
	// incomplete and incomplete_expired: the subscription's first payment
	// is pending or never came; it gave nothing, so it takes nothing.
	return true
}

// invoiceSettled follows the payment of a subscription invoice: paid
// reactivates, failed starts the grace period. Invoices of no or another
// subscription do not apply.
func invoiceSettled(c *tenants.BilledCustomer, subID string, paid bool, at time.Time) bool {
	if subID == "" || (c.StripeSubscriptionID != "" && c.StripeSubscriptionID != subID) {
		return false
	}
	if c.StripeSubscriptionID == "" {
		c.StripeSubscriptionID = subID
	}
	if paid {
		activate(c)
	} else {
		fallBehind(c, at)
	}
	return true
}

func activate(c *tenants.BilledCustomer) {
	if c.Status == tenants.CustomerCanceled {
		return
	}
	c.Status = tenants.CustomerActive
	c.PastDueSince = nil
}

// fallBehind moves an active customer to past_due; the grace period runs
// from the first failure, so retries failing again do not extend it, and
// a suspended customer stays suspended.
func fallBehind(c *tenants.BilledCustomer, at time.Time) {
	if c.Status != tenants.CustomerActive {
		return
	}
	c.Status = tenants.CustomerPastDue
	t := at
	c.PastDueSince = &t
}

func suspend(c *tenants.BilledCustomer) {
	if c.Status == tenants.CustomerCanceled {
		return
	}
	c.Status = tenants.CustomerSuspended
}
