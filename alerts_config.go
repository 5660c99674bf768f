package multitenant

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/alerts"
	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Defaults of the alerts option.
const (
	DefaultAlertResolveAfter = alerts.DefaultResolveAfter
	DefaultCrashLoopExits    = 3
	DefaultCrashLoopWindow   = 10 * time.Minute
)

// AlertsConfig tells the operator when something needs them. Rules (all
// on unless disabled): site_start_failed (a site's container did not
// start or become ready), crash_loop (a site's container exited
// crash_loop_exits times within crash_loop_window, failed starts
// included), certificate_renewal_failed (per hostname),
// capacity_reached (max_running containers ran and none was idle),
// payment_failed (a customer fell past due), backup_failed (a scheduled
// backup) and site_unhealthy (raised by health monitoring). Each
// incident is notified once when it fires and once when it resolves:
// after its condition stayed clear for resolve_after, so a flapping site
// is one incident. Notifications are durable jobs, sent by one node,
// retried with backoff.
//
// Caddyfile (inside the tenants global option):
//
//	alerts {
//		webhook https://hooks.example.com/tenants {
//			secret {env.ALERT_WEBHOOK_SECRET}
//		}
//		email {
//			smtp     smtp.example.com:587
//			username alerts@example.com
//			password {env.SMTP_PASSWORD}
//			from     alerts@example.com
//			to       ops@example.com oncall@example.com
//			tls      starttls
//		}
//		resolve_after 5m
//		crash_loop    3 10m
//		disable       capacity_reached
//	}
type AlertsConfig struct {
	// Webhooks each get every notification as a JSON POST, signed in the
	// X-Tenants-Signature header (t=<unix>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>">). Default: none.
	Webhooks []*AlertWebhook `json:"webhooks,omitempty"`

	// Email mails every notification. Default: none.
	Email *AlertEmail `json:"email,omitempty"`

	// ResolveAfter is how long a condition must stay clear before its
	// incident resolves. Default: 5m.
	ResolveAfter caddy.Duration `json:"resolve_after,omitempty"`

	// CrashLoopExits is how many exits (failed starts included) within
	// CrashLoopWindow make a crash loop. Default: 3.
	CrashLoopExits int `json:"crash_loop_exits,omitempty"`

	// CrashLoopWindow is the window of CrashLoopExits. Default: 10m.
	CrashLoopWindow caddy.Duration `json:"crash_loop_window,omitempty"`

	// Disable lists rules that neither record nor notify. Default: none.
	Disable []string `json:"disable,omitempty"`
}

// AlertWebhook is a webhook channel.
type AlertWebhook struct {
	// URL receives the POSTs. Required. Default: none.
	URL string `json:"url,omitempty"`
	// Secret signs them; placeholders are expanded. Required. Default:
	// none.
	Secret string `json:"secret,omitempty"`
}

// AlertEmail is an email channel, through an SMTP server.
type AlertEmail struct {
	// SMTP is the server's host:port. Required. Default: none.
	SMTP string `json:"smtp,omitempty"`
	// Username and Password authenticate, when set; placeholders are
	// expanded. Default: none (no authentication).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// From is the sender's address. Required. Default: none.
	From string `json:"from,omitempty"`
	// To are the recipients. Required. Default: none.
	To []string `json:"to,omitempty"`
	// TLS is starttls (required STARTTLS), tls (TLS from the first byte,
	// port 465) or off (a relay on loopback only). Default: starttls.
	TLS string `json:"tls,omitempty"`
}

func (c *AlertsConfig) expand() {
	if c.ResolveAfter == 0 {
		c.ResolveAfter = caddy.Duration(DefaultAlertResolveAfter)
	}
	if c.CrashLoopExits == 0 {
		c.CrashLoopExits = DefaultCrashLoopExits
	}
	if c.CrashLoopWindow == 0 {
		c.CrashLoopWindow = caddy.Duration(DefaultCrashLoopWindow)
	}
}

// alertsConfig expands placeholders and checks the settings; every
// error names its field, prefixed "alerts ".
func (c *AlertsConfig) alertsConfig() (alerts.Config, error) {
	repl := caddy.NewReplacer()
	cfg := alerts.Config{ResolveAfter: time.Duration(c.ResolveAfter), Disabled: c.Disable}
	if c.CrashLoopExits < 1 || c.CrashLoopWindow <= 0 {
		return cfg, fmt.Errorf("alerts crash_loop: want a positive count and window, got %d %s", c.CrashLoopExits, time.Duration(c.CrashLoopWindow))
	}
	for _, w := range c.Webhooks {
		secret, err := repl.ReplaceOrErr(w.Secret, false, true)
		if err != nil {
			return cfg, fmt.Errorf("alerts webhook secret: %w", err)
		}
		cfg.Webhooks = append(cfg.Webhooks, alerts.Webhook{URL: repl.ReplaceKnown(w.URL, ""), Secret: secret})
	}
	if e := c.Email; e != nil {
		password, err := repl.ReplaceOrErr(e.Password, false, true)
		if err != nil {
			return cfg, fmt.Errorf("alerts email password: %w", err)
		}
		cfg.Email = &alerts.Email{Server: e.SMTP, Username: repl.ReplaceKnown(e.Username, ""), Password: password,
			From: e.From, To: e.To, TLS: e.TLS}
	}
	if _, err := alerts.New(cfg); err != nil {
		return cfg, fmt.Errorf("alerts %w", err)
	}
	return cfg, nil
}

// newAlerter makes the platform's alerter when alerts are configured
// (nil otherwise); no I/O.
func newAlerter(a *App, store *tenants.Store) (*alerts.Alerter, error) {
	if a.Alerts == nil {
		return nil, nil
	}
	cfg, err := a.Alerts.alertsConfig()
	if err != nil {
		return nil, err
	}
	cfg.Store, cfg.Platform, cfg.Logger = store, a.Schema, a.logger.Named("alerts")
	return alerts.New(cfg)
}

// siteAlerts turns what the provisioner reports into alerts: failed
// starts, crash loops, capacity.
type siteAlerts struct {
	alerter *alerts.Alerter
	exits   int
	window  time.Duration

	mu        sync.Mutex
	recent    map[string][]time.Time // per site: its exits within the window
	lastExit  map[string]time.Time   // per site: the exit counted last
	unhealthy map[string]bool        // sites this node raised site_unhealthy for
}

func newSiteAlerts(a *alerts.Alerter, c *AlertsConfig) *siteAlerts {
	return &siteAlerts{alerter: a, exits: c.CrashLoopExits, window: time.Duration(c.CrashLoopWindow),
		recent: map[string][]time.Time{}, lastExit: map[string]time.Time{}, unhealthy: map[string]bool{}}
}

// observe takes one of the provisioner's state changes; it never blocks.
func (s *siteAlerts) observe(rt provisioner.SiteRuntime) {
	s.health(rt)
	switch {
	case rt.State == provisioner.StateFailed && rt.Failure != nil:
		s.alerter.Raise(alerts.RuleStartFailed, rt.SiteID, "site "+rt.SiteID+" failed to start: "+rt.Failure.Reason)
		s.exited(rt.SiteID, rt.FailedAt)
	case rt.State == provisioner.StateStopped && !rt.LastExit.IsZero():
		s.exited(rt.SiteID, rt.LastExit)
	case rt.State == provisioner.StateRunning:
		s.alerter.Clear(alerts.RuleStartFailed, rt.SiteID)
		s.alerter.Clear(alerts.RuleCrashLoop, rt.SiteID)
		s.alerter.Clear(alerts.RuleCapacity, "")
	}
}

// health raises site_unhealthy when the checks find the site unhealthy
// and clears it when they pass again or the site stopped (asleep is
// not unhealthy); a restart the checks make is still the incident.
func (s *siteAlerts) health(rt provisioner.SiteRuntime) {
	sick := rt.Restarting || (rt.State == provisioner.StateRunning && rt.Health == provisioner.HealthUnhealthy)
	s.mu.Lock()
	raised := s.unhealthy[rt.SiteID]
	switch {
	case sick && !raised:
		s.unhealthy[rt.SiteID] = true
	case !sick && raised && (rt.Health == provisioner.HealthHealthy || rt.State != provisioner.StateRunning):
		delete(s.unhealthy, rt.SiteID)
	default:
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if sick {
		msg := fmt.Sprintf("site %s is unhealthy: %d health checks in a row failed", rt.SiteID, rt.HealthFailures)
		if rt.HealthError != "" {
			msg += ": " + rt.HealthError
		}
		s.alerter.Raise(alerts.RuleUnhealthy, rt.SiteID, msg)
		return
	}
	s.alerter.Clear(alerts.RuleUnhealthy, rt.SiteID)
}

// exited counts an exit of the site's container (once, however many
// state changes repeat it) and raises a crash loop at the threshold.
func (s *siteAlerts) exited(siteID string, at time.Time) {
	s.mu.Lock()
	if !s.lastExit[siteID].Before(at) {
		s.mu.Unlock()
		return
	}
	s.lastExit[siteID] = at
	times := append(s.recent[siteID], at)
	for len(times) > 0 && at.Sub(times[0]) > s.window {
		times = times[1:]
	}
	s.recent[siteID] = times
	n := len(times)
	s.mu.Unlock()
	if n >= s.exits {
		s.alerter.Raise(alerts.RuleCrashLoop, siteID, fmt.Sprintf("site %s exited %d times within %s", siteID, n, s.window))
	}
}

// certAlerts hears certificate events from Caddy's events app: a failed
// renewal fires for its hostname, a certificate obtained for it clears.
type certAlerts struct{ alerter *alerts.Alerter }

func (c certAlerts) Handle(_ context.Context, e caddy.Event) error {
	name, _ := e.Data["identifier"].(string)
	switch e.Name() {
	case "cert_failed":
		if renewal, _ := e.Data["renewal"].(bool); renewal {
			c.alerter.Raise(alerts.RuleCertFailed, name, fmt.Sprintf("renewing the certificate of %s failed: %v", name, e.Data["error"]))
		}
	case "cert_obtained":
		c.alerter.Clear(alerts.RuleCertFailed, name)
	}
	return nil
}

// subscribeCertEvents binds certAlerts to the events app of ctx's config.
func subscribeCertEvents(ctx caddy.Context, a *alerts.Alerter, logger *zap.Logger) error {
	app, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("loading events app: %w", err)
	}
	events := app.(*caddyevents.App)
	for _, name := range []string{"cert_failed", "cert_obtained"} {
		if err := events.On(name, certAlerts{a}); err != nil {
			logger.Warn("certificate alerts off", zap.Error(err))
			return nil
		}
	}
	return nil
}
