package ui

import (
	"net/http"
	"sort"
	"time"
)

// The certificates page: what is in storage, soonest to expire first.

func (u *UI) routesCertificates() {
	u.op("GET /certificates", u.certificates)
}

// certSoon is how close to its expiry a certificate is flagged.
const certSoon = 14 * 24 * time.Hour

type certRow struct {
	Certificate
	DaysLeft      int
	Soon, Expired bool
}

type certsData struct {
	Available bool
	Certs     []certRow
}

func (u *UI) certificates(w http.ResponseWriter, r *http.Request, req *request) error {
	d := certsData{Available: u.cfg.Platform != nil}
	if d.Available {
		list, err := u.cfg.Platform.Certificates(r.Context())
		if err != nil {
			return err
		}
		now := time.Now()
		for _, c := range list {
			left := c.NotAfter.Sub(now)
			d.Certs = append(d.Certs, certRow{Certificate: c, DaysLeft: int(left.Hours() / 24),
				Soon: left > 0 && left < certSoon, Expired: left <= 0})
		}
		sort.Slice(d.Certs, func(i, j int) bool { return d.Certs[i].NotAfter.Before(d.Certs[j].NotAfter) })
	}
	u.render(w, http.StatusOK, "certificates", u.view(r, req, "Certificates", "certificates", d))
	return nil
}
