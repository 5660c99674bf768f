package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

const baseDomain = "example.com"

// platformOptions shape one test platform.
type platformOptions struct {
	IdleTimeout string // Default: 10m
	MaxRunning  int
	PageAfter   string // Default: 2s
	PagesDir    string // Default: the built-in pages
	Global      string // more global options
	Tenants     string // more lines for the tenants option
	Sites       string // more site blocks, before the catch-all tenant block
	Proxy       string // more lines for the catch-all's tenant_proxy
	Env         []string
	NoFixtures  bool                // no customer and template made
	BeforeCaddy func(*testPlatform) // runs after the fixtures, before Caddy starts
	DatabaseURL string              // Default: the test server, in the test's schema
	Schema      string              // Default: a fresh schema
	Race        bool                // run a Caddy built with the race detector
}

// testPlatform is a Caddy built from this module, serving tenants from its
// own schema (which is also its Docker namespace) of the test database.
type testPlatform struct {
	t         *testing.T
	caddyfile string
	opts      platformOptions
	schema    string
	store     *tenants.Store
	caddy     *caddytest.Process
	docker    *client.Client
	customer  *tenants.Customer
	template  *tenants.Template
}

// newPlatform makes a fresh schema with a customer and the test site
// template, and starts a Caddy serving it.
func newPlatform(t *testing.T, opts platformOptions) *testPlatform {
	t.Helper()
	if opts.Schema == "" {
		opts.Schema = pgtest.Schema(t)
	}
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = pgtest.URL(t)
	}
	if opts.IdleTimeout == "" {
		opts.IdleTimeout = "10m"
	}
	if opts.PageAfter == "" {
		opts.PageAfter = "2s"
	}
	pool := pgtest.Pool(t, opts.Schema)
	if opts.DatabaseURL != pgtest.URL(t) {
		pool = poolAt(t, opts.DatabaseURL, opts.Schema)
	}
	p := newFixtures(t, opts.Schema, pool, !opts.NoFixtures)
	caddyfile := fmt.Sprintf(`{
	admin {ADMIN_ADDR}
	http_port {HTTP_PORT}
	auto_https off
	%s
	tenants {
		database_url %q
		schema %s
		base_domain %s
		reserved admin www
		idle_timeout %s
		start_timeout 30s
		max_running %d
		%s
	}
}

%s

http://:{HTTP_PORT} {
	tenant_proxy {
		page_after %s
		%s
		%s
		header_down X-Tenant-Site {tenant.site_id}
		header_down X-Tenant-Subdomain {tenant.subdomain}
		header_down X-Tenant-Customer {tenant.customer_id}
		header_down X-Tenant-Upstream {tenant.upstream}
	}
}
`, opts.Global, opts.DatabaseURL, opts.Schema, baseDomain, opts.IdleTimeout, opts.MaxRunning, opts.Tenants, opts.Sites,
		opts.PageAfter, pagesDir(opts.PagesDir), opts.Proxy)
	if opts.BeforeCaddy != nil {
		opts.BeforeCaddy(p)
	}
	p.caddyfile, p.opts = caddyfile, opts
	p.caddy = caddytest.Start(t, caddyfile, caddytest.Options{Env: opts.Env, Race: opts.Race})
	return p
}

// node starts another Caddy with the platform's config on ports of its
// own: a second node on the same database and Docker engine.
func (p *testPlatform) node() *caddytest.Process {
	p.t.Helper()
	return caddytest.Start(p.t, p.caddyfile, caddytest.Options{Env: p.opts.Env, Race: p.opts.Race})
}

// newFixtures migrates schema on pool, builds the test site image and
// (with fixtures) makes a customer and the test site template. The
// schema's containers and volumes (it is also their Docker namespace) are
// removed when the test ends.
func newFixtures(t *testing.T, schema string, pool *pgxpool.Pool, fixtures bool) *testPlatform {
	t.Helper()
	ctx := context.Background()
	image := testimage.Build(t, testimage.DefaultTag)
	if _, err := tenants.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	p := &testPlatform{
		t:      t,
		schema: schema,
		store:  tenants.NewStore(pool, tenants.Options{BaseDomain: baseDomain, Reserved: []string{"admin", "www"}}),
		docker: dockerClient(t),
	}
	t.Cleanup(p.removeContainers)
	if !fixtures {
		return p
	}
	p.customer = &tenants.Customer{Email: "owner@example.org", Name: "Owner"}
	if err := p.store.CreateCustomer(ctx, "e2e", p.customer); err != nil {
		t.Fatal(err)
	}
	p.template = &tenants.Template{Slug: "testsite", Name: "Test site", Image: image, Port: 8080,
		Env: map[string]string{"DATA_DIR": "/data", "GREETING": "v1"}, DataPath: "/data", HealthPath: "/health",
		MemoryBytes: 64 << 20, PidsLimit: 64}
	if err := p.store.CreateTemplate(ctx, "e2e", p.template); err != nil {
		t.Fatal(err)
	}
	return p
}

// site creates a site at subdomain whose container greets with its name,
// and waits until Caddy knows it.
func (p *testPlatform) site(subdomain string, env map[string]string) *tenants.Site {
	p.t.Helper()
	s := p.siteQuiet(subdomain, env)
	// The new site reaches Caddy by NOTIFY, within milliseconds; wait for
	// it without starting the site (the readiness probe never starts one).
	eventually(p.t, 5*time.Second, "site "+subdomain+" known to caddy", func() bool {
		st, _, _ := p.get(host(subdomain), "/.well-known/caddy-multitenant/ready", nil)
		return st != http.StatusNotFound
	})
	return s
}

// get requests path of host through Caddy.
func (p *testPlatform) get(host, path string, header http.Header) (int, string, http.Header) {
	p.t.Helper()
	status, body, h, err := p.tryGet(host, path, header)
	if err != nil {
		p.t.Fatalf("GET %s%s: %v", host, path, err)
	}
	return status, body, h
}

func (p *testPlatform) tryGet(host, path string, header http.Header) (int, string, http.Header, error) {
	return tryGetAt(p.caddy, host, path, header)
}

// tryGetAt requests path of host through the Caddy node.
func tryGetAt(node *caddytest.Process, host, path string, header http.Header) (int, string, http.Header, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+node.HTTP+path, nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header, err
}

var httpClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256},
}

// containers lists the containers of site (all states).
func (p *testPlatform) containers(siteID string) []container.Summary {
	p.t.Helper()
	list, err := p.docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", provisioner.LabelNamespace+"="+p.schema),
		filters.Arg("label", provisioner.LabelSite+"="+siteID),
	)})
	if err != nil {
		p.t.Fatal(err)
	}
	return list
}

// running reports whether the site has a running container, or a paused
// one (pause_after: up, frozen, woken by the next request), which is no
// stop.
func (p *testPlatform) running(siteID string) bool {
	for _, c := range p.containers(siteID) {
		if c.State == "running" || c.State == "paused" {
			return true
		}
	}
	return false
}

func (p *testPlatform) removeContainers() {
	ctx := context.Background()
	ns := filters.Arg("label", provisioner.LabelNamespace+"="+p.schema)
	list, _ := p.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(ns)})
	for _, c := range list {
		_ = p.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
	vols, _ := p.docker.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(ns)})
	for _, v := range vols.Volumes {
		_ = p.docker.VolumeRemove(ctx, v.Name, true)
	}
	nets, _ := p.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(ns)})
	for _, n := range nets {
		_ = p.docker.NetworkRemove(ctx, n.ID)
	}
}

// poolAt connects to dsn inside schema, for platforms on their own server.
func poolAt(t *testing.T, dsn, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("docker engine does not answer (make test starts one): %v", err)
	}
	c.NegotiateAPIVersion(ctx)
	t.Cleanup(func() { c.Close() })
	return c
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openUpgraded opens an upgraded (WebSocket-style) connection to host's
// /ws through Caddy and checks that it echoes.
func (p *testPlatform) openUpgraded(host string) net.Conn {
	p.t.Helper()
	return p.openUpgradedAt(p.caddy, host)
}

// openUpgradedAt opens an upgraded connection like openUpgraded, through
// the Caddy node.
func (p *testPlatform) openUpgradedAt(node *caddytest.Process, host string) net.Conn {
	p.t.Helper()
	conn, err := net.Dial("tcp", node.HTTP)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		p.t.Fatalf("upgrade: %s", resp.Status)
	}
	if _, err := conn.Write([]byte("ping")); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		p.t.Fatalf("echo over upgraded connection: %q, %v", buf, err)
	}
	return conn
}

// echoes checks that an upgraded connection from openUpgraded still
// echoes.
func echoes(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatalf("%s: connection broken while open: %v", what, err)
	}
	buf := make([]byte, 4)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("%s: echo: %q %v", what, buf, err)
	}
}

// siteQuiet creates a site like site, without asking Caddy about it.
func (p *testPlatform) siteQuiet(subdomain string, env map[string]string) *tenants.Site {
	p.t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["SITE_NAME"] = subdomain
	s := &tenants.Site{CustomerID: p.customer.ID, TemplateID: p.template.ID, Subdomain: subdomain, Env: env}
	if err := p.store.CreateSite(context.Background(), "e2e", s); err != nil {
		p.t.Fatal(err)
	}
	return s
}

func pagesDir(dir string) string {
	if dir == "" {
		return ""
	}
	return "pages_dir " + dir
}

func host(sub string) string { return sub + "." + baseDomain }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// loadResult is what a load generator saw.
type loadResult struct {
	ok, failed int64
	failures   []string // the distinct failures
}

// load sends GET / to host through Caddy from workers goroutines until
// the returned stop is called, counting answers other than 200 with body
// as failures.
func (p *testPlatform) load(host, body string, workers int) (stop func() loadResult) {
	var ok, failed atomic.Int64
	var failures sync.Map
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				st, got, _, err := p.tryGet(host, "/", nil)
				if err != nil || st != http.StatusOK || got != body {
					failed.Add(1)
					failures.Store(fmt.Sprint(st, " ", err), true)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	return func() loadResult {
		close(done)
		wg.Wait()
		r := loadResult{ok: ok.Load(), failed: failed.Load()}
		failures.Range(func(k, _ any) bool { r.failures = append(r.failures, k.(string)); return true })
		return r
	}
}

// databaseBack waits until the site at sub serves and the platform's own
// retry reports the database back.
func (p *testPlatform) databaseBack(sub string) {
	p.t.Helper()
	eventually(p.t, 45*time.Second, "site serves once the database is back", func() bool {
		st, body, _ := p.get(host(sub), "/", nil)
		return st == http.StatusOK && body == "hello from "+sub
	})
	// Routing comes back with the listener; the platform's own retry
	// (migrations, runtime reconciliation) follows on its backoff.
	eventually(p.t, 45*time.Second, "the platform reports the database back", func() bool {
		return contains(p.caddy.Logs(), "database reachable again")
	})
}
