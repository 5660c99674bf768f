package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agistaffers/caddy-multitenant/manage"
)

// Figures answers are the admin service's.
type (
	SiteFigures     = manage.SiteFigures
	PlatformFigures = manage.PlatformFigures
)

func (a *API) siteFigures(w http.ResponseWriter, r *http.Request) error {
	window, step, err := figureParams(r)
	if err != nil {
		return err
	}
	f, err := a.svc.SiteFigures(r.Context(), ref(r), window, step)
	return ok(w, f, err)
}

func (a *API) platformFigures(w http.ResponseWriter, r *http.Request) error {
	window, step, err := figureParams(r)
	if err != nil {
		return err
	}
	f, err := a.svc.PlatformFigures(r.Context(), window, step)
	return ok(w, f, err)
}

// figureParams reads ?window= and ?step=; an absent one is 0, the
// service's default. The service checks their bounds.
func figureParams(r *http.Request) (window, step time.Duration, err error) {
	if window, err = durationParam(r, "window"); err != nil {
		return 0, 0, err
	}
	step, err = durationParam(r, "step")
	return window, step, err
}

// maxDays bounds the days a duration parameter takes, far beyond any
// window, so that the count cannot overflow.
const maxDays = 3650

// durationParam reads a duration parameter: Go's syntax (90s, 15m, 1h30m)
// or whole days (7d), which Go's lacks.
func durationParam(r *http.Request, name string) (time.Duration, error) {
	s := query(r).Get(name)
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 && n <= maxDays {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, invalidParam(name, "must be a positive duration such as 15m, 24h or 7d")
}
