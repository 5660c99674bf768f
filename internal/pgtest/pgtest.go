// Package pgtest gives tests their own schema in a real PostgreSQL server.
//
// The server comes from TENANTS_TEST_DATABASE_URL, which `make test` sets
// after starting a throwaway cluster (scripts/pg-up.sh). Without it a test
// fails: these tests exist to talk to the real database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names the environment variable holding the test server's URL.
const EnvURL = "TENANTS_TEST_DATABASE_URL"

// URL returns the test server's connection URL, failing the test when unset.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Fatalf("%s is not set: run `make test`, or start a server with scripts/pg-up.sh DIR and export its URL", EnvURL)
	}
	return u
}

// Schema returns the name of a fresh, empty schema that is dropped (with
// everything in it) when the test ends. Tests that each take their own
// schema can run in parallel against one server.
func Schema(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "t_" + hex.EncodeToString(b[:])
	exec(t, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { exec(t, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE") })
	return name
}

// SchemaURL returns the test server's URL with search_path set to schema, so
// a connection made from it works inside that schema only.
func SchemaURL(t testing.TB, schema string) string {
	t.Helper()
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Pool returns a pool connected to the test server inside schema, closed
// when the test ends.
func Pool(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), SchemaURL(t, schema))
	if err != nil {
		t.Fatalf("connecting to test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func exec(t testing.TB, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL(t))
	if err != nil {
		t.Fatalf("connecting to test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
