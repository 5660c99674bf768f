package ui

import (
	"html/template"
	"net/http"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

func (u *UI) routesOverview() {
	u.op("GET /{$}", u.overview)
	u.op("/", func(http.ResponseWriter, *http.Request, *request) error { return notFound })
	u.cu("/", func(http.ResponseWriter, *http.Request, *request) error { return notFound })
}

// overviewData is the platform at a glance.
type overviewData struct {
	// States counts sites by container state; Total all sites.
	States     map[string]int
	Total      int
	Running    int
	// Paused are the sites asleep but warm: they hold a slot under
	// MaxRunning too (Slots is both).
	Paused, Slots int
	MaxRunning    int
	// ColdStarts and Failures are the last 24 hours' starts visitors
	// waited for, and failed starts.
	ColdStarts, Failures int
	// Failed are the sites whose last start failed, newest first.
	Failed  []manage.Site
	Audit   []tenants.AuditEntry
	Figures *manage.PlatformFigures
	// Charts are the figures drawn (platformCharts) and the memory of each
	// running site.
	Charts template.HTML
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	sites, err := u.svc.AllSites(ctx, manage.SiteFilter{})
	if err != nil {
		return err
	}
	d := overviewData{States: map[string]int{}, Total: len(sites)}
	for _, s := range sites {
		state := s.State
		if state == "created" {
			state = "starting"
		}
		d.States[state]++
		switch s.State {
		case "running":
			d.Running++
		case "paused":
			d.Paused++
		}
		if s.Failure != nil && time.Since(s.Failure.At) < 24*time.Hour {
			d.Failed = append(d.Failed, s)
		}
	}
	d.Slots = d.Running + d.Paused
	if u.cfg.Platform != nil {
		d.MaxRunning = u.cfg.Platform.MaxRunning()
	}
	if d.Figures, err = u.svc.PlatformFigures(ctx, 24*time.Hour, time.Hour); err != nil {
		return err
	}
	for _, p := range d.Figures.ColdStarts.Points {
		d.ColdStarts += int(p.Value)
	}
	for _, p := range d.Figures.Failures.Points {
		d.Failures += int(p.Value)
	}
	mem, err := u.memoryChart(ctx, sites)
	if err != nil {
		return err
	}
	d.Charts = platformCharts(d.Figures) + mem
	if d.Audit, err = u.svc.ListAudit(ctx, tenants.AuditFilter{Limit: 10}); err != nil {
		return err
	}
	u.render(w, http.StatusOK, "overview", u.view(r, req, "Overview", "overview", d))
	return nil
}
