package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/billing/billingtest"
	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// engineRuntime fails the way the platform's runtime does, in the words
// of the engine: addresses, container names, the host's resources. (The
// real one fails so end to end in e2e/admin_errors_test.go.)
type engineRuntime struct {
	mu     sync.Mutex
	err    error
	status manage.RuntimeStatus
}

func (rt *engineRuntime) fail(err error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.err = err
}

func (rt *engineRuntime) failure() error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.err
}

func (rt *engineRuntime) Start(context.Context, string) error        { return rt.failure() }
func (rt *engineRuntime) Stop(context.Context, string) error         { return rt.failure() }
func (rt *engineRuntime) Restart(context.Context, string) error      { return rt.failure() }
func (rt *engineRuntime) Redeploy(context.Context, string) error     { return rt.failure() }
func (rt *engineRuntime) Remove(context.Context, string, bool) error { return rt.failure() }
func (rt *engineRuntime) CheckImage(context.Context, string) error   { return nil }
func (rt *engineRuntime) HostLimits(context.Context) (tenants.Limits, error) {
	return tenants.Limits{}, nil
}
func (rt *engineRuntime) Status(string) manage.RuntimeStatus {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.status
}
func (rt *engineRuntime) Logs(context.Context, string, int, bool) (io.ReadCloser, error) {
	return nil, rt.failure()
}

// internals are what no answer may contain: the engine's and the
// database's words, addresses, names, URLs, error chains.
var internals = []string{"docker", "daemon", "tenant-", "127.0.0.", "10.1.2.3", "http://", "https://", "stripe.com",
	"dial", "lookup", "connect", "SQLSTATE", "relation", "audit_log", "exit code", "CPUs", ": "}

// Failures of the engine, Stripe and the database are answered in general
// terms with a request id (in the body and the X-Request-Id header), and
// logged in full under that id.
func TestErrorsRevealNoInternals(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	direct := pgtest.Pool(t, schema)
	proxy := pgtest.NewCutter(t)
	pool, err := pgxpool.New(context.Background(), proxy.URL(t, schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	core, logs := observer.New(zap.DebugLevel)
	rt := &engineRuntime{}
	stripe, err := billing.New(billing.Config{SecretKey: billingtest.SecretKey, WebhookSecret: billingtest.WebhookSecret,
		APIURL: "http://" + caddytest.FreeAddr(t), Store: tenants.NewStore(pool, testStoreOptions)})
	if err != nil {
		t.Fatal(err)
	}
	ta := newTestAPIOn(t, manage.Config{Runtime: rt, Billing: stripe, Logger: zap.New(core)}, schema, pool)
	ctx := context.Background()
	c, _, sites := ta.fixture("e")
	site := sites[0]
	if err := ta.store.CreatePlan(ctx, "test", &tenants.Plan{Slug: "basic", Name: "Basic", StripePriceID: "price_basic"}); err != nil {
		t.Fatal(err)
	}
	siteURL := "/api/v1/sites/" + site.ID
	container := "tenant-" + schema + "-" + site.ID

	check := func(name, method, path string, body any, status int, code, detail string, retryAfter string) {
		t.Helper()
		var e errorBody
		got, h, raw := ta.do(method, path, body, &e)
		if got != status || e.Error.Code != code || h.Get("Retry-After") != retryAfter {
			t.Errorf("%s: %d %s Retry-After %q, want %d %s %q: %s", name, got, e.Error.Code, h.Get("Retry-After"), status, code, retryAfter, raw)
			return
		}
		for _, s := range append(internals, container) {
			if strings.Contains(strings.ToLower(e.Error.Message), strings.ToLower(s)) {
				t.Errorf("%s: the answer reveals %q: %s", name, s, raw)
			}
		}
		id := e.Error.RequestID
		if id == "" || h.Get(RequestIDHeader) != id {
			t.Errorf("%s: request_id %q, X-Request-Id %q", name, id, h.Get(RequestIDHeader))
			return
		}
		logged := false
		for _, entry := range logs.FilterField(zap.String("request_id", id)).All() {
			if msg, _ := entry.ContextMap()["error"].(string); strings.Contains(msg, detail) {
				logged = true
			}
		}
		if !logged {
			t.Errorf("%s: no log entry with request_id %s has %q; logged: %+v", name, id, detail, logs.FilterField(zap.String("request_id", id)).All())
		}
	}

	rt.fail(fmt.Errorf("%w: starting site %s: pulling image: Error response from daemon: Get \"https://registry.invalid/v2/\": dial tcp: lookup registry.invalid on 127.0.0.53:53: no such host",
		manage.ErrStartFailed, site.ID))
	check("image not pulled", "POST", siteURL+"/start", nil, 502, CodeStartFailed, "lookup registry.invalid on 127.0.0.53:53", "")
	rt.fail(fmt.Errorf("%w: starting site %s: creating container %s: Error response from daemon: range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
		manage.ErrStartFailed, site.ID, container))
	check("limits beyond the host", "POST", siteURL+"/redeploy", nil, 502, CodeStartFailed, "only 2 CPUs available", "")
	rt.fail(fmt.Errorf("%w: 40 running on engine 10.1.2.3, none idle", manage.ErrNoCapacity))
	check("no capacity", "POST", siteURL+"/restart", `{}`, 503, CodeNoCapacity, "engine 10.1.2.3", "10")
	rt.fail(errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"))
	check("engine down", "POST", siteURL+"/stop", nil, 500, CodeInternal, "/var/run/docker.sock", "")

	check("stripe unreachable", "POST", "/api/v1/customers", map[string]any{"email": "s@example.org", "name": "S"}, 502, CodeStripe, "connection refused", "")
	check("stripe unreachable at checkout", "POST", "/api/v1/customers/"+c.ID+"/checkout",
		map[string]any{"plan": "basic", "success_url": "https://shop.test/", "cancel_url": "https://shop.test/"}, 502, CodeStripe, "connection refused", "")
	check("stripe unreachable at the portal", "POST", "/api/v1/customers/"+c.ID+"/portal", nil, 502, CodeStripe, "connection refused", "")

	if _, err := direct.Exec(ctx, `ALTER TABLE audit_log RENAME TO audit_log_gone`); err != nil {
		t.Fatal(err)
	}
	check("database error", "POST", "/api/v1/plans", map[string]any{"slug": "p", "name": "P"}, 500, CodeInternal, `relation "audit_log" does not exist`, "")
	if _, err := direct.Exec(ctx, `ALTER TABLE audit_log_gone RENAME TO audit_log`); err != nil {
		t.Fatal(err)
	}

	// The status shows why a start failed in the provisioner's own words
	// (and the site's log lines), not the engine's message.
	code := 3
	rt.mu.Lock()
	rt.status = manage.RuntimeStatus{State: "failed", Failure: &manage.Failure{Reason: "container exited during start", ExitCode: &code, At: time.Now()}}
	rt.mu.Unlock()
	var st manage.RuntimeStatus
	if status, _, raw := ta.do("GET", siteURL+"/status", nil, &st); status != 200 || st.State != "failed" || st.Failure == nil ||
		strings.Contains(string(raw), container) || strings.Contains(string(raw), "127.0.0.1") {
		t.Errorf("status after a failed start: %d %s", status, raw)
	}

	// The database down: 503 with Retry-After, authentication included,
	// and a failure the client did not make does not count against it.
	proxy.Cut()
	pool.Reset()
	for range AuthBurst + 2 {
		check("database down, reading", "GET", "/api/v1/plans", nil, 503, CodeUnavailable, "failed to connect", "5")
	}
	check("database down, writing", "POST", "/api/v1/plans", map[string]any{"slug": "q", "name": "Q"}, 503, CodeUnavailable, "failed to connect", "5")
	check("database down, a stranger's key", "GET", "/api/v1/plans", nil, 503, CodeUnavailable, "failed to connect", "5")
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for status, _, _ := ta.do("GET", "/api/v1/plans", nil, nil); status != 200; status, _, _ = ta.do("GET", "/api/v1/plans", nil, nil) {
		if time.Now().After(deadline) {
			t.Fatalf("the API did not recover: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Every response has its own request id; an error body is code, message
// and request_id (and field, when one is at fault).
func TestErrorBodyShape(t *testing.T) {
	t.Parallel()
	ta := newTestAPI(t, manage.Config{})
	status, h, raw := ta.doAs("", "GET", "/api/v1/sites", nil, nil)
	var body map[string]map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("401: %d %s", status, raw)
	}
	e := body["error"]
	if e["code"] != CodeUnauthorized || e["message"] == "" || e["request_id"] != h.Get(RequestIDHeader) || len(e) != 3 {
		t.Fatalf("error body %s, X-Request-Id %q", raw, h.Get(RequestIDHeader))
	}
	_, h2, _ := ta.doAs("", "GET", "/api/v1/sites", nil, nil)
	if h2.Get(RequestIDHeader) == h.Get(RequestIDHeader) {
		t.Fatal("two requests got one id")
	}
	if _, h, _ := ta.do("GET", "/api/v1/plans", nil, nil); h.Get(RequestIDHeader) == "" {
		t.Fatal("a successful response has no X-Request-Id")
	}
}
