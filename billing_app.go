package multitenant

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/agistaffers/caddy-multitenant/billing"
)

// billingLoops holds the grace-period loop of each platform, keyed like
// the platform, so that during a reload the old and the new config share
// one loop rather than run two, and the last config to go stops it.
var billingLoops = caddy.NewUsagePool()

// billingLoop runs billing.Service.Run for one platform between the first
// Start of a config using it and its Destruct.
type billingLoop struct {
	svc    *billing.Service
	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *billingLoop) start() {
	l.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go func() {
			defer close(l.done)
			l.svc.Run(ctx)
		}()
	})
}

// Destruct stops the loop and waits for it.
func (l *billingLoop) Destruct() error {
	l.once.Do(func() {}) // a loop never started never will be
	if l.cancel != nil {
		l.cancel()
		<-l.done
	}
	return nil
}

// provisionBilling makes the app's billing service when Stripe is
// configured, and takes a reference to its platform's loop. No I/O.
func (a *App) provisionBilling() error {
	if a.Stripe == nil {
		return nil
	}
	cfg, err := a.Stripe.billingConfig()
	if err != nil {
		return err
	}
	cfg.Store = a.store
	cfg.Sites = platformSites{a.platform}
	cfg.Logger = a.logger.Named("billing")
	svc, err := billing.New(cfg)
	if err != nil {
		return err
	}
	a.billing = svc
	val, _, err := billingLoops.LoadOrNew(a.platformKey, func() (caddy.Destructor, error) {
		return &billingLoop{svc: svc}, nil
	})
	if err != nil {
		return err
	}
	a.billingLoop = val.(*billingLoop)
	return nil
}

// startBilling starts the platform's grace-period loop (once).
func (a *App) startBilling() {
	if a.billingLoop != nil {
		a.billingLoop.start()
	}
}

// cleanupBilling releases the app's reference to the loop; the last one
// stops it.
func (a *App) cleanupBilling() error {
	if a.billingLoop == nil {
		return nil
	}
	a.billingLoop = nil
	_, err := billingLoops.Delete(a.platformKey)
	return err
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
