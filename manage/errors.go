package manage

import (
	"context"
	"errors"
	"fmt"

	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Code says what kind of failure an Error is. Clients map codes to their
// own terms: the REST API to HTTP statuses, the CLI to exit messages, the
// web UI to a form's errors.
type Code string

// The codes of Error.
const (
	// Invalid: the input is not acceptable; Field names it.
	Invalid Code = "invalid"
	// NotFound: what was named does not exist.
	NotFound Code = "not_found"
	// Conflict: other data stands in the way (a taken name, a row still
	// in use, a plan's limit, a state that does not allow the action).
	Conflict Code = "conflict"
	// Unavailable: the database or the Docker engine cannot be reached;
	// retrying later may work.
	Unavailable Code = "unavailable"
	// NoRuntime: this process runs no containers.
	NoRuntime Code = "no_runtime"
	// NoCapacity: max_running containers run and none is idle.
	NoCapacity Code = "no_capacity"
	// StartFailed: the site's container did not start or become ready.
	StartFailed Code = "start_failed"
	// BuildFailed: a build from source failed; its release has the
	// output.
	BuildFailed Code = "build_failed"
	// NoContainer: the site has no container (and no failure recorded).
	NoContainer Code = "no_container"
	// Upstream: Stripe failed.
	Upstream Code = "upstream"
	// NotConfigured: billing is not configured.
	NotConfigured Code = "not_configured"
	// Denied: the credentials given are wrong, or the caller may not do
	// this.
	Denied Code = "denied"
	// Canceled: the caller went away.
	Canceled Code = "canceled"
	// Internal: anything else; Message says nothing of it, Err has it.
	Internal Code = "internal"
)

// Error is the one error type of every action. Message is meant for
// people and never carries internals (engine or Stripe messages, SQL,
// addresses); Err is the cause, for the log.
type Error struct {
	Code    Code
	Field   string // the input field at fault, for Invalid and some Conflicts
	Message string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// IsCode reports whether err is an *Error with code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *Error {
	return &Error{Code: Conflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(what string) *Error {
	return &Error{Code: NotFound, Message: what + " not found"}
}

var errNoRuntime = &Error{Code: NoRuntime, Message: "this server runs no containers"}

// Sentinel errors a Runtime returns (wrapped) so that the service can say
// what went wrong without passing the engine's words on.
var (
	// ErrNoContainer means the site has no container.
	ErrNoContainer = errors.New("the site has no container")
	// ErrNoCapacity means max_running containers run and none is idle.
	ErrNoCapacity = errors.New("no capacity to start the site")
	// ErrStartFailed means the container did not start or become ready.
	ErrStartFailed = errors.New("the site failed to start")
	// ErrEngineUnavailable means the Docker engine cannot be reached.
	ErrEngineUnavailable = errors.New("the docker engine is unavailable")
)

// fail turns whatever an action met into an *Error; what (e.g. "site")
// names a missing row.
func fail(what string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	var verr *tenants.ValidationError
	var cerr *tenants.ConflictError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &verr):
		return &Error{Code: Invalid, Field: verr.Field, Message: verr.Message}
	case errors.As(err, &cerr):
		return &Error{Code: Conflict, Field: cerr.Field, Message: cerr.Message}
	case errors.Is(err, tenants.ErrNotFound):
		return notFound(what)
	case errors.Is(err, tenants.ErrUnavailable):
		return &Error{Code: Unavailable, Message: "the platform's database is unavailable, try again shortly", Err: err}
	case errors.Is(err, ErrEngineUnavailable):
		return &Error{Code: Unavailable, Message: "the Docker engine is unavailable, try again shortly", Err: err}
	case errors.Is(err, ErrNoContainer):
		return &Error{Code: NoContainer, Message: "the site has no container (it was never started, or was removed)", Err: err}
	case errors.Is(err, ErrNoCapacity):
		return &Error{Code: NoCapacity, Message: "no capacity to start the site now, every running site is busy, try again shortly", Err: err}
	case errors.Is(err, ErrBuildFailed):
		return &Error{Code: BuildFailed, Message: "the build failed, its release's log shows why", Err: err}
	case errors.Is(err, ErrStartFailed):
		return &Error{Code: StartFailed, Message: "the site failed to start, its status shows why", Err: err}
	case errors.Is(err, billing.ErrNoPrice):
		return &Error{Code: Invalid, Field: "plan", Message: billing.ErrNoPrice.Error()}
	case errors.Is(err, billing.ErrStripe):
		return &Error{Code: Upstream, Message: "the request to Stripe failed, try again shortly", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: Canceled, Message: "the request was canceled or timed out", Err: err}
	}
	return &Error{Code: Internal, Message: "internal error", Err: err}
}

// Wrap returns err as an *Error, for callers that meet the store's or the
// runtime's errors outside an action (authentication, say).
func Wrap(err error) error { return fail("resource", err) }
