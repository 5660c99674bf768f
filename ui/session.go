package ui

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Sessions live in PostgreSQL (tenants.Store's user_sessions), so every
// Caddy node on the database honours them and "sign out everywhere" is one
// DELETE. The cookie holds a random token; the table only its hash.

// SessionCookie is the session cookie's name. The __Host- prefix (on
// TLS) pins it to the admin host and path /, so no subdomain can set it.
const (
	SessionCookie       = "mt_session"
	secureSessionCookie = "__Host-mt_session"
)

// touchEvery is how stale a session's last_seen_at may get before a
// request writes it again: the idle timeout moves on without a write per
// page.
const touchEvery = time.Minute

// request is what a page handler gets of a signed-in browser.
type request struct {
	User    *tenants.User
	Session *tenants.Session
	Token   string
	// Scope is the service as the user may use it: nil for operators (who
	// use the whole service), the customer's scope for customers' users.
	Scope *manage.CustomerScope
	// Flash is the message left for this page, if any.
	Flash string
}

type requestKey struct{}

// current returns the signed-in request of r's context, nil for public
// pages.
func current(r *http.Request) *request {
	req, _ := r.Context().Value(requestKey{}).(*request)
	return req
}

var errSignedOut = &manage.Error{Code: manage.Denied, Message: "you are signed out; sign in again"}

// session returns the signed-in session of r, nil without one (no
// cookie, an unknown one, an expired one).
func (u *UI) session(r *http.Request) (*request, error) {
	token := sessionToken(r)
	if token == "" {
		return nil, nil
	}
	sess, user, err := u.store.GetSession(r.Context(), token)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, manage.Wrap(err)
	}
	now := time.Now()
	if now.Sub(sess.LastSeenAt) > u.cfg.SessionIdle || now.Sub(sess.CreatedAt) > u.cfg.SessionLifetime {
		_ = u.store.DeleteSession(r.Context(), token)
		return nil, nil
	}
	if now.Sub(sess.LastSeenAt) > touchEvery {
		if err := u.store.TouchSession(r.Context(), token, u.expiry(sess.CreatedAt, now)); err != nil {
			return nil, manage.Wrap(err)
		}
	}
	req := &request{User: user, Session: sess, Token: token, Flash: sess.Flash}
	if !user.Operator() {
		req.Scope = u.svc.ForCustomer(*user.CustomerID)
	}
	if sess.Flash != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isStream(r) {
		_ = u.store.SetSessionFlash(r.Context(), token, "")
	} else {
		req.Flash = ""
	}
	return req, nil
}

// expiry is when a session begun at created and seen at now ends: after
// the idle timeout, never after its lifetime.
func (u *UI) expiry(created, now time.Time) time.Time {
	idle, end := now.Add(u.cfg.SessionIdle), created.Add(u.cfg.SessionLifetime)
	if idle.Before(end) {
		return idle
	}
	return end
}

// signIn starts a session for user (complete unless its second factor is
// still due) and sets its cookie.
func (u *UI) signIn(w http.ResponseWriter, r *http.Request, user *tenants.User, complete bool) error {
	now := time.Now()
	token, _, err := u.store.CreateSession(r.Context(), user.ID, complete, u.expiry(now, now), u.clientIP(r), r.UserAgent())
	if err != nil {
		return manage.Wrap(err)
	}
	http.SetCookie(w, sessionCookie(r, token, u.cfg.SessionLifetime))
	return nil
}

// signOut ends r's session here and everywhere it is honoured.
func (u *UI) signOut(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if token := sessionToken(r); token != "" {
		_ = u.store.DeleteSession(ctx, token)
	}
	http.SetCookie(w, sessionCookie(r, "", -1))
}

func (u *UI) flash(ctx context.Context, req *request, msg string) {
	if req != nil {
		_ = u.store.SetSessionFlash(ctx, req.Token, msg)
	}
}

// sessionCookie is the session cookie: HttpOnly, SameSite=Strict, and on
// TLS Secure with the __Host- prefix.
func sessionCookie(r *http.Request, token string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if r.TLS != nil {
		c.Name, c.Secure = secureSessionCookie, true
	}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

func sessionToken(r *http.Request) string {
	name := SessionCookie
	if r.TLS != nil {
		name = secureSessionCookie
	}
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 100 {
		return ""
	}
	return c.Value
}

func (u *UI) clientIP(r *http.Request) string {
	if u.cfg.ClientIP != nil {
		if ip := u.cfg.ClientIP(r); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext returns target if it is a path on this host, else "/": a
// sign-in link cannot send anyone elsewhere.
func safeNext(target string) string {
	if target == "" || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") || strings.HasPrefix(target, "/\\") {
		return "/"
	}
	if u, err := url.Parse(target); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return target
}

func isStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}
