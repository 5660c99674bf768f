package manage

import (
	"context"
	"time"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Bounds of an uptime window.
const (
	// DefaultUptimeWindow is the window when none is given.
	DefaultUptimeWindow = 24 * time.Hour
	// MaxUptimeWindow is the longest window: the history is kept 30 days.
	MaxUptimeWindow = tenants.UptimeRetention
)

// SiteUptime is a site's uptime history over a window.
//
// Asleep is no downtime and no uptime either: a site stopped because
// nobody used it (or by an operator) wakes at the next request. The
// percentage leaves it out, with the time nothing is known of (before
// the site's first start, or a node recorded nothing):
// UptimePercent = up / (up + unhealthy + failed) × 100, and is absent
// when that is 0 (the site slept or was unknown all the window).
type SiteUptime struct {
	SiteID string    `json:"site_id"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// Intervals are the states the site was in, oldest first, clipped to
	// the window; the last one has no ended_at while it lasts.
	Intervals []tenants.UptimeInterval `json:"intervals"`
	// Seconds is how long the site was in each state within the window
	// (up, asleep, failed, unhealthy; every state present).
	Seconds map[string]float64 `json:"seconds"`
	// UptimePercent is the share of up in the time the site was meant to
	// serve (up, unhealthy or failed): asleep and unknown time excluded.
	UptimePercent *float64 `json:"uptime_percent,omitempty"`
}

// SiteUptime returns the uptime history of the site ref names over the
// last window (0: DefaultUptimeWindow).
func (s *Service) SiteUptime(ctx context.Context, ref string, window time.Duration) (*SiteUptime, error) {
	switch {
	case window == 0:
		window = DefaultUptimeWindow
	case window < time.Minute:
		return nil, invalid("window", "must be at least 1m")
	case window > MaxUptimeWindow:
		return nil, invalid("window", "must be at most 30 days (720h): the history is kept that long")
	}
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	until := time.Now().UTC()
	since := until.Add(-window)
	list, err := s.store.Uptime(ctx, site.ID, since, until)
	if err != nil {
		return nil, fail("site", err)
	}
	return uptimeOf(site.ID, since, until, list), nil
}

// uptimeOf sums up intervals over [since, until).
func uptimeOf(siteID string, since, until time.Time, list []tenants.UptimeInterval) *SiteUptime {
	u := &SiteUptime{SiteID: siteID, Since: since, Until: until, Intervals: list, Seconds: map[string]float64{}}
	if u.Intervals == nil {
		u.Intervals = []tenants.UptimeInterval{}
	}
	for _, st := range tenants.UptimeStates {
		u.Seconds[st] = 0
	}
	for _, in := range list {
		end := until
		if in.EndedAt != nil && in.EndedAt.Before(until) {
			end = *in.EndedAt
		}
		start := in.StartedAt
		if start.Before(since) {
			start = since
		}
		if end.After(start) {
			u.Seconds[in.State] += end.Sub(start).Seconds()
		}
	}
	meant := u.Seconds[tenants.UptimeUp] + u.Seconds[tenants.UptimeUnhealthy] + u.Seconds[tenants.UptimeFailed]
	if meant > 0 {
		pct := 100 * u.Seconds[tenants.UptimeUp] / meant
		u.UptimePercent = &pct
	}
	return u
}
