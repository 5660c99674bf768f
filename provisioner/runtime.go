package provisioner

import (
	"context"
	"io"
	"time"
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
	// known, then returns the instance with them. Scaling down removes
	// the last replicas in Running order where the engine lets the
	// caller choose (Docker); Swarm picks them itself. Scaling to the count
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

// RuntimePauser is a Runtime that can freeze a site's replica (memory
// kept, no CPU) and thaw it, for the warm tier. The Swarm runtime is not
// one: Swarm has no pause.
type RuntimePauser interface {
	// Pause freezes the site's running replica id; its upstream stays.
	Pause(ctx context.Context, siteID, id string) error
	// Unpause thaws it; it answers again at once. Thawing a replica that
	// is not paused (another process woke it first) is no error.
	Unpause(ctx context.Context, siteID, id string) error
}

// ReplicaWatcher is a Runtime whose replicas can be waited on, so that a
// start sees a replica exit at once rather than at its timeout, and whose
// replicas' own output can be read.
type ReplicaWatcher interface {
	// WaitExit returns replica id's exit code once it no longer runs, or
	// an error when ctx ends or the engine cannot say; errReplicaGone when
	// the runtime itself dropped the replica and places another.
	WaitExit(ctx context.Context, id string) (exitCode int, err error)
	// LogTail returns the last n lines replica id wrote, or why none.
	LogTail(ctx context.Context, id string, n int) string
}

// RuntimeRollouts is a Runtime that can run a second instance of a site
// (the candidate) beside its live one, so that a rollout switches between
// two ready instances without a stop (Docker). A Runtime without it rolls
// out by Ensure, which updates the instance in place (Swarm's own rolling
// update).
type RuntimeRollouts interface {
	// Prepare does what a candidate of spec needs before it is made
	// (its image pulled, its volume made), while the live one serves.
	Prepare(ctx context.Context, spec *Spec) error
	// Candidate returns the site's candidate (State InstanceAbsent when
	// there is none).
	Candidate(ctx context.Context, siteID string) (RuntimeInstance, error)
	// StartCandidate makes the candidate from spec and starts it, and
	// returns it running (not probed). On failure the candidate may be
	// left: DiscardCandidate it.
	StartCandidate(ctx context.Context, spec *Spec) (RuntimeInstance, error)
	// DiscardCandidate removes the candidate; none is no error.
	DiscardCandidate(ctx context.Context, siteID string) error
	// InspectReplica returns the instance replica id is (the live one or
	// the candidate), State InstanceAbsent when it is not the site's.
	InspectReplica(ctx context.Context, siteID, id string) (RuntimeInstance, error)
	// StartReplica starts stopped replica id again and returns it running.
	StartReplica(ctx context.Context, siteID, id string) (RuntimeInstance, error)
	// StopReplica stops replica id; a missing one counts as stopped.
	StopReplica(ctx context.Context, id string) error
	// Retire makes replica id, the candidate, the site's instance: old
	// stopped and removed, what only the old one used released. Failures
	// are logged: the rollout is done either way.
	Retire(ctx context.Context, spec *Spec, old RuntimeInstance, id string)
}

// RuntimeRetirer is a Runtime whose replica a scale-down removes can be
// announced first, to every process watching the engine's events (a
// ReplicaRetiring event), so that all of them stop sending requests to
// it before it goes (Docker). Without it another process learns of the
// removal when the replica exits.
type RuntimeRetirer interface {
	// RetireReplica marks replica id of the site as about to be removed.
	RetireReplica(ctx context.Context, siteID, id string) error
}

// RuntimeHost is a Runtime that can tell the size of the machine its
// sites run on, for checking limits against it.
type RuntimeHost interface {
	Host(ctx context.Context) (Host, error)
}

// RuntimeReconciler is a Runtime that cleans up, at Start, what a crash
// left of its own making (networks no instance uses).
type RuntimeReconciler interface {
	Reconcile(ctx context.Context) error
}

// RuntimeImages is a Runtime that builds release images on its engine and
// can tell whether an image is there or in its registry.
type RuntimeImages interface {
	// CheckImage returns nil when image is there or its registry has it.
	CheckImage(ctx context.Context, ref string) error
	// Build builds the image of the site's release (ImageTag) from a tar
	// with a Dockerfile, writing the build's output to out.
	Build(ctx context.Context, siteID string, release int, buildContext io.Reader, out io.Writer) (string, error)
	// PruneImages removes the site's release images but keep.
	PruneImages(ctx context.Context, siteID string, keep []string) error
}

// RuntimeStats is a Runtime that reads its replicas' resource use.
type RuntimeStats interface {
	// SampleStats reads each running replica's use, at most concurrency
	// at a time, and returns how many run.
	SampleStats(ctx context.Context, concurrency int) (running int, stats []ContainerStats, err error)
	// ReplicaStats reads replica id's use.
	ReplicaStats(ctx context.Context, id string) (ContainerStats, error)
}

// RuntimeVolumes is a Runtime that reads and writes sites' volumes as tar
// archives, for backups.
type RuntimeVolumes interface {
	ExportVolume(ctx context.Context, spec Spec, w io.Writer) error
	// ImportVolume replaces the volume; the caller removed the instance.
	ImportVolume(ctx context.Context, spec Spec, r io.Reader) error
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
	// InstancePaused: its replicas run frozen (RuntimePauser).
	InstancePaused InstanceState = "paused"
)

// Replica is one running copy of a site: a container, or a Swarm task.
type Replica struct {
	// ID is the engine's ID of it (container or task ID).
	ID string
	// Upstream is the address Caddy dials it at (host:port).
	Upstream string
	// Probe, if set, is the replica's own address (Upstream itself where
	// Caddy dials it directly), probed for readiness where Upstream is a
	// published port that the engine's proxy accepts on before the app
	// listens. "" when unknown: Upstream is then probed as such a
	// proxy is (the connection must stay open a moment).
	Probe string
}

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
	// Running are the replicas running (Upstreams' replicas), sorted by
	// upstream.
	Running []Replica
	// Node is the node its volume is on, where it is pinned ("" when it
	// has no volume or never ran).
	Node string
	// StartedAt and StoppedAt are when it last started and stopped, where
	// the engine tells (zero otherwise).
	StartedAt, StoppedAt time.Time
	// Created reports that this Ensure created it.
	Created bool
	// Rollout reports a second instance of the site beside this one: a
	// rollout a process left half done (RuntimeRollouts.Settle decides).
	Rollout bool
}

// RuntimeEvent is a change of a site's instance, with its state after it.
// An instance removed comes as State InstanceAbsent.
type RuntimeEvent struct {
	SiteID    string
	State     InstanceState
	Replicas  int
	Upstreams []string
	// Action, if set, is what happened to one replica (Replica, its ID):
	// an engine that reports replicas' changes one by one (Docker) says
	// which; one that reports states (Swarm) leaves it empty.
	Action  EventAction
	Replica string
	// Time is when it happened (or was seen), for telling an event that
	// comes after a newer change of the caller's own.
	Time time.Time
	// ExitCode is an exited replica's exit code.
	ExitCode string
}

// EventAction is what happened to a replica.
type EventAction string

// Actions of a RuntimeEvent.
const (
	// ReplicaStarted: it started (another process scaled the site up).
	ReplicaStarted EventAction = "started"
	// ReplicaExited: it stopped (crashed, killed, or stopped on purpose).
	ReplicaExited EventAction = "exited"
	// ReplicaPaused and ReplicaUnpaused: it was frozen, or thawed.
	ReplicaPaused   EventAction = "paused"
	ReplicaUnpaused EventAction = "unpaused"
	// ReplicaRetiring: a scale-down is about to remove it (RuntimeRetirer):
	// requests go to the site's other replicas from now on.
	ReplicaRetiring EventAction = "retiring"
)
