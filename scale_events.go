package multitenant

import (
	"context"
	"strconv"

	"go.uber.org/zap"

	"github.com/agistaffers/caddy-multitenant/provisioner"
	"github.com/agistaffers/caddy-multitenant/tenants"
)

// queueScaleEvent is the provisioner's OnScale: the decision is saved
// (with this node's name) behind, like state changes, so that the
// autoscaler never waits for the database.
func (p *platform) queueScaleEvent(e provisioner.ScaleEvent) {
	ev := tenants.ScaleEvent{SiteID: e.SiteID, At: e.At, Node: p.node, FromReplicas: e.From,
		ToReplicas: e.To, Reason: e.Reason, InFlight: e.InFlight}
	select {
	case p.scales <- ev:
	default:
		p.logger.Warn("scale event queue full; dropping a scale event", zap.String("site_id", e.SiteID))
	}
}

// flushScaleEvents saves queued scale events at most once a second until
// ctx ends (then what is queued, bounded).
func (p *platform) flushScaleEvents(ctx context.Context) {
	// Every event is kept: keyed by site and time, none replaces another.
	key := func(e tenants.ScaleEvent) string { return e.SiteID + "@" + strconv.FormatInt(e.At.UnixNano(), 10) }
	writeBehind(ctx, p.scales, key, func(ctx context.Context, events []tenants.ScaleEvent) bool {
		for i := range events {
			if err := p.store.RecordScaleEvent(ctx, &events[i]); err != nil {
				p.logger.Warn("saving a scale event", zap.String("site_id", events[i].SiteID), zap.Error(err))
			}
		}
		return true // a row that failed validation would fail forever
	})
}
