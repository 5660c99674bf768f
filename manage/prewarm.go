package manage

import (
	"context"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// Bounds of a list of pre-warms.
const (
	DefaultPrewarms = 20
	MaxPrewarms     = 500
)

// Prewarm is one start of a site before an hour slot its first visitors
// usually come in: the slot, the model's probability (the share of the
// past weeks with a first request in that hour), when the site was
// ready, and when the slot's first visitor came (absent: none yet, or
// none before the site went back to sleep).
type Prewarm = tenants.PrewarmEvent

// SitePrewarms returns the last limit (0: DefaultPrewarms) pre-warms of
// the site ref names, the newest first.
func (s *Service) SitePrewarms(ctx context.Context, ref string, limit int) ([]Prewarm, error) {
	switch {
	case limit == 0:
		limit = DefaultPrewarms
	case limit < 0 || limit > MaxPrewarms:
		return nil, invalid("limit", "must be between 1 and 500")
	}
	site, err := s.site(ctx, "", ref)
	if err != nil {
		return nil, err
	}
	list, err := s.store.SitePrewarms(ctx, site.ID, limit)
	if err != nil {
		return nil, fail("site", err)
	}
	if list == nil {
		list = []Prewarm{}
	}
	return list, nil
}
