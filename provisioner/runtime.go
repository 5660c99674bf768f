package provisioner

import (
	"context"
	"io"
)

// Runtime is what the lifecycle logic (lazy start, idle stop, capacity,
// adoption, logs) needs from an engine that runs a site's replicas: the
// Docker engine (one container per site) or a Docker Swarm (one service
// per site, SwarmRuntime). It knows nothing of requests, idleness or
// capacity; it makes a site's instance exist, run with so many replicas,
// and says where they answer. Readiness (an HTTP 200 or a TCP accept) is
// the lifecycle logic's: a Runtime reports replicas the engine says run.
//
// (SiteRuntime, the status snapshot, is unrelated: it is what the
// provisioner reports of a site, a Runtime is what it drives.)
//
// Every method may be called concurrently, for the same site too, and from
// several processes on one engine; each is idempotent. Every wait honors
// ctx: when it ends, the method returns ctx's error (wrapped) at once; what
// it asked of the engine before then stays asked (a scale-up cancelled
// while waiting still converges in the engine, and the next call finds it).
type Runtime interface {
	// Ensure makes the site's instance match spec and returns it: created
	// (Created set) when missing, replaced or updated in place when its
	// LabelSpec hash differs from spec's (its volume kept), left alone when
	// it matches or was made from a newer version of the same template (a
	// stale cache must not downgrade what another node made). It never
	// starts replicas: a created instance has 0, an existing one keeps its
	// count. An instance of the same name that is not this namespace's and
	// site's is an error, never adopted. Concurrent Ensures of one site
	// give one instance.
	Ensure(ctx context.Context, spec *Spec) (RuntimeInstance, error)

	// Scale sets the site's replica count (0 stops it, see Stop) and waits
	// until that many replicas run and each one's upstream address is
	// known, then returns the instance with them. Scaling to the count
	// the instance has and runs returns at once. A missing instance is an
	// error (Ensure first). A replica the engine rejects (no image, a
	// constraint no node meets) fails Scale with the engine's reason
	// rather than waiting for ctx.
	Scale(ctx context.Context, siteID string, replicas int) (RuntimeInstance, error)

	// Stop scales the site to 0 and waits until no replica runs (each
	// stopped with SIGTERM, SIGKILL after the engine's grace period). A
	// missing instance counts as stopped.
	Stop(ctx context.Context, siteID string) error

	// Inspect returns the site's instance as the engine has it now, with
	// the upstreams of the replicas running; a missing one is State
	// InstanceAbsent and no error.
	Inspect(ctx context.Context, siteID string) (RuntimeInstance, error)

	// List returns the namespace's instances (by LabelNamespace), for
	// adoption at start: after a restart the lifecycle logic takes them
	// over from these, their spec hash and running upstreams, and creates
	// nothing anew.
	List(ctx context.Context) ([]RuntimeInstance, error)

	// Remove removes the site's instance (its replicas killed), and with
	// purge its volume too; a missing one is no error.
	Remove(ctx context.Context, siteID string, purge bool) error

	// Logs streams the site's stdout and stderr, its replicas' interleaved:
	// the last tail lines (tail <= 0: all), then with follow new lines
	// until ctx ends or the reader is closed (closing it frees everything).
	Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error)

	// Events reports changes of the namespace's instances made behind the
	// caller's back as well as its own (a replica that died, one the
	// engine moved to another node, a stop by another process) until ctx
	// ends, when the channel is closed: its goroutine is ctx's. Events
	// lost while the engine is unreachable are not replayed; the next
	// event of a site carries its whole state, so a caller catches up.
	Events(ctx context.Context) (<-chan RuntimeEvent, error)
}

// RuntimePauser is a Runtime that can freeze a site's replicas (memory
// kept, no CPU) and thaw them, for the warm tier. The Swarm runtime is not
// one: Swarm has no pause.
type RuntimePauser interface {
	// Pause freezes the site's running replicas; their upstreams stay.
	Pause(ctx context.Context, siteID string) error
	// Unpause thaws them; they answer again at once.
	Unpause(ctx context.Context, siteID string) error
}

// InstanceState is what the engine says of a site's instance.
type InstanceState string

// States of an instance.
const (
	// InstanceAbsent: the engine has no instance of the site.
	InstanceAbsent InstanceState = "absent"
	// InstanceStopped: it exists with no replica running or asked for.
	InstanceStopped InstanceState = "stopped"
	// InstanceStarting: replicas are asked for, not all of them run yet
	// (or are being moved, or restarted after a crash).
	InstanceStarting InstanceState = "starting"
	// InstanceRunning: as many replicas run as are asked for.
	InstanceRunning InstanceState = "running"
	// InstanceStopping: no replica is asked for, some still run.
	InstanceStopping InstanceState = "stopping"
)

// RuntimeInstance is a site's instance in a Runtime: a container, or a
// Swarm service and its tasks.
type RuntimeInstance struct {
	SiteID string
	// ID is the engine's ID of the instance (container or service ID).
	ID string
	// SpecHash is the LabelSpec it was made with (Spec.hash).
	SpecHash string
	// TemplateSlug and TemplateVersion are its template's labels.
	TemplateSlug    string
	TemplateVersion int
	// Port and HealthPath are those of the spec it was made from, from its
	// labels: an adopted instance is probed with them.
	Port       int
	HealthPath string
	// CustomerKey is its network key (LabelCustomer).
	CustomerKey string
	State       InstanceState
	// Replicas is the count asked for; Upstreams are the dial addresses
	// (host:port) of the replicas running, sorted.
	Replicas  int
	Upstreams []string
	// Node is the node its volume is on, where it is pinned ("" when it
	// has no volume or never ran).
	Node string
	// Created reports that this Ensure created it.
	Created bool
}

// RuntimeEvent is a change of a site's instance, with its state after it.
// An instance removed comes as State InstanceAbsent.
type RuntimeEvent struct {
	SiteID    string
	State     InstanceState
	Replicas  int
	Upstreams []string
}
