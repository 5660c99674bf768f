package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// What the web UI will do through the API: make a backup, list it,
// download its archive (whole and checked), restore one site from it.
func TestBackupAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	// A long period: the one scheduled backup the start makes is beside
	// the point.
	p := newPlatform(t, platformOptions{
		Tenants: fmt.Sprintf("backup {\n\t\t\tevery 1000h\n\t\t\tdir %s\n\t\t}", dir),
		Sites:   fmt.Sprintf("http://%s:{HTTP_PORT} {\n\ttenant_admin\n}", adminHost),
	})
	token, _, err := p.store.CreateAPIKey(ctx, "e2e", "operator", tenants.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	ap := &adminPlatform{testPlatform: p, token: token}
	p.site("alpha", nil)
	p.put(host("alpha"), "note", "alpha v1")

	var b tenants.Backup
	if st, _, body := ap.api(token, http.MethodPost, "/api/v1/backups", map[string]string{"site_id": "alpha"}, &b); st != http.StatusCreated {
		t.Fatalf("POST /backups: %d %s", st, body)
	}
	if b.Status != tenants.BackupSucceeded || b.Kind != tenants.BackupManual || b.Sites != 1 || b.SizeBytes == 0 {
		t.Fatalf("the backup: %+v", b)
	}
	var list struct{ Items []tenants.Backup }
	if st, _, body := ap.api(token, http.MethodGet, "/api/v1/backups", nil, &list); st != http.StatusOK || !containsBackup(list.Items, b.ID) {
		t.Fatalf("GET /backups: %d %s", st, body)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+p.caddy.HTTP+"/api/v1/backups/"+b.ID+"/archive", nil)
	req.Host = adminHost
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	_, err = archive.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/gzip" || int64(archive.Len()) != b.SizeBytes {
		t.Fatalf("download: %d %s, %d bytes of %d, %v", resp.StatusCode, resp.Header.Get("Content-Type"), archive.Len(), b.SizeBytes, err)
	}
	if m, err := backup.Verify(&archive, tenants.LatestVersion()); err != nil || m.Site == "" || len(m.Volumes) != 1 {
		t.Fatalf("the downloaded archive: %+v %v", m, err)
	}

	p.put(host("alpha"), "note", "alpha v2")
	var res backup.Result
	if st, _, body := ap.api(token, http.MethodPost, "/api/v1/backups/"+b.ID+"/restore", map[string]string{"site_id": "alpha"}, &res); st != http.StatusOK || len(res.Sites) != 1 {
		t.Fatalf("POST restore: %d %s", st, body)
	}
	eventually(t, 30*time.Second, "alpha serves its backed-up file", func() bool {
		st, body, _, err := p.tryGet(host("alpha"), "/file?name=note", nil)
		return err == nil && st == http.StatusOK && body == "alpha v1"
	})
	// The archive holds alpha's volume only: no whole restore from it.
	if st, _, body := ap.api(token, http.MethodPost, "/api/v1/backups/"+b.ID+"/restore", map[string]string{}, nil); st/100 != 4 {
		t.Fatalf("whole restore of a single-site archive: %d %s", st, body)
	}
}

func containsBackup(list []tenants.Backup, id string) bool {
	for _, b := range list {
		if b.ID == id {
			return true
		}
	}
	return false
}
