package admin

import (
	"io"
	"net/http"
	"path/filepath"
	"strconv"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Backup bodies and answers are the admin service's.
type (
	Backup        = manage.Backup
	RestoreResult = manage.RestoreResult
)

// BackupInput asks for a backup of the platform, or of the database and
// one site's volume.
type BackupInput struct {
	Site string `json:"site_id,omitempty"`
}

// RestoreInput restores one site (id or subdomain) of an archive, or with
// no site the whole platform onto an empty one.
type RestoreInput struct {
	Site string `json:"site_id,omitempty"`
}

type backupList struct{ list[Backup] }

func (a *API) listBackups(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.svc.ListBackups(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(b *Backup) string { return b.ID }))
	return nil
}

func (a *API) createBackup(w http.ResponseWriter, r *http.Request) error {
	var in BackupInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	b, err := a.svc.CreateBackup(r.Context(), actor(r), manage.BackupInput{Site: in.Site})
	if err != nil {
		return err
	}
	return created(w, "/backups/"+b.ID, b)
}

func (a *API) getBackup(w http.ResponseWriter, r *http.Request) error {
	b, err := a.svc.GetBackup(r.Context(), ref(r))
	return ok(w, b, err)
}

// downloadBackup streams the archive, from this server's disk.
func (a *API) downloadBackup(w http.ResponseWriter, r *http.Request) error {
	b, f, err := a.svc.OpenBackup(r.Context(), ref(r))
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", `attachment; filename="`+filepath.Base(b.Path)+`"`)
	if fi, err := f.Stat(); err == nil {
		h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f)
	return nil
}

func (a *API) restoreBackup(w http.ResponseWriter, r *http.Request) error {
	var in RestoreInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	res, err := a.svc.RestoreBackup(r.Context(), actor(r), ref(r), in.Site)
	return ok(w, res, err)
}
