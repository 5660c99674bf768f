package admin

import (
	"net/http"
	"strings"
	"testing"
)

func TestSetSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{"X-Frame-Options": {"SAMEORIGIN"}}
	SetSecurityHeaders(h, PolicyPages)
	want := map[string]string{
		"Content-Security-Policy": PolicyPages,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"X-Content-Type-Options":  "nosniff",
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	SetSecurityHeaders(h, PolicyAPI)
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("the API's Referrer-Policy: %q", got)
	}
	for _, csp := range []string{PolicyAPI, PolicyPages} {
		if !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%q lets pages frame the admin host", csp)
		}
	}
	if PolicyAPI != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("API policy %q", PolicyAPI)
	}
}
