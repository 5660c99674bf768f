// Package multitenant is a Caddy app that makes one server a hosting
// platform for many small customer websites: each tenant host resolves,
// through PostgreSQL, to a site whose Docker container is started on the
// first request and stopped when idle.
//
// The root package wires the subpackages to Caddy: tenants (data and
// resolver), provisioner (containers) and storage (certificates).
package multitenant

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/autoscale"
	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddy.RegisterModule(App{})
}

// Default settings of the tenants app.
const (
	DefaultSchema       = tenants.DefaultSchema
	DefaultIdleTimeout  = 15 * time.Minute
	DefaultPauseAfter   = time.Minute
	DefaultStartTimeout = 60 * time.Second
	DefaultDrainTimeout = provisioner.DefaultDrainTimeout
	DefaultPublishIP    = "127.0.0.1"

	// Values of the metrics setting.
	MetricsPlatform = "platform"
	MetricsPerSite  = "per_site"

	// Container limits of a site whose template and plan set none.
	DefaultMemoryBytes = 512 << 20
	DefaultNanoCPUs    = 1_000_000_000
	DefaultPidsLimit   = 512
)

// App is the `tenants` app: it owns the database pool, the store and
// (as the platform grows) the resolver and the provisioner, and runs their
// background work between Start and Stop.
//
// Caddyfile (global option):
//
//	{
//		tenants {
//			database_url {env.DATABASE_URL}
//			schema       tenants
//			base_domain  example.com
//			reserved     admin www api
//			docker {
//				host        unix:///var/run/docker.sock
//				publish_ip  127.0.0.1
//				network     caddy
//				subnet_pool 172.16.0.0/16 26
//			}
//			limits {
//				memory 512MiB
//				cpus   1
//				pids   512
//			}
//			egress             off
//			allow_capabilities SYS_PTRACE
//			idle_timeout    15m
//			pause_after     1m
//			max_paused_memory 2GiB
//			start_timeout   60s
//			drain_timeout   30s
//			max_running     40
//			skip_migrations
//			metrics         per_site
//			stripe {
//				secret_key     {env.STRIPE_SECRET_KEY}
//				webhook_secret {env.STRIPE_WEBHOOK_SECRET}
//				grace_period   72h
//				prices {
//					basic price_1Pxyz
//				}
//			}
//			backup {
//				every 24h
//				keep  7
//				dir   /var/backups/tenants
//			}
//			serve_stale {
//				max_site_bytes     8MiB
//				max_response_bytes 1MiB
//				max_memory_bytes   256MiB
//				persist            on
//			}
//			prewarm {
//				lead      2m
//				weeks     4
//				threshold 0.5
//			}
//			alerts {
//				webhook https://hooks.example.com/tenants {
//					secret {env.ALERT_WEBHOOK_SECRET}
//				}
//				email {
//					smtp smtp.example.com:587
//					from alerts@example.com
//					to   ops@example.com
//				}
//			}
//		}
//	}
type App struct {
	// DatabaseURL is the PostgreSQL connection URL (or key=value DSN).
	// Placeholders such as {env.DATABASE_URL} are expanded. Required.
	// Default: none.
	DatabaseURL string `json:"database_url,omitempty"`

	// Schema is the PostgreSQL schema holding the platform's tables.
	// Default: tenants.
	Schema string `json:"schema,omitempty"`

	// BaseDomain is the platform's domain: <subdomain>.<base_domain>
	// resolves to the site with that subdomain. Default: none (only custom
	// domains resolve).
	BaseDomain string `json:"base_domain,omitempty"`

	// Reserved lists subdomains that never resolve to a tenant and cannot be
	// given to a site. Default: none.
	Reserved []string `json:"reserved,omitempty"`

	// Docker says how to reach the Docker engine and how to expose
	// containers. Default: see DockerConfig.
	Docker *DockerConfig `json:"docker,omitempty"`

	// Swarm runs the sites as services of a Docker Swarm instead of
	// containers of the Docker engine (see SwarmConfig); it turns the
	// warm tier's pause off. Default: none (the Docker engine).
	Swarm *SwarmConfig `json:"swarm,omitempty"`

	// IdleTimeout is how long after its last request or connection a site's
	// container is stopped. Default: 15m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// PauseAfter is how long after its last request or connection (on
	// any node) a site's container is paused: frozen by the cgroup
	// freezer, its memory kept and no CPU used, so that the next request
	// wakes it in milliseconds (docker unpause, the same upstream) instead
	// of starting it. IdleTimeout still stops it. 0 (the Caddyfile's
	// `pause_after off`, or `0`) disables pausing, and so does a value
	// not below idle_timeout. Only the Docker runtime pauses: with a
	// swarm block, absent means 0 and a duration is an error. Absent
	// means the default; unlike the other durations, an explicit 0 is not
	// the default. Default: 1m (0 with swarm).
	PauseAfter *caddy.Duration `json:"pause_after,omitempty"`

	// MaxPausedMemory bounds the memory paused containers hold together,
	// in bytes, as the engine's stats read it when they pause; above it
	// the least recently used paused sites are stopped. Paused containers
	// also count under max_running, where they are stopped first.
	// Default: 0 (no bound but max_running).
	MaxPausedMemory int64 `json:"max_paused_memory,omitempty"`

	// StartTimeout is how long a request waits for a container to start
	// before giving up. Default: 60s.
	StartTimeout caddy.Duration `json:"start_timeout,omitempty"`

	// DrainTimeout is how long a release's rollout lets the requests and
	// WebSockets on the old container finish, once the new one serves,
	// before it stops the old one. Default: 30s.
	DrainTimeout caddy.Duration `json:"drain_timeout,omitempty"`

	// ScaleUpWindow is how long a site's requests in flight (on every
	// node) must average above its template's target_concurrency per
	// replica before the autoscaler adds a replica (up to max_replicas);
	// ScaleDownWindow how long they must average at most what one replica
	// fewer would carry before it removes one, never below 1 while the
	// site is awake. The down window is the longer: removing a replica
	// early costs a start soon after. Defaults: 6s and 60s.
	ScaleUpWindow   caddy.Duration `json:"scale_up_window,omitempty"`
	ScaleDownWindow caddy.Duration `json:"scale_down_window,omitempty"`

	// MaxRunning caps how many site containers run or are paused at once;
	// starting one more stops the least recently used paused site, else
	// the least recently used idle running one. Default: 0 (no cap).
	MaxRunning int `json:"max_running,omitempty"`

	// Limits are the container limits of sites whose template sets none
	// and whose customer's plan sets none: each limit is the template's,
	// else the plan's, else this. Default: see LimitsConfig.
	Limits *LimitsConfig `json:"limits,omitempty"`

	// Egress says whether sites may open connections to the outside, for
	// templates that do not say (a template's egress wins). Without it a
	// site reaches its customer's other sites only. Default: true.
	Egress *bool `json:"egress,omitempty"`

	// AllowCapabilities are capabilities beyond Docker's unprivileged
	// default set (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, …) that templates may
	// add. Each can hand the host over to a customer. Default: none.
	AllowCapabilities []string `json:"allow_capabilities,omitempty"`

	// SkipMigrations leaves the schema alone at start; apply migrations
	// with `caddy tenants migrate` instead. Default: false (migrate at
	// start).
	SkipMigrations bool `json:"skip_migrations,omitempty"`

	// Metrics chooses the Prometheus series the app adds to Caddy's
	// metrics: "platform", the platform's own (requests, 5xx errors and
	// latency of every site together, cold starts, running containers,
	// the resolver's cache), or "per_site", also each site's, labelled
	// site_id (requests, errors, a latency histogram, cold starts, CPU and
	// memory: about 36 series a site, so mind the cardinality with many
	// sites). The figures the admin API serves are kept either way.
	// Default: platform.
	Metrics string `json:"metrics,omitempty"`

	// Stripe turns on billing: Stripe customers, Checkout and billing
	// portal sessions, and the webhook that suspends and resumes customers
	// with their subscription. Default: none (no billing).
	Stripe *StripeConfig `json:"stripe,omitempty"`

	// Backup schedules backups of the whole platform, one per period
	// across every node. Default: none (backups only when asked for).
	Backup *BackupConfig `json:"backup,omitempty"`

	// ServeStale bounds the last good responses kept of the sites that
	// serve stale while they start (their template's or their own
	// serve_stale setting), and whether PostgreSQL keeps a copy. Default:
	// see ServeStaleConfig.
	ServeStale *ServeStaleConfig `json:"serve_stale,omitempty"`

	// Prewarm starts sites shortly before the hours of the week their
	// first visitors usually come in (see PrewarmConfig); `prewarm off`
	// turns it off. Default: on, lead 2m, weeks 4, threshold 0.5.
	Prewarm *PrewarmConfig `json:"prewarm,omitempty"`

	// Alerts notifies the operator of incidents (failed starts, crash
	// loops, certificate renewals, capacity, payments, backups) by signed
	// webhook and email. Default: none (nothing notified).
	Alerts *AlertsConfig `json:"alerts,omitempty"`

	dsn         string // DatabaseURL with placeholders expanded
	platform    *platform
	platformKey string
	logger      *zap.Logger
}

// DockerConfig says how to reach the Docker engine and how containers are
// dialed.
type DockerConfig struct {
	// Host is the engine's address, e.g. unix:///var/run/docker.sock or
	// tcp://10.0.0.2:2375. Default: $DOCKER_HOST, else the local socket.
	Host string `json:"host,omitempty"`

	// PublishIP is the host address site ports are published on (with a
	// random host port); Caddy dials it. Keep it a loopback address: a
	// port published elsewhere is reachable from every customer's
	// container. Default: 127.0.0.1.
	PublishIP string `json:"publish_ip,omitempty"`

	// Network, when Caddy itself runs in a container, names the Docker
	// network Caddy's container is on. Every container on it is connected
	// to each customer network as that is made, and Caddy dials sites'
	// containers on their customer network instead of a published port.
	// Site containers never join it. Default: none.
	Network string `json:"network,omitempty"`

	// SubnetPool is the IPv4 range customer networks take their subnets
	// from; subnets other networks use are skipped. Default: 172.16.0.0/16.
	SubnetPool string `json:"subnet_pool,omitempty"`

	// SubnetSize is the prefix length of each customer network's subnet;
	// a /26 holds 61 containers. Default: 26.
	SubnetSize int `json:"subnet_size,omitempty"`
}

// LimitsConfig are the platform's default container limits.
type LimitsConfig struct {
	// MemoryBytes is the memory limit in bytes (swap is at most as much
	// again). Default: 536870912 (512 MiB).
	MemoryBytes int64 `json:"memory_bytes,omitempty"`

	// NanoCPUs is the CPU limit in billionths of a CPU. Default:
	// 1000000000 (1 CPU).
	NanoCPUs int64 `json:"nano_cpus,omitempty"`

	// PidsLimit caps processes and threads, at most 32768. Default: 512.
	PidsLimit int64 `json:"pids_limit,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tenants",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision expands placeholders, applies defaults and takes a reference to
// the shared platform (which holds the shared pool). It neither dials the
// database nor the Docker engine: it also runs for `caddy validate` and
// for a config that may never start.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := a.expand(); err != nil {
		return err
	}
	if err := a.validate(); err != nil {
		return err
	}
	var err error
	a.platform, a.platformKey, err = acquirePlatform(a)
	if err != nil {
		return err
	}
	a.platform.collectors.registerOn(ctx.GetMetricsRegistry(), a.logger)
	if al := a.platform.alerter; al != nil {
		return subscribeCertEvents(ctx, al, a.logger)
	}
	return nil
}

// expand replaces placeholders and fills in defaults.
func (a *App) expand() error {
	repl := caddy.NewReplacer()
	dsn, err := repl.ReplaceOrErr(a.DatabaseURL, true, true)
	if err != nil {
		return fmt.Errorf("database_url: %w", err)
	}
	a.dsn = strings.TrimSpace(dsn)
	if a.Schema == "" {
		a.Schema = DefaultSchema
	}
	a.BaseDomain = strings.TrimSuffix(strings.ToLower(repl.ReplaceKnown(a.BaseDomain, "")), ".")
	if a.Docker == nil {
		a.Docker = new(DockerConfig)
	}
	a.Docker.Host = repl.ReplaceKnown(a.Docker.Host, "")
	if a.Docker.PublishIP == "" {
		a.Docker.PublishIP = DefaultPublishIP
	}
	if a.IdleTimeout == 0 {
		a.IdleTimeout = caddy.Duration(DefaultIdleTimeout)
	}
	if a.Swarm != nil {
		a.Swarm.expand(repl)
	}
	if a.PauseAfter == nil {
		d := caddy.Duration(DefaultPauseAfter)
		if a.Swarm != nil {
			d = 0 // Swarm has no pause: the warm tier is off
		}
		a.PauseAfter = &d
	}
	if a.StartTimeout == 0 {
		a.StartTimeout = caddy.Duration(DefaultStartTimeout)
	}
	if a.DrainTimeout == 0 {
		a.DrainTimeout = caddy.Duration(DefaultDrainTimeout)
	}
	if a.ScaleUpWindow == 0 {
		a.ScaleUpWindow = caddy.Duration(autoscale.DefaultUpWindow)
	}
	if a.ScaleDownWindow == 0 {
		a.ScaleDownWindow = caddy.Duration(autoscale.DefaultDownWindow)
	}
	if a.Limits == nil {
		a.Limits = new(LimitsConfig)
	}
	if a.Limits.MemoryBytes == 0 {
		a.Limits.MemoryBytes = DefaultMemoryBytes
	}
	if a.Limits.NanoCPUs == 0 {
		a.Limits.NanoCPUs = DefaultNanoCPUs
	}
	if a.Limits.PidsLimit == 0 {
		a.Limits.PidsLimit = DefaultPidsLimit
	}
	if a.Egress == nil {
		egress := true
		a.Egress = &egress
	}
	if a.Backup != nil {
		a.Backup.expand()
	}
	if a.Alerts != nil {
		a.Alerts.expand()
	}
	if a.ServeStale == nil {
		a.ServeStale = new(ServeStaleConfig)
	}
	a.ServeStale.expand()
	if a.Prewarm == nil {
		a.Prewarm = new(PrewarmConfig)
	}
	if !a.Prewarm.Off {
		a.Prewarm.expand()
	}
	if a.Metrics == "" {
		a.Metrics = MetricsPlatform
	}
	return nil
}

// storeOptions are the settings the store validates writes against.
func (a *App) storeOptions() tenants.Options {
	return tenants.Options{BaseDomain: a.BaseDomain, Reserved: a.Reserved, AllowCapabilities: a.AllowCapabilities}
}

// Validate checks the settings; every error names its field.
func (a *App) Validate() error { return a.validate() }

func (a *App) validate() error {
	if a.dsn == "" && a.DatabaseURL == "" {
		return errors.New("database_url: required")
	}
	if a.dsn == "" {
		return fmt.Errorf("database_url: %q expands to nothing (is the environment variable set?)", a.DatabaseURL)
	}
	if err := pgpool.ValidSchema(a.Schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if a.BaseDomain != "" {
		norm, err := tenants.NormalizeHost(a.BaseDomain)
		if err != nil || norm != a.BaseDomain || strings.Contains(a.BaseDomain, ":") {
			return fmt.Errorf("base_domain: %q is not a domain name", a.BaseDomain)
		}
	}
	for _, r := range a.Reserved {
		if !tenants.IsLabel(r) {
			return fmt.Errorf("reserved: %q is not a DNS label (lowercase letters, digits and hyphens, 1-63)", r)
		}
	}
	if a.IdleTimeout < 0 {
		return fmt.Errorf("idle_timeout: must not be negative, got %s", time.Duration(a.IdleTimeout))
	}
	if a.PauseAfter != nil && *a.PauseAfter < 0 {
		return fmt.Errorf("pause_after: must not be negative (0 disables pausing), got %s", time.Duration(*a.PauseAfter))
	}
	if a.MaxPausedMemory < 0 {
		return fmt.Errorf("max_paused_memory: must not be negative, got %d", a.MaxPausedMemory)
	}
	if a.Swarm != nil {
		if err := a.validateSwarm(); err != nil {
			return err
		}
	}
	if a.StartTimeout < 0 {
		return fmt.Errorf("start_timeout: must not be negative, got %s", time.Duration(a.StartTimeout))
	}
	if a.DrainTimeout < 0 {
		return fmt.Errorf("drain_timeout: must not be negative, got %s", time.Duration(a.DrainTimeout))
	}
	if a.ScaleUpWindow < 0 || a.ScaleDownWindow < 0 {
		return fmt.Errorf("scale_up_window and scale_down_window must not be negative, got %s and %s",
			time.Duration(a.ScaleUpWindow), time.Duration(a.ScaleDownWindow))
	}
	if a.ScaleDownWindow < a.ScaleUpWindow {
		return fmt.Errorf("scale_down_window (%s) must not be shorter than scale_up_window (%s)",
			time.Duration(a.ScaleDownWindow), time.Duration(a.ScaleUpWindow))
	}
	if a.MaxRunning < 0 {
		return fmt.Errorf("max_running: must not be negative, got %d", a.MaxRunning)
	}
	if a.Metrics != "" && a.Metrics != MetricsPlatform && a.Metrics != MetricsPerSite {
		return fmt.Errorf("metrics: %q is neither %s nor %s", a.Metrics, MetricsPlatform, MetricsPerSite)
	}
	if a.Stripe != nil {
		if _, err := a.Stripe.billingConfig(); err != nil {
			return err
		}
	}
	if a.Backup != nil {
		if err := a.Backup.validate(); err != nil {
			return err
		}
	}
	if a.Alerts != nil {
		if _, err := a.Alerts.alertsConfig(); err != nil {
			return err
		}
	}
	if a.ServeStale != nil {
		if err := a.ServeStale.validate(); err != nil {
			return err
		}
	}
	if a.Prewarm != nil {
		if err := a.Prewarm.validate(); err != nil {
			return err
		}
	}
	if err := tenants.ValidateLimits(a.Limits.tenants()); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	if _, err := tenants.AllowedCapabilities(a.AllowCapabilities); err != nil {
		return err
	}
	return a.Docker.validate()
}

func (l *LimitsConfig) tenants() tenants.Limits {
	return tenants.Limits{MemoryBytes: l.MemoryBytes, NanoCPUs: l.NanoCPUs, PidsLimit: l.PidsLimit}
}

// Start connects to the database, applies migrations (unless
// skip_migrations is set) and starts the platform's background work: the
// change listener, container adoption, the idle reaper. A config reload
// with the same settings keeps all of it running as it is.
func (a *App) Start() error { return a.platform.start() }

// Stop does nothing: the platform's background work and the pool are
// shared with the config that replaces this one, and end in Cleanup when
// no config uses them any more.
func (a *App) Stop() error { return nil }

// Cleanup releases the app's reference to the shared platform; the last
// reference stops the platform's background work and releases its pool.
// Modules of this config that outlive it (a cold start or a log stream
// past the grace period) hold the platform itself, not the app.
func (a *App) Cleanup() error {
	if a.platform == nil {
		return nil
	}
	_, err := platforms.Delete(a.platformKey)
	a.platform = nil
	return err
}

// tenantsApp returns the tenants app for a module of this plugin (user
// names it in the error). It uses AppIfConfigured rather than App: an
// unconfigured app would be made empty and fail on its missing
// database_url, which would not tell the operator what is missing.
func tenantsApp(ctx caddy.Context, user string) (*App, error) {
	appIface, err := ctx.AppIfConfigured("tenants")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, fmt.Errorf("%s needs the tenants app: add the global option `tenants { database_url … }`", user)
	}
	if err != nil {
		return nil, fmt.Errorf("loading tenants app: %w", err)
	}
	app, ok := appIface.(*App)
	if !ok || app.platform == nil {
		return nil, fmt.Errorf("tenants app is not provisioned (%T)", appIface)
	}
	return app, nil
}

// Store returns the app's data store, for other modules of this plugin.
func (a *App) Store() *tenants.Store { return a.platform.store }

func (d *DockerConfig) validate() error {
	if d.Host != "" && !strings.Contains(d.Host, "://") {
		return fmt.Errorf("docker host: %q needs a scheme, e.g. unix:///var/run/docker.sock or tcp://host:2375", d.Host)
	}
	if ip := d.PublishIP; ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("docker publish_ip: %q is not an IP address", ip)
		}
	}
	if n := d.Network; n != "" && strings.ContainsAny(n, " /\\:") {
		return fmt.Errorf("docker network: %q is not a network name", n)
	}
	_, _, err := d.subnets()
	return err
}

// subnets returns the subnet pool and size, defaults applied.
func (d *DockerConfig) subnets() (netip.Prefix, int, error) {
	pool, bits := provisioner.DefaultSubnetPool, provisioner.DefaultSubnetBits
	if d.SubnetPool != "" {
		p, err := netip.ParsePrefix(d.SubnetPool)
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			return pool, bits, fmt.Errorf("docker subnet_pool: %q is not an IPv4 network such as 172.16.0.0/16", d.SubnetPool)
		}
		pool = p
	}
	if d.SubnetSize != 0 {
		bits = d.SubnetSize
	}
	if bits < pool.Bits() || bits > 29 {
		return pool, bits, fmt.Errorf("docker subnet_pool: subnet size /%d must be between /%d (the pool) and /29", bits, pool.Bits())
	}
	return pool, bits, nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
