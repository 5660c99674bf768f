package manage

import (
	"context"

	"github.com/agistaffers/caddy-multitenant/tenants"
)

// ListBillingEvents returns the Stripe events recorded, newest first, with
// whether each changed its customer.
func (s *Service) ListBillingEvents(ctx context.Context, f tenants.BillingEventFilter) ([]tenants.BillingEventRow, error) {
	list, err := s.store.ListBillingEvents(ctx, f)
	return list, fail("billing event", err)
}
