package admin

import (
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/manage"
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

// statusOf is the HTTP status of each of the admin service's codes.
var statusOf = map[manage.Code]int{
	manage.Invalid:       http.StatusUnprocessableEntity,
	manage.NotFound:      http.StatusNotFound,
	manage.Conflict:      http.StatusConflict,
	manage.Unavailable:   http.StatusServiceUnavailable,
	manage.NoRuntime:     http.StatusServiceUnavailable,
	manage.NoCapacity:    http.StatusServiceUnavailable,
	manage.StartFailed:   http.StatusBadGateway,
	manage.NoContainer:   http.StatusNotFound,
	manage.Upstream:      http.StatusBadGateway,
	manage.NotConfigured: http.StatusNotImplemented,
	manage.Canceled:      499,
	manage.Internal:      http.StatusInternalServerError,
}

// apiCode is the API's code of each of the admin service's codes where
// they differ (kept from before the service, for clients).
var apiCode = map[manage.Code]string{
	manage.NoRuntime:     CodeUnavailable,
	manage.NoContainer:   CodeNotFound,
	manage.Upstream:      CodeStripe,
	manage.NotConfigured: CodeNotConfigured,
	manage.Canceled:      "client_closed",
}

// toAPIError maps the admin service's, the store's (authentication) and
// decoding errors to API errors. What carries a cause is logged in full
// and answered with the service's message only.
func (a *API) toAPIError(r *http.Request, err error) *Error {
	var apiE *Error
	var me *manage.Error
	switch {
	case errors.As(err, &apiE):
		return apiE
	case errors.As(err, &me):
	default:
		// The store, from authentication.
		errors.As(manage.Wrap(err), &me)
	}
	status := statusOf[me.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	code := apiCode[me.Code]
	if code == "" {
		code = string(me.Code)
	}
	if me.Err != nil && status != 499 {
		a.log.Warn("admin api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.String("code", string(me.Code)), zap.Error(me.Err))
	}
	return apiErr(status, code, me.Field, me.Message)
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
