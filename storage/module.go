// Package storage is caddy.storage.postgres: a certmagic.Storage that keeps
// certificates, keys and ACME state in PostgreSQL, so several Caddy nodes
// share them, with leased locks that a crashed node cannot hold forever.
package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"

	"github.com/agistaffers/caddy-multitenant/internal/pgpool"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func init() {
	caddy.RegisterModule(PostgresStorage{})
}

// DefaultSchema is the schema used when none is configured; it is the one
// the tenants app uses, so both share a pool when their DSNs match.
const DefaultSchema = tenants.DefaultSchema

// PostgresStorage stores Caddy's TLS assets in PostgreSQL. The tables
// (certmagic_data, certmagic_locks) are created in the schema on first use;
// nothing connects to the database while the config is only provisioned
// or validated.
//
// Caddyfile (global options):
//
//	storage postgres {
//		dsn {env.DATABASE_URL}
//		schema tenants
//		lock_ttl 30s
//		lock_poll_interval 20ms
//	}
//
// or, with defaults for everything else:
//
//	storage postgres {env.DATABASE_URL}
type PostgresStorage struct {
	// DSN is the PostgreSQL connection string (URL or key=value form).
	// Placeholders such as {env.DATABASE_URL} are expanded. Required.
	// Default: none.
	DSN string `json:"dsn,omitempty"`

	// Schema holds the storage tables; it is created if missing. It must be
	// a lowercase SQL identifier. Default: tenants.
	Schema string `json:"schema,omitempty"`

	// LockTTL is how long a lock survives its holder: a held lock is renewed
	// every lock_ttl/3, and one whose holder died is taken over once this
	// much time has passed since its last renewal. Default: 30s.
	LockTTL caddy.Duration `json:"lock_ttl,omitempty"`

	// LockPollInterval is how often a node waiting for a lock retries
	// (jittered by ±50 %); it bounds the lock hand-off latency.
	// Default: 20ms.
	LockPollInterval caddy.Duration `json:"lock_poll_interval,omitempty"`

	dsn     string // DSN with placeholders expanded; the pool's key
	schema  string
	pooled  bool // holding a pgpool reference
	storage *Storage
}

// CaddyModule returns the Caddy module information.
func (PostgresStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.postgres",
		New: func() caddy.Module { return new(PostgresStorage) },
	}
}

// Provision expands placeholders, applies defaults and takes a reference to
// the shared pool. It does not dial: the pool connects on first use.
func (p *PostgresStorage) Provision(ctx caddy.Context) error {
	p.dsn = caddy.NewReplacer().ReplaceKnown(p.DSN, "")
	if p.dsn == "" {
		return errors.New("dsn is required")
	}
	p.schema = p.Schema
	if p.schema == "" {
		p.schema = DefaultSchema
	}
	if p.LockTTL == 0 {
		p.LockTTL = caddy.Duration(DefaultLockTTL)
	}
	if p.LockPollInterval == 0 {
		p.LockPollInterval = caddy.Duration(DefaultLockPollInterval)
	}
	if err := p.validate(); err != nil {
		return err
	}
	pool, err := pgpool.Acquire(p.dsn, p.schema)
	if err != nil {
		return err
	}
	p.pooled = true
	p.storage = New(pool, Options{
		Schema:           p.schema,
		LockTTL:          time.Duration(p.LockTTL),
		LockPollInterval: time.Duration(p.LockPollInterval),
		Logger:           ctx.Logger(),
	})
	return nil
}

// Validate checks the provisioned configuration.
func (p *PostgresStorage) Validate() error {
	if p.dsn == "" {
		return errors.New("dsn is required")
	}
	return p.validate()
}

func (p *PostgresStorage) validate() error {
	if err := pgpool.ValidSchema(p.schema); err != nil {
		return err
	}
	if p.LockTTL <= 0 {
		return fmt.Errorf("lock_ttl must be positive, got %s", time.Duration(p.LockTTL))
	}
	if p.LockPollInterval <= 0 {
		return fmt.Errorf("lock_poll_interval must be positive, got %s", time.Duration(p.LockPollInterval))
	}
	// A waiter that polls less often than leases expire would hand off
	// late by design; that is a typo, not a tuning choice.
	if p.LockPollInterval >= p.LockTTL {
		return fmt.Errorf("lock_poll_interval (%s) must be shorter than lock_ttl (%s)",
			time.Duration(p.LockPollInterval), time.Duration(p.LockTTL))
	}
	return nil
}

// CertMagicStorage returns the storage certmagic uses.
func (p *PostgresStorage) CertMagicStorage() (certmagic.Storage, error) {
	if p.storage == nil {
		return nil, errors.New("postgres storage is not provisioned")
	}
	return p.storage, nil
}

// Cleanup stops lease renewals and releases the pool reference; the pool
// closes when its last user (this storage or the tenants app) lets go.
// It also runs after a failed Provision, so it copes with partial state.
func (p *PostgresStorage) Cleanup() error {
	if p.storage != nil {
		p.storage.Close()
	}
	if !p.pooled {
		return nil
	}
	p.pooled = false
	return pgpool.Release(p.dsn, p.schema)
}

// Interface guards
var (
	_ caddy.StorageConverter = (*PostgresStorage)(nil)
	_ caddy.Provisioner      = (*PostgresStorage)(nil)
	_ caddy.CleanerUpper     = (*PostgresStorage)(nil)
	_ caddy.Validator        = (*PostgresStorage)(nil)
	_ caddyfile.Unmarshaler  = (*PostgresStorage)(nil)

	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)
