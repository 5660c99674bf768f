package ui

import (
	"encoding/json"
	"net/http"
)

// The settings page: the effective tenants configuration, for reading
// (it is changed in the Caddyfile), and the platform's health checks.

func (u *UI) routesSettings() {
	u.op("GET /settings", u.settings)
}

type settingsData struct {
	Available bool
	// Settings is the configuration as indented JSON.
	Settings string
	Checks   []Check
}

func (u *UI) settings(w http.ResponseWriter, r *http.Request, req *request) error {
	d := settingsData{Available: u.cfg.Platform != nil}
	if d.Available {
		// The settings are the Platform's to redact: it returns what may
		// be shown (no secrets).
		b, err := json.MarshalIndent(u.cfg.Platform.Settings(), "", "  ")
		if err != nil {
			return err
		}
		d.Settings = string(b)
		d.Checks = u.cfg.Platform.Health(r.Context())
	}
	u.render(w, http.StatusOK, "settings", u.view(r, req, "Settings", "settings", d))
	return nil
}
