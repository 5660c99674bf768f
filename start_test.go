package multitenant

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/agistaffers/caddy-multitenant/internal/caddytest"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// A database that is only unreachable does not keep Caddy from starting
// (the platform waits for it); one that refuses the configuration is a
// load error.
func TestStartDatabaseErrors(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	missingDB := *u
	missingDB.Path = "/no_such_database"
	unreachable := *u
	unreachable.Host = caddytest.FreeAddr(t) // nothing listens there

	load := func(dsn string) error {
		cfg := fmt.Sprintf(`{"admin": {"disabled": true},
			"apps": {"tenants": {"database_url": %q, "schema": %q}}}`, dsn, pgtest.Schema(t))
		err := caddy.Load([]byte(cfg), true)
		if err == nil {
			t.Cleanup(func() { _ = caddy.Stop() })
		}
		return err
	}

	if err := load(missingDB.String()); err == nil || !strings.Contains(err.Error(), "connecting to database") ||
		!strings.Contains(err.Error(), "3D000") {
		t.Fatalf("missing database: %v, want a load error", err)
	}
	if err := load(unreachable.String()); err != nil {
		t.Fatalf("unreachable database: %v, want the platform to start and wait", err)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatalf("stopping a platform waiting for its database: %v", err)
	}
}

// Default limits beyond what the Docker host has are a load error naming
// the option: no site without limits of its own could start.
func TestStartRefusesLimitsBeyondHost(t *testing.T) {
	for limits, want := range map[string]string{
		`{"memory_bytes": 1125899906842624}`: "limits memory: 1.0 PiB is more than the Docker host's",
		`{"nano_cpus": 100000000000000}`:     "limits cpus: 100000.00 is more than the Docker host's",
	} {
		cfg := fmt.Sprintf(`{"admin": {"disabled": true},
			"apps": {"tenants": {"database_url": %q, "schema": %q, "limits": %s}}}`, pgtest.URL(t), pgtest.Schema(t), limits)
		err := caddy.Load([]byte(cfg), true)
		if err == nil {
			_ = caddy.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("limits %s: %v, want a load error containing %q", limits, err, want)
		}
	}
}
