// Package billingtest runs stripe-mock (Stripe's API mock) for tests and
// builds signed webhook deliveries with stripe-go's own test helper.
package billingtest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Install is how scripts/test.sh installs stripe-mock, at the version
// these tests are written against.
const Install = "go install github.com/stripe/stripe-mock@v0.203.0"

// Test credentials: shaped like Stripe's, known to no Stripe account.
const (
	SecretKey     = "sk_test_billingtest"
	WebhookSecret = "whsec_billingtest"
)

// Binary returns the path of stripe-mock, failing the test (never
// skipping it) with the install command when it is not installed.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	var candidates []string
	_, file, _, _ := runtime.Caller(0)
	candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", "bin", "stripe-mock"))
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "stripe-mock"))
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, gp := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(gp, "bin", "stripe-mock"))
		}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c
		}
	}
	t.Fatalf("stripe-mock (Stripe's API mock) is not installed; looked in PATH and %v. Install it with `GOBIN=\"$PWD/bin\" %s` (scripts/test.sh does)", candidates, Install)
	return ""
}

// StripeMock starts a stripe-mock of its own on free loopback ports and
// returns its HTTP base URL (for the stripe api_url). It is stopped when
// the test ends, and its output printed if the test failed.
func StripeMock(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	// A port found free can be taken before stripe-mock binds it (by a
	// container's published port, on a busy engine): then it starts again
	// on others.
	for attempt := 1; ; attempt++ {
		url, out, ok := startStripeMock(t, bin)
		if ok {
			return url
		}
		if attempt == 5 || !strings.Contains(out, "address already in use") {
			t.Fatalf("stripe-mock exited at start:\n%s", out)
		}
	}
}

// startStripeMock starts stripe-mock on free ports and waits until it
// answers; ok is false, with its output, when it exited instead.
func startStripeMock(t testing.TB, bin string) (url, output string, ok bool) {
	t.Helper()
	httpPort, httpsPort := freePort(t), freePort(t)
	var out caddytest.SyncBuffer
	cmd := exec.Command(bin, "-http-port", fmt.Sprint(httpPort), "-https-port", fmt.Sprint(httpsPort))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting stripe-mock: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stripe-mock output:\n%s", out.String())
		}
	})
	url = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return "", out.String(), false
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, url+"/v1/customers", nil)
		req.Header.Set("Authorization", "Bearer "+SecretKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, "", true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not answer within 30s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(caddytest.FreeAddr(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Event returns the JSON of a Stripe event of type typ about object.
func Event(t testing.TB, id, typ string, created time.Time, object map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id":          id,
		"object":      "event",
		"api_version": "2023-10-16",
		"created":     created.Unix(),
		"type":        typ,
		"livemode":    false,
		"data":        map[string]any{"object": object},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sign returns the Stripe-Signature header of payload signed with secret
// at ts, made by stripe-go's webhook.GenerateTestSignedPayload.
func Sign(payload []byte, secret string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: ts}).Header
}

// Subscription returns a subscription object.
func Subscription(id, customer, status, price string, periodEnd time.Time) map[string]any {
	return map[string]any{
		"id": id, "object": "subscription", "customer": customer, "status": status,
		"current_period_end": periodEnd.Unix(),
		"items": map[string]any{"object": "list", "data": []any{
			map[string]any{"id": "si_" + id, "object": "subscription_item", "price": map[string]any{"id": price, "object": "price"}},
		}},
	}
}

// Invoice returns an invoice object of subscription sub.
func Invoice(id, customer, sub string) map[string]any {
	return map[string]any{"id": id, "object": "invoice", "customer": customer, "subscription": sub}
}

// CheckoutSession returns a completed subscription checkout session of
// the platform's customer customerID on planID.
func CheckoutSession(id, customer, customerID, planID, sub string) map[string]any {
	return map[string]any{
		"id": id, "object": "checkout.session", "mode": "subscription", "customer": customer,
		"client_reference_id": customerID, "subscription": sub, "payment_status": "paid", "status": "complete",
		"metadata": map[string]any{"customer_id": customerID, "plan_id": planID},
	}
}
