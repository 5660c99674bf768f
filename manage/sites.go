package manage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// SiteInput is what a new site is made of. Customer and Template take an
// id or the natural key (email, slug).
type SiteInput struct {
	Customer  string            `json:"customer_id"`
	Subdomain string            `json:"subdomain"`
	Template  string            `json:"template_id"`
	Env       map[string]string `json:"env,omitempty"`
	Status    string            `json:"status,omitempty"`
	// ServeStale is the site's own serve-stale setting; absent takes its
	// template's. (Pre-warm is on for a new site; a patch turns it off.)
	ServeStale *bool `json:"serve_stale,omitempty"`
}

// SitePatch changes the given fields of a site. Env replaces the whole
// map. A change of template or env that changes what the site runs is a
// release, rolled out at once (a running site's container replaced
// without a gap); a change of customer removes the site's container (its
// volume is kept), so the next start makes it on the new customer's
// network; suspending a site stops it.
type SitePatch struct {
	Customer  *string            `json:"customer_id,omitempty"`
	Subdomain *string            `json:"subdomain,omitempty"`
	Template  *string            `json:"template_id,omitempty"`
	Env       *map[string]string `json:"env,omitempty"`
	Status    *string            `json:"status,omitempty"`
	// ServeStale is true, false, or null for the template's setting.
	ServeStale Nullable[bool] `json:"serve_stale,omitzero"`
	// Prewarm lets the pre-warm scheduler start the site before its
	// usual first request.
	Prewarm *bool `json:"prewarm,omitempty"`
}

// Site is a site as operators see it: with its customer's email, its
// template's slug and its container's state.
type Site struct {
	tenants.Site
	CustomerEmail string `json:"customer_email"`
	TemplateSlug  string `json:"template_slug"`
	// State is the container's: live on this node, else as recorded,
	// else absent.
	State string `json:"state"`
	// Health is the running container's health checks' verdict (healthy
	// or unhealthy), absent when not checked or not running.
	Health string `json:"health,omitempty"`
	// Failure is the last failed start, until a start succeeds.
	Failure *Failure `json:"failure,omitempty"`
	// LastActiveAt is when the site last served a request, as known.
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
	// Release is the release a change made, as it ended.
	Release  *Release `json:"release,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// SiteFilter narrows ListSites; refs take ids or natural keys.
type SiteFilter struct {
	Customer string
	Template string
	Status   string
}

// ListSites returns a page of sites matching f.
func (s *Service) ListSites(ctx context.Context, f SiteFilter, page Page) ([]Site, error) {
	tf := tenants.SiteFilter{Status: f.Status}
	var err error
	if tf.CustomerID, err = refID(ctx, f.Customer, s.customer, "customer_id", func(c *tenants.Customer) string { return c.ID }); err != nil {
		return nil, err
	}
	if tf.TemplateID, err = refID(ctx, f.Template, s.template, "template_id", func(t *tenants.Template) string { return t.ID }); err != nil {
		return nil, err
	}
	list, err := s.store.ListSites(ctx, tf, page)
	if err != nil {
		return nil, fail("site", err)
	}
	out := make([]Site, len(list))
	for i, l := range list {
		out[i] = Site{Site: l.Site, CustomerEmail: l.CustomerEmail, TemplateSlug: l.TemplateSlug, State: l.RecordedState, LastActiveAt: l.LastActiveAt}
		if l.RecordedState == StateRunning {
			out[i].Health = l.Health
		}
		if st := s.liveStatus(l.ID); st.State != "" {
			out[i].State, out[i].Health = st.State, st.Health
			if st.LastActiveAt != nil {
				out[i].LastActiveAt = st.LastActiveAt
			}
		}
		if out[i].State == "" {
			out[i].State = StateAbsent
		}
		if l.FailedAt != nil {
			out[i].Failure = &Failure{Reason: l.FailureReason, At: *l.FailedAt}
		}
	}
	return out, nil
}

// AllSites returns every site matching f.
func (s *Service) AllSites(ctx context.Context, f SiteFilter) ([]Site, error) {
	return all(func(p Page) ([]Site, error) { return s.ListSites(ctx, f, p) }, func(s *Site) string { return s.ID })
}

// GetSite returns the site ref names (id or subdomain).
func (s *Service) GetSite(ctx context.Context, ref string) (*Site, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	return s.siteOut(ctx, site, nil)
}

// CreateSite adds a site. A customer on a plan gets at most the plan's
// max_sites (a Conflict naming the limit, decided in the transaction that
// adds the site).
func (s *Service) CreateSite(ctx context.Context, actor string, in SiteInput) (*Site, error) {
	c, err := s.customer(ctx, "customer_id", in.Customer)
	if err != nil {
		return nil, err
	}
	t, err := s.template(ctx, "template_id", in.Template)
	if err != nil {
		return nil, err
	}
	site := &tenants.Site{CustomerID: c.ID, Subdomain: in.Subdomain, TemplateID: t.ID, Env: in.Env, Status: in.Status,
		ServeStale: in.ServeStale}
	if err := s.store.CreateSite(ctx, actor, site); err != nil {
		return nil, fail("site", err)
	}
	return s.siteOut(ctx, site, s.imageWarnings(ctx, t.Image))
}

// UpdateSite changes the site ref names.
func (s *Service) UpdateSite(ctx context.Context, actor, ref string, p SitePatch) (*Site, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	before := *site
	running, err := s.store.SiteRoute(ctx, site.ID)
	if err != nil {
		return nil, fail("site", err)
	}
	if p.Customer != nil {
		c, err := s.customer(ctx, "customer_id", *p.Customer)
		if err != nil {
			return nil, err
		}
		site.CustomerID = c.ID
	}
	var warnings []string
	if p.Template != nil {
		t, err := s.template(ctx, "template_id", *p.Template)
		if err != nil {
			return nil, err
		}
		site.TemplateID = t.ID
		warnings = s.imageWarnings(ctx, t.Image)
	}
	set(&site.Subdomain, p.Subdomain)
	set(&site.Env, p.Env)
	set(&site.Status, p.Status)
	set(&site.Prewarm, p.Prewarm)
	if p.ServeStale.Set {
		site.ServeStale = p.ServeStale.Value
	}
	if err := s.store.UpdateSite(ctx, actor, site); err != nil {
		return nil, fail("site", err)
	}
	if s.runtime != nil {
		switch {
		case site.CustomerID != before.CustomerID:
			if err := s.runtime.Remove(ctx, site.ID, false); err != nil {
				s.log.Warn("removing container of changed site", zap.String("site_id", site.ID), zap.Error(err))
			}
		case site.Status != before.Status && site.Status == tenants.SiteSuspended:
			if err := s.runtime.Stop(ctx, site.ID); err != nil {
				s.log.Warn("stopping suspended site", zap.String("site_id", site.ID), zap.Error(err))
			}
		}
	}
	var rel *Release
	if site.TemplateID != before.TemplateID || site.CustomerID != before.CustomerID || !maps.Equal(site.Env, before.Env) {
		if rel, err = s.changed(ctx, actor, running); err != nil {
			return nil, err
		}
	}
	out, err := s.siteOut(ctx, site, warnings)
	if out != nil && rel != nil {
		out.Release = rel
		if rel.Status == tenants.ReleaseFailed {
			out.Warnings = append(out.Warnings, fmt.Sprintf("release %d failed: %s", rel.Number, rel.Outcome))
		}
	}
	return out, err
}

// DeleteSite removes the site ref names with its domains, then its
// container; the volume is kept unless purge. The row goes first: once the
// change reaches the resolvers no request can start the site again.
func (s *Service) DeleteSite(ctx context.Context, actor, ref string, purge bool) (*tenants.Site, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteSite(ctx, actor, site.ID); err != nil {
		return nil, fail("site", err)
	}
	s.removeContainer(ctx, site.ID, purge)
	return site, nil
}

// removeContainer removes a deleted site's container; a failure is
// logged, not returned: the site is gone either way, and a leftover
// container of a deleted site is never routed to.
func (s *Service) removeContainer(ctx context.Context, siteID string, purge bool) {
	if s.runtime == nil {
		return
	}
	if err := s.runtime.Remove(context.WithoutCancel(ctx), siteID, purge); err != nil {
		s.log.Error("removing container of deleted site", zap.String("site_id", siteID), zap.Bool("purge", purge), zap.Error(err))
	}
}

// Site actions.
const (
	ActionStart    = "start"
	ActionStop     = "stop"
	ActionRestart  = "restart"
	ActionRedeploy = "redeploy"
)

// SiteAction starts, stops, restarts or redeploys the site ref names and
// returns its status after. Only a site that serves (active, of a
// customer in good standing) is started.
func (s *Service) SiteAction(ctx context.Context, actor, ref, action string) (*RuntimeStatus, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if s.runtime == nil {
		return nil, errNoRuntime
	}
	if action != ActionStop {
		if err := s.serving(ctx, site); err != nil {
			return nil, err
		}
	}
	switch action {
	case ActionStart:
		err = s.runtime.Start(ctx, site.ID)
	case ActionStop:
		err = s.runtime.Stop(ctx, site.ID)
	case ActionRestart:
		err = s.runtime.Restart(ctx, site.ID)
	case ActionRedeploy:
		err = s.redeploy(ctx, actor, site.ID)
	default:
		return nil, invalid("action", "must be one of start, stop, restart, redeploy")
	}
	s.log.Info("site action", zap.String("actor", actor), zap.String("action", action), zap.String("site_id", site.ID), zap.Error(err))
	if err != nil {
		return nil, fail("site", err)
	}
	return s.status(ctx, site.ID), nil
}

// redeploy makes the site's settings a new release with a container of
// its own: a running site's is replaced without a gap; a stopped site's
// is made anew and started.
func (s *Service) redeploy(ctx context.Context, actor, siteID string) error {
	route, err := s.store.SiteRoute(ctx, siteID)
	if err != nil {
		return err
	}
	r, err := s.release(ctx, actor, siteID, tenants.NewRelease{Kind: tenants.KindRedeploy, Spec: route.Derived(),
		Source: route.Source(), Baseline: baseline(route)})
	switch {
	case err != nil:
		return err
	case r.Status == tenants.ReleaseFailed:
		return &Error{Code: StartFailed, Message: "the site failed to start, its status shows why", Err: errors.New(r.Outcome + "\n" + r.Log)}
	case r.ContainerID == "":
		// It was not running: started from the release now live.
		return s.runtime.Redeploy(ctx, siteID)
	}
	return nil
}

// serving refuses to start a site that would not serve its content.
func (s *Service) serving(ctx context.Context, site *tenants.Site) error {
	if site.Status != tenants.SiteActive {
		return conflict("status", "the site is suspended; set its status to active first")
	}
	c, err := s.store.GetCustomer(ctx, site.CustomerID)
	if err != nil {
		return fail("customer", err)
	}
	if !Serving(c.Status) {
		return conflict("customer_id", "the site's customer is %s", c.Status)
	}
	return nil
}

// SiteStatus returns what is known of the container of the site ref
// names: this node's live view, else the state recorded in the database.
func (s *Service) SiteStatus(ctx context.Context, ref string) (*RuntimeStatus, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	return s.status(ctx, site.ID), nil
}

func (s *Service) liveStatus(siteID string) RuntimeStatus {
	if s.runtime == nil {
		return RuntimeStatus{}
	}
	return s.runtime.Status(siteID)
}

func (s *Service) status(ctx context.Context, siteID string) *RuntimeStatus {
	rec, recErr := s.store.GetRuntime(ctx, siteID)
	if st := s.liveStatus(siteID); st.State != "" {
		st.SiteID, st.Source = siteID, "live"
		if st.Failure == nil && recErr == nil {
			st.Failure = recordedFailure(rec)
		}
		return &st
	}
	st := &RuntimeStatus{SiteID: siteID, State: StateAbsent, Source: "recorded"}
	if recErr == nil {
		st.State, st.ContainerID, st.Upstream = rec.State, rec.ContainerID, rec.Upstream
		st.LastStartedAt, st.LastActiveAt = rec.LastStartedAt, rec.LastActiveAt
		st.Health = rec.Health
		st.Failure = recordedFailure(rec)
	}
	return st
}

func recordedFailure(rec *tenants.SiteRuntime) *Failure {
	if rec.FailedAt == nil {
		return nil
	}
	return &Failure{Reason: rec.FailureReason, ExitCode: rec.FailureExitCode, LogTail: rec.FailureLogTail, At: *rec.FailedAt}
}

// DefaultLogTail is how many log lines SiteLogs returns by default.
const DefaultLogTail = 100

// SiteLogs returns the output of the container of the site ref names: the
// last tail lines (0: all), with follow new output until ctx ends. A site
// without a container whose last start failed gets that failure instead
// of nothing: the reason, the exit code and the container's last lines.
func (s *Service) SiteLogs(ctx context.Context, ref string, tail int, follow bool) (io.ReadCloser, error) {
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	if tail < 0 {
		return nil, invalid("tail", "must not be negative")
	}
	if s.runtime == nil {
		return nil, errNoRuntime
	}
	rc, err := s.runtime.Logs(ctx, site.ID, tail, follow)
	if err == nil {
		return rc, nil
	}
	if e := fail("site", err).(*Error); e.Code == NoContainer {
		if f := s.status(ctx, site.ID).Failure; f != nil {
			return io.NopCloser(strings.NewReader(f.describe())), nil
		}
	}
	return nil, fail("site", err)
}

// describe tells a failure for a terminal or a log view.
func (f *Failure) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the site has no container; its last start failed at %s: %s", f.At.UTC().Format(time.RFC3339), f.Reason)
	if f.ExitCode != nil {
		fmt.Fprintf(&b, " (exit code %d)", *f.ExitCode)
	}
	b.WriteString("\n")
	if tail := strings.TrimSpace(f.LogTail); tail != "" {
		b.WriteString("its last log lines:\n" + tail + "\n")
	}
	return b.String()
}

// siteOut adds names and state to site.
func (s *Service) siteOut(ctx context.Context, site *tenants.Site, warnings []string) (*Site, error) {
	out := &Site{Site: *site, Warnings: warnings}
	c, err := s.store.GetCustomer(ctx, site.CustomerID)
	if err != nil {
		return nil, fail("customer", err)
	}
	t, err := s.store.GetTemplate(ctx, site.TemplateID)
	if err != nil {
		return nil, fail("template", err)
	}
	out.CustomerEmail, out.TemplateSlug = c.Email, t.Slug
	st := s.status(ctx, site.ID)
	out.State, out.Failure, out.LastActiveAt, out.Health = st.State, st.Failure, st.LastActiveAt, st.Health
	return out, nil
}
