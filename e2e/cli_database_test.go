package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The CLI finds its database the way Caddy finds its config: the tenants
// option of --config, else of ./Caddyfile, else DATABASE_URL. A command
// on a fresh schema migrates it first.
func TestCLIFindsItsDatabase(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)

	// DATABASE_URL alone, on a schema nothing migrated: apikey create
	// migrates first (it used to fail on a missing relation).
	fresh := pgtest.Schema(t)
	out, err := caddyIn(t, t.TempDir(), []string{"DATABASE_URL=" + dsn}, "tenants", "apikey", "create", "--name", "first", "--schema", fresh)
	if err != nil || !strings.Contains(out, "migrated schema "+fresh+" from version 0") || !strings.Contains(out, "shown once") {
		t.Fatalf("apikey create on a fresh schema: %v\n%s", err, out)
	}

	// ./Caddyfile: no flags needed; it wins over DATABASE_URL.
	dir := t.TempDir()
	schema := pgtest.Schema(t)
	config := "{\n\ttenants {\n\t\tdatabase_url {env.TEST_DB}\n\t\tschema " + schema + "\n\t}\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = caddyIn(t, dir, []string{"TEST_DB=" + dsn, "DATABASE_URL=postgres://nobody@127.0.0.1:1/x"}, "tenants", "templates", "ls")
	if err != nil || !strings.Contains(out, "migrated schema "+schema) || !strings.Contains(out, " static ") {
		t.Fatalf("templates ls with ./Caddyfile: %v\n%s", err, out)
	}
	// --config elsewhere, from another directory.
	out, err = caddyIn(t, t.TempDir(), []string{"TEST_DB=" + dsn}, "tenants", "status", "--config", filepath.Join(dir, "Caddyfile"))
	if err != nil || !strings.Contains(out, "schema:           "+schema) {
		t.Fatalf("status --config: %v\n%s", err, out)
	}
	// A ./Caddyfile without a tenants option falls through to DATABASE_URL.
	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "Caddyfile"), []byte(":8080 {\n\trespond ok\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = caddyIn(t, plain, []string{"DATABASE_URL=" + dsn}, "tenants", "status", "--schema", schema)
	if err != nil || !strings.Contains(out, "schema:           "+schema) {
		t.Fatalf("status with a Caddyfile without tenants: %v\n%s", err, out)
	}
	// None of the three: the error says all three.
	out, err = caddyIn(t, t.TempDir(), []string{"DATABASE_URL="}, "tenants", "sites", "ls")
	for _, way := range []string{"--config", "./Caddyfile", "DATABASE_URL"} {
		if err == nil || !strings.Contains(out, way) {
			t.Errorf("without a database: %v, the error does not name %s:\n%s", err, way, out)
		}
	}
}

// The server records the settings the CLI needs to agree with it, so the
// CLI without a config refuses what the server would: a reserved
// subdomain, a custom domain under the base domain.
func TestCLIUsesRecordedSettings(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	c := &cli{t: t, schema: p.schema, dsn: pgtest.URL(t)}
	var st tenants.Settings
	eventually(t, 10*time.Second, "settings recorded by the server", func() bool {
		s, err := p.store.RecordedSettings(context.Background())
		if err == nil {
			st = *s
		}
		return err == nil
	})
	if st.BaseDomain != baseDomain || strings.Join(st.Reserved, ",") != "admin,www" {
		t.Fatalf("recorded settings: %+v", st)
	}
	c.fails(`"www" is reserved`, "sites", "add", "--customer", p.customer.Email, "--subdomain", "www", "--template", "testsite")
	c.ok("sites", "add", "--customer", p.customer.Email, "--subdomain", "shop", "--template", "testsite")
	c.fails("the platform's own", "domains", "add", "shop", "blog."+baseDomain)
}

// A site that fails to start keeps its last failure, shown by sites
// status, sites ls, sites logs and the API's logs; a template or site on
// an image the engine neither has nor can pull comes with a warning.
func TestStartFailureIsKept(t *testing.T) {
	t.Parallel()
	p := newAdminPlatform(t)
	c := &cli{t: t, schema: p.schema, dsn: pgtest.URL(t)}
	const missing = "caddy-multitenant-missing:never"
	var tpl struct {
		tenants.Template
		Warnings []string `json:"warnings"`
	}
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "ghost-image", "name": "Missing", "image": missing, "port": 8080}, 201, &tpl)
	if len(tpl.Warnings) != 1 || !strings.Contains(tpl.Warnings[0], missing) {
		t.Fatalf("template warnings: %+v", tpl.Warnings)
	}
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "f@example.org", "name": "F"}, 201, nil)
	out, err := c.run("sites", "add", "--customer", "f@example.org", "--subdomain", "broken", "--template", "ghost-image")
	if err != nil || !strings.Contains(out, "warning: image "+missing) {
		t.Fatalf("sites add on a missing image: %v\n%s", err, out)
	}

	// A visitor's request fails the start (the image cannot be pulled).
	if st, body, _ := p.get(host("broken"), "/", nil); st != http.StatusBadGateway {
		t.Fatalf("GET on a site whose image is missing: %d %s", st, body)
	}
	// The failure reaches the database in the next batch.
	var status struct {
		State   string
		Failure *struct {
			Reason string
			At     time.Time
		}
	}
	eventually(t, 10*time.Second, "the failure recorded", func() bool {
		out, err := c.run("sites", "status", "broken", "--json")
		return err == nil && json.Unmarshal([]byte(out), &status) == nil && status.Failure != nil
	})
	if status.Failure.Reason != "pulling image" || time.Since(status.Failure.At) > time.Minute {
		t.Fatalf("recorded failure: %+v", status.Failure)
	}
	if out := c.ok("sites", "ls"); !strings.Contains(out, "pulling image") {
		t.Errorf("sites ls does not show the failure:\n%s", out)
	}
	if out := c.ok("sites", "logs", "broken"); !strings.Contains(out, "its last start failed") || !strings.Contains(out, "pulling image") ||
		strings.Contains(out, "No such container") {
		t.Errorf("sites logs:\n%s", out)
	}
	var sites struct{ Items []tenants.Site }
	p.mustAPI("GET", "/api/v1/sites?customer_id=f@example.org", nil, 200, &sites)
	if len(sites.Items) != 1 {
		t.Fatalf("sites by customer email: %+v", sites)
	}
	status2, _, body := p.api(p.token, "GET", "/api/v1/sites/broken/logs", nil, nil)
	if status2 != 200 || !strings.Contains(body, "pulling image") {
		t.Errorf("GET logs: %d %s", status2, body)
	}
}

// An operator suspending a customer through the API stops its sites'
// containers at once, as billing does, and resuming serves again.
func TestOperatorSuspensionStopsContainers(t *testing.T) {
	t.Parallel()
	p := newAdminPlatform(t)
	image := p.testTemplate()
	p.mustAPI("POST", "/api/v1/customers", map[string]any{"email": "s@example.org", "name": "S"}, 201, nil)
	var site tenants.Site
	p.mustAPI("POST", "/api/v1/sites", map[string]any{"customer_id": "s@example.org", "template_id": image, "subdomain": "sus",
		"env": map[string]string{"SITE_NAME": "sus"}}, 201, &site)
	eventually(t, 5*time.Second, "site known", func() bool {
		st, _, _ := p.get(host("sus"), "/", nil)
		return st == http.StatusOK
	})
	if !p.running(site.ID) {
		t.Fatal("no running container")
	}
	p.mustAPI("PATCH", "/api/v1/customers/s@example.org", map[string]any{"status": "suspended"}, 200, nil)
	if p.running(site.ID) {
		t.Error("the suspended customer's container still runs")
	}
	eventually(t, 5*time.Second, "the suspended page", func() bool {
		st, _, _ := p.get(host("sus"), "/", nil)
		return st == http.StatusServiceUnavailable
	})
	p.mustAPI("PATCH", "/api/v1/customers/s@example.org", map[string]any{"status": "active"}, 200, nil)
	eventually(t, 10*time.Second, "serving again", func() bool {
		st, body, _ := p.get(host("sus"), "/", nil)
		return st == http.StatusOK && body == "hello from sus"
	})
	var index struct {
		OpenAPI   string            `json:"openapi"`
		Resources map[string]string `json:"resources"`
	}
	p.mustAPI("GET", "/api/v1/", nil, 200, &index)
	if index.OpenAPI != "/api/v1/openapi.json" || index.Resources["sites"] != "/api/v1/sites" {
		t.Errorf("index: %+v", index)
	}
}

// testTemplate creates the test site's template through the API and
// returns its slug.
func (p *adminPlatform) testTemplate() string {
	p.t.Helper()
	image := testimage.Build(p.t, testimage.DefaultTag)
	p.mustAPI("POST", "/api/v1/templates", map[string]any{"slug": "testsite", "name": "Test site", "image": image, "port": 8080,
		"health_path": "/health", "memory_bytes": 64 << 20}, 201, nil)
	return "testsite"
}
