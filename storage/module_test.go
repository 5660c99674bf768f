package storage

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		input   string
		want    PostgresStorage
		wantErr string
	}{
		{
			name: "block",
			input: `postgres {
				dsn                {env.DATABASE_URL}
				schema             certs
				lock_ttl           45s
				lock_poll_interval 10ms
			}`,
			want: PostgresStorage{
				DSN:              "{env.DATABASE_URL}",
				Schema:           "certs",
				LockTTL:          caddy.Duration(45 * time.Second),
				LockPollInterval: caddy.Duration(10 * time.Millisecond),
			},
		},
		{
			name:  "inline dsn",
			input: `postgres postgres://caddy@db/caddy`,
			want:  PostgresStorage{DSN: "postgres://caddy@db/caddy"},
		},
		{
			name:  "inline dsn with block",
			input: "postgres {env.DATABASE_URL} {\n schema other\n}",
			want:  PostgresStorage{DSN: "{env.DATABASE_URL}", Schema: "other"},
		},
		{name: "missing dsn", input: `postgres`, wantErr: "missing dsn"},
		{name: "empty block", input: "postgres {\n}", wantErr: "missing dsn"},
		{name: "unknown subdirective", input: "postgres {\n dsn x\n bogus 1\n}", wantErr: `unrecognized subdirective "bogus"`},
		{name: "dsn twice", input: "postgres a {\n dsn b\n}", wantErr: "dsn already specified"},
		{name: "extra inline argument", input: `postgres a b`, wantErr: "wrong argument count"},
		{name: "extra subdirective argument", input: "postgres {\n dsn a b\n}", wantErr: "wrong argument count"},
		{name: "dsn without value", input: "postgres {\n dsn\n}", wantErr: "wrong argument count"},
		{name: "bad lock_ttl", input: "postgres {\n dsn a\n lock_ttl soon\n}", wantErr: `parsing lock_ttl "soon"`},
		{name: "bad lock_poll_interval", input: "postgres {\n dsn a\n lock_poll_interval x\n}", wantErr: `parsing lock_poll_interval "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got PostgresStorage
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestProvisionDoesNotDial points the DSN at a listener that records
// connection attempts: provisioning (and validating, and handing out the
// certmagic storage) must not make one, since `caddy validate` runs it.
func TestProvisionDoesNotDial(t *testing.T) {
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	dialed := make(chan struct{}, 1)
	go func() {
		if conn, err := listener.Accept(); err == nil {
			conn.Close()
			dialed <- struct{}{}
		}
	}()

	p := &PostgresStorage{DSN: "postgres://nobody@" + listener.Addr().String() + "/nothing?sslmode=disable"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := p.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := p.CertMagicStorage(); err != nil {
		t.Fatalf("CertMagicStorage: %v", err)
	}
	select {
	case <-dialed:
		t.Fatal("provisioning connected to the database")
	case <-time.After(300 * time.Millisecond):
	}
	if p.schema != DefaultSchema || time.Duration(p.LockTTL) != DefaultLockTTL ||
		time.Duration(p.LockPollInterval) != DefaultLockPollInterval {
		t.Errorf("defaults not applied: %+v", p)
	}
	if refs, ok := pgpool.References(p.dsn, p.schema); !ok || refs != 1 {
		t.Errorf("pool references = %d, %v; want 1", refs, ok)
	}
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := pgpool.References(p.dsn, p.schema); ok {
		t.Error("pool still referenced after Cleanup")
	}
}

// TestProvisionExpandsPlaceholders provisions from JSON with an {env.*}
// DSN and then uses the storage for real.
func TestProvisionExpandsPlaceholders(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	raw := `{"dsn": "{env.` + pgtest.EnvURL + `}", "schema": "` + schema + `", "lock_ttl": "5s"}`
	var p PostgresStorage
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := p.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Cleanup()
	if want := os.Getenv(pgtest.EnvURL); p.dsn != want {
		t.Fatalf("dsn expanded to %q, want %q", p.dsn, want)
	}
	if p.storage.lockTTL != 5*time.Second {
		t.Errorf("lock ttl = %s, want 5s", p.storage.lockTTL)
	}
	s, err := p.CertMagicStorage()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store(ctx, "provisioned/key", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "provisioned/key"); err != nil || string(got) != "v" {
		t.Errorf("Load = %q, %v", got, err)
	}
}

func TestProvisionRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		config  PostgresStorage
		wantErr string
	}{
		{"no dsn", PostgresStorage{}, "dsn is required"},
		{"dsn expands to nothing", PostgresStorage{DSN: "{env.STORAGE_TEST_SURELY_UNSET}"}, "dsn is required"},
		{"bad schema", PostgresStorage{DSN: "postgres://x@127.0.0.1:1/x", Schema: "Bad-Name"}, "invalid schema name"},
		{"negative ttl", PostgresStorage{DSN: "postgres://x@127.0.0.1:1/x", LockTTL: -1}, "lock_ttl must be positive"},
		{"poll slower than ttl", PostgresStorage{DSN: "postgres://x@127.0.0.1:1/x",
			LockTTL: caddy.Duration(time.Second), LockPollInterval: caddy.Duration(2 * time.Second)}, "must be shorter than lock_ttl"},
		{"unparsable dsn", PostgresStorage{DSN: "postgres://x@127.0.0.1:notaport/x"}, "parsing database url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			p := tc.config
			err := p.Provision(ctx)
			if err == nil {
				err = p.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if cleanupErr := p.Cleanup(); cleanupErr != nil {
				t.Errorf("Cleanup after a failed Provision: %v", cleanupErr)
			}
			if _, ok := pgpool.References(p.dsn, p.schema); ok {
				t.Error("a failed Provision left a pool behind")
			}
		})
	}
}

func TestSchemaIsCreatedLazilyOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	schema := pgtest.Schema(t) + "_lazy" // does not exist yet
	admin := pgtest.Pool(t, "public")
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})

	nodes := make([]*Storage, 4)
	for i := range nodes {
		nodes[i] = newStorage(t, schema, Options{})
	}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("New created the schema; it must wait for first use")
	}
	errs := make(chan error, len(nodes))
	for i, node := range nodes {
		go func() { errs <- node.Store(ctx, "node/"+string(rune('a'+i)), []byte("v")) }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Errorf("first use by concurrent nodes: %v", err)
		}
	}
	keys, err := nodes[0].List(ctx, "node", false)
	if err != nil || len(keys) != len(nodes) {
		t.Errorf("List = %q, %v; want %d keys", keys, err, len(nodes))
	}
}
