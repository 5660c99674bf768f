package admin

import (
	"net/http"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// ScaleEvent is the admin service's.
type ScaleEvent = manage.ScaleEvent

type scaleEventList struct {
	Items []ScaleEvent `json:"items"`
}

func (a *API) siteScaleEvents(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(query(r).Get("limit"), "limit", 1, manage.MaxScaleEvents)
	if err != nil {
		return err
	}
	items, err := a.svc.SiteScaleEvents(r.Context(), ref(r), limit)
	return ok(w, scaleEventList{Items: items}, err)
}
