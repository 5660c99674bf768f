package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Image is the tag the benchmarks build the test site image as; its own tag,
// so concurrent test runs rebuilding theirs do not race with a benchmark.
const Image = "caddy-multitenant-benchsite:latest"

// BaseDomain is the base_domain of every bench Caddyfile.
const BaseDomain = "example.com"

// setup creates the schema (if missing), migrates it, builds the test image
// and creates one customer, one template and the named sites, printing
// "<subdomain>=<site id>" for each.
func setup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	db := fs.String("db", "", "PostgreSQL URL")
	schema := fs.String("schema", "", "schema (also the Docker namespace)")
	sites := fs.String("sites", "", "comma-separated subdomains to create")
	shareVolume := fs.Bool("share-volume", false, "the template lets a release start beside the live container")
	serveStale := fs.Bool("serve-stale", false, "the template's sites serve stale while starting")
	listenDelay := fs.String("listen-delay", "", "the template's LISTEN_DELAY: how long its app takes to listen (e.g. 2s)")
	cpus := fs.Float64("cpus", 0, "the template's CPU limit per replica (0: the platform's default)")
	scaled := fs.String("scaled", "", "comma-separated subdomains (among -sites) on a second template, with -max-replicas and -target-concurrency")
	maxReplicas := fs.Int("max-replicas", 2, "max_replicas of the -scaled sites' template")
	target := fs.Int("target-concurrency", tenants.DefaultTargetConcurrency, "target_concurrency of both templates")
	siteEnv := map[string]map[string]string{}
	fs.Func("env", "subdomain:KEY=VALUE, an env override of one site (repeatable)", func(v string) error {
		sub, kv, ok1 := strings.Cut(v, ":")
		k, val, ok2 := strings.Cut(kv, "=")
		if !ok1 || !ok2 || sub == "" || k == "" {
			return fmt.Errorf("%q is not subdomain:KEY=VALUE", v)
		}
		if siteEnv[sub] == nil {
			siteEnv[sub] = map[string]string{}
		}
		siteEnv[sub][k] = val
		return nil
	})
	fs.Parse(args)
	if *db == "" || *schema == "" {
		return fmt.Errorf("-db and -schema are required")
	}

	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := testimage.BuildImage(bctx, Image); err != nil {
		return err
	}

	if err := execSQL(ctx, *db, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{*schema}.Sanitize()); err != nil {
		return err
	}
	pool, err := schemaPool(ctx, *db, *schema)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := tenants.Migrate(ctx, pool, *schema); err != nil {
		return fmt.Errorf("migrating %s: %w", *schema, err)
	}
	store := tenants.NewStore(pool, tenants.Options{BaseDomain: BaseDomain})
	cust := &tenants.Customer{Email: "bench@example.org", Name: "Bench"}
	if err := store.CreateCustomer(ctx, "bench", cust); err != nil {
		return err
	}
	tmpl := &tenants.Template{Slug: "benchsite", Name: "Bench site", Image: Image, Port: 8080,
		Env: map[string]string{"DATA_DIR": "/data"}, DataPath: "/data", HealthPath: "/health",
		MemoryBytes: 64 << 20, PidsLimit: 64, ShareVolume: *shareVolume, ServeStale: *serveStale}
	if *listenDelay != "" {
		tmpl.Env["LISTEN_DELAY"] = *listenDelay
	}
	tmpl.NanoCPUs = int64(*cpus * 1e9)
	tmpl.TargetConcurrency = *target
	scaledTmpl := *tmpl
	if err := store.CreateTemplate(ctx, "bench", tmpl); err != nil {
		return err
	}
	scaledSites := strings.Split(*scaled, ",")
	if *scaled != "" {
		scaledTmpl.Slug, scaledTmpl.Name, scaledTmpl.MaxReplicas = "benchsite-scaled", "Bench site, scaled", *maxReplicas
		if err := store.CreateTemplate(ctx, "bench", &scaledTmpl); err != nil {
			return err
		}
	}
	for _, sub := range strings.Split(*sites, ",") {
		if sub == "" {
			continue
		}
		templateID := tmpl.ID
		if slices.Contains(scaledSites, sub) {
			templateID = scaledTmpl.ID
		}
		env := map[string]string{"SITE_NAME": sub}
		for k, v := range siteEnv[sub] {
			env[k] = v
		}
		s := &tenants.Site{CustomerID: cust.ID, TemplateID: templateID, Subdomain: sub, Env: env}
		if err := store.CreateSite(ctx, "bench", s); err != nil {
			return fmt.Errorf("creating site %s: %w", sub, err)
		}
		fmt.Printf("%s=%s\n", sub, s.ID)
	}
	return nil
}

func schemaPool(ctx context.Context, db, schema string) (*pgxpool.Pool, error) {
	u, err := url.Parse(db)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return pgxpool.New(ctx, u.String())
}

func execSQL(ctx context.Context, db, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", redact(db), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// redact hides a password in a URL for error messages.
func redact(db string) string {
	u, err := url.Parse(db)
	if err != nil {
		return "database"
	}
	return u.Redacted()
}
