package admin

import (
	"net/http"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// SiteUptime is the admin service's.
type SiteUptime = manage.SiteUptime

func (a *API) siteUptime(w http.ResponseWriter, r *http.Request) error {
	window, err := durationParam(r, "window")
	if err != nil {
		return err
	}
	u, err := a.svc.SiteUptime(r.Context(), ref(r), window)
	return ok(w, u, err)
}
