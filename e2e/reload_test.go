package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A reload while PostgreSQL is down leaves the platform's database retry
// running on what the platform owns, not on the unloaded config: the
// retry after the reload neither panics nor races, and the site serves
// once the database is back.
func TestReloadWhileDatabaseDown(t *testing.T) {
	t.Parallel()
	dsn, pgUp, pgDown := ownPostgres(t)
	p := newPlatform(t, platformOptions{DatabaseURL: dsn, Schema: "reloaddown", Race: true, BeforeCaddy: func(p *testPlatform) {
		p.siteQuiet("early", nil)
		pgDown()
	}})
	if err := p.caddy.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	retries := func() int { return strings.Count(p.caddy.Logs(), "database still not ready") }
	before := retries()
	eventually(t, 30*time.Second, "a database retry after the reload", func() bool {
		return !p.caddy.Alive() || retries() > before
	})
	if !p.caddy.Alive() {
		t.Fatal("caddy exited at the database retry after a reload")
	}
	pgUp()
	p.databaseBack("early")
}

// A reload while sites start, with a grace period shorter than the
// starts: the requests the old config took are still answered, by the
// site or with the error page of one that exited during its start, and
// nothing races on the config going away.
func TestReloadDuringColdStart(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{Race: true, Global: "grace_period 500ms"})
	slow := p.site("reloadslow", map[string]string{"LISTEN_DELAY": "4s"})
	failing := p.site("reloadfail", map[string]string{"EXIT_AT_START": "4s"})
	type result struct {
		status int
		body   string
		err    error
	}
	request := func(sub string) chan result {
		done := make(chan result, 1)
		go func() {
			st, body, _, err := p.tryGet(host(sub), "/", nil)
			done <- result{st, body, err}
		}()
		return done
	}
	slowDone, failDone := request("reloadslow"), request("reloadfail")
	eventually(t, 15*time.Second, "the starts are under way", func() bool { return p.running(slow.ID) && p.running(failing.ID) })
	if err := p.caddy.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := <-slowDone; r.err != nil || r.status != http.StatusOK || r.body != "hello from reloadslow" {
		t.Fatalf("slow site across the reload: %d %q %v", r.status, r.body, r.err)
	}
	if r := <-failDone; r.err != nil || r.status != http.StatusBadGateway {
		t.Fatalf("failing site across the reload: %d %q %v", r.status, r.body, r.err)
	}
	if st, body, _ := p.get(host("reloadslow"), "/", nil); st != http.StatusOK || body != "hello from reloadslow" {
		t.Fatalf("after the reload: %d %q", st, body)
	}
	if !p.caddy.Alive() {
		t.Fatal("caddy exited")
	}
}
