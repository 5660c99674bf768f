package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/billing/billingtest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// billingGrace is the grace period of the billing platform: short, so
// the test sees it end, long enough to see the site serve through it.
const billingGrace = 3 * time.Second

// newBillingPlatform is the admin platform with billing on stripe-mock:
// a short grace period, checked often.
func newBillingPlatform(t *testing.T) *adminPlatform {
	t.Helper()
	return startAdminPlatform(t, nil, billingOptions(billingtest.StripeMock(t)))
}

// billingOptions are the options of a platform billing with Stripe at
// stripeURL, its admin host serving tenant_admin alone.
func billingOptions(stripeURL string) platformOptions {
	return platformOptions{
		Tenants: fmt.Sprintf(`stripe {
			secret_key {env.E2E_STRIPE_SECRET_KEY}
			webhook_secret {env.E2E_STRIPE_WEBHOOK_SECRET}
			api_url %s
			grace_period %s
			check_interval 100ms
		}`, stripeURL, billingGrace),
		Sites: fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost),
		Env: []string{
			"E2E_STRIPE_SECRET_KEY=" + billingtest.SecretKey,
			"E2E_STRIPE_WEBHOOK_SECRET=" + billingtest.WebhookSecret,
		},
	}
}

// webhook delivers payload to the admin host's Stripe webhook through
// Caddy, signed now with secret (unsigned when secret is empty).
func (p *adminPlatform) webhook(payload []byte, secret string) (int, billing.WebhookResult, string) {
	p.t.Helper()
	return p.webhookAt(payload, secret, time.Now())
}

// webhookAt is webhook with the signature dated at.
func (p *adminPlatform) webhookAt(payload []byte, secret string, at time.Time) (int, billing.WebhookResult, string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+p.caddy.HTTP+"/webhooks/stripe", bytes.NewReader(payload))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Host = adminHost
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Stripe-Signature", billingtest.Sign(payload, secret, at))
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		p.t.Fatalf("POST /webhooks/stripe: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var res billing.WebhookResult
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &res); err != nil {
			p.t.Fatalf("webhook answer %q: %v", body, err)
		}
	}
	return resp.StatusCode, res, string(body)
}

func (p *adminPlatform) mustWebhook(payload []byte, wantOutcome string) billing.WebhookResult {
	p.t.Helper()
	status, res, raw := p.webhook(payload, billingtest.WebhookSecret)
	if status != http.StatusOK || res.Outcome != wantOutcome {
		p.t.Fatalf("webhook: %d %s, want 200 %s", status, raw, wantOutcome)
	}
	return res
}

// suspendedPage reports whether host answers with the suspended page. The
// readiness path is used: it never starts a container.
func (p *adminPlatform) suspendedPage(h string) bool {
	status, body, _, err := p.tryGet(h, "/.well-known/caddy-multitenant/ready", nil)
	return err == nil && status == http.StatusServiceUnavailable && strings.Contains(body, "has been suspended")
}

// Billing through the built Caddy, Stripe being stripe-mock: the customer
// created over the API gets a Stripe customer; checkout and portal answer
// session URLs. Then signed webhooks drive the running site of the
// customer: a payment failure leaves it serving through the grace period,
// after which the platform's loop suspends it (suspended page, container
// stopped); a paid invoice serves it again within a second, started
// lazily; a deleted subscription suspends it at once, stopping its
// container, and a paid invoice brings it back. Replays and bad signatures
// change nothing, and every change is in the audit log.
func TestBillingSuspendsAndResumesSites(t *testing.T) {
	t.Parallel()
	p := newBillingPlatform(t)
	ctx := context.Background()

	var customer struct {
		tenants.Customer
		Billing tenants.Billing `json:"billing"`
	}
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "billed@example.org", "name": "Billed"}, 201, &customer)
	if !strings.HasPrefix(customer.StripeCustomerID, "cus_") {
		t.Fatalf("no stripe customer: %+v", customer)
	}
	cus := customer.StripeCustomerID
	var plan tenants.Plan
	p.mustAPI("POST", "/api/v1/plans", map[string]any{"slug": "basic", "name": "Basic", "stripe_price_id": "price_basic"}, 201, &plan)
	var session struct{ URL string }
	p.mustAPI("POST", "/api/v1/customers/"+customer.ID+"/checkout", map[string]any{"plan": "basic",
		"success_url": "https://billed.example.org/thanks", "cancel_url": "https://billed.example.org/"}, 200, &session)
	if !strings.HasPrefix(session.URL, "https://") {
		t.Fatalf("checkout url %q", session.URL)
	}
	p.mustAPI("POST", "/api/v1/customers/"+customer.ID+"/portal", nil, 200, &session)
	if !strings.HasPrefix(session.URL, "https://") {
		t.Fatalf("portal url %q", session.URL)
	}

	tpl := &tenants.Template{Slug: "testsite", Name: "Test site", Image: testimage.DefaultTag, Port: 8080,
		Env: map[string]string{"DATA_DIR": "/data"}, DataPath: "/data", HealthPath: "/health", MemoryBytes: 64 << 20, PidsLimit: 64}
	if err := p.store.CreateTemplate(ctx, "e2e", tpl); err != nil {
		t.Fatal(err)
	}
	site := &tenants.Site{CustomerID: customer.ID, TemplateID: tpl.ID, Subdomain: "billed", Env: map[string]string{"SITE_NAME": "billed"}}
	if err := p.store.CreateSite(ctx, "e2e", site); err != nil {
		t.Fatal(err)
	}
	h := host("billed")
	serves := func() bool {
		status, body, _, err := p.tryGet(h, "/", nil)
		return err == nil && status == http.StatusOK && body == "hello from billed"
	}
	eventually(t, 30*time.Second, "the site serves", serves)

	base := time.Now().Add(-time.Minute) // event clocks, increasing from here
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }

	// Checkout completed: the subscription and plan are linked.
	p.mustWebhook(billingtest.Event(t, "evt_e2e_checkout", billing.EventCheckoutCompleted, at(0),
		billingtest.CheckoutSession("cs_e2e", cus, customer.ID, plan.ID, "sub_e2e")), tenants.BillingApplied)

	// Payment fails: past_due, and the site keeps serving through the
	// grace period; then the platform's loop suspends the customer.
	failedAt := time.Now()
	res := p.mustWebhook(billingtest.Event(t, "evt_e2e_failed", billing.EventInvoicePaymentFailed, failedAt,
		billingtest.Invoice("in_e2e_1", cus, "sub_e2e")), tenants.BillingApplied)
	if res.Status != tenants.CustomerPastDue {
		t.Fatalf("after payment failure: %+v", res)
	}
	if !serves() {
		t.Fatal("a past_due customer's site stopped serving inside the grace period")
	}
	eventually(t, billingGrace+5*time.Second, "suspended after the grace period", func() bool { return p.suspendedPage(h) })
	if since := time.Since(failedAt.Truncate(time.Second)); since < billingGrace {
		t.Fatalf("suspended %s after the failure, inside the %s grace period", since, billingGrace)
	}
	eventually(t, 30*time.Second, "container stopped at the end of the grace period", func() bool { return !p.running(site.ID) })
	if status, body, _ := p.get(h, "/", nil); status != http.StatusServiceUnavailable || !strings.Contains(body, "has been suspended") {
		t.Fatalf("suspended site: %d %q", status, body)
	}
	if p.running(site.ID) {
		t.Fatal("a request to the suspended site started its container")
	}

	// Paid: serving again within a second (NOTIFY), started lazily.
	p.mustWebhook(billingtest.Event(t, "evt_e2e_paid", billing.EventInvoicePaid, time.Now().Add(time.Second),
		billingtest.Invoice("in_e2e_1", cus, "sub_e2e")), tenants.BillingApplied)
	eventually(t, time.Second, "routing follows the payment", func() bool { return !p.suspendedPage(h) })
	eventually(t, 30*time.Second, "the site serves again", serves)

	// The subscription is deleted: suspended at once, container stopped.
	deleted := billingtest.Event(t, "evt_e2e_deleted", billing.EventSubscriptionDeleted, time.Now().Add(2*time.Second),
		billingtest.Subscription("sub_e2e", cus, "canceled", "price_basic", time.Now()))
	if status, _, raw := p.webhook(deleted, "whsec_not_ours"); status != http.StatusBadRequest || !strings.Contains(raw, "invalid_signature") {
		t.Fatalf("wrongly signed delivery: %d %s", status, raw)
	}
	if status, _, raw := p.webhook(deleted, ""); status != http.StatusBadRequest {
		t.Fatalf("unsigned delivery: %d %s", status, raw)
	}
	if !serves() {
		t.Fatal("a refused delivery changed the site")
	}
	if res := p.mustWebhook(deleted, tenants.BillingApplied); res.Status != tenants.CustomerSuspended {
		t.Fatalf("after subscription deleted: %+v", res)
	}
	eventually(t, time.Second, "suspended page after subscription deleted", func() bool { return p.suspendedPage(h) })
	eventually(t, 30*time.Second, "container stopped after subscription deleted", func() bool { return !p.running(site.ID) })
	p.mustWebhook(deleted, tenants.BillingDuplicate)
	// Late and old: an invoice paid before the deletion changes nothing.
	p.mustWebhook(billingtest.Event(t, "evt_e2e_late", billing.EventInvoicePaid, at(1),
		billingtest.Invoice("in_e2e_0", cus, "sub_e2e")), tenants.BillingStale)
	if !p.suspendedPage(h) {
		t.Fatal("a stale event resumed the site")
	}

	// Paid again: serving again.
	p.mustWebhook(billingtest.Event(t, "evt_e2e_paid_2", billing.EventInvoicePaid, time.Now().Add(3*time.Second),
		billingtest.Invoice("in_e2e_2", cus, "sub_e2e")), tenants.BillingApplied)
	eventually(t, time.Second, "routing follows the second payment", func() bool { return !p.suspendedPage(h) })
	eventually(t, 30*time.Second, "the site serves after the second payment", serves)

	// The resource shows the billing state; the audit log has every change.
	var got struct {
		tenants.Customer
		Billing tenants.Billing `json:"billing"`
	}
	p.mustAPI("GET", "/api/v1/customers/"+customer.ID, nil, 200, &got)
	if got.Status != tenants.CustomerActive || got.PlanID != plan.ID || got.StripeSubscriptionID != "sub_e2e" ||
		got.Billing.SubscriptionStatus != "canceled" || got.Billing.LastEventAt == nil {
		t.Fatalf("customer resource: %+v %+v", got.Customer, got.Billing)
	}
	var audit struct {
		Items []struct{ Actor, Action string }
	}
	p.mustAPI("GET", "/api/v1/audit?entity=customer&entity_id="+customer.ID, nil, 200, &audit)
	var actors []string
	for i := len(audit.Items) - 1; i >= 0; i-- {
		if a := audit.Items[i].Actor; strings.HasPrefix(a, "stripe:") || strings.HasPrefix(a, "billing:") {
			actors = append(actors, a)
		}
	}
	want := []string{"stripe:evt_e2e_checkout", "stripe:evt_e2e_failed", billing.GraceActor, "stripe:evt_e2e_paid",
		"stripe:evt_e2e_deleted", "stripe:evt_e2e_paid_2"}
	if strings.Join(actors, " ") != strings.Join(want, " ") {
		t.Fatalf("billing audit actors %v, want %v", actors, want)
	}
}
