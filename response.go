package multitenant

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// statusWriter learns the status of the answer it passes on, for the
// site's figures. It wraps the response writer as Caddy's own wrappers do
// (Unwrap, so http.ResponseController still reaches flushing, hijacking
// and deadlines underneath), and adds nothing to the response.
type statusWriter struct {
	caddyhttp.ResponseWriterWrapper
	status int // the final status written; 0 before one was
	// With timeHeader, headerAt is when the status was written: an
	// upgraded connection's answer took until then, however long the
	// connection lasts after it.
	timeHeader bool
	headerAt   time.Time
}

// statusWriters spare the hot path an allocation per request.
var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

func takeStatusWriter(w http.ResponseWriter, timeHeader bool) *statusWriter {
	sw := statusWriters.Get().(*statusWriter)
	sw.ResponseWriter, sw.status, sw.timeHeader, sw.headerAt = w, 0, timeHeader, time.Time{}
	return sw
}

// release returns sw to the pool. The caller keeps the writer of an
// upgraded connection out of it: the tunnel is not the handler's to end.
func (sw *statusWriter) release() {
	sw.ResponseWriter = nil
	statusWriters.Put(sw)
}

// WriteHeader records the final status; informational ones (103 Early
// Hints) precede it, except 101, which ends the exchange.
func (sw *statusWriter) WriteHeader(code int) {
	if (code >= 200 || code == http.StatusSwitchingProtocols) && sw.status == 0 {
		sw.status = code
		if sw.timeHeader {
			sw.headerAt = time.Now()
		}
	}
	sw.ResponseWriter.WriteHeader(code)
}

// took returns how long the answer took, from began: until its status
// was written, with timeHeader, else until now.
func (sw *statusWriter) took(began time.Time) time.Duration {
	if !sw.headerAt.IsZero() {
		return sw.headerAt.Sub(began)
	}
	return time.Since(began)
}

// statusOf returns the status the client got for an answer that ended
// with err: the one written if any, else the one Caddy's error handling
// writes for err (499 for a client that went away), else 200 (nothing
// written is an empty 200).
func (sw *statusWriter) statusOf(err error) int {
	if sw.status != 0 {
		return sw.status
	}
	if err == nil {
		return http.StatusOK
	}
	var he caddyhttp.HandlerError
	switch {
	case errors.As(err, &he) && he.StatusCode != 0:
		return he.StatusCode
	case errors.Is(err, context.Canceled):
		return statusClientClosedRequest
	}
	return http.StatusInternalServerError
}

// statusClientClosedRequest is nginx's (and Caddy's) status of a request
// whose client went away before the answer.
const statusClientClosedRequest = 499

// Interface guards
var _ http.ResponseWriter = (*statusWriter)(nil)
