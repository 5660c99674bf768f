// Package manage is the platform's admin service: every action an
// operator can take (customers, plans, templates, sites, domains, API
// keys; starting, stopping, restarting, redeploying sites; verifying
// domains; importing and exporting the catalog; suspending and resuming)
// is one method here, with one validation, one audit entry (the store's)
// and one error type (*Error). The REST API, the CLI, billing and the web
// UI only translate to and from it.
//
// It knows nothing of HTTP, SQL or Docker: the store (package tenants)
// keeps the data, a Runtime (the root package's, over the provisioner)
// runs containers.
package manage

import (
	"context"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Runtime runs site containers. Errors wrap ErrNoContainer, ErrNoCapacity,
// ErrStartFailed or ErrEngineUnavailable where they apply.
type Runtime interface {
	// Start makes sure the site's container runs and is ready.
	Start(ctx context.Context, siteID string) error
	// Stop stops the site's container, keeping it and its volume.
	Stop(ctx context.Context, siteID string) error
	// Restart stops and starts the site's container.
	Restart(ctx context.Context, siteID string) error
	// Redeploy recreates the site's container from its current definition,
	// keeping its volume, and starts it.
	Redeploy(ctx context.Context, siteID string) error
	// Remove removes the site's container, and its volume with purge.
	Remove(ctx context.Context, siteID string, purge bool) error
	// Status returns what this process knows of the site's container; a
	// zero State means nothing.
	Status(siteID string) RuntimeStatus
	// Logs returns the container's output: the last tail lines (0: all),
	// then with follow new output until ctx ends.
	Logs(ctx context.Context, siteID string, tail int, follow bool) (io.ReadCloser, error)
	// HostLimits returns the most a container may be given: the Docker
	// host's memory and CPUs.
	HostLimits(ctx context.Context) (tenants.Limits, error)
	// CheckImage returns nil when the image is on the Docker host or can
	// be pulled, else why not.
	CheckImage(ctx context.Context, image string) error
}

// RuntimeStatus is what is known of a site's container.
type RuntimeStatus struct {
	SiteID        string     `json:"site_id"`
	State         string     `json:"state"` // created, starting, running, paused, stopped, failed, removed, or absent
	ContainerID   string     `json:"container_id,omitempty"`
	Upstream      string     `json:"upstream,omitempty"`
	LastStartedAt *time.Time `json:"last_started_at,omitempty"`
	LastStoppedAt *time.Time `json:"last_stopped_at,omitempty"`
	LastActiveAt  *time.Time `json:"last_active_at,omitempty"`
	InFlight      int64      `json:"in_flight"`
	Upgraded      int64      `json:"upgraded_connections"`
	RetryAfter    *time.Time `json:"retry_after,omitempty"`
	// Failure is the site's last failed start, until a start succeeds.
	Failure *Failure `json:"failure,omitempty"`
	// Health is what the checks of the running container's health path
	// say: healthy, unhealthy (unhealthy_after checks in a row failed,
	// since UnhealthySince), or absent (not checked yet, no health path,
	// not running). HealthFailures counts the failed checks in a row and
	// HealthError is the last failure's; HealthCheckedAt is the last
	// check. Restarting is set while the checks restart the container.
	Health          string     `json:"health,omitempty"`
	HealthFailures  int        `json:"health_failures,omitempty"`
	HealthError     string     `json:"health_error,omitempty"`
	HealthCheckedAt *time.Time `json:"health_checked_at,omitempty"`
	UnhealthySince  *time.Time `json:"unhealthy_since,omitempty"`
	Restarting      bool       `json:"restarting,omitempty"`
	// Replicas counts the replicas the site's requests are balanced over
	// (the live status only), Upstreams are their addresses, and
	// MaxReplicas is the most its autoscaler runs.
	Replicas    int      `json:"replicas,omitempty"`
	Upstreams   []string `json:"upstreams,omitempty"`
	MaxReplicas int      `json:"max_replicas,omitempty"`
	// Source says where the status comes from: "live" (this process's
	// provisioner) or "recorded" (the last state saved in the database,
	// e.g. by another node).
	Source string `json:"source"`
}

// Failure is a failed start: what failed, the container's exit code when
// it exited, its last log lines (the site's own output), when.
type Failure struct {
	Reason   string    `json:"reason"`
	ExitCode *int      `json:"exit_code,omitempty"`
	LogTail  string    `json:"log_tail,omitempty"`
	At       time.Time `json:"at"`
}

// States of RuntimeStatus beyond the provisioner's.
const (
	StateAbsent  = "absent"  // nothing known: never started here, nothing recorded
	StateRunning = "running" // the provisioner's, named here for clients
	StatePaused  = "paused"  // the provisioner's: asleep but warm, woken without a start
	// HealthUnhealthy is RuntimeStatus.Health of a site whose checks
	// keep failing.
	HealthUnhealthy = "unhealthy"
)

// Config sets up a Service.
type Config struct {
	// Store is the platform's data. Required.
	Store *tenants.Store
	// Runtime runs containers; nil makes site actions fail with NoRuntime.
	Runtime Runtime
	// Verifier checks custom domains' DNS. Default: the system resolver,
	// TXT records only.
	Verifier *Verifier
	// Billing is Stripe; nil makes checkout and portal NotConfigured.
	Billing *billing.Service
	// Backups makes and restores archives; nil makes backup actions
	// NotConfigured.
	Backups *backup.Service
	// BackupDir is where backups asked for without a path are written.
	// Default: none (a path is needed).
	BackupDir string
	// Schema names the platform in archive names. Default: tenants.
	Schema string
	// Node names who makes backups in their records. Default: none.
	Node string
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// Service is the admin service. It is safe for concurrent use.
type Service struct {
	store    *tenants.Store
	runtime  Runtime
	verifier *Verifier
	billing  *billing.Service
	log      *zap.Logger

	backups           *backup.Service
	backupDir, schema string
	node              string
}

// New returns the service for cfg.
func New(cfg Config) *Service {
	if cfg.Verifier == nil {
		cfg.Verifier = &Verifier{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Schema == "" {
		cfg.Schema = tenants.DefaultSchema
	}
	return &Service{store: cfg.Store, runtime: cfg.Runtime, verifier: cfg.Verifier, billing: cfg.Billing, log: cfg.Logger,
		backups: cfg.Backups, backupDir: cfg.BackupDir, schema: cfg.Schema, node: cfg.Node}
}

// Store returns the service's store, for what is not an operator's action
// (authentication, the resolver).
func (s *Service) Store() *tenants.Store { return s.store }

// Billing returns the billing service, nil without Stripe.
func (s *Service) Billing() *billing.Service { return s.billing }

// Page selects a slice of a listing; see tenants.Page.
type Page = tenants.Page

// all pages through a listing of the store.
func all[T any](fetch func(tenants.Page) ([]T, error), id func(*T) string) ([]T, error) {
	var out []T
	p := tenants.Page{Limit: 500}
	for {
		items, err := fetch(p)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if len(items) < p.Limit {
			return out, nil
		}
		p.After = id(&items[len(items)-1])
	}
}
