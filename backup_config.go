package multitenant

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/storage"
)

// Defaults of the backup option.
const (
	DefaultBackupEvery = 24 * time.Hour
	DefaultBackupKeep  = 7
	DefaultBackupDir   = "/var/backups/tenants"
)

// BackupConfig schedules backups of the whole platform (its schema and
// every site's volume): one archive per period, made by one of the nodes
// sharing the database (a durable job: a node going down mid-backup
// hands it to another, a restart loses no period), the oldest removed
// beyond Keep.
//
// Caddyfile (inside the tenants global option):
//
//	backup {
//		every 24h
//		keep  7
//		dir   /var/backups/tenants
//	}
type BackupConfig struct {
	// Every is the period: one backup in each, soon after it begins.
	// Periods are aligned to the Unix epoch (UTC): 24h backs up just
	// after midnight UTC. Default: 24h.
	Every caddy.Duration `json:"every,omitempty"`

	// Keep is how many successful scheduled backups are kept; older
	// archives are removed. Default: 7.
	Keep int `json:"keep,omitempty"`

	// Dir is the directory archives are written to, on the node that
	// makes them: with nodes on several hosts, a directory they share.
	// Manual backups through the API go there too. Default:
	// /var/backups/tenants.
	Dir string `json:"dir,omitempty"`
}

// expand fills in defaults.
func (c *BackupConfig) expand() {
	if c.Every == 0 {
		c.Every = caddy.Duration(DefaultBackupEvery)
	}
	if c.Keep == 0 {
		c.Keep = DefaultBackupKeep
	}
	if c.Dir == "" {
		c.Dir = DefaultBackupDir
	}
}

func (c *BackupConfig) validate() error {
	switch {
	case c.Every < caddy.Duration(time.Second):
		return fmt.Errorf("backup every: %s is less than a second", time.Duration(c.Every))
	case c.Keep < 1:
		return fmt.Errorf("backup keep: %d, want at least 1", c.Keep)
	case !filepath.IsAbs(c.Dir):
		return fmt.Errorf("backup dir: %q is not an absolute path", c.Dir)
	}
	return nil
}

// newBackups returns the backup service of a platform (the server's or
// the CLI's): the schema in pool, volumes through rt.
func newBackups(pool *pgxpool.Pool, schema string, rt *siteRuntime, logger *zap.Logger) *backup.Service {
	return backup.New(backup.Config{
		Pool:    pool,
		Schema:  schema,
		Volumes: rt,
		Prepare: func(ctx context.Context) error { return storage.CreateTables(ctx, pool, schema) },
		Logger:  logger,
	})
}
