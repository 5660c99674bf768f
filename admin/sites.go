package admin

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// SiteInput is the body of POST /sites.
type SiteInput struct {
	CustomerID string            `json:"customer_id"`
	Subdomain  string            `json:"subdomain"`
	TemplateID string            `json:"template_id"`
	Env        map[string]string `json:"env,omitempty"`
	Status     string            `json:"status,omitempty"`
}

// SitePatch is the body of PATCH /sites/{id}. Env replaces the whole map.
// A change of template or env removes the site's container (its volume is
// kept), so the next start creates it from the new definition; suspending
// a site stops it.
type SitePatch struct {
	CustomerID *string            `json:"customer_id,omitempty"`
	Subdomain  *string            `json:"subdomain,omitempty"`
	TemplateID *string            `json:"template_id,omitempty"`
	Env        *map[string]string `json:"env,omitempty"`
	Status     *string            `json:"status,omitempty"`
}

func (p *SitePatch) apply(s *tenants.Site) {
	set(&s.CustomerID, p.CustomerID)
	set(&s.Subdomain, p.Subdomain)
	set(&s.TemplateID, p.TemplateID)
	set(&s.Env, p.Env)
	set(&s.Status, p.Status)
}

func (a *API) listSites(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := query(r)
	f := tenants.SiteFilter{CustomerID: q.Get("customer_id"), TemplateID: q.Get("template_id"), Status: q.Get("status")}
	items, err := a.store.ListSites(r.Context(), f, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(s *tenants.Site) string { return s.ID }))
	return nil
}

func (a *API) createSite(w http.ResponseWriter, r *http.Request) error {
	var in SiteInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	s := &tenants.Site{CustomerID: in.CustomerID, Subdomain: in.Subdomain, TemplateID: in.TemplateID, Env: in.Env, Status: in.Status}
	if err := a.store.CreateSite(r.Context(), actor(r), s); err != nil {
		return err
	}
	return created(w, "/sites/"+s.ID, s)
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request) error {
	s, err := a.site(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// site loads the site of the path's {id}.
func (a *API) site(r *http.Request) (*tenants.Site, error) {
	id, err := id(r, "site")
	if err != nil {
		return nil, err
	}
	s, err := a.store.GetSite(r.Context(), id)
	if err != nil {
		return nil, notFoundAs(err, "site")
	}
	return s, nil
}

func (a *API) patchSite(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "site")
	if err != nil {
		return err
	}
	var patch SitePatch
	if err := decodeBody(r, &patch); err != nil {
		return err
	}
	s, err := a.store.GetSite(r.Context(), id)
	if err != nil {
		return notFoundAs(err, "site")
	}
	before := *s
	patch.apply(s)
	if err := a.store.UpdateSite(r.Context(), actor(r), s); err != nil {
		return notFoundAs(err, "site")
	}
	if a.cfg.Runtime != nil {
		switch {
		case s.TemplateID != before.TemplateID || !equalEnv(s.Env, before.Env):
			if err := a.cfg.Runtime.Remove(r.Context(), s.ID, false); err != nil {
				a.logFor(r).Warn("removing container of changed site", zap.String("site_id", s.ID), zap.Error(err))
			}
		case s.Status != before.Status && s.Status == tenants.SiteSuspended:
			if err := a.cfg.Runtime.Stop(r.Context(), s.ID); err != nil {
				a.logFor(r).Warn("stopping suspended site", zap.String("site_id", s.ID), zap.Error(err))
			}
		}
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

func equalEnv(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// deleteSite deletes the site (with its domains), then removes its
// container; the volume is kept unless ?purge=true. The row goes first:
// once the change reaches the resolvers no request can start the site
// again.
func (a *API) deleteSite(w http.ResponseWriter, r *http.Request) error {
	id, err := id(r, "site")
	if err != nil {
		return err
	}
	purge, err := boolParam(r, "purge")
	if err != nil {
		return err
	}
	if err := a.store.DeleteSite(r.Context(), actor(r), id); err != nil {
		return notFoundAs(err, "site")
	}
	a.removeContainer(r, id, purge)
	return noContent(w)
}

// removeContainer removes a deleted site's container; a failure is
// logged, not answered: the site is gone either way, and a leftover
// container of a deleted site is never routed to.
func (a *API) removeContainer(r *http.Request, siteID string, purge bool) {
	if a.cfg.Runtime == nil {
		return
	}
	if err := a.cfg.Runtime.Remove(r.Context(), siteID, purge); err != nil {
		a.logFor(r).Error("removing container of deleted site", zap.String("site_id", siteID), zap.Bool("purge", purge), zap.Error(err))
	}
}

var errNoRuntime = apiErr(http.StatusServiceUnavailable, CodeUnavailable, "", "this server runs no containers")

// siteAction runs start, stop, restart or redeploy and answers with the
// site's status after it.
func (a *API) siteAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		s, err := a.site(r)
		if err != nil {
			return err
		}
		if err := decodeOptionalEmpty(r); err != nil {
			return err
		}
		rt := a.cfg.Runtime
		if rt == nil {
			return errNoRuntime
		}
		if action != "stop" {
			if err := a.serving(r, s); err != nil {
				return err
			}
		}
		switch action {
		case "start":
			_, err = rt.Start(r.Context(), s.ID)
		case "stop":
			err = rt.Stop(r.Context(), s.ID)
		case "restart":
			_, err = rt.Restart(r.Context(), s.ID)
		case "redeploy":
			_, err = rt.Redeploy(r.Context(), s.ID)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, a.status(r, s.ID))
		return nil
	}
}

// serving refuses to start a site that would not serve its content.
func (a *API) serving(r *http.Request, s *tenants.Site) error {
	if s.Status != tenants.SiteActive {
		return apiErr(http.StatusConflict, CodeConflict, "status", "the site is suspended; set its status to active first")
	}
	c, err := a.store.GetCustomer(r.Context(), s.CustomerID)
	if err != nil {
		return err
	}
	if c.Status != tenants.CustomerActive && c.Status != tenants.CustomerPastDue {
		return apiErr(http.StatusConflict, CodeConflict, "customer_id", "the site's customer is "+c.Status)
	}
	return nil
}

// decodeOptionalEmpty accepts an action's body only when it is empty or
// an empty JSON object.
func decodeOptionalEmpty(r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyTooLarge(tooLarge.Limit)
		}
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var empty struct{}
	return decodeJSON(body, &empty)
}

func (a *API) siteStatus(w http.ResponseWriter, r *http.Request) error {
	s, err := a.site(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.status(r, s.ID))
	return nil
}

// status is this node's live view of the site's container, else the last
// state recorded in the database.
func (a *API) status(r *http.Request, siteID string) RuntimeStatus {
	if a.cfg.Runtime != nil {
		if st := a.cfg.Runtime.Status(siteID); st.State != "" {
			st.SiteID, st.Source = siteID, "live"
			st.Error = startError(st.Error)
			return st
		}
	}
	st := RuntimeStatus{SiteID: siteID, State: "absent", Source: "recorded"}
	rec, err := a.store.GetRuntime(r.Context(), siteID)
	if err == nil {
		st.State, st.ContainerID, st.Upstream, st.Error = rec.State, rec.ContainerID, rec.Upstream, startError(rec.LastError)
		st.LastStartedAt, st.LastActiveAt = rec.LastStartedAt, rec.LastActiveAt
	}
	return st
}

// startError is what the status shows of a start failure: that there was
// one. The runtime's message names the engine's internals (addresses,
// container names, the host); the server logged it when the start failed.
func startError(msg string) string {
	if msg == "" {
		return ""
	}
	return "the last start failed; the server log has the details"
}

// DefaultLogTail is how many log lines GET /sites/{id}/logs returns
// without ?tail=.
const DefaultLogTail = 100

// siteLogs writes the container's output as text: ?tail=N last lines
// (default 100, "all" for everything), and with ?follow=1 keeps streaming
// new output, flushed as it comes, until the client goes away or the
// container stops.
func (a *API) siteLogs(w http.ResponseWriter, r *http.Request) error {
	s, err := a.site(r)
	if err != nil {
		return err
	}
	tail := DefaultLogTail
	switch v := query(r).Get("tail"); v {
	case "":
	case "all":
		tail = 0
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return invalidParam("tail", "must be a number of lines from 1 to 100000, or all")
		}
		tail = n
	}
	follow, err := boolParam(r, "follow")
	if err != nil {
		return err
	}
	if a.cfg.Runtime == nil {
		return errNoRuntime
	}
	rc, err := a.cfg.Runtime.Logs(r.Context(), s.ID, tail, follow)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !follow {
		_, _ = io.Copy(w, rc)
		return nil
	}
	rc2 := http.NewResponseController(w)
	_ = rc2.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			_ = rc2.Flush()
		}
		if err != nil {
			return nil // EOF: the container stopped; or the client went away
		}
	}
}
