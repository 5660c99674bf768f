package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/billing/billingtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Deliveries that are not provably from Stripe change nothing: no event
// recorded, no customer touched, no audit entry, no container stopped.
func TestWebhookRejectsBadSignatures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	now := time.Now()
	payload := billingtest.Event(t, "evt_bad_sig", EventSubscriptionDeleted, now,
		billingtest.Subscription("sub_1", "cus_payer", "canceled", "price_basic", now.Add(720*time.Hour)))
	good := billingtest.Sign(payload, billingtest.WebhookSecret, now)
	tampered := bytes.Replace(payload, []byte(`"canceled"`), []byte(`"canceleD"`), 1)
	auditBefore := len(f.audit())

	for _, tc := range []struct {
		name      string
		payload   []byte
		signature string
	}{
		{"missing header", payload, ""},
		{"malformed header", payload, "not-a-signature"},
		{"no v1 signature", payload, strings.Split(good, ",")[0]},
		{"tampered body", tampered, good},
		{"wrong secret", payload, billingtest.Sign(payload, "whsec_someone_else", now)},
		{"too old", payload, billingtest.Sign(payload, billingtest.WebhookSecret, now.Add(-SignatureTolerance-time.Minute))},
		{"10 minutes in the future", payload, billingtest.Sign(payload, billingtest.WebhookSecret, now.Add(10*time.Minute))},
		{"just beyond the tolerance ahead", payload, billingtest.Sign(payload, billingtest.WebhookSecret, now.Add(SignatureTolerance+5*time.Second))},
		{"two timestamps", payload, billingtest.Sign(payload, billingtest.WebhookSecret, now) + ",t=" + strconv.FormatInt(now.Unix(), 10)},
		{"signed body not an event", []byte(`[1,2]`), billingtest.Sign([]byte(`[1,2]`), billingtest.WebhookSecret, now)},
	} {
		res, err := f.svc.HandleWebhook(context.Background(), tc.payload, tc.signature)
		if !errors.Is(err, ErrSignature) {
			t.Errorf("%s: result %+v, error %v; want ErrSignature", tc.name, res, err)
		}
	}
	f.wantStatus(tenants.CustomerActive)
	if n := f.eventRows(); n != 0 {
		t.Fatalf("%d billing events recorded from rejected deliveries", n)
	}
	if n := len(f.audit()); n != auditBefore {
		t.Fatalf("audit entries %d → %d from rejected deliveries", auditBefore, n)
	}
	if s := f.sites.takeStopped(); len(s) != 0 {
		t.Fatalf("stopped %v on rejected deliveries", s)
	}

	// A signature just inside the tolerance, either way, is accepted (a
	// clock a little ahead of ours is no attack).
	res, err := f.svc.HandleWebhook(context.Background(), payload, billingtest.Sign(payload, billingtest.WebhookSecret, now.Add(-SignatureTolerance+30*time.Second)))
	if err != nil || res.Outcome != tenants.BillingApplied {
		t.Fatalf("signature inside tolerance: %+v, %v", res, err)
	}
	res, err = f.svc.HandleWebhook(context.Background(), payload, billingtest.Sign(payload, billingtest.WebhookSecret, now.Add(SignatureTolerance-30*time.Second)))
	if err != nil || res.Outcome != tenants.BillingDuplicate {
		t.Fatalf("signature inside tolerance ahead: %+v, %v", res, err)
	}
}

// A valid subscription.deleted suspends the customer in one audited
// transaction with the event's id, and stops every site of the customer.
// Delivered again (Stripe retries), it is a duplicate with no second
// effect.
func TestWebhookSuspendsOnceAndStopsSites(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	now := time.Now()
	end := now.Add(720 * time.Hour).Truncate(time.Second)
	payload := billingtest.Event(t, "evt_deleted", EventSubscriptionDeleted, now,
		billingtest.Subscription("sub_1", "cus_payer", "canceled", "price_basic", end))

	res := f.deliver(payload)
	if res.Outcome != tenants.BillingApplied || res.CustomerID != f.customer.ID || res.Status != tenants.CustomerSuspended {
		t.Fatalf("first delivery: %+v", res)
	}
	c, b := f.state()
	if c.Status != tenants.CustomerSuspended || c.StripeSubscriptionID != "sub_1" || c.PlanID != f.plan.ID ||
		b.SubscriptionStatus != "canceled" || b.CurrentPeriodEnd == nil || !b.CurrentPeriodEnd.Equal(end) ||
		b.LastEventAt == nil || b.LastEventAt.Unix() != now.Unix() {
		t.Fatalf("after subscription.deleted: %+v %+v", c, b)
	}
	if got := f.sites.takeStopped(); !slices.Equal(got, f.siteIDs) {
		t.Fatalf("stopped %v, want every site of the customer %v", got, f.siteIDs)
	}
	audit := f.audit()
	last := audit[len(audit)-1]
	if last.Actor != "stripe:evt_deleted" || last.Action != EventSubscriptionDeleted ||
		jsonField(t, last.Before, "status") != "active" || jsonField(t, last.After, "status") != "suspended" ||
		jsonField(t, last.After, "subscription_status") != "canceled" {
		t.Fatalf("audit entry: %s %s before %s after %s", last.Actor, last.Action, last.Before, last.After)
	}
	var recorded string
	if err := f.pool.QueryRow(context.Background(), `SELECT customer_id::text FROM billing_events WHERE id = 'evt_deleted'`).Scan(&recorded); err != nil || recorded != f.customer.ID {
		t.Fatalf("billing_events row: customer %q, %v", recorded, err)
	}

	// The replay.
	res = f.deliver(payload)
	if res.Outcome != tenants.BillingDuplicate {
		t.Fatalf("replay: %+v", res)
	}
	if n := len(f.audit()); n != len(audit) {
		t.Fatalf("replay wrote %d audit entries", n-len(audit))
	}
	if s := f.sites.takeStopped(); len(s) != 0 {
		t.Fatalf("replay stopped %v", s)
	}
	if n := f.eventRows(); n != 1 {
		t.Fatalf("%d billing events after a replay, want 1", n)
	}
}

// Events arriving out of order do not roll the customer back: an invoice
// paid before the cancellation, delivered after it, leaves the customer
// suspended; it is recorded (a replay of it is a duplicate).
func TestWebhookOutOfOrderEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	t0 := time.Now().Add(-time.Hour)
	failed := billingtest.Event(t, "evt_failed", EventInvoicePaymentFailed, t0, billingtest.Invoice("in_1", "cus_payer", "sub_1"))
	paid := billingtest.Event(t, "evt_paid", EventInvoicePaid, t0.Add(10*time.Minute), billingtest.Invoice("in_1", "cus_payer", "sub_1"))
	deleted := billingtest.Event(t, "evt_deleted", EventSubscriptionDeleted, t0.Add(20*time.Minute),
		billingtest.Subscription("sub_1", "cus_payer", "canceled", "price_basic", t0))

	if res := f.deliver(deleted); res.Status != tenants.CustomerSuspended {
		t.Fatalf("deleted: %+v", res)
	}
	for _, late := range [][]byte{paid, failed} {
		if res := f.deliver(late); res.Outcome != tenants.BillingStale || res.Status != tenants.CustomerSuspended {
			t.Fatalf("late event: %+v", res)
		}
	}
	f.wantStatus(tenants.CustomerSuspended)
	if res := f.deliver(paid); res.Outcome != tenants.BillingDuplicate {
		t.Fatalf("replayed stale event: %+v", res)
	}
	// A newer payment does reactivate.
	newer := billingtest.Event(t, "evt_paid_2", EventInvoicePaid, t0.Add(30*time.Minute), billingtest.Invoice("in_2", "cus_payer", "sub_1"))
	if res := f.deliver(newer); res.Outcome != tenants.BillingApplied || res.Status != tenants.CustomerActive {
		t.Fatalf("newer invoice.paid: %+v", res)
	}
}

// Unknown event types and events about nobody we know are acknowledged
// (so Stripe stops retrying), recorded, and change nothing.
func TestWebhookUnhandledAndUnknownCustomer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	now := time.Now()
	auditBefore := len(f.audit())
	res := f.deliver(billingtest.Event(t, "evt_other", "charge.refunded", now, map[string]any{"id": "ch_1", "object": "charge", "customer": "cus_payer"}))
	if res.Outcome != OutcomeUnhandled {
		t.Fatalf("unknown type: %+v", res)
	}
	res = f.deliver(billingtest.Event(t, "evt_stranger", EventSubscriptionDeleted, now,
		billingtest.Subscription("sub_x", "cus_stranger", "canceled", "price_basic", now)))
	if res.Outcome != tenants.BillingNoCustomer {
		t.Fatalf("unknown customer: %+v", res)
	}
	f.wantStatus(tenants.CustomerActive)
	if n := f.eventRows(); n != 2 {
		t.Fatalf("%d billing events recorded, want 2", n)
	}
	if n := len(f.audit()); n != auditBefore {
		t.Fatalf("audit grew by %d", n-auditBefore)
	}
	if res := f.deliver(billingtest.Event(t, "evt_other", "charge.refunded", now, map[string]any{"id": "ch_1"})); res.Outcome != tenants.BillingDuplicate {
		t.Fatalf("replayed unknown type: %+v", res)
	}
}

// Checkout completion links the subscription and plan to the customer it
// was made for (found by client reference even before it has a Stripe
// customer id), and the subscription's own events then keep it current;
// a plan change in Stripe follows through the price → plan mapping.
func TestWebhookCheckoutLinksSubscriptionAndPlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{Prices: map[string]string{"pro": "price_pro_configured"}})
	ctx := context.Background()
	pro := &tenants.Plan{Slug: "pro", Name: "Pro"}
	if err := f.store.CreatePlan(ctx, "test", pro); err != nil {
		t.Fatal(err)
	}
	fresh := &tenants.Customer{Email: "new@example.org", Name: "New"}
	if err := f.store.CreateCustomer(ctx, "test", fresh); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res := f.deliver(billingtest.Event(t, "evt_checkout", EventCheckoutCompleted, now,
		billingtest.CheckoutSession("cs_1", "cus_new", fresh.ID, f.plan.ID, "sub_new")))
	if res.Outcome != tenants.BillingApplied || res.CustomerID != fresh.ID {
		t.Fatalf("checkout: %+v", res)
	}
	c, _ := f.store.GetCustomer(ctx, fresh.ID)
	if c.StripeCustomerID != "cus_new" || c.StripeSubscriptionID != "sub_new" || c.PlanID != f.plan.ID || c.Status != tenants.CustomerActive {
		t.Fatalf("after checkout: %+v", c)
	}
	end := now.Add(30 * 24 * time.Hour).Truncate(time.Second)
	res = f.deliver(billingtest.Event(t, "evt_upgrade", EventSubscriptionUpdated, now.Add(time.Second),
		billingtest.Subscription("sub_new", "cus_new", "active", "price_pro_configured", end)))
	if res.Outcome != tenants.BillingApplied {
		t.Fatalf("upgrade: %+v", res)
	}
	c, _ = f.store.GetCustomer(ctx, fresh.ID)
	b, _ := f.store.GetBilling(ctx, fresh.ID)
	if c.PlanID != pro.ID || b.SubscriptionStatus != "active" || !b.CurrentPeriodEnd.Equal(end) {
		t.Fatalf("after upgrade: %+v %+v", c, b)
	}
	// A late event about another, dead subscription of the same customer
	// does not suspend them.
	res = f.deliver(billingtest.Event(t, "evt_old_sub", EventSubscriptionDeleted, now.Add(2*time.Second),
		billingtest.Subscription("sub_old", "cus_new", "canceled", "price_basic", now)))
	if res.Outcome != tenants.BillingIgnored || res.Status != tenants.CustomerActive {
		t.Fatalf("event of another subscription: %+v", res)
	}
}

// The status machine, event by event: payment failure starts the grace
// period (sites keep serving), a second failure does not extend it, the
// sweep suspends after it (stopping the sites, audited), payment
// reactivates; a subscription gone unpaid suspends at once; an operator's
// canceled customer stays canceled.
func TestStatusMachine(t *testing.T) {
	t.Parallel()
	grace := time.Hour
	f := newFixture(t, fixtureOptions{GracePeriod: grace})
	ctx := context.Background()
	t0 := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	inv := billingtest.Invoice("in_1", "cus_payer", "sub_1")

	if res := f.deliver(billingtest.Event(t, "evt_f1", EventInvoicePaymentFailed, t0, inv)); res.Status != tenants.CustomerPastDue {
		t.Fatalf("payment failed: %+v", res)
	}
	if s := f.sites.takeStopped(); len(s) != 0 {
		t.Fatalf("past_due stopped sites %v", s)
	}
	f.deliver(billingtest.Event(t, "evt_f2", EventInvoicePaymentFailed, t0.Add(30*time.Minute), inv))
	if _, b := f.state(); b.PastDueSince == nil || !b.PastDueSince.Equal(t0) {
		t.Fatalf("a second failure moved the grace clock: %+v", b)
	}

	// Inside the grace period nothing happens; after it, suspension.
	if err := f.svc.Sweep(ctx, t0.Add(grace-time.Second)); err != nil {
		t.Fatal(err)
	}
	f.wantStatus(tenants.CustomerPastDue)
	if err := f.svc.Sweep(ctx, t0.Add(grace)); err != nil {
		t.Fatal(err)
	}
	f.wantStatus(tenants.CustomerSuspended)
	if got := f.sites.takeStopped(); !slices.Equal(got, f.siteIDs) {
		t.Fatalf("grace expiry stopped %v, want %v", got, f.siteIDs)
	}
	audit := f.audit()
	if last := audit[len(audit)-1]; last.Actor != GraceActor || last.Action != "grace_expired" {
		t.Fatalf("grace expiry audit: %+v", last)
	}
	// Stripe retrying the invoice after the suspension fails again: still suspended.
	if res := f.deliver(billingtest.Event(t, "evt_f3", EventInvoicePaymentFailed, t0.Add(2*time.Hour), inv)); res.Status != tenants.CustomerSuspended {
		t.Fatalf("failure while suspended: %+v", res)
	}
	if res := f.deliver(billingtest.Event(t, "evt_p1", EventInvoicePaid, t0.Add(150*time.Minute), inv)); res.Status != tenants.CustomerActive {
		t.Fatalf("paid: %+v", res)
	}
	if _, b := f.state(); b.PastDueSince != nil {
		t.Fatalf("paid left past_due_since %v", b.PastDueSince)
	}
	if res := f.deliver(billingtest.Event(t, "evt_unpaid", EventSubscriptionUpdated, t0.Add(160*time.Minute),
		billingtest.Subscription("sub_1", "cus_payer", "unpaid", "price_basic", t0))); res.Status != tenants.CustomerSuspended {
		t.Fatalf("unpaid: %+v", res)
	}
	f.sites.takeStopped()

	// An operator closes the account: billing never reopens it.
	c, _ := f.state()
	c.Status = tenants.CustomerCanceled
	if err := f.store.UpdateCustomer(ctx, "operator", c); err != nil {
		t.Fatal(err)
	}
	if res := f.deliver(billingtest.Event(t, "evt_p2", EventInvoicePaid, t0.Add(170*time.Minute), inv)); res.Status != tenants.CustomerCanceled {
		t.Fatalf("paid after cancellation by operator: %+v", res)
	}
}

// The sweep also stops running sites that must not run (a start racing a
// suspension, or an operator's suspension), and leaves the others alone.
func TestSweepStopsNonServingSites(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	f.sites.setRunning(f.siteIDs...)
	if err := f.svc.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := f.sites.takeStopped(); len(s) != 0 {
		t.Fatalf("stopped serving sites %v", s)
	}
	c, _ := f.state()
	c.Status = tenants.CustomerSuspended
	if err := f.store.UpdateCustomer(ctx, "operator", c); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := f.sites.takeStopped(); !slices.Equal(got, f.siteIDs) {
		t.Fatalf("sweep stopped %v, want %v", got, f.siteIDs)
	}
	// Stopped, they are no longer running: the next sweep does nothing.
	if err := f.svc.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := f.sites.takeStopped(); len(s) != 0 {
		t.Fatalf("second sweep stopped %v", s)
	}
}

// Run, the loop the platform owns, suspends a customer whose (short)
// grace period ends, and returns when its context ends.
func TestRunSuspendsAfterGracePeriod(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{GracePeriod: 300 * time.Millisecond, CheckInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Stripe's created has second resolution: a failure "now" is up to a
	// second old already.
	failedAt := time.Now()
	f.deliver(billingtest.Event(t, "evt_failed", EventInvoicePaymentFailed, failedAt, billingtest.Invoice("in_1", "cus_payer", "sub_1")))
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _ := f.state()
		if c.Status == tenants.CustomerSuspended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not suspended within 5s of a 300ms grace period: %q", c.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if since := time.Since(failedAt.Truncate(time.Second)); since < 300*time.Millisecond {
		t.Fatalf("suspended %s after the failure, inside the grace period", since)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func jsonField(t *testing.T, doc []byte, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	return m[name]
}
