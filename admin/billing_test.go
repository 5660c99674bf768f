package admin

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/billing/billingtest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// newBillingAPI is the API with billing on Stripe at apiURL.
func newBillingAPI(t *testing.T, apiURL, secretKey string) *testAPI {
	t.Helper()
	ta := newTestAPI(t, manage.Config{})
	svc, err := billing.New(billing.Config{SecretKey: secretKey, WebhookSecret: billingtest.WebhookSecret,
		APIURL: apiURL, GracePeriod: 48 * time.Hour, Store: ta.store})
	if err != nil {
		t.Fatal(err)
	}
	ta.api = New(Config{Service: manage.New(manage.Config{Store: ta.store, Billing: svc})})
	srv := httptest.NewServer(ta.api)
	t.Cleanup(srv.Close)
	ta.url = srv.URL
	return ta
}

// webhook posts payload to the webhook path without an API key.
func (ta *testAPI) webhook(payload []byte, signature string) (int, []byte) {
	ta.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ta.url+WebhookPath, bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// Creating a customer creates its Stripe customer; checkout and portal
// answer Stripe's session URLs (stripe-mock); the customer resource shows
// its billing state as webhooks change it.
func TestBillingAPI(t *testing.T) {
	t.Parallel()
	ta := newBillingAPI(t, billingtest.StripeMock(t), billingtest.SecretKey)
	ctx := context.Background()

	var c Customer
	if status, _, raw := ta.do("POST", "/api/v1/customers", map[string]any{"email": "pay@example.org", "name": "Pay"}, &c); status != 201 {
		t.Fatalf("create: %d %s", status, raw)
	}
	if !strings.HasPrefix(c.StripeCustomerID, "cus_") || c.Billing.SubscriptionStatus != "" || c.Billing.CurrentPeriodEnd != nil {
		t.Fatalf("created: %+v", c)
	}
	if stored, _ := ta.store.GetCustomer(ctx, c.ID); stored.StripeCustomerID != c.StripeCustomerID {
		t.Fatalf("stored stripe id %q", stored.StripeCustomerID)
	}
	plan := &tenants.Plan{Slug: "basic", Name: "Basic", StripePriceID: "price_basic"}
	if err := ta.store.CreatePlan(ctx, "test", plan); err != nil {
		t.Fatal(err)
	}
	noPrice := &tenants.Plan{Slug: "free", Name: "Free"}
	if err := ta.store.CreatePlan(ctx, "test", noPrice); err != nil {
		t.Fatal(err)
	}

	checkout := "/api/v1/customers/" + c.ID + "/checkout"
	for _, ref := range []string{"basic", plan.ID} {
		var out SessionURL
		status, _, raw := ta.do("POST", checkout, map[string]any{"plan": ref,
			"success_url": "https://shop.example.org/ok?session={CHECKOUT_SESSION_ID}", "cancel_url": "https://shop.example.org/"}, &out)
		if status != 200 || !strings.HasPrefix(out.URL, "https://") {
			t.Fatalf("checkout %s: %d %s", ref, status, raw)
		}
	}
	ok := "https://shop.example.org/"
	ta.wantError("POST", checkout, map[string]any{"plan": "", "success_url": ok, "cancel_url": ok}, 422, CodeInvalid, "plan")
	ta.wantError("POST", checkout, map[string]any{"plan": "gold", "success_url": ok, "cancel_url": ok}, 422, CodeInvalid, "plan")
	ta.wantError("POST", checkout, map[string]any{"plan": "free", "success_url": ok, "cancel_url": ok}, 422, CodeInvalid, "plan")
	ta.wantError("POST", checkout, map[string]any{"plan": "basic", "cancel_url": ok}, 422, CodeInvalid, "success_url")
	ta.wantError("POST", checkout, map[string]any{"plan": "basic", "success_url": ok, "cancel_url": "javascript:alert(1)"}, 422, CodeInvalid, "cancel_url")
	ta.wantError("POST", checkout, map[string]any{"plan": "basic", "success_url": ok, "cancel_url": ok, "price": "x"}, 400, CodeUnknownField, "price")
	ta.wantError("POST", "/api/v1/customers/00000000-0000-0000-0000-000000000000/checkout",
		map[string]any{"plan": "basic", "success_url": ok, "cancel_url": ok}, 404, CodeNotFound, "")
	if status, _, _ := ta.doAs(ta.read, "POST", checkout, map[string]any{"plan": "basic", "success_url": ok, "cancel_url": ok}, nil); status != 403 {
		t.Fatalf("checkout with a read key: %d", status)
	}

	portal := "/api/v1/customers/" + c.ID + "/portal"
	for _, body := range []any{nil, map[string]any{"return_url": "https://shop.example.org/account"}} {
		var out SessionURL
		if status, _, raw := ta.do("POST", portal, body, &out); status != 200 || !strings.HasPrefix(out.URL, "https://") {
			t.Fatalf("portal %v: %d %s", body, status, raw)
		}
	}
	ta.wantError("POST", portal, map[string]any{"return_url": "/relative"}, 422, CodeInvalid, "return_url")

	// A customer from before billing gets its Stripe customer at checkout.
	old := &tenants.Customer{Email: "old@example.org", Name: "Old"}
	if err := ta.store.CreateCustomer(ctx, "test", old); err != nil {
		t.Fatal(err)
	}
	if status, _, raw := ta.do("POST", "/api/v1/customers/"+old.ID+"/portal", nil, nil); status != 200 {
		t.Fatalf("portal of a customer without stripe id: %d %s", status, raw)
	}
	if stored, _ := ta.store.GetCustomer(ctx, old.ID); !strings.HasPrefix(stored.StripeCustomerID, "cus_") {
		t.Fatalf("stripe customer not stored: %+v", stored)
	}

	// A canceled customer cannot check out.
	closed := &tenants.Customer{Email: "closed@example.org", Name: "Closed", Status: tenants.CustomerCanceled}
	if err := ta.store.CreateCustomer(ctx, "test", closed); err != nil {
		t.Fatal(err)
	}
	ta.wantError("POST", "/api/v1/customers/"+closed.ID+"/checkout", map[string]any{"plan": "basic", "success_url": ok, "cancel_url": ok}, 409, CodeConflict, "status")

	// stripe-mock assigns the same id to every customer; link the state
	// through a unique one.
	c.StripeCustomerID = "cus_billingapi"
	if err := ta.store.UpdateCustomer(ctx, "test", &c.Customer); err != nil {
		t.Fatal(err)
	}
	failedAt := time.Now().Truncate(time.Second)
	payload := billingtest.Event(t, "evt_api_failed", billing.EventInvoicePaymentFailed, failedAt, billingtest.Invoice("in_1", "cus_billingapi", "sub_1"))
	if status, raw := ta.webhook(payload, billingtest.Sign(payload, billingtest.WebhookSecret, time.Now())); status != 200 {
		t.Fatalf("webhook: %d %s", status, raw)
	}
	var got Customer
	ta.do("GET", "/api/v1/customers/"+c.ID, nil, &got)
	if got.Status != tenants.CustomerPastDue || got.Billing.PastDueSince == nil || got.Billing.GraceEndsAt == nil ||
		!got.Billing.GraceEndsAt.Equal(failedAt.Add(48*time.Hour)) || got.StripeSubscriptionID != "sub_1" {
		t.Fatalf("after payment failure: %+v %+v", got, got.Billing)
	}
	end := failedAt.Add(30 * 24 * time.Hour)
	payload = billingtest.Event(t, "evt_api_sub", billing.EventSubscriptionUpdated, failedAt.Add(time.Second),
		billingtest.Subscription("sub_1", "cus_billingapi", "active", "price_basic", end))
	ta.webhook(payload, billingtest.Sign(payload, billingtest.WebhookSecret, time.Now()))
	var list struct{ Items []Customer }
	ta.do("GET", "/api/v1/customers?status=active", nil, &list)
	var found bool
	for _, it := range list.Items {
		if it.ID == c.ID {
			found = true
			if it.PlanID != plan.ID || it.Billing.SubscriptionStatus != "active" || !it.Billing.CurrentPeriodEnd.Equal(end) || it.Billing.GraceEndsAt != nil {
				t.Fatalf("listed after subscription update: %+v %+v", it, it.Billing)
			}
		}
	}
	if !found {
		t.Fatalf("customer not listed as active: %+v", list)
	}
}

// The webhook needs no API key but a valid signature: a bad one is 400
// with the API's error shape and changes nothing; methods other than
// POST are 405. Without billing the path is not served (404).
func TestBillingWebhookRoute(t *testing.T) {
	t.Parallel()
	ta := newBillingAPI(t, "http://127.0.0.1:9", billingtest.SecretKey)
	payload := billingtest.Event(t, "evt_route", "customer.created", time.Now(), map[string]any{"id": "cus_x", "object": "customer"})
	status, raw := ta.webhook(payload, "")
	if status != 400 || !strings.Contains(string(raw), CodeInvalidSignature) {
		t.Fatalf("no signature: %d %s", status, raw)
	}
	if status, raw = ta.webhook(payload, billingtest.Sign(payload, "whsec_wrong", time.Now())); status != 400 {
		t.Fatalf("wrong secret: %d %s", status, raw)
	}
	var n int
	ta.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM billing_events`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d events recorded from bad deliveries", n)
	}
	if status, raw = ta.webhook(payload, billingtest.Sign(payload, billingtest.WebhookSecret, time.Now())); status != 200 || !strings.Contains(string(raw), `"unhandled"`) {
		t.Fatalf("valid unknown type: %d %s", status, raw)
	}
	if status, raw = ta.webhook(payload, billingtest.Sign(payload, billingtest.WebhookSecret, time.Now())); status != 200 || !strings.Contains(string(raw), `"duplicate"`) {
		t.Fatalf("replay: %d %s", status, raw)
	}
	resp, err := http.Get(ta.url + WebhookPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET webhook: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if !ta.api.Handles(WebhookPath) {
		t.Fatal("the API does not claim the webhook path")
	}

	plain := newTestAPI(t, manage.Config{})
	if plain.api.Handles(WebhookPath) {
		t.Fatal("without billing the API claims the webhook path")
	}
	if status, raw := plain.webhook(payload, billingtest.Sign(payload, billingtest.WebhookSecret, time.Now())); status != 404 {
		t.Fatalf("webhook without billing: %d %s", status, raw)
	}
	plain.wantError("POST", "/api/v1/customers/00000000-0000-0000-0000-000000000000/checkout",
		map[string]any{"plan": "basic"}, 501, CodeNotConfigured, "")
}

// Stripe refusing the customer: 502, and the customer is not left behind,
// so the request can be retried as is.
func TestBillingCreateCustomerStripeFails(t *testing.T) {
	t.Parallel()
	ta := newBillingAPI(t, billingtest.StripeMock(t), "sk_live_refused_by_stripe_mock")
	var e errorBody
	status, _, raw := ta.do("POST", "/api/v1/customers", map[string]any{"email": "nope@example.org", "name": "Nope"}, &e)
	if status != 502 || e.Error.Code != CodeStripe {
		t.Fatalf("create with stripe refusing: %d %s", status, raw)
	}
	list, err := ta.store.ListCustomers(context.Background(), tenants.CustomerFilter{}, tenants.Page{})
	if err != nil || len(list) != 0 {
		t.Fatalf("customers left: %+v %v", list, err)
	}
}
