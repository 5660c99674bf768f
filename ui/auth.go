package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/agistaffers/caddy-multitenant/admin"
	"github.com/agistaffers/caddy-multitenant/manage"
)

// Sign-in, its second factor, invitations, sign-out and the account page.

// Failed sign-ins (a wrong password or TOTP code) are limited per client
// address like the API's failed keys: LoginBurst at once, then one per
// LoginRefill.
const (
	LoginBurst  = 10
	LoginRefill = 6 * time.Second
)

type loginLimiter = *admin.Limiter

func newLoginLimiter() loginLimiter { return admin.NewLimiter(LoginBurst, LoginRefill) }

func (u *UI) routesAuth() {
	u.pub("GET /login", u.loginPage)
	u.pub("POST /login", u.login)
	u.pub("GET /login/totp", u.totpPage)
	u.pub("POST /login/totp", u.loginTOTP)
	u.pub("GET /invite/{token}", u.invitePage)
	u.pub("POST /invite/{token}", u.acceptInvite)
	u.both("POST /logout", u.logout)
	u.both("POST /logout/everywhere", u.logoutEverywhere)
	u.both("GET /account", u.account)
	u.both("POST /account/password", u.changePassword)
	u.both("POST /account/totp", u.enrollTOTP)
	u.both("POST /account/totp/confirm", u.confirmTOTP)
	u.both("POST /account/totp/disable", u.disableTOTP)
}

type loginData struct {
	LoginCSRF string
	Next      string
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request, _ *request) error {
	if req, err := u.session(r); err == nil && req != nil && req.Session.Complete {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return nil
	}
	v := u.view(r, nil, "Sign in", "", loginData{LoginCSRF: loginToken(w, r), Next: safeNext(r.URL.Query().Get("next"))})
	u.render(w, http.StatusOK, "login", v)
	return nil
}

// limited answers a client that failed too often, and reports whether it
// did.
func (u *UI) limited(w http.ResponseWriter, r *http.Request, page string, v *view) bool {
	wait := u.limiter.Wait(u.clientIP(r))
	if wait <= 0 {
		return false
	}
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	v.Error = fmt.Sprintf("Too many failed attempts from your address; try again in %d seconds.", secs)
	u.render(w, http.StatusTooManyRequests, page, v)
	return true
}

func (u *UI) login(w http.ResponseWriter, r *http.Request, _ *request) error {
	if err := checkLoginCSRF(r); err != nil {
		return err
	}
	next := safeNext(r.PostFormValue("next"))
	v := u.view(r, nil, "Sign in", "", loginData{LoginCSRF: loginToken(w, r), Next: next})
	v.Form.Set("email", r.PostFormValue("email"))
	if u.limited(w, r, "login", v) {
		return nil
	}
	user, err := u.svc.Authenticate(r.Context(), r.PostFormValue("email"), r.PostFormValue("password"))
	if err != nil {
		if manage.IsCode(err, manage.Denied) {
			u.limiter.Fail(u.clientIP(r))
			v.Error = "Wrong email or password."
			u.render(w, http.StatusUnauthorized, "login", v)
			return nil
		}
		return err
	}
	// A session made before sign-in is never reused: a planted cookie
	// cannot become a signed-in one.
	u.signOut(r.Context(), w, r)
	if err := u.signIn(w, r, user, !user.HasTOTP()); err != nil {
		return err
	}
	if user.HasTOTP() {
		http.Redirect(w, r, "/login/totp?next="+url.QueryEscape(next), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// pendingSession returns r's session that still waits for its TOTP code.
func (u *UI) pendingSession(r *http.Request) (*request, error) {
	req, err := u.session(r)
	if err != nil || req == nil || req.Session.Complete {
		return nil, err
	}
	return req, nil
}

func (u *UI) totpPage(w http.ResponseWriter, r *http.Request, _ *request) error {
	req, err := u.pendingSession(r)
	if err != nil {
		return err
	}
	if req == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	v := u.view(r, nil, "Two-factor code", "", loginData{LoginCSRF: req.Session.CSRFToken, Next: safeNext(r.URL.Query().Get("next"))})
	u.render(w, http.StatusOK, "login_totp", v)
	return nil
}

func (u *UI) loginTOTP(w http.ResponseWriter, r *http.Request, _ *request) error {
	req, err := u.pendingSession(r)
	if err != nil {
		return err
	}
	if req == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	if err := checkCSRF(r, req.Session); err != nil {
		return err
	}
	next := safeNext(r.PostFormValue("next"))
	v := u.view(r, nil, "Two-factor code", "", loginData{LoginCSRF: req.Session.CSRFToken, Next: next})
	if u.limited(w, r, "login_totp", v) {
		return nil
	}
	if !manage.ValidTOTP(deref(req.User.TOTPSecret), r.PostFormValue("code")) {
		u.limiter.Fail(u.clientIP(r))
		v.Errors["code"] = "That code is not right; enter the current one from your authenticator."
		u.render(w, http.StatusUnauthorized, "login_totp", v)
		return nil
	}
	if err := u.store.CompleteSession(r.Context(), req.Token); err != nil {
		return manage.Wrap(err)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, req *request) error {
	u.signOut(r.Context(), w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (u *UI) logoutEverywhere(w http.ResponseWriter, r *http.Request, req *request) error {
	if _, err := u.svc.LogoutEverywhere(r.Context(), actor(req), req.User.ID); err != nil {
		return err
	}
	http.SetCookie(w, sessionCookie(r, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

type inviteData struct {
	LoginCSRF string
	User      *manage.User
}

func (u *UI) invitePage(w http.ResponseWriter, r *http.Request, _ *request) error {
	user, err := u.svc.InvitedUser(r.Context(), r.PathValue("token"))
	if err != nil {
		if manage.IsCode(err, manage.NotFound) {
			return &manage.Error{Code: manage.NotFound, Message: "this invitation link is unknown, used or expired; ask for a new one"}
		}
		return err
	}
	u.render(w, http.StatusOK, "invite", u.view(r, nil, "Set your password", "", inviteData{LoginCSRF: loginToken(w, r), User: user}))
	return nil
}

func (u *UI) acceptInvite(w http.ResponseWriter, r *http.Request, _ *request) error {
	if err := checkLoginCSRF(r); err != nil {
		return err
	}
	token := r.PathValue("token")
	invited, err := u.svc.InvitedUser(r.Context(), token)
	if err != nil {
		return err
	}
	v := u.view(r, nil, "Set your password", "", inviteData{LoginCSRF: loginToken(w, r), User: invited})
	if r.PostFormValue("password") != r.PostFormValue("confirm") {
		v.Errors["confirm"] = "The two passwords differ."
		u.render(w, http.StatusUnprocessableEntity, "invite", v)
		return nil
	}
	user, err := u.svc.AcceptInvitation(r.Context(), token, r.PostFormValue("password"))
	if err != nil {
		if manage.IsCode(err, manage.Invalid) {
			u.render(w, http.StatusUnprocessableEntity, "invite", v.withError(err, nil))
			return nil
		}
		return err
	}
	u.signOut(r.Context(), w, r)
	if err := u.signIn(w, r, &user.User, true); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

type accountData struct {
	Sessions int
	// TOTPSecret and TOTPURL are set while a second factor is being
	// enrolled.
	TOTPSecret, TOTPURL string
}

func (u *UI) accountView(r *http.Request, req *request, d accountData) (*view, error) {
	n, err := u.store.CountUserSessions(r.Context(), req.User.ID)
	if err != nil {
		return nil, manage.Wrap(err)
	}
	d.Sessions = n
	return u.view(r, req, "Your account", "account", d), nil
}

func (u *UI) account(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.accountView(r, req, accountData{})
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "account", v)
	return nil
}

func (u *UI) changePassword(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.accountView(r, req, accountData{})
	if err != nil {
		return err
	}
	if _, err := u.svc.Authenticate(r.Context(), req.User.Email, r.PostFormValue("current")); err != nil {
		if !manage.IsCode(err, manage.Denied) {
			return err
		}
		v.Errors["current"] = "That is not your current password."
		u.render(w, http.StatusUnprocessableEntity, "account", v)
		return nil
	}
	if r.PostFormValue("password") != r.PostFormValue("confirm") {
		v.Errors["confirm"] = "The two passwords differ."
		u.render(w, http.StatusUnprocessableEntity, "account", v)
		return nil
	}
	if err := u.svc.SetPassword(r.Context(), actor(req), req.User.ID, r.PostFormValue("password")); err != nil {
		if manage.IsCode(err, manage.Invalid) {
			u.render(w, http.StatusUnprocessableEntity, "account", v.withError(err, nil))
			return nil
		}
		return err
	}
	// A new password ends every session, this one too: sign in again.
	http.SetCookie(w, sessionCookie(r, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (u *UI) enrollTOTP(w http.ResponseWriter, r *http.Request, req *request) error {
	secret, url, err := u.svc.NewTOTP(r.Context(), u.cfg.Issuer, req.User.ID)
	if err != nil {
		return err
	}
	v, err := u.accountView(r, req, accountData{TOTPSecret: secret, TOTPURL: url})
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "account", v)
	return nil
}

func (u *UI) confirmTOTP(w http.ResponseWriter, r *http.Request, req *request) error {
	secret := r.PostFormValue("secret")
	err := u.svc.ConfirmTOTP(r.Context(), actor(req), req.User.ID, secret, r.PostFormValue("code"))
	if manage.IsCode(err, manage.Invalid) {
		v, verr := u.accountView(r, req, accountData{TOTPSecret: secret, TOTPURL: totpURL(u.cfg.Issuer, req.User.Email, secret)})
		if verr != nil {
			return verr
		}
		u.render(w, http.StatusUnprocessableEntity, "account", v.withError(err, nil))
		return nil
	}
	if err != nil {
		return err
	}
	return u.redirect(w, r, req, "/account", "Two-factor sign-in is on.")
}

func (u *UI) disableTOTP(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := u.svc.DisableTOTP(r.Context(), actor(req), req.User.ID); err != nil {
		return err
	}
	return u.redirect(w, r, req, "/account", "Two-factor sign-in is off.")
}

// actor is who the audit log records for req's actions.
func actor(req *request) string {
	if req == nil {
		return "ui"
	}
	if req.User.Operator() {
		return "user:" + req.User.Email
	}
	return "customer-user:" + req.User.Email
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// totpURL is the otpauth:// URL of an authenticator entry for secret, as
// the enrollment showed it.
func totpURL(issuer, account, secret string) string {
	v := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + v.Encode()
}
