package tenants

import (
	"context"
	"sync"
	"testing"

	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMigrateFresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	if v, err := SchemaVersion(ctx, pool); err != nil || v != 0 {
		t.Fatalf("before migrating: version %d, err %v; want 0, nil", v, err)
	}
	m, err := Migrate(ctx, pool, schema)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != 0 || m.To != LatestVersion() || LatestVersion() < 1 {
		t.Fatalf("migrated %d → %d, want 0 → %d", m.From, m.To, LatestVersion())
	}
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	// plans customers templates sites domains site_runtime api_keys billing_events audit_log
	// schema_version platform_settings nodes site_activity backups alerts releases
	// site_figures platform_figures users user_sessions invitations site_uptime
	// stale_responses prewarm_events scale_events
	if tables != 25 {
		t.Fatalf("schema has %d tables, want 25", tables)
	}
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	if _, err := Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	m, err := Migrate(ctx, pool, schema)
	if err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if m.From != m.To || m.To != LatestVersion() {
		t.Fatalf("second migrate went %d → %d, want no change at %d", m.From, m.To, LatestVersion())
	}
}

// Two Caddy processes starting together each migrate: they must end with one
// applied schema and neither may fail.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t)
	const migrators = 4
	pools := make([]*pgxpool.Pool, migrators)
	for i := range pools {
		pools[i] = pgtest.Pool(t, schema) // separate pools: separate connections
	}
	var wg sync.WaitGroup
	errs := make([]error, migrators)
	applied := make([]Migration, migrators)
	start := make(chan struct{})
	for i := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied[i], errs[i] = Migrate(ctx, pools[i], schema)
		}()
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
		if applied[i].From == 0 {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d migrators applied migrations, want exactly 1: %+v", fresh, applied)
	}
	var rows int
	if err := pools[0].QueryRow(ctx, `SELECT count(*) FROM schema_version`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("schema_version has %d rows (err %v), want 1", rows, err)
	}
}
