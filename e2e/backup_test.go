package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/jackc/pgx/v5"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/storage"
)

// file reads the file name of the site at host.
func (p *testPlatform) file(host, name string) string {
	p.t.Helper()
	st, body, _ := p.get(host, "/file?name="+name, nil)
	if st != http.StatusOK {
		p.t.Fatalf("GET %s/file?name=%s: %d %s", host, name, st, body)
	}
	return body
}

func (p *testPlatform) cli() *cli {
	return &cli{t: p.t, schema: p.schema, dsn: pgtest.URL(p.t)}
}

// The whole platform to a fresh machine: back up, lose the schema, the
// containers and the volumes, restore; the same sites serve the same
// data (and certificates, customers, domains come back with them).
func TestBackupRestoresOntoEmptyPlatform(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{})
	c := p.cli()
	a, b := p.site("alpha", nil), p.site("beta", nil)
	p.put(host("alpha"), "note", "written to alpha")
	p.put(host("beta"), "note", "written to beta")
	if err := storage.CreateTables(ctx, p.store.Pool(), p.schema); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.Pool().Exec(ctx, `INSERT INTO certmagic_data (key, value, modified) VALUES ('certificates/x', 'pem', now())`); err != nil {
		t.Fatal(err)
	}
	// Volumes are read from a stopped container (alpha's) and, for a site
	// whose container is gone (beta's), through one made for the purpose.
	c.ok("sites", "stop", "alpha")
	if err := p.docker.ContainerRemove(ctx, p.containers(b.ID)[0].ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "platform.tar.gz")
	if out := c.ok("backup", "--out", archive); !strings.Contains(out, "2 site volumes") {
		t.Fatalf("backup:\n%s", out)
	}
	left, err := p.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", provisioner.LabelNamespace+"="+p.schema), filters.Arg("label", provisioner.LabelRole))})
	if err != nil || len(left) != 0 || len(p.containers(b.ID)) != 0 {
		t.Fatalf("the backup left containers behind: %d, %v", len(left), err)
	}
	var listed []struct{ Status, Path string }
	c.json(&listed, "backups", "ls")
	if len(listed) != 1 || listed[0].Status != "succeeded" || listed[0].Path != archive {
		t.Fatalf("backups ls: %+v", listed)
	}

	// The machine is lost.
	p.caddy.Stop()
	p.removeContainers()
	if _, err := p.store.Pool().Exec(ctx, "DROP SCHEMA "+pgx.Identifier{p.schema}.Sanitize()+" CASCADE; CREATE SCHEMA "+pgx.Identifier{p.schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if n := len(p.containers(a.ID)) + len(p.containers(b.ID)); n != 0 {
		t.Fatalf("%d containers left", n)
	}

	out := c.ok("restore", archive)
	if !strings.Contains(out, "2 site volumes") {
		t.Fatalf("restore:\n%s", out)
	}
	p.caddy = caddytest.Start(t, p.caddyfile, caddytest.Options{})
	for _, sub := range []string{"alpha", "beta"} {
		if st, body, _ := p.get(host(sub), "/", nil); st != http.StatusOK || body != "hello from "+sub {
			t.Fatalf("%s after the restore: %d %q", sub, st, body)
		}
		if got := p.file(host(sub), "note"); got != "written to "+sub {
			t.Fatalf("%s's file after the restore: %q", sub, got)
		}
	}
	var pem []byte
	if err := p.store.Pool().QueryRow(ctx, `SELECT value FROM certmagic_data WHERE key = 'certificates/x'`).Scan(&pem); err != nil || string(pem) != "pem" {
		t.Fatalf("certificate after the restore: %q %v", pem, err)
	}
	// The catalog a fresh start would import is not added to the archive's.
	if out := c.ok("templates", "ls"); strings.Contains(out, "vaultwarden") {
		t.Fatalf("templates after the restore:\n%s", out)
	}
}

// One site restores into the running platform: an existing one gets its
// volume back, a removed one its rows too; the other site is not touched
// (its data and its container stay as they are).
func TestRestoreSingleSite(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	c := p.cli()
	p.site("alpha", nil)
	beta := p.site("beta", nil)
	p.put(host("alpha"), "note", "alpha v1")
	p.put(host("beta"), "note", "beta v1")
	archive := filepath.Join(t.TempDir(), "platform.tar.gz")
	c.ok("backup", "--out", archive)
	p.put(host("alpha"), "note", "alpha v2")
	p.put(host("alpha"), "later", "not in the backup")
	p.put(host("beta"), "note", "beta v2")
	betaContainer := p.containers(beta.ID)[0].ID

	c.ok("restore", archive, "--site", "alpha")
	eventually(t, 30*time.Second, "alpha serves its backed-up file", func() bool {
		st, body, _, err := p.tryGet(host("alpha"), "/file?name=note", nil)
		return err == nil && st == http.StatusOK && body == "alpha v1"
	})
	if st, _, _ := p.get(host("alpha"), "/file?name=later", nil); st != http.StatusNotFound {
		t.Fatalf("a file written after the backup survived the restore: %d", st)
	}
	if got := p.file(host("beta"), "note"); got != "beta v2" {
		t.Fatalf("beta changed by alpha's restore: %q", got)
	}
	if c := p.containers(beta.ID); len(c) != 1 || c[0].ID != betaContainer || c[0].State != "running" {
		t.Fatalf("beta's container after alpha's restore: %+v, want %s running", c, betaContainer)
	}

	// A removed site comes back whole: its row, its volume.
	c.ok("sites", "rm", "alpha", "--purge")
	if out := c.ok("restore", archive, "--site", "alpha"); !strings.Contains(out, "rows were restored") {
		t.Fatalf("restore of a removed site:\n%s", out)
	}
	eventually(t, 30*time.Second, "the removed site serves again", func() bool {
		st, body, _, err := p.tryGet(host("alpha"), "/file?name=note", nil)
		return err == nil && st == http.StatusOK && body == "alpha v1"
	})
	if got := p.file(host("beta"), "note"); got != "beta v2" {
		t.Fatalf("beta changed by alpha's restore: %q", got)
	}
	c.fails("no such site", "restore", archive, "--site", "gamma")
}

// A damaged archive, or one of a newer schema, is refused before anything
// changes; so is a whole restore onto a platform that has sites.
func TestRestoreRefusesBadArchives(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	c := p.cli()
	alpha := p.site("alpha", nil)
	p.put(host("alpha"), "note", "alpha v1")
	dir := t.TempDir()
	archive := filepath.Join(dir, "platform.tar.gz")
	c.ok("backup", "--out", archive)
	p.put(host("alpha"), "note", "alpha v2")
	container := p.containers(alpha.ID)[0].ID
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}

	damaged := filepath.Join(dir, "damaged.tar.gz")
	flipped := bytes.Clone(data)
	flipped[len(flipped)*2/3] ^= 0x55
	if err := os.WriteFile(damaged, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails("damaged", "restore", damaged, "--site", "alpha")

	newer := filepath.Join(dir, "newer.tar.gz")
	if err := os.WriteFile(newer, withManifest(t, data, func(m map[string]any) { m["schema_version"] = 999 }), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fails("schema version 999", "restore", newer, "--site", "alpha")
	c.fails("not empty", "restore", archive)

	if got := p.file(host("alpha"), "note"); got != "alpha v2" {
		t.Fatalf("a refused restore changed the site's data: %q", got)
	}
	if c := p.containers(alpha.ID); len(c) != 1 || c[0].ID != container {
		t.Fatalf("a refused restore touched the site's container: %+v", c)
	}
}

// withManifest returns the archive with its manifest changed by edit.
func withManifest(t *testing.T, archive []byte, edit func(map[string]any)) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.Name == "manifest.json" {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			body, _ = json.Marshal(m)
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	gw.Close()
	return out.Bytes()
}
