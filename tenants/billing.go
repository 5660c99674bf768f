package tenants

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Billing is a customer's billing state as the payment provider last
// reported it. The customer's Status is what routing obeys; these fields
// explain it and drive the grace period.
type Billing struct {
	// SubscriptionStatus is Stripe's status of the customer's subscription
	// (active, trialing, past_due, unpaid, canceled, ...); empty while the
	// customer has none.
	SubscriptionStatus string `json:"subscription_status" db:"subscription_status"`
	// CurrentPeriodEnd is when the paid period of the subscription ends.
	CurrentPeriodEnd *time.Time `json:"current_period_end" db:"current_period_end"`
	// PastDueSince is when the customer fell behind on payment; the grace
	// period runs from it.
	PastDueSince *time.Time `json:"past_due_since" db:"past_due_since"`
	// LastEventAt is the creation time of the newest billing event applied
	// to the customer.
	LastEventAt *time.Time `json:"last_event_at" db:"last_billing_event_at"`
}

// BilledCustomer is a customer with its billing state, the unit billing
// events read and write (and the audit log records).
type BilledCustomer struct {
	Customer
	Billing
}

const billedCustomerColumns = customerColumns + `, subscription_status, current_period_end,
	past_due_since, last_billing_event_at`

// GetBilling returns the billing state of the customer with id.
func (s *Store) GetBilling(ctx context.Context, id string) (*Billing, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	b, err := collectOne[Billing](s.pool.Query(ctx, `SELECT subscription_status, current_period_end,
		past_due_since, last_billing_event_at FROM customers WHERE id = $1`, id))
	return b, mapError("getting billing state", err)
}

// ListBilling returns the billing state of each of the customers ids, by
// id; ids that do not exist are missing from the map.
func (s *Store) ListBilling(ctx context.Context, ids []string) (map[string]Billing, error) {
	out := make(map[string]Billing, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	for _, id := range ids {
		if validateID("id", id) != nil {
			return nil, invalid("id", "must be a uuid")
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT id, subscription_status, current_period_end,
		past_due_since, last_billing_event_at FROM customers WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, mapError("listing billing state", err)
	}
	var id string
	var b Billing
	_, err = pgx.ForEachRow(rows, []any{&id, &b.SubscriptionStatus, &b.CurrentPeriodEnd, &b.PastDueSince, &b.LastEventAt}, func() error {
		out[id] = b
		return nil
	})
	return out, mapError("listing billing state", err)
}

// FindPlan returns the plan whose id or slug is ref.
func (s *Store) FindPlan(ctx context.Context, ref string) (*Plan, error) {
	if validateID("id", ref) == nil {
		return s.GetPlan(ctx, ref)
	}
	if validateSlug(ref) != nil {
		return nil, ErrNotFound
	}
	p, err := collectOne[Plan](s.pool.Query(ctx, `SELECT `+planColumns+` FROM plans WHERE slug = $1`, ref))
	return p, mapError("getting plan", err)
}

// PlanByPriceID returns the plan whose stripe_price_id is priceID.
func (s *Store) PlanByPriceID(ctx context.Context, priceID string) (*Plan, error) {
	p, err := collectOne[Plan](s.pool.Query(ctx, `SELECT `+planColumns+` FROM plans
		WHERE stripe_price_id = $1 ORDER BY created_at, id LIMIT 1`, priceID))
	return p, mapError("getting plan", err)
}

// BillingEventInput is one event from the payment provider, to be applied
// at most once.
type BillingEventInput struct {
	ID      string
	Type    string
	Created time.Time
	Payload []byte // the event as received, stored as jsonb
}

// BillingTarget names the customer an event is about: by the provider's
// customer id, else by the platform's own id (which a checkout session
// carries as its client reference).
type BillingTarget struct {
	StripeCustomerID string
	CustomerID       string
}

// Outcomes of ApplyBillingEvent.
const (
	// BillingApplied: the event was recorded and the customer updated (the
	// update may leave every field as it was).
	BillingApplied = "applied"
	// BillingDuplicate: the event had been applied before; nothing changed.
	BillingDuplicate = "duplicate"
	// BillingStale: the event is older than the newest one applied to its
	// customer; recorded, no effect.
	BillingStale = "stale"
	// BillingIgnored: the decision function declined the event (e.g. it is
	// about another subscription); recorded, no effect.
	BillingIgnored = "ignored"
	// BillingNoCustomer: no customer matches the event; recorded, no effect.
	BillingNoCustomer = "no_customer"
)

// BillingResult reports what ApplyBillingEvent did.
type BillingResult struct {
	Outcome string
	// Before and After are the customer around the event (set for every
	// outcome that found one; equal unless the outcome is applied and
	// something changed).
	Before, After *BilledCustomer
}

// Changed reports whether the event changed what the customer's resource
// shows (the event clock aside).
func (r *BillingResult) Changed() bool {
	return r.Outcome == BillingApplied && !sameBilling(r.Before, r.After)
}

// ApplyBillingEvent applies ev exactly once, in one transaction: the event
// id goes into billing_events (a replay finds it there and changes
// nothing), the target customer is locked, and unless ev is older than the
// last event applied to it, decide edits a copy of it. decide returns false
// to leave the customer alone. Changes are written with the event's clock
// and audited as actor. A nil decide only records the event.
func (s *Store) ApplyBillingEvent(ctx context.Context, actor string, ev BillingEventInput, target BillingTarget,
	decide func(c *BilledCustomer) bool) (*BillingResult, error) {
	if ev.ID == "" || ev.Type == "" {
		return nil, invalid("id", "an event needs an id and a type")
	}
	if target.CustomerID != "" && validateID("customer_id", target.CustomerID) != nil {
		target.CustomerID = "" // not one of ours, e.g. a reference set by another system
	}
	res := &BillingResult{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO billing_events (id, type, created, payload)
			VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`, ev.ID, ev.Type, ev.Created, ev.Payload)
		if err != nil {
			return mapError("recording billing event", err)
		}
		if tag.RowsAffected() == 0 {
			res.Outcome = BillingDuplicate
			return nil
		}
		if decide == nil || (target.StripeCustomerID == "" && target.CustomerID == "") {
			res.Outcome = BillingNoCustomer
			return nil
		}
		before, err := collectOne[BilledCustomer](tx.Query(ctx, `SELECT `+billedCustomerColumns+` FROM customers
			WHERE id = coalesce((SELECT id FROM customers WHERE stripe_customer_id = $1 AND $1 <> ''), $2::uuid)
			FOR UPDATE`, target.StripeCustomerID, nullIfEmpty(target.CustomerID)))
		if errors.Is(err, pgx.ErrNoRows) {
			res.Outcome = BillingNoCustomer
			return nil
		}
		if err != nil {
			return mapError("getting customer", err)
		}
		res.Before, res.After = before, before
		if _, err := tx.Exec(ctx, `UPDATE billing_events SET customer_id = $2 WHERE id = $1`, ev.ID, before.ID); err != nil {
			return mapError("recording billing event", err)
		}
		if before.LastEventAt != nil && ev.Created.Before(*before.LastEventAt) {
			res.Outcome = BillingStale
			return nil
		}
		next := *before
		if !decide(&next) {
			res.Outcome = BillingIgnored
			return nil
		}
		if err := validateCustomer(&next.Customer); err != nil {
			return err
		}
		after, err := collectOne[BilledCustomer](tx.Query(ctx, `UPDATE customers SET status = $2,
			plan_id = nullif($3, '')::uuid, stripe_customer_id = nullif($4, ''),
			stripe_subscription_id = nullif($5, ''), subscription_status = $6, current_period_end = $7,
			past_due_since = $8, last_billing_event_at = greatest(last_billing_event_at, $9),
			updated_at = CASE WHEN $10 THEN updated_at ELSE now() END
			WHERE id = $1 RETURNING `+billedCustomerColumns,
			before.ID, next.Status, next.PlanID, next.StripeCustomerID, next.StripeSubscriptionID,
			next.SubscriptionStatus, next.CurrentPeriodEnd, next.PastDueSince, ev.Created, sameBilling(before, &next)))
		if err != nil {
			return mapError("applying billing event", err)
		}
		res.Outcome, res.After = BillingApplied, after
		if sameBilling(before, after) {
			return nil
		}
		return appendAudit(ctx, tx, change{actor, ev.Type, "customer"}, after.ID, before, after)
	})
	if err != nil {
		return nil, unavailable("applying billing event", err)
	}
	return res, nil
}

// sameBilling compares what a billing event may change, the event clock
// aside.
func sameBilling(a, b *BilledCustomer) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Status == b.Status && a.PlanID == b.PlanID && a.StripeCustomerID == b.StripeCustomerID &&
		a.StripeSubscriptionID == b.StripeSubscriptionID && a.SubscriptionStatus == b.SubscriptionStatus &&
		sameTime(a.CurrentPeriodEnd, b.CurrentPeriodEnd) && sameTime(a.PastDueSince, b.PastDueSince)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// SuspendOverdue suspends every past_due customer who fell behind at or
// before cutoff (those without a recorded time count from their last
// update), each audited as actor with action "grace_expired". It returns
// the customers it suspended. Several nodes may run it at once: rows
// another transaction holds are skipped, and a suspended customer is no
// longer past_due.
func (s *Store) SuspendOverdue(ctx context.Context, actor string, cutoff time.Time) ([]BilledCustomer, error) {
	var done []BilledCustomer
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		after, err := collectAll[BilledCustomer](tx.Query(ctx, `UPDATE customers
			SET status = 'suspended', updated_at = now()
			WHERE id IN (SELECT id FROM customers
				WHERE status = 'past_due' AND coalesce(past_due_since, updated_at) <= $1
				FOR UPDATE SKIP LOCKED)
			RETURNING `+billedCustomerColumns, cutoff))
		if err != nil {
			return mapError("suspending overdue customers", err)
		}
		for i := range after {
			before := after[i]
			before.Status, before.UpdatedAt = CustomerPastDue, time.Time{}
			if err := appendAudit(ctx, tx, change{actor, "grace_expired", "customer"}, after[i].ID, &before, &after[i]); err != nil {
				return err
			}
		}
		done = after
		return nil
	})
	return done, unavailable("suspending overdue customers", err)
}

// NonServingSites returns the ids of sites that must not run: suspended
// sites, and every site of a suspended or canceled customer. The billing
// sweep stops any of them found running (a start that raced a suspension).
func (s *Store) NonServingSites(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.id::text FROM sites s JOIN customers c ON c.id = s.customer_id
		WHERE s.status <> 'active' OR c.status NOT IN ('active', 'past_due')`)
	if err != nil {
		return nil, mapError("listing non-serving sites", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, mapError("listing non-serving sites", err)
}

// CustomerSiteIDs returns the ids of every site of the customer.
func (s *Store) CustomerSiteIDs(ctx context.Context, customerID string) ([]string, error) {
	if validateID("customer_id", customerID) != nil {
		return nil, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM sites WHERE customer_id = $1 ORDER BY id`, customerID)
	if err != nil {
		return nil, mapError("listing sites", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, mapError("listing sites", err)
}

// BillingEventRow is a recorded billing event as operators list it: what
// it was, whose, and what it did.
type BillingEventRow struct {
	ID            string    `json:"id" db:"id"`
	Type          string    `json:"type" db:"type"`
	CustomerID    *string   `json:"customer_id,omitempty" db:"customer_id"`
	CustomerEmail *string   `json:"customer_email,omitempty" db:"customer_email"`
	Created       time.Time `json:"created" db:"created"`
	AppliedAt     time.Time `json:"applied_at" db:"applied_at"`
	// Changed reports whether the event changed its customer (the audit
	// log has an entry by the event).
	Changed bool `json:"changed" db:"changed"`
}

// BillingEventFilter narrows ListBillingEvents.
type BillingEventFilter struct {
	// Before lists only events recorded before this one (its id), for
	// paging backwards; "" = newest.
	Before string
	Limit  int // Default: 50; at most 500
}

// ListBillingEvents returns the billing events recorded, newest first,
// without their payloads. An event changed its customer when the audit log
// has an entry about it whose actor is the event (see billing.Actor); the
// audit log's (entity, entity_id) index finds it.
func (s *Store) ListBillingEvents(ctx context.Context, f BillingEventFilter) ([]BillingEventRow, error) {
	if err := checkText("before", f.Before, maxActorLen); err != nil {
		return nil, err
	}
	list, err := collectAll[BillingEventRow](s.pool.Query(ctx, `SELECT e.id, e.type, e.customer_id::text AS customer_id,
		c.email AS customer_email, e.created, e.applied_at,
		EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = 'customer' AND a.entity_id = e.customer_id::text
			AND a.actor = 'stripe:' || e.id) AS changed
		FROM billing_events e LEFT JOIN customers c ON c.id = e.customer_id
		WHERE $1 = '' OR (e.applied_at, e.id) < (SELECT applied_at, id FROM billing_events WHERE id = $1)
		ORDER BY e.applied_at DESC, e.id DESC LIMIT $2`, f.Before, Page{Limit: f.Limit}.limit()))
	return list, mapError("listing billing events", err)
}
