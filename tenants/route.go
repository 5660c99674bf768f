package tenants

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Route is everything a request needs to reach a site, as resolved from
// one host: the site, its customer's status, its template and how the
// host belongs to it.
type Route struct {
	Host       string // normalized host that was resolved
	SiteID     string
	Subdomain  string
	SiteStatus string
	SiteEnv    map[string]string
	// SiteImage is the image built from the site's source, "" for the
	// template's.
	SiteImage      string
	CustomerID     string
	CustomerStatus string
	// PlanID is the customer's plan, "" for none; Plan holds its limits
	// (zero without a plan).
	PlanID   string
	Plan     Limits
	Template Template
	// CustomDomain is set when Host is a customer's own domain rather than
	// the site's subdomain of the base domain.
	CustomDomain bool
	// Verified is false only for a custom domain whose ownership has not
	// been verified yet: it neither routes nor gets a certificate.
	Verified bool
	// Live is the spec of the site's live release and LiveRelease its
	// number; nil and 0 for a site without releases.
	Live        *ReleaseSpec
	LiveRelease int
	// SiteServeStale is the site's own serve-stale setting, nil for its
	// template's (see ServeStale).
	SiteServeStale *bool
	// SitePrewarm is whether the site may be pre-warmed.
	SitePrewarm bool
	// MaxReplicas is the most replicas the site may run: its template's
	// max_replicas, capped by its plan's.
	MaxReplicas int
	// TargetConcurrency is the in-flight requests per replica its
	// autoscaler aims for (its template's).
	TargetConcurrency int
}

// ServeStale reports whether the site answers cacheable GETs with its
// last good responses while it starts: its own setting, else its
// template's.
func (r *Route) ServeStale() bool {
	if r.SiteServeStale != nil {
		return *r.SiteServeStale
	}
	return r.Template.ServeStale
}

// Serving reports whether the site should serve its content: the site and
// its customer are in good standing. past_due customers keep serving
// through their grace period; billing moves them to suspended after it.
func (r *Route) Serving() bool {
	return r.SiteStatus == SiteActive && (r.CustomerStatus == CustomerActive || r.CustomerStatus == CustomerPastDue)
}

// Routable reports whether the host may be served at all (content or the
// suspended page) and get a certificate.
func (r *Route) Routable() bool { return r.Verified }

// Env returns the container environment: the template's defaults with the
// site's overrides on top.
func (r *Route) Env() map[string]string {
	env := make(map[string]string, len(r.Template.Env)+len(r.SiteEnv))
	for k, v := range r.Template.Env {
		env[k] = v
	}
	for k, v := range r.SiteEnv {
		env[k] = v
	}
	return env
}

// Limits are a container's resource limits; 0 means "not set here".
type Limits struct {
	MemoryBytes int64 `json:"memory_bytes"`
	NanoCPUs    int64 `json:"nano_cpus"`
	PidsLimit   int64 `json:"pids_limit"`
}

// Or fills in the limits l does not set from fallback.
func (l Limits) Or(fallback Limits) Limits {
	if l.MemoryBytes == 0 {
		l.MemoryBytes = fallback.MemoryBytes
	}
	if l.NanoCPUs == 0 {
		l.NanoCPUs = fallback.NanoCPUs
	}
	if l.PidsLimit == 0 {
		l.PidsLimit = fallback.PidsLimit
	}
	return l
}

// Limits returns the template's own limits.
func (t *Template) Limits() Limits {
	return Limits{MemoryBytes: t.MemoryBytes, NanoCPUs: t.NanoCPUs, PidsLimit: t.PidsLimit}
}

// Limits returns the plan's limits.
func (p *Plan) Limits() Limits {
	return Limits{MemoryBytes: p.MemoryBytes, NanoCPUs: p.NanoCPUs, PidsLimit: p.PidsLimit}
}

// Limits returns the limits the site's container gets, each taken from the
// template, else the customer's plan, else platform (the platform's
// defaults).
func (r *Route) Limits(platform Limits) Limits {
	return r.Template.Limits().Or(r.Plan).Or(platform)
}

// routeSelect reads everything of a Route; the query that uses it adds
// the WHERE clause naming the site.
const routeSelect = `SELECT s.id, s.subdomain, s.status, s.env, c.id, c.status,
		coalesce(p.id::text, ''), coalesce(p.memory_bytes, 0), coalesce(p.nano_cpus, 0), coalesce(p.pids_limit, 0),
		t.id, t.slug, t.name, t.image, t.port, t.env, t.data_path, t.health_path,
		t.memory_bytes, t.nano_cpus, t.pids_limit, t.cap_add, t.run_as, t.read_only, t.egress,
		t.version, t.updated_at, coalesce(d.verified, true), s.image, t.share_volume,
		coalesce(r.number, 0), r.spec, t.health_interval_ms, t.unhealthy_after, t.restart_after,
		t.serve_stale, s.serve_stale, s.prewarm,
		t.max_replicas, t.target_concurrency, least(t.max_replicas, p.max_replicas)
	FROM sites s
	JOIN customers c ON c.id = s.customer_id
	LEFT JOIN plans p ON p.id = c.plan_id
	JOIN templates t ON t.id = s.template_id
	LEFT JOIN domains d ON d.hostname = $2 AND d.site_id = s.id
	LEFT JOIN releases r ON r.site_id = s.id AND r.status = 'live'`

// lookupRoute resolves a site by subdomain or by custom hostname in one
// query on unique indexes; at most one of the two is non-empty.
func (s *Store) lookupRoute(ctx context.Context, subdomain, hostname string) (*Route, error) {
	row := s.pool.QueryRow(ctx, routeSelect+`
		WHERE s.id = coalesce(
			(SELECT id FROM sites WHERE subdomain = $1 AND $1 <> ''),
			(SELECT site_id FROM domains WHERE hostname = $2 AND $2 <> ''))`, subdomain, hostname)
	r, err := scanRoute(row)
	if err != nil {
		return nil, mapError("resolving host", err)
	}
	r.CustomDomain = hostname != ""
	return r, nil
}

// SiteRoute returns the route of the site with id, as a request to its
// subdomain would resolve it: what an operator's start, restart or
// redeploy builds the container from.
func (s *Store) SiteRoute(ctx context.Context, id string) (*Route, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	r, err := scanRoute(s.pool.QueryRow(ctx, routeSelect+` WHERE s.id = $1::uuid`, id, ""))
	if err != nil {
		return nil, mapError("getting site route", err)
	}
	return r, nil
}

func scanRoute(row pgx.Row) (*Route, error) {
	r := new(Route)
	t := &r.Template
	var updated time.Time
	err := row.Scan(&r.SiteID, &r.Subdomain, &r.SiteStatus, &r.SiteEnv, &r.CustomerID, &r.CustomerStatus,
		&r.PlanID, &r.Plan.MemoryBytes, &r.Plan.NanoCPUs, &r.Plan.PidsLimit,
		&t.ID, &t.Slug, &t.Name, &t.Image, &t.Port, &t.Env, &t.DataPath, &t.HealthPath,
		&t.MemoryBytes, &t.NanoCPUs, &t.PidsLimit, &t.CapAdd, &t.User, &t.ReadOnly, &t.Egress,
		&t.Version, &updated, &r.Verified, &r.SiteImage, &t.ShareVolume,
		&r.LiveRelease, &r.Live, &t.HealthIntervalMs, &t.UnhealthyAfter, &t.RestartAfter,
		&t.ServeStale, &r.SiteServeStale, &r.SitePrewarm,
		&t.MaxReplicas, &t.TargetConcurrency, &r.MaxReplicas)
	if err != nil {
		return nil, err
	}
	t.UpdatedAt = updated
	r.TargetConcurrency = t.TargetConcurrency
	return r, nil
}

// hostNames streams every subdomain and custom hostname into fn.
func (s *Store) hostNames(ctx context.Context, fn func(subdomain, hostname string)) error {
	rows, err := s.pool.Query(ctx, `SELECT subdomain, '' FROM sites UNION ALL SELECT '', hostname FROM domains`)
	if err != nil {
		return mapError("loading host index", err)
	}
	var sub, host string
	_, err = pgx.ForEachRow(rows, []any{&sub, &host}, func() error {
		fn(sub, host)
		return nil
	})
	return mapError("loading host index", err)
}
