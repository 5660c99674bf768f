package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/admin"
	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/billing/billingtest"
	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// internalWords are what no error answer may say: the engine's, Stripe's
// and the database's words, and Go error chains.
var internalWords = []string{"docker", "daemon", "container exited", "exit code", "registry.invalid", "pull",
	"stripe.com", "api.stripe", "dial", "lookup", "connect", "refused", "sqlstate", "relation", "audit_log",
	"cpu", "pgconn", "http://", "https://", ": "}

// addrPattern finds IP addresses, with or without a port.
var addrPattern = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b|\[?[0-9a-f]*:[0-9a-f]*:[0-9a-f:]*\]?:\d+`)

// Failures of Docker, Stripe and PostgreSQL, through the built Caddy:
// each answer is general and names nothing internal (no container, no
// engine or DNS address, no Stripe URL, no SQL, no error chain), carries
// a request id in its body and its X-Request-Id header, and Caddy's log
// has the full detail under that id.
func TestAdminErrorsRevealNoInternals(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewCutter(t)
	schema := pgtest.Schema(t)
	opts := billingOptions("http://" + caddytest.FreeAddr(t)) // Stripe unreachable
	opts.DatabaseURL, opts.Schema = proxy.URL(t, schema), schema
	p := startAdminPlatform(t, nil, opts)
	direct := pgtest.Pool(t, schema)
	ctx := context.Background()

	customer := &tenants.Customer{Email: "errors@example.org", Name: "Errors"}
	if err := p.store.CreateCustomer(ctx, "e2e", customer); err != nil {
		t.Fatal(err)
	}
	if err := p.store.CreatePlan(ctx, "e2e", &tenants.Plan{Slug: "basic", Name: "Basic", StripePriceID: "price_basic"}); err != nil {
		t.Fatal(err)
	}
	site := func(sub, image string, env map[string]string) string {
		tpl := &tenants.Template{Slug: sub, Name: sub, Image: image, Port: 8080, HealthPath: "/health", MemoryBytes: 64 << 20}
		if err := p.store.CreateTemplate(ctx, "e2e", tpl); err != nil {
			t.Fatal(err)
		}
		s := &tenants.Site{CustomerID: customer.ID, TemplateID: tpl.ID, Subdomain: sub, Env: env}
		if err := p.store.CreateSite(ctx, "e2e", s); err != nil {
			t.Fatal(err)
		}
		return "/api/v1/sites/" + s.ID
	}
	exits := site("exits", testimage.DefaultTag, map[string]string{"EXIT_AT_START": "1"})
	unpulled := site("unpulled", "registry.invalid/caddy-multitenant/none:1", nil)
	urls := `"success_url":"https://errors.example.org/","cancel_url":"https://errors.example.org/"`

	check := func(name, method, path, body string, status int, code, detail, retryAfter string) {
		t.Helper()
		var b any
		if body != "" {
			b = body
		}
		p.wantGeneralError(t, name, p.token, method, path, b, status, code, detail, retryAfter)
	}
	check("container exits at start", "POST", exits+"/start", "", 502, "start_failed", "exit code 3", "")
	check("container exits at restart", "POST", exits+"/restart", "{}", 502, "start_failed", "exit code 3", "")
	check("container exits at redeploy", "POST", exits+"/redeploy", "", 502, "start_failed", "exit code 3", "")
	check("image cannot be pulled", "POST", unpulled+"/start", "", 502, "start_failed", "registry.invalid", "")
	check("stripe unreachable, new customer", "POST", "/api/v1/customers", `{"email":"new@example.org","name":"New"}`, 502, "stripe_error", "connection refused", "")
	check("stripe unreachable, checkout", "POST", "/api/v1/customers/"+customer.ID+"/checkout", `{"plan":"basic",`+urls+`}`, 502, "stripe_error", "connection refused", "")
	check("stripe unreachable, portal", "POST", "/api/v1/customers/"+customer.ID+"/portal", "", 502, "stripe_error", "connection refused", "")

	// The status says why the start failed in the platform's words (what
	// failed, the exit code) with the site's own last lines, not what the
	// engine said: no container name, no address, no engine message.
	var st struct {
		State   string
		Failure *struct {
			Reason   string
			ExitCode *int   `json:"exit_code"`
			LogTail  string `json:"log_tail"`
		}
	}
	raw := p.mustAPIRaw("GET", exits+"/status", nil, 200, &st)
	if st.State != "failed" || st.Failure == nil || st.Failure.Reason != "container exited during start" ||
		st.Failure.ExitCode == nil || *st.Failure.ExitCode != 3 || !strings.Contains(st.Failure.LogTail, "EXIT_AT_START is set") {
		t.Errorf("status of the failed site: %s", raw)
	}
	for _, word := range []string{"docker", "daemon", "tenant-" + schema, "dial", "lookup"} {
		if strings.Contains(strings.ToLower(raw), word) {
			t.Errorf("status of the failed site reveals %q: %s", word, raw)
		}
	}
	if addrPattern.MatchString(raw) {
		t.Errorf("status of the failed site reveals an address: %s", raw)
	}

	// A database error the API does not know is internal.
	if _, err := direct.Exec(ctx, `ALTER TABLE audit_log RENAME TO audit_log_gone`); err != nil {
		t.Fatal(err)
	}
	check("database error", "POST", "/api/v1/plans", `{"slug":"gone","name":"Gone"}`, 500, "internal", "(SQLSTATE 42P01)", "")
	if _, err := direct.Exec(ctx, `ALTER TABLE audit_log_gone RENAME TO audit_log`); err != nil {
		t.Fatal(err)
	}

	// The database down: 503 with Retry-After, authentication included,
	// and the webhook too (Stripe retries it).
	proxy.Cut()
	check("database down, reading", "GET", "/api/v1/plans", "", 503, "unavailable", tenants.ErrUnavailable.Error(), "5")
	check("database down, writing", "POST", "/api/v1/plans", `{"slug":"down","name":"Down"}`, 503, "unavailable", tenants.ErrUnavailable.Error(), "5")
	var e apiError
	if status, h, raw := p.api(p.token[:len(p.token)-4]+"AAAA", "GET", "/api/v1/sites", nil, &e); status != 503 || h.Get("Retry-After") != "5" {
		t.Errorf("database down, a wrong key: %d %s", status, raw)
	}
	event := billingtest.Event(t, "evt_errors_down", billing.EventInvoicePaid, time.Now(), billingtest.Invoice("in_down", "cus_down", "sub_down"))
	if status, _, raw := p.webhook(event, billingtest.WebhookSecret); status != 503 || strings.Contains(raw, "connect") {
		t.Errorf("database down, webhook: %d %s", status, raw)
	}
	proxy.Restore()
	eventually(t, 20*time.Second, "the API answers once the database is back", func() bool {
		status, _, _ := p.api(p.token, "GET", "/api/v1/plans", nil, nil)
		return status == 200
	})
}

// wantGeneralError sends a request and checks its error answer: status,
// code and Retry-After; a message naming nothing internal; one request
// id in the body and the header; and a line of Caddy's log with that id
// and the detail.
func (p *adminPlatform) wantGeneralError(t *testing.T, name, token, method, path string, body any, status int, code, detail, retryAfter string) {
	t.Helper()
	got, h, raw := p.api(token, method, path, body, nil)
	var e struct {
		Error struct {
			Code, Message string
			RequestID     string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil || got != status || e.Error.Code != code || h.Get("Retry-After") != retryAfter {
		t.Errorf("%s: %d Retry-After %q %.300s, want %d %s Retry-After %q", name, got, h.Get("Retry-After"), raw, status, code, retryAfter)
		return
	}
	msg := strings.ToLower(e.Error.Message)
	if containsAny(msg, internalWords) || addrPattern.MatchString(raw) || strings.Contains(msg, "tenant-"+p.schema) {
		t.Errorf("%s: the answer reveals internals: %s", name, raw)
	}
	id := e.Error.RequestID
	if id == "" || h.Get(admin.RequestIDHeader) != id {
		t.Errorf("%s: request_id %q, %s %q", name, id, admin.RequestIDHeader, h.Get(admin.RequestIDHeader))
		return
	}
	wantAdminHeaders(t, name, h, admin.PolicyAPI)
	// The line was written before the answer, but Caddy's output reaches
	// the test through a pipe, maybe after it.
	logged := func() bool {
		for _, line := range strings.Split(p.caddy.Logs(), "\n") {
			if strings.Contains(line, fmt.Sprintf(`"request_id":%q`, id)) && strings.Contains(line, detail) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(5 * time.Second); !logged(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s: no line of Caddy's log has request_id %s and %q", name, id, detail)
			return
		}
	}
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
