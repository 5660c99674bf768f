package admin

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Site bodies and answers are the admin service's.
type (
	SiteInput     = manage.SiteInput
	SitePatch     = manage.SitePatch
	Site          = manage.Site
	RuntimeStatus = manage.RuntimeStatus
)

func (a *API) listSites(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := query(r)
	f := manage.SiteFilter{Customer: q.Get("customer_id"), Template: q.Get("template_id"), Status: q.Get("status")}
	items, err := a.svc.ListSites(r.Context(), f, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, p, func(s *Site) string { return s.ID }))
	return nil
}

func (a *API) createSite(w http.ResponseWriter, r *http.Request) error {
	var in SiteInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	s, err := a.svc.CreateSite(r.Context(), actor(r), in)
	if err != nil {
		return err
	}
	return created(w, "/sites/"+s.ID, s)
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request) error {
	s, err := a.svc.GetSite(r.Context(), ref(r))
	return ok(w, s, err)
}

func (a *API) patchSite(w http.ResponseWriter, r *http.Request) error {
	var patch SitePatch
	if err := decodeBody(r, &patch); err != nil {
		return err
	}
	s, err := a.svc.UpdateSite(r.Context(), actor(r), ref(r), patch)
	return ok(w, s, err)
}

// deleteSite deletes the site (with its domains) and its container; the
// volume is kept unless ?purge=true.
func (a *API) deleteSite(w http.ResponseWriter, r *http.Request) error {
	purge, err := boolParam(r, "purge")
	if err != nil {
		return err
	}
	if _, err := a.svc.DeleteSite(r.Context(), actor(r), ref(r), purge); err != nil {
		return err
	}
	return noContent(w)
}

// siteAction runs start, stop, restart or redeploy and answers with the
// site's status after it.
func (a *API) siteAction(action string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		// The site first: a missing one is a 404 whatever the body.
		if _, err := a.svc.GetSite(r.Context(), ref(r)); err != nil {
			return err
		}
		if err := decodeOptionalEmpty(r); err != nil {
			return err
		}
		st, err := a.svc.SiteAction(r.Context(), actor(r), ref(r), action)
		return ok(w, st, err)
	}
}

// decodeOptionalEmpty accepts an action's body only when it is empty or
// an empty JSON object.
func decodeOptionalEmpty(r *http.Request) error {
	var empty struct{}
	return decodeOptional(r, &empty)
}

// decodeOptional decodes an action's body into v when there is one.
func decodeOptional(r *http.Request, v any) error {
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
	return decodeJSON(body, v)
}

func (a *API) siteStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := a.svc.SiteStatus(r.Context(), ref(r))
	return ok(w, st, err)
}

// siteLogs writes the container's output as text: ?tail=N last lines
// (default 100, "all" for everything), and with ?follow=1 keeps streaming
// new output, flushed as it comes, until the client goes away or the
// container stops. A site whose container is gone after a failed start
// gets that failure instead.
func (a *API) siteLogs(w http.ResponseWriter, r *http.Request) error {
	tail := manage.DefaultLogTail
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
	rc, err := a.svc.SiteLogs(r.Context(), ref(r), tail, follow)
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
