package provisioner

import (
	"errors"
	"fmt"
	"strings"
)

// ErrCapacity is returned by Ensure when MaxRunning containers are running
// and none of them is idle enough to be stopped. Callers map it to 503 with
// Retry-After: the condition clears as soon as a site goes idle.
var ErrCapacity = errors.New("no capacity to start another site: all running sites are busy")

// ErrEngineUnavailable is returned by Start while the Docker engine does
// not answer, and by Ensure until Start succeeded. Callers map it to 503
// with Retry-After and call Start again with backoff.
var ErrEngineUnavailable = errors.New("docker engine unavailable")

// errNotSupported is what a Provisioner says of a feature its Runtime
// does not have.
var errNotSupported = errors.New("not supported by this runtime")

// errReplicaGone is what a ReplicaWatcher says of a replica its runtime
// gave up on while it was being started (Swarm: the task of a lost node):
// no exit of the site's, and another replica takes its place.
var errReplicaGone = errors.New("replica gone, another takes its place")

// StartError explains why a site's container could not be made ready. It is
// meant for logs and the admin API; visitors should only ever see a generic
// message because LogTail is the site's own output.
//
// After a StartError, Ensure fails fast with the same error (without touching
// Docker) until the site's backoff window has passed; see Provisioner.Ensure.
type StartError struct {
	SiteID string
	// Reason is a short lowercase phrase: "container exited", "timed out
	// waiting for readiness", "pulling image", "creating container", ...
	Reason string
	// ExitCode is the container's exit code if it exited during start,
	// otherwise -1.
	ExitCode int
	// LogTail holds the last lines (stdout and stderr) the container wrote,
	// when it exited during start.
	LogTail string
	// Err is the underlying error, if any.
	Err error
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "starting site %s: %s", e.SiteID, e.Reason)
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " (exit code %d)", e.ExitCode)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if tail := strings.TrimSpace(e.LogTail); tail != "" {
		fmt.Fprintf(&b, "; last log lines:\n%s", tail)
	}
	return b.String()
}

func (e *StartError) Unwrap() error { return e.Err }

// startErr wraps err (which may already be a *StartError) as a *StartError.
func startErr(siteID, reason string, err error) *StartError {
	var se *StartError
	if errors.As(err, &se) {
		return se
	}
	return &StartError{SiteID: siteID, Reason: reason, ExitCode: -1, Err: err}
}
