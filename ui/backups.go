package ui

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The backups page: the archives made (by hand or on schedule), a
// backup now of the platform or one site, a download of an archive on
// this server's disk, and a restore of one, all through the admin
// service's backup calls the API makes.

func (u *UI) routesBackups() {
	u.op("GET /backups", u.backups)
	u.op("POST /backups", u.createBackup)
	u.op("GET /backups/{id}/download", u.downloadBackup)
	u.op("POST /backups/{id}/restore", u.restoreBackup)
}

// backupsPage is how many backups the page lists at a time.
const backupsPage = 50

// restoreWord is what an operator types to confirm a restore.
const restoreWord = "restore"

// backupsData is the backups page.
type backupsData struct {
	Backups []backupRow
	// After is the "after" of the next page, "" when this is the last.
	After string
	Sites []manage.Site
	// Configured and Dir say whether this server makes backups, into a
	// directory of its own.
	Configured, Dir bool
	RestoreWord     string
}

// backupRow is a backup with the subdomain of its site.
type backupRow struct {
	manage.Backup
	Site string // "" for the whole platform
	File string
}

func (u *UI) backups(w http.ResponseWriter, r *http.Request, req *request) error {
	v, err := u.backupsView(r, req)
	if err != nil {
		return err
	}
	u.render(w, http.StatusOK, "backups", v)
	return nil
}

func (u *UI) backupsView(r *http.Request, req *request) (*view, error) {
	ctx := r.Context()
	list, err := u.svc.ListBackups(ctx, manage.Page{Limit: backupsPage, After: r.URL.Query().Get("after")})
	if err != nil {
		return nil, err
	}
	sites, err := u.svc.AllSites(ctx, manage.SiteFilter{})
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(sites))
	for _, s := range sites {
		names[s.ID] = s.Subdomain
	}
	d := &backupsData{Sites: sites, RestoreWord: restoreWord}
	d.Configured, d.Dir = u.svc.BackupsConfigured()
	for _, b := range list {
		row := backupRow{Backup: b, File: filepath.Base(b.Path)}
		if b.SiteID != nil {
			row.Site = names[*b.SiteID]
			if row.Site == "" {
				row.Site = *b.SiteID // a site deleted since
			}
		}
		d.Backups = append(d.Backups, row)
	}
	if len(list) == backupsPage {
		d.After = list[len(list)-1].ID
	}
	return u.view(r, req, "Backups", "backups", d), nil
}

// backupsError shows the backups page again with err by its form.
func (u *UI) backupsError(w http.ResponseWriter, r *http.Request, req *request, err error) error {
	v, verr := u.backupsView(r, req)
	if verr != nil {
		return err
	}
	v.withError(err, r.PostForm)
	v.Error = errorText(err)
	u.render(w, statusOf(err), "backups", v)
	return nil
}

func (u *UI) createBackup(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	b, err := u.svc.CreateBackup(r.Context(), req.User.Email, manage.BackupInput{Site: strings.TrimSpace(r.PostForm.Get("site_id"))})
	if err != nil {
		return u.backupsError(w, r, req, err)
	}
	what := "the platform"
	if b.SiteID != nil {
		what = "site " + r.PostForm.Get("site_id")
	}
	return u.redirect(w, r, req, "/backups", fmt.Sprintf("Backed up %s: %s, %s.", what, filepath.Base(b.Path), humanBytes(b.SizeBytes)))
}

// downloadBackup streams the archive from disk: never read whole.
func (u *UI) downloadBackup(w http.ResponseWriter, r *http.Request, req *request) error {
	b, f, err := u.svc.OpenBackup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading backup archive: %w", err)
	}
	name := strings.Map(func(c rune) rune {
		if c == '"' || c == '\\' || c < ' ' || c > '~' {
			return '_'
		}
		return c
	}, filepath.Base(b.Path))
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		if _, err := io.Copy(w, f); err != nil {
			u.log.Debug("backup download ended early")
		}
	}
	return nil
}

func (u *UI) restoreBackup(w http.ResponseWriter, r *http.Request, req *request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	if strings.TrimSpace(strings.ToLower(r.PostForm.Get("confirm"))) != restoreWord {
		return u.backupsError(w, r, req, &manage.Error{Code: manage.Invalid, Field: "confirm",
			Message: fmt.Sprintf("type %q to confirm the restore", restoreWord)})
	}
	site := strings.TrimSpace(r.PostForm.Get("site_id"))
	res, err := u.svc.RestoreBackup(r.Context(), req.User.Email, r.PathValue("id"), site)
	if err != nil {
		return u.backupsError(w, r, req, err)
	}
	return u.redirect(w, r, req, "/backups", restoreSummary(site, res))
}

// restoreSummary says what a restore did.
func restoreSummary(site string, res *manage.RestoreResult) string {
	var b strings.Builder
	if site != "" {
		b.WriteString("Restored site " + site)
		if res.Recreated {
			b.WriteString(" (made again: it was gone)")
		}
	} else {
		b.WriteString("Restored the platform")
	}
	if m := res.Manifest; m != nil {
		fmt.Fprintf(&b, " from the archive of %s (schema version %d)", m.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), m.SchemaVersion)
	}
	switch len(res.Sites) {
	case 0:
		b.WriteString("; no site volume was in it")
	case 1:
		b.WriteString("; 1 site volume restored")
	default:
		fmt.Fprintf(&b, "; %d site volumes restored", len(res.Sites))
	}
	return b.String() + "."
}

// errorText is err in the service's words, for the top of a page whose
// forms (one per row) have no single place beside a field for it.
func errorText(err error) string {
	var me *manage.Error
	if !errors.As(manage.Wrap(err), &me) || me.Code == manage.Internal {
		return "Something went wrong on our side; it has been logged."
	}
	return me.Message
}

// backupWord says a backup's status in words.
func backupWord(status string) string {
	switch status {
	case tenants.BackupSucceeded:
		return "succeeded"
	}
	return strings.ReplaceAll(status, "_", " ")
}

func init() { funcs["backupWord"] = backupWord }
