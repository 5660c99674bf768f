package ui

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func TestUptimeChart(t *testing.T) {
	until := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	since := until.Add(-24 * time.Hour)
	at := func(h int) *time.Time { v := since.Add(time.Duration(h) * time.Hour); return &v }
	u := &manage.SiteUptime{Since: since, Until: until, Seconds: map[string]float64{"up": 7200, "asleep": 3600, "failed": 0, "unhealthy": 60},
		Intervals: []tenants.UptimeInterval{
			{State: "up", StartedAt: *at(1), EndedAt: at(3)},
			{State: "unhealthy", StartedAt: *at(3), EndedAt: at(3)},
			{State: "asleep", StartedAt: *at(3), EndedAt: at(4)},
			{State: "up", StartedAt: *at(23)},
		}}
	out := string(uptimeChart(u))
	dec := xml.NewDecoder(strings.NewReader(out))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, out)
		}
	}
	// One rect for the window, one per interval; a zero-length incident
	// still gets a visible mark.
	if n := strings.Count(out, "<rect "); n != 5 {
		t.Fatalf("%d rects, want 5:\n%s", n, out)
	}
	for _, want := range []string{`class="bar warn" x="50.00" y="4" width="0.50"`, "up 2h 0m", "unhealthy 1m", "asleep 1h 0m", "<td>", "now"} {
		if !strings.Contains(out, want) {
			t.Errorf("chart lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "style=") {
		t.Error("inline style: the CSP blocks it")
	}
	if empty := string(uptimeChart(&manage.SiteUptime{Since: since, Until: until})); !strings.Contains(empty, "No history yet") {
		t.Errorf("an empty history: %s", empty)
	}
}
