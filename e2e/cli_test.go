// Package e2e tests the custom Caddy built from this module as a real
// process, against real PostgreSQL (and, as the platform grows, Docker).
package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// caddyCmd runs the built caddy in a directory of its own with env added.
func caddyCmd(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	return caddyIn(t, t.TempDir(), env, args...)
}

// caddyIn runs the built caddy in dir with env added.
func caddyIn(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(caddytest.Binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCLIMigrateAndStatus(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	dsn := pgtest.URL(t)

	out, err := caddyCmd(t, nil, "tenants", "status", "--database-url", dsn, "--schema", schema)
	if err != nil || !strings.Contains(out, "version:  0 of ") || !strings.Contains(out, "run `caddy tenants migrate`") {
		t.Fatalf("status before migrate: %v\n%s", err, out)
	}
	out, err = caddyCmd(t, nil, "tenants", "migrate", "--database-url", dsn, "--schema", schema)
	if err != nil || !strings.Contains(out, "migrated schema "+schema+" from version 0 to ") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	out, err = caddyCmd(t, nil, "tenants", "migrate", "--database-url", dsn, "--schema", schema)
	if err != nil || !strings.Contains(out, "is up to date") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}
	out, err = caddyCmd(t, nil, "tenants", "status", "--database-url", dsn, "--schema", schema)
	if err != nil || !strings.Contains(out, "customers:") || !strings.Contains(out, "sites:            0") {
		t.Fatalf("status after migrate: %v\n%s", err, out)
	}
}

// The CLI reads the database from the same config the server runs, so an
// operator never repeats the DSN.
func TestCLIMigrateFromConfig(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	config := "{\n\ttenants {\n\t\tdatabase_url {env.TEST_DB}\n\t\tschema " + schema + "\n\t}\n}\n"
	if err := os.WriteFile(caddyfile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := caddyCmd(t, []string{"TEST_DB=" + pgtest.URL(t)}, "tenants", "migrate", "--config", caddyfile)
	if err != nil || !strings.Contains(out, "migrated schema "+schema) {
		t.Fatalf("migrate --config: %v\n%s", err, out)
	}
}

func TestCLIErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"tenants", "migrate", "--database-url", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, "connecting to database"},
		{[]string{"tenants", "migrate", "--database-url", pgtest.URL(t), "--schema", "Bad;Schema"}, "invalid schema name"},
		// No config, no ./Caddyfile, no DATABASE_URL: the error says all
		// three ways the CLI finds its database.
		{[]string{"tenants", "status"}, "--config"},
		{[]string{"tenants", "status"}, "./Caddyfile"},
		{[]string{"tenants", "status"}, "DATABASE_URL"},
		{[]string{"tenants", "site", "ls"}, `unknown command "site" for "caddy tenants"; did you mean sites?`},
		{[]string{"tenants", "sites", "lst"}, `unknown command "lst" for "caddy tenants sites"; did you mean ls or set?`},
	}
	for _, c := range cases {
		out, err := caddyCmd(t, []string{"DATABASE_URL="}, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("caddy %s: err %v, output:\n%s\nwant it to contain %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
}

// `caddy adapt` and `caddy validate` of the shipped example config succeed
// (validate provisions every module without touching the database).
func TestExampleConfigAdapts(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"Caddyfile.example", "dev/Caddyfile"} {
		path := filepath.Join(caddytest.ModuleRoot(), file)
		env := []string{"DATABASE_URL=postgres://caddy@127.0.0.1:1/platform"}
		if out, err := caddyCmd(t, env, "adapt", "--config", path, "--validate"); err != nil {
			t.Fatalf("adapt %s: %v\n%s", file, err, out)
		}
		if out, err := caddyCmd(t, env, "validate", "--config", path); err != nil || !strings.Contains(out, "Valid configuration") {
			t.Fatalf("validate %s: %v\n%s", file, err, out)
		}
	}
}
