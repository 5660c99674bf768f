package multitenant

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/agistaffers/caddy-multitenant/admin"
	"github.com/agistaffers/caddy-multitenant/manage"
)

func TestAdminHandlerCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`tenant_admin {
		max_body 512KiB
		public_ips 203.0.113.10 2001:db8::10
		public_ips 198.51.100.1
		cname_target edge.example.com
		dns_resolver 127.0.0.1:5353
	}`)
	var h AdminHandler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h)
	want := `{"max_body":524288,"public_ips":["203.0.113.10","2001:db8::10","198.51.100.1"],"cname_target":"edge.example.com","dns_resolver":"127.0.0.1:5353"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{
		"tenant_admin extra",
		"tenant_admin {\n unknown 1\n}",
		"tenant_admin {\n max_body lots\n}",
		"tenant_admin {\n max_body 1XB\n}",
		"tenant_admin {\n public_ips\n}",
		"tenant_admin {\n cname_target a b\n}",
	} {
		var h AdminHandler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "1MiB": 1 << 20, "1MB": 1e6, "64KiB": 64 << 10, "2.5KB": 2500, "1gib": 1 << 30, "10B": 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "MiB", "1 XiB", "1.2.3", "lots"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// Everything tenant_admin serves carries the admin host's security
// headers: API answers (successes and errors) with the API's policy, and
// what it passes on to the next handler with the pages' policy.
func TestAdminHandlerSecurityHeaders(t *testing.T) {
	h := &AdminHandler{api: admin.New(admin.Config{Service: manage.New(manage.Config{})})}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	for path, want := range map[string]struct {
		status int
		csp    string
	}{
		"/api/v1/openapi.json": {200, admin.PolicyAPI},
		"/api/v1/sites":        {401, admin.PolicyAPI},
		"/":                    {418, admin.PolicyPages},
		"/ui/sites":            {418, admin.PolicyPages},
	} {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, httptest.NewRequest("GET", path, nil), next); err != nil {
			t.Fatal(err)
		}
		got := w.Result().Header
		if w.Code != want.status || got.Get("Content-Security-Policy") != want.csp || got.Get("X-Frame-Options") != "DENY" ||
			got.Get("Referrer-Policy") != admin.ReferrerPolicy(want.csp) || got.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v", path, w.Code, got)
		}
		if api := admin.Handles(path); api != (got.Get(admin.RequestIDHeader) != "") {
			t.Errorf("%s: X-Request-Id %q", path, got.Get(admin.RequestIDHeader))
		}
	}
}
