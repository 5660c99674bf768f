package alerts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Statuses of a notification.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Notification is what a channel is told: the incident and whether it
// fires or resolved. It is the webhook's JSON body.
type Notification struct {
	Status   string `json:"status"`
	Platform string `json:"platform"`
	tenants.Alert
}

// DeliveryArgs is the durable job of one notification to one channel.
type DeliveryArgs struct {
	Channel      string       `json:"channel"` // webhook:<n> or email
	Notification Notification `json:"notification"`
}

// Kind names the job in the queue.
func (DeliveryArgs) Kind() string { return "tenants_alert_delivery" }

// InsertOpts: a receiver down for a while still hears of it; the queue's
// backoff between attempts grows with each (seconds, then minutes, then
// hours), for about three days.
func (DeliveryArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 12} }

const emailChannel = "email"

func webhookChannel(i int) string { return "webhook:" + strconv.Itoa(i) }

// deliveryTimeout bounds one attempt.
const deliveryTimeout = 30 * time.Second

// Register adds the delivery worker to workers.
func (a *Alerter) Register(workers *river.Workers) {
	river.AddWorker(workers, &deliveryWorker{a: a})
}

type deliveryWorker struct {
	river.WorkerDefaults[DeliveryArgs]
	a *Alerter
}

func (w *deliveryWorker) Timeout(*river.Job[DeliveryArgs]) time.Duration { return deliveryTimeout }

func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	n := &job.Args.Notification
	ch := job.Args.Channel
	switch {
	case ch == emailChannel && w.a.cfg.Email != nil:
		return w.a.cfg.Email.send(ctx, n)
	case strings.HasPrefix(ch, "webhook:"):
		i, err := strconv.Atoi(strings.TrimPrefix(ch, "webhook:"))
		if err == nil && i >= 0 && i < len(w.a.cfg.Webhooks) {
			return w.a.cfg.Webhooks[i].send(ctx, job.ID, n)
		}
	}
	// The channel was configured away since the job was queued.
	return river.JobCancel(errors.New("channel " + ch + " is no longer configured"))
}

// subjectLine is the one-line summary of a notification.
func subjectLine(n *Notification) string {
	s := fmt.Sprintf("[%s] %s %s", n.Platform, n.Rule, strings.ToUpper(n.Status))
	if n.Subject != "" {
		s += ": " + n.Subject
	}
	return s
}
