package tenants

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/agistaffers/caddy-multitenant/internal/pglock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable records the applied migration, in the store's schema.
const versionTable = "schema_version"

// Migration reports what Migrate did.
type Migration struct {
	From, To int32
}

// Migrate creates schema if needed and applies the embedded migrations in
// order, under an advisory lock so that Caddy processes starting together
// apply each migration once. Applying an up-to-date schema is a no-op.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (Migration, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Migration{}, fmt.Errorf("connecting to database: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()

	// tern takes its own advisory lock around migrating, but not around
	// CREATE SCHEMA, and two concurrent CREATE … IF NOT EXISTS of one
	// schema can still collide in the catalog.
	unlock, err := pglock.Session(ctx, c, migrateLockKey(schema))
	if err != nil {
		return Migration{}, fmt.Errorf("taking migration lock: %w", err)
	}
	defer unlock()

	if _, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return Migration{}, fmt.Errorf("creating schema %s: %w", schema, err)
	}
	m, err := newMigrator(ctx, c)
	if err != nil {
		return Migration{}, err
	}
	from, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return Migration{}, fmt.Errorf("reading schema version: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return Migration{From: from}, fmt.Errorf("migrating schema %s: %w", schema, err)
	}
	to, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return Migration{From: from}, fmt.Errorf("reading schema version: %w", err)
	}
	return Migration{From: from, To: to}, nil
}

// migrateLockKey is the key of schema's migration lock.
func migrateLockKey(schema string) int64 { return pglock.Key(pglock.ScopeMigrate, schema, "") }

func newMigrator(ctx context.Context, c *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, c, versionTable)
	if err != nil {
		return nil, fmt.Errorf("preparing migrations: %w", err)
	}
	if err := m.LoadMigrations(migrations()); err != nil {
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	return m, nil
}

// LatestVersion is the schema version the embedded migrations lead to.
func LatestVersion() int32 {
	names, err := migrate.FindMigrations(migrations())
	if err != nil {
		panic(err)
	}
	return int32(len(names))
}

// migrations are the embedded migrations, with every number missing
// below the highest filled by an empty one: branches take numbers ahead
// of their merge, and a branch's tests must migrate before the numbers
// below its own are merged. Once they are, nothing is filled.
func migrations() fs.FS {
	dir, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	files := fstest.MapFS{}
	highest := 0
	for _, e := range dir {
		body, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			panic(err)
		}
		files[e.Name()] = &fstest.MapFile{Data: body}
		if n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0]); err == nil {
			highest = max(highest, n)
		}
	}
	for n := 1; n < highest; n++ {
		prefix := fmt.Sprintf("%03d_", n)
		if !slices.ContainsFunc(dir, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), prefix) }) {
			files[prefix+"reserved.sql"] = &fstest.MapFile{Data: []byte("SELECT 1; -- reserved by a branch not merged yet\n")}
		}
	}
	return files
}

// SchemaVersion reads the applied version; 0 when nothing was migrated.
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool) (int32, error) {
	var exists bool
	err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists)
	if err != nil || !exists {
		return 0, mapError("reading schema version", err)
	}
	var v int32
	err = pool.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&v)
	return v, mapError("reading schema version", err)
}
