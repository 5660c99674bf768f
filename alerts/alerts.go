// Package alerts tells the operator when something on the platform needs
// them: a rule (a site failed to start, a crash loop, a failed
// certificate renewal, capacity reached, a failed payment, a failed
// backup, an unhealthy site) fires for a subject, and every channel (a
// signed webhook, email) hears of it once when it fires and once when it
// resolves. An incident resolves once its condition stayed clear for a
// quiet period, so a flapping site is one incident, not a flood.
//
// Incidents are rows of the platform's database, one open per rule and
// subject whichever node saw the condition; notifications are durable
// jobs (River) queued in the transaction that opens or resolves an
// incident, retried with backoff and sent by one node.
package alerts

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// The rules.
const (
	RuleStartFailed   = "site_start_failed"
	RuleCrashLoop     = "crash_loop"
	RuleUnhealthy     = "site_unhealthy" // raised by health monitoring
	RuleCertFailed    = "certificate_renewal_failed"
	RuleCapacity      = "capacity_reached"
	RulePaymentFailed = "payment_failed"
	RuleBackupFailed  = "backup_failed"
)

// Rules lists every rule.
var Rules = []string{RuleStartFailed, RuleCrashLoop, RuleUnhealthy, RuleCertFailed, RuleCapacity, RulePaymentFailed, RuleBackupFailed}

// DefaultResolveAfter is how long a condition must stay clear before its
// incident resolves.
const DefaultResolveAfter = 5 * time.Minute

// Config sets up an Alerter.
type Config struct {
	// Store keeps the incidents. Required.
	Store *tenants.Store
	// Platform names the platform in notifications (its schema).
	Platform string
	// Webhooks and Email are the channels; with none, incidents are
	// recorded and logged only.
	Webhooks []Webhook
	Email    *Email
	// ResolveAfter is the quiet period. Default: DefaultResolveAfter.
	ResolveAfter time.Duration
	// Disabled rules are neither recorded nor notified.
	Disabled []string
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// Alerter records incidents and queues their notifications. Raise and
// Clear never block: they hand the event to Run, which its owner runs
// until it is stopped.
type Alerter struct {
	cfg    Config
	log    *zap.Logger
	events chan event
	client *river.Client[pgx.Tx]
}

type event struct {
	raise                  bool
	rule, subject, summary string
}

// New returns the alerter of cfg; it does no I/O.
func New(cfg Config) (*Alerter, error) {
	if cfg.ResolveAfter <= 0 {
		cfg.ResolveAfter = DefaultResolveAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	for _, r := range cfg.Disabled {
		if !slices.Contains(Rules, r) {
			return nil, fmt.Errorf("no alert rule %q (rules: %v)", r, Rules)
		}
	}
	for i, w := range cfg.Webhooks {
		if err := w.validate(); err != nil {
			return nil, fmt.Errorf("webhook %d: %w", i+1, err)
		}
	}
	if cfg.Email != nil {
		if err := cfg.Email.validate(); err != nil {
			return nil, fmt.Errorf("email: %w", err)
		}
	}
	return &Alerter{cfg: cfg, log: cfg.Logger, events: make(chan event, 1024)}, nil
}

// Raise says that rule's condition holds for subject (a site's id, a
// hostname, a customer's id; "" for the platform); summary says what
// happened, for people.
func (a *Alerter) Raise(rule, subject, summary string) {
	a.queue(event{raise: true, rule: rule, subject: subject, summary: summary})
}

// Clear says that rule's condition no longer holds for subject.
func (a *Alerter) Clear(rule, subject string) { a.queue(event{rule: rule, subject: subject}) }

func (a *Alerter) queue(e event) {
	if slices.Contains(a.cfg.Disabled, e.rule) {
		return
	}
	select {
	case a.events <- e:
	default:
		// A flood of one kind: the incident it belongs to is open
		// already.
		a.log.Warn("alert queue full; dropping an event", zap.String("rule", e.rule), zap.String("subject", e.subject))
	}
}

// Run records events and resolves quiet incidents until ctx ends; client
// queues the notifications (the Register-ed workers send them).
func (a *Alerter) Run(ctx context.Context, client *river.Client[pgx.Tx]) {
	a.client = client
	tick := time.NewTicker(min(max(a.cfg.ResolveAfter/4, 250*time.Millisecond), 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-a.events:
			a.record(ctx, e)
		case <-tick.C:
			err := a.cfg.Store.ResolveAlerts(ctx, a.cfg.ResolveAfter, func(tx pgx.Tx, list []tenants.Alert) error {
				for i := range list {
					if err := a.notify(ctx, tx, StatusResolved, &list[i]); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil && ctx.Err() == nil {
				a.log.Warn("resolving alerts", zap.Error(err))
			}
		}
	}
}

func (a *Alerter) record(ctx context.Context, e event) {
	var err error
	if e.raise {
		err = a.cfg.Store.RaiseAlert(ctx, e.rule, e.subject, e.summary, func(tx pgx.Tx, al *tenants.Alert) error {
			a.log.Warn("alert firing", zap.String("rule", al.Rule), zap.String("subject", al.Subject), zap.String("summary", al.Summary))
			return a.notify(ctx, tx, StatusFiring, al)
		})
	} else {
		err = a.cfg.Store.ClearAlert(ctx, e.rule, e.subject)
	}
	if err != nil && ctx.Err() == nil {
		a.log.Warn("recording alert", zap.String("rule", e.rule), zap.String("subject", e.subject), zap.Error(err))
	}
}

// notify queues one delivery per channel in tx, the incident's.
func (a *Alerter) notify(ctx context.Context, tx pgx.Tx, status string, al *tenants.Alert) error {
	n := Notification{Status: status, Platform: a.cfg.Platform, Alert: *al}
	for i := range a.cfg.Webhooks {
		if _, err := a.client.InsertTx(ctx, tx, DeliveryArgs{Channel: webhookChannel(i), Notification: n}, nil); err != nil {
			return fmt.Errorf("queueing webhook notification: %w", err)
		}
	}
	if a.cfg.Email != nil {
		if _, err := a.client.InsertTx(ctx, tx, DeliveryArgs{Channel: emailChannel, Notification: n}, nil); err != nil {
			return fmt.Errorf("queueing email notification: %w", err)
		}
	}
	if status == StatusResolved {
		a.log.Info("alert resolved", zap.String("rule", al.Rule), zap.String("subject", al.Subject))
	}
	return nil
}
