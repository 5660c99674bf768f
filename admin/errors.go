package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Error codes of the API, in the "code" member of every error response.
const (
	CodeMalformedJSON    = "malformed_json"
	CodeUnknownField     = "unknown_field"
	CodeInvalidType      = "invalid_type"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeInvalid          = "invalid"
	CodeNotFound         = "not_found"
	CodeConflict         = "conflict"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeStartFailed      = "start_failed"
	CodeNoCapacity       = "no_capacity"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// Error is the one shape of every error the API returns:
//
//	{"error": {"code": "invalid", "message": "...", "field": "subdomain"}}
//
// Field names the request field (JSON member or query parameter) at fault,
// when one is.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func apiErr(status int, code, field, msg string) *Error {
	return &Error{Status: status, Code: code, Field: field, Message: msg}
}

func notFound(what string) *Error {
	return apiErr(http.StatusNotFound, CodeNotFound, "", what+" not found")
}

func invalidParam(field, msg string) *Error {
	return apiErr(http.StatusUnprocessableEntity, CodeInvalid, field, msg)
}

// Sentinel errors a Runtime returns (wrapped) so the API can answer with
// the right status.
var (
	// ErrNoContainer means the site has no container (never started, or
	// removed): there are no logs to show.
	ErrNoContainer = errors.New("the site has no container")
	// ErrNoCapacity means the platform's max_running is reached and no
	// running site is idle.
	ErrNoCapacity = errors.New("no capacity to start the site")
	// ErrStartFailed means the container did not start or did not become
	// ready.
	ErrStartFailed = errors.New("the site failed to start")
)

// toAPIError maps store, runtime and decoding errors to API errors. Errors
// it does not know are internal: logged in full, answered without detail.
func (a *API) toAPIError(r *http.Request, err error) *Error {
	var apiE *Error
	var verr *tenants.ValidationError
	var cerr *tenants.ConflictError
	switch {
	case errors.As(err, &apiE):
		return apiE
	case errors.As(err, &verr):
		return apiErr(http.StatusUnprocessableEntity, CodeInvalid, verr.Field, verr.Message)
	case errors.As(err, &cerr):
		return apiErr(http.StatusConflict, CodeConflict, cerr.Field, cerr.Message)
	case errors.Is(err, tenants.ErrNotFound):
		return notFound("resource")
	case errors.Is(err, ErrNoContainer):
		return apiErr(http.StatusNotFound, CodeNotFound, "", ErrNoContainer.Error())
	case errors.Is(err, ErrNoCapacity):
		return apiErr(http.StatusServiceUnavailable, CodeNoCapacity, "", err.Error())
	case errors.Is(err, billing.ErrStripe):
		a.log.Warn("stripe request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		return apiErr(http.StatusBadGateway, CodeStripe, "", err.Error())
	case errors.Is(err, ErrStartFailed):
		return apiErr(http.StatusBadGateway, CodeStartFailed, "", err.Error())
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return apiErr(499, "client_closed", "", "client closed the request")
	}
	a.log.Error("admin api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	return apiErr(http.StatusInternalServerError, CodeInternal, "", "internal error; see the server log")
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == 499 {
		return // nobody is listening
	}
	writeJSON(w, e.Status, struct {
		Error *Error `json:"error"`
	}{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
