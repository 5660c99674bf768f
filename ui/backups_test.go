package ui

import (
	"archive/tar"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/agistaffers/caddy-multitenant/backup"
	"github.com/agistaffers/caddy-multitenant/internal/pgtest"
	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// emptyVolumes are sites' volumes with nothing in them: the backups here
// are of the database, the volumes' part is the e2e suite's (real
// Docker).
type emptyVolumes struct{}

func (emptyVolumes) ExportVolume(ctx context.Context, siteID string, w io.Writer) error {
	return tar.NewWriter(w).Close()
}

func (emptyVolumes) ImportVolume(ctx context.Context, siteID string, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// newBackupsUI is newTestUI with a real backup service over the test
// schema, writing into a temporary directory.
func newBackupsUI(t *testing.T) *testUI {
	t.Helper()
	ctx := context.Background()
	schema := pgtest.Schema(t)
	pool := pgtest.Pool(t, schema)
	if _, err := tenants.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	store := tenants.NewStore(pool, testStoreOptions)
	svc := manage.New(manage.Config{Store: store, Node: "node-1", BackupDir: t.TempDir(), Schema: schema,
		Backups: backup.New(backup.Config{Pool: pool, Schema: schema, Volumes: emptyVolumes{}})})
	u, err := New(Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	tu := &testUI{t: t, store: store, svc: svc, ui: u}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	tu.url = srv.URL
	return tu
}

var regexpDownload = regexp.MustCompile(`href="(/backups/[^/"]+/download)"`)

func TestBackupsPage(t *testing.T) {
	t.Parallel()
	tu := newBackupsUI(t)
	tu.operator("ops@example.org")
	tu.releasedSite("", "ada")
	b := tu.browser()
	b.login("ops@example.org")

	status, _, body := b.get("/backups")
	if status != http.StatusOK || !strings.Contains(body, "No backups yet.") || !strings.Contains(body, `<option value="ada"`) {
		t.Fatalf("backups: %d\n%s", status, body)
	}
	status, loc, _ := b.post("/backups", url.Values{"site_id": {"ada"}})
	if status != http.StatusSeeOther || loc != "/backups" {
		t.Fatalf("back up ada: %d %q", status, loc)
	}
	_, _, body = b.get("/backups")
	if flash := regexpFlash.FindString(body); !strings.Contains(flash, "Backed up site ada") {
		t.Fatalf("flash: %s\n%s", flash, body)
	}
	if !strings.Contains(body, "site ada") || !strings.Contains(body, "succeeded") || !strings.Contains(body, "node-1") {
		t.Fatalf("the backup is not listed:\n%s", body)
	}
	m := regexpDownload.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no download link:\n%s", body)
	}

	// The download streams the file with its length and name.
	resp, err := b.c.Get(tu.url + m[1])
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="tenants-`) || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("download: %d %v, %d bytes", resp.StatusCode, resp.Header, len(data))
	}
	id := strings.Split(m[1], "/")[2]

	// A restore needs its confirmation word.
	restore := "/backups/" + id + "/restore"
	status, _, body = b.post(restore, url.Values{"site_id": {"ada"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, `type &#34;restore&#34; to confirm`) {
		t.Fatalf("restore without confirming: %d\n%s", status, body)
	}
	status, loc, body = b.post(restore, url.Values{"site_id": {"ada"}, "confirm": {"restore"}})
	if status != http.StatusSeeOther {
		t.Fatalf("restore ada: %d\n%s", status, body)
	}
	_, _, body = b.get(loc)
	if flash := regexpFlash.FindString(body); !strings.Contains(flash, "Restored site ada") {
		t.Fatalf("restore flash: %s", flash)
	}
	// The whole platform restores only onto an empty one: the service's
	// message shows.
	status, _, body = b.post(restore, url.Values{"confirm": {"restore"}})
	if status < 400 || status == http.StatusInternalServerError || !strings.Contains(body, `class="form-error"`) {
		t.Fatalf("restore of the platform onto a full one: %d\n%s", status, body)
	}
	t.Logf("restore onto a full platform: %d %s", status, regexp.MustCompile(`<p class="form-error"[^>]*>[^<]*</p>`).FindString(body))

	// A backup of the whole platform, and its restore refused onto a
	// platform that is not empty.
	if status, _, _ := b.post("/backups", url.Values{"site_id": {""}}); status != http.StatusSeeOther {
		t.Fatalf("back up the platform: %d", status)
	}
	_, _, body = b.get("/backups")
	if flash := regexpFlash.FindString(body); !strings.Contains(flash, "Backed up the platform") || !strings.Contains(body, "the platform") {
		t.Fatalf("platform backup: %s", flash)
	}
	m = regexpDownload.FindStringSubmatch(body) // the newest first
	status, _, body = b.post("/backups/"+strings.Split(m[1], "/")[2]+"/restore", url.Values{"confirm": {"restore"}})
	if status != http.StatusConflict && status != http.StatusUnprocessableEntity {
		t.Fatalf("restore of the platform onto a full one: %d\n%s", status, body)
	}

	if status, _, _ := b.get("/backups/00000000-0000-0000-0000-000000000000/download"); status != http.StatusNotFound {
		t.Fatalf("download of no backup: %d", status)
	}
	status, _, body = b.post("/backups", url.Values{"site_id": {"nobody"}})
	if status != http.StatusUnprocessableEntity && status != http.StatusNotFound {
		t.Fatalf("back up no site: %d\n%s", status, body)
	}
}

func TestBackupsNotConfigured(t *testing.T) {
	t.Parallel()
	tu := newTestUI(t, manage.Config{})
	tu.operator("ops@example.org")
	b := tu.browser()
	b.login("ops@example.org")
	status, _, body := b.get("/backups")
	if status != http.StatusOK || !strings.Contains(body, "Backups are not configured") || strings.Contains(body, "Back up now</button>") {
		t.Fatalf("backups: %d\n%s", status, body)
	}
	status, _, body = b.post("/backups", nil)
	if status != http.StatusNotImplemented || !strings.Contains(body, "backups are not configured") {
		t.Fatalf("back up without backups: %d\n%s", status, body)
	}
	c, _ := tu.customerUser("cu@example.org")
	_ = c
	cb := tu.browser()
	cb.login("cu@example.org")
	if status, _, _ := cb.get("/backups"); status != http.StatusNotFound {
		t.Fatalf("backups for a customer's user: %d", status)
	}
}
