package storage

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

// newPool connects to the test server inside schema, with room for the
// concurrent tests' goroutines (pgxpool's default is only max(4, CPUs)).
func newPool(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.SchemaURL(t, schema))
	if err != nil {
		t.Fatalf("parsing test database url: %v", err)
	}
	cfg.MaxConns = 12
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connecting to test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newStorage returns a Storage — one "node" — with its own pool in schema.
func newStorage(t testing.TB, schema string, opts Options) *Storage {
	t.Helper()
	opts.Schema = schema
	s := New(newPool(t, schema), opts)
	t.Cleanup(s.Close) // registered after the pool's Close, so it runs first
	return s
}

// testCtx is a context for one test's database calls, bounded so a hang
// fails the test instead of the whole run.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
