package multitenant

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfileBackupAndAlerts(t *testing.T) {
	input := `tenants {
		database_url postgres://x
		backup {
			every 12h
			keep  3
			dir   /srv/backups
		}
		alerts {
			webhook https://hooks.example.com/a {
				secret {env.SECRET}
			}
			webhook https://hooks.example.com/b {
				secret two
			}
			email {
				smtp     smtp.example.com:587
				username u
				password {env.PW}
				from     alerts@example.com
				to       a@example.com b@example.com
				tls      tls
			}
			resolve_after 1m
			crash_loop    5 30m
			disable       capacity_reached payment_failed
		}
	}`
	var app App
	if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	want := App{
		DatabaseURL: "postgres://x",
		Backup:      &BackupConfig{Every: caddy.Duration(12 * time.Hour), Keep: 3, Dir: "/srv/backups"},
		Alerts: &AlertsConfig{
			Webhooks: []*AlertWebhook{{URL: "https://hooks.example.com/a", Secret: "{env.SECRET}"}, {URL: "https://hooks.example.com/b", Secret: "two"}},
			Email: &AlertEmail{SMTP: "smtp.example.com:587", Username: "u", Password: "{env.PW}", From: "alerts@example.com",
				To: []string{"a@example.com", "b@example.com"}, TLS: "tls"},
			ResolveAfter: caddy.Duration(time.Minute), CrashLoopExits: 5, CrashLoopWindow: caddy.Duration(30 * time.Minute),
			Disable: []string{"capacity_reached", "payment_failed"},
		},
	}
	got, _ := json.Marshal(app)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("got  %s\nwant %s", got, exp)
	}

	// Defaults: every 24h, keep 7, /var/backups/tenants; resolve after 5m,
	// a crash loop is 3 exits in 10m.
	app = App{DatabaseURL: "postgres://x", Backup: &BackupConfig{}, Alerts: &AlertsConfig{}}
	if err := app.expand(); err != nil {
		t.Fatal(err)
	}
	if err := app.validate(); err != nil {
		t.Fatal(err)
	}
	if b := app.Backup; time.Duration(b.Every) != 24*time.Hour || b.Keep != 7 || b.Dir != "/var/backups/tenants" {
		t.Fatalf("backup defaults: %+v", b)
	}
	if a := app.Alerts; time.Duration(a.ResolveAfter) != 5*time.Minute || a.CrashLoopExits != 3 || time.Duration(a.CrashLoopWindow) != 10*time.Minute {
		t.Fatalf("alerts defaults: %+v", a)
	}
}

func TestValidateBackupAndAlerts(t *testing.T) {
	cases := []struct {
		app  App
		want string
	}{
		{App{Backup: &BackupConfig{Dir: "relative"}}, "backup dir"},
		{App{Alerts: &AlertsConfig{Webhooks: []*AlertWebhook{{URL: "ftp://x"}}}}, "alerts webhook 1"},
		{App{Alerts: &AlertsConfig{Webhooks: []*AlertWebhook{{URL: "https://x"}}}}, "secret is required"},
		{App{Alerts: &AlertsConfig{Email: &AlertEmail{SMTP: "nohost", From: "a@b", To: []string{"c@d"}}}}, "alerts email: smtp"},
		{App{Alerts: &AlertsConfig{Email: &AlertEmail{SMTP: "h:25", From: "a@b", To: []string{"c@d"}, TLS: "maybe"}}}, "tls"},
		{App{Alerts: &AlertsConfig{Disable: []string{"nope"}}}, `no alert rule "nope"`},
	}
	for _, c := range cases {
		c.app.DatabaseURL = "postgres://x"
		if err := c.app.expand(); err != nil {
			t.Fatal(err)
		}
		err := c.app.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error containing %q", c.app, err, c.want)
		}
	}
}
