package manage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Backup is the record of one backup archive; see tenants.Backup.
type Backup = tenants.Backup

// BackupInput asks for a backup: of the whole platform, or with Site (an
// id or subdomain) of the database and that site's volume; to Path, or a
// file named after the time in the configured backup directory.
type BackupInput struct {
	Site string `json:"site_id,omitempty"`
	Path string `json:"-"`
}

// RestoreResult is what a restore did; see backup.Result.
type RestoreResult = backup.Result

var errNoBackups = &Error{Code: NotConfigured, Message: "backups are not configured (tenants option backup)"}

// BackupsConfigured reports whether this server makes backups, and
// whether it has a directory to write them to without a path.
func (s *Service) BackupsConfigured() (configured, dir bool) {
	return s.backups != nil, s.backupDir != ""
}

// CreateBackup writes a backup archive and records it (running while it
// is written, then with its outcome and size).
func (s *Service) CreateBackup(ctx context.Context, actor string, in BackupInput) (*Backup, error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	rec := &Backup{Node: s.node}
	siteID := ""
	if in.Site != "" {
		site, err := s.site(ctx, "site", in.Site)
		if err != nil {
			return nil, err
		}
		siteID = site.ID
		rec.SiteID = &siteID
	}
	path := in.Path
	if path == "" {
		if s.backupDir == "" {
			return nil, invalid("path", "no backup directory is configured (tenants option backup dir): give a path")
		}
		path = filepath.Join(s.backupDir, backup.FileName(s.schema, time.Now()))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, invalid("path", "%v", err)
	}
	rec.Path = abs
	if err := s.store.StartBackup(ctx, rec); err != nil {
		return nil, fail("backup", err)
	}
	if _, err := s.backups.WriteRecorded(ctx, s.store, rec, siteID); err != nil {
		s.log.Error("backup failed", zap.String("actor", actor), zap.Error(err))
		return nil, &Error{Code: Internal, Message: "the backup failed", Err: err}
	}
	return s.GetBackup(ctx, rec.ID)
}

// ListBackups returns a page of backups, newest first.
func (s *Service) ListBackups(ctx context.Context, page Page) ([]Backup, error) {
	list, err := s.store.ListBackups(ctx, page)
	return list, fail("backup", err)
}

// GetBackup returns the record of the backup with id.
func (s *Service) GetBackup(ctx context.Context, id string) (*Backup, error) {
	b, err := s.store.GetBackup(ctx, id)
	return b, fail("backup", err)
}

// OpenBackup opens the archive of the backup with id, for download. Only
// a succeeded backup whose file is on this node's disk opens.
func (s *Service) OpenBackup(ctx context.Context, id string) (*Backup, *os.File, error) {
	b, err := s.GetBackup(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if b.Status != tenants.BackupSucceeded {
		return nil, nil, conflict("", "the backup %s", b.Status)
	}
	f, err := os.Open(b.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, conflict("", "the archive is not on this server's disk (made by %s)", b.Node)
	}
	if err != nil {
		return nil, nil, fail("backup", err)
	}
	return b, f, nil
}

// RestoreBackup restores the recorded backup with id; see RestoreFile.
func (s *Service) RestoreBackup(ctx context.Context, actor, id, site string) (*RestoreResult, error) {
	b, f, err := s.OpenBackup(ctx, id)
	if err != nil {
		return nil, err
	}
	f.Close()
	return s.RestoreFile(ctx, actor, b.Path, site)
}

// RestoreFile restores the archive at path after checking it whole: the
// whole platform onto an empty one, or with site (id or subdomain) that
// one site into the running platform. A damaged archive, or one of a
// newer schema, changes nothing.
func (s *Service) RestoreFile(ctx context.Context, actor, path, site string) (*RestoreResult, error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	if site != "" && !plausibleRef(site) {
		return nil, invalid("site_id", "not a site id or subdomain")
	}
	res, err := s.backups.Restore(ctx, path, site)
	switch {
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrNewerSchema):
		return nil, &Error{Code: Invalid, Field: "archive", Message: err.Error()}
	case errors.Is(err, backup.ErrOneSite):
		return nil, &Error{Code: Invalid, Field: "site_id", Message: err.Error()}
	case errors.Is(err, backup.ErrNotEmpty):
		return nil, &Error{Code: Conflict, Message: err.Error()}
	case errors.Is(err, backup.ErrNoSuchSite):
		return nil, &Error{Code: NotFound, Field: "site", Message: err.Error()}
	case errors.Is(err, os.ErrNotExist):
		return nil, &Error{Code: NotFound, Field: "archive", Message: fmt.Sprintf("no such file: %s", path)}
	case err != nil:
		return nil, fail("backup", err)
	}
	s.log.Info("restored backup", zap.String("actor", actor), zap.String("archive", path), zap.String("site", site))
	return res, nil
}
