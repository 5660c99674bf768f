package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// withStdin runs `caddy tenants <args>` with stdin as its standard input.
func (c *cli) withStdin(stdin string, args ...string) (string, error) {
	c.t.Helper()
	args = append(append([]string{"tenants"}, args...), "--database-url", c.dsn, "--schema", c.schema)
	cmd := exec.Command(caddytest.Binary(c.t), args...)
	cmd.Dir = c.t.TempDir()
	cmd.Env = os.Environ()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The account commands: operators of the web UI and invitations of
// customers' users, through the built binary against a real database.
func TestCLIAccounts(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, schema: pgtest.Schema(t), dsn: pgtest.URL(t)}
	c.ok("migrate")

	// The first operator, its password from stdin.
	if out, err := c.withStdin("first operator password\n", "admins", "add", "--email", "root@example.com", "--name", "Root", "--password-stdin"); err != nil ||
		!strings.Contains(out, "added operator root@example.com") {
		t.Fatalf("admins add --password-stdin: %v\n%s", err, out)
	}
	c.fails("give the password", "admins", "add", "--email", "nopw@example.com")
	c.fails("password", "admins", "add", "--email", "short@example.com", "--password", "short")
	c.ok("admins", "add", "--email", "second@example.com", "--password", "second operator password")
	c.fails("already exists", "admins", "add", "--email", "second@example.com", "--password", "second operator password")

	var ops []struct {
		Email string `json:"email"`
		Name  string `json:"name"`
		TOTP  bool   `json:"totp"`
	}
	c.json(&ops, "admins", "ls")
	if len(ops) != 2 || ops[0].Email != "root@example.com" || ops[0].Name != "Root" || ops[1].Email != "second@example.com" {
		t.Fatalf("admins ls --json: %+v", ops)
	}
	if out := c.ok("admins", "ls"); !strings.Contains(out, "EMAIL") || !strings.Contains(out, "root@example.com") {
		t.Fatalf("admins ls:\n%s", out)
	}

	// A new password.
	if out, err := c.withStdin("a brand new password\n", "admins", "passwd", "second@example.com", "--password-stdin"); err != nil ||
		!strings.Contains(out, "signed it out everywhere") {
		t.Fatalf("admins passwd: %v\n%s", err, out)
	}
	c.fails(`no user "nobody@example.com"`, "admins", "passwd", "nobody@example.com", "--password", "a brand new password")

	// Invitations: the path, and the whole link with --admin-url.
	c.ok("customers", "add", "--email", "shop@example.com", "--name", "Shop")
	out := c.ok("customers", "invite", "shop@example.com")
	if !strings.Contains(out, "invited shop@example.com") || !strings.Contains(out, "\n/invite/") || !strings.Contains(out, "prefix it with") {
		t.Fatalf("customers invite:\n%s", out)
	}
	var inv struct {
		Path string `json:"path"`
		URL  string `json:"url"`
		User struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	c.json(&inv, "customers", "invite", "shop@example.com", "--email", "staff@example.com", "--admin-url", "https://admin.example.com/")
	if !strings.HasPrefix(inv.Path, "/invite/") || inv.URL != "https://admin.example.com"+inv.Path || inv.User.Email != "staff@example.com" {
		t.Fatalf("customers invite --json: %+v", inv)
	}
	c.fails("already exists", "customers", "invite", "shop@example.com", "--email", "root@example.com")
	c.fails(`no customer "nobody@example.com"`, "customers", "invite", "nobody@example.com")
	c.fails("is a user of customer", "admins", "rm", "staff@example.com")

	// Removing: the last operator stays.
	c.ok("admins", "rm", "second@example.com")
	c.fails("last operator", "admins", "rm", "root@example.com")
	c.json(&ops, "admins", "ls")
	if len(ops) != 1 || ops[0].Email != "root@example.com" {
		t.Fatalf("after rm: %+v", ops)
	}
}
