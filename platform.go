package multitenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/dustin/go-humanize"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/alerts"
	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/billing"
	"github.com/agistaffers/caddy-multitenant/figures"
	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/prewarm"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// platforms holds the running state of each distinct tenants app config:
// resolver (with its LISTEN connection), provisioner (with its idle reaper
// and Docker client) and the runtime flusher. During a reload the old and
// the new config share one platform when their settings are equal, so a
// reload neither drops the cache nor runs a second reaper.
var platforms = caddy.NewUsagePool()

// platform is what the handlers use at request time. It owns everything
// it uses (its own reference to the pool, its store, a copy of its
// settings) and never the *App that made it: that config is cleaned up at
// the next reload while the platform lives on.
type platform struct {
	settings     platformSettings
	node         string        // this process among the nodes sharing the database
	pool         *pgxpool.Pool // a reference of its own, released by Destruct
	policy       sitePolicy
	store        *tenants.Store
	resolver     *tenants.Resolver
	prov         *provisioner.Provisioner
	closeRuntime func() error // the swarm runtime's client, after prov stopped
	figures      *figures.Recorder
	runtime      *siteRuntime     // the admin service's view of prov
	sites        *manage.Service  // billing's admin service (tenant_admin makes its own)
	billing      *billing.Service // nil without Stripe
	backups      *backup.Service
	backupDir    string             // where API backups go; "" without the backup option
	alerter      *alerts.Alerter    // nil without the alerts option
	siteAlerts   *siteAlerts        // the provisioner's reports as alerts; nil without alerter
	uptime       *uptimeRecorder    // the provisioner's reports as uptime history
	jobs         *jobs              // the durable job queue; nil without backups, alerts or pre-warm
	prewarm      *prewarm.Scheduler // nil with prewarm off
	prewarming   sync.Map           // ids of the sites whose start in progress is a pre-warm's
	stale        *staleResponses    // last good responses of the sites that serve stale while starting
	collectors   collectorSet
	logger       *zap.Logger

	runtimes chan provisioner.SiteRuntime // state changes waiting to be saved
	scales   chan tenants.ScaleEvent      // the autoscaler's decisions waiting to be saved
	released chan string                  // sites whose live release changed, to follow

	billingRunning atomic.Bool // the grace-period loop runs (tests look)
	databaseReady  atomic.Bool // migrated (or checked)
	engineReady    atomic.Bool // the provisioner started: containers adopted

	startOnce sync.Once
	startErr  error
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// platformSettings are the settings the platform reads after it was
// made. Every config sharing the platform has the same ones: they are
// part of its key.
type platformSettings struct {
	dsn, schema        string
	skipMigrations     bool
	startTimeout       time.Duration
	publishIP, network string
	recorded           tenants.Settings // what the CLI and other nodes go by
}

// platformKey identifies a platform by every setting that shapes it.
func platformKey(a *App) (string, error) {
	b, err := json.Marshal(struct {
		DSN string
		*App
	}{a.dsn, a})
	return string(b), err
}

// acquirePlatform returns the shared platform for a's settings, making it
// on first use. Making one does no I/O.
func acquirePlatform(a *App) (*platform, string, error) {
	key, err := platformKey(a)
	if err != nil {
		return nil, "", err
	}
	val, _, err := platforms.LoadOrNew(key, func() (caddy.Destructor, error) {
		return newPlatform(a)
	})
	if err != nil {
		return nil, "", err
	}
	return val.(*platform), key, nil
}

func newPlatform(a *App) (_ *platform, err error) {
	pool, err := pgpool.Acquire(a.dsn, a.Schema)
	if err != nil {
		return nil, fmt.Errorf("database_url: %w", err)
	}
	defer func() {
		if err != nil {
			pgpool.Release(a.dsn, a.Schema)
		}
	}()
	p := &platform{
		settings: platformSettings{
			dsn:            a.dsn,
			schema:         a.Schema,
			skipMigrations: a.SkipMigrations,
			startTimeout:   time.Duration(a.StartTimeout),
			publishIP:      a.Docker.PublishIP,
			network:        a.Docker.Network,
			recorded:       tenants.Settings{BaseDomain: a.BaseDomain, Reserved: a.Reserved},
		},
		node:     newNodeID(),
		pool:     pool,
		policy:   a.sitePolicy(),
		store:    tenants.NewStore(pool, a.storeOptions()),
		figures:  figures.NewRecorder(),
		logger:   a.logger,
		runtimes: make(chan provisioner.SiteRuntime, 4096),
		scales:   make(chan tenants.ScaleEvent, 1024),
		released: make(chan string, 1024),
	}
	p.resolver = tenants.NewResolver(p.store, tenants.ResolverConfig{
		Schema:     a.Schema,
		BaseDomain: a.BaseDomain,
		Reserved:   a.Reserved,
		Logger:     a.logger.Named("resolver"),
		OnChange:   p.noteRelease,
	})
	p.collectors.add(newResolverCollector(p.resolver))
	p.collectors.add(newFiguresCollector(p.figures, a.Metrics == MetricsPerSite))
	cfg, closeRuntime, err := a.provisionerConfig(pool, a.logger.Named("provisioner"))
	if err != nil {
		return nil, err
	}
	p.closeRuntime = closeRuntime
	cfg.IdleTimeout = time.Duration(a.IdleTimeout)
	if a.PauseAfter != nil {
		cfg.PauseAfter = time.Duration(*a.PauseAfter)
	}
	cfg.MaxPausedMemory = a.MaxPausedMemory
	cfg.MaxRunning = a.MaxRunning
	cfg.HealthChecks = true
	cfg.Metrics = &p.collectors
	if p.alerter, err = newAlerter(a, p.store); err != nil {
		return nil, err
	}
	p.uptime = newUptimeRecorder(p.store, a.logger.Named("uptime"))
	p.stale = newStaleResponses(a.ServeStale, p.store, a.logger.Named("stale"))
	if p.alerter != nil {
		p.siteAlerts = newSiteAlerts(p.alerter, a.Alerts)
	}
	cfg.OnChange = func(rt provisioner.SiteRuntime) {
		p.queueRuntime(rt)
		p.uptime.observe(rt)
		if p.siteAlerts != nil {
			p.siteAlerts.observe(rt)
		}
	}
	if p.alerter != nil {
		cfg.OnCapacity = func(siteID string) {
			if p.prewarmingNow(siteID) {
				return // a pre-warm takes free room or none
			}
			p.alerter.Raise(alerts.RuleCapacity, "", "max_running containers run and none is idle: a site could not start")
		}
	}
	cfg.Refresh = p.refreshSpec
	cfg.PeersUse = func(ctx context.Context, siteID, containerID string) (bool, error) {
		return p.store.PeersUse(ctx, p.node, siteID, containerID, peerTTL)
	}
	cfg.OnScale = p.queueScaleEvent
	cfg.OnColdStart = func(siteID string, took time.Duration, ok bool) {
		if !p.prewarmingNow(siteID) {
			p.figures.ColdStart(siteID, took, ok)
		}
	}
	prov, err := provisioner.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("setting up provisioner: %w", err)
	}
	p.prov = prov
	p.runtime = &siteRuntime{
		store:    p.store,
		policy:   p.policy,
		releases: tenants.NewReleaseLocker(pool, a.Schema, a.logger.Named("provisioner")),
		prov:     func(context.Context) (*provisioner.Provisioner, error) { return prov, nil },
		started:  func() *provisioner.Provisioner { return prov },
	}
	if p.prewarm = p.newPrewarm(a); p.prewarm != nil {
		p.collectors.add(newPrewarmCollector(p.prewarm))
	}
	if err := p.setUpOperations(a); err != nil {
		return nil, err
	}
	if p.billing, err = newBilling(a, p); err != nil {
		return nil, err
	}
	p.sites = p.service(nil, a.logger.Named("billing"))
	return p, nil
}

// service returns an admin service over the platform, verifying domains
// with v.
func (p *platform) service(v *manage.Verifier, logger *zap.Logger) *manage.Service {
	return manage.New(manage.Config{Store: p.store, Runtime: p.runtime, Verifier: v, Billing: p.billing, Logger: logger,
		Backups: p.backups, BackupDir: p.backupDir, Schema: p.settings.schema, Node: p.node})
}

// provisionerConfig is how the app's settings shape a provisioner: the
// engine, the namespace (the schema, so platforms sharing an engine keep
// apart) and how sites are published. The server adds its idle and
// capacity policy and its hooks; the CLI uses it as it is.
//
// With a swarm block the sites run on the Swarm (a SwarmRuntime); done
// closes its client once the provisioner is stopped.
func (a *App) provisionerConfig(pool *pgxpool.Pool, logger *zap.Logger) (cfg provisioner.Config, done func() error, err error) {
	subnetPool, subnetBits, _ := a.Docker.subnets() // checked by Validate
	allowedCaps, _ := tenants.AllowedCapabilities(a.AllowCapabilities)
	cfg = provisioner.Config{
		Host:                a.Docker.Host,
		Namespace:           a.Schema,
		PublishIP:           a.Docker.PublishIP,
		Network:             a.Docker.Network,
		SubnetPool:          subnetPool,
		SubnetBits:          subnetBits,
		AllowedCapabilities: allowedCaps,
		StartTimeout:        time.Duration(a.StartTimeout),
		DrainTimeout:        time.Duration(a.DrainTimeout),
		ScaleUpWindow:       time.Duration(a.ScaleUpWindow),
		ScaleDownWindow:     time.Duration(a.ScaleDownWindow),
		Locker:              tenants.NewSiteLocker(pool, a.Schema, logger),
		Logger:              logger,
	}
	done = func() error { return nil }
	if a.Swarm != nil {
		rt, cli, err := a.Swarm.runtime(a.Schema, a.Docker.Host, logger.Named("swarm"))
		if err != nil {
			return cfg, nil, fmt.Errorf("setting up the swarm runtime: %w", err)
		}
		cfg.Runtime, done = rt, cli.Close
	}
	return cfg, done, nil
}

// start runs the platform's background work, once however many configs
// share it: migrations, the change listener, container adoption and the
// idle reaper, the runtime flusher, the activity shared with other nodes,
// the figures' roll-up and, with Stripe, billing's grace-period loop.
func (p *platform) start() error {
	p.startOnce.Do(func() { p.startErr = p.doStart() })
	return p.startErr
}

func (p *platform) doStart() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := p.prepareDatabase(ctx)
	dbLater := errors.Is(err, errDatabaseUnreachable)
	switch {
	case dbLater:
		// Caddy serves everything else meanwhile; tenant hosts answer 503
		// with Retry-After until the database is back.
		p.logger.Error("database unreachable at start; tenant hosts answer 503 until it is back", zap.Error(err))
	case err != nil:
		return err
	}
	err = p.prov.Start(ctx)
	engineLater := errors.Is(err, provisioner.ErrEngineUnavailable)
	switch {
	case engineLater:
		// As without the database: tenant hosts answer 503 with
		// Retry-After until the engine answers and its containers are
		// adopted.
		p.logger.Error("docker engine unreachable at start; tenant hosts answer 503 until it is back", zap.Error(err))
	case err != nil:
		return fmt.Errorf("starting provisioner: %w", err)
	default:
		if err := p.checkDefaultLimits(ctx); err != nil {
			return err
		}
	}
	p.databaseReady.Store(!dbLater)
	p.engineReady.Store(!engineLater)
	if ip, err := netip.ParseAddr(p.settings.publishIP); err == nil && !ip.IsLoopback() && p.settings.network == "" {
		p.logger.Warn("sites' ports are published on a non-loopback address: every customer's container can reach them there, around the network isolation, unless the host's firewall fences the tenant bridges (tn+) off; see the README's security section",
			zap.String("publish_ip", ip.String()))
	}
	p.resolver.Start()

	runCtx, runCancel := context.WithCancel(context.Background())
	p.cancel = runCancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.flushRuntimes(runCtx)
	}()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.flushScaleEvents(runCtx)
	}()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.shareActivity(runCtx)
	}()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.uptime.run(runCtx)
	}()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.followReleases(runCtx)
	}()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.stale.runStarts(runCtx, p.prov, p.settings.startTimeout, &p.wg)
	}()
	if p.stale.persist {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.stale.writeBehind(runCtx)
		}()
	}
	if p.alerter != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.alerter.Run(runCtx, p.jobs.client)
		}()
	}
	if !dbLater {
		if err := p.startOperations(runCtx); err != nil {
			runCancel()
			p.wg.Wait()
			return err
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.keepFigures(runCtx)
	}()
	if p.billing != nil {
		p.wg.Add(1)
		p.billingRunning.Store(true)
		go func() {
			defer p.wg.Done()
			defer p.billingRunning.Store(false)
			p.billing.Run(runCtx)
		}()
	}
	if dbLater {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.retryDatabase(runCtx)
		}()
	}
	if engineLater {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.retryEngine(runCtx)
		}()
	}
	p.reconcileIfReady(ctx)
	return nil
}

// errDatabaseUnreachable marks a database that could not be reached, as
// opposed to one that refused the configuration (credentials, a missing
// database, an old schema with skip_migrations).
var errDatabaseUnreachable = errors.New("database unreachable")

// prepareDatabase checks the connection, then migrates (or checks the
// schema version) and seeds the catalog into a fresh schema.
func (p *platform) prepareDatabase(ctx context.Context) error {
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := p.pool.Ping(pingCtx)
	cancel()
	if err != nil {
		if configurationError(err) {
			return fmt.Errorf("connecting to database: %w", err)
		}
		return fmt.Errorf("%w: %w", errDatabaseUnreachable, err)
	}
	if p.settings.skipMigrations {
		err = p.checkSchema(ctx)
	} else {
		err = p.migrate(ctx)
	}
	if err != nil {
		return err
	}
	if p.jobs != nil {
		// The job queue's own tables, even with skip_migrations: they
		// are the queue's, not the platform's schema.
		if err := p.jobs.migrate(ctx, p.settings.schema); err != nil {
			return err
		}
	}
	// The CLI (without a config) and other nodes go by these.
	st := p.settings.recorded
	changed, err := p.store.RecordSettings(ctx, st)
	if err != nil {
		return fmt.Errorf("recording settings: %w", err)
	}
	if changed {
		p.logger.Info("recorded the platform's settings", zap.String("base_domain", st.BaseDomain), zap.Strings("reserved", st.Reserved))
	}
	return nil
}

// migrate applies pending migrations and seeds the catalog into a fresh
// schema.
func (p *platform) migrate(ctx context.Context) error {
	schema := p.settings.schema
	m, err := tenants.Migrate(ctx, p.pool, schema)
	if err != nil {
		return err
	}
	if m.From != m.To {
		p.logger.Info("migrated database schema", zap.String("schema", schema), zap.Int32("from", m.From), zap.Int32("to", m.To))
	}
	if m.From == 0 {
		n, err := p.store.SeedCatalog(ctx, "caddy")
		if err != nil {
			return fmt.Errorf("importing the template catalog: %w", err)
		}
		p.logger.Info("imported the built-in template catalog", zap.Int("templates", n))
	}
	return nil
}

// checkSchema refuses to run on a schema older than this binary expects,
// which would fail later in confusing ways.
func (p *platform) checkSchema(ctx context.Context) error {
	v, err := tenants.SchemaVersion(ctx, p.pool)
	if err != nil {
		return err
	}
	if v < tenants.LatestVersion() {
		return fmt.Errorf("schema %s is at version %d, this build needs %d: run `caddy tenants migrate` or remove skip_migrations",
			p.settings.schema, v, tenants.LatestVersion())
	}
	return nil
}

// configurationError reports whether the server refused the connection for
// a reason retrying will not fix.
func configurationError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false // the network: the server may come back
	}
	switch pgErr.Code {
	case "28P01", "28000", "3D000", "42501": // password, authorization, no such database, privileges
		return true
	}
	return false // e.g. starting up, shutting down, too many connections
}

// retryDatabase prepares the database once it can be reached, for a
// platform that started without it.
func (p *platform) retryDatabase(ctx context.Context) {
	if !p.retry(ctx, 30*time.Second, "database", p.prepareDatabase) {
		return
	}
	p.databaseReady.Store(true)
	p.logger.Info("database reachable again; tenant hosts resolve")
	if err := p.startOperations(ctx); err != nil {
		p.logger.Error("backups and alerts do not run", zap.Error(err))
	}
	p.reconcileIfReady(ctx)
}

// retryEngine starts the provisioner (adopting the namespace's
// containers) once the Docker engine answers, for a platform that started
// without it.
func (p *platform) retryEngine(ctx context.Context) {
	if !p.retry(ctx, 10*time.Second, "docker engine", p.prov.Start) {
		return
	}
	p.engineReady.Store(true)
	p.logger.Info("docker engine reachable again; sites start")
	if err := p.checkDefaultLimits(ctx); err != nil {
		p.logger.Error("sites without limits of their own cannot start", zap.Error(err))
	}
	p.reconcileIfReady(ctx)
}

// retry calls attempt until it succeeds or ctx ends, a second after the
// start and then backing off to at most limit, and reports whether it
// succeeded.
func (p *platform) retry(ctx context.Context, limit time.Duration, what string, attempt func(context.Context) error) bool {
	for backoff := time.Second; ; backoff = min(2*backoff, limit) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := attempt(attemptCtx)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.logger.Warn(what+" still not ready", zap.Error(err), zap.Duration("retry_in", min(2*backoff, limit)))
	}
}

// reconcileIfReady corrects the runtime records once both the database
// and the engine are there: only then can records be checked against
// containers.
func (p *platform) reconcileIfReady(ctx context.Context) {
	if !p.databaseReady.Load() || !p.engineReady.Load() {
		return
	}
	if err := p.reconcileRuntimes(ctx); err != nil {
		p.logger.Warn("reconciling site runtime records", zap.Error(err))
	}
	if err := p.settleReleases(ctx); err != nil {
		p.logger.Warn("settling rollouts a stop cut short", zap.Error(err))
	}
}

// Destruct stops the background work when the last config using the
// platform is gone, then lets go of the pool. Containers keep running;
// the next platform adopts them.
func (p *platform) Destruct() error {
	if p.cancel != nil {
		p.cancel()
	}
	// The platform's own goroutines first: a retry must not start the
	// provisioner after it was stopped.
	p.wg.Wait()
	var jobsErr error
	if p.jobs != nil {
		jobsErr = p.jobs.stop()
	}
	p.resolver.Stop()
	err := errors.Join(jobsErr, p.prov.Stop(), p.closeRuntime())
	return errors.Join(err, pgpool.Release(p.settings.dsn, p.settings.schema))
}

// queueRuntime takes a state change from the provisioner without blocking
// it; a full queue drops the change (the next one carries the same
// fields) rather than stall a start.
func (p *platform) queueRuntime(rt provisioner.SiteRuntime) {
	select {
	case p.runtimes <- rt:
	default:
		p.logger.Warn("runtime queue full; dropping a state change", zap.String("site_id", rt.SiteID))
	}
}

// flushRuntimes saves queued state changes in batches, at most once a
// second, so that no request ever writes to the database.
func (p *platform) flushRuntimes(ctx context.Context) {
	writeBehind(ctx, p.runtimes, func(rt provisioner.SiteRuntime) string { return rt.SiteID },
		func(ctx context.Context, rts []provisioner.SiteRuntime) bool {
			batch := make([]tenants.SiteRuntime, len(rts))
			for i, rt := range rts {
				batch[i] = toStoreRuntime(rt)
			}
			if err := p.store.SaveRuntimes(ctx, batch); err != nil {
				p.logger.Warn("saving site runtime records; will retry", zap.Int("sites", len(batch)), zap.Error(err))
				return false
			}
			return true
		})
}

// reconcileRuntimes corrects records that say a site is running (or
// paused) when the provisioner found no such container (it was removed,
// or stopped, while Caddy was down).
func (p *platform) reconcileRuntimes(ctx context.Context) error {
	records, err := p.store.ListRuntimes(ctx)
	if err != nil {
		return err
	}
	var stale []tenants.SiteRuntime
	for _, rec := range records {
		switch rec.State {
		case string(provisioner.StateRunning):
			if _, running := p.prov.Upstream(rec.SiteID); running {
				continue
			}
		case string(provisioner.StatePaused):
			if p.prov.Status(rec.SiteID).State == provisioner.StatePaused {
				continue
			}
		default:
			continue
		}
		rec.State, rec.Upstream = string(provisioner.StateStopped), ""
		stale = append(stale, rec)
	}
	return p.store.SaveRuntimes(ctx, stale)
}

func toStoreRuntime(rt provisioner.SiteRuntime) tenants.SiteRuntime {
	out := tenants.SiteRuntime{
		SiteID:      rt.SiteID,
		ContainerID: rt.ContainerID,
		State:       string(rt.State),
		Upstream:    rt.Upstream,
		LastError:   rt.Error,
		Health:      string(rt.Health),
	}
	if !rt.LastStart.IsZero() {
		t := rt.LastStart
		out.LastStartedAt = &t
	}
	if !rt.LastActivity.IsZero() {
		t := rt.LastActivity
		out.LastActiveAt = &t
	}
	if f := rt.Failure; f != nil {
		at := rt.FailedAt
		out.FailureReason, out.FailureLogTail, out.FailedAt = f.Reason, f.LogTail, &at
		if f.ExitCode >= 0 {
			code := f.ExitCode
			out.FailureExitCode = &code
		}
	}
	return out
}

// sitePolicy is how the platform's settings shape every site's container:
// the limits a site gets where its template and plan set none, and whether
// sites reach the outside unless their template says.
type sitePolicy struct {
	limits tenants.Limits
	egress bool
}

func (a *App) sitePolicy() sitePolicy {
	return sitePolicy{limits: a.Limits.tenants(), egress: *a.Egress}
}

// spec turns a resolved route into what the provisioner needs: what the
// site runs (its live release), checked the way its template says now
// (health monitoring is no part of a release: it shapes no container).
func (sp sitePolicy) spec(route *tenants.Route) provisioner.Spec {
	s := sp.releaseSpec(route, route.Spec())
	t := &route.Template
	s.HealthInterval = time.Duration(t.HealthIntervalMs) * time.Millisecond
	s.UnhealthyAfter, s.RestartAfter = t.UnhealthyAfter, t.RestartAfter
	s.MaxReplicas, s.TargetConcurrency = route.MaxReplicas, route.TargetConcurrency
	return s
}

// releaseSpec is what the provisioner needs to run rs as the site of
// route, on its customer's network, with the platform's defaults.
func (sp sitePolicy) releaseSpec(route *tenants.Route, rs tenants.ReleaseSpec) provisioner.Spec {
	limits := tenants.Limits{MemoryBytes: rs.MemoryBytes, NanoCPUs: rs.NanoCPUs, PidsLimit: rs.PidsLimit}.Or(sp.limits)
	egress := sp.egress
	if rs.Egress != nil {
		egress = *rs.Egress
	}
	return provisioner.Spec{
		SiteID:          route.SiteID,
		CustomerID:      route.CustomerID,
		Image:           rs.Image,
		Port:            rs.Port,
		Env:             rs.Env,
		DataPath:        rs.DataPath,
		HealthPath:      rs.HealthPath,
		MemoryBytes:     limits.MemoryBytes,
		NanoCPUs:        limits.NanoCPUs,
		PidsLimit:       limits.PidsLimit,
		CapAdd:          rs.CapAdd,
		User:            rs.User,
		ReadOnly:        rs.ReadOnly,
		NoEgress:        !egress,
		TemplateSlug:    rs.TemplateSlug,
		TemplateVersion: rs.TemplateVersion,
		ShareVolume:     rs.ShareVolume,
	}
}

// refreshSpec is the provisioner's look at the database under the site's
// lock, before it makes a container: a cached route can be older than
// the database (a change the listener has not brought yet, after an
// outage above all). Without the database the cached spec is the best
// there is.
func (p *platform) refreshSpec(ctx context.Context, spec provisioner.Spec) (provisioner.Spec, error) {
	route, err := p.store.SiteRoute(ctx, spec.SiteID)
	switch {
	case err == nil && !route.Serving():
		return spec, errors.New("the site is not serving (suspended)")
	case err == nil:
		return p.policy.spec(route), nil
	case errors.Is(err, tenants.ErrNotFound):
		return spec, errors.New("the site no longer exists")
	}
	p.logger.Warn("starting site from its cached definition: database unreachable", zap.String("site_id", spec.SiteID), zap.Error(err))
	return spec, nil
}

// siteSpec builds a site's container spec from the store, the way a
// request to it does from its resolved route.
func (sp sitePolicy) siteSpec(ctx context.Context, store *tenants.Store, siteID string) (provisioner.Spec, error) {
	route, err := store.SiteRoute(ctx, siteID)
	if err != nil {
		return provisioner.Spec{}, err
	}
	return sp.spec(route), nil
}

// checkDefaultLimits refuses default limits beyond what the Docker host
// has: every site without limits of its own would fail to start.
func (p *platform) checkDefaultLimits(ctx context.Context) error {
	host, err := p.prov.Host(ctx)
	if err != nil {
		return err
	}
	return limitsWithin("limits", p.policy.limits, host)
}

// limitsWithin refuses limits beyond what host has; the error names the
// field under prefix.
func limitsWithin(prefix string, l tenants.Limits, host provisioner.Host) error {
	switch {
	case l.MemoryBytes > host.MemoryBytes:
		return fmt.Errorf("%s memory: %s is more than the Docker host's %s",
			prefix, humanize.IBytes(uint64(l.MemoryBytes)), humanize.IBytes(uint64(host.MemoryBytes)))
	case l.NanoCPUs > host.NanoCPUs():
		return fmt.Errorf("%s cpus: %.2f is more than the Docker host's %d", prefix, float64(l.NanoCPUs)/1e9, host.CPUs)
	}
	return nil
}
