package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
	"go.uber.org/zap"
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
	CodeBuildFailed      = "build_failed"
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

// Retry-After of the 503s: how soon the condition may well have cleared.
const (
	retryUnavailable = 5  // the database or the engine: a restart or failover
	retryCapacity    = 10 // capacity: a running site goes idle
)

// answers are how the API answers each of the admin service's codes:
// status, its own code where it differs (kept from before the service,
// for clients), and Retry-After.
var answers = map[manage.Code]struct {
	status     int
	code       string
	retryAfter int
}{
	manage.Invalid:       {http.StatusUnprocessableEntity, CodeInvalid, 0},
	manage.NotFound:      {http.StatusNotFound, CodeNotFound, 0},
	manage.Conflict:      {http.StatusConflict, CodeConflict, 0},
	manage.Unavailable:   {http.StatusServiceUnavailable, CodeUnavailable, retryUnavailable},
	manage.NoRuntime:     {http.StatusServiceUnavailable, CodeUnavailable, 0},
	manage.NoCapacity:    {http.StatusServiceUnavailable, CodeNoCapacity, retryCapacity},
	manage.StartFailed:   {http.StatusBadGateway, CodeStartFailed, 0},
	manage.BuildFailed:   {http.StatusUnprocessableEntity, CodeBuildFailed, 0},
	manage.NoContainer:   {http.StatusNotFound, CodeNotFound, 0},
	manage.Upstream:      {http.StatusBadGateway, CodeStripe, 0},
	manage.NotConfigured: {http.StatusNotImplemented, CodeNotConfigured, 0},
	manage.Denied:        {http.StatusForbidden, CodeForbidden, 0},
	manage.Canceled:      {499, "client_closed", 0},
	manage.Internal:      {http.StatusInternalServerError, CodeInternal, 0},
}

// toAPIError maps the admin service's errors (and the store's, from
// authentication) and decoding errors to API errors. The service's
// messages never carry internals; its causes (the database's, Docker's,
// Stripe's words, which name internal addresses, containers and the host)
// are logged in full under the request's id.
func (a *API) toAPIError(r *http.Request, err error) *Error {
	var apiE *Error
	if errors.As(err, &apiE) {
		return apiE
	}
	var me *manage.Error
	if !errors.As(err, &me) {
		errors.As(manage.Wrap(err), &me)
	}
	ans, ok := answers[me.Code]
	if !ok {
		ans = answers[manage.Internal]
	}
	e := apiErr(ans.status, ans.code, printable(me.Field), me.Message)
	e.retryAfter = ans.retryAfter
	if me.Err != nil && ans.status != 499 {
		log := a.logFor(r).Warn
		if me.Code == manage.Internal {
			log = a.logFor(r).Error
			e.Message = "internal error"
		}
		log("admin api request failed", zap.String("code", string(me.Code)), zap.Error(me.Err))
		e.Message += "; the server log has the details under this request id"
	}
	return e
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
