package multitenant

import (
	"context"

	"github.com/agistaffers/caddy-multitenant/billing"
)

// newBilling makes the platform's billing service when Stripe is
// configured (nil otherwise). No I/O; its grace-period loop runs between
// the platform's start and Destruct.
func newBilling(a *App, p *platform) (*billing.Service, error) {
	if a.Stripe == nil {
		return nil, nil
	}
	cfg, err := a.Stripe.billingConfig()
	if err != nil {
		return nil, err
	}
	cfg.Store = p.store
	cfg.Sites = platformSites{p}
	cfg.Logger = a.logger.Named("billing")
	return billing.New(cfg)
}

// platformSites is billing's view of the platform's containers.
type platformSites struct{ p *platform }

func (s platformSites) StopSite(ctx context.Context, siteID string) error {
	return s.p.prov.StopSite(ctx, siteID)
}

func (s platformSites) Running(siteID string) bool {
	_, running := s.p.prov.Upstream(siteID)
	return running
}
