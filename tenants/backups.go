package tenants

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds and statuses of a backup.
const (
	BackupManual    = "manual"
	BackupScheduled = "scheduled"

	BackupRunning   = "running"
	BackupSucceeded = "succeeded"
	BackupFailed    = "failed"
)

// Backup is the record of one backup archive.
type Backup struct {
	ID   string `json:"id" db:"id"`
	Kind string `json:"kind" db:"kind"`
	// SiteID is the one site of a single-site backup; nil for the whole
	// platform.
	SiteID *string `json:"site_id,omitempty" db:"site_id"`
	// PeriodStart is the schedule's period of a scheduled backup.
	PeriodStart *time.Time `json:"period_start,omitempty" db:"period_start"`
	// Node made the archive, and Path is where it is on that node's disk.
	Node       string     `json:"node" db:"node"`
	Path       string     `json:"path" db:"path"`
	Status     string     `json:"status" db:"status"`
	SizeBytes  int64      `json:"size_bytes" db:"size_bytes"`
	Sites      int        `json:"sites" db:"sites"`
	Error      string     `json:"error,omitempty" db:"error"`
	StartedAt  time.Time  `json:"started_at" db:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty" db:"finished_at"`
}

const backupColumns = `id, kind, site_id, period_start, node, path, status, size_bytes, sites, error, started_at, finished_at`

// StartBackup records a manual backup as running; b gets its id and start.
func (s *Store) StartBackup(ctx context.Context, b *Backup) error {
	rec, err := collectOne[Backup](s.pool.Query(ctx, `INSERT INTO backups (kind, site_id, node, path)
		VALUES ('manual', $1, $2, $3) RETURNING `+backupColumns, b.SiteID, b.Node, b.Path))
	if err != nil {
		return mapError("recording backup", err)
	}
	*b = *rec
	return nil
}

// ClaimScheduledBackup records the backup of period as running for the
// durable job jobID, and reports whether the caller is to make it: false
// when the period has one already (made or running by another job). A
// retry of the same job takes its own unfinished period over.
func (s *Store) ClaimScheduledBackup(ctx context.Context, period time.Time, jobID int64, node, path string) (*Backup, bool, error) {
	rec, err := collectOne[Backup](s.pool.Query(ctx, `INSERT INTO backups (kind, period_start, job_id, node, path)
		VALUES ('scheduled', $1, $2, $3, $4)
		ON CONFLICT (period_start) DO UPDATE
			SET node = excluded.node, path = excluded.path, status = 'running', error = '',
				started_at = now(), finished_at = NULL
			WHERE backups.job_id = excluded.job_id AND backups.status <> 'succeeded'
		RETURNING `+backupColumns, period.UTC(), jobID, node, path))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, mapError("claiming scheduled backup", err)
	}
	return rec, true, nil
}

// FinishBackup records how the backup with id ended; errText is "" on
// success.
func (s *Store) FinishBackup(ctx context.Context, id string, size int64, sites int, errText string) error {
	status := BackupSucceeded
	if errText != "" {
		status = BackupFailed
	}
	_, err := s.pool.Exec(ctx, `UPDATE backups SET status = $2, size_bytes = $3, sites = $4, error = $5, finished_at = now()
		WHERE id = $1`, id, status, size, sites, errText)
	return mapError("recording backup", err)
}

// ListBackups returns a page of backups, newest first.
func (s *Store) ListBackups(ctx context.Context, p Page) ([]Backup, error) {
	after, err := p.after()
	if err != nil {
		return nil, err
	}
	list, err := collectAll[Backup](s.pool.Query(ctx, `SELECT `+backupColumns+` FROM backups
		WHERE $1::uuid IS NULL OR (started_at, id) < (SELECT started_at, id FROM backups WHERE id = $1)
		ORDER BY started_at DESC, id DESC LIMIT $2`, after, p.limit()))
	return list, mapError("listing backups", err)
}

// GetBackup returns the backup with id.
func (s *Store) GetBackup(ctx context.Context, id string) (*Backup, error) {
	if err := validateID("id", id); err != nil {
		return nil, ErrNotFound
	}
	b, err := collectOne[Backup](s.pool.Query(ctx, `SELECT `+backupColumns+` FROM backups WHERE id = $1`, id))
	return b, mapError("reading backup", err)
}

// PruneScheduledBackups forgets the scheduled backups older than the keep
// newest successful ones and returns them, for their files to be removed.
func (s *Store) PruneScheduledBackups(ctx context.Context, keep int) ([]Backup, error) {
	list, err := collectAll[Backup](s.pool.Query(ctx, `DELETE FROM backups WHERE kind = 'scheduled' AND status <> 'running'
		AND started_at < (SELECT min(started_at) FROM (
			SELECT started_at FROM backups WHERE kind = 'scheduled' AND status = 'succeeded'
			ORDER BY started_at DESC LIMIT $1) newest
			HAVING count(*) = $1)
		RETURNING `+backupColumns, keep))
	return list, mapError("pruning backups", err)
}
