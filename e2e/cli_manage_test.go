package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/internal/testimage"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// cli runs `caddy tenants <args> --database-url … --schema …`.
type cli struct {
	t      *testing.T
	schema string
	dsn    string
}

func (c *cli) run(args ...string) (string, error) {
	c.t.Helper()
	args = append([]string{"tenants"}, args...)
	args = append(args, "--database-url", c.dsn, "--schema", c.schema)
	return caddyCmd(c.t, nil, args...)
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("caddy tenants %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cli) fails(want string, args ...string) {
	c.t.Helper()
	out, err := c.run(args...)
	if err == nil || !strings.Contains(out, want) {
		c.t.Fatalf("caddy tenants %s: err %v, want a failure containing %q:\n%s", strings.Join(args, " "), err, want, out)
	}
}

func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("caddy tenants %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Every management subcommand against a real database (and, for sites
// start/stop/logs/rm, the Docker engine), through the built binary.
func TestCLIManage(t *testing.T) {
	t.Parallel()
	image := testimage.Build(t, testimage.DefaultTag)
	c := &cli{t: t, schema: pgtest.Schema(t), dsn: pgtest.URL(t)}
	p := &testPlatform{t: t, schema: c.schema, docker: dockerClient(t)}
	t.Cleanup(p.removeContainers)

	// The first migrate seeds the built-in catalog.
	out := c.ok("migrate")
	if !strings.Contains(out, "imported 10 templates from the built-in catalog") {
		t.Fatalf("first migrate:\n%s", out)
	}
	out = c.ok("templates", "ls")
	for _, slug := range []string{"static", "php", "node", "python", "ghost", "gitea", "uptime-kuma", "filebrowser", "vaultwarden", "n8n"} {
		if !strings.Contains(out, " "+slug+" ") {
			t.Errorf("templates ls lacks %s:\n%s", slug, out)
		}
	}
	out = c.ok("templates", "import")
	if !strings.Contains(out, "0 created, 0 updated, 10 unchanged") {
		t.Fatalf("re-import of the catalog:\n%s", out)
	}
	// Import a file of our own; export round-trips.
	dir := t.TempDir()
	file := filepath.Join(dir, "templates.json")
	tplJSON := `{"templates":[{"slug":"testsite","name":"Test site","image":"` + image + `","port":8080,
		"env":{"DATA_DIR":"/data"},"data_path":"/data","health_path":"/health","memory_bytes":67108864,"pids_limit":64}]}`
	if err := os.WriteFile(file, []byte(tplJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("templates", "import", file); !strings.Contains(out, "1 created") {
		t.Fatalf("import file:\n%s", out)
	}
	exported := filepath.Join(dir, "export.json")
	c.ok("templates", "export", exported)
	data, _ := os.ReadFile(exported)
	all, err := tenants.ParseTemplates(data)
	if err != nil || len(all) != 11 {
		t.Fatalf("export: %d templates, %v", len(all), err)
	}
	if out := c.ok("templates", "import", exported); !strings.Contains(out, "11 unchanged") {
		t.Fatalf("import of the export:\n%s", out)
	}
	c.fails("no such file", "templates", "import", file+".missing")

	// Autoscaling: a template's max replicas and target, a plan's cap on
	// them (none lifts it); bad values named.
	var scaled manage.TemplateResult
	c.json(&scaled, "templates", "set", "testsite", "--max-replicas", "3", "--target-concurrency", "20")
	if scaled.MaxReplicas != 3 || scaled.TargetConcurrency != 20 {
		t.Fatalf("templates set --max-replicas 3 --target-concurrency 20: %+v", scaled.Template)
	}
	if out := c.ok("templates", "set", "testsite", "--target-concurrency", "15"); !strings.Contains(out, "template testsite: max replicas 3, target 15 in flight per replica") {
		t.Fatalf("templates set --target-concurrency 15:\n%s", out)
	}
	if out := c.ok("templates", "ls"); !strings.Contains(out, "MAX REPLICAS") || !strings.HasSuffix(lineOf(out, " testsite "), " 3 15") {
		t.Fatalf("templates ls lacks testsite's scaling:\n%s", out)
	}
	c.fails("max_replicas: must be from 1 to 64", "templates", "set", "testsite", "--max-replicas", "0")
	c.fails("target_concurrency: must be from 1 to 10000", "templates", "set", "testsite", "--target-concurrency", "10001")
	c.fails("nothing to change", "templates", "set", "testsite")
	var plan tenants.Plan
	c.json(&plan, "plans", "add", "--slug", "duo", "--name", "Duo", "--max-replicas", "2")
	if plan.MaxReplicas == nil || *plan.MaxReplicas != 2 {
		t.Fatalf("plans add --max-replicas 2: %+v", plan)
	}
	if out := c.ok("plans", "set", "duo", "--max-replicas", "none"); !strings.Contains(out, "plan duo: max replicas not capped") {
		t.Fatalf("plans set --max-replicas none:\n%s", out)
	}
	c.json(&plan, "plans", "set", "duo", "--max-replicas", "4")
	if plan.MaxReplicas == nil || *plan.MaxReplicas != 4 {
		t.Fatalf("plans set --max-replicas 4: %+v", plan)
	}
	if out := c.ok("plans", "ls"); !strings.Contains(out, "MAX REPLICAS") || !strings.HasSuffix(lineOf(out, " duo "), " 4") {
		t.Fatalf("plans ls lacks duo's cap:\n%s", out)
	}
	c.fails("max_replicas: must be from 1 to 64", "plans", "set", "duo", "--max-replicas", "65")
	c.fails(`--max-replicas "many": want a number from 1 to 64, or none`, "plans", "set", "duo", "--max-replicas", "many")
	c.fails("nothing to change", "plans", "set", "duo")

	// Customers.
	var cust tenants.Customer
	c.json(&cust, "customers", "add", "--email", "cli@example.org", "--name", "CLI Customer")
	if cust.ID == "" || cust.Status != "active" {
		t.Fatalf("customers add: %+v", cust)
	}
	c.fails("invalid email", "customers", "add", "--email", "nope", "--name", "X")
	c.fails("already exists", "customers", "add", "--email", "cli@example.org", "--name", "Again")
	if out := c.ok("customers", "ls"); !strings.Contains(out, "cli@example.org") || !strings.Contains(out, "EMAIL") {
		t.Fatalf("customers ls:\n%s", out)
	}

	// Sites, with Docker.
	var site tenants.Site
	c.json(&site, "sites", "add", "--customer", cust.ID, "--subdomain", "clisite", "--template", "testsite", "--env", "SITE_NAME=clisite")
	if site.Env["SITE_NAME"] != "clisite" {
		t.Fatalf("sites add: %+v", site)
	}
	c.fails("invalid subdomain", "sites", "add", "--customer", cust.ID, "--subdomain", "Bad_Sub", "--template", "testsite")
	// Warm-start settings: serve stale on, pre-warm off; back to the
	// template's; bad values named.
	var warm tenants.Site
	c.json(&warm, "sites", "set", site.ID, "--serve-stale", "on", "--prewarm", "off")
	if warm.ServeStale == nil || !*warm.ServeStale || warm.Prewarm {
		t.Fatalf("sites set --serve-stale on --prewarm off: %+v", warm)
	}
	if out := c.ok("sites", "set", "clisite", "--serve-stale", "template"); !strings.Contains(out, "serve stale template's, pre-warm off") {
		t.Fatalf("sites set --serve-stale template:\n%s", out)
	}
	c.fails("--serve-stale \"sometimes\": want on, off or template", "sites", "set", "clisite", "--serve-stale", "sometimes")
	c.fails("nothing to change", "sites", "set", "clisite")
	c.fails("no template", "sites", "add", "--customer", cust.ID, "--subdomain", "x", "--template", "nope")
	var sites []tenants.Site
	c.json(&sites, "sites", "ls", "--customer", cust.ID)
	if len(sites) != 1 || sites[0].ID != site.ID {
		t.Fatalf("sites ls: %+v", sites)
	}
	if out := c.ok("sites", "start", "clisite"); !strings.Contains(out, "is running at") {
		t.Fatalf("sites start:\n%s", out)
	}
	if !p.running(site.ID) {
		t.Fatal("no running container after sites start")
	}
	if out := c.ok("sites", "logs", site.ID, "--tail", "10"); !strings.Contains(out, "listening on :8080") {
		t.Fatalf("sites logs:\n%s", out)
	}
	var st struct{ State string }
	c.json(&st, "sites", "stop", "clisite")
	if st.State != "stopped" || p.running(site.ID) {
		t.Fatalf("sites stop: %+v", st)
	}
	if out := c.ok("sites", "ls"); !strings.Contains(out, "clisite") || !strings.Contains(out, "stopped") {
		t.Fatalf("sites ls after stop:\n%s", out)
	}

	// Domains.
	out = c.ok("domains", "add", "clisite", "Shop.CLI.test")
	if !strings.Contains(out, "TXT _caddy-multitenant.shop.cli.test") {
		t.Fatalf("domains add:\n%s", out)
	}
	c.fails("invalid hostname", "domains", "add", "clisite", "bad host")
	c.fails("is not verified", "domains", "verify", "shop.cli.test", "--dns-server", "127.0.0.1:1")
	var res struct{ Verified bool }
	c.json(&res, "domains", "verify", "shop.cli.test", "--force")
	if !res.Verified {
		t.Fatalf("domains verify --force: %+v", res)
	}
	var domains []tenants.Domain
	c.json(&domains, "domains", "ls", "--site", "clisite")
	if len(domains) != 1 || !domains[0].Verified || domains[0].Hostname != "shop.cli.test" {
		t.Fatalf("domains ls: %+v", domains)
	}
	c.ok("domains", "rm", "shop.cli.test")
	c.fails("no domain", "domains", "rm", "shop.cli.test")

	// API keys: the token is printed once and works; revoke.
	var key struct {
		KeyID string `json:"key_id"`
		Token string `json:"token"`
		Scope string `json:"scope"`
	}
	c.json(&key, "apikey", "create", "--name", "ci", "--scope", "read")
	if !strings.HasPrefix(key.Token, "mtk_"+key.KeyID+"_") || key.Scope != "read" {
		t.Fatalf("apikey create: %+v", key)
	}
	if out := c.ok("apikey", "create", "--name", "ops"); !strings.Contains(out, "shown once") {
		t.Fatalf("apikey create (table):\n%s", out)
	}
	c.fails("invalid scope", "apikey", "create", "--name", "x", "--scope", "admin")
	if out := c.ok("apikey", "ls"); !strings.Contains(out, key.KeyID) || strings.Contains(out, key.Token) {
		t.Fatalf("apikey ls:\n%s", out)
	}
	c.ok("apikey", "revoke", key.KeyID)
	c.fails("no api key", "apikey", "revoke", "0000000000000000")
	var keys []tenants.APIKey
	c.json(&keys, "apikey", "ls")
	if len(keys) != 2 || keys[0].RevokedAt == nil {
		t.Fatalf("apikey ls after revoke: %+v", keys)
	}

	// Removing: a customer with sites needs --cascade; sites rm removes
	// the container.
	c.fails("--cascade", "customers", "rm", cust.ID)
	c.ok("sites", "rm", "clisite")
	if n := len(p.containers(site.ID)); n != 0 {
		t.Fatalf("%d containers after sites rm", n)
	}
	c.json(&site, "sites", "add", "--customer", cust.ID, "--subdomain", "second", "--template", "testsite")
	if out := c.ok("customers", "rm", cust.ID, "--cascade"); !strings.Contains(out, "and 1 sites") {
		t.Fatalf("customers rm --cascade:\n%s", out)
	}
	if out := c.ok("status"); !strings.Contains(out, "customers:        0") || !strings.Contains(out, "templates:        11") {
		t.Fatalf("status at the end:\n%s", out)
	}
}

// lineOf is the line of a table that contains s, its columns one space
// apart.
func lineOf(table, s string) string {
	for _, line := range strings.Split(table, "\n") {
		if strings.Contains(line, s) {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return ""
}
