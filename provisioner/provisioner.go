// Package provisioner runs each site's container on a Docker engine: it
// creates and starts a container lazily when a site gets its first request
// (Ensure), waits until the site answers, tracks requests and upgraded
// connections (Begin, BeginUpgraded) and stops containers that have been
// idle for a while. It knows nothing of SQL or HTTP routing: the caller
// resolves a host to a Spec and persists the SiteRuntime changes it reports.
//
// Typical use by an HTTP handler:
//
//	end := p.Begin(siteID) // first, so the idle reaper sees the request
//	defer end()
//	upstream, ok := p.Upstream(siteID) // hot path: no Docker call, no allocation
//	if !ok {
//		upstream, err = p.Ensure(ctx, spec) // cold path: one start per site
//	}
//
// Containers are identified by labels (caddy-multitenant.namespace,
// caddy-multitenant.site, caddy-multitenant.template,
// caddy-multitenant.template-version) and a deterministic name
// tenant-<namespace>-<site id>; a provisioner never touches containers of
// another namespace.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agistaffers/caddy-multitenant/autoscale"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Spec describes what a site's container should be. The caller builds it
// from the site's template and overrides.
type Spec struct {
	// SiteID identifies the site (a UUID); it names the container and the
	// volume, so it must match [a-zA-Z0-9][a-zA-Z0-9_.-]*.
	SiteID string
	// Image is the image reference; it is pulled if not present locally.
	Image string
	// Port is the container port the site listens on.
	Port int
	// Env is the final environment (template defaults merged with the
	// site's overrides).
	Env map[string]string
	// DataPath is where the site's named volume is mounted; "" means the
	// site has no volume.
	DataPath string
	// HealthPath, if set, must answer 2xx before the site counts as ready;
	// "" means a TCP connection is enough.
	HealthPath string
	// MemoryBytes, NanoCPUs and PidsLimit limit the container; 0 means
	// unlimited.
	MemoryBytes, NanoCPUs, PidsLimit int64
	// CapAdd lists capabilities granted on top of an empty set (all others
	// are dropped); each must be in Config.AllowedCapabilities when that
	// is set.
	CapAdd []string
	// CustomerID is the site's owner. A customer's sites share a Docker
	// network of their own and no other, so they reach each other but never
	// another customer's containers; "" gives the site a network of its own.
	// It must match the same pattern as SiteID.
	CustomerID string
	// User, if set, is the uid or uid:gid the container runs as.
	User string
	// ReadOnly gives the container a read-only root filesystem with a
	// tmpfs at /tmp.
	ReadOnly bool
	// NoEgress puts the container on its customer's internal network: it
	// reaches the customer's other sites (and is reached by Caddy), but
	// nothing outside.
	NoEgress bool
	// TemplateSlug and TemplateVersion are recorded as labels, with a hash
	// of everything above. A container whose hash differs (the site's env,
	// its template, the template's image or limits changed) is replaced at
	// its next start, the volume kept; one made from a newer version of the
	// same template is kept (the spec comes from a stale cache).
	TemplateSlug    string
	TemplateVersion int
	// HealthInterval is how often the HealthPath of the running
	// container is checked; UnhealthyAfter failed checks in a row mark
	// the site unhealthy and RestartAfter restart its container (with the
	// backoff of failed starts between restarts; negative: never). 0s
	// mean DefaultHealthInterval, DefaultUnhealthyAfter and
	// DefaultRestartAfter. They do not shape the container.
	HealthInterval time.Duration
	UnhealthyAfter int
	RestartAfter   int
	// ShareVolume lets a rollout start the new container beside the live
	// one while both mount the volume; without it (and with a DataPath)
	// the live container stops while the new one starts. It does not
	// shape the container.
	ShareVolume bool
	// MaxReplicas is the most replicas the autoscaler runs of the site
	// (0 or 1: it never scales), and TargetConcurrency the requests in
	// flight one replica is meant to carry (0: autoscale.DefaultTarget).
	// They do not shape the container.
	MaxReplicas       int
	TargetConcurrency int
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (s *Spec) validate() error {
	switch {
	case !validName.MatchString(s.SiteID):
		return fmt.Errorf("invalid site id %q", s.SiteID)
	case s.Image == "":
		return fmt.Errorf("site %s: no image", s.SiteID)
	case s.Port <= 0 || s.Port > 65535:
		return fmt.Errorf("site %s: invalid port %d", s.SiteID, s.Port)
	case s.CustomerID != "" && !validName.MatchString(s.CustomerID):
		return fmt.Errorf("site %s: invalid customer id %q", s.SiteID, s.CustomerID)
	}
	return nil
}

// State is a site container's lifecycle state as seen by the provisioner.
type State string

// States reported in SiteRuntime.
const (
	StateUnknown  State = ""
	StateCreated  State = "created"
	StateStarting State = "starting"
	StateRunning  State = "running"
	StatePaused   State = "paused" // frozen (the warm tier): the next request wakes it at once
	StateStopped  State = "stopped"
	StateFailed   State = "failed"
	StateRemoved  State = "removed"
)

// SiteRuntime is a snapshot of a site's runtime state, reported through
// Config.OnChange and Status.
type SiteRuntime struct {
	SiteID          string
	State           State
	ContainerID     string
	Upstream        string // host:port while running
	TemplateVersion int
	LastStart       time.Time
	LastStop        time.Time
	LastPause       time.Time // when the container was last paused
	LastActivity    time.Time
	InFlight        int64
	Upgraded        int64
	Error           string    // last start failure, if any
	RetryAfter      time.Time // end of the failure backoff window
	// Failure is the last failed start until a start succeeds, and
	// FailedAt when it failed.
	Failure  *StartError
	FailedAt time.Time
	// LastExit is when the container last exited on its own (it crashed,
	// or was stopped behind the provisioner's back); stops the
	// provisioner makes do not count.
	LastExit time.Time
	// Health is what the checks of the running container's health path
	// say; HealthFailures counts the failed ones in a row, HealthError is
	// the last failure, HealthCheckedAt the last check, UnhealthySince
	// when the failures of an unhealthy site began. Restarting is set
	// while the checks restart the container (a stop that is no sleep).
	Health          Health
	HealthFailures  int
	HealthError     string
	HealthCheckedAt time.Time
	UnhealthySince  time.Time
	Restarting      bool
	// Replicas counts the replicas the site's requests are balanced over
	// here, Upstreams are their addresses (Upstream the first's), and
	// MaxReplicas is the most the autoscaler runs (1: it never scales).
	Replicas    int
	Upstreams   []string
	MaxReplicas int
}

// Locker serializes the container operations of one site across processes
// (the root package wires a PostgreSQL advisory lock) so two Caddy nodes
// sharing an engine never race to create, recreate or remove the same
// container, and one node's requests wait for another node's recreate.
type Locker interface {
	// Lock blocks until the site's lock is held or ctx is done.
	Lock(ctx context.Context, siteID string) (unlock func(), err error)
}

// Config configures a Provisioner. Zero values mean the documented default.
type Config struct {
	// Runtime is the engine the sites run on. Default: the Docker engine
	// of Client or Host (a DockerRuntime made from this Config's Docker
	// settings: Client, Host, Namespace, PublishIP, Network, SubnetPool,
	// SubnetBits, StopTimeout), closed by Stop.
	Runtime Runtime
	// Client is the Docker client, shared by the caller, who must have
	// negotiated its API version (NegotiateAPIVersion) before sharing it:
	// the client's lazy negotiation races with concurrent requests. If nil,
	// a client is made from Host (or the DOCKER_* environment), negotiated
	// in Start and closed by Stop.
	Client *client.Client
	// Host is the Docker host used when Client is nil. Default: $DOCKER_HOST,
	// else the local socket.
	Host string
	// Namespace is stamped on every container and volume; containers of
	// other namespaces are never touched. Default "default".
	Namespace string
	// PublishIP is the host IP the site port is published on (random host
	// port); the upstream is PublishIP:hostport. Default 127.0.0.1.
	PublishIP string
	// Network, if set, names the Docker network Caddy's own containers are
	// on (Caddy runs in a container): every container on it is connected
	// to each customer network as it is made, and the upstream is the site
	// container's address on its customer network instead of a published
	// port. Site containers never join Network itself. Default "" (publish
	// on PublishIP).
	Network string
	// SubnetPool is the address range customer networks get their subnets
	// from, each a /SubnetBits; subnets other networks of the engine (or
	// this host's interfaces) use are skipped. Default 172.16.0.0/16 in
	// /26s: 1024 networks of 61 containers.
	SubnetPool netip.Prefix
	// SubnetBits is the prefix length of one customer network. Default 26.
	SubnetBits int
	// AllowedCapabilities, if not nil, lists every capability a Spec may
	// add; a start asking for another one fails. Default nil (no check).
	AllowedCapabilities []string
	// StartTimeout bounds one start, from create to ready. Default 60s.
	StartTimeout time.Duration
	// IdleTimeout is how long a site may go without requests or upgraded
	// connections before its container is stopped. 0 disables idle stops.
	IdleTimeout time.Duration
	// StopTimeout is the grace period between SIGTERM and SIGKILL. Default 10s.
	StopTimeout time.Duration
	// DialTimeout bounds a readiness probe's dial to a container's own
	// address; a reachable bridge answers (or refuses) in well under a
	// millisecond. Default 500ms.
	DialTimeout time.Duration
	// DrainTimeout bounds how long a rollout waits, once the new
	// container serves, for the requests and upgraded connections still
	// on the old one to end before it stops it. Default 30s.
	DrainTimeout time.Duration
	// PeersUse, if set, reports whether another node still sends
	// requests to the container (it has not switched yet) or has some in
	// flight there; a rollout's drain waits for it as for its own. nil =
	// this node alone counts.
	PeersUse func(ctx context.Context, siteID, containerID string) (bool, error)
	// HealthChecks turns on the checks of running sites' health paths
	// (Spec.HealthInterval and the thresholds): the server's provisioner
	// checks, a CLI's short-lived one does not. Default: false.
	HealthChecks bool
	// PauseAfter is how long a site may go without requests or upgraded
	// connections (on any node) before its container is paused: frozen
	// with its memory kept, woken by the next request without a start.
	// IdleTimeout then stops it as it stops a running one. 0 disables
	// pausing, and so does a PauseAfter not below a non-zero IdleTimeout.
	PauseAfter time.Duration
	// MaxPausedMemory bounds the memory paused containers hold together
	// (as the engine's stats read it at the pause); above it the least
	// recently used paused sites are stopped. 0 = no bound but MaxRunning.
	MaxPausedMemory int64
	// MaxRunning caps running and paused containers together; starting
	// one more stops the least recently used paused site, else the least
	// recently used idle running one, or fails with ErrCapacity.
	// 0 = unlimited.
	MaxRunning int
	// Locker serializes a site's container operations (start, stop,
	// recreate, remove) across processes; nil = this process only.
	Locker Locker
	// Refresh, if set, returns the site's spec as its source of truth has
	// it now. It is called under the site's lock before a start inspects,
	// creates or recreates the container, so no container is ever made
	// from a spec older than the source's (a cache that missed a change);
	// an error fails the start. nil = trust the caller's spec.
	Refresh func(ctx context.Context, spec Spec) (Spec, error)
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Metrics is the registry (Caddy's) to register collectors on; nil =
	// no registration.
	Metrics prometheus.Registerer
	// OnChange, if set, is called after every state change of a site
	// (created, starting, running, stopped, failed, removed). It is called
	// synchronously from the provisioner's goroutines and must not block:
	// queue the value and persist in batches.
	OnChange func(SiteRuntime)
	// OnCapacity, if set, is called when a start finds MaxRunning
	// containers running and none idle. Like OnChange it must not block.
	OnCapacity func(siteID string)
	// OnColdStart, if set, is called after each start requests waited
	// for (Ensure): took is from the start's first request until the site
	// was ready or the start failed (ok false). A start that found the
	// container running (another node started it) is none. It is called
	// synchronously and must not block.
	OnColdStart func(siteID string, took time.Duration, ok bool)
	// OnScale, if set, is called after the autoscaler changed a site's
	// replica count, with the decision. Like OnChange it must not block.
	OnScale func(ScaleEvent)
	// ScaleInterval is how often the autoscaler samples each awake
	// site's requests in flight (here and on other nodes, see
	// SetPeerActivity). Default: DefaultScaleInterval.
	ScaleInterval time.Duration
	// ScaleUpWindow and ScaleDownWindow are how long the average must
	// stay above the target before a replica is added, and below what
	// one replica fewer would carry before one is removed. Defaults:
	// autoscale.DefaultUpWindow and autoscale.DefaultDownWindow.
	ScaleUpWindow, ScaleDownWindow time.Duration
	// ScalePolicyRefresh is how often an awake site's scaling policy is
	// asked of Refresh again: a plan's max_replicas changes without a
	// release of the site. Default: DefaultScalePolicyRefresh.
	ScalePolicyRefresh time.Duration
}

// DefaultDrainTimeout is how long a rollout lets the old container finish
// what it serves, unless Config.DrainTimeout says otherwise.
const DefaultDrainTimeout = 30 * time.Second

// Provisioner manages the containers of one namespace. Create it with New,
// call Start once, and Stop when done. All methods are safe for concurrent
// use.
type Provisioner struct {
	cfg        Config
	rt         Runtime
	ownRuntime bool // rt was made by New and is closed by Stop
	log        *zap.Logger
	metrics    *metrics

	sites registry
	group singleflight.Group
	clock coarseClock

	running atomic.Int64 // sites whose upstream is set
	paused  atomic.Int64 // sites whose container is paused (siteState.paused set)
	extras  atomic.Int64 // running sites' replicas beyond their first (countExtras)

	capMu    sync.Mutex // serializes capacity decisions
	starting int        // starts (and rollouts' second containers) holding a capacity reservation; guarded by capMu

	unsettled sync.Map // ids of sites whose rollout a previous process left half done

	direct atomic.Int32 // directUnknown, directReachable or directUnreachable: can replicas' own addresses be probed

	hostMu sync.Mutex
	host   *Host // the engine's machine, once asked

	// dockerStarts counts the replica starts asked of the runtime (tests
	// assert on it).
	dockerStarts atomic.Int64

	engineUp atomic.Bool // Start succeeded: the namespace's containers are known

	lifeMu  sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New validates cfg and returns a Provisioner. It does not talk to Docker:
// that starts with Start (so it is safe under `caddy validate`).
func New(cfg Config) (*Provisioner, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if !validName.MatchString(cfg.Namespace) {
		return nil, fmt.Errorf("invalid namespace %q", cfg.Namespace)
	}
	if cfg.PublishIP == "" {
		cfg.PublishIP = "127.0.0.1"
	}
	if !cfg.SubnetPool.IsValid() {
		cfg.SubnetPool = DefaultSubnetPool
	}
	if cfg.SubnetBits == 0 {
		cfg.SubnetBits = DefaultSubnetBits
	}
	if err := validSubnetPool(cfg.SubnetPool, cfg.SubnetBits); err != nil {
		return nil, err
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("negative idle timeout %s", cfg.IdleTimeout)
	}
	if cfg.PauseAfter < 0 {
		return nil, fmt.Errorf("negative pause after %s", cfg.PauseAfter)
	}
	if cfg.MaxPausedMemory < 0 {
		return nil, fmt.Errorf("negative max paused memory %d", cfg.MaxPausedMemory)
	}
	if cfg.MaxRunning < 0 {
		return nil, fmt.Errorf("negative max running %d", cfg.MaxRunning)
	}
	if cfg.ScaleInterval < 0 || cfg.ScaleUpWindow < 0 || cfg.ScaleDownWindow < 0 {
		return nil, errors.New("negative autoscaling interval or window")
	}
	if cfg.ScaleInterval == 0 {
		cfg.ScaleInterval = DefaultScaleInterval
	}
	if cfg.ScalePolicyRefresh <= 0 {
		cfg.ScalePolicyRefresh = DefaultScalePolicyRefresh
	}
	if cfg.ScaleUpWindow == 0 {
		cfg.ScaleUpWindow = autoscale.DefaultUpWindow
	}
	if cfg.ScaleDownWindow == 0 {
		cfg.ScaleDownWindow = autoscale.DefaultDownWindow
	}
	if cfg.ScaleDownWindow < cfg.ScaleUpWindow {
		return nil, fmt.Errorf("scale down window %s is shorter than the scale up window %s", cfg.ScaleDownWindow, cfg.ScaleUpWindow)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	p := &Provisioner{cfg: cfg, rt: cfg.Runtime, log: cfg.Logger}
	p.clock.set()
	p.sites.clock = &p.clock
	if p.rt == nil {
		rt, err := NewDockerRuntime(DockerConfig{
			Client: cfg.Client, Host: cfg.Host, Namespace: cfg.Namespace, PublishIP: cfg.PublishIP,
			Network: cfg.Network, SubnetPool: cfg.SubnetPool, SubnetBits: cfg.SubnetBits,
			StopTimeout: cfg.StopTimeout, Logger: cfg.Logger,
		})
		if err != nil {
			return nil, err
		}
		p.rt, p.ownRuntime = rt, true
	}
	p.metrics = newMetrics(cfg.Metrics, p.log)
	return p, nil
}

// Start adopts the namespace's existing containers (running ones become
// known-running, never duplicated; one still starting is waited for as a
// start is) and starts the idle reaper and the Docker event watcher. It
// fails, and may be called again, while the engine does not answer: the
// error then wraps ErrEngineUnavailable. Once it succeeded it may not be
// called again. Until it succeeded, Ensure fails with
// ErrEngineUnavailable.
func (p *Provisioner) Start(ctx context.Context) error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.started {
		return errors.New("provisioner already started")
	}
	life, cancel := context.WithCancel(context.Background())
	if err := p.adopt(ctx, life); err != nil {
		cancel()
		p.wg.Wait() // the waits on adopted starts
		return err
	}
	if rr, ok := p.rt.(RuntimeReconciler); ok {
		if err := rr.Reconcile(ctx); err != nil {
			// Leftovers (a network costs a subnet) cost little.
			p.log.Warn("reconciling the runtime's leftovers", zap.Error(err))
		}
	}
	p.started, p.cancel = true, cancel
	p.wg.Add(1)
	go p.runClock(life)
	if p.cfg.IdleTimeout > 0 || p.pauseEnabled() {
		p.wg.Add(1)
		go p.reap(life)
	}
	p.wg.Add(1)
	go p.watchEvents(life)
	if p.cfg.HealthChecks {
		p.wg.Add(1)
		go p.watchHealth(life)
	}
	p.wg.Add(1)
	go p.autoscale(life)
	p.engineUp.Store(true)
	p.log.Info("provisioner started", zap.String("namespace", p.cfg.Namespace),
		zap.Int("adopted_running", int(p.running.Load())), zap.Int("adopted_paused", int(p.paused.Load())),
		zap.Duration("idle_timeout", p.cfg.IdleTimeout), zap.Duration("pause_after", p.cfg.PauseAfter))
	return nil
}

// Stop stops the provisioner's goroutines (reaper, event watcher) and waits
// for them. It does not stop containers: they outlive config reloads and
// are adopted by the next provisioner. Starts in flight are not cancelled
// (their waiters belong to the old config); each ends within StartTimeout.
func (p *Provisioner) Stop() error {
	p.lifeMu.Lock()
	cancel := p.cancel
	p.cancel = nil
	p.lifeMu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
	if c, ok := p.rt.(io.Closer); ok && p.ownRuntime {
		return c.Close()
	}
	return nil
}

// Upstream returns the dial address of a site known to be running. It is the
// hot path: no Docker call, no lock, no allocation.
func (p *Provisioner) Upstream(siteID string) (string, bool) {
	st := p.sites.get(siteID)
	if st == nil {
		return "", false
	}
	if b := st.upstream.Load(); b != nil {
		return b.upstream, true
	}
	return "", false
}

// Upstreams returns the dial addresses of the replicas of a running site
// that its requests are balanced over, the first being Upstream's; nil
// when it is not running. Like Upstream it is the hot path; the slice is
// shared and must not be modified.
func (p *Provisioner) Upstreams(siteID string) []string {
	st := p.sites.get(siteID)
	if st == nil {
		return nil
	}
	if b := st.upstream.Load(); b != nil {
		return b.upstreams
	}
	return nil
}

// Begin records a request in flight for siteID until the returned end is
// called (exactly once). Activity is stamped with a coarse clock (see
// clockTick), so the hot path makes no clock syscall. Call it before Upstream/Ensure: the reaper checks
// in-flight counts after hiding the upstream, so a request that began
// first is never cut off by an idle stop. It does not allocate once the
// site is known.
func (p *Provisioner) Begin(siteID string) (end func()) {
	st := p.sites.get(siteID)
	if st == nil {
		st = p.sites.getOrCreate(siteID)
	}
	st.inflight.Add(1)
	st.lastActive.Store(p.clock.now())
	// Counted on the container known now, which is the one Upstream
	// returns next unless a rollout switches in between (then the count
	// keeps the old container a moment longer).
	if b := st.upstream.Load(); b != nil {
		b.inflight.Add(1)
		return b.endFn
	}
	st.unbound.Add(1)
	return st.endFn
}

// BeginPassive records a request in flight that is no activity of the
// site's (an uptime monitor's, a crawler's) until the returned end is
// called (exactly once): an idle stop does not cut it off, but neither
// it nor its end keeps the site awake.
func (p *Provisioner) BeginPassive(siteID string) (end func()) {
	st := p.sites.get(siteID)
	if st == nil {
		st = p.sites.getOrCreate(siteID)
	}
	st.inflight.Add(1)
	if b := st.upstream.Load(); b != nil {
		b.inflight.Add(1)
		return b.endPassiveFn
	}
	st.unbound.Add(1)
	return st.endPassiveFn
}

// BeginUpgraded records an open upgraded connection (a WebSocket) until the
// returned end is called (exactly once). A site with an open upgraded
// connection is never idle.
func (p *Provisioner) BeginUpgraded(siteID string) (end func()) {
	st := p.sites.get(siteID)
	if st == nil {
		st = p.sites.getOrCreate(siteID)
	}
	st.upgraded.Add(1)
	st.lastActive.Store(p.clock.now())
	return st.endUpgradedFn
}

// Ensure makes sure the site's container is running and ready and returns
// its upstream (host:port).
//
// A site known to be running returns at once. Otherwise one start per site
// runs at a time (per process by singleflight, across processes by
// Config.Locker), and every concurrent caller waits for it; a caller whose
// ctx ends returns its ctx error while the start goes on for the others,
// bounded by StartTimeout. Concurrent callers share the first caller's
// Spec.
//
// A failed start returns a *StartError; for a backoff window after it (1s,
// doubling up to 30s, reset by a success) Ensure returns the same error
// without touching Docker. ErrCapacity means MaxRunning is reached and no
// running site is idle. ErrEngineUnavailable means Start has not
// succeeded yet: the engine did not answer.
func (p *Provisioner) Ensure(ctx context.Context, spec Spec) (string, error) {
	return p.ensure(ctx, spec, false)
}

// ensure is Ensure; a roomOnly start (StartIfRoom's) takes free room under
// MaxRunning only. The two kinds never share a start: a request arriving
// during a pre-warm waits for it (on st.op) and, if it found no room,
// starts the site itself, making room as Ensure does.
func (p *Provisioner) ensure(ctx context.Context, spec Spec, roomOnly bool) (string, error) {
	if u, ok := p.Upstream(spec.SiteID); ok {
		return u, nil
	}
	if err := spec.validate(); err != nil {
		return "", err
	}
	if !p.engineUp.Load() {
		// Before adoption a start could not tell a container of the
		// namespace from none.
		return "", ErrEngineUnavailable
	}
	st := p.sites.getOrCreate(spec.SiteID)
	if se := st.backoffErr(time.Now()); se != nil {
		return "", se
	}
	key := spec.SiteID
	if roomOnly {
		key += "\x00room-only"
	}
	ch := p.group.DoChan(key, func() (any, error) {
		return p.start(st, spec, roomOnly)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for site %s to start: %w", spec.SiteID, ctx.Err())
	}
}

// Status returns a snapshot of the site's runtime state.
func (p *Provisioner) Status(siteID string) SiteRuntime {
	st := p.sites.get(siteID)
	if st == nil {
		return SiteRuntime{SiteID: siteID}
	}
	return st.snapshot()
}

// Running returns the number of sites known to be running.
func (p *Provisioner) Running() int { return int(p.running.Load()) }

// StopSite stops the site's container (if running); its volume and the
// container itself are kept. A later Ensure starts it again.
func (p *Provisioner) StopSite(ctx context.Context, siteID string) error {
	st, release, err := p.hold(ctx, siteID)
	if err != nil {
		return err
	}
	defer release()
	return p.stopLocked(ctx, st)
}

// RemoveSite removes the site's container and forgets the site; with
// purgeVolume its data volume is removed too (irreversible). The site's
// customer networks go with the customer's last container.
func (p *Provisioner) RemoveSite(ctx context.Context, siteID string, purgeVolume bool) error {
	st, release, err := p.hold(ctx, siteID)
	if err != nil {
		return err
	}
	defer release()
	if err := p.removeLocked(ctx, st, purgeVolume); err != nil {
		return err
	}
	p.sites.delete(siteID)
	return nil
}

// Recreate replaces the site's container with one made from spec (the
// volume kept) and waits until it is ready. It is one operation under the
// site's lock: another node's requests wait on the lock for the new
// container rather than meet the removal of the old one.
func (p *Provisioner) Recreate(ctx context.Context, spec Spec) (string, error) {
	if err := spec.validate(); err != nil {
		return "", err
	}
	if !p.engineUp.Load() {
		return "", ErrEngineUnavailable
	}
	st, release, err := p.hold(ctx, spec.SiteID)
	if err != nil {
		return "", err
	}
	defer release()
	if err := p.removeLocked(ctx, st, false); err != nil {
		return "", err
	}
	st.clearFailure()
	upstream, err := p.startHeld(ctx, st, &spec)
	switch {
	case errors.Is(err, ErrCapacity):
		return "", fmt.Errorf("recreating site %s: %w", spec.SiteID, err)
	case err != nil:
		return "", p.failStart(st, spec.SiteID, err)
	}
	return upstream, nil
}

// Unreachable reports that a connection to the site's upstream failed
// (another node may have removed the container). Unless the upstream
// changed meanwhile, the site is hidden from the hot path: its next
// Ensure inspects the container under the site's lock and starts, adopts
// or recreates it.
func (p *Provisioner) Unreachable(siteID, upstream string) {
	st := p.sites.get(siteID)
	if st == nil {
		return
	}
	b := st.upstream.Load()
	switch {
	case b == nil:
	case b.upstream == upstream:
		p.hide(st, b)
	default:
		// One of the extra replicas: the others serve on.
		p.dropReplica(st, b, upstream, "unreachable")
	}
}

// removeLocked hides the site from the hot path and removes its instance
// (with purge its volume too), and what only it used; st.op and the
// site's lock are held.
func (p *Provisioner) removeLocked(ctx context.Context, st *siteState, purge bool) error {
	p.setNotRunning(st)
	p.clearPaused(st)
	if err := p.rt.Remove(ctx, st.id, purge); err != nil {
		return err
	}
	st.mu.Lock()
	st.state, st.containerID = StateRemoved, ""
	st.mu.Unlock()
	p.notify(st)
	return nil
}

// hold takes the site's operation lock, then its cross-process one, for a
// container operation; release lets go of both.
func (p *Provisioner) hold(ctx context.Context, siteID string) (st *siteState, release func(), err error) {
	st = p.sites.getOrCreate(siteID)
	st.op.Lock()
	unlock, err := p.lock(ctx, siteID)
	if err != nil {
		st.op.Unlock()
		return nil, nil, err
	}
	return st, func() {
		unlock()
		st.op.Unlock()
	}, nil
}

// lock takes the site's cross-process lock, if there is a Locker.
func (p *Provisioner) lock(ctx context.Context, siteID string) (unlock func(), err error) {
	if p.cfg.Locker == nil {
		return func() {}, nil
	}
	unlock, err = p.cfg.Locker.Lock(ctx, siteID)
	if err != nil {
		return nil, fmt.Errorf("locking site %s: %w", siteID, err)
	}
	return unlock, nil
}

// setRunning publishes b to the hot path and returns the backend it
// replaced, if any.
func (p *Provisioner) setRunning(st *siteState, b *backend) *backend {
	old := st.upstream.Swap(b)
	if old == nil {
		p.running.Add(1)
		p.metrics.running.Inc()
	}
	p.countExtras(old, b)
	return old
}

// hide hides backend b of the site from the hot path unless it was
// replaced meanwhile, and reports whether it did.
func (p *Provisioner) hide(st *siteState, b *backend) bool {
	if !st.upstream.CompareAndSwap(b, nil) {
		return false
	}
	p.uncount(b)
	return true
}

// uncount takes hidden backend b out of the running counts.
func (p *Provisioner) uncount(b *backend) {
	p.running.Add(-1)
	p.metrics.running.Dec()
	p.countExtras(b, nil)
}

// countExtras accounts for the switch of a site from backend old to new
// (either nil) in the count of extra replicas.
func (p *Provisioner) countExtras(old, new *backend) {
	if d := extrasOf(new) - extrasOf(old); d != 0 {
		p.extras.Add(int64(d))
		p.metrics.extraReplicas.Add(float64(d))
	}
}

// extrasOf counts b's replicas beyond the first.
func extrasOf(b *backend) int {
	if b == nil {
		return 0
	}
	return len(b.replicas) - 1
}

// setNotRunning hides the site from the hot path; it returns the previous
// backend, if any.
func (p *Provisioner) setNotRunning(st *siteState) *backend {
	old := st.upstream.Swap(nil)
	if old != nil {
		p.uncount(old)
		st.mu.Lock()
		p.resetHealth(&st.health)
		st.mu.Unlock()
	}
	return old
}

func (p *Provisioner) notify(st *siteState) {
	if p.cfg.OnChange != nil {
		p.cfg.OnChange(st.snapshot())
	}
}
