// Package tenants holds the platform's domain model and its PostgreSQL
// store: customers, plans, templates, sites, their domains and runtime,
// API keys, billing events and the audit log.
//
// It knows nothing of Docker or HTTP: the root package wires it to the
// provisioner and to Caddy.
package tenants

import "time"

// Customer statuses. Only active and past_due customers' sites serve
// content; the others get the "suspended" page.
const (
	CustomerActive    = "active"
	CustomerPastDue   = "past_due"
	CustomerSuspended = "suspended"
	CustomerCanceled  = "canceled"
)

// CustomerStatuses lists every customer status, for validation and
// documentation.
var CustomerStatuses = []string{CustomerActive, CustomerPastDue, CustomerSuspended, CustomerCanceled}

// Site statuses.
const (
	SiteActive    = "active"
	SiteSuspended = "suspended"
)

// SiteStatuses lists every site status.
var SiteStatuses = []string{SiteActive, SiteSuspended}

// API key scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Plan is what a customer pays for: how many sites, and the container
// limits that apply when the template sets none.
type Plan struct {
	ID            string `json:"id" db:"id"`
	Slug          string `json:"slug" db:"slug"`
	Name          string `json:"name" db:"name"`
	StripePriceID string `json:"stripe_price_id,omitempty" db:"stripe_price_id"`
	MaxSites      int    `json:"max_sites" db:"max_sites"`
	MemoryBytes   int64  `json:"memory_bytes" db:"memory_bytes"`
	NanoCPUs      int64  `json:"nano_cpus" db:"nano_cpus"`
	PidsLimit     int64  `json:"pids_limit" db:"pids_limit"`
	// MaxReplicas caps the replicas of the plan's sites below their
	// template's max_replicas; nil: no cap.
	MaxReplicas *int      `json:"max_replicas" db:"max_replicas"`
	CreatedAt   time.Time `json:"created_at" db:"created_at"`
	UpdatedAt   time.Time `json:"updated_at" db:"updated_at"`
}

// Customer owns sites and, through Stripe, pays for them.
type Customer struct {
	ID                   string    `json:"id" db:"id"`
	Email                string    `json:"email" db:"email"`
	Name                 string    `json:"name" db:"name"`
	Status               string    `json:"status" db:"status"`
	PlanID               string    `json:"plan_id,omitempty" db:"plan_id"`
	StripeCustomerID     string    `json:"stripe_customer_id,omitempty" db:"stripe_customer_id"`
	StripeSubscriptionID string    `json:"stripe_subscription_id,omitempty" db:"stripe_subscription_id"`
	CreatedAt            time.Time `json:"created_at" db:"created_at"`
	UpdatedAt            time.Time `json:"updated_at" db:"updated_at"`
}

// Template is what a site runs: one container image with its port, env
// defaults, data volume, health check and limits. Every update bumps
// Version, which makes running sites recreate their container at the next
// start.
type Template struct {
	ID          string            `json:"id" db:"id"`
	Slug        string            `json:"slug" db:"slug"`
	Name        string            `json:"name" db:"name"`
	Description string            `json:"description" db:"description"`
	Image       string            `json:"image" db:"image"`
	Port        int               `json:"port" db:"port"`
	Env         map[string]string `json:"env" db:"env"`
	DataPath    string            `json:"data_path" db:"data_path"`
	HealthPath  string            `json:"health_path" db:"health_path"`
	// HealthIntervalMs is how often a running site's health path is
	// checked, in milliseconds; 0 takes the default, 30s. Without a
	// health path nothing is checked.
	HealthIntervalMs int `json:"health_interval_ms" db:"health_interval_ms"`
	// UnhealthyAfter failed checks in a row mark a site unhealthy; 0
	// takes the default, 3.
	UnhealthyAfter int `json:"unhealthy_after" db:"unhealthy_after"`
	// RestartAfter failed checks in a row restart the site's container
	// (with the backoff of failed starts between restarts); 0 takes the
	// default, 5, and -1 never restarts.
	RestartAfter int      `json:"restart_after" db:"restart_after"`
	MemoryBytes  int64    `json:"memory_bytes" db:"memory_bytes"`
	NanoCPUs     int64    `json:"nano_cpus" db:"nano_cpus"`
	PidsLimit    int64    `json:"pids_limit" db:"pids_limit"`
	CapAdd       []string `json:"cap_add" db:"cap_add"`
	// User is the uid or uid:gid the container runs as; "" keeps the
	// image's own user.
	User string `json:"user" db:"run_as"`
	// ReadOnly gives the container a read-only root filesystem, with a
	// tmpfs at /tmp; the site writes to its volume only.
	ReadOnly bool `json:"read_only" db:"read_only"`
	// Egress says whether the site may open connections to the outside;
	// nil takes the platform's default (the tenants option's egress).
	Egress *bool `json:"egress" db:"egress"`
	// ShareVolume says two containers of a site may use its volume at
	// once, as they do while a new release starts beside the live one;
	// without it a release of a site with a volume stops the live
	// container for the moment the new one takes to start.
	ShareVolume bool `json:"share_volume" db:"share_volume"`
	// ServeStale makes the template's sites answer cacheable GETs with
	// their last good response while their container starts; a site's
	// own setting overrides it.
	ServeStale bool `json:"serve_stale" db:"serve_stale"`
	// MaxReplicas is the most replicas the autoscaler runs of a site on
	// the template (a plan may cap it lower); 1, the default, never
	// scales. 0 takes the default when the template is created.
	MaxReplicas int `json:"max_replicas" db:"max_replicas"`
	// TargetConcurrency is the in-flight requests one replica is meant to
	// carry: above it for a while, the autoscaler adds one (Knative's
	// container concurrency target). 0 takes the default, 10, when the
	// template is created.
	TargetConcurrency int       `json:"target_concurrency" db:"target_concurrency"`
	Version           int       `json:"version" db:"version"`
	CreatedAt         time.Time `json:"created_at" db:"created_at"`
	UpdatedAt         time.Time `json:"updated_at" db:"updated_at"`
}

// Site is one customer website: a subdomain of the platform's base domain,
// a template, and env overrides on top of the template's defaults.
type Site struct {
	ID         string            `json:"id" db:"id"`
	CustomerID string            `json:"customer_id" db:"customer_id"`
	Subdomain  string            `json:"subdomain" db:"subdomain"`
	TemplateID string            `json:"template_id" db:"template_id"`
	Env        map[string]string `json:"env" db:"env"`
	Status     string            `json:"status" db:"status"`
	// Image is the image built from the site's own source (a deploy),
	// which replaces its template's; "" for the template's.
	Image string `json:"image,omitempty" db:"image"`
	// ServeStale is the site's own serve-stale setting; nil takes its
	// template's.
	ServeStale *bool `json:"serve_stale" db:"serve_stale"`
	// Prewarm lets the pre-warm scheduler start the site before its usual
	// first request (when the platform's pre-warm is on).
	Prewarm   bool      `json:"prewarm" db:"prewarm"`
	CreatedAt time.Time `json:"created_at" db:"created_at"`
	UpdatedAt time.Time `json:"updated_at" db:"updated_at"`
}

// Domain is a customer's own hostname for a site. It routes, and gets a
// certificate, only once verified.
type Domain struct {
	ID          string     `json:"id" db:"id"`
	SiteID      string     `json:"site_id" db:"site_id"`
	Hostname    string     `json:"hostname" db:"hostname"`
	Verified    bool       `json:"verified" db:"verified"`
	VerifyToken string     `json:"verify_token" db:"verify_token"`
	VerifiedAt  *time.Time `json:"verified_at,omitempty" db:"verified_at"`
	CreatedAt   time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at" db:"updated_at"`
}

// SiteRuntime is what was last known of a site's container.
type SiteRuntime struct {
	SiteID        string     `json:"site_id" db:"site_id"`
	ContainerID   string     `json:"container_id" db:"container_id"`
	State         string     `json:"state" db:"state"`
	Upstream      string     `json:"upstream" db:"upstream"`
	LastError     string     `json:"last_error,omitempty" db:"last_error"`
	LastStartedAt *time.Time `json:"last_started_at,omitempty" db:"last_started_at"`
	LastActiveAt  *time.Time `json:"last_active_at,omitempty" db:"last_active_at"`
	// The last failed start, kept until a start succeeds: why, the
	// container's exit code when it exited, its last log lines, when.
	FailureReason   string     `json:"failure_reason,omitempty" db:"failure_reason"`
	FailureExitCode *int       `json:"failure_exit_code,omitempty" db:"failure_exit_code"`
	FailureLogTail  string     `json:"failure_log_tail,omitempty" db:"failure_log_tail"`
	FailedAt        *time.Time `json:"failed_at,omitempty" db:"failed_at"`
	UpdatedAt       time.Time  `json:"updated_at" db:"updated_at"`
	// Health is what the health checks last said of the running
	// container: healthy, unhealthy or "" (not checked).
	Health string `json:"health,omitempty" db:"health"`
}

// APIKey is an admin API credential. Only a hash of its secret is stored;
// KeyID is the public prefix it is looked up by.
type APIKey struct {
	ID         string     `json:"id" db:"id"`
	KeyID      string     `json:"key_id" db:"key_id"`
	SecretHash []byte     `json:"-" db:"secret_hash"`
	Name       string     `json:"name" db:"name"`
	Scope      string     `json:"scope" db:"scope"`
	CreatedAt  time.Time  `json:"created_at" db:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty" db:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty" db:"revoked_at"`
}

// BillingEvent is a Stripe event that was applied.
type BillingEvent struct {
	ID         string    `json:"id" db:"id"`
	Type       string    `json:"type" db:"type"`
	CustomerID *string   `json:"customer_id,omitempty" db:"customer_id"`
	Created    time.Time `json:"created" db:"created"`
	Payload    []byte    `json:"payload" db:"payload"`
	AppliedAt  time.Time `json:"applied_at" db:"applied_at"`
}

// AuditEntry records one change: who did what to which entity, with the
// entity before and after as JSON.
type AuditEntry struct {
	ID       int64     `json:"id" db:"id"`
	At       time.Time `json:"at" db:"at"`
	Actor    string    `json:"actor" db:"actor"`
	Action   string    `json:"action" db:"action"`
	Entity   string    `json:"entity" db:"entity"`
	EntityID string    `json:"entity_id" db:"entity_id"`
	Before   []byte    `json:"before,omitempty" db:"before"`
	After    []byte    `json:"after,omitempty" db:"after"`
}
