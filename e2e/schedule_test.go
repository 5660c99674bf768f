package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Two nodes back up on one schedule: one archive per period between them,
// none failed, the oldest pruned beyond keep; with the node that was
// making them killed, the other goes on, and the first takes up again
// after its restart.
func TestScheduledBackupsTwoNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	p := newPlatform(t, platformOptions{Tenants: fmt.Sprintf("backup {\n\t\t\tevery 2s\n\t\t\tkeep 3\n\t\t\tdir %s\n\t\t}", dir)})
	b := p.node()
	p.site("kept", nil)
	p.put(host("kept"), "note", "backed up")

	records := func() []tenants.Backup {
		list, err := p.store.ListBackups(ctx, tenants.Page{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	// periods counts the periods backed up so far, by every record ever
	// made: pruning removes records, so they are counted as they come.
	seen := map[time.Time]string{}
	made := func() int {
		for _, r := range records() {
			if r.Kind != tenants.BackupScheduled || r.PeriodStart == nil {
				t.Fatalf("unexpected backup record %+v", r)
			}
			if r.Status == tenants.BackupFailed {
				t.Fatalf("a scheduled backup failed: %s", r.Error)
			}
			if id, ok := seen[*r.PeriodStart]; ok && id != r.ID {
				t.Fatalf("period %s backed up twice: %s and %s", r.PeriodStart, id, r.ID)
			}
			seen[*r.PeriodStart] = r.ID
		}
		return len(seen)
	}
	eventually(t, 90*time.Second, "five periods backed up", func() bool { return made() >= 5 })

	// The archives on disk are the records kept: keep of them.
	eventually(t, 30*time.Second, "the oldest archives pruned", func() bool {
		var kept []string
		for _, r := range records() {
			if r.Status == tenants.BackupSucceeded {
				kept = append(kept, r.Path)
			}
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.tar.gz"))
		slices.Sort(kept)
		return len(kept) == 3 && slices.Equal(files, kept)
	})

	// Kill the node that made the last backup: the other makes the next.
	killed, other := p.caddy, b
	if last := records()[0]; strings.Contains(b.Logs(), last.Path) {
		killed, other = b, p.caddy
	}
	killed.Kill()
	before := made()
	eventually(t, 90*time.Second, "backups go on without the killed node", func() bool { return made() >= before+2 })
	if st, _, _, err := tryGetAt(other, host("kept"), "/", nil); err != nil || st != http.StatusOK {
		t.Fatalf("the other node serves: %d %v", st, err)
	}
	killed.Start()
	before = made()
	eventually(t, 90*time.Second, "backups go on after the restart", func() bool { return made() >= before+2 })
}
