package billing

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// GraceActor is the audit log's actor of suspensions at the end of a
// grace period.
const GraceActor = "billing:grace_period"

// stopTimeout bounds stopping one customer's sites; it is detached from
// the caller's context so that a webhook sender hanging up does not leave
// half the sites running.
const stopTimeout = 2 * time.Minute

// Run sweeps (see Sweep) at once and then every check interval until ctx
// ends. Its caller owns it: the root package runs one per platform
// between the tenants app's Start and the platform's end.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("billing sweep failed; will retry", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep suspends the past_due customers whose grace period ended by now
// and stops their sites, then stops every site still running that must
// not: one that a request started while its customer was being suspended,
// or whose customer an operator suspended.
func (s *Service) Sweep(ctx context.Context, now time.Time) error {
	suspended, err := s.store.SuspendOverdue(ctx, GraceActor, now.Add(-s.cfg.GracePeriod))
	if err != nil {
		return err
	}
	for _, c := range suspended {
		s.log.Info("grace period over; customer suspended", zap.String("customer_id", c.ID))
		s.stopCustomerSites(ctx, c.ID)
	}
	if s.cfg.Sites == nil {
		return nil
	}
	ids, err := s.store.NonServingSites(ctx)
	if err != nil {
		return err
	}
	var running []string
	for _, id := range ids {
		if s.cfg.Sites.Running(id) {
			running = append(running, id)
		}
	}
	s.stopSites(ctx, running)
	return nil
}

// stopCustomerSites stops every container of the customer's sites.
func (s *Service) stopCustomerSites(ctx context.Context, customerID string) {
	if s.cfg.Sites == nil {
		return
	}
	ids, err := s.store.CustomerSiteIDs(ctx, customerID)
	if err != nil {
		s.log.Error("listing sites of suspended customer; the sweep will stop them", zap.String("customer_id", customerID), zap.Error(err))
		return
	}
	s.stopSites(ctx, ids)
}

// stopSites stops the sites' containers, a few at a time; a failure is
// logged and left to the next sweep.
func (s *Service) stopSites(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	var g errgroup.Group
	g.SetLimit(8)
	for _, id := range ids {
		g.Go(func() error {
			if err := s.cfg.Sites.StopSite(ctx, id); err != nil {
				s.log.Error("stopping site of suspended customer", zap.String("site_id", id), zap.Error(err))
				return nil
			}
			s.log.Info("stopped site of suspended customer", zap.String("site_id", id))
			return nil
		})
	}
	_ = g.Wait()
}
