// Package backup makes and restores archives of a platform: one gzipped
// tar holding every table of its schema (one consistent snapshot, in
// COPY's text format) and each site's volume (as the Docker engine's
// archive API gives it), with a manifest of versions, sizes and
// checksums. Both directions stream through parts of PartSize bytes, so
// memory does not grow with a volume's size.
//
// A restore reads the whole archive and checks it against its manifest
// before it changes anything. The whole platform restores onto an empty
// schema and engine; a single site restores into a running platform
// without touching any other.
//
// It knows nothing of Docker: Volumes (the root package's, over the
// provisioner) reads and writes the volumes.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Volumes reads and writes sites' volumes.
type Volumes interface {
	// ExportVolume writes the site's volume to w as a tar of its data
	// directory, whether its container runs, is stopped or is gone.
	ExportVolume(ctx context.Context, siteID string, w io.Writer) error
	// ImportVolume replaces the site's volume with the tar r (as
	// ExportVolume wrote it); the site's container is made anew at its
	// next start.
	ImportVolume(ctx context.Context, siteID string, r io.Reader) error
}

// Config sets up a Service.
type Config struct {
	// Pool is the platform's database, its search_path the schema.
	// Required.
	Pool *pgxpool.Pool
	// Schema is the platform's schema. Required.
	Schema string
	// Volumes reads and writes the sites' volumes. Required.
	Volumes Volumes
	// Prepare, if set, makes the tables a restore loads into that the
	// schema's migrations do not (the certificate storage's).
	Prepare func(ctx context.Context) error
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// Service makes and restores archives. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *zap.Logger
}

// New returns the service for cfg.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Service{cfg: cfg, log: cfg.Logger}
}

// Write writes an archive of the platform to w: the whole database, and
// every site's volume or, with siteID, that site's only.
func (s *Service) Write(ctx context.Context, w io.Writer, siteID string) (*Manifest, error) {
	now := time.Now().UTC().Truncate(time.Second)
	m := &Manifest{Format: FormatVersion, Binary: binaryVersion(), Schema: s.cfg.Schema, CreatedAt: now, Site: siteID}
	aw := newArchiveWriter(w, now)
	sites, err := s.dumpDatabase(ctx, aw, m)
	if err != nil {
		return nil, err
	}
	for _, id := range sites {
		st, err := aw.stream("volumes/"+id, func(w io.Writer) error { return s.cfg.Volumes.ExportVolume(ctx, id, w) })
		if err != nil {
			return nil, fmt.Errorf("backing up the volume of site %s: %w", id, err)
		}
		m.Volumes = append(m.Volumes, Volume{SiteID: id, Stream: st})
	}
	if err := aw.close(m); err != nil {
		return nil, err
	}
	return m, nil
}

// dumpDatabase writes every table from one snapshot and returns the sites
// with a volume to back up, as of that snapshot.
func (s *Service) dumpDatabase(ctx context.Context, aw *archiveWriter, m *Manifest) ([]string, error) {
	conn, err := s.cfg.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("starting snapshot: %w", err)
	}
	defer tx.Rollback(context.Background())
	if err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&m.SchemaVersion); err != nil {
		return nil, fmt.Errorf("reading schema version: %w", err)
	}
	if m.Tables, err = tables(ctx, tx, s.cfg.Schema); err != nil {
		return nil, err
	}
	for i := range m.Tables {
		t := &m.Tables[i]
		if t.Stream, err = aw.stream("db/"+t.Table, func(w io.Writer) error { return copyOut(ctx, tx, *t, w) }); err != nil {
			return nil, err
		}
	}
	if m.Sequences, err = sequences(ctx, tx, s.cfg.Schema); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, volumeSQL, m.Site)
	if err != nil {
		return nil, fmt.Errorf("listing sites: %w", err)
	}
	sites, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing sites: %w", err)
	}
	return sites, tx.Commit(ctx)
}

// WriteFile writes an archive (see Write) to path, which appears only
// once complete, and returns its manifest and size.
func (s *Service) WriteFile(ctx context.Context, path, siteID string) (*Manifest, int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return nil, 0, fmt.Errorf("creating archive: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	m, err := s.Write(ctx, tmp, siteID)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := os.Stat(tmp.Name())
	if err != nil {
		return nil, 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, 0, fmt.Errorf("creating archive: %w", err)
	}
	return m, fi.Size(), nil
}

// FileName is the name of an archive of schema made at t (a scheduled
// one: for the period starting at t).
func FileName(schema string, t time.Time) string {
	return "tenants-" + schema + "-" + t.UTC().Format("20060102T150405Z") + ".tar.gz"
}

// WriteRecorded writes the archive of the backup record rec to its path
// (see WriteFile) and records in store how that ended, even when ctx
// ended first.
func (s *Service) WriteRecorded(ctx context.Context, store *tenants.Store, rec *tenants.Backup, siteID string) (*Manifest, error) {
	m, size, err := s.WriteFile(ctx, rec.Path, siteID)
	errText, sites := "", 0
	if err != nil {
		errText = err.Error()
	} else {
		sites = len(m.Volumes)
	}
	if ferr := store.FinishBackup(context.WithoutCancel(ctx), rec.ID, size, sites, errText); ferr != nil {
		return nil, errors.Join(err, ferr)
	}
	return m, err
}

// ErrOneSite refuses a whole restore of an archive made of one site.
var ErrOneSite = errors.New("the archive is of one site")

// ErrNotEmpty refuses a whole restore onto a platform that has customers
// or sites.
var ErrNotEmpty = errors.New("the platform is not empty")

// Result is what a restore did.
type Result struct {
	Manifest *Manifest `json:"manifest"`
	// Sites are the sites whose volume was restored.
	Sites []string `json:"sites"`
	// Recreated is set when a single site restore made the site's rows
	// again (the site was gone); an existing site keeps its definition.
	Recreated bool `json:"recreated,omitempty"`
}

// Restore checks the archive at path whole, then restores it: the whole
// platform onto an empty one, or with site (an id or subdomain) that
// site alone. Nothing changes when the check fails.
func (s *Service) Restore(ctx context.Context, path, site string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening archive: %w", err)
	}
	defer f.Close()
	m, err := Verify(f, tenants.LatestVersion())
	if err != nil {
		return nil, err
	}
	if m.Site != "" && site == "" {
		return nil, fmt.Errorf("%w: it holds the volume of site %s only: restore that site (--site %s)", ErrOneSite, m.Site, m.Site)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	ar, err := newArchiveReader(f)
	if err != nil {
		return nil, err
	}
	if site != "" {
		return s.restoreSite(ctx, m, ar, site)
	}
	return s.restoreAll(ctx, m, ar)
}
