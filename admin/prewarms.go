package admin

import (
	"net/http"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Prewarm is the admin service's.
type Prewarm = manage.Prewarm

type prewarmList struct {
	Items []Prewarm `json:"items"`
}

func (a *API) sitePrewarms(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(query(r).Get("limit"), "limit", 1, manage.MaxPrewarms)
	if err != nil {
		return err
	}
	items, err := a.svc.SitePrewarms(r.Context(), ref(r), limit)
	return ok(w, prewarmList{Items: items}, err)
}
