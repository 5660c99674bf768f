package ui

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Every form carries a CSRF token (the hidden field "csrf"), and every
// request that changes something must bring it back:
//   - signed in, the token is the session's own (user_sessions.csrf_token),
//     so a page of another site cannot know it;
//   - signed out (the sign-in and invitation forms), it is a double-submit
//     token: a random value in a SameSite=Strict cookie of its own that
//     the form repeats.
// On top of that, a request whose Origin header names another host is
// refused: browsers send Origin on every POST.

// CSRFField is the form field of the token; CSRFHeader carries it for
// scripts.
const (
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
	csrfCookie = "mt_csrf"
)

var errCSRF = &manage.Error{Code: manage.Denied,
	Message: "the form expired or came from elsewhere; reload the page and try again"}

// unsafeMethod reports whether r may change something.
func unsafeMethod(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// checkOrigin refuses a request sent from a page of another origin.
func checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return nil
	}
	o, err := url.Parse(origin)
	if err != nil || o.Host != r.Host {
		return errCSRF
	}
	return nil
}

// sentToken returns the token r brings: the form field, else the header.
// A multipart form (the deploy upload) is parsed by its handler, so its
// token comes in the query string the form's action carries.
func sentToken(r *http.Request) string {
	if t := r.Header.Get(CSRFHeader); t != "" {
		return t
	}
	if isMultipart(r) {
		return r.URL.Query().Get(CSRFField)
	}
	return r.PostFormValue(CSRFField)
}

// checkCSRF refuses an unsafe request of the session sess without its
// token.
func checkCSRF(r *http.Request, sess *tenants.Session) error {
	if !unsafeMethod(r) {
		return nil
	}
	if err := checkOrigin(r); err != nil {
		return err
	}
	if !equalTokens(sentToken(r), sess.CSRFToken) {
		return errCSRF
	}
	return nil
}

// loginToken returns the double-submit token of a signed-out browser,
// setting its cookie when it has none.
func loginToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 100 {
		return c.Value
	}
	token, err := tenants.NewSecret()
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int((12 * time.Hour).Seconds())})
	return token
}

// checkLoginCSRF refuses a signed-out form post without its double-submit
// token.
func checkLoginCSRF(r *http.Request) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || !equalTokens(r.PostFormValue(CSRFField), c.Value) {
		return errCSRF
	}
	return nil
}

func equalTokens(sent, want string) bool {
	return sent != "" && want != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(want)) == 1
}

func isMultipart(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 19 && ct[:19] == "multipart/form-data"
}
