package admin

import "net/http"

// Content-Security-Policy values of what tenant_admin serves. Both forbid
// framing (clickjacking); the JSON API loads nothing, pages only from
// their own origin.
const (
	// PolicyAPI is the policy of the JSON API and the webhook.
	PolicyAPI = "default-src 'none'; frame-ancestors 'none'"
	// PolicyPages is the policy of pages: the web UI, and whatever the
	// admin site serves after tenant_admin.
	PolicyPages = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// SetSecurityHeaders sets the headers every response of the admin host
// carries, with csp as its Content-Security-Policy. A handler that runs
// later may still replace them.
//
// The API sends no referrer at all; pages send one to their own origin
// only (same-origin): a page under no-referrer makes the browser send
// "Origin: null" with its own form posts, and the web UI refuses a post
// whose Origin is not the admin host. Other sites still learn nothing.
func SetSecurityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", ReferrerPolicy(csp))
	h.Set("X-Content-Type-Options", "nosniff")
}

// ReferrerPolicy is the Referrer-Policy sent with the CSP policy csp.
func ReferrerPolicy(csp string) string {
	if csp == PolicyPages {
		return "same-origin"
	}
	return "no-referrer"
}
