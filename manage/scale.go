package manage

import (
	"context"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Bounds of a list of scale events: the store keeps
// tenants.MaxScaleEvents per site, so more is never there.
const (
	DefaultScaleEvents = 20
	MaxScaleEvents     = tenants.MaxScaleEvents
)

// ScaleEvent is one decision of a site's autoscaler: when and on which
// node, from and to how many replicas, why, and the in-flight average it
// was made on.
type ScaleEvent = tenants.ScaleEvent

// SiteScaleEvents returns the last limit (0: DefaultScaleEvents) scale
// events of the site ref names, the newest first.
func (s *Service) SiteScaleEvents(ctx context.Context, ref string, limit int) ([]ScaleEvent, error) {
	switch {
	case limit == 0:
		limit = DefaultScaleEvents
	case limit < 0 || limit > MaxScaleEvents:
		return nil, invalid("limit", "must be between 1 and %d", MaxScaleEvents)
	}
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	list, err := s.store.SiteScaleEvents(ctx, site.ID, limit)
	if err != nil {
		return nil, fail("site", err)
	}
	if list == nil {
		list = []ScaleEvent{}
	}
	return list, nil
}
