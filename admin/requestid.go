package admin

import (
	"context"
	"crypto/rand"
	"net/http"

	"go.uber.org/zap"
)

// RequestIDHeader is the response header with the request's id. Every
// API response has one; error answers repeat it as "request_id", and the
// server log records the details of a failure under it.
const RequestIDHeader = "X-Request-Id"

type requestIDCtx struct{}

// withRequestID gives r a new id and sets its header on w. The id is the
// server's own, never the client's, so that a log line found by it is
// about this request.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := rand.Text()
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDCtx{}, id))
}

// requestID returns the id withRequestID gave r.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDCtx{}).(string)
	return id
}

// logFor returns the API's logger for what happens while serving r.
func (a *API) logFor(r *http.Request) *zap.Logger {
	return a.log.With(zap.String("request_id", requestID(r)), zap.String("method", r.Method), zap.String("path", r.URL.Path))
}
