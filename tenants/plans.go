package tenants

import (
	"context"

	"github.com/jackc/pgx/v5"
)

const planColumns = `id, slug, name, coalesce(stripe_price_id, '') AS stripe_price_id, max_sites,
	memory_bytes, nano_cpus, pids_limit, max_replicas, created_at, updated_at`

func validatePlan(p *Plan) error {
	if err := validateSlug(p.Slug); err != nil {
		return err
	}
	if err := validateName("name", p.Name); err != nil {
		return err
	}
	if p.MaxSites < 1 || p.MaxSites > MaxPlanSites {
		return invalid("max_sites", "must be from 1 to %d", MaxPlanSites)
	}
	if err := validateStripeID("stripe_price_id", "price_", p.StripePriceID); err != nil {
		return err
	}
	if p.MaxReplicas != nil {
		if err := validateReplicas("max_replicas", *p.MaxReplicas); err != nil {
			return err
		}
	}
	return validateLimits(p.MemoryBytes, p.NanoCPUs, p.PidsLimit)
}

// CreatePlan inserts p and fills in its id and timestamps.
func (s *Store) CreatePlan(ctx context.Context, actor string, p *Plan) error {
	if p.MaxSites == 0 {
		p.MaxSites = 1
	}
	if err := validatePlan(p); err != nil {
		return err
	}
	return s.write(ctx, change{actor, "create", "plan"}, func(tx pgx.Tx) (string, any, any, error) {
		created, err := collectOne[Plan](tx.Query(ctx, `INSERT INTO plans
			(slug, name, stripe_price_id, max_sites, memory_bytes, nano_cpus, pids_limit, max_replicas)
			VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7, $8) RETURNING `+planColumns,
			p.Slug, p.Name, p.StripePriceID, p.MaxSites, p.MemoryBytes, p.NanoCPUs, p.PidsLimit, p.MaxReplicas))
		if err != nil {
			return "", nil, nil, err
		}
		*p = *created
		return p.ID, nil, p, nil
	})
}

// GetPlan returns the plan with id.
func (s *Store) GetPlan(ctx context.Context, id string) (*Plan, error) {
	if validateID("id", id) != nil {
		return nil, ErrNotFound
	}
	p, err := collectOne[Plan](s.pool.Query(ctx, `SELECT `+planColumns+` FROM plans WHERE id = $1`, id))
	return p, mapError("getting plan", err)
}

// ListPlans returns a page of plans.
func (s *Store) ListPlans(ctx context.Context, page Page) ([]Plan, error) {
	after, err := page.after()
	if err != nil {
		return nil, err
	}
	plans, err := collectAll[Plan](s.pool.Query(ctx, `SELECT `+planColumns+` FROM plans
		WHERE $1::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM plans WHERE id = $1)
		ORDER BY created_at, id LIMIT $2`, after, page.limit()))
	return plans, mapError("listing plans", err)
}

// UpdatePlan stores every mutable field of p.
func (s *Store) UpdatePlan(ctx context.Context, actor string, p *Plan) error {
	if err := validatePlan(p); err != nil {
		return err
	}
	if validateID("id", p.ID) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "update", "plan"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Plan](tx.Query(ctx, `SELECT `+planColumns+` FROM plans WHERE id = $1 FOR UPDATE`, p.ID))
		if err != nil {
			return "", nil, nil, err
		}
		after, err := collectOne[Plan](tx.Query(ctx, `UPDATE plans SET slug = $2, name = $3,
			stripe_price_id = nullif($4, ''), max_sites = $5, memory_bytes = $6, nano_cpus = $7,
			pids_limit = $8, max_replicas = $9, updated_at = now()
			WHERE id = $1 RETURNING `+planColumns,
			p.ID, p.Slug, p.Name, p.StripePriceID, p.MaxSites, p.MemoryBytes, p.NanoCPUs, p.PidsLimit, p.MaxReplicas))
		if err != nil {
			return "", nil, nil, err
		}
		*p = *after
		return p.ID, before, after, nil
	})
}

// DeletePlan removes the plan with id; it is a conflict while customers
// are on it.
func (s *Store) DeletePlan(ctx context.Context, actor, id string) error {
	if validateID("id", id) != nil {
		return ErrNotFound
	}
	return s.write(ctx, change{actor, "delete", "plan"}, func(tx pgx.Tx) (string, any, any, error) {
		before, err := collectOne[Plan](tx.Query(ctx, `DELETE FROM plans WHERE id = $1 RETURNING `+planColumns, id))
		if err != nil {
			return "", nil, nil, err
		}
		return id, before, nil, nil
	})
}
