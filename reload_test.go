package multitenant

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// A config reload through the admin API must reuse the database pool (one
// pool, shared by the tenants app and the storage module) and must not
// leave goroutines behind.
func TestReloadKeepsOnePool(t *testing.T) {
	schema := pgtest.Schema(t)
	dsn := pgtest.URL(t)
	admin := caddytest.FreeAddr(t)
	cfg := fmt.Sprintf(`{
		"admin": {"listen": %q},
		"storage": {"module": "postgres", "dsn": %q, "schema": %q},
		"apps": {"tenants": {"database_url": %q, "schema": %q, "base_domain": "example.com"}}
	}`, admin, dsn, schema, dsn, schema)

	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	refs, ok := pgpool.References(dsn, schema)
	if !ok || refs != 2 || pgpool.Count() != 1 {
		t.Fatalf("after first load: pool refs %d (exists %v), pools %d; want 2 refs (app + storage) on 1 pool", refs, ok, pgpool.Count())
	}
	pool, err := pgpool.Acquire(dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pgpool.Release(dsn, schema)
	if v, err := tenants.SchemaVersion(context.Background(), pool); err != nil || v != tenants.LatestVersion() {
		t.Fatalf("app start did not migrate: version %d, %v", v, err)
	}

	// Every load replaces Caddy's admin server, which closes the idle
	// connection of the load before: reusing it would race the close.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	reload := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/load", strings.NewReader(cfg))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cache-Control", "must-revalidate") // reload even though the config is unchanged
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("posting config: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /load: %s", resp.Status)
		}
	}
	reload()
	baseline := settledGoroutines()
	for range 5 {
		reload()
	}
	if refs, _ := pgpool.References(dsn, schema); refs != 3 || pgpool.Count() != 1 {
		t.Fatalf("after reloads: pool refs %d (want 2 + this test's 1), pools %d (want 1)", refs, pgpool.Count())
	}
	after := settledGoroutines()
	t.Logf("a config's goroutines: %d after the first reload, %d after 5 more", baseline, after)
	if baseline < 10 || after > baseline+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("a config's goroutines grew from %d to %d over 5 reloads:\n%s", baseline, after, buf[:runtime.Stack(buf, true)])
	}
}

// settledGoroutines waits for the count of a config's own goroutines
// (configGoroutines) to stop falling, so that those of a just-stopped
// config have time to exit.
func settledGoroutines() int {
	n := configGoroutines()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		m := configGoroutines()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

// configGoroutines counts the goroutines that live as long as a config
// does: this module's, and those its pools, job queue client and Docker
// event stream start. Goroutines that come and go meanwhile (a job being
// worked, an HTTP connection) are not counted: their number depends on
// the moment, not on a leak.
func configGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		i := strings.LastIndex(g, "created by ")
		if i < 0 {
			continue
		}
		creator := g[i+len("created by "):]
		for _, prefix := range []string{
			"github.com/agistaffers/caddy-multitenant",
			"github.com/riverqueue/river.(*Client",
			"github.com/riverqueue/river/internal/",
			"github.com/jackc/pgx/v5/pgxpool.NewWithConfig",
			"github.com/docker/docker/client.(*Client).Events",
		} {
			if strings.HasPrefix(creator, prefix) {
				n++
				break
			}
		}
	}
	return n
}
