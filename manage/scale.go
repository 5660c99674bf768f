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

// SiteScaling is a site's autoscaling as its page shows it: the limits
// its autoscaler works within and its latest decisions.
type SiteScaling struct {
	// MaxReplicas is the most replicas the site may run: its template's
	// max_replicas, capped by its plan's.
	MaxReplicas int `json:"max_replicas"`
	// PlanCap is set when the plan's cap is what limits MaxReplicas.
	PlanCap bool `json:"plan_cap,omitempty"`
	// TargetConcurrency is the in-flight requests per replica aimed for.
	TargetConcurrency int `json:"target_concurrency"`
	// Events are the latest decisions, newest first.
	Events []ScaleEvent `json:"events"`
}

// SiteScaling returns the autoscaling of the site ref names with its
// last limit (0: DefaultScaleEvents) decisions.
func (s *Service) SiteScaling(ctx context.Context, ref string, limit int) (*SiteScaling, error) {
	events, err := s.SiteScaleEvents(ctx, ref, limit)
	if err != nil {
		return nil, err
	}
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	r, err := s.store.SiteRoute(ctx, site.ID)
	if err != nil {
		return nil, fail("site", err)
	}
	return &SiteScaling{MaxReplicas: r.MaxReplicas, PlanCap: r.MaxReplicas < r.Template.MaxReplicas,
		TargetConcurrency: r.TargetConcurrency, Events: events}, nil
}
