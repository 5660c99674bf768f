package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

type keyCtx struct{}

// errUnauthorized is the one answer to every authentication failure: no
// header, another scheme, a malformed, unknown, wrong or revoked key.
var errUnauthorized = apiErr(http.StatusUnauthorized, CodeUnauthorized, "", "a valid API key is required: Authorization: Bearer <key>")

// authenticate returns the live API key of the request.
func (a *API) authenticate(r *http.Request) (*tenants.APIKey, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errUnauthorized
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 256 {
		return nil, errUnauthorized
	}
	key, err := a.store.AuthenticateAPIKey(r.Context(), token)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

// actor names who makes the request in the audit log: the API key's name
// and its public key id.
func actor(r *http.Request) string {
	key, _ := r.Context().Value(keyCtx{}).(*tenants.APIKey)
	if key == nil {
		return "api"
	}
	return "api_key:" + key.KeyID + " (" + key.Name + ")"
}
