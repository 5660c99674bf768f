package ui

import (
	"net/http"
	"strings"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The API keys pages: list, create (the token shown on the answer to the
// form, once, never again) and revoke.

func (u *UI) routesKeys() {
	u.op("GET /keys", u.keysList)
	u.op("POST /keys", u.keyCreate)
	u.op("POST /keys/{id}/revoke", u.keyRevoke)
}

type keysData struct {
	Keys   []tenants.APIKey
	Scopes []string
}

func (u *UI) keysView(r *http.Request, req *request) (*view, error) {
	keys, err := u.svc.ListAPIKeys(r.Context())
	if err != nil {
		return nil, err
	}
	return u.view(r, req, "API keys", "keys", keysData{Keys: keys, Scopes: []string{tenants.ScopeRead, tenants.ScopeWrite}}), nil
}

func (u *UI) keysList(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.keysView(r, req)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "keys", v)
	return nil
}

// keyCreate answers the form with the token itself (not a redirect: a
// token must not sit in a flash or a URL), on a page no cache keeps.
func (u *UI) keyCreate(w http.ResponseWriter, r *http.Request, req *request) error {
	key, err := u.svc.CreateAPIKey(r.Context(), actor(req), strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("scope"))
	if err != nil {
		v, verr := u.keysView(r, req)
		if verr != nil {
			return verr
		}
		return u.formFailed(w, r, v, "keys", err)
	}
	u.render(w, http.StatusOK, "key_created", u.view(r, req, "API key created", "keys", key))
	return nil
}

func (u *UI) keyRevoke(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := u.svc.RevokeAPIKey(r.Context(), actor(req), r.PathValue("id")); err != nil {
		return err
	}
	return u.redirect(w, r, req, "/keys", "API key "+r.PathValue("id")+" revoked: it works no more.")
}
