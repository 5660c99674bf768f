package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/admin"
	"github.com/agistaffers/caddy-multitenant/internal/dnstest"
)

// Failed authentication through the built Caddy, per client IP as Caddy
// resolves it (X-Forwarded-For from a trusted proxy): a burst of 401s,
// then 429 with Retry-After; a valid key from the same client keeps
// getting 200 while it is below the limit and never counts; other
// clients and other IPv6 /64s are not affected; after Retry-After the
// client may try again. Every answer carries the admin host's headers,
// and so does what tenant_admin passes on.
func TestAdminAuthRateLimit(t *testing.T) {
	t.Parallel()
	dns := dnstest.Start(t)
	p := startAdminPlatform(t, dns, platformOptions{
		Global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}",
		Sites: fmt.Sprintf(`http://%s:{HTTP_PORT} {
	route {
		tenant_admin
	}
}`, adminHost),
	})
	wrong := p.token[:len(p.token)-4] + "AAAA"
	from := func(client, token string) (int, http.Header) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+p.caddy.HTTP+"/api/v1/sites", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = adminHost
		req.Header.Set("X-Forwarded-For", client)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wantAdminHeaders(t, client, resp.Header, admin.PolicyAPI)
		return resp.StatusCode, resp.Header
	}
	want := func(what string, got, status int) {
		t.Helper()
		if got != status {
			t.Fatalf("%s: %d, want %d", what, got, status)
		}
	}

	const a = "203.0.113.7"
	for i := range admin.AuthBurst - 1 {
		st, _ := from(a, wrong)
		want(fmt.Sprintf("failure %d", i+1), st, 401)
	}
	for i := range 2 * admin.AuthBurst {
		st, _ := from(a, p.token)
		want(fmt.Sprintf("valid key %d below the limit", i+1), st, 200)
	}
	st, _ := from(a, wrong)
	want("the last failure of the burst", st, 401)
	st, h := from(a, wrong)
	want("past the burst", st, 429)
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || retry < 1 || retry > int(admin.AuthRefill/time.Second) {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
	st, _ = from(a, p.token)
	want("a valid key while limited", st, 429)
	st, _ = from("203.0.113.8", wrong)
	want("another client", st, 401)

	for range admin.AuthBurst {
		from("2001:db8:5:6::1", wrong)
	}
	st, _ = from("2001:db8:5:6::2", wrong)
	want("the same /64", st, 429)
	st, _ = from("2001:db8:5:7::1", wrong)
	want("another /64", st, 401)

	time.Sleep(time.Duration(retry) * time.Second)
	st, _ = from(a, p.token)
	want("a valid key after Retry-After", st, 200)
	st, _ = from(a, wrong)
	want("a failure after Retry-After", st, 401)
	st, _ = from(a, wrong)
	want("the token that came back is spent", st, 429)

	status, _, h := p.get(adminHost, "/login", nil)
	want("the web UI's sign-in page", status, 200)
	wantAdminHeaders(t, "the web UI's sign-in page", h, admin.PolicyPages)
}
