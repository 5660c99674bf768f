package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Error codes of the API, in the "code" member of every error response.
const (
	CodeMalformedJSON    = "malformed_json"
	CodeMalformedQuery   = "malformed_query"
	CodeUnknownField     = "unknown_field"
	CodeUnknownParameter = "unknown_parameter"
	CodeDuplicateKey     = "duplicate_key"
	CodeInvalidType      = "invalid_type"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeInvalid          = "invalid"
	CodeNotFound         = "not_found"
	CodeConflict         = "conflict"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeRateLimited      = "rate_limited"
	CodeStartFailed      = "start_failed"
	CodeNoCapacity       = "no_capacity"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// Error is the one shape of every error the API returns:
//
//	{"error": {"code": "invalid", "message": "...", "field": "subdomain", "request_id": "..."}}
//
// Field names the request field (JSON member, env.NAME, or query
// parameter) at fault, when one is. Messages say what was wrong with the
// request, never how the server or its engines failed: for those the
// message is general, and the server log has the details under the
// request id (also the X-Request-Id header of every response).
type Error struct {
	Status     int    `json:"-"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	Field      string `json:"field,omitempty"`
	RequestID  string `json:"request_id,omitempty"`
	retryAfter int    // seconds, for a Retry-After header
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

// printable makes a name from the request fit to show as a field: valid
// UTF-8 without NUL, what is neither shown as U+FFFD.
func printable(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
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

// Retry-After of the 503s: how soon the condition may well have cleared.
const (
	retryUnavailable = 5  // the database: a restart or failover
	retryCapacity    = 10 // capacity: a running site goes idle
)

// toAPIError maps store, runtime and decoding errors to API errors.
// Failures of the server or its engines (the database, Docker, Stripe) are
// answered in general terms and logged in full under the request's id:
// their messages name internal addresses, containers and the host.
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
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return apiErr(499, "client_closed", "", "client closed the request")
	case errors.Is(err, tenants.ErrUnavailable):
		a.logFor(r).Warn("database unavailable", zap.Error(err))
		e := apiErr(http.StatusServiceUnavailable, CodeUnavailable, "", "the database is unavailable; retry shortly")
		e.retryAfter = retryUnavailable
		return e
	case errors.Is(err, ErrNoContainer):
		return apiErr(http.StatusNotFound, CodeNotFound, "", ErrNoContainer.Error())
	case errors.Is(err, ErrNoCapacity):
		a.logFor(r).Info("no capacity to start site", zap.Error(err))
		e := apiErr(http.StatusServiceUnavailable, CodeNoCapacity, "", "no capacity to start the site now, every running site is busy; retry shortly")
		e.retryAfter = retryCapacity
		return e
	case errors.Is(err, billing.ErrStripe):
		a.logFor(r).Warn("stripe request failed", zap.Error(err))
		return apiErr(http.StatusBadGateway, CodeStripe, "", "the request to Stripe failed; the server log has the details under this request id")
	case errors.Is(err, ErrStartFailed):
		a.logFor(r).Warn("site start failed", zap.Error(err))
		return apiErr(http.StatusBadGateway, CodeStartFailed, "", "the site's container did not start or did not become ready; the server log has the details under this request id")
	}
	a.logFor(r).Error("admin api request failed", zap.Error(err))
	return apiErr(http.StatusInternalServerError, CodeInternal, "", "internal error; the server log has the details under this request id")
}

// writeError answers e, with the request's id.
func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.Status == 499 {
		return // nobody is listening
	}
	out := *e // e may be shared, such as errUnauthorized
	out.RequestID = requestID(r)
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.Status, struct {
		Error *Error `json:"error"`
	}{&out})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
