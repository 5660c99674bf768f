package admin

import (
	"context"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The uptime route answers the site's intervals in the window, the
// seconds per state and the percentage with asleep left out; it takes
// the site's subdomain, refuses a bad window naming it, and a site it
// does not know is 404.
func TestSiteUptimeRoute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ta := newTestAPI(t, manage.Config{})
	_, _, sites := ta.fixture("up")
	site := sites[0]
	now := time.Now().Truncate(time.Second)
	for _, c := range []struct {
		state string
		ago   time.Duration
	}{
		{tenants.UptimeUp, 50 * time.Minute},     // 20m up
		{tenants.UptimeAsleep, 30 * time.Minute}, // 20m asleep: left out
		{tenants.UptimeFailed, 10 * time.Minute}, // 5m failed
		{tenants.UptimeUp, 5 * time.Minute},      // 5m up, open
	} {
		if err := ta.store.RecordUptime(ctx, site.ID, c.state, now.Add(-c.ago)); err != nil {
			t.Fatal(err)
		}
	}
	var u SiteUptime
	if status, _, raw := ta.do("GET", "/api/v1/sites/up/uptime?window=1h", nil, &u); status != 200 || len(u.Intervals) != 4 ||
		u.Intervals[3].EndedAt != nil || u.SiteID != site.ID {
		t.Fatalf("an hour: %d %s", status, raw)
	}
	if u.UptimePercent == nil || *u.UptimePercent < 83 || *u.UptimePercent > 84 { // 25m of 30m
		t.Fatalf("uptime percent %v, want about 83.3: %+v", u.UptimePercent, u.Seconds)
	}
	if a := u.Seconds[tenants.UptimeAsleep]; a < 1199 || a > 1201 {
		t.Fatalf("asleep seconds %v", a)
	}
	var recent SiteUptime
	if status, _, raw := ta.do("GET", "/api/v1/sites/"+site.ID+"/uptime?window=2m", nil, &recent); status != 200 ||
		len(recent.Intervals) != 1 || recent.UptimePercent == nil || *recent.UptimePercent != 100 {
		t.Fatalf("two minutes: %d %s", status, raw)
	}
	var e errorBody
	for _, q := range []string{"window=31d", "window=30s", "window=soon"} {
		if status, _, raw := ta.do("GET", "/api/v1/sites/up/uptime?"+q, nil, &e); status != 422 || e.Error.Field != "window" {
			t.Errorf("%s: %d %s, want 422 naming window", q, status, raw)
		}
	}
	if status, _, _ := ta.do("GET", "/api/v1/sites/nosuch/uptime", nil, &e); status != 404 {
		t.Errorf("uptime of no site: %d", status)
	}
}
